//! Running CPU-bound work (chunking, hashing, compression, encryption, local file I/O) on the
//! rayon pool from async code, and shipping finished packs from worker threads.

use crate::writer::{FinishedPack, PackSender};
use crate::{Error, Result};

/// Runs `f` on the rayon pool and awaits its result.
pub(crate) async fn cpu<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        // The receiver is gone only if the caller was cancelled; the result is moot then.
        let _ = tx.send(f());
    });
    rx.await
        .map_err(|_| Error::Internal("a worker thread panicked".into()))
}

/// Hands a filled pack to the uploader, blocking the worker while uploads are backed up.
/// Must be called from a worker thread, never from async code.
pub(crate) fn ship_blocking(tx: &PackSender, pack: Option<FinishedPack>) -> Result<()> {
    match pack {
        Some(p) => tx
            .blocking_send(p)
            .map_err(|_| Error::Internal("the upload task stopped".into())),
        None => Ok(()),
    }
}

/// Hands a filled pack to the uploader from async code.
pub(crate) async fn ship(tx: &PackSender, pack: Option<FinishedPack>) -> Result<()> {
    match pack {
        Some(p) => tx
            .send(p)
            .await
            .map_err(|_| Error::Internal("the upload task stopped".into())),
        None => Ok(()),
    }
}

/// True if every byte is zero (vectorizes well).
pub(crate) fn is_zero(data: &[u8]) -> bool {
    let mut chunks = data.chunks_exact(64);
    let body = chunks.by_ref().all(|c| {
        let mut acc = 0u8;
        for b in c {
            acc |= b;
        }
        acc == 0
    });
    body && chunks.remainder().iter().all(|&b| b == 0)
}
