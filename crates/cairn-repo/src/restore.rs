//! Restoring snapshots: file trees (whole or a subpath) to a directory or file, and volumes
//! to a file or block device. Every blob read is authenticated and its id re-checked; a damaged
//! file is removed and reported by name, never left looking complete.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_format::{BlobKind, Extent, Id, Node, NodeKind, Root, Snapshot};
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::blob::decode_blob;
use crate::catalog::resolve_path;
use crate::fsmeta::apply_metadata;
use crate::index::{BlobLocation, Index};
use crate::progress::DynProgress;
use crate::reader::fetch_coalesced;
use crate::worker::cpu;
use crate::{Error, Repository, Result};

/// Options of a restore.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// Restore over a non-empty target.
    pub overwrite: bool,
    /// Volumes: re-read the target afterwards and compare every chunk's hash.
    pub verify: bool,
    /// Batches of files (or volume leaves) in flight.
    pub concurrency: usize,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            overwrite: false,
            verify: false,
            concurrency: 4,
        }
    }
}

/// What a restore did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RestoreOutcome {
    /// Files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// Problems (damaged files, metadata that could not be set), each naming its path.
    pub errors: Vec<String>,
}

/// Restores `subpath` of a snapshot (empty: all of it) to `target`.
///
/// # Errors
/// `TargetNotEmpty`, `NoSuchPath`, storage errors, `Interrupted`. Damage confined to some
/// files is reported in `RestoreOutcome::errors` instead.
#[allow(
    clippy::too_many_arguments,
    reason = "what, which part, where, how, and the two run-time handles: each is needed"
)]
pub async fn restore(
    repo: &Arc<Repository>,
    snap: &Snapshot,
    snap_name: &str,
    subpath: &str,
    target: &Path,
    opts: &RestoreOptions,
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<RestoreOutcome> {
    // A shared lock: prune does not delete packs this restore may read (docs/format.md §14).
    let lock = repo.lock(false, "restore", repo.lock_options()).await?;
    repo.forget_index().await;
    let r = restore_unlocked(
        repo, snap, snap_name, subpath, target, opts, progress, cancel,
    )
    .await;
    lock.release().await;
    r
}

#[allow(clippy::too_many_arguments, reason = "the public signature of restore")]
async fn restore_unlocked(
    repo: &Arc<Repository>,
    snap: &Snapshot,
    snap_name: &str,
    subpath: &str,
    target: &Path,
    opts: &RestoreOptions,
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<RestoreOutcome> {
    match &snap.root {
        Root::Volume(map) => {
            if !subpath.trim_matches('/').is_empty() {
                return Err(Error::InvalidInput(
                    "a volume snapshot has no paths inside".into(),
                ));
            }
            crate::volume_restore::restore_volume(repo, map, target, opts, progress, cancel).await
        }
        Root::Node(_) => {
            let node = resolve_path(repo, snap, snap_name, subpath).await?;
            restore_node(repo, node, target, opts, progress, cancel).await
        }
    }
}

struct Plan {
    dirs: Vec<(PathBuf, Node)>,
    files: Vec<(PathBuf, Node)>,
    others: Vec<(PathBuf, Node)>,
    links: Vec<(PathBuf, PathBuf)>,
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(p)
        .map_err(|e| Error::io("read", p, e))?
        .next()
        .is_none())
}

async fn plan_tree(repo: &Repository, root: &Node, target: &Path) -> Result<Plan> {
    let mut plan = Plan {
        dirs: Vec::new(),
        files: Vec::new(),
        others: Vec::new(),
        links: Vec::new(),
    };
    let mut seen: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([(target.to_path_buf(), root.subtree)]);
    while let Some((dir, sub)) = queue.pop_front() {
        let Some(sub) = sub else { continue };
        let tree = repo.load_tree(&sub).await?;
        for n in &tree.nodes {
            let path = dir.join(std::ffi::OsStr::from_bytes(&n.name));
            match n.kind {
                NodeKind::Dir => {
                    queue.push_back((path.clone(), n.subtree));
                    plan.dirs.push((path, n.clone()));
                }
                NodeKind::File => {
                    if n.nlink > 1 {
                        if let Some(first) = seen.get(&(n.dev, n.inode)) {
                            plan.links.push((first.clone(), path));
                            continue;
                        }
                        seen.insert((n.dev, n.inode), path.clone());
                    }
                    plan.files.push((path, n.clone()));
                }
                NodeKind::Socket => {}
                _ => plan.others.push((path, n.clone())),
            }
        }
    }
    Ok(plan)
}

async fn restore_node(
    repo: &Arc<Repository>,
    node: Node,
    target: &Path,
    opts: &RestoreOptions,
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<RestoreOutcome> {
    let is_root = rustix::process::geteuid().is_root();
    let mut outcome = RestoreOutcome::default();
    if node.kind != NodeKind::Dir {
        let dest = if target.is_dir() {
            target.join(std::ffi::OsStr::from_bytes(&node.name))
        } else {
            target.to_path_buf()
        };
        let mut opts = opts.clone();
        if let Ok(md) = std::fs::symlink_metadata(&dest) {
            if !opts.overwrite && (md.len() > 0 || !md.is_file()) {
                return Err(Error::TargetNotEmpty(dest));
            }
            // An existing empty file is accepted as the target: fill it in place.
            opts.overwrite = true;
        }
        let opts = &opts;
        let mut plan = Plan {
            dirs: Vec::new(),
            files: Vec::new(),
            others: Vec::new(),
            links: Vec::new(),
        };
        if node.kind == NodeKind::File {
            plan.files.push((dest, node));
        } else {
            plan.others.push((dest, node));
        }
        run_plan(repo, plan, opts, is_root, &progress, &cancel, &mut outcome).await?;
        return Ok(outcome);
    }
    if target.exists() {
        if !target.is_dir() {
            return Err(Error::InvalidInput(format!(
                "target {} is not a directory",
                target.display()
            )));
        }
        if !opts.overwrite && !is_empty_dir(target)? {
            return Err(Error::TargetNotEmpty(target.to_path_buf()));
        }
    } else {
        std::fs::create_dir_all(target).map_err(|e| Error::io("create", target, e))?;
    }
    let plan = plan_tree(repo, &node, target).await?;
    let total: u64 = plan.files.iter().map(|(_, n)| n.size).sum();
    progress.start("restore", Some(total), Some(plan.files.len() as u64));
    let mut dirs = plan.dirs.clone();
    dirs.push((target.to_path_buf(), node));
    run_plan(repo, plan, opts, is_root, &progress, &cancel, &mut outcome).await?;
    // Directory metadata last, deepest first, so writing entries does not disturb times.
    let errs = cpu(move || {
        let mut errs = Vec::new();
        for (p, n) in dirs.iter().rev() {
            if let Err(e) = apply_metadata(p, n, is_root) {
                errs.push(format!("{}: cannot set metadata: {e}", p.display()));
            }
        }
        errs
    })
    .await?;
    outcome.errors.extend(errs);
    progress.finish();
    Ok(outcome)
}

async fn run_plan(
    repo: &Arc<Repository>,
    plan: Plan,
    opts: &RestoreOptions,
    is_root: bool,
    progress: &DynProgress,
    cancel: &CancellationToken,
    outcome: &mut RestoreOutcome,
) -> Result<()> {
    let Plan {
        dirs,
        files,
        others,
        links,
    } = plan;
    let overwrite = opts.overwrite;
    outcome.dirs = dirs.len() as u64;
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    // Directories and non-file entries.
    let errs = errors.clone();
    cpu(move || -> Result<()> {
        for (p, _) in &dirs {
            match std::fs::create_dir(p) {
                Ok(()) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists && overwrite && p.is_dir() => {
                }
                Err(e) => return Err(Error::io("create directory", p, e)),
            }
        }
        for (p, n) in &others {
            if let Err(e) =
                make_special(p, n, overwrite).and_then(|()| apply_metadata(p, n, is_root))
            {
                errs.lock().push(format!("{}: {e}", p.display()));
            }
        }
        Ok(())
    })
    .await??;
    // File contents, in batches.
    let index = repo.index().await?;
    let batches = batch_files(files);
    outcome.files = batches.iter().map(|b| b.len() as u64).sum();
    let bytes: u64 = futures::stream::iter(batches)
        .map(|batch| {
            let (repo, index, errors, progress, cancel) = (
                repo.clone(),
                index.clone(),
                errors.clone(),
                progress.clone(),
                cancel.clone(),
            );
            async move {
                if cancel.is_cancelled() {
                    return Err(Error::Interrupted);
                }
                restore_batch(&repo, &index, batch, overwrite, is_root, &errors, &progress).await
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .try_fold(0u64, |acc, n| futures::future::ready(Ok(acc + n)))
        .await?;
    outcome.bytes = bytes;
    let errs = errors.clone();
    cpu(move || {
        for (first, p) in &links {
            if overwrite {
                let _ = std::fs::remove_file(p);
            }
            if let Err(e) = std::fs::hard_link(first, p) {
                errs.lock().push(format!(
                    "{}: cannot link to {}: {e}",
                    p.display(),
                    first.display()
                ));
            }
        }
    })
    .await?;
    outcome.errors.extend(errors.lock().drain(..));
    Ok(())
}

fn make_special(p: &Path, n: &Node, overwrite: bool) -> std::io::Result<()> {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    if overwrite && std::fs::symlink_metadata(p).is_ok() {
        std::fs::remove_file(p)?;
    }
    match n.kind {
        NodeKind::Symlink => {
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&n.link_target), p)
        }
        NodeKind::Fifo => {
            mknodat(CWD, p, FileType::Fifo, Mode::from_raw_mode(n.mode), 0).map_err(Into::into)
        }
        NodeKind::CharDevice => mknodat(
            CWD,
            p,
            FileType::CharacterDevice,
            Mode::from_raw_mode(n.mode),
            n.rdev,
        )
        .map_err(Into::into),
        NodeKind::BlockDevice => mknodat(
            CWD,
            p,
            FileType::BlockDevice,
            Mode::from_raw_mode(n.mode),
            n.rdev,
        )
        .map_err(Into::into),
        _ => Ok(()),
    }
}

/// Bytes of content per batch of small files.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;
const BATCH_FILES: usize = 256;

fn batch_files(files: Vec<(PathBuf, Node)>) -> Vec<Vec<(PathBuf, Node)>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut cur_bytes = 0;
    for f in files {
        if f.1.size >= BATCH_BYTES {
            out.push(vec![f]);
            continue;
        }
        cur_bytes += f.1.size;
        cur.push(f);
        if cur_bytes >= BATCH_BYTES || cur.len() >= BATCH_FILES {
            out.push(std::mem::take(&mut cur));
            cur_bytes = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Bytes of content fetched per window.
const WINDOW_BYTES: u64 = 16 * 1024 * 1024;

/// One data extent to write: (file in batch, offset in file, blob id, offset in the blob for
/// a slice (None: the whole blob), length).
type Piece = (usize, u64, Id, Option<u32>, u32);

/// The restore of one batch of files: created up front, filled window by window, finished
/// (metadata, or removal if damaged) at the end.
struct Batch {
    files: Arc<Vec<(PathBuf, Node)>>,
    handles: Vec<Option<Arc<std::fs::File>>>,
    damaged: Vec<bool>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Batch {
    fn fail(&mut self, fi: usize, msg: String) {
        if !self.damaged[fi] {
            self.errors.lock().push(msg);
            self.damaged[fi] = true;
        }
    }

    async fn create(
        files: Vec<(PathBuf, Node)>,
        overwrite: bool,
        errors: Arc<Mutex<Vec<String>>>,
    ) -> Result<Self> {
        let files = Arc::new(files);
        let f2 = files.clone();
        let created = cpu(move || {
            f2.iter()
                .map(|(p, n)| create_file(p, n.size, overwrite))
                .collect::<Vec<_>>()
        })
        .await?;
        let handles = created
            .into_iter()
            .map(|r| r.map_err(|e| errors.lock().push(e)).ok())
            .collect();
        let damaged = vec![false; files.len()];
        Ok(Self {
            files,
            handles,
            damaged,
            errors,
        })
    }

    /// Splits the data extents of the created files into windows of about WINDOW_BYTES.
    fn windows(&mut self, index: &Index) -> Vec<Vec<Piece>> {
        let mut windows: Vec<Vec<Piece>> = vec![Vec::new()];
        let mut wbytes = 0u64;
        let files = self.files.clone();
        for (fi, (p, n)) in files.iter().enumerate() {
            if self.handles[fi].is_none() {
                continue;
            }
            let mut off = 0u64;
            for e in &n.content {
                let piece = match *e {
                    Extent::Data { id, len } => Some((id, None, len)),
                    Extent::Slice { id, offset, len } => Some((id, Some(offset), len)),
                    Extent::Hole { .. } => None,
                };
                if let Some((id, at, len)) = piece {
                    if index.get(&id).is_none() {
                        self.fail(
                            fi,
                            format!(
                                "{}: blob {} is missing from the index",
                                p.display(),
                                id.short()
                            ),
                        );
                    }
                    if let Some(w) = windows.last_mut() {
                        w.push((fi, off, id, at, len));
                    }
                    wbytes += u64::from(len);
                    if wbytes >= WINDOW_BYTES {
                        windows.push(Vec::new());
                        wbytes = 0;
                    }
                }
                off += e.len();
            }
        }
        windows
    }

    /// Fetches and writes one window; returns the bytes written.
    async fn write_window(
        &mut self,
        repo: &Repository,
        index: &Index,
        window: Vec<Piece>,
        progress: &DynProgress,
    ) -> Result<u64> {
        let w: Vec<Piece> = window
            .into_iter()
            .filter(|(fi, ..)| !self.damaged[*fi])
            .collect();
        if w.is_empty() {
            return Ok(0);
        }
        // Each blob once, even when several files take slices of it.
        let mut ids: Vec<Id> = w.iter().map(|p| p.2).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|id| index.get(id).is_some());
        let locs: Vec<BlobLocation> = ids.iter().filter_map(|id| index.get(id)).collect();
        let sealed = match fetch_coalesced(repo, &locs).await {
            Ok(s) => s,
            Err(e) if e.is_corruption() => {
                for (fi, ..) in &w {
                    let msg = format!("{}: {e}", self.files[*fi].0.display());
                    self.fail(*fi, msg);
                }
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let (key, handles, files) = (repo.key().clone(), self.handles.clone(), self.files.clone());
        let results: Vec<(usize, std::result::Result<u64, String>)> = cpu(move || {
            let plain: Vec<std::result::Result<Vec<u8>, String>> = ids
                .iter()
                .zip(sealed)
                .map(|(id, s)| decode_blob(&key, BlobKind::Data, id, &s).map_err(|e| e.to_string()))
                .collect();
            w.iter()
                .map(|&(fi, off, id, at, len)| {
                    let r = ids
                        .binary_search(&id)
                        .map_err(|_| format!("blob {} is missing from the index", id.short()))
                        .and_then(|i| plain[i].as_ref().map_err(Clone::clone))
                        .and_then(|plain| {
                            let part = match at {
                                None if plain.len() == len as usize => plain.as_slice(),
                                None => {
                                    return Err(format!(
                                        "blob {} has the wrong length",
                                        id.short()
                                    ));
                                }
                                Some(at) => plain
                                    .get(at as usize..at as usize + len as usize)
                                    .ok_or_else(|| {
                                        format!(
                                            "blob {} is shorter than the file's slice",
                                            id.short()
                                        )
                                    })?,
                            };
                            let f = handles[fi].as_ref().ok_or("not created")?;
                            f.write_all_at(part, off)
                                .map(|()| part.len() as u64)
                                .map_err(|e| e.to_string())
                        })
                        .map_err(|e| format!("{}: {e}", files[fi].0.display()));
                    (fi, r)
                })
                .collect()
        })
        .await?;
        let mut written = 0;
        for (fi, r) in results {
            match r {
                Ok(n) => {
                    written += n;
                    progress.add_bytes(n);
                }
                Err(e) => self.fail(fi, e),
            }
        }
        Ok(written)
    }

    /// Applies metadata to complete files and removes damaged ones.
    async fn finish(self, is_root: bool) -> Result<()> {
        let Batch {
            files,
            handles,
            damaged,
            errors,
        } = self;
        let errs = cpu(move || {
            let mut errs = Vec::new();
            for (fi, (p, n)) in files.iter().enumerate() {
                if handles[fi].is_none() {
                    continue;
                }
                if damaged[fi] {
                    let _ = std::fs::remove_file(p);
                } else if let Err(e) = apply_metadata(p, n, is_root) {
                    errs.push(format!("{}: cannot set metadata: {e}", p.display()));
                }
            }
            errs
        })
        .await?;
        errors.lock().extend(errs);
        Ok(())
    }
}

fn create_file(
    p: &Path,
    size: u64,
    overwrite: bool,
) -> std::result::Result<Arc<std::fs::File>, String> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(0o600);
    if overwrite {
        if std::fs::symlink_metadata(p).is_ok_and(|m| !m.is_file()) {
            let _ = std::fs::remove_file(p);
        }
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let f = o
        .open(p)
        .map_err(|e| format!("{}: cannot create: {e}", p.display()))?;
    f.set_len(size)
        .map_err(|e| format!("{}: cannot size: {e}", p.display()))?;
    Ok(Arc::new(f))
}

async fn restore_batch(
    repo: &Arc<Repository>,
    index: &Arc<Index>,
    files: Vec<(PathBuf, Node)>,
    overwrite: bool,
    is_root: bool,
    errors: &Arc<Mutex<Vec<String>>>,
    progress: &DynProgress,
) -> Result<u64> {
    let n = files.len() as u64;
    let mut batch = Batch::create(files, overwrite, errors.clone()).await?;
    let mut written = 0;
    for w in batch.windows(index) {
        written += batch.write_window(repo, index, w, progress).await?;
    }
    batch.finish(is_root).await?;
    progress.add_items(n);
    Ok(written)
}
