//! Integration tests of the state database across processes: concurrent writers, and an
//! operation whose process is killed.
//!
//! The child processes are this test binary itself, re-run with `CAIRN_STATE_CHILD` set
//! and the name of the entry test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_state::{NewOperation, OpState, OperationKind, OperationUpdate, StateDb};

const CHILD: &str = "CAIRN_STATE_CHILD";
const DB: &str = "CAIRN_STATE_CHILD_DB";
const WRITES: usize = 40;

fn child(entry: &str, db: &Path, role: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([entry, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, role)
        .env(DB, db)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    c
}

/// Child entry: writes `WRITES` operations (begin, progress, finish), or records one
/// active operation and waits to be killed.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(CHILD) else {
        return; // Not a child: nothing to do.
    };
    let db = StateDb::open(Path::new(&std::env::var(DB).unwrap())).unwrap();
    match role.as_str() {
        "writer" => {
            for i in 0..WRITES {
                let op = NewOperation::new(
                    OperationKind::Backup,
                    format!("w{}", std::process::id()),
                    "/r",
                );
                let id = db.begin_operation(&op).unwrap();
                db.update_operation(id, OperationUpdate::new(i as u64, Some(100), 1))
                    .unwrap();
                db.finish_operation(
                    id,
                    OpState::Done,
                    OperationUpdate::new(100, Some(100), 2),
                    None,
                )
                .unwrap();
            }
        }
        "hang" => {
            let op = NewOperation::new(OperationKind::Restore, "doomed", "/r");
            db.begin_operation(&op).unwrap();
            loop {
                std::thread::park();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn processes_write_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let started = Instant::now();
    let children: Vec<_> = (0..6)
        .map(|_| child("child_entry", &path, "writer").spawn().unwrap())
        .collect();
    // And this process reads while they write.
    let db = StateDb::open(&path).unwrap();
    let mut reads = 0;
    let mut children = children;
    while !children.is_empty() {
        db.operations(Some(5)).unwrap();
        reads += 1;
        children.retain_mut(|c| match c.try_wait().unwrap() {
            Some(s) => {
                assert!(s.success(), "a writer failed: {s}");
                false
            }
            None => true,
        });
    }
    let all = db.operations(None).unwrap();
    assert_eq!(all.len(), 6 * WRITES);
    assert!(
        all.iter()
            .all(|o| o.state == OpState::Done && o.bytes_done == 100)
    );
    eprintln!(
        "6 processes × {WRITES} operations (3 transactions each) in {:?}, {reads} concurrent reads",
        started.elapsed()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn killed_process_shows_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut c = child("child_entry", &path, "hang").spawn().unwrap();
    let db = StateDb::open(&path).unwrap();
    // Wait (with a deadline) until the child has recorded its operation.
    let deadline = Instant::now() + Duration::from_secs(30);
    let op = loop {
        if let Some(o) = db.operations(None).unwrap().into_iter().next() {
            break o;
        }
        assert!(Instant::now() < deadline, "the child recorded nothing");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(op.state, OpState::Active);
    assert_eq!(op.process.pid, c.id());
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    let after = db.operation(op.id).unwrap().unwrap();
    assert_eq!(after.state, OpState::Failed);
    let err = after.error.unwrap();
    assert!(err.starts_with("interrupted: process"), "{err}");
}
