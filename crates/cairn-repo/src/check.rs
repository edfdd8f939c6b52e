//! Check: is every stored object intact, and does every snapshot reach all of its content?
//!
//! Structure (always): the config against its sealed copy, key files, index files, garbage
//! plans, snapshots, every tree and volume map node snapshots reach, and every blob they
//! reference: indexed, in a pack that exists with the size the index says. With read-data,
//! every byte of every pack (or a random subset): the pack's hash against its name, its
//! trailer against the index, and every blob opened and its id recomputed.
//!
//! Damage is reported twice: as problems (the damaged object and why) and as what they
//! affect (snapshots, and in them the files, directories or volume byte ranges).

use std::sync::Arc;

use cairn_format::{
    BlobKind, Extent, Id, Node, PACK_FOOTER_LEN, PackTrailer, Root, Snapshot, VolumeMap,
    VolumeNode, layout, object_aad, parse_pack_footer,
};
use cairn_storage::ErrorKind;
use futures::StreamExt;

use crate::blob::decode_blob;
use crate::index::{IdMap, IdSet, Index};
use crate::prune::stored_packs;
use crate::refs::chunk_blobs;
use crate::repository::LOAD_CONCURRENCY;
use crate::{Error, Repository, Result};

/// Most affected entries reported per snapshot.
const MAX_AFFECTED_PER_SNAPSHOT: usize = 200;

/// A blob of a pack as the index lists it: id, kind, offset, length, plaintext length.
type PackBlob = (Id, BlobKind, u32, u32, u32);
/// What reading one pack found: the pack, bytes read, and per damaged blob (what, blob, why).
type PackResult = (Id, u64, Vec<(String, Option<Id>, String)>);

/// What to check.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Read and authenticate pack contents.
    pub read_data: bool,
    /// With `read_data`: only this fraction of the packs (0.0 to 1.0), chosen at random.
    pub subset: Option<f64>,
}

/// A damaged or missing object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The object (`pack 1a2b3c4d`, `index …`, `snapshot …`, `config`).
    pub object: String,
    /// What is wrong.
    pub message: String,
}

/// Something a problem makes unrestorable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Affected {
    /// The snapshot.
    pub snapshot: Id,
    /// What in it: a file, a directory and everything below, volume bytes, or all of it.
    pub what: String,
}

/// Counts of what was checked.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct CheckStats {
    /// Snapshots.
    pub snapshots: usize,
    /// Index files.
    pub index_files: usize,
    /// Packs in storage.
    pub packs: usize,
    /// Trees and volume map nodes walked.
    pub metadata_blobs: usize,
    /// Packs read in full (read-data).
    pub packs_read: usize,
    /// Bytes read (read-data).
    pub bytes_read: u64,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// Damaged or missing objects.
    pub problems: Vec<Problem>,
    /// What they affect.
    pub affected: Vec<Affected>,
    /// Findings that are not damage (unindexed packs, a missing sealed config copy).
    pub warnings: Vec<String>,
    /// Counts.
    pub stats: CheckStats,
}

impl CheckReport {
    /// True if anything is damaged.
    pub fn is_damaged(&self) -> bool {
        !self.problems.is_empty()
    }

    fn problem(&mut self, object: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            object: object.into(),
            message: message.into(),
        });
    }
}

/// Checks the repository. Takes a shared lock, so a concurrent prune does not delete packs
/// under it.
///
/// # Errors
/// Storage errors that stop the check (not damage: that is in the report).
pub async fn check(repo: &Arc<Repository>, opts: &CheckOptions) -> Result<CheckReport> {
    let lock = repo.lock(false, "check", repo.lock_options()).await?;
    repo.forget_index().await;
    let r = check_locked(repo, opts).await;
    lock.release().await;
    r
}

