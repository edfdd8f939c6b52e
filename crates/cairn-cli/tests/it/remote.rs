//! End to end on real object stores (s3s-fs, moto, Azurite, fake-gcs-server; started by
//! `scripts/ci.d/20-storage.sh`): init, backup, incremental, restore; stored credentials;
//! wrong credentials. Skipped with a notice when a server is absent, failing in CI.

use std::process::Command;

use cairn_testkit::TestServer;
use cairn_testkit::servers::{self, BACKENDS};

use crate::common::{TestContext, format_output, manifest, run, run_ok, small_tree, write};

const SECRET_PASS: &str = "Lynx-Marmot-4471-repo-passphrase";

/// `cairn ARGS --repo URL` with the server's storage variables and a private state dir.
fn remote(ctx: &TestContext, server: &TestServer, url: &str, args: &[&str]) -> Command {
    let vars: Vec<(String, String)> = server
        .vars()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    via(ctx, &vars, url, args)
}

/// `cairn ARGS --repo URL` with these storage variables and a private state dir.
fn via(ctx: &TestContext, vars: &[(String, String)], url: &str, args: &[&str]) -> Command {
    let mut cmd = ctx.command();
    cmd.envs(vars.iter().map(|(k, v)| (k, v)))
        .env("CAIRN_STATE_DIR", ctx.root.join("state"))
        .args(args)
        .arg("--repo")
        .arg(url);
    cmd
}

fn server_or_skip(backend: &str) -> Option<TestServer> {
    servers::server(backend).unwrap_or_else(|e| panic!("{e}"))
}

fn round_trip(backend: &str) {
    let Some(server) = server_or_skip(backend) else {
        return;
    };
    let ctx = TestContext::new();
    let url = server.fresh_url("e2e");
    let src = small_tree(&ctx.root);
    run_ok(&mut remote(
        &ctx,
        &server,
        &url,
        &["init", "--kdf-memory", "64", "--kdf-iterations", "1"],
    ));
    run_ok(&mut remote(
        &ctx,
        &server,
        &url,
        &["backup", "--json", src.to_str().unwrap()],
    ));
    let first = manifest(&src);
    // Incremental: one changed file, one new.
    write(&src.join("a.txt"), b"changed contents\n");
    write(&src.join("new.bin"), vec![7_u8; 300_000]);
    run_ok(&mut remote(
        &ctx,
        &server,
        &url,
        &["backup", src.to_str().unwrap()],
    ));
    let second = manifest(&src);
    let out = run_ok(&mut remote(&ctx, &server, &url, &["snapshots", "--json"]));
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<String> = snaps["snapshots"]
        .as_array()
        .expect("a list of snapshots")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{snaps}");
    for (id, want) in [(&ids[0], &first), (&ids[1], &second)] {
        let target = ctx.root.join(format!("restore-{id}"));
        run_ok(&mut remote(
            &ctx,
            &server,
            &url,
            &["restore", id, "--target", target.to_str().unwrap()],
        ));
        let nested = target.join(src.file_name().unwrap());
        let got = manifest(if nested.is_dir() { &nested } else { &target });
        assert_eq!(
            &got, want,
            "{backend}: snapshot {id} restores what was backed up"
        );
    }
    run_ok(&mut remote(&ctx, &server, &url, &["check", "--read-data"]));
    copy_to_another_store(&ctx, backend, &server, &url, &second);
}

/// 3-2-1: copies the repository's snapshots to another kind of store, with another
/// passphrase; the newest restores from there alone and the copy checks clean.
fn copy_to_another_store(
    ctx: &TestContext,
    backend: &str,
    server: &TestServer,
    url: &str,
    newest: &[(String, String)],
) {
    // Pairs of stores whose variables do not clash (the emulated GCS is reached
    // anonymously, and `CAIRN_STORAGE_ANONYMOUS` would apply to the other store too): GCS
    // copies to a local path.
    let to = match backend {
        "s3" | "moto" => "azblob",
        "azblob" => "s3",
        _ => {
            copy_to_a_path(ctx, server, url, newest);
            return;
        }
    };
    let Some(other) = server_or_skip(to) else {
        return;
    };
    let target = other.fresh_url("copy");
    let pass = "target-passphrase-Quokka-88";
    run_ok(
        remote(
            ctx,
            &other,
            &target,
            &["init", "--kdf-memory", "64", "--kdf-iterations", "1"],
        )
        .env("CAIRN_PASSWORD", pass),
    );
    let mut copy = remote(ctx, server, url, &["copy", "--to", &target]);
    for (k, v) in other.vars() {
        copy.env(k, v);
    }
    copy.env("CAIRN_TO_PASSWORD", pass);
    run_ok(&mut copy);
    let dir = ctx.root.join(format!("from-{to}"));
    run_ok(
        remote(
            ctx,
            &other,
            &target,
            &["restore", "latest", "--target", dir.to_str().unwrap()],
        )
        .env("CAIRN_PASSWORD", pass),
    );
    let nested = dir.join("tree");
    let got = manifest(if nested.is_dir() { &nested } else { &dir });
    assert_eq!(got, newest, "{backend} -> {to}: the copy restores");
    run_ok(remote(ctx, &other, &target, &["check", "--read-data"]).env("CAIRN_PASSWORD", pass));
}

