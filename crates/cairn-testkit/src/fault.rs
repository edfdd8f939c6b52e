//! [`FaultStorage`]: a layer that injects failures into any [`Storage`], for crash and retry
//! tests.
//!
//! Faults are armed on a shared handle and fire as calls come in:
//!
//! - **Write faults** fire on the Nth write, or on every write from the Nth on. Writes are
//!   `write` and `write_new` calls counted together, from 1, including calls that fail. A
//!   write fault can fail the write, *drop* it (report success, store nothing: a lost write)
//!   or *truncate* it (store only a prefix, then report success or an error: a torn write).
//! - **Read faults** fail `read` and `read_range` of paths under a prefix.
//! - **Temporary errors** fail the next K calls of any operation with a temporary error, or
//!   every Kth call, to exercise [`RetryStorage`](cairn_storage::RetryStorage).
//!
//! Temporary errors are checked first, then read or write faults. Every call is counted per
//! operation whether or not it fails; see [`FaultStorage::calls`].
//!
//! ```
//! # use cairn_storage::{ErrorKind, MemoryStorage};
//! # use cairn_testkit::{FaultStorage, Op};
//! let storage = FaultStorage::new(MemoryStorage::new());
//! storage.drop_write(3).fail_writes_from(5, ErrorKind::StorageFull);
//! assert_eq!(storage.calls(Op::Write), 0);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use cairn_storage::{Capability, Entry, Error, ErrorKind, ErrorStatus, Result, Storage};
use parking_lot::Mutex;

/// A storage operation, for counting calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`Storage::read`].
    Read,
    /// [`Storage::read_range`].
    ReadRange,
    /// [`Storage::write`].
    Write,
    /// [`Storage::write_new`].
    WriteNew,
    /// [`Storage::stat`].
    Stat,
    /// [`Storage::list`].
    List,
    /// [`Storage::delete`].
    Delete,
    /// [`Storage::retain`].
    Retain,
}

/// The error a fault returns: a kind and whether it is temporary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    /// The error kind.
    pub kind: ErrorKind,
    /// `Temporary` (retryable) or `Permanent`.
    pub status: ErrorStatus,
}

impl Injected {
    /// A permanent error of `kind`.
    pub fn permanent(kind: ErrorKind) -> Self {
        Self {
            kind,
            status: ErrorStatus::Permanent,
        }
    }

    /// A temporary (retryable) error of `kind`.
    pub fn temporary(kind: ErrorKind) -> Self {
        Self {
            kind,
            status: ErrorStatus::Temporary,
        }
    }

    fn to_error(self, op: Op, path: &str) -> Error {
        let error = Error::new(self.kind, "injected fault")
            .with_context("operation", format!("{op:?}"))
            .with_context("path", path);
        if self.status == ErrorStatus::Temporary {
            error.temporary()
        } else {
            error
        }
    }
}

/// When a write fault fires. Writes are counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// On the Nth write only.
    Nth(u64),
    /// On the Nth write and every one after it.
    From(u64),
}

impl Trigger {
    fn matches(self, write: u64) -> bool {
        match self {
            Self::Nth(n) => write == n,
            Self::From(n) => write >= n,
        }
    }
}

/// What a write fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteFault {
    /// Store nothing and return the error.
    Fail(Injected),
    /// Store nothing and return `Ok` (a lost write).
    Drop,
    /// Store only the first `len` bytes, then return `Ok` (`result: None`) or the error.
    Truncate {
        /// Bytes kept.
        len: usize,
        /// The outcome reported to the caller.
        result: Option<Injected>,
    },
}

#[derive(Default)]
struct State {
    calls: BTreeMap<Op, u64>,
    writes: u64,
    all_calls: u64,
    write_faults: Vec<(Trigger, WriteFault)>,
    read_faults: Vec<(String, Injected)>,
    temporary_next: u64,
    temporary_every: Option<u64>,
}

/// Wraps a [`Storage`] and injects faults. See the [module docs](self). Clones share the
/// armed faults and the counters.
#[derive(Clone)]
pub struct FaultStorage<S> {
    inner: S,
    state: Arc<Mutex<State>>,
}

