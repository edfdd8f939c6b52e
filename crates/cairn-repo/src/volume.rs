//! Block volumes (devices and image files): fixed-size chunks aligned to the volume, all-zero
//! chunks stored as holes, and a map of leaves shared with the parent snapshot.
//!
//! The volume is processed leaf by leaf (a leaf is `LEAF_CHUNKS` chunks). A worker reads a
//! leaf in pieces, skips holes the filesystem reports (SEEK_DATA) without reading them, and
//! hashes, compresses and seals chunks in parallel. A chunk whose id equals the parent's
//! chunk at the same offset is not looked up or stored again.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use cairn_format::{
    BlobKind, Id, Root, Snapshot, SnapshotSummary, Source, SourceKind, VolChunk, VolumeLeaf,
    VolumeMap, VolumeNode,
};
use futures::{StreamExt, TryStreamExt};
use rayon::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::backup::{BackupOptions, BackupOutcome, ParentChoice, Session, commit, program};
use crate::blob::blob_id;
use crate::progress::DynProgress;
use crate::volume_changes::{BlockSelection, ChangedLeaf, Reads, Sink, touching};
use crate::worker::{cpu, is_zero, ship, ship_blocking};
use crate::writer::{BlobWriter, PackSender};
use crate::{Error, Repository, Result, SnapshotFilter};

/// Chunks per leaf node.
pub(crate) const LEAF_CHUNKS: u32 = 1024;
/// Children per interior node.
pub(crate) const FANOUT: u32 = 1024;
/// Bytes read at once within a leaf.
const PIECE: u64 = 4 * 1024 * 1024;
/// Leaves processed at once.
const LEAF_CONCURRENCY: usize = 3;

/// Options of a volume backup.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VolumeBackupOptions {
    /// The common backup options.
    pub base: BackupOptions,
    /// Read only part of the volume (default: all of it).
    pub selection: Option<BlockSelection>,
    /// When the selection does not fit the volume or its parent, read the whole volume (with
    /// a warning) instead of failing.
    pub full_on_mismatch: bool,
    /// With a changed-block list, store changed runs as patches of the parent's chunks
    /// (default); false stores every touched chunk whole.
    pub patches: bool,
}

impl VolumeBackupOptions {
    /// Volume options from the common ones.
    pub fn new(base: BackupOptions) -> Self {
        Self {
            base,
            selection: None,
            full_on_mismatch: false,
            patches: true,
        }
    }
}

/// The size of a file or block device.
pub(crate) fn volume_size(file: &std::fs::File, path: &Path) -> Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::End(0))
        .map_err(|e| Error::io("seek", path, e))
}

/// Geometry for a volume of `capacity` bytes.
pub(crate) fn geometry(capacity: u64, chunk_size: u32) -> VolumeMap {
    let chunks = capacity.div_ceil(u64::from(chunk_size));
    let leaves = chunks.div_ceil(u64::from(LEAF_CHUNKS));
    let mut height = 0u8;
    let mut top = leaves;
    while top > u64::from(FANOUT) {
        top = top.div_ceil(u64::from(FANOUT));
        height += 1;
    }
    VolumeMap {
        capacity,
        chunk_size,
        leaf_chunks: LEAF_CHUNKS,
        fanout: FANOUT,
        height,
        top: vec![None; top as usize],
    }
}

/// Loads the leaf ids of a map, in order (`None`: all-zero leaf).
pub(crate) async fn leaf_ids(repo: &Repository, map: &VolumeMap) -> Result<Vec<Option<Id>>> {
    let mut level = map.top.clone();
    for _ in 0..map.height {
        let mut next = Vec::with_capacity(level.len() * map.fanout as usize);
        for child in level {
            match child {
                Some(id) => match repo.load_volume_node(&id).await? {
                    VolumeNode::Interior(c) => next.extend(c),
                    VolumeNode::Leaf(_) => {
                        return Err(Error::corrupt(
                            format!("volume node {}", id.short()),
                            "a leaf where an interior node belongs",
                        ));
                    }
                },
                None => next.extend(std::iter::repeat_n(None, map.fanout as usize)),
            }
        }
        level = next;
    }
    let leaves = map.chunk_count().div_ceil(u64::from(map.leaf_chunks)) as usize;
    if level.len() < leaves {
        return Err(Error::corrupt(
            "volume map",
            "fewer leaves than the capacity needs",
        ));
    }
    level.truncate(leaves);
    Ok(level)
}

