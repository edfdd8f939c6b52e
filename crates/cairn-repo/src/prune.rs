//! Prune: delete packs no snapshot references, and repack mostly-empty ones, while backups
//! keep running (docs/format.md §14).
//!
//! One run does two things under an exclusive lock (which only excludes other prunes):
//!
//! 1. **Sweep** the garbage plans written by earlier runs whose packs are past the safety
//!    margin and that no live shared lock predates (plus the margin): packs that snapshots
//!    now reference again are spared ("un-marked"), the others leave the index (a new index
//!    file supersedes the ones that listed them), then are deleted.
//! 2. **Mark** what is garbage now: indexed packs without a referenced blob, packs no index
//!    lists, and mostly-empty packs after copying their live blobs to new packs. They go into
//!    a new garbage plan; backups stop reusing blobs that only they hold at once, and a later
//!    run deletes them.

use std::sync::Arc;
use std::time::Duration;

use cairn_format::{GarbagePlan, Id, IndexFile, IndexPack, Snapshot, layout};
use cairn_storage::ErrorKind;
use futures::{StreamExt, TryStreamExt};

use crate::blob::decode_blob;
use crate::index::{IdMap, IdSet, Index};
use crate::keys::local_identity;
use crate::lock::LockInfo;
use crate::repository::LOAD_CONCURRENCY;
use crate::worker::ship;
use crate::writer::{BlobWriter, Uploader};
use crate::{Error, Repository, Result, SnapshotFilter};

/// Options of a prune.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PruneOptions {
    /// How long marked packs wait before they may be deleted. Protects backups on hosts
    /// whose clocks differ and plans that are slow to become visible; see docs/format.md §14
    /// before lowering it.
    pub margin: Duration,
    /// Repack a pack when at least this fraction of its bytes is unreferenced (0.0 to 1.0;
    /// above 1.0 never).
    pub repack_unused: f64,
    /// Report what would happen; change nothing.
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            margin: Duration::from_hours(1),
            repack_unused: 0.5,
            dry_run: false,
        }
    }
}

/// What a prune did (or, dry, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct PruneReport {
    /// Snapshots whose references were counted.
    pub snapshots: usize,
    /// Packs in the repository before the run, and their bytes.
    pub packs: usize,
    /// Bytes of those packs.
    pub pack_bytes: u64,
    /// Packs deleted by the sweep.
    pub deleted_packs: usize,
    /// Bytes freed by the sweep.
    pub freed_bytes: u64,
    /// Marked packs that snapshots reference again, kept.
    pub unmarked_packs: usize,
    /// Marked packs not swept yet (margin not passed or older processes still running).
    pub deferred_packs: usize,
    /// Why sweeping was deferred.
    pub deferred: Vec<String>,
    /// Packs newly marked as garbage (deleted by a later run), and their bytes.
    pub marked_packs: usize,
    /// Bytes of the newly marked packs.
    pub marked_bytes: u64,
    /// Mostly-empty packs whose live blobs were copied to new packs (included in `marked`).
    pub repacked_packs: usize,
    /// Bytes of new packs written by the repack.
    pub repack_written_bytes: u64,
    /// Index files replaced.
    pub index_files_rewritten: usize,
    /// Packs that snapshots under object lock need: never deleted or repacked.
    pub retained_packs: usize,
    /// Snapshots under object lock now.
    pub retained_snapshots: usize,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// Index files as stored: the live ones and superseded ones still present.
pub(crate) struct RawIndex {
    pub(crate) files: Vec<(Id, IndexFile)>,
    pub(crate) superseded: Vec<Id>,
}

impl RawIndex {
    /// Every indexed pack, once.
    pub(crate) fn packs(&self) -> IdMap<&IndexPack> {
        let mut m = IdMap::default();
        for (_, f) in &self.files {
            for p in &f.packs {
                m.insert(p.id, p);
            }
        }
        m
    }

    /// The packs holding any of `blobs` (every copy the index lists).
    pub(crate) fn packs_holding(&self, blobs: &IdSet) -> IdSet {
        self.packs()
            .values()
            .filter(|p| p.blobs.iter().any(|b| blobs.contains(&b.id)))
            .map(|p| p.id)
            .collect()
    }
}