impl<S: Storage> FaultStorage<S> {
    /// Wraps `inner` with no fault armed.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            state: Arc::default(),
        }
    }

    /// The wrapped storage (to inspect what was really stored).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Arms a write fault. The first armed fault whose trigger matches a write fires.
    pub fn arm_write(&self, trigger: Trigger, fault: WriteFault) -> &Self {
        self.state.lock().write_faults.push((trigger, fault));
        self
    }

    /// Fails the Nth write with a permanent error of `kind`.
    pub fn fail_write(&self, n: u64, kind: ErrorKind) -> &Self {
        self.arm_write(Trigger::Nth(n), WriteFault::Fail(Injected::permanent(kind)))
    }

    /// Fails the Nth write and every later one with a permanent error of `kind` (a crash
    /// at write N, or a full disk).
    pub fn fail_writes_from(&self, n: u64, kind: ErrorKind) -> &Self {
        self.arm_write(
            Trigger::From(n),
            WriteFault::Fail(Injected::permanent(kind)),
        )
    }

    /// Makes the Nth write report success without storing anything.
    pub fn drop_write(&self, n: u64) -> &Self {
        self.arm_write(Trigger::Nth(n), WriteFault::Drop)
    }

    /// Makes the Nth write store only its first `len` bytes; it then returns `Ok` if
    /// `result` is `None`, else a permanent error of that kind.
    pub fn truncate_write(&self, n: u64, len: usize, result: Option<ErrorKind>) -> &Self {
        self.arm_write(
            Trigger::Nth(n),
            WriteFault::Truncate {
                len,
                result: result.map(Injected::permanent),
            },
        )
    }

    /// Fails every `read` and `read_range` of a path starting with `prefix` (`""`: all).
    pub fn fail_reads(&self, prefix: impl Into<String>, kind: ErrorKind) -> &Self {
        self.state
            .lock()
            .read_faults
            .push((prefix.into(), Injected::permanent(kind)));
        self
    }

    /// Fails the next `k` calls, of any operation, with a temporary error.
    pub fn temporary_errors(&self, k: u64) -> &Self {
        self.state.lock().temporary_next += k;
        self
    }

    /// Fails every `k`th call (counting all operations from 1) with a temporary error, until
    /// disarmed. `k = 0` turns it off.
    pub fn temporary_every(&self, k: u64) -> &Self {
        self.state.lock().temporary_every = (k > 0).then_some(k);
        self
    }

    /// Removes every armed fault; counters stay.
    pub fn disarm(&self) -> &Self {
        let mut state = self.state.lock();
        state.write_faults.clear();
        state.read_faults.clear();
        state.temporary_next = 0;
        state.temporary_every = None;
        self
    }

    /// How many calls of `op` were made, failed ones included.
    pub fn calls(&self, op: Op) -> u64 {
        self.state.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// How many writes (`write` plus `write_new`) were made, failed ones included.
    pub fn writes(&self) -> u64 {
        self.state.lock().writes
    }

    /// Counts one call and decides whether a temporary error fires for it.
    fn enter(&self, op: Op, path: &str) -> Result<()> {
        let mut state = self.state.lock();
        *state.calls.entry(op).or_default() += 1;
        state.all_calls += 1;
        let every = state
            .temporary_every
            .is_some_and(|k| state.all_calls.is_multiple_of(k));
        if state.temporary_next > 0 || every {
            state.temporary_next = state.temporary_next.saturating_sub(1);
            return Err(Injected::temporary(ErrorKind::Unexpected).to_error(op, path));
        }
        Ok(())
    }

    fn check_read(&self, op: Op, path: &str) -> Result<()> {
        self.enter(op, path)?;
        let state = self.state.lock();
        match state
            .read_faults
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
        {
            Some((_, injected)) => Err(injected.to_error(op, path)),
            None => Ok(()),
        }
    }

    async fn faulty_write(&self, op: Op, path: &str, data: Bytes) -> Result<()> {
        let fault = {
            let mut state = self.state.lock();
            state.writes += 1;
            let write = state.writes;
            state
                .write_faults
                .iter()
                .find(|(trigger, _)| trigger.matches(write))
                .map(|(_, fault)| *fault)
        };
        self.enter(op, path)?;
        let store = |data: Bytes| async move {
            match op {
                Op::WriteNew => self.inner.write_new(path, data).await,
                _ => self.inner.write(path, data).await,
            }
        };
        match fault {
            None => store(data).await,
            Some(WriteFault::Fail(injected)) => Err(injected.to_error(op, path)),
            Some(WriteFault::Drop) => Ok(()),
            Some(WriteFault::Truncate { len, result }) => {
                store(data.slice(..len.min(data.len()))).await?;
                result.map_or(Ok(()), |injected| Err(injected.to_error(op, path)))
            }
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for FaultStorage<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultStorage")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: Storage> Storage for FaultStorage<S> {
    fn location(&self) -> &str {
        self.inner.location()
    }

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        self.check_read(Op::Read, path)?;
        self.inner.read(path).await
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.check_read(Op::ReadRange, path)?;
        self.inner.read_range(path, offset, len).await
    }

    async fn write(&self, path: &str, data: Bytes) -> Result<()> {
        self.faulty_write(Op::Write, path, data).await
    }

    async fn write_new(&self, path: &str, data: Bytes) -> Result<()> {
        self.faulty_write(Op::WriteNew, path, data).await
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        self.enter(Op::Stat, path)?;
        self.inner.stat(path).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        self.enter(Op::List, prefix)?;
        self.inner.list(prefix).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.enter(Op::Delete, path)?;
        self.inner.delete(path).await
    }

    async fn retain(&self, path: &str, until: jiff::Timestamp) -> Result<()> {
        self.enter(Op::Retain, path)?;
        self.inner.retain(path, until).await
    }

    async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>> {
        self.enter(Op::Stat, path)?;
        self.inner.retained_until(path).await
    }
}

#[cfg(test)]
mod tests;
