//! Snapshots: saving the manifest (the commit point of a backup), listing, filtering, and
//! resolving references such as `latest` or an id prefix.

use cairn_format::{Id, Snapshot, SourceKind, layout};
use cairn_storage::ErrorKind;
use futures::{StreamExt, TryStreamExt};

use crate::repository::LOAD_CONCURRENCY;
use crate::{Error, Repository, Result};

/// Which snapshots to list.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SnapshotFilter {
    /// Only these hosts (any if empty).
    pub hosts: Vec<String>,
    /// Only snapshots carrying all of these tags (any if empty).
    pub tags: Vec<String>,
    /// Only snapshots whose source paths include one of these, or whose identity is one of
    /// these (any if empty).
    pub sources: Vec<String>,
    /// Only this kind.
    pub kind: Option<SourceKind>,
}

impl SnapshotFilter {
    /// True if the snapshot passes.
    pub fn matches(&self, s: &Snapshot) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&s.hostname))
            && self.tags.iter().all(|t| s.tags.contains(t))
            && (self.sources.is_empty()
                || self
                    .sources
                    .iter()
                    .any(|p| s.source.identity == *p || s.source.paths.iter().any(|sp| sp == p)))
            && self.kind.is_none_or(|k| k == s.source.kind)
    }
}

impl Repository {
    /// Writes a snapshot manifest: the last write of a backup, which makes it visible.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn save_snapshot(&self, snap: &Snapshot) -> Result<Id> {
        let bytes = snap
            .to_bytes()
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.save_object(layout::SNAPSHOTS, "snapshot", &bytes)
            .await
    }

    /// Loads one snapshot by full id.
    ///
    /// # Errors
    /// Storage errors; `Corrupt` if damaged.
    pub async fn load_snapshot(&self, id: &Id) -> Result<Snapshot> {
        let plain = self.load_object(layout::SNAPSHOTS, "snapshot", id).await?;
        Snapshot::from_bytes(&plain)
            .map_err(|e| Error::format(format!("snapshot {}", id.short()), e))
    }

    /// All snapshots matching `filter`, oldest first.
    ///
    /// # Errors
    /// Storage errors; `Corrupt` if any snapshot is damaged.
    pub async fn snapshots(&self, filter: &SnapshotFilter) -> Result<Vec<(Id, Snapshot)>> {
        let ids = self.list_ids(layout::SNAPSHOTS).await?;
        let loaded: Vec<Option<(Id, Snapshot)>> = futures::stream::iter(ids)
            .map(|id| async move {
                match self.load_snapshot(&id).await {
                    // Forgotten since listed.
                    Err(Error::Storage(e)) if e.kind() == ErrorKind::NotFound => Ok(None),
                    r => r.map(|s| filter.matches(&s).then_some((id, s))),
                }
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .try_collect()
            .await?;
        let mut all: Vec<(Id, Snapshot)> = loaded.into_iter().flatten().collect();
        all.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok(all)
    }

    /// Resolves `latest` (the newest matching `filter`) or a unique id prefix.
    ///
    /// # Errors
    /// `NoSuchSnapshot` or `AmbiguousSnapshot`.
    pub async fn find_snapshot(
        &self,
        reference: &str,
        filter: &SnapshotFilter,
    ) -> Result<(Id, Snapshot)> {
        if reference == "latest" {
            return self
                .snapshots(filter)
                .await?
                .pop()
                .ok_or_else(|| Error::NoSuchSnapshot(reference.into()));
        }
        if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::NoSuchSnapshot(reference.into()));
        }
        let lower = reference.to_ascii_lowercase();
        let ids: Vec<Id> = self
            .list_ids(layout::SNAPSHOTS)
            .await?
            .into_iter()
            .filter(|id| id.to_hex().starts_with(&lower))
            .collect();
        match ids.as_slice() {
            [one] => Ok((*one, self.load_snapshot(one).await?)),
            [] => Err(Error::NoSuchSnapshot(reference.into())),
            _ => Err(Error::AmbiguousSnapshot(reference.into())),
        }
    }

    /// The newest snapshot with this source identity and host: the parent of the next backup.
    /// Damaged snapshots are skipped with a warning: the parent only saves reading, so one
    /// damaged snapshot must not stop every later backup.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn find_parent(&self, identity: &str) -> Result<Option<(Id, Snapshot)>> {
        let ids = self.list_ids(layout::SNAPSHOTS).await?;
        let loaded: Vec<(Id, Result<Snapshot>)> = futures::stream::iter(ids)
            .map(|id| async move { (id, self.load_snapshot(&id).await) })
            .buffer_unordered(LOAD_CONCURRENCY)
            .collect()
            .await;
        let mut found: Option<(Id, Snapshot)> = None;
        for (id, s) in loaded {
            let s = match s {
                Ok(s) => s,
                Err(Error::Storage(e)) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) if e.is_corruption() => {
                    tracing::warn!(snapshot = %id.short(), error = %e, "skipping damaged snapshot");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let newer = found
                .as_ref()
                .is_none_or(|(fid, f)| (&s.time, &id) > (&f.time, fid));
            if s.source.identity == identity && newer {
                found = Some((id, s));
            }
        }
        Ok(found)
    }
}
