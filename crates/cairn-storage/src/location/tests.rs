use std::path::PathBuf;

use rstest::rstest;

use super::*;

fn remote(service: RemoteService, bucket: &str, prefix: &str) -> Location {
    Location::Remote {
        service,
        bucket: bucket.into(),
        prefix: prefix.into(),
    }
}

#[rstest]
#[case(
    "/srv/backup",
    Location::Local(PathBuf::from("/srv/backup")),
    "/srv/backup"
)]
#[case("./backup", Location::Local(PathBuf::from("./backup")), "./backup")]
#[case("backup", Location::Local(PathBuf::from("backup")), "backup")]
#[case(
    "  /with/space ",
    Location::Local(PathBuf::from("/with/space")),
    "/with/space"
)]
#[case(
    "weird:name",
    Location::Local(PathBuf::from("weird:name")),
    "weird:name"
)]
#[case(
    "file:///srv/backup",
    Location::Local(PathBuf::from("/srv/backup")),
    "/srv/backup"
)]
#[case(
    "file://localhost/srv/b",
    Location::Local(PathBuf::from("/srv/b")),
    "/srv/b"
)]
#[case("s3://bucket", remote(RemoteService::S3, "bucket", ""), "s3://bucket")]
#[case("s3://bucket/", remote(RemoteService::S3, "bucket", ""), "s3://bucket")]
#[case(
    "s3://bucket/a/b/",
    remote(RemoteService::S3, "bucket", "a/b"),
    "s3://bucket/a/b"
)]
#[case(
    "S3://my.bucket-1//a//b",
    remote(RemoteService::S3, "my.bucket-1", "a/b"),
    "s3://my.bucket-1/a/b"
)]
#[case(
    "azblob://container/repo",
    remote(RemoteService::Azblob, "container", "repo"),
    "azblob://container/repo"
)]
#[case(
    "gs://bucket_x/p",
    remote(RemoteService::Gcs, "bucket_x", "p"),
    "gs://bucket_x/p"
)]
#[case(
    "gcs://bucket/p",
    remote(RemoteService::Gcs, "bucket", "p"),
    "gs://bucket/p"
)]
fn parses(#[case] input: &str, #[case] expected: Location, #[case] display: &str) {
    let location = Location::parse(input).unwrap();
    assert_eq!(location, expected);
    assert_eq!(location.to_string(), display);
    assert_eq!(
        display.parse::<Location>().unwrap().to_string(),
        display,
        "display round-trips"
    );
}

#[rstest]
#[case("")]
#[case("   ")]
#[case("ftp://host/x")]
#[case("s3://")]
#[case("s3:///prefix")]
#[case("s3://bu cket/x")]
#[case("s3://bucket/a/../b")]
#[case("s3://bucket/./b")]
#[case("s3://bucket/x?region=eu")]
#[case("gs://bucket/x#frag")]
#[case("file://otherhost/x")]
#[case("file://relative")]
fn rejects(#[case] input: &str) {
    let err = Location::parse(input).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid, "{input:?}");
}

#[test]
fn credentials_in_url_are_refused_without_echoing_them() {
    let err = Location::parse("s3://AKIA:supersecret@bucket/x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(!err.to_string().contains("supersecret"), "{err}");
}

#[test]
fn open_local_and_remote() {
    let dir = tempfile::tempdir().unwrap();
    let local = Location::Local(dir.path().join("repo"))
        .open(&RemoteOptions::default())
        .unwrap();
    assert_eq!(
        local.location(),
        dir.path().join("repo").display().to_string()
    );
    assert!(local.capability().write_if_absent);

    let opts = RemoteOptions {
        s3_endpoint: Some("http://127.0.0.1:1".into()),
        allow_http: true,
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        ..RemoteOptions::default()
    };
    let s3 = Location::parse("s3://bucket/repo")
        .unwrap()
        .open(&opts)
        .unwrap();
    assert_eq!(s3.location(), "s3://bucket/repo");
    assert!(s3.capability().write_if_absent);
}

#[test]
fn open_refuses_plain_http_unless_allowed() {
    let opts = RemoteOptions {
        s3_endpoint: Some("http://127.0.0.1:1".into()),
        ..RemoteOptions::default()
    };
    let err = Location::parse("s3://bucket")
        .unwrap()
        .open(&opts)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
}

#[test]
fn open_azblob_needs_an_account_or_endpoint() {
    let err = Location::parse("azblob://c/p")
        .unwrap()
        .open(&RemoteOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    let opts = RemoteOptions {
        azure_account_name: Some("acct".into()),
        azure_account_key: Some("a2V5".into()),
        ..RemoteOptions::default()
    };
    let storage = Location::parse("azblob://c/p")
        .unwrap()
        .open(&opts)
        .unwrap();
    assert_eq!(storage.location(), "azblob://c/p");
}
