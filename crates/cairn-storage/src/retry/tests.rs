use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::memory::MemoryStorage;
use crate::{Error, ErrorStatus};

/// Fails the first `failures` calls with `error`, then behaves like memory. With
/// `land_first_write`, the first failing `write_new` still stores the object (an ambiguous
/// timeout).
#[derive(Debug)]
struct Flaky {
    inner: MemoryStorage,
    failures: u32,
    calls: AtomicU32,
    temporary: bool,
    land_first_write: bool,
}

impl Flaky {
    fn new(failures: u32, temporary: bool) -> Self {
        Self {
            inner: MemoryStorage::new(),
            failures,
            calls: AtomicU32::new(0),
            temporary,
            land_first_write: false,
        }
    }

    fn fail(&self) -> Result<()> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.failures {
            let err = Error::new(ErrorKind::Unexpected, "injected");
            return Err(if self.temporary { err.temporary() } else { err });
        }
        Ok(())
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Storage for Flaky {
    fn location(&self) -> &'static str {
        "flaky"
    }
    fn capability(&self) -> Capability {
        self.inner.capability()
    }
    async fn read(&self, path: &str) -> Result<Bytes> {
        self.fail()?;
        self.inner.read(path).await
    }
    async fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Bytes> {
        self.fail()?;
        self.inner.read_range(path, offset, len).await
    }
    async fn write(&self, path: &str, data: Bytes) -> Result<()> {
        self.fail()?;
        self.inner.write(path, data).await
    }
    async fn write_new(&self, path: &str, data: Bytes) -> Result<()> {
        if self.land_first_write && self.calls() == 0 {
            self.inner.write_new(path, data.clone()).await?;
        }
        self.fail()?;
        self.inner.write_new(path, data).await
    }
    async fn stat(&self, path: &str) -> Result<Option<u64>> {
        self.fail()?;
        self.inner.stat(path).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        self.fail()?;
        self.inner.list(prefix).await
    }
    async fn delete(&self, path: &str) -> Result<()> {
        self.fail()?;
        self.inner.delete(path).await
    }
    async fn retain(&self, path: &str, until: jiff::Timestamp) -> Result<()> {
        self.fail()?;
        self.inner.retain(path, until).await
    }
    async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>> {
        self.fail()?;
        self.inner.retained_until(path).await
    }
}

#[tokio::test(start_paused = true)]
async fn temporary_errors_are_retried_until_success() {
    let s = RetryStorage::new(Flaky::new(3, true), RetryOptions::default());
    let started = tokio::time::Instant::now();
    s.write("config", Bytes::from_static(b"c")).await.unwrap();
    assert_eq!(s.inner().calls(), 4);
    // Three delays of at least 50, 100 and 200 ms (jitter halves at most).
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.read("config").await.unwrap(), "c");
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    let s = RetryStorage::new(Flaky::new(10, false), RetryOptions::default());
    let err = s.read("config").await.unwrap_err();
    assert_eq!(s.inner().calls(), 1);
    assert_eq!(err.status(), ErrorStatus::Permanent);
}

#[tokio::test(start_paused = true)]
async fn not_found_is_not_retried() {
    let s = RetryStorage::new(Flaky::new(0, true), RetryOptions::default());
    assert_eq!(
        s.read("missing").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(s.inner().calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_mark_the_error_persistent() {
    let opts = RetryOptions::default().with_max_attempts(3);
    let s = RetryStorage::new(Flaky::new(100, true), opts);
    let err = s.list("data").await.unwrap_err();
    assert_eq!(s.inner().calls(), 3);
    assert_eq!(err.status(), ErrorStatus::Persistent);
    assert!(!err.is_temporary());
    assert!(err.to_string().contains("attempts: 3"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn write_new_that_landed_before_a_timeout_succeeds() {
    let mut flaky = Flaky::new(1, true);
    flaky.land_first_write = true;
    let s = RetryStorage::new(flaky, RetryOptions::default());
    s.write_new("locks/l", Bytes::from_static(b"mine"))
        .await
        .unwrap();
    assert_eq!(s.read("locks/l").await.unwrap(), "mine");
}

#[tokio::test(start_paused = true)]
async fn write_new_conflict_with_someone_else_still_fails() {
    let flaky = Flaky::new(1, true);
    flaky.inner.insert("locks/l", Bytes::from_static(b"theirs"));
    let s = RetryStorage::new(flaky, RetryOptions::default());
    let err = s
        .write_new("locks/l", Bytes::from_static(b"mine"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
}

#[test]
fn delays_grow_exponentially_up_to_the_cap() {
    let opts = RetryOptions::default().with_jitter(false);
    let delays: Vec<_> = (1..=10).map(|attempt| opts.delay(attempt)).collect();
    assert_eq!(delays[0], Duration::from_millis(100));
    assert_eq!(delays[1], Duration::from_millis(200));
    assert_eq!(delays[2], Duration::from_millis(400));
    assert_eq!(delays[9], Duration::from_secs(10));
    assert_eq!(opts.delay(u32::MAX), Duration::from_secs(10));
}

#[test]
fn jitter_stays_within_half_to_full_delay() {
    let opts = RetryOptions::default();
    for attempt in 1..=8 {
        let base = opts.base_delay(attempt);
        let delay = opts.delay(attempt);
        assert!(delay >= base / 2 && delay <= base, "{delay:?} vs {base:?}");
    }
}
