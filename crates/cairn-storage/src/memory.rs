//! The in-memory backend, for tests.
//!
//! Objects live in a sorted map behind a mutex, so every operation is atomic. Besides the
//! [`Storage`] methods, [`MemoryStorage`] lets tests damage objects in place
//! ([`corrupt`](MemoryStorage::corrupt), [`truncate`](MemoryStorage::truncate),
//! [`remove`](MemoryStorage::remove)) to exercise `check` and `repair`.
//!
//! [`MemoryStorage::with_object_lock`] makes one that locks objects the way a versioned
//! S3 bucket with Object Lock in compliance mode does: a locked object can be neither
//! deleted nor overwritten (`Locked`) until its time has passed, and locks only grow.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::path as object_path;
use crate::{Capability, Entry, Error, ErrorKind, Result, Storage};

#[cfg(test)]
mod tests;

/// A repository held in memory. Clones share the same objects.
#[derive(Clone, Default)]
pub struct MemoryStorage {
    objects: Arc<Mutex<BTreeMap<String, Bytes>>>,
    /// `Some` when objects can be locked: each locked object and when its lock ends.
    locks: Option<Arc<Mutex<BTreeMap<String, jiff::Timestamp>>>>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty storage that can lock objects (see the [module docs](self)).
    pub fn with_object_lock() -> Self {
        Self {
            objects: Arc::default(),
            locks: Some(Arc::default()),
        }
    }

    /// `Locked` if `path` is locked now.
    fn check_unlocked(&self, operation: &'static str, path: &str) -> Result<()> {
        let Some(locks) = &self.locks else {
            return Ok(());
        };
        match locks.lock().get(path) {
            Some(until) if *until > jiff::Timestamp::now() => Err(Error::new(
                ErrorKind::Locked,
                format!("object is locked until {until}"),
            )
            .with_context("operation", operation)
            .with_context("location", "memory")
            .with_context("path", path)),
            _ => Ok(()),
        }
    }

    /// Flips the lowest bit of byte `byte_index` of an object.
    ///
    /// # Errors
    ///
    /// `NotFound` if the object does not exist, `Unexpected` if it is too short.
    pub fn corrupt(&self, path: &str, byte_index: usize) -> Result<()> {
        let mut objects = self.objects.lock();
        let data = objects
            .get_mut(path)
            .ok_or_else(|| not_found("corrupt", path))?;
        if byte_index >= data.len() {
            return Err(Error::new(
                ErrorKind::Unexpected,
                format!("object is only {} bytes", data.len()),
            )
            .with_context("operation", "corrupt")
            .with_context("path", path));
        }
        let mut damaged = BytesMut::from(&data[..]);
        damaged[byte_index] ^= 1;
        *data = damaged.freeze();
        Ok(())
    }

    /// Cuts an object down to `len` bytes (no-op if it is already shorter).
    ///
    /// # Errors
    ///
    /// `NotFound` if the object does not exist.
    pub fn truncate(&self, path: &str, len: usize) -> Result<()> {
        let mut objects = self.objects.lock();
        let data = objects
            .get_mut(path)
            .ok_or_else(|| not_found("truncate", path))?;
        data.truncate(len);
        Ok(())
    }

    /// Removes an object, returning whether it existed.
    pub fn remove(&self, path: &str) -> bool {
        self.objects.lock().remove(path).is_some()
    }

    /// Every object path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.objects.lock().keys().cloned().collect()
    }

    /// Puts an object in place directly, bypassing path checks (to plant odd fixtures).
    pub fn insert(&self, path: impl Into<String>, data: Bytes) {
        self.objects.lock().insert(path.into(), data);
    }

    /// The total size of every object in bytes.
    pub fn total_size(&self) -> u64 {
        self.objects
            .lock()
            .values()
            .map(|data| data.len() as u64)
            .sum()
    }
}

impl fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("objects", &self.objects.lock().len())
            .field("object_lock", &self.locks.is_some())
            .finish()
    }
}

fn not_found(operation: &'static str, path: &str) -> Error {
    Error::new(ErrorKind::NotFound, "object not found")
        .with_context("operation", operation)
        .with_context("location", "memory")
        .with_context("path", path)
}

#[async_trait]
impl Storage for MemoryStorage {
    fn location(&self) -> &'static str {
        "memory"
    }

    fn capability(&self) -> Capability {
        Capability {
            atomic_write: true,
            write_if_absent: true,
            object_lock: self.locks.is_some(),
        }
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let path = object_path::object(path)?;
        self.objects
            .lock()
            .get(path)
            .cloned()
            .ok_or_else(|| not_found("read", path))
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes> {
        let path = object_path::object(path)?;
        let data = self
            .objects
            .lock()
            .get(path)
            .cloned()
            .ok_or_else(|| not_found("read_range", path))?;
        let size = data.len() as u64;
        match offset.checked_add(len) {
            Some(end) if end <= size => Ok(data.slice(offset as usize..end as usize)),
            _ => Err(Error::new(
                ErrorKind::Corrupt,
                format!("object is {size} bytes, cannot read {len} bytes at offset {offset}"),
            )
            .with_context("operation", "read_range")
            .with_context("location", "memory")
            .with_context("path", path)),
        }
    }

    async fn write(&self, path: &str, data: Bytes) -> Result<()> {
        let path = object_path::object(path)?;
        self.check_unlocked("write", path)?;
        self.objects.lock().insert(path.to_owned(), data);
        Ok(())
    }

    async fn write_new(&self, path: &str, data: Bytes) -> Result<()> {
        let path = object_path::object(path)?;
        let mut objects = self.objects.lock();
        if objects.contains_key(path) {
            return Err(
                Error::new(ErrorKind::AlreadyExists, "object already exists")
                    .with_context("operation", "write_new")
                    .with_context("location", "memory")
                    .with_context("path", path),
            );
        }
        objects.insert(path.to_owned(), data);
        Ok(())
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        let path = object_path::object(path)?;
        Ok(self.objects.lock().get(path).map(|data| data.len() as u64))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let prefix = object_path::prefix(prefix)?;
        let objects = self.objects.lock();
        if prefix.is_empty() {
            return Ok(objects.iter().map(entry).collect());
        }
        let dir = format!("{prefix}/");
        Ok(objects
            .range(dir.clone()..)
            .take_while(|(path, _)| path.starts_with(&dir))
            .map(entry)
            .collect())
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let path = object_path::object(path)?;
        self.check_unlocked("delete", path)?;
        self.objects.lock().remove(path);
        Ok(())
    }

    async fn retain(&self, path: &str, until: jiff::Timestamp) -> Result<()> {
        let path = object_path::object(path)?;
        let Some(locks) = &self.locks else {
            return Err(crate::lock_unsupported("memory", path));
        };
        if !self.objects.lock().contains_key(path) {
            return Err(not_found("retain", path));
        }
        let mut locks = locks.lock();
        let lock = locks.entry(path.to_owned()).or_insert(until);
        *lock = (*lock).max(until);
        Ok(())
    }

    async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>> {
        let path = object_path::object(path)?;
        if !self.objects.lock().contains_key(path) {
            return Err(not_found("retained_until", path));
        }
        Ok(self
            .locks
            .as_ref()
            .and_then(|locks| locks.lock().get(path).copied()))
    }
}

fn entry((path, data): (&String, &Bytes)) -> Entry {
    Entry {
        path: path.clone(),
        size: data.len() as u64,
    }
}