#[test]
fn round_trip_s3s_fs() {
    round_trip("s3");
}

#[test]
fn round_trip_moto() {
    round_trip("moto");
}

#[test]
fn round_trip_azurite() {
    round_trip("azblob");
}

#[test]
fn round_trip_fake_gcs() {
    round_trip("gcs");
}

#[test]
fn backends_are_the_four_servers() {
    assert_eq!(BACKENDS, ["s3", "moto", "azblob", "gcs"]);
}

/// Stored credentials reach the store without any storage variable, `--repo NAME` uses their
/// location and passphrase, and no secret shows in any output at trace level or in the
/// credentials file.
#[test]
fn stored_credentials_on_s3s_fs() {
    let Some(server) = server_or_skip("s3") else {
        return;
    };
    let ctx = TestContext::new();
    let secret_key = server.var("AWS_SECRET_ACCESS_KEY").unwrap();
    let url = server.fresh_url("creds");
    let state = ctx.root.join("state");
    let bare = || {
        let mut cmd = ctx.command();
        cmd.env_remove("CAIRN_PASSWORD")
            .env("CAIRN_STATE_DIR", &state)
            .env("CAIRN_LOG", "trace")
            .arg("-vvv");
        cmd
    };
    let checked = |mut cmd: Command| {
        let out = run(&mut cmd);
        let text = format_output(&out);
        for needle in [secret_key.as_str(), SECRET_PASS] {
            assert!(!text.contains(needle), "{cmd:?} printed a secret:\n{text}");
            assert!(!text.contains(&hex::encode(needle)), "{cmd:?}:\n{text}");
        }
        assert!(out.status.success(), "{cmd:?} failed:\n{text}");
        out
    };
    let key_file = ctx.root.join("secret-key");
    write(&key_file, format!("{secret_key}\n"));
    let mut create = bare();
    create.args([
        "credentials",
        "create",
        "lab",
        "--provider",
        "s3",
        "--location",
        &url,
        "--endpoint",
        &server.var("CAIRN_S3_ENDPOINT").unwrap(),
        "--region",
        "us-east-1",
        "--disable-tls",
        "--access-key",
        &server.var("AWS_ACCESS_KEY_ID").unwrap(),
        "--secret-key-file",
        key_file.to_str().unwrap(),
        "--encryption-passphrase",
        SECRET_PASS,
    ]);
    checked(create);
    let stored = std::fs::read_to_string(state.join("credentials.json")).unwrap();
    assert!(!stored.contains(&secret_key) && !stored.contains(SECRET_PASS));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("credentials.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let mut list = bare();
    list.args(["credentials", "list", "--json"]);
    let out = checked(list);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["name"], "lab");
    assert_eq!(listed[0]["encryption"], true);
    assert_eq!(listed[0]["default"], true);
    let mut list = bare();
    list.args(["credentials", "list"]);
    checked(list);

    let src = small_tree(&ctx.root);
    let mut init = bare();
    init.args([
        "init",
        "--kdf-memory",
        "64",
        "--kdf-iterations",
        "1",
        "--repo",
        "lab",
    ]);
    checked(init);
    let mut backup = bare();
    backup.args(["backup", src.to_str().unwrap(), "--repo", "lab"]);
    checked(backup);
    // By URL: the only s3 credentials are the default.
    let mut snaps = bare();
    snaps.args(["snapshots", "--json", "--repo", &url]);
    let out = checked(snaps);
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snaps["snapshots"].as_array().unwrap().len(), 1);

    let mut delete = bare();
    delete.args(["credentials", "delete", "lab"]);
    checked(delete);
    let mut list = bare();
    list.args(["credentials", "list", "--json"]);
    let out = checked(list);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

/// A wrong secret key: exit 2, an error naming the location, and nothing written (a later
/// init with the right key succeeds, which it would not over an existing repository).
#[test]
fn wrong_credentials_on_s3s_fs() {
    let Some(server) = server_or_skip("s3") else {
        return;
    };
    let ctx = TestContext::new();
    let url = server.fresh_url("wrong");
    let init = ["init", "--kdf-memory", "64", "--kdf-iterations", "1"];
    let mut cmd = remote(&ctx, &server, &url, &init);
    cmd.env("AWS_SECRET_ACCESS_KEY", "not-the-right-secret");
    let out = run(&mut cmd);
    let text = format_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let location = url.trim_end_matches('/');
    assert!(
        text.contains(location),
        "the error names the location:\n{text}"
    );
    assert!(
        text.to_lowercase().contains("denied") || text.contains("PermissionDenied"),
        "{text}"
    );
    run_ok(&mut remote(&ctx, &server, &url, &init));
}

