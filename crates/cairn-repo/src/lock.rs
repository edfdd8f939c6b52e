//! Repository locks (docs/format.md §14): who is using the repository, refreshed while they do.
//!
//! Backups, restores, copies and checks take a *shared* lock; prune and `repair index` take an
//! *exclusive* one. Shared locks never wait for anything: prune's safety towards running
//! backups comes from the garbage protocol (a pack is deleted only once every process that
//! could have seen it as live has finished), and the locks are what tells prune which
//! processes those are. Exclusive locks exclude each other, so two prunes never rewrite the
//! index at once.
//!
//! A lock object is immutable and named by its hash, so a refresh writes a new lock file and
//! deletes the previous one. A lock not refreshed for [`LockOptions::stale`] is stale: its
//! holder is considered dead, and a holder that could not refresh in time refuses to commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_format::{Id, Lock, layout};
use cairn_storage::ErrorKind;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::keys::local_identity;
use crate::repository::LOAD_CONCURRENCY;
use crate::{Error, Repository, Result};

/// Timing of locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockOptions {
    /// How often a holder rewrites its lock.
    pub refresh: Duration,
    /// After how long without a refresh a lock is stale (its holder presumed dead). Must be
    /// well above `refresh`; a holder whose last refresh is older than half of this refuses
    /// to commit.
    pub stale: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            refresh: Duration::from_mins(5),
            stale: Duration::from_mins(30),
        }
    }
}

impl LockOptions {
    /// Custom timing (tests shorten it).
    pub fn new(refresh: Duration, stale: Duration) -> Self {
        Self { refresh, stale }
    }
}

/// A lock found in the repository.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LockInfo {
    /// Lock file id.
    pub id: Id,
    /// The lock, or why it cannot be read.
    pub lock: std::result::Result<Lock, String>,
    /// True if not refreshed within the stale timeout (or unreadable).
    pub stale: bool,
}

struct Held {
    current: Id,
    last_refresh: Instant,
}

/// A lock held by this process; refreshed in the background until released or dropped.
#[derive(Debug)]
pub struct LockGuard {
    held: Arc<Mutex<HeldDebug>>,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    stale: Duration,
    /// When the lock was first written.
    pub created: jiff::Timestamp,
}

/// `Held` with a Debug impl (ids only).
struct HeldDebug(Held);

impl std::fmt::Debug for HeldDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("current", &self.0.current)
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    /// The id of the lock file currently written (changes with each refresh).
    pub fn id(&self) -> Id {
        self.held.lock().0.current
    }

    /// Fails if the lock may look stale to other processes: the last successful refresh is
    /// older than half the stale timeout. A backup calls this right before writing its
    /// snapshot, so that a process that was suspended or cut off never commits a snapshot
    /// whose blobs a prune may have deleted meanwhile.
    ///
    /// # Errors
    /// `Locked` with the age of the last refresh.
    pub fn check_fresh(&self) -> Result<()> {
        let age = self.held.lock().0.last_refresh.elapsed();
        if age * 2 >= self.stale {
            return Err(Error::Locked(format!(
                "this process could not refresh its lock for {}s (stale after {}s); refusing to commit",
                age.as_secs(),
                self.stale.as_secs()
            )));
        }
        Ok(())
    }

    /// Stops refreshing and deletes the lock file.
    pub async fn release(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // The refresher deletes the lock file when it sees the cancellation.
        self.cancel.cancel();
    }
}

impl Repository {
    fn new_lock(exclusive: bool, operation: &str, now: jiff::Timestamp) -> Lock {
        let (hostname, _) = local_identity();
        Lock {
            version: Lock::VERSION,
            exclusive,
            hostname,
            pid: std::process::id(),
            operation: operation.to_string(),
            created: now,
            refreshed: now,
        }
    }

    async fn write_lock(&self, lock: &Lock) -> Result<Id> {
        let bytes = lock
            .to_bytes()
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.save_object(layout::LOCKS, "lock", &bytes).await
    }

