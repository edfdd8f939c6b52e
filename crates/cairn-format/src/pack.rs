//! Pack files: many sealed blobs in one object, with a sealed trailer that lists them.
//!
//! ```text
//! "CAIRNPK1" ‖ blob envelope … ‖ sealed trailer ‖ trailer length (u32 LE) ‖ "CPK1"
//! ```
//! The trailer lets `repair index` rebuild the index from packs alone.

use serde::{Deserialize, Serialize};

use crate::versioned::{decode, encode};
use crate::{BlobKind, FormatError, Id};

/// The first 8 bytes of every pack.
pub const PACK_HEADER: &[u8; 8] = b"CAIRNPK1";
const PACK_END: &[u8; 4] = b"CPK1";
/// Length of the fixed footer after the sealed trailer.
pub const PACK_FOOTER_LEN: usize = 8;
/// The shortest possible blob envelope: salt (16) ‖ codec byte ‖ tag (16).
pub(crate) const MIN_BLOB_ENVELOPE: u32 = 33;

/// One blob inside a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackBlob {
    /// Keyed id of the blob's plaintext.
    pub id: Id,
    /// Data or metadata.
    pub kind: BlobKind,
    /// Offset of the envelope from the start of the pack.
    pub offset: u32,
    /// Length of the envelope in bytes.
    pub length: u32,
    /// Length of the plaintext after decompression.
    pub raw_length: u32,
}

/// The sealed list at the end of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackTrailer {
    /// Blobs in file order.
    pub blobs: Vec<PackBlob>,
}

impl PackTrailer {
    const VERSION: u8 = 1;

    /// Encodes the trailer plaintext.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode("pack trailer", Self::VERSION, self)
    }

    /// Parses the trailer plaintext and checks that blobs are in file order, do not overlap,
    /// start after the header, lie within `data_end` (the offset where the sealed trailer
    /// starts) and are long enough to be an envelope.
    ///
    /// # Errors
    /// Malformed bytes or inconsistent offsets.
    pub fn from_bytes(bytes: &[u8], data_end: u64) -> Result<Self, FormatError> {
        let t: Self = decode("pack trailer", Self::VERSION, bytes)?;
        let mut end = PACK_HEADER.len() as u64;
        for b in &t.blobs {
            if b.length < MIN_BLOB_ENVELOPE {
                return Err(FormatError::invalid(
                    "pack trailer",
                    "blob shorter than an envelope",
                ));
            }
            if u64::from(b.offset) < end {
                return Err(FormatError::invalid(
                    "pack trailer",
                    "blobs overlap or are out of order",
                ));
            }
            end = u64::from(b.offset) + u64::from(b.length);
            if end > data_end {
                return Err(FormatError::invalid(
                    "pack trailer",
                    "blob extends past the data",
                ));
            }
        }
        Ok(t)
    }
}

/// The fixed footer for a sealed trailer of `len` bytes.
pub fn pack_footer(len: u32) -> [u8; PACK_FOOTER_LEN] {
    let mut f = [0u8; PACK_FOOTER_LEN];
    f[..4].copy_from_slice(&len.to_le_bytes());
    f[4..].copy_from_slice(PACK_END);
    f
}

/// Locates the sealed trailer in a pack of `pack_len` bytes from its last
/// [`PACK_FOOTER_LEN`] bytes: returns `(offset, length)` of the sealed trailer.
///
/// # Errors
/// A short footer, a bad end magic, or a length that does not fit the pack.
pub fn parse_pack_footer(footer: &[u8], pack_len: u64) -> Result<(u64, u32), FormatError> {
    if footer.len() != PACK_FOOTER_LEN {
        return Err(FormatError::Truncated("pack footer"));
    }
    if &footer[4..] != PACK_END {
        return Err(FormatError::BadMagic("pack footer"));
    }
    let mut l = [0u8; 4];
    l.copy_from_slice(&footer[..4]);
    let len = u32::from_le_bytes(l);
    let min = (PACK_HEADER.len() + PACK_FOOTER_LEN) as u64 + u64::from(len);
    if pack_len < min {
        return Err(FormatError::invalid(
            "pack footer",
            "trailer length exceeds the pack",
        ));
    }
    Ok((pack_len - PACK_FOOTER_LEN as u64 - u64::from(len), len))
}
