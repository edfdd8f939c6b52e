//! Copying snapshots to another repository (3-2-1: another store, other credentials, another
//! passphrase).
//!
//! Blob ids are keyed by each repository's master key (docs/format.md §4), so the same bytes
//! have different ids in the two repositories and every object that names blobs — trees,
//! volume map nodes, the snapshot — is rewritten with the target's ids. Data is read from the
//! source (verified on the way: a damaged blob stops the copy, it is never propagated), and
//! uploaded only when the target lacks it. Within one run a source blob or subtree is read and
//! mapped once, however many of the copied snapshots share it.
//!
//! A copied snapshot keeps the source's time, host, user, tags, identity and summary; its
//! parent is the copy of the source's parent when that was copied in the same run. A
//! snapshot already in the target (same time, host, identity and paths) is not copied again.
//!
//! Both repositories are locked shared for the run: a prune on either waits (docs/format.md
//! §14). The target's snapshots are written one at a time, each after its packs and indexes
//! are durable, so an interrupted copy leaves the target valid, with every snapshot copied so
//! far, and the next run uploads only what is missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_format::{
    BlobKind, Extent, Id, Node, Root, Snapshot, Tree, VolChunk, VolumeMap, VolumeNode,
};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::backup::Session;
use crate::blob::{blob_id, decode_blob};
use crate::index::IdMap;
use crate::progress::DynProgress;
use crate::reader::fetch_coalesced;
use crate::worker::{cpu, ship};
use crate::writer::{BlobWriter, PackSender};
use crate::{Error, Repository, Result};

/// Data blobs fetched per batch (neighbours in a pack are read together).
const DATA_BATCH: usize = 64;
/// Subtrees copied at a time.
const TREE_CONCURRENCY: usize = 4;

/// What a copy did with one source snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Copied {
    /// Written to the target under this id.
    New(Id),
    /// The target already had it (this id).
    Present(Id),
}

/// The result of [`copy_snapshots`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CopyOutcome {
    /// Per source snapshot, in the order given.
    pub snapshots: Vec<(Id, Copied)>,
    /// Blobs uploaded to the target.
    pub blobs_added: u64,
    /// Their plaintext bytes.
    pub bytes_added: u64,
    /// Bytes written to the target's storage.
    pub bytes_stored: u64,
    /// Plaintext bytes read from the source.
    pub bytes_read: u64,
}

/// True if `a` and `b` are the same backup (a copy keeps all of these).
fn same_backup(a: &Snapshot, b: &Snapshot) -> bool {
    a.time == b.time
        && a.hostname == b.hostname
        && a.source.identity == b.source.identity
        && a.source.paths == b.source.paths
        && a.source.kind == b.source.kind
}

/// Copies the snapshots `ids` of `src` into `dst`, oldest first.
///
/// # Errors
/// Storage errors on either side; `Corrupt` when a source object is damaged (nothing
/// damaged is copied; snapshots copied before it stay); `Interrupted` if cancelled.
pub async fn copy_snapshots(
    src: &Arc<Repository>,
    dst: &Arc<Repository>,
    ids: &[Id],
    progress: DynProgress,
    cancel: CancellationToken,
) -> Result<CopyOutcome> {
    let src_lock = src.lock(false, "copy", src.lock_options()).await?;
    let mut wanted = Vec::with_capacity(ids.len());
    for id in ids {
        wanted.push((*id, src.load_snapshot(id).await?));
    }
    wanted.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    wanted.dedup_by_key(|w| w.0);
    let existing = dst.snapshots(&crate::SnapshotFilter::default()).await?;
    progress.start("copy", None, Some(wanted.len() as u64));
    let map = Arc::new(Mutex::new(IdMap::default()));
    let mut out = CopyOutcome::default();
    let mut copied_ids: IdMap<Id> = IdMap::default();
    for (sid, snap) in wanted {
        if cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        if let Some((tid, _)) = existing.iter().find(|(_, t)| same_backup(t, &snap)) {
            copied_ids.insert(sid, *tid);
            out.snapshots.push((sid, Copied::Present(*tid)));
            progress.add_items(1);
            continue;
        }
        let session = Session::start(dst, 2).await?;
        let copier = Copier {
            src: src.clone(),
            dst: dst.clone(),
            writer: session.writer.clone(),
            tx: session.tx.clone(),
            map: map.clone(),
            cancel: cancel.clone(),
            progress: progress.clone(),
            read: AtomicU64::new(0),
        };
        let root = copier.root(&snap.root).await;
        out.bytes_read += copier.read.load(Ordering::Relaxed);
        drop(copier);
        let root = match root {
            Ok(r) => r,
            Err(e) => return Err(session.abort(e).await),
        };
        let mut new = snap.clone();
        new.root = root;
        new.parent = snap.parent.and_then(|p| copied_ids.get(&p).copied());
        // A lock belongs to the store that holds it: the copy is not locked on the target.
        new.set_retain_until(None);
        let stats = session.writer.stats.clone();
        let (_, lock) = session.finish().await?;
        lock.check_fresh()?;
        src_lock.check_fresh()?;
        let tid = dst.save_snapshot(&new).await?;
        lock.release().await;
        out.blobs_added += stats.blobs.load(Ordering::Relaxed);
        out.bytes_added += stats.raw_bytes.load(Ordering::Relaxed);
        out.bytes_stored += stats.stored_bytes.load(Ordering::Relaxed);
        tracing::info!(source = %sid.short(), target = %tid.short(), "snapshot copied");
        copied_ids.insert(sid, tid);
        out.snapshots.push((sid, Copied::New(tid)));
        progress.add_items(1);
    }
    progress.finish();
    src_lock.release().await;
    Ok(out)
}

