use std::collections::HashMap;

use bytes::Bytes;
use rstest::rstest;

use super::*;

fn memory() -> RemoteStorage {
    let op = Operator::new(opendal::services::Memory::default()).unwrap();
    RemoteStorage::from_operator(op, "memory://test")
}

#[tokio::test]
async fn round_trip_through_opendal() {
    let s = memory();
    s.write("data/ab/x", Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    s.write("data/cd/y", Bytes::from_static(b"y"))
        .await
        .unwrap();
    s.write("database", Bytes::from_static(b"d")).await.unwrap();
    assert_eq!(s.read("data/ab/x").await.unwrap(), "0123456789");
    assert_eq!(s.read_range("data/ab/x", 3, 4).await.unwrap(), "3456");
    assert_eq!(s.read_range("data/ab/x", 10, 0).await.unwrap(), "");
    assert_eq!(s.stat("data/ab/x").await.unwrap(), Some(10));
    assert_eq!(s.stat("data").await.unwrap(), None);
    let mut paths: Vec<_> = s
        .list("data")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.path, e.size))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        vec![("data/ab/x".to_owned(), 10), ("data/cd/y".to_owned(), 1)]
    );
    assert_eq!(s.list("").await.unwrap().len(), 3);
    assert!(s.list("snapshots").await.unwrap().is_empty());
    s.delete("data/ab/x").await.unwrap();
    s.delete("data/ab/x").await.unwrap();
    assert_eq!(
        s.read("data/ab/x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn read_range_past_end_is_corrupt() {
    let s = memory();
    s.write("data/x", Bytes::from_static(b"0123"))
        .await
        .unwrap();
    for (offset, len) in [(2, 5), (4, 1), (9, 1), (9, 0), (u64::MAX, 2)] {
        let err = s.read_range("data/x", offset, len).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Corrupt,
            "offset {offset} len {len}: {err}"
        );
    }
}

#[rstest]
#[case::conditional_put(true)]
#[case::stat_then_write(false)]
#[tokio::test]
async fn write_new_refuses_existing(#[case] conditional: bool) {
    let mut s = memory();
    assert!(
        s.capability().write_if_absent,
        "OpenDAL's memory service has if_not_exists"
    );
    s.conditional_write = conditional;
    s.write_new("locks/a", Bytes::from_static(b"1"))
        .await
        .unwrap();
    let err = s
        .write_new("locks/a", Bytes::from_static(b"2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(s.read("locks/a").await.unwrap(), "1");
}

#[rstest]
#[case::not_found(opendal::ErrorKind::NotFound, false, ErrorKind::NotFound, false)]
#[case::exists(
    opendal::ErrorKind::AlreadyExists,
    false,
    ErrorKind::AlreadyExists,
    false
)]
#[case::condition(
    opendal::ErrorKind::ConditionNotMatch,
    false,
    ErrorKind::AlreadyExists,
    false
)]
#[case::denied(
    opendal::ErrorKind::PermissionDenied,
    false,
    ErrorKind::PermissionDenied,
    false
)]
#[case::config(
    opendal::ErrorKind::ConfigInvalid,
    false,
    ErrorKind::ConfigInvalid,
    false
)]
#[case::range(
    opendal::ErrorKind::RangeNotSatisfied,
    false,
    ErrorKind::Corrupt,
    false
)]
#[case::rate_limited(opendal::ErrorKind::RateLimited, false, ErrorKind::Unexpected, true)]
#[case::server_error(opendal::ErrorKind::Unexpected, true, ErrorKind::Unexpected, true)]
#[case::unexpected(opendal::ErrorKind::Unexpected, false, ErrorKind::Unexpected, false)]
fn opendal_errors_map(
    #[case] odal: opendal::ErrorKind,
    #[case] odal_temporary: bool,
    #[case] kind: ErrorKind,
    #[case] temporary: bool,
) {
    let mut source = opendal::Error::new(odal, "boom");
    if odal_temporary {
        source = source.set_temporary();
    }
    let err = map_error(source, "read", "s3://b/p", "config");
    assert_eq!(err.kind(), kind);
    assert_eq!(err.is_temporary(), temporary);
    assert!(err.to_string().contains("location: s3://b/p"), "{err}");
}