/// Loads every index file, refusing damaged ones: deciding what is garbage from a partial
/// index would delete the packs the damaged file describes.
pub(crate) async fn load_raw_index(repo: &Repository) -> Result<RawIndex> {
    let mut attempt = 0;
    let files = loop {
        attempt += 1;
        let ids = repo.list_ids(layout::INDEX).await?;
        let r: Result<Vec<(Id, IndexFile)>> = futures::stream::iter(ids)
            .map(|id| async move { repo.load_index_file(&id).await.map(|f| (id, f)) })
            .buffer_unordered(LOAD_CONCURRENCY)
            .try_collect()
            .await;
        match r {
            Err(Error::Storage(e)) if e.kind() == ErrorKind::NotFound && attempt < 5 => {}
            Err(e) if e.is_corruption() => {
                return Err(Error::InvalidInput(format!(
                    "{e}; refusing to prune with a damaged index (run `cairn check`, then `cairn repair index`)"
                )));
            }
            r => break r?,
        }
    };
    let superseded: IdSet = files
        .iter()
        .flat_map(|(_, f)| f.supersedes.iter().copied())
        .collect();
    let (old, live): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(id, _)| superseded.contains(id));
    Ok(RawIndex {
        files: live,
        superseded: old.into_iter().map(|(id, _)| id).collect(),
    })
}

/// Packs present in storage, with their sizes.
pub(crate) async fn stored_packs(repo: &Repository) -> Result<IdMap<u64>> {
    let entries = repo.storage().list(layout::DATA).await?;
    Ok(entries
        .iter()
        .filter_map(|e| {
            e.path
                .rsplit('/')
                .next()
                .and_then(|n| n.parse::<Id>().ok())
                .map(|id| (id, e.size))
        })
        .collect())
}

/// Runs a prune.
///
/// # Errors
/// `Locked` if another prune runs; `InvalidInput` if the index is damaged or snapshots
/// reference blobs no index lists (prune then deletes nothing); storage errors.
pub async fn prune(repo: &Arc<Repository>, opts: &PruneOptions) -> Result<PruneReport> {
    let lock = repo
        .lock(!opts.dry_run, "prune", repo.lock_options())
        .await?;
    let r = prune_locked(repo, opts).await;
    lock.release().await;
    r
}