/// Loads one leaf (`None`: all zeros) and checks its length.
pub(crate) async fn load_leaf(
    repo: &Repository,
    id: Option<Id>,
    expect: usize,
) -> Result<VolumeLeaf> {
    let Some(id) = id else {
        return Ok(VolumeLeaf {
            chunks: vec![VolChunk::Zero; expect],
        });
    };
    match repo.load_volume_node(&id).await? {
        VolumeNode::Leaf(l) if l.chunks.len() == expect => Ok(l),
        _ => Err(Error::corrupt(
            format!("volume node {}", id.short()),
            "not a leaf of the expected length",
        )),
    }
}

struct LeafJob {
    file: Arc<std::fs::File>,
    path: PathBuf,
    regular: bool,
    start: u64,
    len: u64,
    chunk_size: u32,
    parent: Option<VolumeLeaf>,
    /// Allocated ranges touching the leaf: chunks touching none are zeros, unread.
    mask: Option<Vec<cairn_format::BlockRange>>,
    bytes_read: Arc<AtomicU64>,
}

fn process_leaf(
    job: &LeafJob,
    repo: &Repository,
    writer: &BlobWriter,
    tx: &PackSender,
    progress: &DynProgress,
    cancel: &CancellationToken,
) -> Result<VolumeLeaf> {
    let cs = u64::from(job.chunk_size);
    // Chunk `i` of the leaf with content `c`: a hole, the parent's blob, or a new blob.
    let store = |i: usize, c: &[u8]| -> Result<VolChunk> {
        if is_zero(c) {
            return Ok(VolChunk::Zero);
        }
        let id = blob_id(repo.key(), c);
        let same_as_parent = job
            .parent
            .as_ref()
            .and_then(|p| p.chunks.get(i))
            .is_some_and(|pc| *pc == VolChunk::Data(id))
            && writer.is_stored(&id);
        if !same_as_parent {
            ship_blocking(tx, writer.add(BlobKind::Data, id, c)?)?;
        }
        Ok(VolChunk::Data(id))
    };
    let mut chunks = Vec::with_capacity(job.len.div_ceil(cs) as usize);
    let mut off = 0u64;
    let mut buf = Vec::new();
    while off < job.len {
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        let n = PIECE.min(job.len - off);
        let abs = job.start + off;
        let first_chunk = (off / cs) as usize;
        let masked = job
            .mask
            .as_ref()
            .map(|m| touching(m, abs, abs + n).to_vec());
        if masked.as_ref().is_some_and(Vec::is_empty)
            || (job.regular && hole_until(&job.file, abs) >= abs + n)
        {
            chunks.extend(std::iter::repeat_n(VolChunk::Zero, n.div_ceil(cs) as usize));
        } else if let Some(m) = masked {
            // An allocated-block list: read only the chunks it touches.
            let piece: Vec<Result<VolChunk>> = (0..n.div_ceil(cs))
                .into_par_iter()
                .map(|i| {
                    let c0 = abs + i * cs;
                    let clen = cs.min(abs + n - c0);
                    if touching(&m, c0, c0 + clen).is_empty() {
                        return Ok(VolChunk::Zero);
                    }
                    let mut c = vec![0u8; clen as usize];
                    job.file
                        .read_exact_at(&mut c, c0)
                        .map_err(|e| Error::io("read", &job.path, e))?;
                    job.bytes_read.fetch_add(clen, Ordering::Relaxed);
                    store(first_chunk + i as usize, &c)
                })
                .collect();
            for c in piece {
                chunks.push(c?);
            }
        } else {
            buf.resize(n as usize, 0);
            job.file
                .read_exact_at(&mut buf, abs)
                .map_err(|e| Error::io("read", &job.path, e))?;
            job.bytes_read.fetch_add(n, Ordering::Relaxed);
            let piece: Vec<Result<VolChunk>> = buf
                .par_chunks(job.chunk_size as usize)
                .enumerate()
                .map(|(i, c)| store(first_chunk + i, c))
                .collect();
            for c in piece {
                chunks.push(c?);
            }
        }
        progress.add_bytes(n);
        off += n;
    }
    Ok(VolumeLeaf { chunks })
}

