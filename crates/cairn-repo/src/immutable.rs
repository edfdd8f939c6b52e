//! Immutability: snapshots whose objects the store locks against deletion (S3 Object Lock)
//! until a time, and the rules every deleting command follows for them (docs/format.md §14.5).
//!
//! A locked backup, before it uploads anything, locks `config`, `config.sealed` and every
//! key file (on a bucket without Object Lock this first request fails, so nothing is
//! written); after its packs and index files are durable it locks every pack holding a blob
//! the snapshot reaches; then it writes the snapshot and locks it too. Locks only grow, so
//! packs shared with older locked snapshots keep the longest lock.
//!
//! Nothing Cairn does needs to rewrite a locked object: packs and snapshots are never
//! rewritten, and index files (derived data, rebuilt by `repair index` from the packs) and
//! lock files are not locked. What would delete a locked object refuses or leaves it:
//! `forget` keeps a snapshot until its `retain_until` has passed, `prune` neither deletes nor
//! repacks a pack that a retained snapshot needs, `key remove`/`passwd` refuse a locked key.

use cairn_format::{Snapshot, layout};
use futures::{StreamExt, TryStreamExt};

use crate::{Error, Repository, Result};

/// Requests in flight while locking packs.
const LOCK_CONCURRENCY: usize = 16;

/// For a backup locked until `until` (nothing to do for `None`): checks that `until` is in
/// the future and the store can lock, and locks the repository's config and key files (a
/// locked snapshot is worthless if its keys can be deleted). Called before a locked backup
/// writes anything.
///
/// # Errors
/// `InvalidInput` for a time in the past; `Storage(Unsupported)` when the location or its
/// bucket cannot lock objects.
pub(crate) async fn prepare(repo: &Repository, until: Option<jiff::Timestamp>) -> Result<()> {
    let Some(until) = until else {
        return Ok(());
    };
    if until <= jiff::Timestamp::now() {
        return Err(Error::InvalidInput(format!(
            "retain-until {until} is not in the future"
        )));
    }
    if !repo.storage().capability().object_lock {
        return Err(cairn_storage::lock_unsupported(repo.location(), layout::CONFIG).into());
    }
    let mut paths = vec![layout::CONFIG.to_owned()];
    if repo.storage().stat(layout::CONFIG_SEALED).await?.is_some() {
        paths.push(layout::CONFIG_SEALED.to_owned());
    }
    paths.extend(
        repo.list_ids(layout::KEYS)
            .await?
            .iter()
            .map(|id| layout::object_path(layout::KEYS, id)),
    );
    // The config first, alone: on a bucket without Object Lock it fails before anything else.
    repo.storage().retain(&paths[0], until).await?;
    lock_all(repo, paths[1..].to_vec(), until).await
}

/// Locks every pack holding a blob `snap` reaches (every copy the index lists).
pub(crate) async fn lock_data(
    repo: &Repository,
    snap: &Snapshot,
    until: jiff::Timestamp,
) -> Result<usize> {
    let refs = crate::refs::referenced(repo, [snap]).await?;
    let packs = crate::prune::load_raw_index(repo)
        .await?
        .packs_holding(&refs);
    let n = packs.len();
    lock_all(repo, packs.iter().map(layout::pack_path).collect(), until).await?;
    tracing::info!(packs = n, until = %until, "packs locked");
    Ok(n)
}

async fn lock_all(repo: &Repository, paths: Vec<String>, until: jiff::Timestamp) -> Result<()> {
    futures::stream::iter(paths)
        .map(|p| async move { repo.storage().retain(&p, until).await })
        .buffer_unordered(LOCK_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    Ok(())
}

/// `Retained` if the object at `path` is locked on the store now.
pub(crate) async fn refuse_if_locked(repo: &Repository, path: &str, what: &str) -> Result<()> {
    if !repo.storage().capability().object_lock {
        return Ok(());
    }
    match repo.storage().retained_until(path).await? {
        Some(t) if t > jiff::Timestamp::now() => Err(Error::Retained(format!(
            "{what} is locked on the store until {t} (object lock); it cannot be removed before then"
        ))),
        _ => Ok(()),
    }
}
