//! The local backend: a directory on a local disk or a mounted network share (NFS).
//!
//! This is the embedded default, so it must be both fast and durable. Every write goes to a
//! `.tmp-<random>` file in the target's own directory, is `fsync`ed, renamed over the target,
//! and then the directory is `fsync`ed so the rename itself survives a crash. `write_new`
//! publishes the temporary file with `renameat2(RENAME_NOREPLACE)` (falling back to
//! `link(2)` where the filesystem lacks it, e.g. NFS), so "create only if absent" is a single
//! atomic step and a reader never sees a half-written object. Directories are created on
//! demand; each new directory's parent is `fsync`ed once and the directory is remembered, so
//! later writes only pay for the one unavoidable directory `fsync` after their rename.
//!
//! # Why not `OpenDAL`'s `fs` service
//!
//! `OpenDAL` 0.59's `fs` writer (crate `opendal-service-fs`, `writer.rs`/`core.rs`) does not give
//! these guarantees:
//! - Without `atomic_write_dir` it opens the target itself (`create` + `truncate`) and writes
//!   in place, so a reader or a crash can observe a partial object. It `sync_all`s the file
//!   on close but never `fsync`s the directory.
//! - With `atomic_write_dir` it writes a temporary file in that directory, `sync_all`s it and
//!   `rename`s it over the target, but again never `fsync`s the parent directory, so the
//!   rename can be lost on power failure.
//! - Its `if_not_exists` is either `create_new` on the target (atomic, but the object is
//!   visible while half-written and a crash leaves a torn object that blocks every later
//!   attempt) or, with `atomic_write_dir`, a `try_exists` check followed by a plain `rename`
//!   that overwrites: a check-then-act race between two writers.
//!
//! Reads use positional I/O (`pread`), and a range past the end of an object is
//! [`ErrorKind::Corrupt`], never a short read. Deletes do not `fsync` the directory: a delete
//! lost in a crash only leaves garbage (or a stale lock) that prune and lock expiry handle.

use std::collections::HashSet;
use std::fmt;
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::path::{self as object_path, TMP_PREFIX};
use crate::{Capability, Entry, Error, ErrorKind, Result, Storage};

#[cfg(test)]
mod tests;

/// A repository in a local directory. See the [module docs](self) for the durability rules.
#[derive(Clone)]
pub struct LocalStorage {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    location: String,
    /// Directories known to exist with a durable entry in their parent.
    known_dirs: Mutex<HashSet<PathBuf>>,
}

/// How a write publishes its temporary file.
#[derive(Clone, Copy)]
enum Publish {
    /// `rename`, replacing any existing object.
    Replace,
    /// Fail with `AlreadyExists` if the object exists.
    NoReplace,
}

