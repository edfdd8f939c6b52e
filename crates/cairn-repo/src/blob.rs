//! Blob encoding: compress (when it pays), seal, and the reverse with verification.

use std::cell::RefCell;

use cairn_crypto::MasterKey;
use cairn_format::{BlobCodec, BlobKind, Id, blob_aad, decode_blob_payload_header};

use crate::{Error, Result};

/// Largest plaintext a blob may decompress to (the largest chunk is 16 MiB; trees are bounded
/// by directory size, checked separately).
const MAX_RAW: usize = 256 * 1024 * 1024;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn compress(level: i32, data: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(l, _)| *l != level) {
            *c = zstd::bulk::Compressor::new(level).ok().map(|z| (level, z));
        }
        let (_, z) = c.as_mut()?;
        z.compress_to_buffer(data, out).ok()
    })
}

/// True if a sample suggests the data does not compress (random, already compressed).
fn looks_incompressible(level: i32, data: &[u8]) -> bool {
    const SAMPLE: usize = 8192;
    if data.len() < 4 * SAMPLE {
        return false;
    }
    let mid = data.len() / 2;
    let sample = &data[mid - SAMPLE / 2..mid + SAMPLE / 2];
    let mut buf = Vec::with_capacity(zstd::zstd_safe::compress_bound(SAMPLE));
    match compress(level, sample, &mut buf) {
        Some(n) => n * 100 > SAMPLE * 92,
        None => true,
    }
}

/// Encodes a blob: `codec ‖ body`, sealed with associated data binding kind and id, appended
/// to `out`. Returns the plaintext payload length that was sealed.
pub(crate) fn encode_blob(
    key: &MasterKey,
    level: i32,
    kind: BlobKind,
    id: &Id,
    plain: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let mut payload = Vec::new();
    let compressed = level != 0 && !looks_incompressible(level, plain) && {
        payload.reserve(zstd::zstd_safe::compress_bound(plain.len()) + 1);
        payload.push(BlobCodec::Zstd.as_byte());
        let mut body = Vec::with_capacity(zstd::zstd_safe::compress_bound(plain.len()));
        match compress(level, plain, &mut body) {
            // Keep the compressed form only if it saves at least 3%.
            Some(n) if n * 100 < plain.len() * 97 => {
                payload.extend_from_slice(&body);
                true
            }
            _ => false,
        }
    };
    if !compressed {
        payload.clear();
        payload.reserve(plain.len() + 1);
        payload.push(BlobCodec::Raw.as_byte());
        payload.extend_from_slice(plain);
    }
    cairn_crypto::seal_into(key, &blob_aad(kind, id), &payload, out)
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Decodes a sealed blob and verifies that its plaintext hashes to `id`.
///
/// # Errors
/// `Error::Corrupt` naming the blob if authentication, decompression or the id check fails.
pub(crate) fn decode_blob(
    key: &MasterKey,
    kind: BlobKind,
    id: &Id,
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let what = || format!("{kind:?} blob {}", id.short());
    let payload = cairn_crypto::open(key, &blob_aad(kind, id), sealed)
        .map_err(|e| Error::corrupt(what(), e))?;
    let (codec, body) =
        decode_blob_payload_header(&payload).map_err(|e| Error::corrupt(what(), e))?;
    let plain = match codec {
        BlobCodec::Zstd => {
            let size = zstd::zstd_safe::get_frame_content_size(body)
                .ok()
                .flatten()
                .filter(|&s| s as usize <= MAX_RAW)
                .ok_or_else(|| Error::corrupt(what(), "bad zstd frame size"))?;
            let mut out = Vec::with_capacity(size as usize);
            DECOMPRESSOR.with(|d| {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = zstd::bulk::Decompressor::new().ok();
                }
                let z = d
                    .as_mut()
                    .ok_or_else(|| Error::Internal("zstd decompressor".into()))?;
                z.decompress_to_buffer(body, &mut out)
                    .map_err(|e| Error::corrupt(what(), e))
            })?;
            out
        }
        BlobCodec::Raw => {
            // Drop the codec byte in place (no second allocation of a chunk-sized buffer).
            let mut payload = payload;
            payload.copy_within(1.., 0);
            payload.truncate(payload.len() - 1);
            payload
        }
        _ => return Err(Error::corrupt(what(), "unknown codec")),
    };
    if key.blob_id(&plain) != id.0 {
        return Err(Error::corrupt(what(), "content does not match its id"));
    }
    Ok(plain)
}

/// The keyed id of a blob's plaintext.
pub(crate) fn blob_id(key: &MasterKey, plain: &[u8]) -> Id {
    Id(key.blob_id(plain))
}