#[allow(
    clippy::too_many_lines,
    reason = "structure, then data, then what the damage affects: one pass in order"
)]
async fn check_locked(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    check_config(repo, &mut report).await?;
    check_keys(repo, &mut report).await?;
    let garbage = repo.garbage_packs().await?;
    for (id, plan) in repo.garbage_plans().await? {
        if let Err(e) = plan {
            report.problem(
                format!("garbage plan {}", id.short()),
                format!("{e} (prune deletes it; its packs are no longer protected from reuse)"),
            );
        }
    }
    let index = load_index(repo, &garbage, &mut report).await?;
    let snaps = load_snapshots(repo, &mut report).await?;
    report.stats.snapshots = snaps.len();

    // Packs: present, with the right size.
    let stored = stored_packs(repo).await?;
    report.stats.packs = stored.len();
    let mut bad_blobs: IdMap<String> = IdMap::default();
    let mut pack_blobs: IdMap<Vec<PackBlob>> = IdMap::default();
    for (id, loc) in index.blobs() {
        pack_blobs.entry(loc.pack).or_default().push((
            id,
            loc.kind,
            loc.offset,
            loc.length,
            loc.raw_length,
        ));
    }
    for (pack, size) in index.packs() {
        let why = match stored.get(&pack) {
            None if garbage.contains(&pack) => continue,
            None => "missing".to_string(),
            Some(&s) if s != size => format!("{s} bytes, but the index says {size}"),
            Some(_) => continue,
        };
        report.problem(format!("pack {}", pack.short()), why.clone());
        for (b, ..) in pack_blobs.get(&pack).into_iter().flatten() {
            bad_blobs.insert(*b, format!("in pack {} ({why})", pack.short()));
        }
    }
    let mut unindexed: Vec<&Id> = stored
        .keys()
        .filter(|p| !pack_blobs.contains_key(p) && !index.packs().any(|(q, _)| q == **p))
        .collect();
    unindexed.sort_unstable();
    for p in unindexed {
        report.warnings.push(format!(
            "pack {} is in no index (an interrupted backup's: prune removes it; `cairn repair index` indexes it)",
            p.short()
        ));
    }
    if opts.read_data {
        read_data(
            repo,
            opts,
            &stored,
            &pack_blobs,
            &mut bad_blobs,
            &mut report,
        )
        .await?;
    }

    // Snapshots: walk everything they reference.
    let mut walk = Walk {
        repo,
        index: &index,
        bad_blobs: &bad_blobs,
        trees: IdMap::default(),
        vols: IdMap::default(),
        failed: IdMap::default(),
        missing: IdSet::default(),
    };
    walk.load_all(&snaps).await;
    report.stats.metadata_blobs = walk.trees.len() + walk.vols.len() + walk.failed.len();
    let mut failed: Vec<(&Id, &String)> = walk.failed.iter().collect();
    failed.sort();
    for (id, why) in failed {
        report.problem(format!("metadata blob {}", id.short()), why.clone());
    }
    let mut missing: Vec<Id> = walk.missing_blobs();
    missing.sort_unstable();
    for b in missing {
        report.problem(
            format!("blob {}", b.short()),
            "referenced by a snapshot but in no index (run `cairn repair index`)",
        );
    }
    for (id, s) in &snaps {
        let mut out = Vec::new();
        walk.affected(s, &mut out);
        let n = out.len();
        for what in out.into_iter().take(MAX_AFFECTED_PER_SNAPSHOT) {
            report.affected.push(Affected {
                snapshot: *id,
                what,
            });
        }
        if n > MAX_AFFECTED_PER_SNAPSHOT {
            report.affected.push(Affected {
                snapshot: *id,
                what: format!("… and {} more", n - MAX_AFFECTED_PER_SNAPSHOT),
            });
        }
    }
    Ok(report)
}

