//! Changed-block and allocated-block lists: which byte ranges of a volume to read.
//!
//! Two input shapes are accepted, told apart by their first non-blank byte:
//!
//! - JSON shaped like the Kubernetes CSI `SnapshotMetadata` service's
//!   `GetMetadataAllocatedResponse` / `GetMetadataDeltaResponse`: `block_metadata_type`
//!   (`FIXED_LENGTH` or `VARIABLE_LENGTH`, or their enum numbers 1 and 2),
//!   `volume_capacity_bytes` and `block_metadata: [{byte_offset, size_bytes}]`. One response
//!   object, an array of them, or several objects one after another (JSON lines: the service
//!   streams several). Field names may also be in protobuf JSON's lowerCamelCase and the
//!   64-bit numbers may be strings, as protobuf JSON writes them.
//! - Plain text: one `offset,length` pair of decimal numbers per line; blank lines and lines
//!   starting with `#` are ignored.
//!
//! [`BlockList::parse`] only decodes; [`BlockList::normalize`] checks the ranges against a
//! volume's capacity and returns them sorted and merged. Both are pure (no I/O), so they are
//! fuzzed (`fuzz/fuzz_targets/block_list.rs`).

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// A byte range of a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlockRange {
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl BlockRange {
    /// One past the last byte (saturating: a range that overflows is rejected elsewhere).
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// A parsed list, in input order, not yet checked against a volume.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockList {
    /// The volume capacity the list was made for, if the input says (CSI JSON does; plain
    /// lines do not).
    pub capacity: Option<u64>,
    /// The ranges, in input order.
    pub ranges: Vec<BlockRange>,
}

/// Why a block list was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockListError {
    /// The text is neither valid JSON of the expected shape nor valid `offset,length` lines.
    #[error("cannot parse the block list: {0}")]
    Syntax(String),
    /// `FIXED_LENGTH` with tuples of different sizes, or several responses that disagree on
    /// the capacity.
    #[error("inconsistent block list: {0}")]
    Inconsistent(String),
    /// A range is empty or ends past the capacity.
    #[error("block range {offset}+{len} is {why} (volume capacity {capacity} bytes)")]
    OutOfRange {
        /// Range start.
        offset: u64,
        /// Range length.
        len: u64,
        /// The capacity checked against.
        capacity: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// Two ranges overlap.
    #[error("block ranges {a_offset}+{a_len} and {b_offset}+{b_len} overlap")]
    Overlap {
        /// First range start.
        a_offset: u64,
        /// First range length.
        a_len: u64,
        /// Second range start.
        b_offset: u64,
        /// Second range length.
        b_len: u64,
    },
    /// The list was made for a volume of another size.
    #[error("the block list is for a volume of {list} bytes, but the volume has {volume} bytes")]
    CapacityMismatch {
        /// What the list says.
        list: u64,
        /// What the volume has.
        volume: u64,
    },
}

/// Most ranges a list may hold (a 64 TiB volume in 4 KiB blocks, every other one changed,
/// is 8 Gi ranges; this cap keeps a hostile list from exhausting memory before validation).
pub(crate) const MAX_RANGES: usize = 1 << 28;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsiResponse {
    #[serde(default, alias = "blockMetadataType")]
    block_metadata_type: Option<MetadataType>,
    #[serde(alias = "volumeCapacityBytes", deserialize_with = "de_u64")]
    volume_capacity_bytes: u64,
    #[serde(default, alias = "blockMetadata")]
    block_metadata: Vec<CsiBlock>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsiBlock {
    #[serde(alias = "byteOffset", deserialize_with = "de_u64")]
    byte_offset: u64,
    #[serde(alias = "sizeBytes", deserialize_with = "de_u64")]
    size_bytes: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MetadataType {
    Unknown,
    Fixed,
    Variable,
}

impl<'de> Deserialize<'de> for MetadataType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(0) => Ok(Self::Unknown),
            Raw::N(1) => Ok(Self::Fixed),
            Raw::N(2) => Ok(Self::Variable),
            Raw::S(s) if s == "UNKNOWN" => Ok(Self::Unknown),
            Raw::S(s) if s == "FIXED_LENGTH" => Ok(Self::Fixed),
            Raw::S(s) if s == "VARIABLE_LENGTH" => Ok(Self::Variable),
            _ => Err(de::Error::custom(
                "block_metadata_type must be FIXED_LENGTH or VARIABLE_LENGTH",
            )),
        }
    }
}

/// A u64 written as a JSON number or, as protobuf JSON writes 64-bit integers, a string.
fn de_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) => Ok(n),
        Raw::S(s) => s
            .parse()
            .map_err(|_| de::Error::custom(format!("{s:?} is not a non-negative integer"))),
    }
}

