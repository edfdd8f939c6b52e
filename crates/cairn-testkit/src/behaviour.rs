//! The storage behaviour suite: one set of trials that every [`Storage`](cairn_storage::Storage) backend must pass.
//!
//! [`behaviour_trials`] turns a backend factory into `libtest-mimic` trials named
//! `<backend>::<case>`. Each trial gets a fresh storage from the factory (give each one its
//! own random root) and removes what it wrote afterwards, best effort. Trials that need a
//! capability the backend lacks are marked ignored, so the report shows them as skipped.
//!
//! Each trial runs on its own two-worker tokio runtime: libtest-mimic calls trials
//! synchronously, and this crate is only ever used by tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_storage::{Capability, DynStorage, Entry, ErrorKind, Result};
use libtest_mimic::{Failed, Trial};

/// The outcome of one case.
pub type Outcome = std::result::Result<(), Failed>;

type CaseFuture = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// One behaviour case: its name, the capability it needs, and its body.
struct Case {
    name: &'static str,
    needs: fn(Capability) -> bool,
    run: fn(DynStorage) -> CaseFuture,
}

macro_rules! cases {
    ($($name:ident $(if $needs:expr)?),* $(,)?) => {
        vec![$(Case {
            name: stringify!($name),
            needs: cases!(@needs $($needs)?),
            run: |storage| Box::pin($name(storage)),
        }),*]
    };
    (@needs) => { |_| true };
    (@needs $needs:expr) => { $needs };
}

/// Builds the behaviour trials for one backend. `make` is called once to read the
/// capability and then once per trial; each call should return a storage with a fresh,
/// empty root.
pub fn behaviour_trials<F>(backend: &str, make: F) -> Vec<Trial>
where
    F: Fn() -> DynStorage + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let capability = make().capability();
    let cases = cases![
        write_then_read,
        write_replaces,
        write_empty_object,
        write_large_object,
        read_missing_is_not_found,
        read_range_inside,
        read_range_past_end_is_corrupt,
        stat_reports_size_or_none,
        stat_of_a_directory_is_none,
        list_is_recursive_with_sizes,
        list_matches_whole_directories,
        list_missing_prefix_is_empty,
        list_root,
        delete_removes_and_is_idempotent,
        write_new_creates,
        invalid_paths_are_refused,
        concurrent_writes,
        write_new_refuses_existing if |c: Capability| c.write_if_absent,
        write_new_race_has_one_winner if |c: Capability| c.write_if_absent,
        readers_never_see_partial_writes if |c: Capability| c.atomic_write,
        retain_locks_and_only_grows if |c: Capability| c.object_lock,
        retain_without_object_lock_is_unsupported if |c: Capability| !c.object_lock,
    ];
    cases
        .into_iter()
        .map(|case| {
            let make = Arc::clone(&make);
            let ignored = !(case.needs)(capability);
            Trial::test(format!("{backend}::{}", case.name), move || {
                run_case(&*make, case.run)
            })
            .with_ignored_flag(ignored)
        })
        .collect()
}

fn run_case(
    make: &(dyn Fn() -> DynStorage + Send + Sync),
    run: fn(DynStorage) -> CaseFuture,
) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| format!("cannot build a tokio runtime: {err}"))?;
    runtime.block_on(async {
        let storage = make();
        let outcome = run(Arc::clone(&storage)).await;
        cleanup(&storage).await;
        outcome
    })
}

/// Deletes everything under the storage's root, best effort.
async fn cleanup(storage: &DynStorage) {
    if let Ok(entries) = storage.list("").await {
        for entry in entries {
            let _ = storage.delete(&entry.path).await;
        }
    }
}

/// Turns a storage error into a trial failure with the step that failed.
fn step<T>(what: &str, result: Result<T>) -> std::result::Result<T, Failed> {
    result.map_err(|err| Failed::from(format!("{what}: {err}")))
}

fn ensure(condition: bool, message: impl FnOnce() -> String) -> Outcome {
    if condition {
        Ok(())
    } else {
        Err(Failed::from(message()))
    }
}

fn expect_kind<T: std::fmt::Debug>(what: &str, result: Result<T>, kind: ErrorKind) -> Outcome {
    match result {
        Err(err) if err.kind() == kind => Ok(()),
        Err(err) => Err(format!("{what}: expected {kind:?}, got error {err}").into()),
        Ok(value) => Err(format!("{what}: expected {kind:?}, got Ok({value:?})").into()),
    }
}