impl LocalStorage {
    /// A storage rooted at `root`. Nothing is touched until the first operation; the root
    /// and any subdirectory are created on the first write below them.
    pub fn new(root: PathBuf) -> Self {
        let location = root.display().to_string();
        Self {
            inner: Arc::new(Inner {
                root,
                location,
                known_dirs: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Runs blocking filesystem work on tokio's blocking pool and maps its error.
    async fn blocking<T, F>(&self, operation: &'static str, path: &str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> io::Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || work(&inner)).await;
        let result = joined.map_err(|err| {
            Error::new(ErrorKind::Unexpected, "local storage task failed")
                .with_source(err)
                .with_context("operation", operation)
                .with_context("location", self.inner.location.as_str())
                .with_context("path", path)
        })?;
        result.map_err(|err| map_io_error(err, operation, &self.inner.location, path))
    }
}

impl fmt::Debug for LocalStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalStorage")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Storage for LocalStorage {
    fn location(&self) -> &str {
        &self.inner.location
    }

    fn capability(&self) -> Capability {
        Capability {
            atomic_write: true,
            write_if_absent: true,
            object_lock: false,
        }
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let rel = object_path::object(path)?.to_owned();
        self.blocking("read", path, move |inner| {
            fs_err::read(inner.root.join(rel)).map(Bytes::from)
        })
        .await
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes> {
        let rel = object_path::object(path)?.to_owned();
        self.blocking("read_range", path, move |inner| {
            read_range(&inner.root.join(rel), offset, len)
        })
        .await
    }

    async fn write(&self, path: &str, data: Bytes) -> Result<()> {
        let rel = object_path::object(path)?.to_owned();
        self.blocking("write", path, move |inner| {
            inner.write(&rel, &data, Publish::Replace)
        })
        .await
    }

    async fn write_new(&self, path: &str, data: Bytes) -> Result<()> {
        let rel = object_path::object(path)?.to_owned();
        self.blocking("write_new", path, move |inner| {
            inner.write(&rel, &data, Publish::NoReplace)
        })
        .await
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        let rel = object_path::object(path)?.to_owned();
        self.blocking("stat", path, move |inner| {
            match fs_err::metadata(inner.root.join(rel)) {
                Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
                Ok(_) => Ok(None),
                Err(err) if is_missing(&err) => Ok(None),
                Err(err) => Err(err),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let rel = object_path::prefix(prefix)?.to_owned();
        self.blocking("list", prefix, move |inner| inner.list(&rel))
            .await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let rel = object_path::object(path)?.to_owned();
        self.blocking("delete", path, move |inner| {
            match fs_err::remove_file(inner.root.join(rel)) {
                Err(err) if is_missing(&err) => Ok(()),
                other => other,
            }
        })
        .await
    }

    async fn retain(&self, path: &str, _until: jiff::Timestamp) -> Result<()> {
        Err(crate::lock_unsupported(&self.inner.location, path))
    }

    async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>> {
        match self.stat(path).await? {
            Some(_) => Ok(None),
            None => Err(Error::new(ErrorKind::NotFound, "object not found")
                .with_context("operation", "retained_until")
                .with_context("location", self.inner.location.as_str())
                .with_context("path", path)),
        }
    }
}

impl Inner {
    fn write(&self, rel: &str, data: &[u8], publish: Publish) -> io::Result<()> {
        let target = self.root.join(rel);
        let dir = target
            .parent()
            .ok_or_else(|| io::Error::other("object path has no parent"))?;
        self.ensure_dir(dir)?;
        let tmp = dir.join(tmp_name()?);
        let written = match write_tmp(&tmp, data) {
            // The directory vanished under us (removed by hand?): forget it and retry once.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                self.known_dirs.lock().remove(dir);
                self.ensure_dir(dir)?;
                write_tmp(&tmp, data)
            }
            other => other,
        };
        let published = written.and_then(|()| match publish {
            Publish::Replace => fs_err::rename(&tmp, &target),
            Publish::NoReplace => rename_no_replace(&tmp, &target),
        });
        if let Err(err) = published {
            // Best effort: a leftover temporary file is invisible to `list` and harmless.
            if let Err(cleanup) = std::fs::remove_file(&tmp)
                && cleanup.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %tmp.display(), error = &cleanup as &dyn std::error::Error, "removing temporary file failed");
            }
            return Err(err);
        }
        sync_dir(dir)
    }

    /// Makes sure `dir` exists and its entry is durable, creating missing ancestors.
    fn ensure_dir(&self, dir: &Path) -> io::Result<()> {
        if self.known_dirs.lock().contains(dir) {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut current = dir;
        loop {
            match fs_err::metadata(current) {
                Ok(meta) if meta.is_dir() => break,
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        format!("`{}` exists and is not a directory", current.display()),
                    ));
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    missing.push(current);
                    match current.parent() {
                        Some(parent) if !parent.as_os_str().is_empty() => current = parent,
                        _ => break,
                    }
                }
                Err(err) => return Err(err),
            }
        }
        for new_dir in missing.iter().rev() {
            match fs_err::create_dir(new_dir) {
                // Another writer may have created it but not yet synced its parent, so sync
                // in both cases.
                Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
                _ => {}
            }
            if let Some(parent) = new_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        self.known_dirs.lock().insert(dir.to_path_buf());
        Ok(())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut pending = vec![prefix.to_owned()];
        while let Some(rel_dir) = pending.pop() {
            let dir = if rel_dir.is_empty() {
                self.root.clone()
            } else {
                self.root.join(&rel_dir)
            };
            let read_dir = match fs_err::read_dir(&dir) {
                Ok(read_dir) => read_dir,
                Err(err) if is_missing(&err) => continue,
                Err(err) => return Err(err),
            };
            for dir_entry in read_dir {
                let dir_entry = dir_entry?;
                let Ok(name) = dir_entry.file_name().into_string() else {
                    tracing::warn!(dir = %dir.display(), "skipping a file name that is not UTF-8");
                    continue;
                };
                if name.starts_with(TMP_PREFIX) {
                    continue;
                }
                let rel = if rel_dir.is_empty() {
                    name
                } else {
                    format!("{rel_dir}/{name}")
                };
                // `DirEntry::metadata` does not follow symlinks; `fs::metadata` does.
                let meta = match fs_err::metadata(dir_entry.path()) {
                    Ok(meta) => meta,
                    // Deleted while we were listing.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                };
                if meta.is_dir() {
                    pending.push(rel);
                } else if meta.is_file() {
                    entries.push(Entry {
                        path: rel,
                        size: meta.len(),
                    });
                }
            }
        }
        Ok(entries)
    }
}

fn write_tmp(tmp: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)?;
    file.write_all(data)?;
    file.sync_all()
}

fn read_range(path: &Path, offset: u64, len: u64) -> io::Result<Bytes> {
    let file = fs_err::File::open(path)?;
    let size = file.metadata()?.len();
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("object is {size} bytes, cannot read {len} bytes at offset {offset}"),
        ));
    }
    let len = usize::try_from(len).map_err(io::Error::other)?;
    let mut buf = vec![0; len];
    file.file().read_exact_at(&mut buf, offset)?;
    Ok(Bytes::from(buf))
}

