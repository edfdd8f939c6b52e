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
        let first = (w * WINDOW_CHUNKS) as u64;
        let at = format!("volume offset {}", t.start + first * t.chunk_size);
        let (ids, sealed) = fetch_window(repo, index, chunks.iter(), &at).await?;
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

/// Fetches the blobs of `chunks` (sealed, in the order of the returned ids).
async fn fetch_window<'a>(
    repo: &Repository,
    index: &crate::Index,
    chunks: impl Iterator<Item = &'a VolChunk>,
    at: &str,
) -> Result<(Vec<Id>, Vec<Bytes>)> {
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
    ids.sort_unstable();
    ids.dedup();
    let locs: Vec<BlobLocation> = ids
        .iter()
        .map(|id| {
            index.get(id).ok_or_else(|| {
                Error::corrupt(format!("blob {}", id.short()), "missing from the index")
            })
        })
        .collect::<Result<_>>()
        .map_err(|e| e.within(at))?;
    let sealed = fetch_coalesced(repo, &locs)
        .await
        .map_err(|e| e.within(at))?;
    Ok((ids, sealed))
}

/// The content of one chunk of `clen` bytes at volume offset `off` (`None`: zeros), from its
/// fetched blobs.
fn assemble(
    key: &cairn_crypto::MasterKey,
    blobs: &HashMap<Id, &Bytes>,
    c: &VolChunk,
    clen: usize,
    off: u64,
) -> Result<Option<Vec<u8>>> {
    let open = |id: &Id| -> Result<Vec<u8>> {
        let s = blobs
            .get(id)
            .ok_or_else(|| Error::Internal("blob not fetched".into()))?;
        decode_blob(key, BlobKind::Data, id, s)
            .map_err(|e| e.within(format!("volume offset {off}")))
    };
    let data = match c {
        VolChunk::Zero => return Ok(None),
        VolChunk::Data(id) => open(id)?,
        VolChunk::Patched { base, patches } => {
            let mut d = match base {
                Some(b) => open(b)?,
                None => vec![0u8; clen],
            };
            for p in patches {
                let pd = open(&p.id)?;
                let s = p.offset as usize;
                if pd.len() != p.len as usize || s + pd.len() > d.len() {
                    return Err(Error::corrupt(
                        format!("volume chunk at {off}"),
                        "patch does not fit the chunk",
                    ));
                }
                d[s..s + pd.len()].copy_from_slice(&pd);
            }
            d
        }
    };
    if data.len() != clen {
        return Err(Error::corrupt(
            format!("volume chunk at {off}"),
            "wrong length",
        ));
    }
    Ok(Some(data))
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
        outcome.errors = verify_target(repo, map, target, progress.clone(), &cancel).await?;
    }
    progress.finish();
    Ok(outcome)
}

/// Writes `leaf.chunks`: the chunks of the target leaf from index `first` on. Returns the
/// bytes written (holes left in a file not counted).
fn write_leaf(
    key: &cairn_crypto::MasterKey,
    leaf: &VolumeLeaf,
    first: u64,
    ids: &[Id],
    sealed: &[Bytes],
    t: &LeafTarget,
) -> Result<u64> {
    let blobs: HashMap<Id, &Bytes> = ids.iter().copied().zip(sealed).collect();
    let (start, len, cs) = (t.start, t.len, t.chunk_size);
    let zeros = t.device.then(|| Bytes::from(vec![0u8; cs as usize]));
    let mut out = RunWriter::new(&t.file, t.device);
    for (i, c) in leaf.chunks.iter().enumerate() {
        let off = start + (first + i as u64) * cs;
        let clen = cs.min(start + len - off) as usize;
        match assemble(key, &blobs, c, clen, off)? {
            Some(d) => out.put(off, Bytes::from(d))?,
            // A zero chunk stays a hole in a (fresh) file; a device gets the zeros.
            None => {
                if let Some(z) = &zeros {
                    out.put(off, z.slice(..clen))?;
                }
            }
        }
    }
    let w = out.finish()?;
    // Start writing the window back now rather than all at the final fsync, so the disk
    // works while later windows decode (and the restore does not fill the page cache).
    // Advice only: a failure changes nothing but timing.
    let ws = start + first * cs;
    let wl = (leaf.chunks.len() as u64 * cs).min(start + len - ws);
    let _ = rustix::fs::fadvise(
        &*t.file,
        ws,
        std::num::NonZeroU64::new(wl),
        rustix::fs::Advice::DontNeed,
    );
    Ok(w)
}

