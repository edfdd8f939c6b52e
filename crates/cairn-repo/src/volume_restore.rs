//! Restoring volumes to a file or block device: leaves in parallel, blobs fetched in
//! coalesced reads, holes left as holes in files (zeros written to devices), then fsync and an
//! optional verification pass.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cairn_format::{BlobKind, Id, VolChunk, VolumeLeaf, VolumeMap};
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::blob::decode_blob;
use crate::index::BlobLocation;
use crate::progress::DynProgress;
use crate::reader::fetch_coalesced;
use crate::restore::{RestoreOptions, RestoreOutcome};
use crate::volume::{leaf_ids, load_leaf};
use crate::worker::{cpu, is_zero};
use crate::{Error, Repository, Result};

/// Opens (or creates, sized and sparse) the target; refuses a smaller device, a directory, or
/// a non-empty target without `overwrite`. Returns the file and whether it is a device.
fn open_target(target: &Path, capacity: u64, overwrite: bool) -> Result<(std::fs::File, bool)> {
    let existing = std::fs::metadata(target).ok();
    let device = existing
        .as_ref()
        .is_some_and(|m| m.file_type().is_block_device());
    if existing.as_ref().is_some_and(std::fs::Metadata::is_dir) {
        return Err(Error::InvalidInput(format!(
            "target {} is a directory; a volume restores to a file or block device",
            target.display()
        )));
    }
    if device {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .open(target)
            .map_err(|e| Error::io("open", target, e))?;
        let size = crate::volume::volume_size(&f, target)?;
        if size < capacity {
            return Err(Error::InvalidInput(format!(
                "device {} has {size} bytes; the volume needs {capacity}",
                target.display()
            )));
        }
        if !overwrite {
            return Err(Error::TargetNotEmpty(target.to_path_buf()));
        }
        return Ok((f, true));
    }
    if existing.as_ref().is_some_and(|m| m.len() > 0) && !overwrite {
        return Err(Error::TargetNotEmpty(target.to_path_buf()));
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create(true)
        .truncate(true)
        .open(target)
        .map_err(|e| Error::io("create", target, e))?;
    f.set_len(capacity)
        .map_err(|e| Error::io("size", target, e))?;
    f.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("seek", target, e))?;
    f.flush().map_err(|e| Error::io("write", target, e))?;
    Ok((f, false))
}

/// Where one leaf goes in the target.
struct LeafTarget {
    file: Arc<std::fs::File>,
    device: bool,
    start: u64,
    len: u64,
    chunk_size: u64,
}

/// Chunks of a leaf fetched and written at once (16 MiB at the default chunk size): bounds
/// memory to a few windows however large the leaf.
const WINDOW_CHUNKS: usize = 256;

/// Fetches a leaf's blobs in coalesced reads, window by window, and writes its chunks.
async fn restore_leaf(
    repo: &Repository,
    index: &crate::Index,
    lid: Option<Id>,
    t: LeafTarget,
) -> Result<u64> {
    let n = t.len.div_ceil(t.chunk_size) as usize;
    let leaf = load_leaf(repo, lid, n).await?;
    let t = Arc::new(t);
    let mut written = 0;
    for (w, chunks) in leaf.chunks.chunks(WINDOW_CHUNKS).enumerate() {
        let mut ids: Vec<Id> = Vec::new();
        for c in chunks {
            match c {
                VolChunk::Data(id) => ids.push(*id),
                VolChunk::Patched { base, patches } => {
                    ids.extend(base.iter().copied());
                    ids.extend(patches.iter().map(|p| p.id));
                }
                VolChunk::Zero => {}
            }
        }
        let first = (w * WINDOW_CHUNKS) as u64;
        let at = format!("volume offset {}", t.start + first * t.chunk_size);
        let locs: Vec<BlobLocation> = ids
            .iter()
            .map(|id| {
                index.get(id).ok_or_else(|| {
                    Error::corrupt(format!("blob {}", id.short()), "missing from the index")
                })
            })
            .collect::<Result<_>>()
            .map_err(|e| e.within(&at))?;
        let sealed = fetch_coalesced(repo, &locs)
            .await
            .map_err(|e| e.within(&at))?;
        let (key, t2, window) = (
            repo.key().clone(),
            t.clone(),
            VolumeLeaf {
                chunks: chunks.to_vec(),
            },
        );
        written += cpu(move || write_leaf(&key, &window, first, &ids, &sealed, &t2)).await??;
    }
    Ok(written)
}

