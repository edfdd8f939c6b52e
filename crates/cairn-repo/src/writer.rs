//! Writing blobs: dedupe, encode, pack, upload, index.
//!
//! Worker threads call [`BlobWriter::add`]; full packs go through a bounded channel to the
//! async upload task (backpressure bounds memory); index files are written only for packs
//! that are durable, every [`INDEX_EVERY`] packs and at the end, so an interrupted backup
//! leaves its uploaded packs indexed and the next run does not upload them again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cairn_crypto::MasterKey;
use cairn_format::{
    BlobKind, Id, IndexFile, IndexPack, PACK_HEADER, PackBlob, PackTrailer, layout, object_aad,
    pack_footer,
};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::blob::encode_blob;
use crate::index::{IdSet, Index};
use crate::{Error, Repository, Result};

/// Packs per intermediate index file (the default of [`Repository::index_every`]).
pub(crate) const INDEX_EVERY: usize = 32;

/// A finished pack ready to upload.
pub(crate) struct FinishedPack {
    id: Id,
    bytes: Bytes,
    blobs: Vec<PackBlob>,
}

struct OpenPack {
    buf: Vec<u8>,
    blobs: Vec<PackBlob>,
}

impl OpenPack {
    fn new() -> Self {
        Self {
            buf: PACK_HEADER.to_vec(),
            blobs: Vec::new(),
        }
    }

    fn finish(self, key: &MasterKey) -> Result<FinishedPack> {
        let OpenPack { mut buf, blobs } = self;
        let trailer = PackTrailer { blobs };
        let encoded = trailer
            .to_bytes()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let start = buf.len();
        cairn_crypto::seal_into(key, &object_aad("pack trailer"), &encoded, &mut buf)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let sealed_len = u32::try_from(buf.len() - start)
            .map_err(|_| Error::Internal("pack trailer too large".into()))?;
        buf.extend_from_slice(&pack_footer(sealed_len));
        let id = Id(*blake3::hash(&buf).as_bytes());
        let blobs = trailer.blobs;
        Ok(FinishedPack {
            id,
            bytes: Bytes::from(buf),
            blobs,
        })
    }
}

/// Counters of what a writer stored.
#[derive(Debug, Default)]
pub(crate) struct WriteStats {
    /// Blobs added.
    pub(crate) blobs: AtomicU64,
    /// Plaintext bytes of added blobs.
    pub(crate) raw_bytes: AtomicU64,
    /// Bytes of packs uploaded.
    pub(crate) stored_bytes: AtomicU64,
}

/// Deduplicates, encodes and packs blobs; shared by worker threads.
pub(crate) struct BlobWriter {
    key: Arc<MasterKey>,
    level: i32,
    pack_size: usize,
    index: Arc<Index>,
    pending: Mutex<IdSet>,
    data: Mutex<OpenPack>,
    meta: Mutex<OpenPack>,
    pub(crate) stats: Arc<WriteStats>,
}

impl BlobWriter {
    pub(crate) fn new(repo: &Repository, index: Arc<Index>) -> Self {
        Self {
            key: repo.key().clone(),
            level: repo.config().compression_level,
            pack_size: repo.config().pack_size as usize,
            index,
            pending: Mutex::new(IdSet::default()),
            data: Mutex::new(OpenPack::new()),
            meta: Mutex::new(OpenPack::new()),
            stats: Arc::new(WriteStats::default()),
        }
    }

    /// Adds a blob unless it is already stored. Returns a pack to upload if this filled one.
    /// CPU-bound: call from a worker thread.
    pub(crate) fn add(&self, kind: BlobKind, id: Id, plain: &[u8]) -> Result<Option<FinishedPack>> {
        if self.index.is_reusable(&id) || !self.pending.lock().insert(id) {
            return Ok(None);
        }
        let mut sealed = Vec::with_capacity(plain.len() + 64);
        encode_blob(&self.key, self.level, kind, &id, plain, &mut sealed)?;
        let raw_length = u32::try_from(plain.len())
            .map_err(|_| Error::Internal("blob larger than 4 GiB".into()))?;
        self.push(kind, id, &sealed, raw_length)
    }

    /// Adds an already sealed blob (prune copies live blobs out of mostly-empty packs
    /// without re-encoding them; the envelope is bound to the blob, not to its pack).
    pub(crate) fn add_sealed(
        &self,
        kind: BlobKind,
        id: Id,
        sealed: &[u8],
        raw_length: u32,
    ) -> Result<Option<FinishedPack>> {
        if self.index.is_reusable(&id) || !self.pending.lock().insert(id) {
            return Ok(None);
        }
        self.push(kind, id, sealed, raw_length)
    }