#[allow(
    clippy::too_many_lines,
    reason = "the steps of docs/format.md §14.3 in order, each short; split, the order would hide"
)]
async fn prune_locked(repo: &Arc<Repository>, opts: &PruneOptions) -> Result<PruneReport> {
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..PruneReport::default()
    };
    let margin = jiff::SignedDuration::try_from(opts.margin)
        .map_err(|e| Error::InvalidInput(format!("safety margin: {e}")))?;
    // Order matters: locks first, then plans, then snapshots. A backup whose lock is gone
    // by now has written its snapshot already, so the listing below sees it.
    let now = jiff::Timestamp::now();
    let locks = repo.list_locks(repo.lock_options()).await?;
    let plans = repo.garbage_plans().await?;
    let mut eligible: Vec<(Id, GarbagePlan)> = Vec::new();
    let mut pending: Vec<(Id, GarbagePlan)> = Vec::new();
    let mut damaged_plans = Vec::new();
    for (id, plan) in plans {
        match plan {
            Err(e) => {
                tracing::warn!(plan = %id.short(), error = %e, "damaged garbage plan; deleting it");
                damaged_plans.push(id);
            }
            Ok(p) => match blocker(&p, now, margin, &locks) {
                None => eligible.push((id, p)),
                Some(why) => {
                    report.deferred.push(why);
                    pending.push((id, p));
                }
            },
        }
    }
    repo.forget_index().await;
    let mut raw = load_raw_index(repo).await?;
    let snaps = repo.snapshots(&SnapshotFilter::default()).await?;
    report.snapshots = snaps.len();
    let refs = crate::refs::referenced(repo, snaps.iter().map(|(_, s)| s)).await?;
    let locate = |raw: &RawIndex| {
        let mut loc: IdMap<Vec<Id>> = IdMap::default();
        for p in raw.packs().values() {
            for b in &p.blobs {
                loc.entry(b.id).or_default().push(p.id);
            }
        }
        let missing = refs.iter().filter(|b| !loc.contains_key(b)).count();
        (loc, missing)
    };
    let (mut locations, mut missing) = locate(&raw);
    if missing > 0 {
        // A backup may have finished between the index and the snapshots being read: its
        // index files are durable before its snapshot, so reading them again finds them.
        repo.forget_index().await;
        raw = load_raw_index(repo).await?;
        (locations, missing) = locate(&raw);
    }
    if missing > 0 {
        return Err(Error::InvalidInput(format!(
            "snapshots reference {missing} blobs that no index lists; refusing to prune (run `cairn check`, then `cairn repair index`)"
        )));
    }
    // Packs that snapshots under object lock need stay, whatever else holds their blobs.
    let retained: Vec<&Snapshot> = snaps
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.is_retained_at(now))
        .collect();
    report.retained_snapshots = retained.len();
    let locked: IdSet = if retained.is_empty() {
        IdSet::default()
    } else {
        raw.packs_holding(&crate::refs::referenced(repo, retained).await?)
    };
    report.retained_packs = locked.len();
    let stored = stored_packs(repo).await?;
    report.packs = stored.len();
    report.pack_bytes = stored.values().sum();

    // Sweep.
    let mut doomed: IdSet = eligible
        .iter()
        .flat_map(|(_, p)| p.packs.iter().copied())
        .collect();
    let marked_before = doomed.len();
    for b in &refs {
        if let Some(locs) = locations.get(b)
            && locs.iter().all(|p| doomed.contains(p))
        {
            doomed.remove(&locs[0]);
        }
    }
    doomed.retain(|p| !locked.contains(p));
    report.unmarked_packs = marked_before - doomed.len();
    report.deferred_packs = pending.iter().map(|(_, p)| p.packs.len()).sum();
    report.deleted_packs = doomed.iter().filter(|p| stored.contains_key(p)).count();
    report.freed_bytes = doomed.iter().filter_map(|p| stored.get(p)).sum();
    if !opts.dry_run {
        report.index_files_rewritten =
            sweep(repo, &raw, &doomed, &eligible, &damaged_plans).await?;
    }

    // Mark.
    let already: IdSet = pending
        .iter()
        .flat_map(|(_, p)| p.packs.iter().copied())
        .collect();
    let indexed = raw.packs();
    let mut mark: Vec<Id> = Vec::new();
    let mut repack: Vec<&IndexPack> = Vec::new();
    for (id, p) in &indexed {
        if doomed.contains(id)
            || already.contains(id)
            || !stored.contains_key(id)
            || locked.contains(id)
        {
            continue;
        }
        let used: u64 = p
            .blobs
            .iter()
            .filter(|b| refs.contains(&b.id))
            .map(|b| u64::from(b.length))
            .sum();
        // The share of blob bytes no snapshot uses (pack overhead does not count, so a
        // small pack whose blobs are all used is never repacked).
        let total: u64 = p.blobs.iter().map(|b| u64::from(b.length)).sum();
        if used == 0 {
            mark.push(*id);
        } else if opts.repack_unused <= 1.0
            && (total - used) as f64 >= opts.repack_unused * total as f64
        {
            repack.push(p);
        }
    }
    // Packs no index lists: left by interrupted backups, or being written right now (whose
    // locks keep the sweep away until they finish).
    for id in stored.keys() {
        if !indexed.contains_key(id) && !doomed.contains(id) && !already.contains(id) {
            mark.push(*id);
        }
    }
    if !opts.dry_run && !repack.is_empty() {
        report.repack_written_bytes =
            repack_packs(repo, &indexed, &repack, &refs, &doomed, &mark, &already).await?;
    }
    report.repacked_packs = repack.len();
    mark.extend(repack.iter().map(|p| p.id));
    report.marked_packs = mark.len();
    report.marked_bytes = mark.iter().filter_map(|p| stored.get(p)).sum();
    if !opts.dry_run && !mark.is_empty() {
        mark.sort_unstable();
        let plan = GarbagePlan {
            version: GarbagePlan::VERSION,
            created: jiff::Timestamp::now(),
            hostname: local_identity().0,
            packs: mark,
        };
        let bytes = plan
            .to_bytes()
            .map_err(|e| Error::Internal(e.to_string()))?;
        repo.save_object(layout::GARBAGE, "garbage", &bytes).await?;
    }
    repo.forget_index().await;
    tracing::info!(
        deleted = report.deleted_packs,
        freed = report.freed_bytes,
        marked = report.marked_packs,
        "prune done"
    );
    Ok(report)
}

/// Why a plan cannot be swept yet, or `None` if it can.
fn blocker(
    plan: &GarbagePlan,
    now: jiff::Timestamp,
    margin: jiff::SignedDuration,
    locks: &[LockInfo],
) -> Option<String> {
    let ripe = plan.created.checked_add(margin).unwrap_or(plan.created);
    if now < ripe {
        return Some(format!(
            "{} packs marked at {} wait for the safety margin (until {ripe})",
            plan.packs.len(),
            plan.created
        ));
    }
    for l in locks {
        match &l.lock {
            Err(e) => {
                return Some(format!(
                    "lock {} is unreadable ({e}); remove it with `cairn unlock` if no process holds it",
                    l.id.short()
                ));
            }
            Ok(lock) if !l.stale && !lock.exclusive && lock.created < ripe => {
                return Some(format!(
                    "{} packs wait for {} to finish (it started before their marks were certainly visible)",
                    plan.packs.len(),
                    crate::lock::describe(lock)
                ));
            }
            Ok(_) => {}
        }
    }
    None
}

