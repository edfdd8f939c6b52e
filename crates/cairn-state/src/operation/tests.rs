use std::sync::Arc;

use super::*;

fn db() -> (tempfile::TempDir, StateDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(&dir.path().join("sub/state.db")).unwrap();
    (dir, db)
}

#[test]
fn an_operation_goes_from_active_to_done() {
    let (_d, db) = db();
    let op = NewOperation::new(OperationKind::Backup, "/data", "s3://k:secret@bucket/p");
    let id = db.begin_operation(&op).unwrap();
    db.update_operation(id, OperationUpdate::new(10, Some(100), 1))
        .unwrap();
    let o = db.operation(id).unwrap().unwrap();
    assert_eq!(o.state, OpState::Active);
    assert_eq!((o.bytes_done, o.bytes_total, o.files), (10, Some(100), 1));
    assert_eq!(o.location, "s3://bucket/p", "credentials are never stored");
    assert_eq!(o.process, ProcessStamp::current());
    db.finish_operation(
        id,
        OpState::Done,
        OperationUpdate::new(100, Some(100), 5),
        None,
    )
    .unwrap();
    let o = db.operation(id).unwrap().unwrap();
    assert_eq!(o.state, OpState::Done);
    assert_eq!(o.bytes_done, 100);
    assert!(o.finished.is_some());
    // Progress after the end is ignored.
    db.update_operation(id, OperationUpdate::new(1, None, 0))
        .unwrap();
    assert_eq!(db.operation(id).unwrap().unwrap().bytes_done, 100);
}

#[test]
fn listing_puts_active_first_then_newest() {
    let (_d, db) = db();
    let mut ids = Vec::new();
    for i in 0..5 {
        let op = NewOperation::new(OperationKind::Restore, format!("s{i}"), "/r");
        ids.push(db.begin_operation(&op).unwrap());
    }
    for id in &ids[1..] {
        db.finish_operation(
            *id,
            OpState::Failed,
            OperationUpdate::default(),
            Some("boom"),
        )
        .unwrap();
    }
    let all = db.operations(Some(2)).unwrap();
    let got: Vec<_> = all.iter().map(|o| (o.id, o.state)).collect();
    assert_eq!(
        got,
        [
            (ids[0], OpState::Active),
            (ids[4], OpState::Failed),
            (ids[3], OpState::Failed)
        ]
    );
    assert_eq!(db.operations(None).unwrap().len(), 5);
}

#[test]
fn a_dead_process_is_reaped_as_interrupted() {
    let (_d, db) = db();
    let id = db
        .begin_operation(&NewOperation::new(OperationKind::Backup, "/x", "/r"))
        .unwrap();
    // Pretend another process, which has ended, recorded it: this pid with another start.
    let me = ProcessStamp::current();
    db.write("test", |tx| {
        tx.execute(
            "UPDATE operations SET proc_start = ?2 WHERE id = ?1",
            params![id, format!("{}9", me.start)],
        )
    })
    .unwrap();
    let o = db.operation(id).unwrap().unwrap();
    if cfg!(target_os = "linux") {
        assert_eq!(o.state, OpState::Failed);
        assert!(o.error.unwrap().starts_with("interrupted: process"));
        assert_eq!(o.finished, Some(o.updated));
    }
}

#[test]
fn schema_newer_than_this_build_is_refused() {
    let (d, db) = db();
    let path = db.path().to_path_buf();
    db.write("test", |tx| tx.execute_batch("PRAGMA user_version = 99"))
        .unwrap();
    drop(db);
    let err = StateDb::open(&path).unwrap_err();
    assert!(
        matches!(err, crate::Error::TooNew { found: 99, .. }),
        "{err}"
    );
    drop(d);
}

#[test]
fn threads_write_concurrently_through_separate_connections() {
    let (dir, db) = db();
    let path = db.path().to_path_buf();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                let db = StateDb::open(&path).unwrap();
                for i in 0..25 {
                    let id = db
                        .begin_operation(&NewOperation::new(
                            OperationKind::Backup,
                            format!("t{t}-{i}"),
                            "/r",
                        ))
                        .unwrap();
                    db.update_operation(id, OperationUpdate::new(i, None, 0))
                        .unwrap();
                    db.finish_operation(id, OpState::Done, OperationUpdate::new(i, None, 1), None)
                        .unwrap();
                }
            })
        })
        .collect();
    // And one connection shared by threads.
    let shared = Arc::new(db);
    let more: Vec<_> = (0..4)
        .map(|t| {
            let db = shared.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    db.begin_operation(&NewOperation::new(
                        OperationKind::Check,
                        format!("s{t}-{i}"),
                        "/r",
                    ))
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads.into_iter().chain(more) {
        t.join().unwrap();
    }
    let all = shared.operations(None).unwrap();
    assert_eq!(all.len(), 8 * 25 + 4 * 25);
    assert_eq!(all.iter().filter(|o| o.state == OpState::Done).count(), 200);
    drop(dir);
}
