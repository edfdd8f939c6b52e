//! Index files: which blobs live in which packs, where.

use serde::{Deserialize, Serialize};

use crate::versioned::{decode, encode};
use crate::{FormatError, Id, PackBlob};

/// One pack and its blobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPack {
    /// The pack's id (BLAKE3 of its bytes).
    pub id: Id,
    /// Its size in bytes.
    pub size: u64,
    /// Its blobs.
    pub blobs: Vec<PackBlob>,
}

/// `index/<id>`, sealed: written after the packs it lists are durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IndexFile {
    /// Packs described.
    pub packs: Vec<IndexPack>,
    /// Index files this one replaces (written by prune and repair; the superseded ones are
    /// deleted after this one is durable).
    pub supersedes: Vec<Id>,
}

impl IndexFile {
    const VERSION: u8 = 1;

    /// Encodes the plaintext.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode("index", Self::VERSION, self)
    }

    /// Parses the plaintext.
    ///
    /// # Errors
    /// Malformed bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        decode("index", Self::VERSION, bytes)
    }
}
