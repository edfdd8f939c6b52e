//! `repair index`: rebuild the index from the packs' own trailers (every pack describes
//! itself, docs/format.md §8), replacing every existing index file, damaged or not.

use std::sync::Arc;

use cairn_format::{
    Id, IndexFile, IndexPack, PACK_FOOTER_LEN, PackTrailer, layout, object_aad, parse_pack_footer,
};
use futures::StreamExt;

use crate::prune::stored_packs;
use crate::{Error, Repository, Result};

/// Packs per rebuilt index file.
const PACKS_PER_FILE: usize = 1024;

/// What `repair index` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct RepairReport {
    /// Packs indexed.
    pub packs: usize,
    /// Blobs indexed.
    pub blobs: usize,
    /// Packs whose trailer cannot be read, with the reason (left unindexed).
    pub unreadable: Vec<(Id, String)>,
    /// Index files written.
    pub index_files_written: usize,
    /// Old index files replaced.
    pub index_files_replaced: usize,
}

async fn read_trailer(repo: &Repository, id: &Id, size: u64) -> Result<IndexPack> {
    let path = layout::pack_path(id);
    let what = || format!("pack {}", id.short());
    let foot_len = PACK_FOOTER_LEN as u64;
    if size < foot_len {
        return Err(Error::corrupt(what(), "shorter than a footer"));
    }
    let footer = repo
        .storage()
        .read_range(&path, size - foot_len, foot_len)
        .await?;
    let (start, len) = parse_pack_footer(&footer, size).map_err(|e| Error::format(what(), e))?;
    let sealed = repo
        .storage()
        .read_range(&path, start, u64::from(len))
        .await?;
    let plain = cairn_crypto::open(repo.key(), &object_aad("pack trailer"), &sealed)
        .map_err(|e| Error::corrupt(what(), e))?;
    let trailer = PackTrailer::from_bytes(&plain, start).map_err(|e| Error::format(what(), e))?;
    Ok(IndexPack {
        id: *id,
        size,
        blobs: trailer.blobs,
    })
}

/// Rebuilds the index from pack trailers. Takes the exclusive lock (no prune meanwhile);
/// backups may go on: their new index files are not replaced.
///
/// # Errors
/// `Locked`; storage errors.
pub async fn repair_index(repo: &Arc<Repository>) -> Result<RepairReport> {
    let lock = repo.lock(true, "repair index", repo.lock_options()).await?;
    let r = rebuild(repo).await;
    lock.release().await;
    repo.forget_index().await;
    r
}

async fn rebuild(repo: &Repository) -> Result<RepairReport> {
    let mut report = RepairReport::default();
    let old = repo.list_ids(layout::INDEX).await?;
    let mut stored: Vec<(Id, u64)> = stored_packs(repo).await?.into_iter().collect();
    stored.sort_unstable();
    let results: Vec<(Id, Result<IndexPack>)> = futures::stream::iter(stored)
        .map(|(id, size)| async move { (id, read_trailer(repo, &id, size).await) })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut packs = Vec::new();
    for (id, r) in results {
        match r {
            Ok(p) => packs.push(p),
            Err(e) if e.is_corruption() => report.unreadable.push((id, e.to_string())),
            Err(e) => return Err(e),
        }
    }
    packs.sort_by_key(|p| p.id);
    report.packs = packs.len();
    report.blobs = packs.iter().map(|p| p.blobs.len()).sum();
    // Every chunk first; the last file carries `supersedes`, so a crash midway leaves the
    // old index in force plus duplicates, never a gap.
    let mut chunks: Vec<Vec<IndexPack>> = packs
        .chunks(PACKS_PER_FILE)
        .map(<[IndexPack]>::to_vec)
        .collect();
    let last = chunks.pop().unwrap_or_default();
    for c in chunks {
        write(
            repo,
            IndexFile {
                packs: c,
                supersedes: Vec::new(),
            },
        )
        .await?;
        report.index_files_written += 1;
    }
    write(
        repo,
        IndexFile {
            packs: last,
            supersedes: old.clone(),
        },
    )
    .await?;
    report.index_files_written += 1;
    for id in &old {
        repo.storage()
            .delete(&layout::object_path(layout::INDEX, id))
            .await?;
    }
    report.index_files_replaced = old.len();
    Ok(report)
}

async fn write(repo: &Repository, file: IndexFile) -> Result<Id> {
    let bytes = file
        .to_bytes()
        .map_err(|e| Error::Internal(e.to_string()))?;
    repo.save_object(layout::INDEX, "index", &bytes).await
}
