use std::io;

use bytes::Bytes;
use rstest::rstest;

use super::*;

fn storage() -> (tempfile::TempDir, LocalStorage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = LocalStorage::new(dir.path().join("repo"));
    (dir, storage)
}

/// Every file under `dir`, relative, including temporary ones.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                out.push(
                    entry
                        .path()
                        .strip_prefix(dir)
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn write_creates_directories_and_reads_back() {
    let (_dir, s) = storage();
    s.write("data/ab/abcdef", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(s.read("data/ab/abcdef").await.unwrap(), "hello");
    assert_eq!(s.stat("data/ab/abcdef").await.unwrap(), Some(5));
    assert_eq!(files(s.root()), vec!["data/ab/abcdef"]);
}

#[tokio::test]
async fn write_replaces_whole_object_and_leaves_no_temporary_file() {
    let (_dir, s) = storage();
    s.write("config", Bytes::from(vec![1; 10_000]))
        .await
        .unwrap();
    s.write("config", Bytes::from_static(b"short"))
        .await
        .unwrap();
    assert_eq!(s.read("config").await.unwrap(), "short");
    assert_eq!(files(s.root()), vec!["config"]);
}

#[tokio::test]
async fn write_new_refuses_existing_object_and_keeps_it() {
    let (_dir, s) = storage();
    s.write_new("locks/a", Bytes::from_static(b"first"))
        .await
        .unwrap();
    let err = s
        .write_new("locks/a", Bytes::from_static(b"second"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(!err.is_temporary());
    assert_eq!(s.read("locks/a").await.unwrap(), "first");
    assert_eq!(
        files(s.root()),
        vec!["locks/a"],
        "the temporary file is cleaned up"
    );
}

#[tokio::test]
async fn write_new_race_has_exactly_one_winner() {
    let (_dir, s) = storage();
    let tasks: Vec<_> = (0..16_u8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.write_new("locks/race", Bytes::from(vec![i; 100])).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => winners += 1,
            Err(err) => assert_eq!(err.kind(), ErrorKind::AlreadyExists),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(files(s.root()), vec!["locks/race"]);
}

#[tokio::test]
async fn link_fallback_refuses_existing_object() {
    let (dir, _s) = storage();
    let tmp = dir.path().join(".tmp-x");
    let target = dir.path().join("target");
    std::fs::write(&target, b"old").unwrap();
    std::fs::write(&tmp, b"new").unwrap();
    // The same primitive the fallback uses: link(2) must fail with EEXIST.
    let err = fs_err::hard_link(&tmp, &target).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(
        rename_no_replace(&tmp, &target).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
}

#[tokio::test]
async fn read_range_reads_inside_and_reports_short_objects_as_corrupt() {
    let (_dir, s) = storage();
    s.write("data/x", Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    assert_eq!(s.read_range("data/x", 2, 3).await.unwrap(), "234");
    assert_eq!(s.read_range("data/x", 0, 10).await.unwrap(), "0123456789");
    assert_eq!(s.read_range("data/x", 10, 0).await.unwrap(), "");
    for (offset, len) in [(8, 3), (11, 0), (100, 1), (u64::MAX, 2)] {
        let err = s.read_range("data/x", offset, len).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Corrupt,
            "offset {offset} len {len}: {err}"
        );
    }
}

#[tokio::test]
async fn missing_objects() {
    let (_dir, s) = storage();
    assert_eq!(
        s.read("nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.read_range("nope", 0, 1).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(s.stat("nope").await.unwrap(), None);
    assert_eq!(s.stat("nope/deeper").await.unwrap(), None);
    s.delete("nope").await.unwrap();
    assert!(s.list("snapshots").await.unwrap().is_empty());
    assert!(
        s.list("").await.unwrap().is_empty(),
        "a missing root lists as empty"
    );
}

#[tokio::test]
async fn directories_are_not_objects() {
    let (_dir, s) = storage();
    s.write("data/ab/x", Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_eq!(s.stat("data").await.unwrap(), None);
    assert_eq!(
        s.read("data").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // A file where a directory should be.
    let err = s
        .write("data/ab/x/y", Bytes::from_static(b"y"))
        .await
        .unwrap_err();
    assert!(!err.is_temporary(), "{err}");
}

#[tokio::test]
async fn list_walks_recursively_and_skips_temporary_files() {
    let (_dir, s) = storage();
    s.write("data/ab/ab1", Bytes::from_static(b"1"))
        .await
        .unwrap();
    s.write("data/cd/cd22", Bytes::from_static(b"22"))
        .await
        .unwrap();
    s.write("database", Bytes::from_static(b"not under data/"))
        .await
        .unwrap();
    s.write("index/i", Bytes::from_static(b"i")).await.unwrap();
    std::fs::write(s.root().join("data/ab/.tmp-deadbeef"), b"in flight").unwrap();

    let mut data = s.list("data").await.unwrap();
    data.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(
        data,
        vec![
            Entry {
                path: "data/ab/ab1".into(),
                size: 1
            },
            Entry {
                path: "data/cd/cd22".into(),
                size: 2
            }
        ]
    );
    assert_eq!(s.list("data/").await.unwrap().len(), 2);
    assert_eq!(s.list("").await.unwrap().len(), 4);
}

#[tokio::test]
async fn delete_removes_the_object() {
    let (_dir, s) = storage();
    s.write("snapshots/a", Bytes::from_static(b"a"))
        .await
        .unwrap();
    s.delete("snapshots/a").await.unwrap();
    assert_eq!(s.stat("snapshots/a").await.unwrap(), None);
    s.delete("snapshots/a").await.unwrap();
}

#[tokio::test]
async fn directory_removed_behind_our_back_is_recreated() {
    let (_dir, s) = storage();
    s.write("keys/a", Bytes::from_static(b"a")).await.unwrap();
    std::fs::remove_dir_all(s.root().join("keys")).unwrap();
    s.write("keys/b", Bytes::from_static(b"b")).await.unwrap();
    assert_eq!(s.read("keys/b").await.unwrap(), "b");
}

#[tokio::test]
async fn invalid_paths_are_refused() {
    let (_dir, s) = storage();
    for path in ["../escape", "/etc/passwd", "a//b", "data/.tmp-x", ""] {
        assert!(s.write(path, Bytes::new()).await.is_err(), "{path:?}");
        assert!(s.read(path).await.is_err(), "{path:?}");
    }
    assert!(s.list("../").await.is_err());
}

#[tokio::test]
async fn errors_carry_context() {
    let (_dir, s) = storage();
    let err = s.read("config").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("operation: read"), "{text}");
    assert!(text.contains("path: config"), "{text}");
    assert!(text.contains(s.location()), "{text}");
}

#[rstest]
#[case::not_found(io::ErrorKind::NotFound, ErrorKind::NotFound, false)]
#[case::not_a_dir(io::ErrorKind::NotADirectory, ErrorKind::NotFound, false)]
#[case::permission(io::ErrorKind::PermissionDenied, ErrorKind::PermissionDenied, false)]
#[case::read_only(io::ErrorKind::ReadOnlyFilesystem, ErrorKind::PermissionDenied, false)]
#[case::exists(io::ErrorKind::AlreadyExists, ErrorKind::AlreadyExists, false)]
#[case::full(io::ErrorKind::StorageFull, ErrorKind::StorageFull, false)]
#[case::quota(io::ErrorKind::QuotaExceeded, ErrorKind::StorageFull, false)]
#[case::eof(io::ErrorKind::UnexpectedEof, ErrorKind::Corrupt, false)]
#[case::interrupted(io::ErrorKind::Interrupted, ErrorKind::Unexpected, true)]
#[case::would_block(io::ErrorKind::WouldBlock, ErrorKind::Unexpected, true)]
#[case::timed_out(io::ErrorKind::TimedOut, ErrorKind::Unexpected, true)]
#[case::stale_nfs(io::ErrorKind::StaleNetworkFileHandle, ErrorKind::Unexpected, true)]
#[case::other(io::ErrorKind::Other, ErrorKind::Unexpected, false)]
fn io_errors_map(#[case] io_kind: io::ErrorKind, #[case] kind: ErrorKind, #[case] temporary: bool) {
    let err = map_io_error(io::Error::from(io_kind), "write", "/repo", "data/x");
    assert_eq!(err.kind(), kind);
    assert_eq!(err.is_temporary(), temporary);
}

#[rstest]
#[case::enospc(28, ErrorKind::StorageFull, false)]
#[case::edquot(122, ErrorKind::StorageFull, false)]
#[case::eexist(17, ErrorKind::AlreadyExists, false)]
#[case::eintr(4, ErrorKind::Unexpected, true)]
#[case::eagain(11, ErrorKind::Unexpected, true)]
#[case::eacces(13, ErrorKind::PermissionDenied, false)]
fn os_errors_map(#[case] errno: i32, #[case] kind: ErrorKind, #[case] temporary: bool) {
    let err = map_io_error(
        io::Error::from_raw_os_error(errno),
        "write",
        "/repo",
        "data/x",
    );
    assert_eq!(err.kind(), kind);
    assert_eq!(err.is_temporary(), temporary);
}
