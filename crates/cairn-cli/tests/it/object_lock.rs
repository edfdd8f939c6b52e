//! Immutability end to end on moto (a bucket with S3 Object Lock enabled) and s3s-fs (no
//! object lock): `backup --retain-for` locks every object the snapshot needs on the server
//! itself; `forget` keeps the snapshot and says why; `prune` leaves its packs; `key remove`
//! refuses its key; a store without Object Lock refuses before writing anything.

use std::process::Command;

use cairn_storage::remote::RemoteOptions;
use cairn_storage::{Location, Storage};
use cairn_testkit::TestServer;
use cairn_testkit::servers;

use crate::common::{TestContext, format_output, manifest, run, run_ok, small_tree, write};

fn cairn(ctx: &TestContext, server: &TestServer, url: &str, args: &[&str]) -> Command {
    let mut cmd = ctx.command();
    cmd.envs(server.vars())
        .env("CAIRN_STATE_DIR", ctx.root.join("state"))
        .args(args)
        .arg("--repo")
        .arg(url);
    cmd
}

/// The last JSON line of the output (a backup prints progress events before its summary).
fn json(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {}", format_output(out)))
}

/// Every object of the repository at `url`, with when its lock ends, read from the server.
fn locks(server: &TestServer, url: &str) -> Vec<(String, Option<jiff::Timestamp>)> {
    let opts = RemoteOptions::from_vars(|n| server.var(n)).unwrap();
    let storage = Location::parse(url).unwrap().open(&opts).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for e in storage.list("").await.unwrap() {
            let t = storage.retained_until(&e.path).await.unwrap();
            out.push((e.path, t));
        }
        out.sort();
        out
    })
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one end-to-end story on one server, step by step"
)]
fn a_locked_backup_on_moto_cannot_be_forgotten_pruned_or_unkeyed() {
    let Some(server) = servers::server("moto").unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    let ctx = TestContext::new();
    let url = server.fresh_url("lock");
    let init = ["init", "--kdf-memory", "64", "--kdf-iterations", "1"];
    run_ok(&mut cairn(&ctx, &server, &url, &init));
    let src = small_tree(&ctx.root);
    let out = run_ok(&mut cairn(
        &ctx,
        &server,
        &url,
        &[
            "backup",
            "--json",
            "--retain-for",
            "2d",
            src.to_str().unwrap(),
        ],
    ));
    let v = json(&out);
    let until: jiff::Timestamp = v["retain_until"]
        .as_str()
        .unwrap_or_else(|| panic!("no retain_until in {v}"))
        .parse()
        .unwrap();
    let now = jiff::Timestamp::now();
    assert!(
        until > now + jiff::SignedDuration::from_hours(47),
        "{until}"
    );
    let kept_id = v["snapshot"].as_str().unwrap().to_owned();
    let locked_tree = manifest(&src);

    // On the server: every pack, the snapshot, the config and the key are locked that long;
    // index files are not (prune and repair rewrite them).
    let objects = locks(&server, &url);
    assert!(objects.iter().any(|(p, _)| p.starts_with("data/")));
    for (p, t) in &objects {
        let lockable = p.starts_with("data/")
            || p.starts_with("keys/")
            || p.starts_with("snapshots/")
            || p == "config";
        if lockable {
            assert!(
                t.is_some_and(|t| t >= until - jiff::SignedDuration::from_secs(1)),
                "{p} locked until {t:?}, want {until}"
            );
        } else if p.starts_with("index/") {
            assert_eq!(*t, None, "{p}");
        }
    }

    // New data, unlocked; then keep only the last: the locked one stays, and says why.
    write(&src.join("a.txt"), b"changed after the locked backup\n");
    write(&src.join("big.bin"), vec![9_u8; 500_000]);
    run_ok(&mut cairn(
        &ctx,
        &server,
        &url,
        &["backup", src.to_str().unwrap()],
    ));
    write(&src.join("big.bin"), vec![8_u8; 500_000]);
    run_ok(&mut cairn(
        &ctx,
        &server,
        &url,
        &["backup", src.to_str().unwrap()],
    ));
    let out = run_ok(&mut cairn(
        &ctx,
        &server,
        &url,
        &["forget", "--keep-last", "1", "--json"],
    ));
    let v = json(&out);
    let snaps = v["snapshots"].as_array().unwrap();
    let locked = snaps
        .iter()
        .find(|s| s["id"].as_str() == Some(kept_id.as_str()))
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(locked["keep"], true, "{v}");
    assert!(
        locked["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("locked until")),
        "{v}"
    );
    assert_eq!(v["removed"], 1, "{v}");

    // Prune (mark, then sweep with no margin) reports the locked packs and leaves them.
    for _ in 0..2 {
        let out = run_ok(&mut cairn(
            &ctx,
            &server,
            &url,
            &["prune", "--repack-unused", "0"],
        ));
        let text = format_output(&out);
        assert!(text.contains("locked:"), "{text}");
    }
    let after = locks(&server, &url);
    for (p, _) in objects.iter().filter(|(p, _)| p.starts_with("data/")) {
        assert!(after.iter().any(|(q, _)| q == p), "locked pack {p} is gone");
    }
    run_ok(&mut cairn(&ctx, &server, &url, &["check", "--read-data"]));
    let target = ctx.root.join("restore-locked");
    run_ok(&mut cairn(
        &ctx,
        &server,
        &url,
        &["restore", &kept_id, "--target", target.to_str().unwrap()],
    ));
    let nested = target.join(src.file_name().unwrap());
    assert_eq!(
        manifest(if nested.is_dir() { &nested } else { &target }),
        locked_tree
    );

    // The only key is locked: adding a second and removing the first is refused.
    let pass2 = ctx.root.join("pass2");
    write(&pass2, b"another passphrase\n");
    run_ok(&mut cairn(
        &ctx,
        &server,
        &url,
        &[
            "key",
            "add",
            "--new-password-file",
            pass2.to_str().unwrap(),
            "--kdf-memory",
            "64",
            "--kdf-iterations",
            "1",
        ],
    ));
    let keys = json(&run_ok(&mut cairn(
        &ctx,
        &server,
        &url,
        &["key", "list", "--json"],
    )));
    let first_key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .unwrap_or_else(|| panic!("{keys}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = run(&mut cairn(
        &ctx,
        &server,
        &url,
        &[
            "--password-file",
            pass2.to_str().unwrap(),
            "key",
            "remove",
            &first_key,
        ],
    ));
    let text = format_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("locked on the store until"), "{text}");
}

