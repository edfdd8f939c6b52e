use bytes::Bytes;

use super::*;

#[tokio::test]
async fn round_trip_and_conditional_write() {
    let s = MemoryStorage::new();
    s.write("config", Bytes::from_static(b"c")).await.unwrap();
    assert_eq!(s.read("config").await.unwrap(), "c");
    s.write_new("keys/k", Bytes::from_static(b"k"))
        .await
        .unwrap();
    let err = s
        .write_new("keys/k", Bytes::from_static(b"other"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(s.read("keys/k").await.unwrap(), "k");
    assert_eq!(s.paths(), vec!["config", "keys/k"]);
}

#[tokio::test]
async fn read_range_past_end_is_corrupt() {
    let s = MemoryStorage::new();
    s.write("data/x", Bytes::from_static(b"0123"))
        .await
        .unwrap();
    assert_eq!(s.read_range("data/x", 1, 2).await.unwrap(), "12");
    assert_eq!(s.read_range("data/x", 4, 0).await.unwrap(), "");
    assert_eq!(
        s.read_range("data/x", 3, 2).await.unwrap_err().kind(),
        ErrorKind::Corrupt
    );
    assert_eq!(
        s.read_range("data/x", u64::MAX, 2)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Corrupt
    );
    assert_eq!(
        s.read_range("data/y", 0, 1).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn list_matches_whole_directories_only() {
    let s = MemoryStorage::new();
    for path in ["data/ab/1", "data/cd/2", "database", "data0/x", "index/i"] {
        s.write(path, Bytes::from_static(b"xy")).await.unwrap();
    }
    let mut data: Vec<_> = s
        .list("data")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    data.sort();
    assert_eq!(data, vec!["data/ab/1", "data/cd/2"]);
    assert_eq!(
        s.list("/data/ab/").await.unwrap(),
        vec![Entry {
            path: "data/ab/1".into(),
            size: 2
        }]
    );
    assert_eq!(s.list("").await.unwrap().len(), 5);
    assert!(s.list("snapshots").await.unwrap().is_empty());
}

#[tokio::test]
async fn damage_helpers() {
    let s = MemoryStorage::new();
    s.write("data/x", Bytes::from_static(&[0b1010, 7, 7]))
        .await
        .unwrap();
    s.corrupt("data/x", 0).unwrap();
    assert_eq!(
        s.read("data/x").await.unwrap(),
        Bytes::from_static(&[0b1011, 7, 7])
    );
    assert!(s.corrupt("data/x", 3).is_err());
    assert_eq!(
        s.corrupt("nope", 0).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    s.truncate("data/x", 1).unwrap();
    assert_eq!(s.stat("data/x").await.unwrap(), Some(1));
    assert_eq!(s.total_size(), 1);
    assert!(s.remove("data/x"));
    assert!(!s.remove("data/x"));
    assert_eq!(
        s.read("data/x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn clones_share_objects_and_delete_is_idempotent() {
    let s = MemoryStorage::new();
    let t = s.clone();
    s.write("a", Bytes::from_static(b"a")).await.unwrap();
    assert_eq!(t.stat("a").await.unwrap(), Some(1));
    t.delete("a").await.unwrap();
    t.delete("a").await.unwrap();
    assert_eq!(s.stat("a").await.unwrap(), None);
}