/// The granule of holes in a restored file: a 4 KiB block of zeros inside a chunk is left
/// unwritten, as the file systems Cairn restores onto allocate in blocks of this size.
const HOLE_BLOCK: usize = 4096;
/// Slices joined into one `pwritev` at most (Linux's `IOV_MAX`).
const MAX_IOV: usize = 1024;
/// Bytes queued for one `pwritev` at most (bounds the memory a window holds).
const MAX_RUN: u64 = 1024 * 1024;

/// Writes a window's chunks in as few system calls as their layout allows: adjacent data is
/// joined into one `pwritev` (up to 1 MiB and 1024 pieces); into a (fresh, sparse) file,
/// all-zero 4 KiB blocks are left out so holes stay holes; into a device, everything is
/// written.
struct RunWriter<'a> {
    file: &'a std::fs::File,
    device: bool,
    /// Adjacent pieces not yet written, the first at `at`.
    pending: Vec<Bytes>,
    at: u64,
    end: u64,
    written: u64,
}

impl<'a> RunWriter<'a> {
    fn new(file: &'a std::fs::File, device: bool) -> Self {
        Self {
            file,
            device,
            pending: Vec::new(),
            at: 0,
            end: 0,
            written: 0,
        }
    }

    /// Queues `data` for volume offset `off` (offsets must increase).
    fn put(&mut self, off: u64, data: Bytes) -> Result<()> {
        if self.device {
            return self.push(off, data);
        }
        // Runs of blocks that are not all zero.
        let mut run: Option<usize> = None;
        for (b, block) in data.chunks(HOLE_BLOCK).enumerate() {
            let s = b * HOLE_BLOCK;
            match (is_zero(block), run) {
                (false, None) => run = Some(s),
                (true, Some(r)) => {
                    self.push(off + r as u64, data.slice(r..s))?;
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(r) = run {
            self.push(off + r as u64, data.slice(r..))?;
        }
        Ok(())
    }

    fn push(&mut self, off: u64, piece: Bytes) -> Result<()> {
        if !self.pending.is_empty()
            && (off != self.end || self.pending.len() == MAX_IOV || self.end - self.at >= MAX_RUN)
        {
            self.flush()?;
        }
        if self.pending.is_empty() {
            self.at = off;
            self.end = off;
        }
        self.end += piece.len() as u64;
        self.pending.push(piece);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let mut slices: Vec<std::io::IoSlice<'_>> = self
            .pending
            .iter()
            .map(|b| std::io::IoSlice::new(b))
            .collect();
        let mut bufs = &mut slices[..];
        let mut at = self.at;
        while !bufs.is_empty() {
            let n = match rustix::io::pwritev(self.file, bufs, at) {
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::io("write", "volume target", e.into())),
            };
            if n == 0 {
                return Err(Error::io(
                    "write",
                    "volume target",
                    std::io::ErrorKind::WriteZero.into(),
                ));
            }
            at += n as u64;
            std::io::IoSlice::advance_slices(&mut bufs, n);
        }
        self.written += self.end - self.at;
        self.pending.clear();
        Ok(())
    }

    /// Writes what is queued; returns the bytes written in all.
    fn finish(mut self) -> Result<u64> {
        if !self.pending.is_empty() {
            self.flush()?;
        }
        Ok(self.written)
    }
}

/// Compares the volume at `target` (a file or block device, e.g. the backed-up source
/// itself) with a volume snapshot, without writing: data chunks by keyed hash, zero chunks
/// by content, patched chunks against their assembled content. Returns one message per
/// differing chunk; empty means identical.
///
/// # Errors
/// `InvalidInput` for a snapshot that is not of a volume or a target smaller than it; I/O
/// errors reading the target; storage errors and `Corrupt` for the snapshot's blobs.
pub async fn verify_volume(
    repo: &Arc<Repository>,
    snap: &cairn_format::Snapshot,
    target: &Path,
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<Vec<String>> {
    let cairn_format::Root::Volume(map) = &snap.root else {
        return Err(Error::InvalidInput(
            "only volume snapshots can be verified against a device or image".into(),
        ));
    };
    let f = std::fs::File::open(target).map_err(|e| Error::io("open", target, e))?;
    let size = crate::volume::volume_size(&f, target)?;
    if size < map.capacity {
        return Err(Error::InvalidInput(format!(
            "{} has {size} bytes; the volume snapshot has {}",
            target.display(),
            map.capacity
        )));
    }
    let mut problems = verify_target(repo, map, target, progress.clone(), &cancel).await?;
    if size > map.capacity {
        problems.push(format!(
            "{} is larger than the snapshot ({size} > {} bytes); the bytes past {} were not compared",
            target.display(),
            map.capacity,
            map.capacity
        ));
    }
    progress.finish();
    Ok(problems)
}

/// Re-reads a volume and compares every chunk with the map. Returns one message per
/// mismatching chunk.
async fn verify_target(
    repo: &Arc<Repository>,
    map: &VolumeMap,
    target: &Path,
    progress: DynProgress,
    cancel: &CancellationToken,
) -> Result<Vec<String>> {
    let file = Arc::new(std::fs::File::open(target).map_err(|e| Error::io("open", target, e))?);
    let regular = file
        .metadata()
        .map_err(|e| Error::io("stat", target, e))?
        .is_file();
    let leaves = leaf_ids(repo, map).await?;
    let index = repo.index().await?;
    let cs = u64::from(map.chunk_size);
    let span = cs * u64::from(map.leaf_chunks);
    progress.start("verify", Some(map.capacity), None);
    let mut problems = Vec::new();
    for (i, lid) in leaves.into_iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        let start = i as u64 * span;
        let len = span.min(map.capacity - start);
        // An all-zero leaf over a hole of a file: nothing to read.
        if lid.is_none() && regular && crate::volume::hole_until(&file, start) >= start + len {
            progress.add_bytes(len);
            continue;
        }
        let leaf = load_leaf(repo, lid, len.div_ceil(cs) as usize).await?;
        for (w, chunks) in leaf.chunks.chunks(WINDOW_CHUNKS).enumerate() {
            let wstart = start + (w * WINDOW_CHUNKS) as u64 * cs;
            let wlen = (chunks.len() as u64 * cs).min(start + len - wstart);
            let at = format!("volume offset {wstart}");
            let patched = chunks
                .iter()
                .filter(|c| matches!(c, VolChunk::Patched { .. }));
            let (ids, sealed) = fetch_window(repo, &index, patched, &at).await?;
            let (file, key, path) = (file.clone(), repo.key().clone(), target.to_path_buf());
            let chunks = chunks.to_vec();
            let p = cpu(move || -> Result<Vec<String>> {
                let blobs: HashMap<Id, &Bytes> = ids.iter().copied().zip(&sealed).collect();
                let mut buf = vec![0u8; cs as usize];
                let mut out = Vec::new();
                for (j, c) in chunks.iter().enumerate() {
                    let off = wstart + j as u64 * cs;
                    let clen = cs.min(wstart + wlen - off);
                    // A zero chunk over a hole of a file: nothing to read.
                    if *c == VolChunk::Zero
                        && regular
                        && crate::volume::hole_until(&file, off) >= off + clen
                    {
                        continue;
                    }
                    let data = &mut buf[..clen as usize];
                    file.read_exact_at(data, off)
                        .map_err(|e| Error::io("read", &path, e))?;
                    let data = &*data;
                    let ok = match c {
                        VolChunk::Zero => is_zero(data),
                        VolChunk::Data(id) => key.blob_id(data) == id.0,
                        VolChunk::Patched { .. } => {
                            match assemble(&key, &blobs, c, data.len(), off)? {
                                Some(expect) => expect == data,
                                None => is_zero(data),
                            }
                        }
                    };
                    if !ok {
                        out.push(format!("chunk at offset {off} differs from the snapshot"));
                    }
                }
                Ok(out)
            })
            .await??;
            problems.extend(p);
        }
        progress.add_bytes(len);
    }
    Ok(problems)
}