#[test]
fn a_bucket_without_object_lock_refuses_a_locked_backup_before_writing() {
    let Some(server) = servers::server("s3").unwrap_or_else(|e| panic!("{e}")) else {
        return;
    };
    let ctx = TestContext::new();
    let url = server.fresh_url("nolock");
    let init = ["init", "--kdf-memory", "64", "--kdf-iterations", "1"];
    run_ok(&mut cairn(&ctx, &server, &url, &init));
    let before = locks(&server, &url);
    let src = small_tree(&ctx.root);
    let out = run(&mut cairn(
        &ctx,
        &server,
        &url,
        &[
            "backup",
            "--retain-until",
            "2099-01-01T00:00:00Z",
            src.to_str().unwrap(),
        ],
    ));
    let text = format_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(url.trim_end_matches('/')),
        "names the location: {text}"
    );
    assert!(text.to_lowercase().contains("object lock"), "{text}");
    let after = locks(&server, &url);
    assert_eq!(
        before.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        after.iter().map(|(p, _)| p).collect::<Vec<_>>(),
        "nothing was written"
    );
}

/// `--retain-until` wins over a `CAIRN_RETAIN_FOR` in the environment (no usage error), and a
/// local path, which cannot lock, refuses the locked backup with exit 2 and writes no snapshot.
#[test]
fn retain_until_overrides_the_environment_and_a_path_cannot_lock() {
    let ctx = TestContext::new();
    ctx.init();
    let src = small_tree(&ctx.root);
    let mut cmd = ctx.cairn([
        "backup",
        "--retain-until",
        "2099-01-01T00:00:00Z",
        src.to_str().unwrap(),
    ]);
    cmd.env("CAIRN_RETAIN_FOR", "1d");
    let out = run(&mut cmd);
    let text = format_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("cannot lock objects"), "{text}");
    let list = run_ok(&mut ctx.cairn(["snapshots", "--json"]));
    assert_eq!(json(&list)["snapshots"].as_array().map(Vec::len), Some(0));
}
