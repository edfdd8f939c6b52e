//! The remote backends: S3, Azure Blob and GCS through Apache `OpenDAL`.
//!
//! [`RemoteStorage`] wraps an [`opendal::Operator`] rooted at the repository prefix and maps
//! `OpenDAL`'s errors onto ours (its `is_temporary()` becomes our `Temporary` status, and
//! `RateLimited` is always temporary). It adds no retrying of its own: [`Location::open`]
//! wraps it in [`RetryStorage`](crate::retry::RetryStorage).
//!
//! `write_new` uses `OpenDAL`'s conditional write (`if_not_exists`, i.e. `If-None-Match: *`)
//! where the service supports it. Elsewhere it falls back to `stat` then `write`, which
//! races: two writers can both see "absent" and the later one wins. The capability
//! `write_if_absent` reports which one a backend has, so the engine can tell.
//!
//! Large objects go up as multipart uploads in chunks of
//! [`chunk_size`](RemoteOptions::chunk_size), several parts at a time.
//!
//! [`Location::open`]: crate::Location::open

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use opendal::Operator;

use crate::path as object_path;
use crate::{Capability, Entry, Error, ErrorKind, Result, Storage};

mod backend;
mod config;
mod lock;
#[cfg(test)]
mod tests;

pub use config::RemoteOptions;
pub use lock::LockMode;

/// Parts uploaded in parallel per object, by default.
const DEFAULT_CONCURRENCY: usize = 4;
/// Multipart chunk size by default: above the default pack size (16 MiB), so a pack goes up
/// in one PUT. Split into parts, a 16 MiB pack costs three more requests, and servers that
/// assemble parts by copying write every byte twice: s3s-fs used half the CPU and the backup
/// ran faster with one PUT per pack (docs/benchmarks.md).
const DEFAULT_CHUNK_SIZE: usize = 32 * 1024 * 1024;
/// S3's (and GCS's) minimum part size.
const MIN_CHUNK_SIZE: usize = 5 * 1024 * 1024;

/// A cloud object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoteService {
    /// Amazon S3 or an S3-compatible server (`s3://bucket/prefix`).
    S3,
    /// Azure Blob Storage (`azblob://container/prefix`).
    Azblob,
    /// Google Cloud Storage (`gs://bucket/prefix`).
    Gcs,
}

impl RemoteService {
    /// The URL scheme (`s3`, `azblob`, `gs`).
    pub fn scheme(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Azblob => "azblob",
            Self::Gcs => "gs",
        }
    }
}

/// A repository in a bucket, through `OpenDAL`. See the [module docs](self).
#[derive(Clone)]
pub struct RemoteStorage {
    op: Operator,
    location: String,
    capability: Capability,
    conditional_write: bool,
    chunk_size: usize,
    concurrency: usize,
    /// Object Lock requests (S3 only).
    lock: Option<std::sync::Arc<lock::S3Lock>>,
}

