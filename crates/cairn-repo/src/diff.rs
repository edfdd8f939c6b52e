//! Diff: what changed between two snapshots. Trees: entries added, removed or changed (type,
//! size, mode, owner, mtime, content, link target, xattrs). Volumes: the changed byte
//! ranges. Subtrees and volume leaves with equal ids are skipped unread.

use cairn_format::{Node, NodeKind, Root, Snapshot, VolChunk, VolumeMap};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::volume::{leaf_ids, load_leaf};
use crate::{Error, Repository, Result};

/// How an entry differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// Only in the second snapshot.
    Added,
    /// Only in the first.
    Removed,
    /// In both, different.
    Changed,
}

/// One entry that differs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct EntryChange {
    /// Path inside the snapshot (`/`-separated).
    pub path: String,
    /// Added, removed or changed.
    pub change: ChangeKind,
    /// What changed (`type`, `size`, `mode`, `owner`, `mtime`, `content`, `link`, `xattrs`).
    pub what: Vec<&'static str>,
    /// Size in the first snapshot.
    pub old_size: Option<u64>,
    /// Size in the second.
    pub new_size: Option<u64>,
    /// True for directories.
    pub dir: bool,
}

/// The difference between two volume snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct VolumeDiff {
    /// Capacity of the first and second volume.
    pub capacity: (u64, u64),
    /// Changed byte ranges `[start, end)` of the second volume (including growth).
    pub extents: Vec<(u64, u64)>,
    /// Total bytes in `extents`.
    pub changed_bytes: u64,
}

/// The difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SnapshotDiff {
    /// Trees (and streams): the entries that differ, in path order.
    Tree(Vec<EntryChange>),
    /// Volumes.
    Volume(VolumeDiff),
}

/// Compares snapshot `a` (older) with `b` (newer).
///
/// # Errors
/// `InvalidInput` for a tree against a volume; storage errors; `Corrupt`.
pub async fn diff(repo: &Repository, a: &Snapshot, b: &Snapshot) -> Result<SnapshotDiff> {
    match (&a.root, &b.root) {
        (Root::Node(x), Root::Node(y)) => {
            let mut out = Vec::new();
            // Roots compare as the snapshot's top, whatever their names.
            compare(repo, String::new(), x, y, &mut out).await?;
            Ok(SnapshotDiff::Tree(out))
        }
        (Root::Volume(x), Root::Volume(y)) => {
            volume_diff(repo, x, y).await.map(SnapshotDiff::Volume)
        }
        _ => Err(Error::InvalidInput(
            "cannot compare a volume snapshot with a file snapshot".into(),
        )),
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn changes(x: &Node, y: &Node) -> Vec<&'static str> {
    let mut w = Vec::new();
    if x.kind != y.kind {
        w.push("type");
        return w;
    }
    if x.size != y.size {
        w.push("size");
    }
    if x.mode != y.mode {
        w.push("mode");
    }
    if (x.uid, x.gid) != (y.uid, y.gid) {
        w.push("owner");
    }
    if x.kind != NodeKind::Dir && x.mtime_ns != y.mtime_ns {
        w.push("mtime");
    }
    if x.content != y.content {
        w.push("content");
    }
    if x.link_target != y.link_target {
        w.push("link");
    }
    if x.xattrs != y.xattrs {
        w.push("xattrs");
    }
    w
}

fn entry(
    path: String,
    change: ChangeKind,
    what: Vec<&'static str>,
    x: Option<&Node>,
    y: Option<&Node>,
) -> EntryChange {
    let dir = y.or(x).is_some_and(|n| n.kind == NodeKind::Dir);
    EntryChange {
        path,
        change,
        what,
        old_size: x.map(|n| n.size),
        new_size: y.map(|n| n.size),
        dir,
    }
}

#[allow(
    clippy::many_single_char_names,
    reason = "x and y are the two sides of the comparison throughout"
)]
fn compare<'a>(
    repo: &'a Repository,
    path: String,
    x: &'a Node,
    y: &'a Node,
    out: &'a mut Vec<EntryChange>,
) -> BoxFuture<'a, Result<()>> {
    async move {
        let what = changes(x, y);
        if what.contains(&"type") {
            side(repo, path.clone(), x, ChangeKind::Removed, out).await?;
            return side(repo, path, y, ChangeKind::Added, out).await;
        }
        if !what.is_empty() && !path.is_empty() {
            out.push(entry(
                path.clone(),
                ChangeKind::Changed,
                what,
                Some(x),
                Some(y),
            ));
        }
        if x.kind != NodeKind::Dir || x.subtree == y.subtree {
            return Ok(());
        }
        let (ta, tb) = match (x.subtree, y.subtree) {
            (Some(a), Some(b)) => (repo.load_tree(&a).await?, repo.load_tree(&b).await?),
            _ => return Ok(()),
        };
        let (mut i, mut j) = (0, 0);
        while i < ta.nodes.len() || j < tb.nodes.len() {
            let (na, nb) = (ta.nodes.get(i), tb.nodes.get(j));
            match (na, nb) {
                (Some(a), Some(b)) if a.name == b.name => {
                    compare(repo, join(&path, &a.display_name()), a, b, out).await?;
                    i += 1;
                    j += 1;
                }
                (Some(a), b) if b.is_none_or(|b| a.name < b.name) => {
                    side(
                        repo,
                        join(&path, &a.display_name()),
                        a,
                        ChangeKind::Removed,
                        out,
                    )
                    .await?;
                    i += 1;
                }
                (_, Some(b)) => {
                    side(
                        repo,
                        join(&path, &b.display_name()),
                        b,
                        ChangeKind::Added,
                        out,
                    )
                    .await?;
                    j += 1;
                }
                _ => break,
            }
        }
        Ok(())
    }
    .boxed()
}