/// The first data offset at or after `pos` (the end of the hole there), or `u64::MAX` if the
/// rest is a hole; `pos` itself if the filesystem cannot tell.
pub(crate) fn hole_until(file: &std::fs::File, pos: u64) -> u64 {
    match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(pos)) {
        Ok(d) => d,
        Err(rustix::io::Errno::NXIO) => u64::MAX,
        Err(_) => pos,
    }
}

async fn store_node(
    writer: &BlobWriter,
    tx: &PackSender,
    repo: &Repository,
    node: &VolumeNode,
) -> Result<Id> {
    let bytes = node
        .to_bytes()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let id = blob_id(repo.key(), &bytes);
    ship(tx, writer.add(BlobKind::VolumeMap, id, &bytes)?).await?;
    Ok(id)
}

/// Groups one level of children into interior nodes.
async fn build_levels(
    writer: &BlobWriter,
    tx: &PackSender,
    repo: &Repository,
    mut level: Vec<Option<Id>>,
    height: u8,
) -> Result<Vec<Option<Id>>> {
    for _ in 0..height {
        let mut next = Vec::new();
        for group in level.chunks(FANOUT as usize) {
            if group.iter().all(Option::is_none) {
                next.push(None);
            } else {
                let mut children = group.to_vec();
                children.resize(FANOUT as usize, None);
                next.push(Some(
                    store_node(writer, tx, repo, &VolumeNode::Interior(children)).await?,
                ));
            }
        }
        level = next;
    }
    Ok(level)
}

/// Everything a leaf job of one volume backup needs.
struct VolumeBackup {
    repo: Arc<Repository>,
    writer: Arc<BlobWriter>,
    tx: PackSender,
    progress: DynProgress,
    cancel: CancellationToken,
    file: Arc<std::fs::File>,
    path: PathBuf,
    regular: bool,
    capacity: u64,
    chunk_size: u32,
    parent_map: Option<VolumeMap>,
    parent_leaves: Vec<Option<Id>>,
    reads: Reads,
    patches: bool,
    bytes_read: Arc<AtomicU64>,
}

impl VolumeBackup {
    fn leaf_span(&self) -> u64 {
        u64::from(self.chunk_size) * u64::from(LEAF_CHUNKS)
    }

    /// The parent's leaf `i`, cut or padded to this volume's leaf length.
    async fn parent_leaf(&self, i: u64, expect: usize) -> Result<Option<VolumeLeaf>> {
        let (Some(pm), Some(pid)) = (
            &self.parent_map,
            self.parent_leaves.get(i as usize).copied(),
        ) else {
            return Ok(None);
        };
        let pstart = (i * self.leaf_span()).min(pm.capacity);
        let plen = self.leaf_span().min(pm.capacity - pstart);
        let mut l = load_leaf(
            &self.repo,
            pid,
            plen.div_ceil(u64::from(self.chunk_size)) as usize,
        )
        .await?;
        l.chunks.truncate(expect);
        Ok(Some(l))
    }

    /// Reads, stores and maps leaf `i`; `None` if it is all zeros.
    async fn leaf(self: Arc<Self>, i: u64) -> Result<Option<Id>> {
        let start = i * self.leaf_span();
        let len = self.leaf_span().min(self.capacity - start);
        let mask = match &self.reads {
            Reads::Full => None,
            Reads::Allocated(r) => Some(touching(r, start, start + len).to_vec()),
            Reads::Changed(r) => {
                let ranges = touching(r, start, start + len).to_vec();
                return self.changed_leaf(i, ranges).await;
            }
        };
        if mask.as_ref().is_some_and(Vec::is_empty) {
            self.progress.add_bytes(len);
            return Ok(None);
        }
        let parent = self
            .parent_leaf(i, len.div_ceil(u64::from(self.chunk_size)) as usize)
            .await?;
        let job = LeafJob {
            mask,
            bytes_read: self.bytes_read.clone(),
            file: self.file.clone(),
            path: self.path.clone(),
            regular: self.regular,
            start,
            len,
            chunk_size: self.chunk_size,
            parent,
        };
        let this = self.clone();
        let leaf = cpu(move || {
            process_leaf(
                &job,
                &this.repo,
                &this.writer,
                &this.tx,
                &this.progress,
                &this.cancel,
            )
        })
        .await??;
        if leaf.chunks.iter().all(|c| *c == VolChunk::Zero) {
            return Ok(None);
        }
        store_node(&self.writer, &self.tx, &self.repo, &VolumeNode::Leaf(leaf))
            .await
            .map(Some)
    }

