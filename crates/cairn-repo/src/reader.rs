//! Reading blobs: locate through the index, fetch (metadata packs whole, through a small
//! cache), open and verify.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use cairn_format::{BlobKind, Id, Tree, VolumeNode, layout};
use parking_lot::Mutex;

use crate::blob::decode_blob;
use crate::index::{BlobLocation, IdMap};
use crate::{Error, Repository, Result};

/// A size-bounded FIFO cache of whole metadata packs: trees of one backup sit together in a
/// few packs, so walking a snapshot reads each of them once.
#[derive(Debug)]
pub(crate) struct PackCache {
    capacity: usize,
    inner: Mutex<(IdMap<Bytes>, VecDeque<Id>, usize)>,
}

impl PackCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new((IdMap::default(), VecDeque::new(), 0)),
        }
    }

    fn get(&self, id: &Id) -> Option<Bytes> {
        self.inner.lock().0.get(id).cloned()
    }

    fn put(&self, id: Id, bytes: Bytes) {
        let mut g = self.inner.lock();
        let (map, order, size) = &mut *g;
        if map.contains_key(&id) {
            return;
        }
        *size += bytes.len();
        map.insert(id, bytes);
        order.push_back(id);
        while *size > self.capacity && order.len() > 1 {
            if let Some(b) = order.pop_front().and_then(|old| map.remove(&old)) {
                *size -= b.len();
            }
        }
    }
}

impl Repository {
    /// Fetches the sealed bytes of a blob.
    pub(crate) async fn fetch_blob(&self, loc: &BlobLocation) -> Result<Bytes> {
        let start = loc.offset as usize;
        let end = start + loc.length as usize;
        if loc.kind.is_metadata() {
            let pack = if let Some(p) = self.pack_cache.get(&loc.pack) {
                p
            } else {
                let p = self.storage().read(&layout::pack_path(&loc.pack)).await?;
                self.pack_cache.put(loc.pack, p.clone());
                p
            };
            if end > pack.len() {
                return Err(Error::corrupt(
                    format!("pack {}", loc.pack.short()),
                    "shorter than its index says",
                ));
            }
            return Ok(pack.slice(start..end));
        }
        Ok(self
            .storage()
            .read_range(
                &layout::pack_path(&loc.pack),
                loc.offset.into(),
                loc.length.into(),
            )
            .await?)
    }

    /// Reads, opens and verifies a blob.
    ///
    /// # Errors
    /// `Corrupt` if missing from the index or damaged; storage errors.
    pub async fn read_blob(&self, kind: BlobKind, id: &Id) -> Result<Vec<u8>> {
        let index = self.index().await?;
        let loc = index.get(id).ok_or_else(|| {
            Error::corrupt(format!("{kind:?} blob {}", id.short()), "not in the index")
        })?;
        let sealed = self.fetch_blob(&loc).await?;
        let key = self.key().clone();
        let id = *id;
        if sealed.len() > 1024 * 1024 {
            tokio::task::spawn_blocking(move || decode_blob(&key, kind, &id, &sealed))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
        } else {
            decode_blob(&key, kind, &id, &sealed)
        }
    }

    /// Loads a directory listing.
    ///
    /// # Errors
    /// `Corrupt` for a damaged or malformed tree.
    pub async fn load_tree(&self, id: &Id) -> Result<Arc<Tree>> {
        let plain = self.read_blob(BlobKind::Tree, id).await?;
        Tree::from_bytes(&plain)
            .map(Arc::new)
            .map_err(|e| Error::format(format!("tree {}", id.short()), e))
    }

    /// Loads a volume map node.
    ///
    /// # Errors
    /// `Corrupt` for a damaged or malformed node.
    pub async fn load_volume_node(&self, id: &Id) -> Result<VolumeNode> {
        let plain = self.read_blob(BlobKind::VolumeMap, id).await?;
        VolumeNode::from_bytes(&plain)
            .map_err(|e| Error::format(format!("volume node {}", id.short()), e))
    }
}

/// Largest gap between two blobs of one pack read in one request.
const COALESCE_GAP: u64 = 256 * 1024;
/// Largest single coalesced read.
const COALESCE_MAX: u64 = 4 * 1024 * 1024;
/// Coalesced reads in flight for one call.
const READ_CONCURRENCY: usize = 4;

/// Fetches the sealed bytes of many data blobs, merging neighbours in a pack into one read.
/// Returns them in the order of `locs`.
pub(crate) async fn fetch_coalesced(
    repo: &Repository,
    locs: &[BlobLocation],
) -> Result<Vec<Bytes>> {
    let mut order: Vec<usize> = (0..locs.len()).collect();
    order.sort_by_key(|&i| (locs[i].pack, locs[i].offset));
    // Groups of (pack, start, end, members).
    let mut groups: Vec<(Id, u64, u64, Vec<usize>)> = Vec::new();
    for i in order {
        let l = &locs[i];
        let (s, e) = (
            u64::from(l.offset),
            u64::from(l.offset) + u64::from(l.length),
        );
        match groups.last_mut() {
            Some(g)
                if g.0 == l.pack && s <= g.2 + COALESCE_GAP && e.max(g.2) - g.1 <= COALESCE_MAX =>
            {
                g.2 = g.2.max(e);
                g.3.push(i);
            }
            _ => groups.push((l.pack, s, e, vec![i])),
        }
    }
    let mut out: Vec<Bytes> = vec![Bytes::new(); locs.len()];
    let fetched: Vec<(Vec<usize>, u64, Bytes)> = futures::stream::iter(groups)
        .map(|(pack, s, e, members)| async move {
            let bytes = repo
                .storage()
                .read_range(&layout::pack_path(&pack), s, e - s)
                .await?;
            Ok::<_, Error>((members, s, bytes))
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    for (members, s, bytes) in fetched {
        for i in members {
            let off = (u64::from(locs[i].offset) - s) as usize;
            let end = off + locs[i].length as usize;
            if end > bytes.len() {
                return Err(Error::corrupt(
                    format!("pack {}", locs[i].pack.short()),
                    "shorter than its index says",
                ));
            }
            out[i] = bytes.slice(off..end);
        }
    }
    Ok(out)
}

use futures::{StreamExt, TryStreamExt};
