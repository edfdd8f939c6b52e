//! Application backups in a repository, through `cairn-repo`'s public API only: a backup is a
//! stream snapshot holding one file, `app.json` (the [`AppBackup`] document), tagged
//! [`APP_TAG`], with source identity `app:<name>`. Saving the snapshot is the engine's atomic
//! commit, and it happens after every volume's data is stored, so a half-done application
//! backup is never listed.

use std::io::Cursor;
use std::sync::Arc;

use cairn_repo::format::{Id, Snapshot};
use cairn_repo::{
    BackupOptions, CancellationToken, NoProgress, Repository, RestoreOptions, SnapshotFilter,
};

use crate::document::AppBackup;
use crate::error::{Error, Result};

/// Tag on every application backup snapshot.
pub const APP_TAG: &str = "cairn-app";
/// The file inside the snapshot.
pub const FILE_NAME: &str = "app.json";

/// Source identity of an application's backups.
pub fn identity(name: &str) -> String {
    format!("app:{name}")
}

/// Writes the document as the last step of a backup; returns the snapshot id.
///
/// # Errors
/// Repository errors.
pub async fn save(repo: &Arc<Repository>, doc: &AppBackup) -> Result<Id> {
    let bytes = doc.to_bytes()?;
    let mut opts = BackupOptions::default();
    opts.tags = vec![APP_TAG.to_owned(), format!("app={}", doc.name)];
    opts.identity = Some(identity(&doc.name));
    opts.hostname = Some(format!("app/{}", doc.name));
    let out = cairn_repo::backup_stream(
        repo,
        Cursor::new(bytes),
        FILE_NAME,
        &opts,
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await
    .map_err(|e| Error::repo(format!("saving application backup {}", doc.name), e))?;
    Ok(out.id)
}

/// Every application backup (of `name`, if given), oldest first.
///
/// # Errors
/// Repository errors.
pub async fn list(repo: &Repository, name: Option<&str>) -> Result<Vec<(Id, Snapshot)>> {
    let mut f = SnapshotFilter::default();
    f.tags = vec![APP_TAG.to_owned()];
    if let Some(n) = name {
        f.sources = vec![identity(n)];
    }
    repo.snapshots(&f)
        .await
        .map_err(|e| Error::repo("listing application backups", e))
}

/// Finds a backup by snapshot id (or unique prefix), or by application name (its newest
/// backup), and reads its document.
///
/// # Errors
/// `NotFound`, repository errors, `Invalid` for a damaged or newer document.
pub async fn load(repo: &Arc<Repository>, reference: &str) -> Result<(Id, AppBackup)> {
    let all = list(repo, None).await?;
    let by_id: Vec<_> = all
        .iter()
        .filter(|(id, _)| id.to_hex().starts_with(&reference.to_ascii_lowercase()))
        .collect();
    let (id, snap) = match by_id.as_slice() {
        [one] => (*one).clone(),
        _ => all
            .iter()
            .rev()
            .find(|(_, s)| s.source.identity == identity(reference))
            .cloned()
            .ok_or_else(|| Error::NotFound(reference.to_owned()))?,
    };
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        what: "creating a temporary directory to read the application backup".into(),
        source: e,
    })?;
    let target = dir.path().join(FILE_NAME);
    restore_stream_file(repo, &id, &snap, &target).await?;
    let bytes = fs_err::read(&target).map_err(|e| Error::Io {
        what: format!("reading the restored {FILE_NAME}"),
        source: e,
    })?;
    Ok((id, AppBackup::from_bytes(&bytes)?))
}

/// Restores the one file of the stream snapshot `snap` (id `id`) to `target`.
///
/// # Errors
/// `Repo`; `Failed` when the file came out damaged (restore removed it).
pub(crate) async fn restore_stream_file(
    repo: &Arc<Repository>,
    id: &Id,
    snap: &Snapshot,
    target: &std::path::Path,
) -> Result<()> {
    let outcome = cairn_repo::restore(
        repo,
        snap,
        &id.to_hex(),
        "",
        target,
        &RestoreOptions::default(),
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await
    .map_err(|e| Error::repo(format!("reading snapshot {}", id.short()), e))?;
    match outcome.errors.first() {
        Some(e) => Err(Error::Failed {
            what: format!("snapshot {}", id.short()),
            reason: e.clone(),
        }),
        None => Ok(()),
    }
}
