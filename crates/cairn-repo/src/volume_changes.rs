//! Volume backups that read only part of the volume: a changed-block list against the
//! parent snapshot (patched chunks), an allocated-block list for a first backup, and the list
//! computed by comparing two images.
//!
//! With a changed-block list, a leaf no listed range touches is the parent's leaf, reused by
//! id without being loaded; a chunk no range touches is the parent's chunk. A touched chunk
//! becomes [`VolChunk::Patched`]: the parent's base blob with the changed runs as small
//! patch blobs read from the device, so a 4 KiB write in a 64 KiB chunk stores ~4 KiB.
//!
//! Compaction: a chunk is read and stored whole instead when its patches would cover more
//! than [`COMPACT_DIVISOR`]⁻¹ of it or number more than [`MAX_PATCHES`], when the list
//! covers it entirely, or when the parent has no chunk of the same length there (resize).
//! Patches always lie over a whole base blob, never over another patched chunk: restoring
//! any chunk reads one base and at most a quarter chunk of patches, whatever the number of
//! incrementals before it.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_format::{BlobKind, BlockList, BlockRange, Id, VolChunk, VolumeLeaf, VolumePatch};
use rayon::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::blob::blob_id;
use crate::worker::{is_zero, ship_blocking};
use crate::writer::{BlobWriter, PackSender};
use crate::{Error, Repository, Result};

/// Patches may cover at most `1 / COMPACT_DIVISOR` of a chunk; past that it is stored whole.
pub const COMPACT_DIVISOR: u64 = 4;
/// Most patches on one chunk; past that it is stored whole.
pub const MAX_PATCHES: usize = 16;

/// Which parts of a volume a backup reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockSelection {
    /// Only these ranges changed since the parent snapshot of the same source; everything
    /// else is taken from the parent.
    Changed(BlockList),
    /// Only these ranges hold data; everything else is zeros (a first backup).
    Allocated(BlockList),
    /// Compute the changed ranges by comparing the volume with this older image of it.
    SinceImage(PathBuf),
}

/// What the backup will read, after the selection was checked.
#[derive(Debug, Clone)]
pub(crate) enum Reads {
    /// Everything (holes a file reports are skipped).
    Full,
    /// Only chunks touching these ranges; the rest is zeros.
    Allocated(Vec<BlockRange>),
    /// Only these ranges; the rest from the parent.
    Changed(Vec<BlockRange>),
}

/// The ranges among sorted, disjoint `ranges` that touch `[start, end)`.
pub(crate) fn touching(ranges: &[BlockRange], start: u64, end: u64) -> &[BlockRange] {
    let a = ranges.partition_point(|r| r.end() <= start);
    let b = a + ranges[a..].partition_point(|r| r.offset < end);
    &ranges[a..b]
}

/// Compares two images 4 KiB block by block and lists the blocks of `new` that differ from
/// `old` (or lie past its end), merged into runs, with `new`'s capacity.
///
/// # Errors
/// I/O errors on either image.
pub fn diff_images(old: &Path, new: &Path, cancel: &CancellationToken) -> Result<BlockList> {
    const BLOCK: usize = 4096;
    const PIECE: usize = 4 << 20;
    let fo = std::fs::File::open(old).map_err(|e| Error::io("open", old, e))?;
    let fnew = std::fs::File::open(new).map_err(|e| Error::io("open", new, e))?;
    let old_len = crate::volume::volume_size(&fo, old)?;
    let cap = crate::volume::volume_size(&fnew, new)?;
    let common = old_len.min(cap);
    let mut list = BlockList {
        capacity: Some(cap),
        ranges: Vec::new(),
    };
    let mut push = |offset: u64, len: u64| match list.ranges.last_mut() {
        Some(prev) if prev.end() == offset => prev.len += len,
        _ => list.ranges.push(BlockRange { offset, len }),
    };
    let (mut a, mut b) = (vec![0u8; PIECE], vec![0u8; PIECE]);
    let mut pos = 0u64;
    while pos < common {
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        // Skip what is a hole in both (files only; devices report no holes).
        let data = crate::volume::hole_until(&fo, pos).min(crate::volume::hole_until(&fnew, pos));
        if data > pos {
            pos = (data.min(common) / BLOCK as u64 * BLOCK as u64).max(pos);
            if data >= common {
                break;
            }
        }
        let n = (PIECE as u64).min(common - pos) as usize;
        fo.read_exact_at(&mut a[..n], pos)
            .map_err(|e| Error::io("read", old, e))?;
        fnew.read_exact_at(&mut b[..n], pos)
            .map_err(|e| Error::io("read", new, e))?;
        for (i, (x, y)) in a[..n].chunks(BLOCK).zip(b[..n].chunks(BLOCK)).enumerate() {
            if x != y {
                push(pos + (i * BLOCK) as u64, y.len() as u64);
            }
        }
        pos += n as u64;
    }
    if cap > common {
        push(common, cap - common);
    }
    Ok(list)
}