/// One snapshot's copy into one target session.
struct Copier {
    src: Arc<Repository>,
    dst: Arc<Repository>,
    writer: Arc<BlobWriter>,
    tx: PackSender,
    /// Source id → target id, for every blob mapped in this run.
    map: Arc<Mutex<IdMap<Id>>>,
    cancel: CancellationToken,
    progress: DynProgress,
    read: AtomicU64,
}

impl Copier {
    fn mapped(&self, id: &Id) -> Result<Id> {
        self.map
            .lock()
            .get(id)
            .copied()
            .ok_or_else(|| Error::Internal(format!("blob {} was not copied", id.short())))
    }

    /// Stores a plaintext object in the target; returns its target id.
    async fn store(&self, kind: BlobKind, plain: Vec<u8>) -> Result<Id> {
        let id = blob_id(self.dst.key(), &plain);
        let writer = self.writer.clone();
        let pack = cpu(move || writer.add(kind, id, &plain)).await??;
        ship(&self.tx, pack).await?;
        Ok(id)
    }

    /// Maps every data blob of `ids` into the target: reads those not mapped yet from the
    /// source (neighbours together), verifies them, stores those the target lacks.
    async fn data(&self, ids: impl IntoIterator<Item = Id>) -> Result<()> {
        let mut todo: Vec<Id> = {
            let map = self.map.lock();
            ids.into_iter().filter(|id| !map.contains_key(id)).collect()
        };
        todo.sort_unstable();
        todo.dedup();
        if todo.is_empty() {
            return Ok(());
        }
        let index = self.src.index().await?;
        for batch in todo.chunks(DATA_BATCH) {
            if self.cancel.is_cancelled() {
                return Err(Error::Interrupted);
            }
            let locs = batch
                .iter()
                .map(|id| {
                    index.get(id).ok_or_else(|| {
                        Error::corrupt(format!("Data blob {}", id.short()), "not in the index")
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let sealed = fetch_coalesced(&self.src, &locs).await?;
            let (skey, dkey, ids) = (
                self.src.key().clone(),
                self.dst.key().clone(),
                batch.to_vec(),
            );
            let writer = self.writer.clone();
            let (packs, pairs, read) = cpu(move || -> Result<_> {
                let mut packs = Vec::new();
                let mut pairs = Vec::with_capacity(ids.len());
                let mut read = 0u64;
                for (id, s) in ids.iter().zip(&sealed) {
                    let plain = decode_blob(&skey, BlobKind::Data, id, s)?;
                    read += plain.len() as u64;
                    let new = blob_id(&dkey, &plain);
                    if let Some(p) = writer.add(BlobKind::Data, new, &plain)? {
                        packs.push(p);
                    }
                    pairs.push((*id, new));
                }
                Ok((packs, pairs, read))
            })
            .await??;
            for p in packs {
                ship(&self.tx, Some(p)).await?;
            }
            self.read.fetch_add(read, Ordering::Relaxed);
            self.progress.add_bytes(read);
            self.map.lock().extend(pairs);
        }
        Ok(())
    }

    fn extents(&self, content: &[Extent]) -> Result<Vec<Extent>> {
        content
            .iter()
            .map(|e| {
                Ok(match *e {
                    Extent::Data { id, len } => Extent::Data {
                        id: self.mapped(&id)?,
                        len,
                    },
                    Extent::Slice { id, offset, len } => Extent::Slice {
                        id: self.mapped(&id)?,
                        offset,
                        len,
                    },
                    Extent::Hole { len } => Extent::Hole { len },
                })
            })
            .collect()
    }

    /// A node with its content and subtree in the target.
    async fn node(&self, n: &Node) -> Result<Node> {
        let blobs: Vec<Id> = n.content.iter().filter_map(Extent::blob).collect();
        self.data(blobs).await?;
        let mut new = n.clone();
        new.content = self.extents(&n.content)?;
        if let Some(sub) = n.subtree {
            new.subtree = Some(self.tree(sub).await?);
        }
        Ok(new)
    }

    /// A directory listing and everything below it, in the target.
    fn tree(&self, id: Id) -> BoxFuture<'_, Result<Id>> {
        async move {
            if let Some(t) = self.map.lock().get(&id).copied() {
                return Ok(t);
            }
            let tree = self.src.load_tree(&id).await?;
            let blobs: Vec<Id> = tree
                .nodes
                .iter()
                .flat_map(|n| n.content.iter().filter_map(Extent::blob))
                .collect();
            self.data(blobs).await?;
            let below: Vec<(usize, Id)> = tree
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.subtree.map(|s| (i, s)))
                .collect();
            let subtrees: Vec<(usize, Id)> = futures::stream::iter(below)
                .map(|(i, s)| async move { Ok::<_, Error>((i, self.tree(s).await?)) })
                .buffer_unordered(TREE_CONCURRENCY)
                .try_collect()
                .await?;
            let mut nodes = Vec::with_capacity(tree.nodes.len());
            for n in &tree.nodes {
                let mut new = n.clone();
                new.content = self.extents(&n.content)?;
                nodes.push(new);
            }
            for (i, s) in subtrees {
                nodes[i].subtree = Some(s);
            }
            let bytes = Tree { nodes }
                .to_bytes()
                .map_err(|e| Error::Internal(e.to_string()))?;
            let new = self.store(BlobKind::Tree, bytes).await?;
            self.map.lock().insert(id, new);
            Ok(new)
        }
        .boxed()
    }

    /// A volume map node and everything below it, in the target.
    fn volume_node(&self, id: Id) -> BoxFuture<'_, Result<Id>> {
        async move {
            if let Some(t) = self.map.lock().get(&id).copied() {
                return Ok(t);
            }
            let node = match self.src.load_volume_node(&id).await? {
                VolumeNode::Interior(children) => {
                    let mut out = Vec::with_capacity(children.len());
                    for c in children {
                        out.push(match c {
                            Some(c) => Some(self.volume_node(c).await?),
                            None => None,
                        });
                    }
                    VolumeNode::Interior(out)
                }
                VolumeNode::Leaf(mut leaf) => {
                    let mut blobs = Vec::new();
                    for c in &leaf.chunks {
                        crate::refs::chunk_blobs(c, &mut blobs);
                    }
                    self.data(blobs).await?;
                    for c in &mut leaf.chunks {
                        match c {
                            VolChunk::Zero => {}
                            VolChunk::Data(id) => *id = self.mapped(id)?,
                            VolChunk::Patched { base, patches } => {
                                if let Some(b) = base {
                                    *b = self.mapped(b)?;
                                }
                                for p in patches {
                                    p.id = self.mapped(&p.id)?;
                                }
                            }
                        }
                    }
                    VolumeNode::Leaf(leaf)
                }
            };
            let bytes = node
                .to_bytes()
                .map_err(|e| Error::Internal(e.to_string()))?;
            let new = self.store(BlobKind::VolumeMap, bytes).await?;
            self.map.lock().insert(id, new);
            Ok(new)
        }
        .boxed()
    }

    async fn root(&self, root: &Root) -> Result<Root> {
        Ok(match root {
            Root::Node(n) => Root::Node(Box::new(self.node(n).await?)),
            Root::Volume(m) => {
                let mut top = Vec::with_capacity(m.top.len());
                for t in &m.top {
                    top.push(match t {
                        Some(id) => Some(self.volume_node(*id).await?),
                        None => None,
                    });
                }
                Root::Volume(VolumeMap { top, ..m.clone() })
            }
        })
    }
}