    fn push(
        &self,
        kind: BlobKind,
        id: Id,
        sealed: &[u8],
        raw_length: u32,
    ) -> Result<Option<FinishedPack>> {
        self.stats.blobs.fetch_add(1, Ordering::Relaxed);
        self.stats
            .raw_bytes
            .fetch_add(u64::from(raw_length), Ordering::Relaxed);
        let length = u32::try_from(sealed.len())
            .map_err(|_| Error::Internal("blob larger than 4 GiB".into()))?;
        let full = {
            let mut p = if kind.is_metadata() {
                self.meta.lock()
            } else {
                self.data.lock()
            };
            let offset = u32::try_from(p.buf.len())
                .map_err(|_| Error::Internal("pack larger than 4 GiB".into()))?;
            p.buf.extend_from_slice(sealed);
            p.blobs.push(PackBlob {
                id,
                kind,
                offset,
                length,
                raw_length,
            });
            if p.buf.len() >= self.pack_size {
                Some(std::mem::replace(&mut *p, OpenPack::new()))
            } else {
                None
            }
        };
        full.map(|p| p.finish(&self.key)).transpose()
    }

    /// True if a blob may be referenced without storing it: reusable in the index (not only
    /// in garbage packs) or added by this writer. Parent reuse must ask this (§14).
    pub(crate) fn is_stored(&self, id: &Id) -> bool {
        self.index.is_reusable(id) || self.pending.lock().contains(id)
    }

    /// True if a prune marked packs as garbage: a node reused by id may then reach blobs
    /// that only marked packs hold, so it must be loaded and checked instead.
    pub(crate) fn any_garbage(&self) -> bool {
        self.index.has_garbage()
    }

    /// Closes the open packs, returning those that hold blobs.
    pub(crate) fn flush(&self) -> Result<Vec<FinishedPack>> {
        let mut out = Vec::new();
        for m in [&self.data, &self.meta] {
            let p = std::mem::replace(&mut *m.lock(), OpenPack::new());
            if !p.blobs.is_empty() {
                out.push(p.finish(&self.key)?);
            }
        }
        Ok(out)
    }
}

/// The sending side used by workers.
pub(crate) type PackSender = mpsc::Sender<FinishedPack>;

/// Uploads packs as they arrive and writes index files for the durable ones.
pub(crate) struct Uploader {
    handle: tokio::task::JoinHandle<Result<UploadSummary>>,
}

/// What the uploader wrote.
#[derive(Debug, Default)]
pub(crate) struct UploadSummary {
    pub(crate) packs: Vec<IndexPack>,
    pub(crate) index_files: Vec<Id>,
}

impl Uploader {
    /// Starts the upload task; returns it and the channel to feed it.
    pub(crate) fn start(
        repo: &Arc<Repository>,
        concurrency: usize,
        stats: Arc<WriteStats>,
    ) -> (Self, PackSender) {
        let (tx, rx) = mpsc::channel::<FinishedPack>(concurrency.max(1));
        let repo = repo.clone();
        let handle =
            tokio::spawn(async move { run_uploads(repo, rx, concurrency.max(1), stats).await });
        (Self { handle }, tx)
    }

    /// Waits for all uploads (the sender must be dropped first) and the final index.
    pub(crate) async fn finish(self) -> Result<UploadSummary> {
        self.handle
            .await
            .map_err(|e| Error::Internal(format!("upload task: {e}")))?
    }
}

async fn write_index(repo: &Repository, packs: &[IndexPack]) -> Result<Id> {
    let file = IndexFile {
        packs: packs.to_vec(),
        supersedes: Vec::new(),
    };
    let bytes = file
        .to_bytes()
        .map_err(|e| Error::Internal(e.to_string()))?;
    repo.save_object(layout::INDEX, "index", &bytes).await
}

async fn run_uploads(
    repo: Arc<Repository>,
    rx: mpsc::Receiver<FinishedPack>,
    concurrency: usize,
    stats: Arc<WriteStats>,
) -> Result<UploadSummary> {
    let mut summary = UploadSummary::default();
    let mut unindexed: Vec<IndexPack> = Vec::new();
    let mut uploads = tokio_stream_from(rx)
        .map(|p| {
            let repo = repo.clone();
            async move {
                let size = p.bytes.len() as u64;
                repo.storage()
                    .write(&layout::pack_path(&p.id), p.bytes)
                    .await?;
                tracing::debug!(pack = %p.id.short(), size, blobs = p.blobs.len(), "pack stored");
                Ok::<_, Error>(IndexPack {
                    id: p.id,
                    size,
                    blobs: p.blobs,
                })
            }
        })
        .buffer_unordered(concurrency);
    let mut failure = None;
    while let Some(r) = uploads.next().await {
        match r {
            Ok(p) => {
                stats.stored_bytes.fetch_add(p.size, Ordering::Relaxed);
                unindexed.push(p);
                if unindexed.len() >= repo.index_every() {
                    summary
                        .index_files
                        .push(write_index(&repo, &unindexed).await?);
                    summary.packs.append(&mut unindexed);
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // Drain what is in flight so their packs get indexed too (unless a write failed).
    drop(uploads);
    if !unindexed.is_empty() {
        match write_index(&repo, &unindexed).await {
            Ok(id) => {
                summary.index_files.push(id);
                summary.packs.append(&mut unindexed);
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