/// One leaf of a changed-block backup.
pub(crate) struct ChangedLeaf {
    pub(crate) file: Arc<std::fs::File>,
    pub(crate) path: PathBuf,
    /// Volume offset of the leaf.
    pub(crate) start: u64,
    /// Leaf length in bytes.
    pub(crate) len: u64,
    pub(crate) chunk_size: u32,
    /// The parent's capacity (its chunks past it are not usable).
    pub(crate) parent_capacity: u64,
    /// The parent's leaf, cut to this leaf's chunk count (shorter if the volume grew).
    pub(crate) parent: Option<VolumeLeaf>,
    /// The changed ranges touching this leaf.
    pub(crate) ranges: Vec<BlockRange>,
    /// Store patches (false: every touched chunk is stored whole).
    pub(crate) patches: bool,
}

/// Where new blobs go, and what was read.
pub(crate) struct Sink<'a> {
    pub(crate) repo: &'a Repository,
    pub(crate) writer: &'a BlobWriter,
    pub(crate) tx: &'a PackSender,
    pub(crate) bytes_read: &'a AtomicU64,
}

impl Sink<'_> {
    fn read(&self, job: &ChangedLeaf, abs: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        job.file
            .read_exact_at(&mut buf, abs)
            .map_err(|e| Error::io("read", &job.path, e))?;
        self.bytes_read.fetch_add(len as u64, Ordering::Relaxed);
        Ok(buf)
    }

    fn store(&self, data: &[u8]) -> Result<Id> {
        let id = blob_id(self.repo.key(), data);
        ship_blocking(self.tx, self.writer.add(BlobKind::Data, id, data)?)?;
        Ok(id)
    }

    /// True if the backup may reference this parent chunk as it is: each of its blobs is
    /// indexed outside packs a prune marked as garbage (docs/format.md §14).
    fn reusable(&self, c: &VolChunk) -> bool {
        match c {
            VolChunk::Zero => true,
            VolChunk::Data(id) => self.writer.is_stored(id),
            VolChunk::Patched { base, patches } => {
                base.is_none_or(|id| self.writer.is_stored(&id))
                    && patches.iter().all(|p| self.writer.is_stored(&p.id))
            }
        }
    }

    fn whole(&self, job: &ChangedLeaf, abs: u64, len: usize) -> Result<VolChunk> {
        let data = self.read(job, abs, len)?;
        if is_zero(&data) {
            return Ok(VolChunk::Zero);
        }
        Ok(VolChunk::Data(self.store(&data)?))
    }
}

