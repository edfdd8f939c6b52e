//! A layer that retries temporary errors with exponential backoff and jitter.
//!
//! Only errors whose status is [`ErrorStatus::Temporary`](crate::ErrorStatus::Temporary) are
//! retried; `NotFound`, `Corrupt` and every other permanent error return at once. When the
//! attempts run out, the last error is marked
//! [`Persistent`](crate::ErrorStatus::Persistent) so callers know retrying already happened.
//! Delays use tokio's clock, so tests can `tokio::time::pause()` and run instantly.
//!
//! A retried `write_new` has one subtlety: the first attempt may have succeeded on the server
//! even though the client saw a timeout, and then the retry fails with `AlreadyExists`. The
//! layer reads the object back in that case and reports success if it holds exactly our data.

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Capability, Entry, ErrorKind, Result, Storage};

#[cfg(test)]
mod tests;

/// How [`RetryStorage`] retries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryOptions {
    /// Attempts in total, including the first (at least 1).
    pub max_attempts: u32,
    /// The delay before the first retry.
    pub min_delay: Duration,
    /// The cap on any one delay.
    pub max_delay: Duration,
    /// Whether to randomise each delay into `[delay / 2, delay]`, so that many clients
    /// throttled at once do not retry in lockstep.
    pub jitter: bool,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            jitter: true,
        }
    }
}

impl RetryOptions {
    /// Sets the total number of attempts (clamped to at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the first and the largest delay.
    #[must_use]
    pub fn with_delays(mut self, min_delay: Duration, max_delay: Duration) -> Self {
        self.min_delay = min_delay;
        self.max_delay = max_delay.max(min_delay);
        self
    }

    /// Turns jitter on or off.
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// The delay after failed attempt number `attempt` (1-based), before jitter.
    fn base_delay(&self, attempt: u32) -> Duration {
        let factor = 2_u32.saturating_pow(attempt.saturating_sub(1));
        self.min_delay.saturating_mul(factor).min(self.max_delay)
    }

    fn delay(&self, attempt: u32) -> Duration {
        let delay = self.base_delay(attempt);
        if !self.jitter {
            return delay;
        }
        let mut random = [0_u8; 8];
        if getrandom::fill(&mut random).is_err() {
            return delay;
        }
        // A fraction in [0.5, 1.0].
        let fraction = 0.5 + (u64::from_le_bytes(random) >> 11) as f64 / (1_u64 << 53) as f64 / 2.0;
        delay.mul_f64(fraction)
    }
}

/// Wraps a [`Storage`] and retries its temporary errors. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct RetryStorage<S> {
    inner: S,
    options: RetryOptions,
}

impl<S: Storage> RetryStorage<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, mut options: RetryOptions) -> Self {
        options.max_attempts = options.max_attempts.max(1);
        Self { inner, options }
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The retry settings.
    pub fn options(&self) -> &RetryOptions {
        &self.options
    }

    async fn retry<T, F, Fut>(&self, operation: &'static str, path: &str, mut call: F) -> Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match call(attempt).await {
                Err(err) if err.is_temporary() => {
                    if attempt >= self.options.max_attempts {
                        return Err(err
                            .persistent()
                            .with_context("attempts", attempt.to_string()));
                    }
                    let delay = self.options.delay(attempt);
                    tracing::warn!(
                        operation,
                        path,
                        location = self.inner.location(),
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = &err as &dyn StdError,
                        "retrying a temporary storage error"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl<S: Storage> Storage for RetryStorage<S> {
    fn location(&self) -> &str {
        self.inner.location()
    }

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        self.retry("read", path, |_| self.inner.read(path)).await
    }

    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.retry("read_range", path, |_| {
            self.inner.read_range(path, offset, len)
        })
        .await
    }

    async fn write(&self, path: &str, data: Bytes) -> Result<()> {
        self.retry("write", path, |_| self.inner.write(path, data.clone()))
            .await
    }

    async fn write_new(&self, path: &str, data: Bytes) -> Result<()> {
        self.retry("write_new", path, |attempt| {
            let data = data.clone();
            async move {
                match self.inner.write_new(path, data.clone()).await {
                    // An earlier attempt may have landed although we saw an error.
                    Err(err) if attempt > 1 && err.kind() == ErrorKind::AlreadyExists => {
                        match self.inner.read(path).await {
                            Ok(existing) if existing == data => Ok(()),
                            _ => Err(err),
                        }
                    }
                    other => other,
                }
            }
        })
        .await
    }

    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        self.retry("stat", path, |_| self.inner.stat(path)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        self.retry("list", prefix, |_| self.inner.list(prefix))
            .await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.retry("delete", path, |_| self.inner.delete(path))
            .await
    }

    async fn retain(&self, path: &str, until: jiff::Timestamp) -> Result<()> {
        // Idempotent: locks only grow, so a repeated attempt changes nothing.
        self.retry("retain", path, |_| self.inner.retain(path, until))
            .await
    }

    async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>> {
        self.retry("retained_until", path, |_| self.inner.retained_until(path))
            .await
    }
}
