use bytes::Bytes;
use cairn_storage::{ErrorKind, ErrorStatus, MemoryStorage, RetryOptions, RetryStorage, Storage};

use super::*;

fn data(n: u8) -> Bytes {
    Bytes::from(vec![n; 10])
}

#[tokio::test]
async fn fails_the_nth_write_only() {
    let s = FaultStorage::new(MemoryStorage::new());
    s.fail_write(2, ErrorKind::StorageFull);
    s.write("a", data(1)).await.unwrap();
    let err = s.write_new("b", data(2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull);
    assert_eq!(err.status(), ErrorStatus::Permanent);
    s.write("c", data(3)).await.unwrap();
    assert_eq!(s.inner().paths(), vec!["a", "c"]);
    assert_eq!(s.writes(), 3);
    assert_eq!(s.calls(Op::Write), 2);
    assert_eq!(s.calls(Op::WriteNew), 1);
}

#[tokio::test]
async fn fails_every_write_from_n() {
    let s = FaultStorage::new(MemoryStorage::new());
    s.fail_writes_from(2, ErrorKind::Unexpected);
    s.write("a", data(1)).await.unwrap();
    for path in ["b", "c", "d"] {
        assert!(s.write(path, data(1)).await.is_err());
    }
    assert_eq!(s.inner().paths(), vec!["a"]);
    s.disarm();
    s.write("e", data(1)).await.unwrap();
}

#[tokio::test]
async fn drops_a_write_silently() {
    let s = FaultStorage::new(MemoryStorage::new());
    s.drop_write(1);
    s.write("a", data(1)).await.unwrap();
    assert!(s.inner().paths().is_empty());
    assert_eq!(s.read("a").await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn truncates_a_write() {
    let s = FaultStorage::new(MemoryStorage::new());
    s.truncate_write(1, 4, None)
        .truncate_write(2, 3, Some(ErrorKind::Unexpected));
    s.write("a", data(1)).await.unwrap();
    assert!(s.write_new("b", data(2)).await.is_err());
    assert_eq!(s.inner().read("a").await.unwrap().len(), 4);
    assert_eq!(s.inner().read("b").await.unwrap(), Bytes::from(vec![2; 3]));
}

#[tokio::test]
async fn fails_reads_under_a_prefix() {
    let s = FaultStorage::new(MemoryStorage::new());
    s.write("data/x", data(1)).await.unwrap();
    s.write("index/y", data(1)).await.unwrap();
    s.fail_reads("data/", ErrorKind::PermissionDenied);
    assert_eq!(
        s.read("data/x").await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        s.read_range("data/x", 0, 1).await.unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(s.read("index/y").await.unwrap(), data(1));
    assert_eq!(s.calls(Op::Read), 2);
    assert_eq!(s.calls(Op::ReadRange), 1);
}

#[tokio::test]
async fn temporary_errors_then_success() {
    let s = FaultStorage::new(MemoryStorage::new());
    s.temporary_errors(2);
    assert!(s.stat("a").await.unwrap_err().is_temporary());
    assert!(s.list("").await.unwrap_err().is_temporary());
    assert_eq!(s.stat("a").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn retry_layer_rides_over_temporary_errors() {
    let fault = FaultStorage::new(MemoryStorage::new());
    fault.temporary_errors(3);
    let s = RetryStorage::new(fault.clone(), RetryOptions::default());
    s.write("config", data(9)).await.unwrap();
    assert_eq!(fault.calls(Op::Write), 4);
    assert_eq!(fault.inner().read("config").await.unwrap(), data(9));

    fault.temporary_every(1);
    let err = s.read("config").await.unwrap_err();
    assert_eq!(err.status(), ErrorStatus::Persistent);
    assert_eq!(fault.calls(Op::Read), 5);
}
