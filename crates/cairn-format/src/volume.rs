//! Volume maps: a tree of fixed-size chunk references describing a block volume.
//!
//! The volume is cut into `chunk_size` chunks (the last may be shorter). Leaves hold
//! `leaf_chunks` consecutive chunk references; interior nodes hold up to `fanout` children;
//! `None` children are all-zero subtrees, so a sparse 1 TiB volume costs almost nothing.
//! Snapshots share unchanged nodes, so an incremental writes new nodes only where it changed.

use serde::{Deserialize, Serialize};

use crate::versioned::{decode, encode};
use crate::{FormatError, Id};

/// A run of changed bytes laid over a chunk's base content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumePatch {
    /// Offset within the chunk.
    pub offset: u32,
    /// Length of the run (= plaintext length of the blob).
    pub len: u32,
    /// Data blob holding the new bytes.
    pub id: Id,
}

/// The content of one volume chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolChunk {
    /// All zeros: restored as a hole.
    Zero,
    /// A data blob of exactly the chunk's length.
    Data(Id),
    /// An earlier chunk (or zeros, for `None`) with changed runs laid over it, so an
    /// incremental given a changed-block list stores only the changed bytes.
    Patched {
        /// Base content.
        base: Option<Id>,
        /// Sorted, non-overlapping runs within the chunk.
        patches: Vec<VolumePatch>,
    },
}

/// Leaf node: consecutive chunk references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VolumeLeaf {
    /// Chunks in volume order.
    pub chunks: Vec<VolChunk>,
}

/// A stored node of a volume map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeNode {
    /// Children (`None`: all zeros).
    Interior(Vec<Option<Id>>),
    /// Chunk references.
    Leaf(VolumeLeaf),
}

impl VolumeNode {
    const VERSION: u8 = 1;

    /// Encodes the plaintext.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode("volume node", Self::VERSION, self)
    }

    /// Parses the plaintext and checks patch runs (sorted, non-overlapping, non-empty).
    ///
    /// # Errors
    /// Malformed bytes or invalid patches.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let n: Self = decode("volume node", Self::VERSION, bytes)?;
        if let Self::Leaf(leaf) = &n {
            for c in &leaf.chunks {
                if let VolChunk::Patched { patches, .. } = c {
                    let mut end = 0u64;
                    for p in patches {
                        if p.len == 0 || u64::from(p.offset) < end {
                            return Err(FormatError::invalid(
                                "volume node",
                                "patches empty, unsorted or overlapping",
                            ));
                        }
                        end = u64::from(p.offset) + u64::from(p.len);
                    }
                }
            }
        }
        Ok(n)
    }
}

/// The description of a volume kept in its snapshot: geometry and the top of the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeMap {
    /// Volume size in bytes.
    pub capacity: u64,
    /// Chunk size in bytes (power of two).
    pub chunk_size: u32,
    /// Chunks per leaf.
    pub leaf_chunks: u32,
    /// Children per interior node.
    pub fanout: u32,
    /// Levels of interior nodes below `top` (0: `top` lists leaves).
    pub height: u8,
    /// Top-level children (`None`: all zeros).
    pub top: Vec<Option<Id>>,
}

impl VolumeMap {
    /// Number of chunks in the volume.
    pub fn chunk_count(&self) -> u64 {
        self.capacity.div_ceil(u64::from(self.chunk_size))
    }

    /// Number of chunks one child of `top` covers.
    pub fn top_span_chunks(&self) -> u64 {
        u64::from(self.leaf_chunks)
            .saturating_mul(u64::from(self.fanout).saturating_pow(u32::from(self.height)))
    }

    /// Checks the geometry is self-consistent.
    ///
    /// # Errors
    /// `FormatError::Invalid` for an inconsistent map.
    pub fn validate(&self) -> Result<(), FormatError> {
        if !self.chunk_size.is_power_of_two() || self.chunk_size < 512 {
            return Err(FormatError::invalid(
                "volume map",
                "chunk size must be a power of two ≥ 512",
            ));
        }
        if self.leaf_chunks == 0 || self.fanout < 2 || self.height > 8 {
            return Err(FormatError::invalid(
                "volume map",
                "bad leaf size, fanout or height",
            ));
        }
        let need = self.chunk_count().div_ceil(self.top_span_chunks().max(1));
        if self.top.len() as u64 != need || self.top.len() as u64 > u64::from(self.fanout) {
            return Err(FormatError::invalid(
                "volume map",
                "top level does not cover the capacity",
            ));
        }
        Ok(())
    }
}
