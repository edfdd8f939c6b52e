//! Listing the files inside a snapshot.

use std::collections::VecDeque;

use cairn_format::{Node, NodeKind, Root, Snapshot};

use crate::{Error, Repository, Result};

/// One entry of a catalog listing.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CatalogEntry {
    /// Path relative to the snapshot root, `/`-separated.
    pub path: String,
    /// The entry.
    pub node: Node,
}

/// Finds the node at `path` (relative, `/`-separated; empty for the root).
pub(crate) async fn resolve_path(
    repo: &Repository,
    snap: &Snapshot,
    snap_name: &str,
    path: &str,
) -> Result<Node> {
    let Root::Node(root) = &snap.root else {
        return Err(Error::InvalidInput(format!(
            "snapshot {snap_name} is a volume; it has no files"
        )));
    };
    let mut node = (**root).clone();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        let Some(sub) = node.subtree.filter(|_| node.kind == NodeKind::Dir) else {
            return Err(Error::NoSuchPath {
                snapshot: snap_name.into(),
                path: path.into(),
            });
        };
        let tree = repo.load_tree(&sub).await?;
        node = tree
            .nodes
            .iter()
            .find(|n| n.name == part.as_bytes())
            .cloned()
            .ok_or_else(|| Error::NoSuchPath {
                snapshot: snap_name.into(),
                path: path.into(),
            })?;
    }
    Ok(node)
}

/// Lists the entries below `path` in a snapshot: one level, or all levels if `recursive`.
///
/// # Errors
/// `NoSuchPath`; `Corrupt` for damaged trees.
pub async fn catalog(
    repo: &Repository,
    snap: &Snapshot,
    snap_name: &str,
    path: &str,
    recursive: bool,
) -> Result<Vec<CatalogEntry>> {
    let start = resolve_path(repo, snap, snap_name, path).await?;
    let base = path.trim_matches('/').to_string();
    if start.kind != NodeKind::Dir {
        return Ok(vec![CatalogEntry {
            path: base,
            node: start,
        }]);
    }
    let mut out = Vec::new();
    let mut queue = VecDeque::from([(base, start)]);
    while let Some((dir_path, dir)) = queue.pop_front() {
        let Some(sub) = dir.subtree else { continue };
        let tree = repo.load_tree(&sub).await?;
        for n in &tree.nodes {
            let p = if dir_path.is_empty() {
                n.display_name()
            } else {
                format!("{dir_path}/{}", n.display_name())
            };
            if recursive && n.kind == NodeKind::Dir {
                queue.push_back((p.clone(), n.clone()));
            }
            out.push(CatalogEntry {
                path: p,
                node: n.clone(),
            });
        }
    }
    if recursive {
        out.sort_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(out)
}
