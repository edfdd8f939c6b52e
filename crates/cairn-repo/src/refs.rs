//! What snapshots reference: every tree, volume map node and data blob reachable from their
//! roots. Shared subtrees and volume nodes are walked once, so 50 snapshots of one tree cost
//! little more than one.

use cairn_format::{Extent, Id, Root, Snapshot, VolChunk, VolumeNode};
use futures::{StreamExt, TryStreamExt};

use crate::index::IdSet;
use crate::repository::LOAD_CONCURRENCY;
use crate::{Repository, Result};

/// Adds the blobs of one node's content to `out`.
fn extents(content: &[Extent], out: &mut IdSet) {
    for id in content.iter().filter_map(Extent::blob) {
        out.insert(id);
    }
}

/// Adds the blobs of a volume chunk to `out`.
pub(crate) fn chunk_blobs(c: &VolChunk, out: &mut Vec<Id>) {
    match c {
        VolChunk::Data(id) => out.push(*id),
        VolChunk::Patched { base, patches } => {
            out.extend(base.iter().copied());
            out.extend(patches.iter().map(|p| p.id));
        }
        VolChunk::Zero => {}
    }
}

/// Every blob the snapshots reference (trees, volume nodes and data).
///
/// # Errors
/// Any tree or volume node that cannot be loaded: a caller deleting data must not go on
/// with an incomplete set.
pub(crate) async fn referenced<'a>(
    repo: &Repository,
    snaps: impl IntoIterator<Item = &'a Snapshot>,
) -> Result<IdSet> {
    let mut out = IdSet::default();
    let mut trees: Vec<Id> = Vec::new();
    let mut vols: Vec<Id> = Vec::new();
    for s in snaps {
        match &s.root {
            Root::Node(n) => {
                extents(&n.content, &mut out);
                trees.extend(n.subtree);
            }
            Root::Volume(m) => vols.extend(m.top.iter().flatten().copied()),
        }
    }
    while !trees.is_empty() {
        trees.retain(|t| out.insert(*t));
        let loaded: Vec<_> = futures::stream::iter(std::mem::take(&mut trees))
            .map(|id| async move { repo.load_tree(&id).await })
            .buffer_unordered(LOAD_CONCURRENCY)
            .try_collect()
            .await?;
        for t in loaded {
            for n in &t.nodes {
                extents(&n.content, &mut out);
                if let Some(sub) = n.subtree
                    && !out.contains(&sub)
                {
                    trees.push(sub);
                }
            }
        }
        trees.sort_unstable();
        trees.dedup();
    }
    while !vols.is_empty() {
        vols.retain(|v| out.insert(*v));
        let loaded: Vec<_> = futures::stream::iter(std::mem::take(&mut vols))
            .map(|id| async move { repo.load_volume_node(&id).await })
            .buffer_unordered(LOAD_CONCURRENCY)
            .try_collect()
            .await?;
        let mut blobs = Vec::new();
        for n in loaded {
            match n {
                VolumeNode::Interior(children) => {
                    vols.extend(children.iter().flatten().filter(|c| !out.contains(c)));
                }
                VolumeNode::Leaf(leaf) => {
                    for c in &leaf.chunks {
                        chunk_blobs(c, &mut blobs);
                    }
                }
            }
        }
        out.extend(blobs);
        vols.sort_unstable();
        vols.dedup();
    }
    Ok(out)
}
