//! Backups: the session that writes packs and indexes, and the three sources (file trees,
//! streams; volumes are in [`crate::volume`]). A snapshot is saved last, after every pack
//! and index it references is durable.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use cairn_chunker::{CdcParams, StreamChunker};
use cairn_format::{
    BlobKind, Extent, Id, Node, NodeKind, Root, Snapshot, SnapshotSummary, Source, SourceKind, Tree,
};
use tokio_util::sync::CancellationToken;

use crate::archiver::{Archiver, TreeStats};
use crate::blob::blob_id;
use crate::keys::local_identity;
use crate::lock::LockGuard;
use crate::progress::DynProgress;
use crate::worker::{cpu, ship, ship_blocking};
use crate::writer::{BlobWriter, PackSender, UploadSummary, Uploader};
use crate::{Error, Repository, Result};

/// Which snapshot a backup compares against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParentChoice {
    /// The newest snapshot with the same source identity.
    #[default]
    Auto,
    /// None: read everything.
    None,
    /// This snapshot (id or prefix).
    Explicit(String),
}

/// Options of a backup.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupOptions {
    /// Tags to attach.
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    pub hostname: Option<String>,
    /// Source identity to record and match parents by (default: derived from kind, host and
    /// paths).
    pub identity: Option<String>,
    /// Parent selection.
    pub parent: ParentChoice,
    /// Re-read and re-hash everything instead of trusting the parent.
    pub full: bool,
    /// Pack uploads in flight.
    pub upload_concurrency: usize,
    /// Lock the snapshot and everything it needs on the store until then (object lock).
    pub retain_until: Option<jiff::Timestamp>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            tags: Vec::new(),
            hostname: None,
            identity: None,
            parent: ParentChoice::Auto,
            full: false,
            upload_concurrency: 2,
            retain_until: None,
        }
    }
}

/// The result of a backup.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupOutcome {
    /// The new snapshot's id.
    pub id: Id,
    /// The snapshot.
    pub snapshot: Snapshot,
}

/// Pack writing for one backup: the blob writer, the upload task and its channel.
pub(crate) struct Session {
    repo: Arc<Repository>,
    /// The shared lock that tells prune this backup may reference what its index showed.
    lock: LockGuard,
    pub(crate) writer: Arc<BlobWriter>,
    pub(crate) tx: PackSender,
    uploader: Uploader,
}

impl Session {
    pub(crate) async fn start(repo: &Arc<Repository>, concurrency: usize) -> Result<Self> {
        // Lock first, then load the index (with the garbage marks) fresh: prune relies on
        // every backup's view being at least as new as its lock (docs/format.md §14).
        let lock = repo.lock(false, "backup", repo.lock_options()).await?;
        repo.forget_index().await;
        let index = repo.index().await?;
        let writer = Arc::new(BlobWriter::new(repo, index));
        let (uploader, tx) = Uploader::start(repo, concurrency, writer.stats.clone());
        Ok(Self {
            repo: repo.clone(),
            lock,
            writer,
            tx,
            uploader,
        })
    }

    /// Closes open packs and waits until every pack and index is durable.
    pub(crate) async fn finish(self) -> Result<(UploadSummary, LockGuard)> {
        let Session {
            repo,
            lock,
            writer,
            tx,
            uploader,
        } = self;
        let flushed = cpu(move || writer.flush()).await;
        let sent = match flushed {
            Ok(Ok(packs)) => {
                let mut r = Ok(());
                for p in packs {
                    if let Err(e) = ship(&tx, Some(p)).await {
                        r = Err(e);
                        break;
                    }
                }
                r
            }
            Ok(Err(e)) | Err(e) => Err(e),
        };
        drop(tx);
        let summary = uploader.finish().await;
        // The repository now holds packs and index files the cached index lacks.
        repo.forget_index().await;
        let summary = summary?;
        sent?;
        Ok((summary, lock))
    }

    /// After a failure: keeps what was read (uploads and indexes the open packs, so the next
    /// run need not read it again) and returns the most telling error.
    pub(crate) async fn abort(self, err: Error) -> Error {
        match self.finish().await {
            // The upload task's own error explains a "task stopped" failure better.
            Err(upload_err) if matches!(err, Error::Internal(_)) => upload_err,
            _ => err,
        }
    }
}

fn hostname(opts: &BackupOptions) -> (String, String) {
    let (host, user) = local_identity();
    (opts.hostname.clone().unwrap_or(host), user)
}

async fn resolve_parent(
    repo: &Repository,
    opts: &BackupOptions,
    identity: &str,
) -> Result<Option<(Id, Snapshot)>> {
    match &opts.parent {
        ParentChoice::None => Ok(None),
        ParentChoice::Auto => repo.find_parent(identity).await,
        ParentChoice::Explicit(r) => repo
            .find_snapshot(r, &crate::SnapshotFilter::default())
            .await
            .map(Some),
    }
}

fn cdc_params(repo: &Repository) -> Result<CdcParams> {
    let c = repo.config().chunker;
    CdcParams::new(c.min, c.avg, c.max, repo.key().chunker_seed())
        .map_err(|e| Error::corrupt("config", e))
}

