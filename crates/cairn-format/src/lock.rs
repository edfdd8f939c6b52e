//! Lock files: who is using the repository, refreshed while they do.

use serde::{Deserialize, Serialize};

use crate::FormatError;
use crate::versioned::{decode_json, encode_json};

/// `locks/<id>`, sealed JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Lock version (1).
    pub version: u32,
    /// Exclusive (prune, key removal) or shared (backup, restore, check).
    pub exclusive: bool,
    /// Host holding the lock.
    pub hostname: String,
    /// Process id on that host.
    pub pid: u32,
    /// What the holder is doing (`backup`, `prune` …).
    pub operation: String,
    /// When the lock was taken.
    pub created: jiff::Timestamp,
    /// When the holder last proved it is alive; a lock not refreshed for the stale timeout is
    /// ignored.
    pub refreshed: jiff::Timestamp,
}

impl Lock {
    /// Newest lock version.
    pub const VERSION: u32 = 1;

    /// Encodes as JSON.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode_json("lock", self)
    }

    /// Parses a lock.
    ///
    /// # Errors
    /// Malformed JSON or unsupported version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        decode_json("lock", Self::VERSION, bytes, |l: &Self| l.version)
    }
}
