//! Forget: delete the snapshots that keep rules do not keep. Only snapshot manifests go;
//! their data is freed by prune.

use cairn_format::{Id, Snapshot, layout};
use jiff::tz::TimeZone;

use crate::retention::{Decision, KeepRules, RetentionItem, select};
use crate::{Error, Repository, Result, SnapshotFilter};

/// One snapshot and what forget does with it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ForgetEntry {
    /// Snapshot id.
    pub id: Id,
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Kept or forgotten, and why.
    pub decision: Decision,
}

/// The retention group of a snapshot: its source identity on its host.
pub fn retention_group(s: &Snapshot) -> String {
    format!("{} on {}", s.source.identity, s.hostname)
}

/// Applies `rules` to the snapshots matching `filter` (grouped by source identity and host,
/// periods in `tz`) and, unless `dry_run`, deletes those not kept. A snapshot whose
/// `retain_until` has not passed is always kept, with the reason `locked until …`. Returns every decision,
/// groups in order, newest first within a group.
///
/// # Errors
/// `InvalidInput` without any rule (that would forget everything); storage errors; a
/// damaged snapshot (forget then deletes nothing).
pub async fn forget(
    repo: &Repository,
    filter: &SnapshotFilter,
    rules: &KeepRules,
    tz: &TimeZone,
    dry_run: bool,
) -> Result<Vec<ForgetEntry>> {
    if rules.is_empty() {
        return Err(Error::InvalidInput(
            "no keep rule given (--keep-last, --keep-daily, …); refusing to forget every snapshot"
                .into(),
        ));
    }
    let snaps = repo.snapshots(filter).await?;
    let items: Vec<RetentionItem> = snaps
        .iter()
        .map(|(id, s)| RetentionItem {
            id: *id,
            time: s.time,
            group: retention_group(s),
            tags: s.tags.clone(),
        })
        .collect();
    let mut by_id: std::collections::HashMap<Id, Snapshot> = snaps.into_iter().collect();
    let mut out = Vec::with_capacity(items.len());
    let now = jiff::Timestamp::now();
    for mut d in select(&items, rules, tz) {
        if let Some(snapshot) = by_id.remove(&d.id) {
            // A snapshot under object lock stays, whatever the rules say (docs/format.md §14.5).
            if let Some(until) = snapshot
                .retain_until
                .filter(|_| snapshot.is_retained_at(now))
            {
                d.keep = true;
                d.reasons.push(format!("locked until {until}"));
            }
            out.push(ForgetEntry {
                id: d.id,
                snapshot,
                decision: d,
            });
        }
    }
    if !dry_run {
        for e in out.iter().filter(|e| !e.decision.keep) {
            repo.storage()
                .delete(&layout::object_path(layout::SNAPSHOTS, &e.id))
                .await?;
            tracing::info!(snapshot = %e.id.short(), "snapshot forgotten");
        }
    }
    Ok(out)
}