impl RemoteStorage {
    /// Connects to `bucket` (or Azure container) with the repository under `prefix`.
    /// No request is made until the first operation.
    ///
    /// # Errors
    ///
    /// `ConfigInvalid` if the options do not make a valid configuration.
    pub fn new(
        service: RemoteService,
        bucket: &str,
        prefix: &str,
        opts: &RemoteOptions,
    ) -> Result<Self> {
        let prefix = object_path::prefix(prefix)
            .map_err(|err| Error::new(ErrorKind::ConfigInvalid, err.message()))?;
        let op = backend::operator(service, bucket, prefix, opts)?;
        let location = if prefix.is_empty() {
            format!("{}://{bucket}", service.scheme())
        } else {
            format!("{}://{bucket}/{prefix}", service.scheme())
        };
        let mut storage = Self::from_operator(op, location.clone());
        if service == RemoteService::S3 {
            storage.lock = Some(std::sync::Arc::new(lock::S3Lock::new(
                bucket, prefix, opts, location,
            )?));
            storage.capability.object_lock = true;
        }
        storage.chunk_size = opts
            .chunk_size
            .unwrap_or(DEFAULT_CHUNK_SIZE)
            .max(MIN_CHUNK_SIZE);
        storage.concurrency = opts.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1);
        Ok(storage)
    }

    /// Wraps a ready operator (any `OpenDAL` service, e.g. `memory` in tests). `location` is
    /// the name shown in errors and logs; it must not contain secrets.
    pub fn from_operator(op: Operator, location: impl Into<String>) -> Self {
        let info = op.info().capability();
        let conditional_write = info.write_with_if_not_exists;
        Self {
            op,
            location: location.into(),
            capability: Capability {
                atomic_write: true,
                write_if_absent: conditional_write,
                object_lock: false,
            },
            conditional_write,
            chunk_size: DEFAULT_CHUNK_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            lock: None,
        }
    }

    /// The underlying operator.
    pub fn operator(&self) -> &Operator {
        &self.op
    }

    fn error(&self, operation: &'static str, path: &str) -> impl FnOnce(opendal::Error) -> Error {
        let location = self.location.clone();
        let path = path.to_owned();
        move |err| map_error(err, operation, &location, &path)
    }
}

impl fmt::Debug for RemoteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStorage")
            .field("location", &self.location)
            .field("capability", &self.capability)
            .field("chunk_size", &self.chunk_size)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Storage for RemoteStorage {
    fn location(&self) -> &str {
        &self.location
    }

    fn capability(&self) -> Capability {
        self.capability
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let path = object_path::object(path)?;
        let buffer = self.op.read(path).await.map_err(self.error("read", path))?;
        Ok(buffer.to_bytes())
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes> {
        let path = object_path::object(path)?;
        let short = |got: &str| {
            Error::new(
                ErrorKind::Corrupt,
                format!("object is short: wanted {len} bytes at offset {offset}, {got}"),
            )
            .with_context("operation", "read_range")
            .with_context("location", self.location.as_str())
            .with_context("path", path)
        };
        let end = offset
            .checked_add(len)
            .ok_or_else(|| short("past any possible end"))?;
        if len == 0 {
            // An empty range is not a valid HTTP range; check the bounds with a stat.
            let size = self
                .op
                .stat(path)
                .await
                .map_err(self.error("read_range", path))?
                .content_length();
            return if offset <= size {
                Ok(Bytes::new())
            } else {
                Err(short(&format!("object is {size} bytes")))
            };
        }
        let err = match self.op.read_with(path).range(offset..end).await {
            Ok(buffer) if buffer.len() as u64 == len => return Ok(buffer.to_bytes()),
            Ok(buffer) => return Err(short(&format!("got {}", buffer.len()))),
            Err(err) if err.kind() == opendal::ErrorKind::RangeNotSatisfied => {
                return Err(short("the range is not satisfiable").with_source(err));
            }
            // Some services' errors carry the 416 only in the response they keep (GCS).
            Err(err) if err.to_string().contains("status: 416") => {
                return Err(short("the range is not satisfiable").with_source(err));
            }
            Err(err) => self.error("read_range", path)(err),
        };
        // OpenDAL reports a range that runs past the end as a generic error ("reader got too
        // little data"); ask for the size, on this error path only, to tell `Corrupt` apart.
        if err.kind() == ErrorKind::Unexpected
            && !err.is_temporary()
            && let Ok(meta) = self.op.stat(path).await
            && end > meta.content_length()
        {
            return Err(
                short(&format!("object is {} bytes", meta.content_length())).with_source(err)
            );
        }
        Err(err)
    }

    async fn write(&self, path: &str, data: Bytes) -> Result<()> {
        let path = object_path::object(path)?;
        self.op
            .write_with(path, data)
            .chunk(self.chunk_size)
            .concurrent(self.concurrency)
            .await
            .map_err(self.error("write", path))?;
        Ok(())
    }

    async fn write_new(&self, path: &str, data: Bytes) -> Result<()> {
        let path = object_path::object(path)?;
        if self.conditional_write {
            self.op
                .write_with(path, data)
                .if_not_exists(true)
                .chunk(self.chunk_size)
                .concurrent(self.concurrency)
                .await
                .map_err(self.error("write_new", path))?;
            return Ok(());
        }
        // No conditional put on this service: check, then write. Two racing writers can both
        // pass the check; `capability().write_if_absent` is false to say so.
        if self.stat(path).await?.is_some() {
            return Err(
                Error::new(ErrorKind::AlreadyExists, "object already exists")
                    .with_context("operation", "write_new")
                    .with_context("location", self.location.as_str())
                    .with_context("path", path),
            );
        }
        self.op
            .write_with(path, data)
            .chunk(self.chunk_size)
            .concurrent(self.concurrency)
            .await
            .map_err(self.error("write_new", path))?;
        Ok(())
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        let path = object_path::object(path)?;
        match self.op.stat(path).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.content_length())),
            Ok(_) => Ok(None),
            Err(err) if err.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(self.error("stat", path)(err)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let prefix = object_path::prefix(prefix)?;
        let dir = if prefix.is_empty() {
            "/".to_owned()
        } else {
            format!("{prefix}/")
        };
        let entries = match self.op.list_with(&dir).recursive(true).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(self.error("list", prefix)(err)),
        };
        Ok(entries
            .into_iter()
            .filter(|entry| entry.metadata().is_file())
            .map(|entry| Entry {
                size: entry.metadata().content_length(),
                path: entry.path().to_owned(),
            })
            .collect())
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let path = object_path::object(path)?;
        match self.op.delete(path).await {
            Err(err) if err.kind() != opendal::ErrorKind::NotFound => {
                Err(self.error("delete", path)(err))
            }
            _ => Ok(()),
        }
    }

    async fn retain(&self, path: &str, until: jiff::Timestamp) -> Result<()> {
        let path = object_path::object(path)?;
        match &self.lock {
            Some(lock) => lock.retain(path, until).await,
            None => Err(crate::lock_unsupported(&self.location, path)),
        }
    }

    async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>> {
        let path = object_path::object(path)?;
        match &self.lock {
            Some(lock) => lock.retained_until(path).await,
            None => match self.stat(path).await? {
                Some(_) => Ok(None),
                None => Err(Error::new(ErrorKind::NotFound, "object not found")
                    .with_context("operation", "retained_until")
                    .with_context("location", self.location.as_str())
                    .with_context("path", path)),
            },
        }
    }
}

