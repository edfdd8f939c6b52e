//! Restoring snapshots: file trees (whole or a subpath) to a directory or file, and volumes
//! to a file or block device. Every blob read is authenticated and its id re-checked; a damaged
//! file is removed and reported by name, never left looking complete.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cairn_format::{BlobKind, Extent, Id, Node, NodeKind, Root, Snapshot, VolChunk, VolumeMap};
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::blob::decode_blob;
use crate::catalog::resolve_path;
use crate::fsmeta::apply_metadata;
use crate::index::{BlobLocation, Index};
use crate::progress::DynProgress;
use crate::reader::fetch_coalesced;
use crate::volume::{leaf_ids, load_leaf};
use crate::worker::{cpu, is_zero};
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
    match &snap.root {
        Root::Volume(map) => {
            if !subpath.trim_matches('/').is_empty() {
                return Err(Error::InvalidInput(
                    "a volume snapshot has no paths inside".into(),
                ));
            }
            restore_volume(repo, map, target, opts, progress, cancel).await
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
        if let Ok(md) = std::fs::symlink_metadata(&dest) {
            if !opts.overwrite && (md.len() > 0 || !md.is_file()) {
                return Err(Error::TargetNotEmpty(dest));
            }
        }
        let plan = Plan {
            dirs: Vec::new(),
            files: vec![],
            others: vec![],
            links: vec![],
        };
        let mut plan = plan;
        if node.kind == NodeKind::File {
            plan.files.push((dest, node))
        } else {
            plan.others.push((dest, node))
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

/// Bytes of a large file fetched per window.
const WINDOW_BYTES: u64 = 16 * 1024 * 1024;

async fn restore_batch(
    repo: &Arc<Repository>,
    index: &Arc<Index>,
    batch: Vec<(PathBuf, Node)>,
    overwrite: bool,
    is_root: bool,
    errors: &Arc<Mutex<Vec<String>>>,
    progress: &DynProgress,
) -> Result<u64> {
    let mut written = 0;
    // Create each file, then fill it window by window (one window for small files).
    let batch = Arc::new(batch);
    let b2 = batch.clone();
    let created: Vec<Option<Arc<std::fs::File>>> = cpu(move || {
        b2.iter()
            .map(|(p, n)| {
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
                o.open(p)
                    .map(Arc::new)
                    .map_err(|e| format!("{}: cannot create: {e}", p.display()))
                    .and_then(|f| {
                        f.set_len(n.size)
                            .map_err(|e| format!("{}: cannot size: {e}", p.display()))?;
                        Ok(f)
                    })
            })
            .collect::<Vec<std::result::Result<Arc<std::fs::File>, String>>>()
    })
    .await?
    .into_iter()
    .map(|r| r.map_err(|e| errors.lock().push(e)).ok())
    .collect();
    let mut damaged = vec![false; batch.len()];
    // Windows: (file index, file offset, extent) grouped to about WINDOW_BYTES.
    let mut windows: Vec<Vec<(usize, u64, Id, u32)>> = vec![Vec::new()];
    let mut wbytes = 0u64;
    for (fi, (p, n)) in batch.iter().enumerate() {
        if created[fi].is_none() {
            continue;
        }
        let mut off = 0u64;
        for e in &n.content {
            if let Extent::Data { id, len } = *e {
                if index.get(&id).is_none() {
                    errors.lock().push(format!(
                        "{}: blob {} is missing from the index",
                        p.display(),
                        id.short()
                    ));
                    damaged[fi] = true;
                }
                windows.last_mut().map(|w| w.push((fi, off, id, len)));
                wbytes += u64::from(len);
                if wbytes >= WINDOW_BYTES {
                    windows.push(Vec::new());
                    wbytes = 0;
                }
            }
            off += e.len();
        }
    }
    for w in windows {
        let w: Vec<_> = w.into_iter().filter(|(fi, ..)| !damaged[*fi]).collect();
        if w.is_empty() {
            continue;
        }
        let locs: Vec<BlobLocation> = w.iter().filter_map(|(_, _, id, _)| index.get(id)).collect();
        let sealed = match fetch_coalesced(repo, &locs).await {
            Ok(s) => s,
            Err(e) if e.is_corruption() => {
                for (fi, ..) in &w {
                    if !damaged[*fi] {
                        errors
                            .lock()
                            .push(format!("{}: {e}", batch[*fi].0.display()));
                        damaged[*fi] = true;
                    }
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let (key, files, batch2) = (repo.key().clone(), created.clone(), batch.clone());
        let results: Vec<(usize, std::result::Result<u64, String>)> = cpu(move || {
            w.iter()
                .zip(sealed)
                .map(|((fi, off, id, len), s)| {
                    let r = decode_blob(&key, BlobKind::Data, id, &s)
                        .map_err(|e| e.to_string())
                        .and_then(|plain| {
                            if plain.len() != *len as usize {
                                return Err(format!("blob {} has the wrong length", id.short()));
                            }
                            files[*fi].as_ref().map_or(Ok(0), |f| {
                                f.write_all_at(&plain, *off)
                                    .map(|()| plain.len() as u64)
                                    .map_err(|e| e.to_string())
                            })
                        })
                        .map_err(|e| format!("{}: {e}", batch2[*fi].0.display()));
                    (*fi, r)
                })
                .collect()
        })
        .await?;
        for (fi, r) in results {
            match r {
                Ok(n) => {
                    written += n;
                    progress.add_bytes(n);
                }
                Err(e) if !damaged[fi] => {
                    errors.lock().push(e);
                    damaged[fi] = true;
                }
                Err(_) => {}
            }
        }
    }
    let b3 = batch.clone();
    let errs = cpu(move || {
        let mut errs = Vec::new();
        for (fi, (p, n)) in b3.iter().enumerate() {
            if created[fi].is_none() {
                continue;
            }
            if damaged[fi] {
                let _ = std::fs::remove_file(p);
                continue;
            }
            if let Err(e) = apply_metadata(p, n, is_root) {
                errs.push(format!("{}: cannot set metadata: {e}", p.display()));
            }
        }
        errs
    })
    .await?;
    errors.lock().extend(errs);
    progress.add_items(batch.len() as u64);
    Ok(written)
}

async fn restore_volume(
    repo: &Arc<Repository>,
    map: &VolumeMap,
    target: &Path,
    opts: &RestoreOptions,
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<RestoreOutcome> {
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
    let file = if device {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .open(target)
            .map_err(|e| Error::io("open", target, e))?;
        let size = crate::volume::volume_size(&f, target)?;
        if size < map.capacity {
            return Err(Error::InvalidInput(format!(
                "device {} has {size} bytes; the volume needs {}",
                target.display(),
                map.capacity
            )));
        }
        if !opts.overwrite {
            return Err(Error::TargetNotEmpty(target.to_path_buf()));
        }
        f
    } else {
        if existing.as_ref().is_some_and(|m| m.len() > 0) && !opts.overwrite {
            return Err(Error::TargetNotEmpty(target.to_path_buf()));
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .create(true)
            .truncate(true)
            .open(target)
            .map_err(|e| Error::io("create", target, e))?;
        f.set_len(map.capacity)
            .map_err(|e| Error::io("size", target, e))?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seek", target, e))?;
        f.flush().map_err(|e| Error::io("write", target, e))?;
        f
    };
    progress.start("restore", Some(map.capacity), None);
    let file = Arc::new(file);
    let leaves = leaf_ids(repo, map).await?;
    let index = repo.index().await?;
    let leaf_span = u64::from(map.chunk_size) * u64::from(map.leaf_chunks);
    let cs = u64::from(map.chunk_size);
    let written: u64 = futures::stream::iter(leaves.into_iter().enumerate())
        .map(|(i, lid)| {
            let (repo, index, file, progress, cancel) = (
                repo.clone(),
                index.clone(),
                file.clone(),
                progress.clone(),
                cancel.clone(),
            );
            let capacity = map.capacity;
            async move {
                if cancel.is_cancelled() {
                    return Err(Error::Interrupted);
                }
                let start = i as u64 * leaf_span;
                let len = leaf_span.min(capacity - start);
                let n = len.div_ceil(cs) as usize;
                let leaf = load_leaf(&repo, lid, n).await?;
                // Every blob the leaf needs, in one coalesced fetch.
                let mut ids: Vec<Id> = Vec::new();
                for c in &leaf.chunks {
                    match c {
                        VolChunk::Data(id) => ids.push(*id),
                        VolChunk::Patched { base, patches } => {
                            ids.extend(base.iter().copied());
                            ids.extend(patches.iter().map(|p| p.id));
                        }
                        _ => {}
                    }
                }
                let locs: Vec<BlobLocation> = ids
                    .iter()
                    .map(|id| {
                        index.get(id).ok_or_else(|| {
                            Error::corrupt(format!("blob {}", id.short()), "missing from the index")
                        })
                    })
                    .collect::<Result<_>>()
                    .map_err(|e| e.within(format!("volume offset {start}")))?;
                let sealed = fetch_coalesced(&repo, &locs)
                    .await
                    .map_err(|e| e.within(format!("volume offset {start}")))?;
                let key = repo.key().clone();
                let w = cpu(move || {
                    write_leaf(&key, &leaf, &ids, &sealed, &file, start, len, cs, device)
                })
                .await??;
                progress.add_bytes(len);
                Ok(w)
            }
        })
        .buffered(opts.concurrency.max(1))
        .try_fold(0u64, |a, n| futures::future::ready(Ok(a + n)))
        .await?;
    let f2 = file.clone();
    let t2 = target.to_path_buf();
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

#[allow(
    clippy::too_many_arguments,
    reason = "one leaf's full context; a struct would only rename it"
)]
fn write_leaf(
    key: &cairn_crypto::MasterKey,
    leaf: &cairn_format::VolumeLeaf,
    ids: &[Id],
    sealed: &[Bytes],
    file: &std::fs::File,
    start: u64,
    len: u64,
    cs: u64,
    device: bool,
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
    let zeros = vec![0u8; cs as usize];
    let mut written = 0;
    for (i, c) in leaf.chunks.iter().enumerate() {
        let off = start + i as u64 * cs;
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
