//! Blobs: the unit of deduplication, stored sealed inside packs.
//!
//! A blob's sealed plaintext is `codec(1) ‖ body`, where the codec says whether the body is
//! zstd-compressed. The associated data of its envelope is `"cairn blob v1" ‖ kind ‖ id`, so a
//! blob cannot be passed off as another blob or another kind.

use serde::{Deserialize, Serialize};

use crate::{FormatError, Id};

/// What a blob holds. Data and metadata blobs go into separate packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum BlobKind {
    /// File, volume or stream content.
    Data,
    /// A directory listing ([`crate::Tree`]).
    Tree,
    /// A node of a volume map ([`crate::VolumeNode`]).
    VolumeMap,
}

impl BlobKind {
    /// The byte used in associated data.
    pub fn as_byte(self) -> u8 {
        match self {
            Self::Data => 0,
            Self::Tree => 1,
            Self::VolumeMap => 2,
        }
    }

    /// True for metadata blobs (kept in metadata packs).
    pub fn is_metadata(self) -> bool {
        !matches!(self, Self::Data)
    }
}

/// How a blob body is encoded inside its envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobCodec {
    /// Stored as is (incompressible data).
    Raw,
    /// zstd frame.
    Zstd,
}

impl BlobCodec {
    /// The leading byte.
    pub fn as_byte(self) -> u8 {
        match self {
            Self::Raw => 0,
            Self::Zstd => 1,
        }
    }
}

/// Splits a blob's plaintext into codec and body.
///
/// # Errors
/// Empty input or an unknown codec byte.
pub fn decode_blob_payload_header(plain: &[u8]) -> Result<(BlobCodec, &[u8]), FormatError> {
    let (&c, body) = plain
        .split_first()
        .ok_or(FormatError::Truncated("blob payload"))?;
    let codec = match c {
        0 => BlobCodec::Raw,
        1 => BlobCodec::Zstd,
        other => {
            return Err(FormatError::invalid(
                "blob payload",
                format!("unknown codec {other}"),
            ));
        }
    };
    Ok((codec, body))
}

/// Associated data for a blob envelope.
pub fn blob_aad(kind: BlobKind, id: &Id) -> [u8; 46] {
    let mut aad = [0u8; 46];
    aad[..13].copy_from_slice(b"cairn blob v1");
    aad[13] = kind.as_byte();
    aad[14..].copy_from_slice(&id.0);
    aad
}

/// Associated data for a standalone object envelope (`"cairn " ‖ kind ‖ " v1"`).
pub fn object_aad(kind: &str) -> Vec<u8> {
    format!("cairn {kind} v1").into_bytes()
}
