//! Backing up file trees: walk, compare with the parent snapshot, chunk what changed, and
//! write one tree blob per directory, bottom-up.
//!
//! Directories are scanned by jobs on the worker pool (one job per directory: `readdir`,
//! `lstat`, and the content of its changed files), while an async walk recurses into
//! subdirectories and loads the parent's trees. A file whose type, size, mtime, ctime, inode,
//! device, mode and owner match the parent's entry is not read: its node is reused whole. A
//! directory whose entries all match keeps the parent's tree id, so a no-change backup
//! writes no tree blobs at all.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_chunker::{CdcParams, StreamChunker, chunk_ranges};
use cairn_format::{BlobKind, Extent, Id, Node, NodeKind, Tree};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use rayon::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::blob::blob_id;
use crate::fsmeta::{node_from_metadata, node_from_stat, read_xattrs, unchanged};
use crate::progress::DynProgress;
use crate::worker::{cpu, ship, ship_blocking};
use crate::writer::{BlobWriter, PackSender};
use crate::{Error, Repository, Result};

/// Files up to this size are read whole; larger ones are streamed in parallel batches.
const WHOLE_FILE: u64 = 8 * 1024 * 1024;
/// Bytes of chunks processed in parallel at once for a large file.
const BATCH_BYTES: usize = 32 * 1024 * 1024;
/// Files smaller than this (and than the chunker's minimum) that must be read are bundled with
/// their neighbours in the directory: one blob, one compression block (docs/format.md).
const SMALL_FILE: u64 = 64 * 1024;
/// Largest bundle of small files.
const BUNDLE_BYTES: usize = 1024 * 1024;
/// Directories in flight per level of the walk.
const DIR_CONCURRENCY: usize = 8;

/// Counters for the snapshot summary.
#[derive(Debug, Default)]
pub(crate) struct TreeStats {
    pub(crate) files: AtomicU64,
    pub(crate) dirs: AtomicU64,
    pub(crate) files_read: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) total_bytes: AtomicU64,
    pub(crate) errors: AtomicU64,
}

pub(crate) struct Archiver {
    pub(crate) repo: Arc<Repository>,
    pub(crate) writer: Arc<BlobWriter>,
    pub(crate) tx: PackSender,
    pub(crate) cdc: CdcParams,
    pub(crate) full: bool,
    pub(crate) progress: DynProgress,
    pub(crate) cancel: CancellationToken,
    pub(crate) stats: TreeStats,
}

/// An entry archived by a scan: complete, or a small file whose content still has to go
/// into a bundle.
enum Scanned {
    Done(Node),
    Small(Node, Vec<u8>),
}

/// A subdirectory found by a scan, to recurse into.
struct SubDir {
    pos: usize,
    path: PathBuf,
    parent: Option<Id>,
}