#[rstest]
#[case("", "")]
#[case("f", "Zg==")]
#[case("fo", "Zm8=")]
#[case("foo", "Zm9v")]
#[case("foob", "Zm9vYg==")]
#[case("fooba", "Zm9vYmE=")]
#[case("foobar", "Zm9vYmFy")]
fn base64_matches_rfc4648(#[case] input: &str, #[case] expected: &str) {
    assert_eq!(backend::base64(input.as_bytes()), expected);
}

#[test]
fn options_from_vars() {
    let vars: HashMap<&str, &str> = [
        ("CAIRN_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ("AWS_ENDPOINT_URL", "http://ignored"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIA"),
        ("AWS_SECRET_ACCESS_KEY", "very-secret"),
        ("CAIRN_ALLOW_HTTP", "true"),
        ("AZURE_STORAGE_ACCOUNT", "acct"),
        ("AZURE_STORAGE_KEY", "azure-secret"),
        ("GOOGLE_APPLICATION_CREDENTIALS", "/etc/gcs.json"),
        ("CAIRN_STORAGE_CONCURRENCY", "8"),
        ("AWS_SESSION_TOKEN", ""),
    ]
    .into_iter()
    .collect();
    let opts = RemoteOptions::from_vars(|name| vars.get(name).map(|v| (*v).to_owned())).unwrap();
    assert_eq!(opts.s3_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(opts.region.as_deref(), Some("eu-west-1"));
    assert_eq!(opts.secret_access_key.as_deref(), Some("very-secret"));
    assert_eq!(opts.session_token, None, "empty counts as unset");
    assert!(opts.allow_http);
    assert!(!opts.virtual_host_style);
    assert_eq!(opts.azure_account_name.as_deref(), Some("acct"));
    assert_eq!(opts.gcs_credential_path.as_deref(), Some("/etc/gcs.json"));
    assert_eq!(opts.concurrency, Some(8));

    let debug = format!("{opts:?}");
    assert!(
        !debug.contains("very-secret") && !debug.contains("azure-secret"),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[rstest]
#[case("CAIRN_ALLOW_HTTP", "maybe")]
#[case("CAIRN_STORAGE_CONCURRENCY", "zero")]
#[case("CAIRN_STORAGE_CHUNK_SIZE", "0")]
fn bad_option_values(#[case] name: &str, #[case] value: &str) {
    let err = RemoteOptions::from_vars(|n| (n == name).then(|| value.to_owned())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
}

#[rstest]
#[case("https://s3.example", false, Some("https://s3.example"))]
#[case("s3.example:9000/", false, Some("https://s3.example:9000"))]
#[case("http://127.0.0.1:9000", false, None)]
#[case("http://127.0.0.1:9000", true, Some("http://127.0.0.1:9000"))]
#[case("ftp://x", true, None)]
fn endpoints(#[case] raw: &str, #[case] allow_http: bool, #[case] expected: Option<&str>) {
    let opts = RemoteOptions {
        allow_http,
        ..RemoteOptions::default()
    };
    assert_eq!(opts.endpoint(raw).ok().as_deref(), expected);
}

#[test]
fn new_builds_every_service_without_network() {
    let opts = RemoteOptions {
        s3_endpoint: Some("https://s3.example".into()),
        azure_account_name: Some("acct".into()),
        gcs_credential_json: Some("{}".into()),
        chunk_size: Some(1),
        ..RemoteOptions::default()
    };
    let s3 = RemoteStorage::new(RemoteService::S3, "b", "/p/q/", &opts).unwrap();
    assert_eq!(s3.location(), "s3://b/p/q");
    assert_eq!(s3.chunk_size, MIN_CHUNK_SIZE, "chunks are at least 5 MiB");
    assert!(s3.capability().write_if_absent);
    let az = RemoteStorage::new(RemoteService::Azblob, "c", "", &opts).unwrap();
    assert_eq!(az.location(), "azblob://c");
    let gcs = RemoteStorage::new(RemoteService::Gcs, "b", "p", &opts).unwrap();
    assert_eq!(gcs.location(), "gs://b/p");
    assert!(RemoteStorage::new(RemoteService::S3, "b", "../x", &opts).is_err());
}