/// Deterministic, non-repeating-looking test data.
pub fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect::<Vec<_>>()
        .into()
}

async fn sorted_list(
    storage: &DynStorage,
    prefix: &str,
) -> std::result::Result<Vec<Entry>, Failed> {
    let mut entries = step(&format!("list {prefix:?}"), storage.list(prefix).await)?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

async fn write_then_read(s: DynStorage) -> Outcome {
    let data = pattern(4096, 1);
    step("write", s.write("data/ab/abcdef", data.clone()).await)?;
    let back = step("read", s.read("data/ab/abcdef").await)?;
    ensure(back == data, || "read returned different bytes".into())
}

async fn write_replaces(s: DynStorage) -> Outcome {
    step("first write", s.write("config", pattern(10_000, 1)).await)?;
    step("second write", s.write("config", pattern(10, 2)).await)?;
    let back = step("read", s.read("config").await)?;
    ensure(back == pattern(10, 2), || {
        format!("expected the second object, got {} bytes", back.len())
    })
}

async fn write_empty_object(s: DynStorage) -> Outcome {
    step("write", s.write("locks/empty", Bytes::new()).await)?;
    ensure(
        step("read", s.read("locks/empty").await)?.is_empty(),
        || "not empty".into(),
    )?;
    let size = step("stat", s.stat("locks/empty").await)?;
    ensure(size == Some(0), || format!("stat: {size:?}"))
}

async fn write_large_object(s: DynStorage) -> Outcome {
    // Larger than the multipart chunk the remote suite sets (8 MiB), so it goes up in parts.
    let data = pattern(12 * 1024 * 1024 + 17, 3);
    step("write", s.write("data/la/large", data.clone()).await)?;
    let size = step("stat", s.stat("data/la/large").await)?;
    ensure(size == Some(data.len() as u64), || {
        format!("stat: {size:?}")
    })?;
    let tail = step(
        "read_range",
        s.read_range("data/la/large", 9 * 1024 * 1024, 1024).await,
    )?;
    ensure(
        tail == data.slice(9 * 1024 * 1024..9 * 1024 * 1024 + 1024),
        || "range across parts differs".into(),
    )?;
    let back = step("read", s.read("data/la/large").await)?;
    ensure(back == data, || "large object differs".into())
}

async fn read_missing_is_not_found(s: DynStorage) -> Outcome {
    expect_kind(
        "read",
        s.read("snapshots/missing").await,
        ErrorKind::NotFound,
    )?;
    expect_kind(
        "read_range",
        s.read_range("snapshots/missing", 0, 1).await,
        ErrorKind::NotFound,
    )
}

async fn read_range_inside(s: DynStorage) -> Outcome {
    let data = pattern(1000, 4);
    step("write", s.write("data/rr/x", data.clone()).await)?;
    for (offset, len) in [(0, 1000), (0, 1), (999, 1), (100, 200), (1000, 0)] {
        let got = step("read_range", s.read_range("data/rr/x", offset, len).await)?;
        let want = data.slice(offset as usize..(offset + len) as usize);
        ensure(got == want, || format!("range {offset}+{len} differs"))?;
    }
    Ok(())
}

async fn read_range_past_end_is_corrupt(s: DynStorage) -> Outcome {
    step("write", s.write("data/rr/short", pattern(100, 5)).await)?;
    for (offset, len) in [(50, 51), (100, 1), (1000, 10), (u64::MAX, 2)] {
        expect_kind(
            &format!("read_range {offset}+{len}"),
            s.read_range("data/rr/short", offset, len).await,
            ErrorKind::Corrupt,
        )?;
    }
    Ok(())
}

async fn stat_reports_size_or_none(s: DynStorage) -> Outcome {
    step("write", s.write("index/i1", pattern(123, 6)).await)?;
    let size = step("stat", s.stat("index/i1").await)?;
    ensure(size == Some(123), || format!("stat: {size:?}"))?;
    let missing = step("stat missing", s.stat("index/missing").await)?;
    ensure(missing.is_none(), || format!("stat missing: {missing:?}"))
}

async fn stat_of_a_directory_is_none(s: DynStorage) -> Outcome {
    step("write", s.write("index/i1", pattern(1, 6)).await)?;
    let dir = step("stat directory", s.stat("index").await)?;
    ensure(dir.is_none(), || {
        format!("a directory is not an object: {dir:?}")
    })
}

async fn list_is_recursive_with_sizes(s: DynStorage) -> Outcome {
    step("write", s.write("data/00/a", pattern(1, 0)).await)?;
    step("write", s.write("data/ff/b", pattern(22, 0)).await)?;
    step("write", s.write("data/ff/c", pattern(333, 0)).await)?;
    let entries = sorted_list(&s, "data").await?;
    let want = vec![
        Entry {
            path: "data/00/a".into(),
            size: 1,
        },
        Entry {
            path: "data/ff/b".into(),
            size: 22,
        },
        Entry {
            path: "data/ff/c".into(),
            size: 333,
        },
    ];
    ensure(entries == want, || format!("list data: {entries:?}"))?;
    let trailing = sorted_list(&s, "data/").await?;
    ensure(trailing == want, || format!("list data/: {trailing:?}"))?;
    let sub = sorted_list(&s, "data/ff").await?;
    ensure(sub.len() == 2, || format!("list data/ff: {sub:?}"))
}

async fn list_matches_whole_directories(s: DynStorage) -> Outcome {
    step("write", s.write("data/x", pattern(1, 0)).await)?;
    step("write", s.write("database", pattern(1, 0)).await)?;
    step("write", s.write("data0/y", pattern(1, 0)).await)?;
    let entries = sorted_list(&s, "data").await?;
    ensure(entries.len() == 1 && entries[0].path == "data/x", || {
        format!("list data: {entries:?}")
    })
}

async fn list_missing_prefix_is_empty(s: DynStorage) -> Outcome {
    let entries = sorted_list(&s, "snapshots").await?;
    ensure(entries.is_empty(), || format!("{entries:?}"))
}

async fn list_root(s: DynStorage) -> Outcome {
    step("write", s.write("config", pattern(5, 0)).await)?;
    step("write", s.write("keys/k1", pattern(6, 0)).await)?;
    let entries = sorted_list(&s, "").await?;
    let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
    ensure(paths == ["config", "keys/k1"], || {
        format!("list root: {paths:?}")
    })
}

async fn delete_removes_and_is_idempotent(s: DynStorage) -> Outcome {
    step("write", s.write("snapshots/s1", pattern(10, 0)).await)?;
    step("delete", s.delete("snapshots/s1").await)?;
    expect_kind(
        "read after delete",
        s.read("snapshots/s1").await,
        ErrorKind::NotFound,
    )?;
    let listed = sorted_list(&s, "snapshots").await?;
    ensure(listed.is_empty(), || {
        format!("listed after delete: {listed:?}")
    })?;
    step("delete again", s.delete("snapshots/s1").await)?;
    step("delete never written", s.delete("snapshots/never").await)
}

async fn write_new_creates(s: DynStorage) -> Outcome {
    step("write_new", s.write_new("keys/new", pattern(64, 7)).await)?;
    let back = step("read", s.read("keys/new").await)?;
    ensure(back == pattern(64, 7), || {
        "write_new stored different bytes".into()
    })
}

async fn write_new_refuses_existing(s: DynStorage) -> Outcome {
    step("write", s.write("locks/l1", pattern(10, 1)).await)?;
    expect_kind(
        "write_new over write",
        s.write_new("locks/l1", pattern(10, 2)).await,
        ErrorKind::AlreadyExists,
    )?;
    step("write_new", s.write_new("locks/l2", pattern(10, 3)).await)?;
    expect_kind(
        "write_new twice",
        s.write_new("locks/l2", pattern(10, 4)).await,
        ErrorKind::AlreadyExists,
    )?;
    let back = step("read", s.read("locks/l1").await)?;
    ensure(back == pattern(10, 1), || {
        "the existing object was overwritten".into()
    })
}

async fn write_new_race_has_one_winner(s: DynStorage) -> Outcome {
    let tasks: Vec<_> = (0..8_u8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move { (i, s.write_new("locks/race", pattern(256, i)).await) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, result) = task.await.map_err(|err| format!("task: {err}"))?;
        match result {
            Ok(()) => winners.push(i),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
            Err(err) => return Err(format!("writer {i}: {err}").into()),
        }
    }
    let [winner] = winners[..] else {
        return Err(format!("winners: {winners:?}").into());
    };
    let back = step("read", s.read("locks/race").await)?;
    ensure(back == pattern(256, winner), || {
        "the stored object is not the winner's".into()
    })
}

async fn invalid_paths_are_refused(s: DynStorage) -> Outcome {
    for path in ["../escape", "/absolute", "a//b", ""] {
        ensure(
            s.write(path, Bytes::from_static(b"x")).await.is_err(),
            || format!("write {path:?} was accepted"),
        )?;
        ensure(s.read(path).await.is_err(), || {
            format!("read {path:?} was accepted")
        })?;
    }
    ensure(s.list("../").await.is_err(), || {
        "list ../ was accepted".into()
    })
}

async fn concurrent_writes(s: DynStorage) -> Outcome {
    let tasks: Vec<_> = (0..16_u8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.write(
                    &format!("data/{:02x}/obj{i}", i % 4),
                    pattern(1000 + usize::from(i), i),
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        step(
            "concurrent write",
            task.await.map_err(|err| format!("task: {err}"))?,
        )?;
    }
    let entries = sorted_list(&s, "data").await?;
    ensure(entries.len() == 16, || {
        format!("{} objects listed", entries.len())
    })?;
    for i in 0..16_u8 {
        let back = step("read", s.read(&format!("data/{:02x}/obj{i}", i % 4)).await)?;
        ensure(back == pattern(1000 + usize::from(i), i), || {
            format!("object {i} differs")
        })?;
    }
    Ok(())
}

async fn readers_never_see_partial_writes(s: DynStorage) -> Outcome {
    const LEN: usize = 256 * 1024;
    let versions: Vec<Bytes> = (0..4).map(|v| Bytes::from(vec![b'a' + v; LEN])).collect();
    step(
        "first write",
        s.write("index/atomic", versions[0].clone()).await,
    )?;
    let writer = {
        let s = Arc::clone(&s);
        let versions = versions.clone();
        tokio::spawn(async move {
            for round in 0..12 {
                s.write("index/atomic", versions[round % versions.len()].clone())
                    .await?;
            }
            Ok::<_, cairn_storage::Error>(())
        })
    };
    for _ in 0..24 {
        let back = step("read during writes", s.read("index/atomic").await)?;
        ensure(versions.contains(&back), || {
            format!("read a torn object of {} bytes", back.len())
        })?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    step(
        "writer",
        writer.await.map_err(|err| format!("task: {err}"))?,
    )
}

/// Object lock: a lock is readable back, never shrinks, and a missing object is `NotFound`.
/// An S3 server without Object Lock (or a bucket without it) answers `Unsupported`, and then
/// nothing is locked.
async fn retain_locks_and_only_grows(s: DynStorage) -> Outcome {
    step("write", s.write("data/locked", pattern(100, 9)).await)?;
    let now = jiff::Timestamp::now();
    let long = now + jiff::SignedDuration::from_hours(2);
    let short = now + jiff::SignedDuration::from_hours(1);
    match s.retain("data/locked", long).await {
        Err(err) if err.kind() == ErrorKind::Unsupported => {
            let t = step("retained_until", s.retained_until("data/locked").await)?;
            return ensure(t.is_none(), || {
                format!("unsupported, yet locked until {t:?}")
            });
        }
        other => step("retain", other)?,
    }
    let t = step("retained_until", s.retained_until("data/locked").await)?;
    ensure(t.is_some_and(|t| t >= long), || {
        format!("locked until {t:?}, asked {long}")
    })?;
    step("retain shorter", s.retain("data/locked", short).await)?;
    let t = step("retained_until", s.retained_until("data/locked").await)?;
    ensure(t.is_some_and(|t| t >= long), || {
        format!("a shorter lock shrank it to {t:?}")
    })?;
    expect_kind(
        "retain missing",
        s.retain("data/missing", long).await,
        ErrorKind::NotFound,
    )?;
    expect_kind(
        "retained_until missing",
        s.retained_until("data/missing").await,
        ErrorKind::NotFound,
    )
}

async fn retain_without_object_lock_is_unsupported(s: DynStorage) -> Outcome {
    step("write", s.write("data/plain", pattern(10, 3)).await)?;
    let until = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    expect_kind(
        "retain",
        s.retain("data/plain", until).await,
        ErrorKind::Unsupported,
    )?;
    let t = step("retained_until", s.retained_until("data/plain").await)?;
    ensure(t.is_none(), || format!("locked until {t:?}"))?;
    expect_kind(
        "retained_until missing",
        s.retained_until("data/missing").await,
        ErrorKind::NotFound,
    )
}