    /// Leaf `i` given the changed ranges touching it: the parent's leaf as it is when none
    /// do (not even loaded), else a leaf of parent chunks and patched or re-read ones.
    async fn changed_leaf(
        self: Arc<Self>,
        i: u64,
        ranges: Vec<cairn_format::BlockRange>,
    ) -> Result<Option<Id>> {
        let start = i * self.leaf_span();
        let len = self.leaf_span().min(self.capacity - start);
        let pcap = self.parent_map.as_ref().map_or(0, |m| m.capacity);
        let same_shape = self.leaf_span().min(pcap.saturating_sub(start)) == len;
        if ranges.is_empty()
            && same_shape
            && let Some(&pid) = self.parent_leaves.get(i as usize)
            && pid.is_none_or(|id| self.writer.is_stored(&id) && !self.writer.any_garbage())
        {
            self.progress.add_bytes(len);
            return Ok(pid);
        }
        let parent = self
            .parent_leaf(i, len.div_ceil(u64::from(self.chunk_size)) as usize)
            .await?;
        let job = ChangedLeaf {
            file: self.file.clone(),
            path: self.path.clone(),
            start,
            len,
            chunk_size: self.chunk_size,
            parent_capacity: pcap,
            parent,
            ranges,
            patches: self.patches,
        };
        let this = self.clone();
        let leaf = cpu(move || {
            if this.cancel.is_cancelled() {
                return Err(Error::Interrupted);
            }
            let sink = Sink {
                repo: &this.repo,
                writer: &this.writer,
                tx: &this.tx,
                bytes_read: &this.bytes_read,
            };
            crate::volume_changes::process_changed_leaf(&job, &sink)
        })
        .await??;
        self.progress.add_bytes(len);
        if leaf.chunks.iter().all(|c| *c == VolChunk::Zero) {
            return Ok(None);
        }
        store_node(&self.writer, &self.tx, &self.repo, &VolumeNode::Leaf(leaf))
            .await
            .map(Some)
    }
}

/// Checks the block selection against the volume and its parent and decides what to read.
///
/// # Errors
/// `InvalidInput` naming the mismatch, unless `full_on_mismatch` (then `Reads::Full`, with a
/// warning).
async fn plan_reads(
    opts: &VolumeBackupOptions,
    path: &Path,
    capacity: u64,
    parent: Option<&VolumeMap>,
    cancel: &CancellationToken,
) -> Result<Reads> {
    let checked = match &opts.selection {
        None => return Ok(Reads::Full),
        Some(_) if opts.base.full => return Ok(Reads::Full),
        Some(BlockSelection::Allocated(list)) => list
            .normalize(capacity)
            .map(Reads::Allocated)
            .map_err(|e| format!("allocated-block list rejected: {e}")),
        Some(BlockSelection::Changed(list)) => check_changed(list, capacity, parent),
        Some(BlockSelection::SinceImage(old)) => {
            let (old, new, c) = (old.clone(), path.to_path_buf(), cancel.clone());
            let list = cpu(move || crate::volume_changes::diff_images(&old, &new, &c)).await??;
            check_changed(&list, capacity, parent)
        }
    };
    match checked {
        Ok(r) => Ok(r),
        Err(why) if opts.full_on_mismatch => {
            tracing::warn!(volume = %path.display(), reason = %why, "reading the whole volume instead");
            Ok(Reads::Full)
        }
        Err(why) => Err(Error::InvalidInput(format!(
            "{why}; nothing was backed up (--full-on-mismatch reads the whole volume instead)"
        ))),
    }
}

fn check_changed(
    list: &cairn_format::BlockList,
    capacity: u64,
    parent: Option<&VolumeMap>,
) -> std::result::Result<Reads, String> {
    let Some(pm) = parent else {
        return Err(
            "a changed-block list needs a parent snapshot of the same source \
                    (with this repository's volume chunk size); none was found"
                .into(),
        );
    };
    let mut ranges = list
        .normalize(capacity)
        .map_err(|e| format!("changed-block list rejected: {e}"))?;
    if pm.capacity != capacity && list.capacity.is_none() {
        return Err(format!(
            "the volume was resized from {} to {capacity} bytes since the parent snapshot, and \
             a list without a capacity cannot show it covers the new size",
            pm.capacity
        ));
    }
    // A grown volume: the new space is read whole.
    if capacity > pm.capacity {
        let tail = pm.capacity;
        // Ranges are sorted: only the last can reach past the old end.
        if let Some(last) = ranges.last_mut()
            && last.end() >= tail
        {
            last.len = capacity - last.offset;
        } else {
            ranges.push(cairn_format::BlockRange {
                offset: tail,
                len: capacity - tail,
            });
        }
    }
    Ok(Reads::Changed(ranges))
}

