//! Index files: which blobs live in which packs, where.

use serde::{Deserialize, Serialize};

use crate::pack::MIN_BLOB_ENVELOPE;
use crate::versioned::{decode, encode};
use crate::{FormatError, Id, PACK_FOOTER_LEN, PACK_HEADER, PackBlob};

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

    /// Parses the plaintext and checks that every blob lies between the header and the
    /// footer of its pack.
    ///
    /// # Errors
    /// Malformed bytes or a blob outside its pack.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let f: Self = decode("index", Self::VERSION, bytes)?;
        for p in &f.packs {
            let data_end = p.size.saturating_sub(PACK_FOOTER_LEN as u64);
            for b in &p.blobs {
                let end = u64::from(b.offset) + u64::from(b.length);
                if b.length < MIN_BLOB_ENVELOPE
                    || u64::from(b.offset) < PACK_HEADER.len() as u64
                    || end > data_end
                {
                    return Err(FormatError::invalid(
                        "index",
                        format!("blob {} lies outside pack {}", b.id, p.id),
                    ));
                }
            }
        }
        Ok(f)
    }
}