/// Publishes `tmp` at `target` only if `target` does not exist, atomically.
fn rename_no_replace(tmp: &Path, target: &Path) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, tmp, CWD, target, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            // The kernel or filesystem lacks RENAME_NOREPLACE (e.g. NFS): use link(2).
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(errno) => return Err(io::Error::from(errno)),
        }
    }
    // link(2) fails with EEXIST if the target exists; then drop the temporary name.
    fs_err::hard_link(tmp, target)?;
    if let Err(err) = std::fs::remove_file(tmp) {
        tracing::warn!(path = %tmp.display(), error = &err as &dyn std::error::Error, "removing temporary link failed");
    }
    Ok(())
}

/// `fsync`s a directory so the entries created or renamed in it are durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match fs_err::File::open(dir)?.sync_all() {
        // Some filesystems cannot fsync a directory; there is nothing more we can do there.
        Err(err) if err.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

fn tmp_name() -> io::Result<String> {
    let mut random = [0_u8; 8];
    getrandom::fill(&mut random)
        .map_err(|err| io::Error::other(format!("no randomness for a temporary name: {err}")))?;
    Ok(format!("{TMP_PREFIX}{}", hex::encode(random)))
}

/// True for errors that mean "there is no object here".
fn is_missing(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

/// Maps an I/O error onto the storage error, with context.
pub(crate) fn map_io_error(
    err: io::Error,
    operation: &'static str,
    location: &str,
    path: &str,
) -> Error {
    use io::ErrorKind as Io;
    let (kind, temporary) = match err.kind() {
        Io::NotFound | Io::NotADirectory | Io::IsADirectory => (ErrorKind::NotFound, false),
        Io::PermissionDenied | Io::ReadOnlyFilesystem => (ErrorKind::PermissionDenied, false),
        Io::AlreadyExists => (ErrorKind::AlreadyExists, false),
        Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge => (ErrorKind::StorageFull, false),
        Io::UnexpectedEof => (ErrorKind::Corrupt, false),
        Io::Interrupted
        | Io::WouldBlock
        | Io::TimedOut
        | Io::ResourceBusy
        | Io::StaleNetworkFileHandle
        | Io::ConnectionReset
        | Io::ConnectionAborted
        | Io::NetworkDown
        | Io::HostUnreachable
        | Io::NetworkUnreachable => (ErrorKind::Unexpected, true),
        _ => (ErrorKind::Unexpected, false),
    };
    let message = match kind {
        ErrorKind::NotFound => "object not found",
        ErrorKind::AlreadyExists => "object already exists",
        ErrorKind::Corrupt => "object is shorter than expected",
        ErrorKind::StorageFull => "no space left or quota exceeded",
        ErrorKind::PermissionDenied => "permission denied",
        _ => "local filesystem error",
    };
    let error = Error::new(kind, message)
        .with_source(err)
        .with_context("operation", operation)
        .with_context("location", location)
        .with_context("path", path);
    if temporary { error.temporary() } else { error }
}
