//! Volumes and standard input through the CLI.

use std::io::Write;
use std::process::Stdio;

use crate::cairn_snapshot;
use crate::common::{Rng, TestContext, run, run_ok, write};

/// A 20 MiB sparse image with data at a few places.
fn sparse_image(path: &std::path::Path) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).expect("create image");
    f.set_len(20 << 20).expect("set_len");
    let mut rng = Rng::new(7);
    for (offset, len) in [
        (0u64, 4096usize),
        (3 << 20, 200_000),
        ((20 << 20) - 512, 512),
    ] {
        f.write_all_at(&rng.bytes(len), offset).expect("write");
    }
    // Text (compressible) in the middle.
    f.write_all_at(&b"cairn volume test\n".repeat(10_000), 11 << 20)
        .expect("write");
    drop(f);
    std::fs::read(path).expect("read image")
}

#[test]
fn volume_backup_restore_verify() {
    let ctx = TestContext::new();
    ctx.init();
    let image = sparse_image(&ctx.root.join("disk.img"));

    cairn_snapshot!(ctx, ctx.cairn(["backup", "--host", "testhost", "--volume", "disk.img"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    snapshot [ID] saved (parent none)
      1 files, 0 dirs, 12.0 MiB read; 20.0 MiB in total
      added [SIZE] (10 blobs), stored [SIZE] after compression and encryption, in [ELAPSED]
    ----- stderr -----
    ");
    cairn_snapshot!(ctx, ctx.cairn(["restore", "latest", "--target", "out.img", "--verify"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    restored snapshot [ID] to out.img: 1 files, 0 dirs, 380.0 KiB
    ----- stderr -----
    ");
    let restored = std::fs::read(ctx.root.join("out.img")).expect("read restore");
    assert_eq!(restored.len(), image.len());
    assert!(restored == image, "the restored image differs");

    // An existing non-empty file is not overwritten without --overwrite.
    write(&ctx.root.join("busy.img"), "precious");
    cairn_snapshot!(ctx, ctx.cairn(["restore", "latest", "--target", "busy.img"]), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: target busy.img is not empty (use --overwrite to restore over it)
    ");
    assert_eq!(
        std::fs::read(ctx.root.join("busy.img")).expect("read"),
        b"precious"
    );
    // With --overwrite it is.
    run_ok(&mut ctx.cairn([
        "restore",
        "latest",
        "--target",
        "busy.img",
        "--overwrite",
        "--verify",
    ]));
    assert!(std::fs::read(ctx.root.join("busy.img")).expect("read") == image);

    // `--volume` takes one path.
    let out = run(&mut ctx.cairn(["backup", "--volume", "disk.img", "out.img"]));
    assert_eq!(out.status.code(), Some(2));
}

fn backup_stdin(ctx: &TestContext, input: &[u8], extra: &[&str]) -> std::process::Output {
    let mut child = ctx
        .cairn([
            "backup", "--host", "testhost", "--stdin", "--name", "dump.sql",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread").expect("write stdin");
    out
}

#[test]
fn stdin_backup_restores_to_a_file() {
    let ctx = TestContext::new();
    ctx.init();
    let out = backup_stdin(&ctx, b"data\n", &[]);
    let mut settings = insta::Settings::clone_current();
    for (m, r) in ctx.filters() {
        settings.add_filter(&m, r);
    }
    settings.bind(|| {
        insta::assert_snapshot!(ctx.redact_paths(&crate::common::format_output(&out)), @"
        success: true
        exit_code: 0
        ----- stdout -----
        snapshot [ID] saved (parent none)
          1 files, 0 dirs, 5 B read; 5 B in total
          added [SIZE] (1 blobs), stored [SIZE] after compression and encryption, in [ELAPSED]
        ----- stderr -----
        ");
    });
    cairn_snapshot!(ctx, ctx.cairn(["restore", "latest", "--target", "dump.out"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    restored snapshot [ID] to dump.out: 1 files, 0 dirs, 5 B
    ----- stderr -----
    ");
    assert_eq!(
        std::fs::read(ctx.root.join("dump.out")).expect("read"),
        b"data\n"
    );

    // A bigger dump (several chunks), then the same again: deduplicated, parent found.
    let mut rng = Rng::new(1);
    let mut big = rng.bytes(3 << 20);
    big.extend(b"INSERT INTO t VALUES (1);\n".repeat(50_000));
    let out = backup_stdin(&ctx, &big, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        crate::common::format_output(&out)
    );
    let out = backup_stdin(&ctx, &big, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        crate::common::format_output(&out)
    );
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_string)
        .expect("summary line");
    let v: serde_json::Value = serde_json::from_str(&last).expect("json");
    assert_eq!(v["summary"]["bytes_added"], 0, "{v}");
    assert!(v["parent"].is_string(), "{v}");
    run_ok(&mut ctx.cairn(["restore", "latest", "--target", "big.out"]));
    assert!(std::fs::read(ctx.root.join("big.out")).expect("read") == big);
}

/// `--stdin` needs `--name`; and takes no paths.
#[test]
fn stdin_usage_errors() {
    let ctx = TestContext::new();
    ctx.init();
    cairn_snapshot!(ctx, ctx.cairn(["backup", "--stdin"]).stdin(Stdio::null()), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: the following required arguments were not provided:
      --name <NAME>

    Usage: cairn backup --name <NAME> --stdin --repo <REPO> [PATHS]...

    For more information, try '--help'.
    ");
    cairn_snapshot!(ctx, ctx.cairn(["backup", "--stdin", "--name", "x", "tree"]).stdin(Stdio::null()), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: --stdin takes no paths
    ");
}
