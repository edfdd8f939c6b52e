//! The public repository config: the only object stored in the clear.

use serde::{Deserialize, Serialize};

use crate::versioned::{decode_json, encode_json};
use crate::{FORMAT_VERSION, FormatError, Id};

/// Content-defined chunking sizes for files and streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerConfig {
    /// Minimum chunk size in bytes.
    pub min: u32,
    /// Average chunk size in bytes.
    pub avg: u32,
    /// Maximum chunk size in bytes.
    pub max: u32,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self {
            min: 256 * 1024,
            avg: 1024 * 1024,
            max: 4 * 1024 * 1024,
        }
    }
}

/// `config` at the repository root (JSON, not encrypted: it holds nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Random repository id.
    pub id: Id,
    /// When the repository was created.
    pub created: jiff::Timestamp,
    /// Chunking of files and streams.
    pub chunker: ChunkerConfig,
    /// Fixed chunk size of block volumes, in bytes (a power of two, 4 KiB to 4 MiB).
    pub volume_chunk_size: u32,
    /// zstd level for new blobs (0 disables compression).
    pub compression_level: i32,
    /// Target size of a pack file in bytes.
    pub pack_size: u32,
}

impl RepoConfig {
    /// Smallest and largest volume chunk sizes accepted.
    pub const VOLUME_CHUNK_RANGE: (u32, u32) = (4096, 4 * 1024 * 1024);

    /// Encodes as JSON.
    ///
    /// # Errors
    /// Never in practice (serde_json into a Vec).
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode_json("config", self)
    }

    /// Parses and validates.
    ///
    /// # Errors
    /// Malformed JSON, an unsupported version or out-of-range values.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let c: Self = decode_json("config", FORMAT_VERSION, bytes, |c: &Self| c.version)?;
        c.validate()?;
        Ok(c)
    }

    /// Checks value ranges.
    ///
    /// # Errors
    /// `FormatError::Invalid` naming the bad field.
    pub fn validate(&self) -> Result<(), FormatError> {
        let (lo, hi) = Self::VOLUME_CHUNK_RANGE;
        if !self.volume_chunk_size.is_power_of_two() || !(lo..=hi).contains(&self.volume_chunk_size)
        {
            return Err(FormatError::invalid(
                "config",
                "volume_chunk_size must be a power of two from 4 KiB to 4 MiB",
            ));
        }
        if !(-7..=22).contains(&self.compression_level) {
            return Err(FormatError::invalid(
                "config",
                "compression_level must be from -7 to 22",
            ));
        }
        if !(1024 * 1024..=512 * 1024 * 1024).contains(&self.pack_size) {
            return Err(FormatError::invalid(
                "config",
                "pack_size must be from 1 MiB to 512 MiB",
            ));
        }
        // The ranges FastCDC 2020 accepts: a config this parser accepts must be usable.
        let ch = &self.chunker;
        let ok = (64..=1024 * 1024).contains(&ch.min)
            && (256..=4 * 1024 * 1024).contains(&ch.avg)
            && (1024..=16 * 1024 * 1024).contains(&ch.max)
            && ch.min <= ch.avg
            && ch.avg <= ch.max;
        if !ok {
            return Err(FormatError::invalid(
                "config",
                "chunker sizes must satisfy min ≤ avg ≤ max, 64 B ≤ min ≤ 1 MiB, \
                 256 B ≤ avg ≤ 4 MiB, 1 KiB ≤ max ≤ 16 MiB",
            ));
        }
        Ok(())
    }
}