/// Finishes the session and saves the snapshot (with `retain_until`: locks its data first,
/// and the snapshot right after writing it), unless the run was cancelled meanwhile (a
/// Ctrl-C that came while the last data was read must not be answered with a snapshot): then
/// what was uploaded stays indexed for the next run, and the result is `Interrupted`.
pub(crate) async fn commit(
    repo: &Repository,
    session: Session,
    mut snap: Snapshot,
    retain_until: Option<jiff::Timestamp>,
    started: Instant,
    cancel: &CancellationToken,
) -> Result<BackupOutcome> {
    let written = session.writer.stats.clone();
    let (_summary, lock) = session.finish().await?;
    lock.check_fresh()?;
    if cancel.is_cancelled() {
        lock.release().await;
        return Err(Error::Interrupted);
    }
    snap.summary.blobs_added = written.blobs.load(Ordering::Relaxed);
    snap.summary.bytes_added = written.raw_bytes.load(Ordering::Relaxed);
    snap.summary.bytes_stored = written.stored_bytes.load(Ordering::Relaxed);
    snap.summary.duration_ms = started.elapsed().as_millis() as u64;
    if let Some(until) = retain_until {
        // The data is locked before the snapshot that makes it visible exists.
        snap.set_retain_until(Some(until));
        if let Err(e) = crate::immutable::lock_data(repo, &snap, until).await {
            lock.release().await;
            return Err(e);
        }
    }
    let id = repo.save_snapshot(&snap).await?;
    if let Some(until) = retain_until {
        let path = cairn_format::layout::object_path(cairn_format::layout::SNAPSHOTS, &id);
        if let Err(e) = repo.storage().retain(&path, until).await {
            lock.release().await;
            return Err(e.into());
        }
    }
    lock.release().await;
    tracing::info!(snapshot = %id.short(), "snapshot saved");
    Ok(BackupOutcome { id, snapshot: snap })
}

/// The program name recorded in snapshots.
pub(crate) fn program() -> String {
    format!("cairn {}", env!("CARGO_PKG_VERSION"))
}

fn base_name(p: &Path) -> Vec<u8> {
    p.file_name()
        .map_or_else(|| b"root".to_vec(), |n| n.as_bytes().to_vec())
}

/// Backs up files and directories.
///
/// # Errors
/// `InvalidInput` for missing paths or clashing names; storage and I/O errors abort the
/// backup (unreadable single entries are skipped with a warning instead and counted in
/// `summary.errors`); `Interrupted` if cancelled. On any error no snapshot is written.
pub async fn backup_paths(
    repo: &Arc<Repository>,
    paths: &[PathBuf],
    opts: &BackupOptions,
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let time = jiff::Timestamp::now();
    if paths.is_empty() {
        return Err(Error::InvalidInput(
            "nothing to back up: give at least one path".into(),
        ));
    }
    let mut abs = Vec::new();
    for p in paths {
        let a = std::path::absolute(p).map_err(|e| Error::io("resolve", p, e))?;
        std::fs::symlink_metadata(&a).map_err(|e| Error::io("stat", &a, e))?;
        abs.push(a);
    }
    abs.sort();
    abs.dedup();
    let mut names: Vec<Vec<u8>> = abs.iter().map(|p| base_name(p)).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::InvalidInput(
            "two paths have the same final name; back them up separately".into(),
        ));
    }
    let (host, user) = hostname(opts);
    let shown: Vec<String> = abs.iter().map(|p| p.display().to_string()).collect();
    let identity = opts
        .identity
        .clone()
        .unwrap_or_else(|| format!("tree:{host}:{}", shown.join(",")));
    let parent = if opts.full && opts.parent == ParentChoice::Auto {
        None
    } else {
        resolve_parent(repo, opts, &identity).await?
    };
    let parent_root = parent.as_ref().and_then(|(_, s)| match &s.root {
        Root::Node(n) => Some((**n).clone()),
        Root::Volume(_) => None,
    });
    progress.start("backup", None, None);
    crate::immutable::prepare(repo, opts.retain_until).await?;
    let session = Session::start(repo, opts.upload_concurrency).await?;
    let archiver = Arc::new(Archiver {
        repo: repo.clone(),
        writer: session.writer.clone(),
        tx: session.tx.clone(),
        cdc: cdc_params(repo)?,
        full: opts.full,
        progress: progress.clone(),
        cancel: cancel.clone(),
        stats: TreeStats::default(),
    });
    let root = match archive_roots(&archiver, &abs, parent_root.as_ref()).await {
        Ok(r) => r,
        Err(e) => {
            drop(archiver);
            return Err(session.abort(e).await);
        }
    };
    let st = &archiver.stats;
    let summary = SnapshotSummary {
        files: st.files.load(Ordering::Relaxed),
        dirs: st.dirs.load(Ordering::Relaxed),
        files_read: st.files_read.load(Ordering::Relaxed),
        total_bytes: st.total_bytes.load(Ordering::Relaxed),
        bytes_read: st.bytes_read.load(Ordering::Relaxed),
        errors: st.errors.load(Ordering::Relaxed),
        ..SnapshotSummary::default()
    };
    drop(archiver);
    let snap = Snapshot {
        version: 1,
        time,
        hostname: host,
        username: user,
        tags: opts.tags.clone(),
        source: Source {
            kind: SourceKind::Tree,
            paths: shown,
            identity,
        },
        parent: parent.map(|(id, _)| id),
        root: Root::Node(Box::new(root)),
        summary,
        program: program(),
        retain_until: None,
    };
    progress.finish();
    commit(repo, session, snap, opts.retain_until, started, &cancel).await
}