/// Maps a leaf given its changed ranges: untouched chunks from the parent, touched ones
/// patched or re-read whole.
pub(crate) fn process_changed_leaf(job: &ChangedLeaf, sink: &Sink<'_>) -> Result<VolumeLeaf> {
    let cs = u64::from(job.chunk_size);
    let n = job.len.div_ceil(cs) as usize;
    let mut work: Vec<(usize, Vec<(u32, u32)>)> = Vec::new();
    let mut chunks: Vec<Option<VolChunk>> = vec![None; n];
    for (j, slot) in chunks.iter_mut().enumerate() {
        let c0 = job.start + j as u64 * cs;
        let c1 = (c0 + cs).min(job.start + job.len);
        let runs: Vec<(u32, u32)> = touching(&job.ranges, c0, c1)
            .iter()
            .map(|r| {
                let s = r.offset.max(c0) - c0;
                let e = r.end().min(c1) - c0;
                (s as u32, e as u32)
            })
            .collect();
        let parent_len = cs.min(job.parent_capacity.saturating_sub(c0));
        let usable = parent_len == c1 - c0;
        match job.parent.as_ref().and_then(|p| p.chunks.get(j)) {
            Some(pc) if usable && runs.is_empty() && sink.reusable(pc) => {
                *slot = Some(pc.clone());
            }
            _ => work.push((j, runs)),
        }
    }
    let done: Vec<Result<(usize, VolChunk)>> = work
        .into_par_iter()
        .map(|(j, runs)| {
            let c0 = job.start + j as u64 * cs;
            let clen = cs.min(job.start + job.len - c0);
            let parent_len = cs.min(job.parent_capacity.saturating_sub(c0));
            let base = job
                .parent
                .as_ref()
                .and_then(|p| p.chunks.get(j))
                .filter(|_| parent_len == clen);
            Ok((j, changed_chunk(job, sink, c0, clen, base, &runs)?))
        })
        .collect();
    for r in done {
        let (j, c) = r?;
        chunks[j] = Some(c);
    }
    let chunks = chunks
        .into_iter()
        .map(|c| c.ok_or_else(|| Error::Internal("a chunk was not mapped".into())))
        .collect::<Result<_>>()?;
    Ok(VolumeLeaf { chunks })
}

/// One touched chunk: `runs` are the changed byte ranges within it (sorted, disjoint).
fn changed_chunk(
    job: &ChangedLeaf,
    sink: &Sink<'_>,
    c0: u64,
    clen: u64,
    parent: Option<&VolChunk>,
    runs: &[(u32, u32)],
) -> Result<VolChunk> {
    let covered: u64 = runs.iter().map(|&(s, e)| u64::from(e - s)).sum();
    let Some(parent) = parent else {
        return sink.whole(job, c0, clen as usize);
    };
    if !job.patches || covered == clen || !sink.reusable(parent) {
        return sink.whole(job, c0, clen as usize);
    }
    let (base, old): (Option<Id>, &[VolumePatch]) = match parent {
        VolChunk::Zero => (None, &[]),
        VolChunk::Data(id) => (Some(*id), &[]),
        VolChunk::Patched { base, patches } => (*base, patches.as_slice()),
    };
    // The union of the old patches and the new runs: (start, end, old patch id if the
    // interval is exactly one untouched old patch).
    let mut iv: Vec<(u32, u32, Option<Id>)> = old
        .iter()
        .map(|p| (p.offset, p.offset + p.len, Some(p.id)))
        .chain(runs.iter().map(|&(s, e)| (s, e, None)))
        .collect();
    iv.sort_by_key(|x| x.0);
    let mut merged: Vec<(u32, u32, Option<Id>)> = Vec::new();
    for (s, e, id) in iv {
        match merged.last_mut() {
            Some(last) if s <= last.1 => {
                last.1 = last.1.max(e);
                last.2 = None;
            }
            _ => merged.push((s, e, id)),
        }
    }
    let patch_bytes: u64 = merged.iter().map(|&(s, e, _)| u64::from(e - s)).sum();
    if patch_bytes * COMPACT_DIVISOR > clen || merged.len() > MAX_PATCHES {
        return sink.whole(job, c0, clen as usize);
    }
    let mut patches = Vec::with_capacity(merged.len());
    for (s, e, keep) in merged {
        let id = if let Some(id) = keep {
            id
        } else {
            let data = sink.read(job, c0 + u64::from(s), (e - s) as usize)?;
            sink.store(&data)?
        };
        patches.push(VolumePatch {
            offset: s,
            len: e - s,
            id,
        });
    }
    Ok(VolChunk::Patched { base, patches })
}