/// Maps an `OpenDAL` error onto ours, keeping it as the source.
pub(crate) fn map_error(
    err: opendal::Error,
    operation: &'static str,
    location: &str,
    path: &str,
) -> Error {
    use opendal::ErrorKind as Odal;
    let (kind, message) = match err.kind() {
        Odal::NotFound | Odal::IsADirectory | Odal::NotADirectory => {
            (ErrorKind::NotFound, "object not found")
        }
        Odal::AlreadyExists | Odal::ConditionNotMatch => {
            (ErrorKind::AlreadyExists, "object already exists")
        }
        Odal::PermissionDenied => (ErrorKind::PermissionDenied, "permission denied"),
        Odal::ConfigInvalid => (ErrorKind::ConfigInvalid, "invalid remote configuration"),
        Odal::RangeNotSatisfied => (ErrorKind::Corrupt, "object is shorter than expected"),
        Odal::RateLimited => (ErrorKind::Unexpected, "rate limited"),
        _ => (ErrorKind::Unexpected, "remote storage error"),
    };
    let temporary = err.is_temporary() || err.kind() == Odal::RateLimited;
    let error = Error::new(kind, message)
        .with_source(err)
        .with_context("operation", operation)
        .with_context("location", location)
        .with_context("path", path);
    if temporary { error.temporary() } else { error }
}
