//! Async object storage for Cairn repositories.
//!
//! A repository is a flat set of immutable objects named by '/'-separated relative paths
//! (`config`, `keys/<id>`, `data/ab/<id>`, `index/<id>`, `snapshots/<id>`, `locks/<id>`).
//! [`Storage`] is the one trait every backend implements; the engine never sees a backend type.
//!
//! Backends: [`memory`] (tests), [`local`] (a path: local disk or a mounted NFS share; the
//! embedded default), and [`remote`] (S3, Azure Blob, GCS through Apache `OpenDAL`).
//! Layers wrap a `Storage` and are `Storage` themselves: [`retry`], [`throttle`].

mod error;
pub mod local;
mod location;
pub mod memory;
mod path;
pub mod remote;
pub mod retry;
pub mod throttle;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use error::{Error, ErrorKind, ErrorStatus, Result};
pub use local::LocalStorage;
pub use location::Location;
pub use memory::MemoryStorage;
pub use remote::{RemoteOptions, RemoteService, RemoteStorage};
pub use retry::{RetryOptions, RetryStorage};
pub use throttle::ThrottleStorage;

/// One object found by [`Storage::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the repository root, e.g. `data/ab/ab12…`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a backend can do beyond the basics. The behaviour suite gates trials on these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capability {
    /// `write` is atomic and durable when it returns (readers see all or nothing).
    pub atomic_write: bool,
    /// `write_new` fails with `AlreadyExists` when the object exists (conditional put).
    pub write_if_absent: bool,
    /// Objects can be locked against deletion until a time (S3 Object Lock).
    pub object_lock: bool,
}

/// An async object store holding one repository.
///
/// Every method takes a path relative to the repository root. Objects are written whole and
/// never modified in place. Implementations are cheap to clone behind an `Arc`.
#[async_trait]
pub trait Storage: Send + Sync + Debug {
    /// A human-readable name of the location (`/srv/backup`, `s3://bucket/prefix`), without
    /// any secret. Used in error messages and logs.
    fn location(&self) -> &str;

    /// What this backend supports.
    fn capability(&self) -> Capability;

    /// Reads a whole object. A missing object is `ErrorKind::NotFound`.
    async fn read(&self, path: &str) -> Result<Bytes>;

    /// Reads `len` bytes at `offset`. Reading past the end is `ErrorKind::Corrupt`
    /// (a truncated object), never a short read.
    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes>;

    /// Writes a whole object, replacing any previous one. When this returns `Ok`, the object
    /// is durable and readers see either nothing or all of it.
    async fn write(&self, path: &str, data: Bytes) -> Result<()>;

    /// Writes a whole object only if no object exists at `path`; otherwise
    /// `ErrorKind::AlreadyExists` and nothing is written.
    async fn write_new(&self, path: &str, data: Bytes) -> Result<()>;

    /// The size of an object, or `None` if it does not exist.
    async fn stat(&self, path: &str) -> Result<Option<u64>>;

    /// Lists every object under the directory `prefix` (e.g. `snapshots` or `data`),
    /// recursively. Order is unspecified. A missing directory lists as empty.
    async fn list(&self, prefix: &str) -> Result<Vec<Entry>>;

    /// Deletes an object. Deleting a missing object succeeds.
    async fn delete(&self, path: &str) -> Result<()>;

    /// Locks an object against deletion and overwrite until `until` (S3 Object Lock
    /// retention). A lock that already lasts longer is left as it is: locks only grow.
    /// `Unsupported` on backends without [`Capability::object_lock`], and on a store whose
    /// bucket has no object lock enabled; `NotFound` for a missing object.
    async fn retain(&self, path: &str, until: jiff::Timestamp) -> Result<()>;

    /// When the lock on an object ends, or `None` if it has none (always `None` on backends
    /// without locks). `NotFound` for a missing object.
    async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>>;
}

/// A shared handle to any backend.
pub type DynStorage = Arc<dyn Storage>;

/// A shared handle is a storage too, so layers can wrap a [`DynStorage`].
#[async_trait]
impl<T: Storage + ?Sized> Storage for Arc<T> {
    fn location(&self) -> &str {
        (**self).location()
    }

    fn capability(&self) -> Capability {
        (**self).capability()
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        (**self).read(path).await
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes> {
        (**self).read_range(path, offset, len).await
    }

    async fn write(&self, path: &str, data: Bytes) -> Result<()> {
        (**self).write(path, data).await
    }

    async fn write_new(&self, path: &str, data: Bytes) -> Result<()> {
        (**self).write_new(path, data).await
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        (**self).stat(path).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        (**self).list(prefix).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        (**self).delete(path).await
    }

    async fn retain(&self, path: &str, until: jiff::Timestamp) -> Result<()> {
        (**self).retain(path, until).await
    }

    async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>> {
        (**self).retained_until(path).await
    }
}

/// The error of [`Storage::retain`] on a backend without object lock.
pub fn lock_unsupported(location: &str, path: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        "this location cannot lock objects (object lock needs S3 with Object Lock enabled)",
    )
    .with_context("operation", "retain")
    .with_context("location", location)
    .with_context("path", path)
}
