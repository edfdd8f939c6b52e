//! A layer that limits upload and download bandwidth with a token bucket.
//!
//! Each direction has its own bucket that refills at `rate` bytes per second and holds at
//! most one second's worth. A transfer of `n` bytes takes `n` tokens; when the bucket runs
//! short it waits, and a transfer larger than the bucket runs the bucket into debt that later
//! transfers wait off. Writes pay before they are sent, reads after they arrive (their size
//! is known only then, except for ranged reads). Everything else (stat, list, delete) is
//! free. Waiting uses tokio's clock, so tests can `pause()` time.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::{Capability, Entry, Result, Storage};

#[cfg(test)]
mod tests;

/// One direction's token bucket.
#[derive(Debug)]
struct Bucket {
    /// Bytes per second.
    rate: u64,
    /// When the bucket is next full, i.e. the time by which all granted bytes are paid off.
    /// Granting `n` bytes moves it `n / rate` seconds later.
    paid_until: Mutex<Option<Instant>>,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        Self {
            rate: rate.max(1),
            paid_until: Mutex::new(None),
        }
    }

    /// Waits until `n` bytes may go.
    async fn take(&self, n: u64) {
        let burst = Duration::from_secs(1);
        let wait_until = {
            let mut paid = self.paid_until.lock();
            let now = Instant::now();
            // An idle bucket refills: debt in the past is gone.
            let start = paid.map_or(now, |p| p.max(now));
            #[allow(
                clippy::cast_precision_loss,
                reason = "byte counts far below 2^52 in practice; a rate needs no exactness"
            )]
            let cost = Duration::from_secs_f64(n as f64 / self.rate as f64);
            let end = start + cost;
            *paid = Some(end);
            // The bucket holds one burst: bytes may go once the debt beyond it is paid off.
            end.checked_sub(burst).filter(|t| *t > now)
        };
        if let Some(t) = wait_until {
            tokio::time::sleep_until(t).await;
        }
    }
}

/// Wraps a [`Storage`] and limits its bandwidth. See the [module docs](self).
#[derive(Debug)]
pub struct ThrottleStorage<S> {
    inner: S,
    upload: Option<Bucket>,
    download: Option<Bucket>,
}

impl<S: Storage> ThrottleStorage<S> {
    /// Wraps `inner`; `None` leaves a direction unlimited. Rates are bytes per second.
    pub fn new(inner: S, upload: Option<u64>, download: Option<u64>) -> Self {
        Self {
            inner,
            upload: upload.map(Bucket::new),
            download: download.map(Bucket::new),
        }
    }

    async fn up(&self, n: usize) {
        if let Some(b) = &self.upload {
            b.take(n as u64).await;
        }
    }

    async fn down(&self, n: usize) {
        if let Some(b) = &self.download {
            b.take(n as u64).await;
        }
    }
}

#[async_trait]
impl<S: Storage> Storage for ThrottleStorage<S> {
    fn location(&self) -> &str {
        self.inner.location()
    }

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let data = self.inner.read(path).await?;
        self.down(data.len()).await;
        Ok(data)
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes> {
        let data = self.inner.read_range(path, offset, len).await?;
        self.down(data.len()).await;
        Ok(data)
    }

    async fn write(&self, path: &str, data: Bytes) -> Result<()> {
        self.up(data.len()).await;
        self.inner.write(path, data).await
    }

    async fn write_new(&self, path: &str, data: Bytes) -> Result<()> {
        self.up(data.len()).await;
        self.inner.write_new(path, data).await
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        self.inner.stat(path).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.inner.delete(path).await
    }

    async fn retain(&self, path: &str, until: jiff::Timestamp) -> Result<()> {
        self.inner.retain(path, until).await
    }

    async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>> {
        self.inner.retained_until(path).await
    }
}