fn copy_to_a_path(ctx: &TestContext, server: &TestServer, url: &str, newest: &[(String, String)]) {
    let target = ctx.root.join("copy-target");
    let pass = "target-passphrase-Quokka-88";
    crate::common::init_other(ctx, &target, pass);
    run_ok(
        remote(
            ctx,
            server,
            url,
            &["copy", "--to", target.to_str().unwrap()],
        )
        .env("CAIRN_TO_PASSWORD", pass),
    );
    let dir = ctx.root.join("from-path");
    run_ok(
        ctx.command()
            .args([
                "restore",
                "latest",
                "--target",
                dir.to_str().unwrap(),
                "--repo",
            ])
            .arg(&target)
            .env("CAIRN_PASSWORD", pass),
    );
    let nested = dir.join("tree");
    let got = manifest(if nested.is_dir() { &nested } else { &dir });
    assert_eq!(got, newest, "the copy restores");
}

/// The s3s-fs server behind a [`FaultProxy`]: the server's variables with the endpoint moved
/// to the proxy.
fn behind_proxy(server: &TestServer) -> (cairn_testkit::FaultProxy, Vec<(String, String)>) {
    let endpoint = server.var("CAIRN_S3_ENDPOINT").expect("an endpoint");
    let upstream: std::net::SocketAddr = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("host:port");
    let proxy = cairn_testkit::FaultProxy::start(upstream).expect("proxy");
    let vars = server
        .vars()
        .map(|(k, v)| {
            let v = if k == "CAIRN_S3_ENDPOINT" {
                format!("http://{}", proxy.addr())
            } else {
                v.to_owned()
            };
            (k.to_owned(), v)
        })
        .collect();
    (proxy, vars)
}

/// A store that answers 503 for a while: the backup retries and succeeds.
#[test]
fn a_store_answering_503_for_a_while_is_retried() {
    let Some(server) = server_or_skip("s3") else {
        return;
    };
    let (proxy, vars) = behind_proxy(&server);
    let ctx = TestContext::new();
    let url = server.fresh_url("503");
    let src = small_tree(&ctx.root);
    run_ok(&mut via(
        &ctx,
        &vars,
        &url,
        &["init", "--kdf-memory", "64", "--kdf-iterations", "1"],
    ));
    // Fewer than one request's attempts: every request eventually succeeds.
    proxy.fail_next(3);
    run_ok(&mut via(
        &ctx,
        &vars,
        &url,
        &["backup", src.to_str().unwrap()],
    ));
    assert_eq!(proxy.refused(), 3, "the 503s were served and retried");
    let dir = ctx.root.join("out");
    run_ok(&mut via(
        &ctx,
        &vars,
        &url,
        &["restore", "latest", "--target", dir.to_str().unwrap()],
    ));
    assert_eq!(manifest(&dir), manifest(&src));
}

/// The store dies in the middle of a backup: a clear error naming the location, exit 2, the
/// repository stays valid, and the next backup completes, uploading only what is missing.
#[test]
fn a_store_dying_mid_backup_leaves_a_valid_repository() {
    let Some(server) = server_or_skip("s3") else {
        return;
    };
    let (proxy, vars) = behind_proxy(&server);
    let ctx = TestContext::new();
    let url = server.fresh_url("dies");
    let src = ctx.root.join("big");
    // 16 MiB of incompressible data in 1 MiB packs, an index file every 2 packs: the store
    // dies right after the first index file landed.
    let mut rng = crate::common::Rng::new(7);
    for i in 0..4 {
        write(&src.join(format!("f{i}")), rng.bytes(4 << 20));
    }
    let vars: Vec<(String, String)> = vars
        .into_iter()
        .chain([("CAIRN_TEST_INDEX_EVERY".to_owned(), "2".to_owned())])
        .collect();
    run_ok(&mut via(
        &ctx,
        &vars,
        &url,
        &[
            "init",
            "--kdf-memory",
            "64",
            "--kdf-iterations",
            "1",
            "--pack-mib",
            "1",
        ],
    ));
    proxy.die_after_put_containing("/index/");
    let out = run(&mut via(
        &ctx,
        &vars,
        &url,
        &["backup", src.to_str().unwrap()],
    ));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{}", format_output(&out));
    assert!(
        err.contains("cairn-test"),
        "the error names the location: {err}"
    );
    assert!(proxy.dropped() > 0);
    proxy.revive();
    let before = run_ok(&mut via(&ctx, &vars, &url, &["snapshots", "--json"]));
    let before: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(before["snapshots"].as_array().map(Vec::len), Some(0));
    run_ok(&mut via(&ctx, &vars, &url, &["check"]));
    let out = run_ok(&mut via(
        &ctx,
        &vars,
        &url,
        &["backup", "--json", src.to_str().unwrap()],
    ));
    let summary = crate::common::json_summary(&out);
    let added = summary["summary"]["bytes_added"]
        .as_u64()
        .or_else(|| summary["bytes_added"].as_u64())
        .expect("bytes_added");
    assert!(
        added < 16 << 20,
        "the packs that landed before the failure were not uploaded again ({added} bytes added): {summary}"
    );
    run_ok(&mut via(&ctx, &vars, &url, &["check", "--read-data"]));
    let dir = ctx.root.join("out");
    run_ok(&mut via(
        &ctx,
        &vars,
        &url,
        &["restore", "latest", "--target", dir.to_str().unwrap()],
    ));
    assert_eq!(manifest(&dir), manifest(&src));
}