/// Deletes `doomed` packs: first an index file superseding every file that lists them is
/// made durable, then the packs go, then the superseded files and the swept plans.
async fn sweep(
    repo: &Repository,
    raw: &RawIndex,
    doomed: &IdSet,
    eligible: &[(Id, GarbagePlan)],
    damaged_plans: &[Id],
) -> Result<usize> {
    let touched: Vec<&(Id, IndexFile)> = raw
        .files
        .iter()
        .filter(|(_, f)| f.packs.iter().any(|p| doomed.contains(&p.id)))
        .collect();
    let mut supersedes: Vec<Id> = touched.iter().map(|(id, _)| *id).collect();
    supersedes.extend(raw.superseded.iter().copied());
    if !touched.is_empty() {
        let mut seen = IdSet::default();
        let packs: Vec<IndexPack> = touched
            .iter()
            .flat_map(|(_, f)| f.packs.iter())
            .filter(|p| !doomed.contains(&p.id) && seen.insert(p.id))
            .cloned()
            .collect();
        let file = IndexFile {
            packs,
            supersedes: supersedes.clone(),
        };
        let bytes = file
            .to_bytes()
            .map_err(|e| Error::Internal(e.to_string()))?;
        repo.save_object(layout::INDEX, "index", &bytes).await?;
    }
    futures::stream::iter(doomed.iter())
        .map(|p| async move { repo.storage().delete(&layout::pack_path(p)).await })
        .buffer_unordered(LOAD_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    for id in &supersedes {
        repo.storage()
            .delete(&layout::object_path(layout::INDEX, id))
            .await?;
    }
    for id in eligible.iter().map(|(id, _)| id).chain(damaged_plans) {
        repo.storage()
            .delete(&layout::object_path(layout::GARBAGE, id))
            .await?;
    }
    Ok(touched.len())
}

/// Copies the referenced blobs of `packs` that exist nowhere else into new packs (indexed
/// by the uploader). Returns the bytes written.
#[allow(clippy::too_many_arguments, reason = "the sets that define what stays")]
async fn repack_packs(
    repo: &Arc<Repository>,
    indexed: &IdMap<&IndexPack>,
    packs: &[&IndexPack],
    refs: &IdSet,
    doomed: &IdSet,
    mark: &[Id],
    already: &IdSet,
) -> Result<u64> {
    let leaving: IdSet = packs
        .iter()
        .map(|p| p.id)
        .chain(mark.iter().copied())
        .chain(already.iter().copied())
        .chain(doomed.iter().copied())
        .collect();
    let mut view = Index::default();
    for (id, p) in indexed {
        if !leaving.contains(id) {
            view.add_pack(p);
        }
    }
    let writer = Arc::new(BlobWriter::new(repo, Arc::new(view)));
    let (uploader, tx) = Uploader::start(repo, 2, writer.stats.clone());
    let copying = async {
        for p in packs {
            let bytes = repo.storage().read(&layout::pack_path(&p.id)).await?;
            for b in p.blobs.iter().filter(|b| refs.contains(&b.id)) {
                let (s, e) = (b.offset as usize, b.offset as usize + b.length as usize);
                let sealed = bytes.get(s..e).ok_or_else(|| {
                    Error::corrupt(
                        format!("pack {}", p.id.short()),
                        "shorter than its index says",
                    )
                })?;
                // Never copy damage into a new pack: open and verify each blob first.
                decode_blob(repo.key(), b.kind, &b.id, sealed)
                    .map_err(|e| e.within(format!("pack {} (repack)", p.id.short())))?;
                let full = writer.add_sealed(b.kind, b.id, sealed, b.raw_length)?;
                ship(&tx, full).await?;
            }
        }
        for full in writer.flush()? {
            ship(&tx, Some(full)).await?;
        }
        Ok::<_, Error>(())
    };
    let copy_result = copying.await;
    drop(tx);
    let upload_result = uploader.finish().await;
    copy_result?;
    upload_result?;
    Ok(writer
        .stats
        .stored_bytes
        .load(std::sync::atomic::Ordering::Relaxed))
}
