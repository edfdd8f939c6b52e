use bytes::Bytes;
use tokio::time::Instant;

use super::*;
use crate::MemoryStorage;

const KIB: u64 = 1024;

#[tokio::test(start_paused = true)]
async fn uploads_wait_for_the_rate() {
    let s = ThrottleStorage::new(MemoryStorage::new(), Some(100 * KIB), None);
    let start = Instant::now();
    // 1 MiB at 100 KiB/s: the first 100 KiB (one burst) go at once, the rest takes ~9.24 s.
    for i in 0..8 {
        s.write(&format!("data/{i}"), Bytes::from(vec![0_u8; 128 * 1024]))
            .await
            .unwrap();
    }
    let took = start.elapsed().as_secs_f64();
    assert!((9.0..9.5).contains(&took), "took {took} s");
    // Reads are not limited.
    let start = Instant::now();
    for i in 0..8 {
        s.read(&format!("data/{i}")).await.unwrap();
    }
    assert!(start.elapsed().as_secs_f64() < 0.01);
}

#[tokio::test(start_paused = true)]
async fn downloads_wait_and_idle_time_refills() {
    let inner = MemoryStorage::new();
    inner
        .write("data/x", Bytes::from(vec![1_u8; 300 * 1024]))
        .await
        .unwrap();
    let s = ThrottleStorage::new(inner, None, Some(100 * KIB));
    let start = Instant::now();
    s.read("data/x").await.unwrap();
    // The first transfer only builds debt (300 KiB = 3 s, minus a 1 s burst)...
    assert!(start.elapsed().as_secs_f64() < 2.1);
    s.read_range("data/x", 0, 100 * 1024).await.unwrap();
    // ... which the next one waits off: 4 s of transfer, 1 s of burst.
    let took = start.elapsed().as_secs_f64();
    assert!((2.9..3.1).contains(&took), "took {took} s");
    // After 10 idle seconds the bucket is full again: 100 KiB goes at once.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let start = Instant::now();
    s.read_range("data/x", 0, 100 * 1024).await.unwrap();
    assert!(start.elapsed().as_secs_f64() < 0.01);
}