/// Reports a node and everything below it as added or removed.
fn side<'a>(
    repo: &'a Repository,
    path: String,
    n: &'a Node,
    change: ChangeKind,
    out: &'a mut Vec<EntryChange>,
) -> BoxFuture<'a, Result<()>> {
    async move {
        let (x, y) = if change == ChangeKind::Added {
            (None, Some(n))
        } else {
            (Some(n), None)
        };
        out.push(entry(path.clone(), change, Vec::new(), x, y));
        if let Some(sub) = n.subtree {
            let t = repo.load_tree(&sub).await?;
            for c in &t.nodes {
                side(repo, join(&path, &c.display_name()), c, change, out).await?;
            }
        }
        Ok(())
    }
    .boxed()
}

async fn volume_diff(repo: &Repository, a: &VolumeMap, b: &VolumeMap) -> Result<VolumeDiff> {
    let mut d = VolumeDiff {
        capacity: (a.capacity, b.capacity),
        ..VolumeDiff::default()
    };
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    if (a.chunk_size, a.leaf_chunks) == (b.chunk_size, b.leaf_chunks) {
        let (la, lb) = (leaf_ids(repo, a).await?, leaf_ids(repo, b).await?);
        let cs = u64::from(b.chunk_size);
        let leaf_bytes = cs * u64::from(b.leaf_chunks);
        let common = a.capacity.min(b.capacity);
        for (n, (x, y)) in la.iter().zip(&lb).enumerate() {
            if x == y {
                continue;
            }
            let start = n as u64 * leaf_bytes;
            let len = leaf_bytes.min(common.saturating_sub(start));
            let chunks = len.div_ceil(cs) as usize;
            let cut = |l: cairn_format::VolumeLeaf| -> Vec<VolChunk> {
                l.chunks.into_iter().take(chunks).collect()
            };
            let (ca, cb) = (
                cut(load_leaf(repo, *x, leaf_len(a, n)).await?),
                cut(load_leaf(repo, *y, leaf_len(b, n)).await?),
            );
            for (i, (p, q)) in ca.iter().zip(&cb).enumerate() {
                if p != q {
                    let s = start + i as u64 * cs;
                    ranges.push((s, (s + cs).min(common)));
                }
            }
        }
        if b.capacity > a.capacity {
            ranges.push((a.capacity, b.capacity));
        }
    } else {
        // Different chunking: every byte counts as changed.
        ranges.push((0, b.capacity));
    }
    for (s, e) in ranges {
        match d.extents.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => d.extents.push((s, e)),
        }
    }
    d.changed_bytes = d.extents.iter().map(|(s, e)| e - s).sum();
    Ok(d)
}

/// Chunks in leaf `n` of a map.
fn leaf_len(m: &VolumeMap, n: usize) -> usize {
    let total = m.chunk_count();
    let first = n as u64 * u64::from(m.leaf_chunks);
    (total.saturating_sub(first)).min(u64::from(m.leaf_chunks)) as usize
}