async fn check_config(repo: &Repository, report: &mut CheckReport) -> Result<()> {
    if let Some(why) = repo.config_damage() {
        report.problem(
            "config",
            format!("{why} (its sealed copy config.sealed is intact and was used)"),
        );
        return Ok(());
    }
    let sealed = match Repository::read_sealed_config(repo.storage(), repo.key()).await {
        Ok(s) => s,
        Err(e) if e.is_corruption() => {
            report.problem(layout::CONFIG_SEALED, e.to_string());
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let Some((_, sealed_bytes)) = sealed else {
        report.warnings.push(
            "config has no sealed copy (config.sealed): made by an older cairn, it cannot be authenticated"
                .into(),
        );
        return Ok(());
    };
    let bytes = repo.storage().read(layout::CONFIG).await?;
    if bytes.as_ref() != sealed_bytes.as_slice() {
        report.problem(
            "config",
            "differs from its authenticated copy config.sealed (damaged or tampered; the repository's parameters cannot be trusted)",
        );
    }
    Ok(())
}

async fn check_keys(repo: &Repository, report: &mut CheckReport) -> Result<()> {
    for (id, k) in crate::keys::read_each_key(repo.storage()).await? {
        match k {
            Ok(_) => {}
            Err(e) if e.is_corruption() => report.problem(
                format!("key {}", id.short()),
                format!("{e}; the passphrase of this key no longer opens the repository"),
            ),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn load_index(repo: &Repository, garbage: &IdSet, report: &mut CheckReport) -> Result<Index> {
    let ids = repo.list_ids(layout::INDEX).await?;
    report.stats.index_files = ids.len();
    let loaded: Vec<(Id, Result<cairn_format::IndexFile>)> = futures::stream::iter(ids)
        .map(|id| async move { (id, repo.load_index_file(&id).await) })
        .buffer_unordered(LOAD_CONCURRENCY)
        .collect()
        .await;
    let mut files = Vec::new();
    for (id, f) in loaded {
        match f {
            Ok(f) => files.push((id, f)),
            Err(e) if e.is_corruption() => report.problem(
                format!("index {}", id.short()),
                format!("{e}; the packs it lists may be unindexed (run `cairn repair index`)"),
            ),
            Err(e) => return Err(e),
        }
    }
    let superseded: IdSet = files
        .iter()
        .flat_map(|(_, f)| f.supersedes.iter().copied())
        .collect();
    let mut index = Index::default();
    index.set_garbage(garbage.clone());
    for (id, f) in &files {
        if !superseded.contains(id) {
            index.add_file(*id, f);
        }
    }
    Ok(index)
}

async fn load_snapshots(
    repo: &Repository,
    report: &mut CheckReport,
) -> Result<Vec<(Id, Snapshot)>> {
    let ids = repo.list_ids(layout::SNAPSHOTS).await?;
    let loaded: Vec<(Id, Result<Snapshot>)> = futures::stream::iter(ids)
        .map(|id| async move { (id, repo.load_snapshot(&id).await) })
        .buffer_unordered(LOAD_CONCURRENCY)
        .collect()
        .await;
    let mut snaps = Vec::new();
    for (id, s) in loaded {
        match s {
            Ok(s) => snaps.push((id, s)),
            Err(Error::Storage(e)) if e.kind() == ErrorKind::NotFound => {}
            Err(e) if e.is_corruption() => {
                report.problem(format!("snapshot {}", id.short()), e.to_string());
                report.affected.push(Affected {
                    snapshot: id,
                    what: "the whole snapshot (its manifest is damaged)".into(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    Ok(snaps)
}

type PackBlobs = IdMap<Vec<(Id, BlobKind, u32, u32, u32)>>;

/// Reads packs in full: hash, trailer, every blob.
async fn read_data(
    repo: &Repository,
    opts: &CheckOptions,
    stored: &IdMap<u64>,
    pack_blobs: &PackBlobs,
    bad_blobs: &mut IdMap<String>,
    report: &mut CheckReport,
) -> Result<()> {
    let mut packs: Vec<Id> = stored.keys().copied().collect();
    packs.sort_unstable();
    if let Some(f) = opts.subset {
        let n = ((packs.len() as f64) * f.clamp(0.0, 1.0)).ceil() as usize;
        let mut seed = [0u8; 8];
        cairn_crypto::random_bytes(&mut seed).map_err(|e| Error::Internal(e.to_string()))?;
        let seed = u64::from_le_bytes(seed);
        packs.sort_by_key(|p| p.prefix_u64() ^ seed);
        packs.truncate(n);
    }
    let results: Vec<Result<PackResult>> = futures::stream::iter(packs)
        .map(|p| {
            let blobs = pack_blobs.get(&p).cloned().unwrap_or_default();
            async move {
                let bytes = match repo.storage().read(&layout::pack_path(&p)).await {
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok((p, 0, Vec::new())),
                    r => r?,
                };
                let key = repo.key().clone();
                let len = bytes.len() as u64;
                let found =
                    tokio::task::spawn_blocking(move || verify_pack(&key, &p, &bytes, &blobs))
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?;
                Ok((p, len, found))
            }
        })
        .buffer_unordered(2)
        .collect()
        .await;
    for r in results {
        let (pack, len, found) = r?;
        report.stats.packs_read += 1;
        report.stats.bytes_read += len;
        for (message, blob, why) in found {
            report.problem(format!("pack {}", pack.short()), message);
            if let Some(b) = blob {
                bad_blobs.insert(b, why);
            }
        }
    }
    Ok(())
}

/// Verifies one pack's bytes; returns `(message, damaged blob, reason for the blob)`.
fn verify_pack(
    key: &cairn_crypto::MasterKey,
    pack: &Id,
    bytes: &[u8],
    blobs: &[(Id, BlobKind, u32, u32, u32)],
) -> Vec<(String, Option<Id>, String)> {
    let mut out = Vec::new();
    if blake3::hash(bytes).as_bytes() != &pack.0 {
        out.push((
            "content does not match its name".to_string(),
            None,
            String::new(),
        ));
    }
    let len = bytes.len() as u64;
    let trailer = (|| {
        let footer = bytes
            .get(bytes.len().saturating_sub(PACK_FOOTER_LEN)..)
            .ok_or_else(|| "too short".to_string())?;
        let (start, tlen) = parse_pack_footer(footer, len).map_err(|e| e.to_string())?;
        let sealed = &bytes[start as usize..start as usize + tlen as usize];
        let plain = cairn_crypto::open(key, &object_aad("pack trailer"), sealed)
            .map_err(|e| e.to_string())?;
        PackTrailer::from_bytes(&plain, start).map_err(|e| e.to_string())
    })();
    match trailer {
        Err(e) => out.push((format!("trailer: {e}"), None, String::new())),
        Ok(t) => {
            let mut listed: Vec<(Id, u32, u32)> =
                t.blobs.iter().map(|b| (b.id, b.offset, b.length)).collect();
            let mut indexed: Vec<(Id, u32, u32)> = blobs.iter().map(|b| (b.0, b.2, b.3)).collect();
            listed.sort_unstable();
            indexed.sort_unstable();
            if !blobs.is_empty() && !indexed.iter().all(|b| listed.binary_search(b).is_ok()) {
                out.push((
                    "its trailer disagrees with the index".to_string(),
                    None,
                    String::new(),
                ));
            }
        }
    }
    for &(id, kind, offset, length, _) in blobs {
        let why = match bytes.get(offset as usize..offset as usize + length as usize) {
            None => "beyond the end of the pack".to_string(),
            Some(sealed) => match decode_blob(key, kind, &id, sealed) {
                Ok(_) => continue,
                Err(e) => e.to_string(),
            },
        };
        out.push((
            format!("{kind:?} blob {}: {why}", id.short()),
            Some(id),
            format!("damaged in pack {}: {why}", pack.short()),
        ));
    }
    out
}

/// A loaded tree: its entries' names, subtrees and damaged content.
struct TreeInfo {
    subdirs: Vec<(String, Id)>,
    damaged: Vec<(String, String)>,
}

enum VolInfo {
    Interior(Vec<Option<Id>>),
    /// Damaged chunks: (index in leaf, reason).
    Leaf(Vec<(usize, String)>),
}

struct Walk<'a> {
    repo: &'a Repository,
    index: &'a Index,
    bad_blobs: &'a IdMap<String>,
    trees: IdMap<TreeInfo>,
    vols: IdMap<VolInfo>,
    failed: IdMap<String>,
    missing: IdSet,
}

impl Walk<'_> {
    fn blob_problem(&self, id: &Id) -> Option<String> {
        if let Some(why) = self.bad_blobs.get(id) {
            return Some(format!("blob {} {why}", id.short()));
        }
        if !self.index.contains(id) {
            return Some(format!("blob {} is in no index", id.short()));
        }
        None
    }

    fn content_problem(&self, content: &[Extent]) -> Option<String> {
        content
            .iter()
            .filter_map(Extent::blob)
            .find_map(|id| self.blob_problem(&id))
    }

    #[allow(
        clippy::too_many_lines,
        reason = "trees, then volume nodes, breadth first"
    )]
    async fn load_all(&mut self, snaps: &[(Id, Snapshot)]) {
        let mut trees: Vec<Id> = Vec::new();
        let mut vols: Vec<Id> = Vec::new();
        for (_, s) in snaps {
            match &s.root {
                Root::Node(n) => {
                    trees.extend(n.subtree);
                    for id in n.content.iter().filter_map(Extent::blob) {
                        if !self.index.contains(&id) {
                            self.missing.insert(id);
                        }
                    }
                }
                Root::Volume(m) => vols.extend(m.top.iter().flatten().copied()),
            }
        }
        while !trees.is_empty() {
            trees.sort_unstable();
            trees.dedup();
            trees.retain(|t| !self.trees.contains_key(t) && !self.failed.contains_key(t));
            let repo = self.repo;
            let loaded: Vec<(Id, Result<Arc<cairn_format::Tree>>)> =
                futures::stream::iter(std::mem::take(&mut trees))
                    .map(|id| async move { (id, repo.load_tree(&id).await) })
                    .buffer_unordered(LOAD_CONCURRENCY)
                    .collect()
                    .await;
            for (id, t) in loaded {
                let t = match t {
                    Ok(t) => t,
                    Err(e) => {
                        if !self.index.contains(&id) {
                            self.missing.insert(id);
                        }
                        let why = self.blob_problem(&id).unwrap_or_else(|| e.to_string());
                        self.failed.insert(id, why);
                        continue;
                    }
                };
                let mut info = TreeInfo {
                    subdirs: Vec::new(),
                    damaged: Vec::new(),
                };
                for n in &t.nodes {
                    for id in n.content.iter().filter_map(Extent::blob) {
                        if !self.index.contains(&id) {
                            self.missing.insert(id);
                        }
                    }
                    if let Some(why) = self.content_problem(&n.content) {
                        info.damaged.push((n.display_name(), why));
                    }
                    if let Some(sub) = n.subtree {
                        info.subdirs.push((n.display_name(), sub));
                        trees.push(sub);
                    }
                }
                self.trees.insert(id, info);
            }
        }
        while !vols.is_empty() {
            vols.sort_unstable();
            vols.dedup();
            vols.retain(|v| !self.vols.contains_key(v) && !self.failed.contains_key(v));
            let repo = self.repo;
            let loaded: Vec<(Id, Result<VolumeNode>)> =
                futures::stream::iter(std::mem::take(&mut vols))
                    .map(|id| async move { (id, repo.load_volume_node(&id).await) })
                    .buffer_unordered(LOAD_CONCURRENCY)
                    .collect()
                    .await;
            for (id, n) in loaded {
                match n {
                    Err(e) => {
                        if !self.index.contains(&id) {
                            self.missing.insert(id);
                        }
                        let why = self.blob_problem(&id).unwrap_or_else(|| e.to_string());
                        self.failed.insert(id, why);
                    }
                    Ok(VolumeNode::Interior(children)) => {
                        vols.extend(children.iter().flatten().copied());
                        self.vols.insert(id, VolInfo::Interior(children));
                    }
                    Ok(VolumeNode::Leaf(leaf)) => {
                        let mut bad = Vec::new();
                        for (i, c) in leaf.chunks.iter().enumerate() {
                            let mut ids = Vec::new();
                            chunk_blobs(c, &mut ids);
                            self.missing
                                .extend(ids.iter().filter(|b| !self.index.contains(b)));
                            if let Some(why) = ids.iter().find_map(|b| self.blob_problem(b)) {
                                bad.push((i, why));
                            }
                        }
                        self.vols.insert(id, VolInfo::Leaf(bad));
                    }
                }
            }
        }
    }

    /// Referenced blobs that no index lists.
    fn missing_blobs(&self) -> Vec<Id> {
        self.missing.iter().copied().collect()
    }

    fn tree_damaged(&self, id: &Id, memo: &mut IdMap<bool>) -> bool {
        if let Some(&d) = memo.get(id) {
            return d;
        }
        let d = match self.trees.get(id) {
            None => true,
            Some(t) => {
                !t.damaged.is_empty() || t.subdirs.iter().any(|(_, s)| self.tree_damaged(s, memo))
            }
        };
        memo.insert(*id, d);
        d
    }

    fn affected(&self, s: &Snapshot, out: &mut Vec<String>) {
        match &s.root {
            Root::Node(n) => self.affected_node(n, out),
            Root::Volume(m) => self.affected_volume(m, out),
        }
    }

    fn affected_node(&self, n: &Node, out: &mut Vec<String>) {
        let name = n.display_name();
        if let Some(why) = self.content_problem(&n.content) {
            out.push(format!("file {name}: {why}"));
        }
        if let Some(sub) = n.subtree {
            // Paths inside the snapshot, as `catalog` and `restore SNAP:PATH` name them.
            let mut memo = IdMap::default();
            self.affected_tree(&sub, "", &mut memo, out);
        }
    }

    fn affected_tree(&self, id: &Id, path: &str, memo: &mut IdMap<bool>, out: &mut Vec<String>) {
        if out.len() > MAX_AFFECTED_PER_SNAPSHOT || !self.tree_damaged(id, memo) {
            return;
        }
        let shown = if path.is_empty() { "/" } else { path };
        let Some(t) = self.trees.get(id) else {
            let why = self.failed.get(id).map_or("not loaded", String::as_str);
            out.push(format!("directory {shown} and everything below: {why}"));
            return;
        };
        let join = |name: &str| {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            }
        };
        for (name, why) in &t.damaged {
            out.push(format!("file {}: {why}", join(name)));
        }
        for (name, sub) in &t.subdirs {
            self.affected_tree(sub, &join(name), memo, out);
        }
    }

    fn affected_volume(&self, m: &VolumeMap, out: &mut Vec<String>) {
        let span = m.top_span_chunks();
        let leaf_bytes = u64::from(m.leaf_chunks) * u64::from(m.chunk_size);
        let mut ranges: Vec<(u64, u64, String)> = Vec::new();
        for (i, top) in m.top.iter().enumerate() {
            if let Some(id) = top {
                let first_leaf = i as u64 * span / u64::from(m.leaf_chunks);
                self.vol_node(m, id, m.height, first_leaf, leaf_bytes, &mut ranges);
            }
        }
        // Merge neighbouring ranges with the same reason.
        let mut merged: Vec<(u64, u64, String)> = Vec::new();
        for (s, e, why) in ranges {
            let e = e.min(m.capacity);
            match merged.last_mut() {
                Some(last) if last.1 == s && last.2 == why => last.1 = e,
                _ => merged.push((s, e, why)),
            }
        }
        for (s, e, why) in merged {
            out.push(format!("volume bytes {s}..{e} ({} bytes): {why}", e - s));
        }
    }

    fn vol_node(
        &self,
        m: &VolumeMap,
        id: &Id,
        level: u8,
        first_leaf: u64,
        leaf_bytes: u64,
        out: &mut Vec<(u64, u64, String)>,
    ) {
        let leaves_below = u64::from(m.fanout).pow(u32::from(level));
        let start = first_leaf * leaf_bytes;
        match self.vols.get(id) {
            None => {
                let why = self.failed.get(id).map_or("not loaded", String::as_str);
                out.push((start, start + leaves_below * leaf_bytes, why.to_string()));
            }
            Some(VolInfo::Interior(children)) => {
                let per_child = leaves_below / u64::from(m.fanout);
                for (j, c) in children.iter().enumerate() {
                    if let (Some(c), Some(l)) = (c, level.checked_sub(1)) {
                        self.vol_node(m, c, l, first_leaf + j as u64 * per_child, leaf_bytes, out);
                    }
                }
            }
            Some(VolInfo::Leaf(bad)) => {
                let cs = u64::from(m.chunk_size);
                for (i, why) in bad {
                    let s = start + *i as u64 * cs;
                    out.push((s, s + cs, why.clone()));
                }
            }
        }
    }
}