/// Restores a volume snapshot to `target`.
pub(crate) async fn restore_volume(
    repo: &Arc<Repository>,
    map: &VolumeMap,
    target: &Path,
    opts: &RestoreOptions,
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<RestoreOutcome> {
    let (file, device) = open_target(target, map.capacity, opts.overwrite)?;
    progress.start("restore", Some(map.capacity), None);
    let file = Arc::new(file);
    let leaves = leaf_ids(repo, map).await?;
    let index = repo.index().await?;
    let cs = u64::from(map.chunk_size);
    let leaf_span = cs * u64::from(map.leaf_chunks);
    let written: u64 = futures::stream::iter(leaves.into_iter().enumerate())
        .map(|(i, lid)| {
            let (repo, index, progress, cancel) = (
                repo.clone(),
                index.clone(),
                progress.clone(),
                cancel.clone(),
            );
            let start = i as u64 * leaf_span;
            let t = LeafTarget {
                file: file.clone(),
                device,
                start,
                len: leaf_span.min(map.capacity - start),
                chunk_size: cs,
            };
            async move {
                if cancel.is_cancelled() {
                    return Err(Error::Interrupted);
                }
                let len = t.len;
                let w = restore_leaf(&repo, &index, lid, t).await?;
                progress.add_bytes(len);
                Ok(w)
            }
        })
        .buffered(opts.concurrency.max(1))
        .try_fold(0u64, |a, n| futures::future::ready(Ok(a + n)))
        .await?;
    let (f2, t2) = (file.clone(), target.to_path_buf());
    cpu(move || f2.sync_all().map_err(|e| Error::io("sync", t2, e))).await??;
    let mut outcome = RestoreOutcome {
        files: 1,
        bytes: written,
        ..RestoreOutcome::default()
    };
    if opts.verify {
        outcome.errors = crate::volume::verify_target(repo, map, target, progress.clone()).await?;
    }
    progress.finish();
    Ok(outcome)
}

/// Writes `leaf.chunks`: the chunks of the target leaf from index `first` on.
fn write_leaf(
    key: &cairn_crypto::MasterKey,
    leaf: &VolumeLeaf,
    first: u64,
    ids: &[Id],
    sealed: &[Bytes],
    t: &LeafTarget,
) -> Result<u64> {
    let mut blobs: HashMap<Id, &Bytes> = HashMap::new();
    for (id, s) in ids.iter().zip(sealed) {
        blobs.insert(*id, s);
    }
    let open = |id: &Id, off: u64| -> Result<Vec<u8>> {
        let s = blobs
            .get(id)
            .ok_or_else(|| Error::Internal("blob not fetched".into()))?;
        decode_blob(key, BlobKind::Data, id, s)
            .map_err(|e| e.within(format!("volume offset {off}")))
    };
    let (file, start, len, cs, device) = (&t.file, t.start, t.len, t.chunk_size, t.device);
    let zeros = vec![0u8; cs as usize];
    let mut written = 0;
    for (i, c) in leaf.chunks.iter().enumerate() {
        let off = start + (first + i as u64) * cs;
        let clen = cs.min(start + len - off) as usize;
        let data: Option<Vec<u8>> = match c {
            VolChunk::Zero => None,
            VolChunk::Data(id) => Some(open(id, off)?),
            VolChunk::Patched { base, patches } => {
                let mut d = match base {
                    Some(b) => open(b, off)?,
                    None => vec![0u8; clen],
                };
                for p in patches {
                    let pd = open(&p.id, off)?;
                    let s = p.offset as usize;
                    if pd.len() != p.len as usize || s + pd.len() > d.len() {
                        return Err(Error::corrupt(
                            format!("volume chunk at {off}"),
                            "patch does not fit the chunk",
                        ));
                    }
                    d[s..s + pd.len()].copy_from_slice(&pd);
                }
                Some(d)
            }
        };
        match data {
            Some(d) if d.len() != clen => {
                return Err(Error::corrupt(
                    format!("volume chunk at {off}"),
                    "wrong length",
                ));
            }
            Some(d) if !is_zero(&d) || device => {
                file.write_all_at(&d, off)
                    .map_err(|e| Error::io("write", "volume target", e))?;
                written += clen as u64;
            }
            None if device => file
                .write_all_at(&zeros[..clen], off)
                .map_err(|e| Error::io("write", "volume target", e))?,
            _ => {}
        }
    }
    Ok(written)
}