async fn archive_roots(
    a: &Arc<Archiver>,
    paths: &[PathBuf],
    parent: Option<&Node>,
) -> Result<Node> {
    if let [single] = paths {
        return a.archive_root(single, base_name(single), parent).await;
    }
    // Several paths: a synthetic directory holding each under its final name.
    let parent_tree = match parent.and_then(|p| p.subtree) {
        Some(id) => a.repo.load_tree(&id).await.ok(),
        None => None,
    };
    let mut nodes = Vec::new();
    for p in paths {
        let name = base_name(p);
        let old = parent_tree
            .as_ref()
            .and_then(|t| t.nodes.iter().find(|n| n.name == name));
        nodes.push(a.archive_root(p, name, old).await?);
    }
    nodes.sort_by(|x, y| x.name.cmp(&y.name));
    let bytes = Tree { nodes }
        .to_bytes()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let id = blob_id(a.repo.key(), &bytes);
    ship(&a.tx, a.writer.add(BlobKind::Tree, id, &bytes)?).await?;
    let mut root = Node::new(Vec::new(), NodeKind::Dir);
    root.mode = 0o755;
    root.mtime_ns = jiff::Timestamp::now().as_nanosecond() as i64;
    root.subtree = Some(id);
    Ok(root)
}

/// Backs up a stream (standard input: a logical dump) as one file named `name`.
///
/// # Errors
/// Read, storage errors; `Interrupted`. No snapshot on error.
pub async fn backup_stream<R: Read + Send + 'static>(
    repo: &Arc<Repository>,
    reader: R,
    name: &str,
    opts: &BackupOptions,
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<BackupOutcome> {
    let started = Instant::now();
    let time = jiff::Timestamp::now();
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::InvalidInput(format!("invalid stream name {name:?}")));
    }
    let (host, user) = hostname(opts);
    let identity = opts
        .identity
        .clone()
        .unwrap_or_else(|| format!("stream:{host}:{name}"));
    let parent = if opts.parent == ParentChoice::None {
        None
    } else {
        resolve_parent(repo, opts, &identity).await?
    };
    progress.start("backup", None, None);
    crate::immutable::prepare(repo, opts.retain_until).await?;
    let session = Session::start(repo, opts.upload_concurrency).await?;
    let (writer, tx, key, cdc) = (
        session.writer.clone(),
        session.tx.clone(),
        repo.key().clone(),
        cdc_params(repo)?,
    );
    let p2 = progress.clone();
    let cancel2 = cancel.clone();
    let stream = name.to_owned();
    let result = cpu(move || -> Result<(Vec<Extent>, u64)> {
        let mut chunker = StreamChunker::new(reader, cdc);
        let mut extents = Vec::new();
        let mut total = 0u64;
        while let Some(chunk) = chunker
            .next_chunk()
            .map_err(|e| Error::io("read the stream", &stream, e))?
        {
            if cancel2.is_cancelled() {
                return Err(Error::Interrupted);
            }
            let id = blob_id(&key, &chunk);
            ship_blocking(&tx, writer.add(BlobKind::Data, id, &chunk)?)?;
            total += chunk.len() as u64;
            p2.add_bytes(chunk.len() as u64);
            extents.push(Extent::Data {
                id,
                len: chunk.len() as u32,
            });
        }
        Ok((extents, total))
    })
    .await
    .and_then(|r| r);
    let (content, size) = match result {
        Ok(r) => r,
        Err(e) => return Err(session.abort(e).await),
    };
    let mut node = Node::new(name.as_bytes().to_vec(), NodeKind::File);
    node.mode = 0o644;
    node.size = size;
    node.mtime_ns = time.as_nanosecond() as i64;
    node.atime_ns = node.mtime_ns;
    node.content = content;
    let snap = Snapshot {
        version: 1,
        time,
        hostname: host,
        username: user,
        tags: opts.tags.clone(),
        source: Source {
            kind: SourceKind::Stream,
            paths: vec![name.to_string()],
            identity,
        },
        parent: parent.map(|(id, _)| id),
        root: Root::Node(Box::new(node)),
        summary: SnapshotSummary {
            files: 1,
            files_read: 1,
            total_bytes: size,
            bytes_read: size,
            ..SnapshotSummary::default()
        },
        program: program(),
        retain_until: None,
    };
    progress.finish();
    commit(repo, session, snap, opts.retain_until, started, &cancel).await
}