    /// Takes a lock and keeps it fresh until the guard is released or dropped. An exclusive
    /// lock fails if another live exclusive lock exists; a shared lock never waits.
    ///
    /// # Errors
    /// `Locked` if an exclusive lock conflicts; storage errors.
    pub async fn lock(
        self: &Arc<Self>,
        exclusive: bool,
        operation: &str,
        opts: LockOptions,
    ) -> Result<LockGuard> {
        let created = jiff::Timestamp::now();
        let lock = Self::new_lock(exclusive, operation, created);
        let id = self.write_lock(&lock).await?;
        if exclusive {
            let others: Vec<String> = self
                .list_locks(opts)
                .await?
                .into_iter()
                .filter(|l| l.id != id && !l.stale)
                .filter_map(|l| l.lock.ok())
                .filter(|l| l.exclusive)
                .map(|l| describe(&l))
                .collect();
            if !others.is_empty() {
                let _ = self
                    .storage()
                    .delete(&layout::object_path(layout::LOCKS, &id))
                    .await;
                return Err(Error::Locked(format!(
                    "held exclusively by {} (`cairn unlock` removes stale locks)",
                    others.join(", ")
                )));
            }
        }
        let held = Arc::new(Mutex::new(HeldDebug(Held {
            current: id,
            last_refresh: Instant::now(),
        })));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(refresher(
            self.clone(),
            lock,
            held.clone(),
            cancel.clone(),
            opts.refresh,
        ));
        tracing::debug!(lock = %id.short(), operation, exclusive, "lock taken");
        Ok(LockGuard {
            held,
            cancel,
            task: Some(task),
            stale: opts.stale,
            created,
        })
    }

    /// Every lock in the repository, with its staleness judged by `opts.stale` against this
    /// machine's clock. Unreadable locks are reported as stale with the reason.
    ///
    /// # Errors
    /// Storage errors while listing.
    pub async fn list_locks(&self, opts: LockOptions) -> Result<Vec<LockInfo>> {
        let ids = self.list_ids(layout::LOCKS).await?;
        let now = jiff::Timestamp::now();
        let stale_after = jiff::SignedDuration::try_from(opts.stale)
            .map_err(|e| Error::InvalidInput(format!("lock stale timeout: {e}")))?;
        let found: Vec<Option<LockInfo>> = futures::stream::iter(ids)
            .map(|id| async move {
                let lock = match self.load_object(layout::LOCKS, "lock", &id).await {
                    // Deleted since listed: released or refreshed.
                    Err(Error::Storage(e)) if e.kind() == ErrorKind::NotFound => return None,
                    Err(e) => Err(e.to_string()),
                    Ok(plain) => Lock::from_bytes(&plain).map_err(|e| e.to_string()),
                };
                let stale = match &lock {
                    Ok(l) => now.duration_since(l.refreshed) > stale_after,
                    Err(_) => true,
                };
                Some(LockInfo { id, lock, stale })
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        Ok(found.into_iter().flatten().collect())
    }

    /// Removes stale and unreadable locks (all locks with `all`). Returns those removed.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn remove_locks(&self, opts: LockOptions, all: bool) -> Result<Vec<LockInfo>> {
        let mut removed = Vec::new();
        for l in self.list_locks(opts).await? {
            if all || l.stale {
                self.storage()
                    .delete(&layout::object_path(layout::LOCKS, &l.id))
                    .await?;
                removed.push(l);
            }
        }
        Ok(removed)
    }
}

/// `backup by pid 12 on host (since …)`.
pub(crate) fn describe(l: &Lock) -> String {
    format!(
        "{} by pid {} on {} (since {})",
        l.operation, l.pid, l.hostname, l.created
    )
}

async fn refresher(
    repo: Arc<Repository>,
    mut lock: Lock,
    held: Arc<Mutex<HeldDebug>>,
    cancel: CancellationToken,
    every: Duration,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {
                lock.refreshed = jiff::Timestamp::now();
                match repo.write_lock(&lock).await {
                    Ok(new) => {
                        let old = {
                            let mut h = held.lock();
                            h.0.last_refresh = Instant::now();
                            std::mem::replace(&mut h.0.current, new)
                        };
                        if let Err(e) = repo.storage().delete(&layout::object_path(layout::LOCKS, &old)).await {
                            tracing::warn!(lock = %old.short(), error = %e, "cannot delete the previous lock file");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot refresh the repository lock"),
                }
            }
        }
    }
    let id = held.lock().0.current;
    if let Err(e) = repo
        .storage()
        .delete(&layout::object_path(layout::LOCKS, &id))
        .await
    {
        tracing::warn!(lock = %id.short(), error = %e, "cannot remove the lock file; `cairn unlock` removes it once stale");
    }
}