/// Backs up a block device or volume image.
///
/// # Errors
/// I/O and storage errors; `Interrupted`. No snapshot on error.
pub async fn backup_volume(
    repo: &Arc<Repository>,
    device: &Path,
    opts: &VolumeBackupOptions,
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let time = jiff::Timestamp::now();
    let base = &opts.base;
    let path = std::path::absolute(device).map_err(|e| Error::io("resolve", device, e))?;
    let file = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    let regular = file
        .metadata()
        .map_err(|e| Error::io("stat", &path, e))?
        .is_file();
    let capacity = volume_size(&file, &path)?;
    let (host, user) = crate::keys::local_identity();
    let host = base.hostname.clone().unwrap_or(host);
    let identity = base
        .identity
        .clone()
        .unwrap_or_else(|| format!("volume:{host}:{}", path.display()));
    let parent = match &base.parent {
        ParentChoice::None => None,
        _ if base.full => None,
        ParentChoice::Auto => repo.find_parent(&identity).await?,
        ParentChoice::Explicit(r) => Some(repo.find_snapshot(r, &SnapshotFilter::default()).await?),
    };
    let chunk_size = repo.config().volume_chunk_size;
    let mut map = geometry(capacity, chunk_size);
    let parent_map = parent.as_ref().and_then(|(_, s)| match &s.root {
        Root::Volume(m) if m.chunk_size == chunk_size && m.leaf_chunks == LEAF_CHUNKS => {
            Some(m.clone())
        }
        _ => None,
    });
    let cancel2 = cancel.clone();
    let reads = plan_reads(opts, &path, capacity, parent_map.as_ref(), &cancel2).await?;
    let parent_leaves = match &parent_map {
        Some(m) => leaf_ids(repo, m).await?,
        None => Vec::new(),
    };
    let bytes_read = Arc::new(AtomicU64::new(0));
    progress.start("backup", Some(capacity), None);
    crate::immutable::prepare(repo, base.retain_until).await?;
    let session = Session::start(repo, base.upload_concurrency).await?;
    let vb = Arc::new(VolumeBackup {
        repo: repo.clone(),
        writer: session.writer.clone(),
        tx: session.tx.clone(),
        progress: progress.clone(),
        cancel,
        file: Arc::new(file),
        path: path.clone(),
        regular,
        capacity,
        chunk_size,
        parent_map,
        parent_leaves,
        reads,
        patches: opts.patches,
        bytes_read: bytes_read.clone(),
    });
    let n_leaves = capacity.div_ceil(vb.leaf_span());
    let leaves: Result<Vec<Option<Id>>> = futures::stream::iter(0..n_leaves)
        .map(|i| vb.clone().leaf(i))
        .buffered(LEAF_CONCURRENCY)
        .try_collect()
        .await;
    drop(vb);
    let top = match leaves {
        Ok(l) => build_levels(&session.writer, &session.tx, repo, l, map.height).await,
        Err(e) => Err(e),
    };
    map.top = match top {
        Ok(t) => t,
        Err(e) => return Err(session.abort(e).await),
    };
    map.validate().map_err(|e| Error::Internal(e.to_string()))?;
    let snap = Snapshot {
        version: 1,
        time,
        hostname: host,
        username: user,
        tags: base.tags.clone(),
        source: Source {
            kind: SourceKind::Volume,
            paths: vec![path.display().to_string()],
            identity,
        },
        parent: parent.map(|(id, _)| id),
        root: Root::Volume(map),
        summary: SnapshotSummary {
            files: 1,
            files_read: 1,
            total_bytes: capacity,
            bytes_read: bytes_read.load(Ordering::Relaxed),
            ..SnapshotSummary::default()
        },
        program: program(),
        retain_until: None,
    };
    progress.finish();
    commit(repo, session, snap, base.retain_until, started, &cancel2).await
}