impl Archiver {
    fn warn(&self, msg: &str) {
        tracing::debug!("{msg}");
        self.progress.warn(msg);
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A file that could not be read: an I/O error is warned about and the file recorded
    /// empty (the backup goes on); any other error stops the backup.
    fn stored_as_empty(&self, e: Error, node: &mut Node) -> Result<()> {
        match e {
            Error::Io {
                op,
                path: p,
                source,
            } => {
                self.warn(&format!(
                    "cannot {op} {}: {source}; stored as empty",
                    p.display()
                ));
                node.size = 0;
                Ok(())
            }
            e => Err(e),
        }
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Archives one top-level path (file, directory or anything else) into its node.
    pub(crate) async fn archive_root(
        self: &Arc<Self>,
        path: &Path,
        name: Vec<u8>,
        parent: Option<&Node>,
    ) -> Result<Node> {
        let md = std::fs::symlink_metadata(path).map_err(|e| Error::io("stat", path, e))?;
        let mut node = node_from_metadata(name, &md);
        if node.kind == NodeKind::Dir {
            node.xattrs = read_xattrs(path).map_err(|e| Error::io("read xattrs of", path, e))?;
            if let Some(o) = parent.filter(|o| unchanged(o, &node)) {
                node.atime_ns = o.atime_ns;
            }
            let parent_sub = parent
                .filter(|p| p.kind == NodeKind::Dir)
                .and_then(|p| p.subtree);
            self.stats.dirs.fetch_add(1, Ordering::Relaxed);
            node.subtree = Some(
                self.clone()
                    .archive_dir(path.to_path_buf(), parent_sub)
                    .await?,
            );
            return Ok(node);
        }
        let this = self.clone();
        let path = path.to_path_buf();
        let parent = parent.cloned();
        cpu(
            move || match this.entry_node(&path, node, md.blocks(), parent.as_ref(), false)? {
                Scanned::Done(n) => Ok(n),
                Scanned::Small(mut n, data) => {
                    n.content = vec![this.store_chunk(&data)?];
                    Ok(n)
                }
            },
        )
        .await?
    }

    fn archive_dir(
        self: Arc<Self>,
        path: PathBuf,
        parent: Option<Id>,
    ) -> BoxFuture<'static, Result<Id>> {
        async move {
            self.check_cancel()?;
            let parent_tree = match parent {
                Some(id) => match self.repo.load_tree(&id).await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        tracing::warn!(dir = %path.display(), error = %e, "cannot load the parent's tree; reading everything below");
                        None
                    }
                },
                None => None,
            };
            let this = self.clone();
            let (scan_path, scan_parent) = (path.clone(), parent_tree.clone());
            let (mut nodes, subdirs) = cpu(move || this.scan_dir(&scan_path, scan_parent.as_deref())).await??;
            let done: Vec<(usize, Id)> = futures::stream::iter(subdirs)
                .map(|d| {
                    let this = self.clone();
                    async move { this.archive_dir(d.path, d.parent).await.map(|id| (d.pos, id)) }
                })
                .buffer_unordered(DIR_CONCURRENCY)
                .try_collect()
                .await?;
            for (pos, id) in done {
                nodes[pos].subtree = Some(id);
            }
            // Reuse the parent's tree only while it is stored outside garbage packs (§14).
            if let (Some(pid), Some(pt)) = (parent, &parent_tree)
                && pt.nodes == nodes
                && self.writer.is_stored(&pid)
            {
                return Ok(pid);
            }
            let tree = Tree { nodes };
            let bytes = tree.to_bytes().map_err(|e| Error::Internal(e.to_string()))?;
            let id = blob_id(self.repo.key(), &bytes);
            let writer = self.writer.clone();
            let pack = if bytes.len() > 256 * 1024 {
                cpu(move || writer.add(BlobKind::Tree, id, &bytes)).await??
            } else {
                writer.add(BlobKind::Tree, id, &bytes)?
            };
            ship(&self.tx, pack).await?;
            Ok(id)
        }
        .boxed()
    }

    /// Lists a directory and archives every non-directory entry; returns the nodes in name
    /// order and the subdirectories to recurse into.
    ///
    /// Entries are stat'ed relative to an open handle of the directory (`fstatat`), so the
    /// kernel does not walk the whole path again for each of them.
    fn scan_dir(&self, dir: &Path, parent: Option<&Tree>) -> Result<(Vec<Node>, Vec<SubDir>)> {
        use rustix::fs::{Dir, Mode, OFlags, open};
        let listed = open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .and_then(|fd| Dir::read_from(&fd).map(|d| (fd, d)));
        let (dirfd, entries) = match listed {
            Ok(x) => x,
            Err(e) => {
                self.warn(&format!("cannot read directory {}: {e}", dir.display()));
                return Ok((Vec::new(), Vec::new()));
            }
        };
        let mut names: Vec<std::ffi::CString> = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => {
                    let name = e.file_name();
                    if name.to_bytes() != b"." && name.to_bytes() != b".." {
                        names.push(name.to_owned());
                    }
                }
                Err(e) => {
                    self.warn(&format!("cannot read an entry of {}: {e}", dir.display()));
                    break;
                }
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let results: Vec<Result<Option<Scanned>>> = names
            .par_iter()
            .map(|cname| self.scan_entry(&dirfd, dir, cname, parent))
            .collect();
        let mut nodes = Vec::with_capacity(results.len());
        let mut small = Vec::new();
        for r in results {
            match r? {
                Some(Scanned::Done(n)) => nodes.push(n),
                Some(Scanned::Small(n, data)) => {
                    small.push((nodes.len(), data));
                    nodes.push(n);
                }
                None => {}
            }
        }
        self.store_bundles(&mut nodes, small)?;
        let subdirs = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.kind == NodeKind::Dir)
            .map(|(pos, n)| {
                let parent = parent
                    .and_then(|t| {
                        t.nodes
                            .binary_search_by(|o| o.name.cmp(&n.name))
                            .ok()
                            .map(|i| &t.nodes[i])
                    })
                    .filter(|o| o.kind == NodeKind::Dir)
                    .and_then(|o| o.subtree);
                SubDir {
                    pos,
                    path: dir.join(std::ffi::OsStr::from_bytes(&n.name)),
                    parent,
                }
            })
            .collect();
        Ok((nodes, subdirs))
    }

    /// Stats one entry of a directory (relative to its handle) and archives it, or returns
    /// the directory node to recurse into. `None` for an entry that vanished or can't be
    /// stat'ed (warned).
    fn scan_entry(
        &self,
        dirfd: &rustix::fd::OwnedFd,
        dir: &Path,
        cname: &std::ffi::CStr,
        parent: Option<&Tree>,
    ) -> Result<Option<Scanned>> {
        use rustix::fs::{AtFlags, statat};
        let name = cname.to_bytes();
        let st = match statat(dirfd, cname, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) => {
                let path = dir.join(std::ffi::OsStr::from_bytes(name));
                self.warn(&format!("cannot stat {}: {e}", path.display()));
                return Ok(None);
            }
        };
        let old = parent.and_then(|t| {
            t.nodes
                .binary_search_by(|n| n.name.as_slice().cmp(name))
                .ok()
                .map(|i| &t.nodes[i])
        });
        let mut node = node_from_stat(Vec::new(), &st);
        // The common case of an incremental: an unchanged file is its old node.
        if node.kind != NodeKind::Dir
            && !self.full
            && let Some(old) = old.filter(|o| unchanged(o, &node))
        {
            self.count_file(&node);
            self.progress.add_items(1);
            self.progress.add_bytes(node.size);
            return Ok(Some(Scanned::Done(old.clone())));
        }
        node.name = name.to_vec();
        let path = dir.join(std::ffi::OsStr::from_bytes(name));
        if node.kind == NodeKind::Dir {
            self.stats.dirs.fetch_add(1, Ordering::Relaxed);
            // Reading a directory updates its atime; keep the parent's when nothing
            // else changed, so an unchanged directory keeps its tree id. Its xattrs
            // are unchanged too (changing them moves ctime).
            if let Some(o) = old.filter(|o| !self.full && unchanged(o, &node)) {
                node.atime_ns = o.atime_ns;
                node.xattrs.clone_from(&o.xattrs);
            } else {
                match read_xattrs(&path) {
                    Ok(x) => node.xattrs = x,
                    Err(e) => {
                        self.warn(&format!("cannot read xattrs of {}: {e}", path.display()));
                    }
                }
            }
            // Provisional: the real subtree id is filled in after the recursion.
            node.subtree = old
                .filter(|o| o.kind == NodeKind::Dir)
                .and_then(|o| o.subtree)
                .or(Some(Id::default()));
            return Ok(Some(Scanned::Done(node)));
        }
        let blocks = st.st_blocks as u64;
        self.entry_node(&path, node, blocks, old, true).map(Some)
    }

    /// Completes the node of a non-directory entry: reuses the parent's if unchanged, else
    /// reads xattrs, link target and content. With `bundle`, a small file's content is
    /// returned to be bundled with its neighbours instead of stored on its own.
    fn entry_node(
        &self,
        path: &Path,
        mut node: Node,
        blocks: u64,
        old: Option<&Node>,
        bundle: bool,
    ) -> Result<Scanned> {
        self.check_cancel()?;
        self.count_file(&node);
        // An unchanged file keeps its parent's content only if every blob of it may be
        // reused (none is held only by packs a prune marked as garbage, §14).
        if !self.full
            && let Some(old) = old.filter(|o| {
                unchanged(o, &node)
                    && o.content
                        .iter()
                        .all(|e| e.blob().is_none_or(|id| self.writer.is_stored(&id)))
            })
        {
            self.progress.add_items(1);
            self.progress.add_bytes(node.size);
            return Ok(Scanned::Done(old.clone()));
        }
        match read_xattrs(path) {
            Ok(x) => node.xattrs = x,
            Err(e) => self.warn(&format!("cannot read xattrs of {}: {e}", path.display())),
        }
        match node.kind {
            NodeKind::Symlink => match std::fs::read_link(path) {
                Ok(t) => node.link_target = t.into_os_string().into_vec(),
                Err(e) => self.warn(&format!("cannot read link {}: {e}", path.display())),
            },
            NodeKind::File
                if bundle
                    && node.size > 0
                    && node.size < SMALL_FILE.min(u64::from(self.cdc.min()))
                    && blocks.saturating_mul(512) >= node.size =>
            {
                match self.small_content(path, &mut node) {
                    Ok(data) => {
                        self.progress.add_items(1);
                        return Ok(Scanned::Small(node, data));
                    }
                    Err(e) => self.stored_as_empty(e, &mut node)?,
                }
            }
            NodeKind::File => match self.file_content(path, node.size, blocks) {
                Ok((content, size)) => {
                    if size != node.size {
                        self.warn(&format!(
                            "{} changed size while being read ({} → {size} bytes)",
                            path.display(),
                            node.size
                        ));
                        node.size = size;
                    }
                    node.content = content;
                    self.stats.files_read.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.stored_as_empty(e, &mut node)?,
            },
            _ => {}
        }
        self.progress.add_items(1);
        Ok(Scanned::Done(node))
    }

    /// Counts a file entry for the summary.
    fn count_file(&self, node: &Node) {
        if node.kind == NodeKind::File {
            self.stats.files.fetch_add(1, Ordering::Relaxed);
            self.stats
                .total_bytes
                .fetch_add(node.size, Ordering::Relaxed);
        }
    }

    /// Reads a small file whole (up to its stat size).
    fn small_content(&self, path: &Path, node: &mut Node) -> Result<Vec<u8>> {
        let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        let mut data = Vec::with_capacity(node.size as usize);
        file.take(node.size)
            .read_to_end(&mut data)
            .map_err(|e| Error::io("read", path, e))?;
        let read = data.len() as u64;
        if read != node.size {
            self.warn(&format!(
                "{} changed size while being read ({} → {read} bytes)",
                path.display(),
                node.size
            ));
            node.size = read;
        }
        self.stats.files_read.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_read.fetch_add(read, Ordering::Relaxed);
        Ok(data)
    }

    /// Stores the small files of a directory (`(position in nodes, content)`, in name order)
    /// as bundles of up to BUNDLE_BYTES and sets their extents. A bundle of one file is an
    /// ordinary chunk.
    fn store_bundles(&self, nodes: &mut [Node], small: Vec<(usize, Vec<u8>)>) -> Result<()> {
        let mut groups: Vec<Vec<(usize, Vec<u8>)>> = Vec::new();
        let mut bytes = 0;
        for (pos, data) in small {
            if data.is_empty() {
                continue;
            }
            match groups.last_mut() {
                Some(g) if bytes + data.len() <= BUNDLE_BYTES => {
                    bytes += data.len();
                    g.push((pos, data));
                }
                _ => {
                    bytes = data.len();
                    groups.push(vec![(pos, data)]);
                }
            }
        }
        let stored: Vec<Result<Vec<(usize, Extent)>>> = groups
            .into_par_iter()
            .map(|group| {
                if let [(pos, data)] = group.as_slice() {
                    return Ok(vec![(*pos, self.store_chunk(data)?)]);
                }
                let mut bundle = Vec::with_capacity(group.iter().map(|(_, d)| d.len()).sum());
                let mut out = Vec::with_capacity(group.len());
                for (pos, data) in &group {
                    out.push((bundle.len() as u32, *pos, data.len() as u32));
                    bundle.extend_from_slice(data);
                }
                let id = blob_id(self.repo.key(), &bundle);
                let pack = self.writer.add(BlobKind::Data, id, &bundle)?;
                ship_blocking(&self.tx, pack)?;
                self.progress.add_bytes(bundle.len() as u64);
                Ok(out
                    .into_iter()
                    .map(|(offset, pos, len)| (pos, Extent::Slice { id, offset, len }))
                    .collect())
            })
            .collect();
        for r in stored {
            for (pos, extent) in r? {
                nodes[pos].content = vec![extent];
            }
        }
        Ok(())
    }

    /// Stores one chunk and returns its extent.
    fn store_chunk(&self, chunk: &[u8]) -> Result<Extent> {
        let id = blob_id(self.repo.key(), chunk);
        let pack = self.writer.add(BlobKind::Data, id, chunk)?;
        ship_blocking(&self.tx, pack)?;
        self.progress.add_bytes(chunk.len() as u64);
        Ok(Extent::Data {
            id,
            len: chunk.len() as u32,
        })
    }

    /// Reads, chunks and stores a file; returns its extents and the bytes it had.
    fn file_content(&self, path: &Path, size: u64, blocks: u64) -> Result<(Vec<Extent>, u64)> {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        let sparse = size > 0 && blocks.saturating_mul(512) < size;
        let regions = if sparse {
            data_regions(&file, size)
        } else {
            vec![(0, size)]
        };
        let mut extents = Vec::new();
        let mut pos = 0u64;
        let mut total = 0u64;
        for (start, len) in regions {
            if start > pos {
                extents.push(Extent::Hole { len: start - pos });
            }
            file.seek(SeekFrom::Start(start))
                .map_err(|e| Error::io("seek", path, e))?;
            let read = self.region_content(
                &mut file,
                path,
                len,
                size <= WHOLE_FILE && !sparse,
                &mut extents,
            )?;
            total = start + read;
            pos = start + read;
            self.stats.bytes_read.fetch_add(read, Ordering::Relaxed);
        }
        if sparse && pos < size {
            extents.push(Extent::Hole { len: size - pos });
            total = size;
        }
        Ok((extents, total))
    }

    /// Chunks at most `len` bytes (a file that grew is read only up to its stat size) from the
    /// current position. Returns the bytes read.
    fn region_content(
        &self,
        file: &mut std::fs::File,
        path: &Path,
        len: u64,
        whole: bool,
        out: &mut Vec<Extent>,
    ) -> Result<u64> {
        let mut reader = file.take(len);
        if whole {
            let mut buf = Vec::with_capacity(len as usize);
            reader
                .read_to_end(&mut buf)
                .map_err(|e| Error::io("read", path, e))?;
            for r in chunk_ranges(&self.cdc, &buf) {
                out.push(self.store_chunk(&buf[r])?);
            }
            return Ok(buf.len() as u64);
        }
        let mut chunker = StreamChunker::new(reader, self.cdc);
        let mut read = 0u64;
        loop {
            self.check_cancel()?;
            let mut batch = Vec::new();
            let mut batch_bytes = 0;
            while batch_bytes < BATCH_BYTES {
                match chunker
                    .next_chunk()
                    .map_err(|e| Error::io("read", path, e))?
                {
                    Some(c) => {
                        batch_bytes += c.len();
                        batch.push(c);
                    }
                    None => break,
                }
            }
            if batch.is_empty() {
                return Ok(read);
            }
            read += batch_bytes as u64;
            let extents: Vec<Result<Extent>> =
                batch.par_iter().map(|c| self.store_chunk(c)).collect();
            for e in extents {
                out.push(e?);
            }
        }
    }
}

/// The data regions `(offset, length)` of a sparse file, from SEEK_DATA/SEEK_HOLE. Falls back
/// to the whole file where the filesystem does not support them.
fn data_regions(file: &std::fs::File, size: u64) -> Vec<(u64, u64)> {
    use rustix::fs::{SeekFrom as RSeek, seek};
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let Ok(data) = seek(file, RSeek::Data(pos)) else {
            break; // ENXIO: no data after pos
        };
        let hole = seek(file, RSeek::Hole(data)).map_or(size, |h| h.min(size));
        if hole <= data {
            break;
        }
        out.push((data, hole - data));
        pos = hole;
    }
    if out.is_empty()
        && size > 0
        && seek(file, RSeek::Data(0)).is_err_and(|e| e != rustix::io::Errno::NXIO)
    {
        return vec![(0, size)];
    }
    out
}

use std::os::unix::ffi::OsStringExt;