impl BlockList {
    /// Parses CSI JSON (one response, an array, or a sequence of responses) or plain
    /// `offset,length` lines.
    ///
    /// # Errors
    /// [`BlockListError::Syntax`] for malformed input, [`BlockListError::Inconsistent`] for
    /// fixed-length tuples of varying size or responses that disagree on the capacity.
    pub fn parse(bytes: &[u8]) -> Result<Self, BlockListError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => Ok(Self::default()),
            Some(b'{' | b'[') => Self::parse_json(bytes),
            Some(_) => Self::parse_lines(bytes),
        }
    }

    fn parse_json(bytes: &[u8]) -> Result<Self, BlockListError> {
        let syntax = |e: serde_json::Error| BlockListError::Syntax(format!("JSON: {e}"));
        let mut responses = Vec::new();
        for value in serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>() {
            match value.map_err(syntax)? {
                serde_json::Value::Array(items) => {
                    for item in items {
                        responses.push(CsiResponse::deserialize(item).map_err(syntax)?);
                    }
                }
                v => responses.push(CsiResponse::deserialize(v).map_err(syntax)?),
            }
        }
        let mut list = Self::default();
        for (n, r) in responses.into_iter().enumerate() {
            match list.capacity {
                Some(c) if c != r.volume_capacity_bytes => {
                    return Err(BlockListError::Inconsistent(format!(
                        "response {} says the capacity is {} bytes, an earlier one {c}",
                        n + 1,
                        r.volume_capacity_bytes
                    )));
                }
                _ => list.capacity = Some(r.volume_capacity_bytes),
            }
            if r.block_metadata_type == Some(MetadataType::Fixed)
                && let Some(first) = r.block_metadata.first()
                && let Some(odd) = r
                    .block_metadata
                    .iter()
                    .find(|b| b.size_bytes != first.size_bytes)
            {
                return Err(BlockListError::Inconsistent(format!(
                    "FIXED_LENGTH blocks of {} and {} bytes in response {}",
                    first.size_bytes,
                    odd.size_bytes,
                    n + 1
                )));
            }
            if list.ranges.len() + r.block_metadata.len() > MAX_RANGES {
                return Err(BlockListError::Syntax(format!(
                    "more than {MAX_RANGES} ranges"
                )));
            }
            list.ranges
                .extend(r.block_metadata.iter().map(|b| BlockRange {
                    offset: b.byte_offset,
                    len: b.size_bytes,
                }));
        }
        Ok(list)
    }

    fn parse_lines(bytes: &[u8]) -> Result<Self, BlockListError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| BlockListError::Syntax(format!("not UTF-8 text: {e}")))?;
        let mut list = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || {
                BlockListError::Syntax(format!(
                    "line {}: expected `offset,length` (decimal bytes), found {line:?}",
                    n + 1
                ))
            };
            let (o, l) = line.split_once(',').ok_or_else(bad)?;
            let offset = o.trim().parse().map_err(|_| bad())?;
            let len = l.trim().parse().map_err(|_| bad())?;
            if list.ranges.len() >= MAX_RANGES {
                return Err(BlockListError::Syntax(format!(
                    "more than {MAX_RANGES} ranges"
                )));
            }
            list.ranges.push(BlockRange { offset, len });
        }
        Ok(list)
    }

    /// Checks the list against a volume of `capacity` bytes and returns its ranges sorted
    /// by offset, with touching ranges merged. The input need not be sorted.
    ///
    /// # Errors
    /// [`BlockListError::CapacityMismatch`] if the list names another capacity;
    /// [`BlockListError::OutOfRange`] for an empty range or one past the end;
    /// [`BlockListError::Overlap`] for overlapping ranges (a sign of a damaged list).
    pub fn normalize(&self, capacity: u64) -> Result<Vec<BlockRange>, BlockListError> {
        if let Some(list) = self.capacity
            && list != capacity
        {
            return Err(BlockListError::CapacityMismatch {
                list,
                volume: capacity,
            });
        }
        let mut sorted = self.ranges.clone();
        for r in &sorted {
            let why = if r.len == 0 {
                Some("empty")
            } else if r.offset.checked_add(r.len).is_none_or(|e| e > capacity) {
                Some("past the end of the volume")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(BlockListError::OutOfRange {
                    offset: r.offset,
                    len: r.len,
                    capacity,
                    why,
                });
            }
        }
        sorted.sort_unstable();
        let mut out: Vec<BlockRange> = Vec::with_capacity(sorted.len());
        for r in sorted {
            match out.last_mut() {
                Some(last) if r.offset < last.end() => {
                    return Err(BlockListError::Overlap {
                        a_offset: last.offset,
                        a_len: last.len,
                        b_offset: r.offset,
                        b_len: r.len,
                    });
                }
                Some(last) if r.offset == last.end() => last.len += r.len,
                _ => out.push(r),
            }
        }
        Ok(out)
    }

    /// Encodes as plain `offset,length` lines (the capacity as a `#` comment).
    pub fn to_lines(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        if let Some(c) = self.capacity {
            let _ = writeln!(s, "# capacity {c}");
        }
        for r in &self.ranges {
            let _ = writeln!(s, "{},{}", r.offset, r.len);
        }
        s
    }
}
