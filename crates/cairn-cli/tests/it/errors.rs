//! Errors and problems: exit 2 for fatal errors, 1 for a backup that skipped files.

use std::process::Command;

use crate::cairn_snapshot;
use crate::common::{TestContext, chmod, run_ok, small_tree, write};

#[test]
fn wrong_passphrase() {
    let mut ctx = TestContext::new();
    ctx.init();
    ctx.password = "not the passphrase".to_string();
    cairn_snapshot!(ctx, ctx.cairn(["snapshots"]), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: wrong passphrase: no key in [TMP]/repo opens with it
    ");
    cairn_snapshot!(ctx, ctx.cairn(["snapshots", "--json"]), @r#"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    {"message":"wrong passphrase: no key in [TMP]/repo opens with it","schema":1,"type":"error"}
    "#);
}

#[test]
fn missing_repository() {
    let ctx = TestContext::new();
    cairn_snapshot!(ctx, ctx.cairn(["snapshots"]), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: no repository at [TMP]/repo (run `cairn init` first)
    ");
    cairn_snapshot!(ctx, ctx.cairn(["backup", "."]), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: no repository at [TMP]/repo (run `cairn init` first)
    ");
    // No repository was created by the failed commands.
    assert!(!ctx.repo.exists());
}

#[test]
fn restore_into_non_empty_directory() {
    let ctx = TestContext::new();
    ctx.init();
    small_tree(&ctx.root);
    run_ok(&mut ctx.cairn(["backup", "tree"]));
    write(&ctx.root.join("out/keep.txt"), "mine\n");
    cairn_snapshot!(ctx, ctx.cairn(["restore", "latest", "--target", "out"]), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: target out is not empty (use --overwrite to restore over it)
    ");
    // Untouched.
    assert_eq!(
        crate::common::manifest(&ctx.root.join("out")).len(),
        1,
        "the target was written to"
    );
    // With --overwrite it goes ahead.
    run_ok(&mut ctx.cairn(["restore", "latest", "--target", "out", "--overwrite"]));
    assert_eq!(
        std::fs::read(ctx.root.join("out/a.txt")).expect("restored"),
        b"hello\n"
    );
}

#[test]
fn unknown_snapshot() {
    let ctx = TestContext::new();
    ctx.init();
    small_tree(&ctx.root);
    run_ok(&mut ctx.cairn(["backup", "tree"]));
    cairn_snapshot!(ctx, ctx.cairn(["restore", "deadbeef", "--target", "out"]), @r#"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: no snapshot matches "[ID]"
    "#);
    cairn_snapshot!(ctx, ctx.cairn(["catalog", "0000"]), @r#"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: no snapshot matches "0000"
    "#);
    cairn_snapshot!(ctx, ctx.cairn(["catalog", "latest", "no/such/dir"]), @r#"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: no path "no/such/dir" in snapshot [ID]
    "#);
}

#[test]
fn latest_in_an_empty_repository() {
    let ctx = TestContext::new();
    ctx.init();
    cairn_snapshot!(ctx, ctx.cairn(["restore", "latest", "--target", "out"]), @r#"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: no snapshot matches "latest"
    "#);
}

#[test]
fn backup_of_a_missing_path() {
    let ctx = TestContext::new();
    ctx.init();
    cairn_snapshot!(ctx, ctx.cairn(["backup", "no-such-dir"]), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: stat [TMP]/no-such-dir: No such file or directory (os error 2)
    ");
}

/// A file that cannot be read is skipped with a warning, the snapshot is still saved, and
/// the exit code is 1.
///
/// `chmod 000` does not stop root (CAP_DAC_OVERRIDE), and the tests usually run as root. So
/// when running as root, this test runs cairn as the unprivileged user `nobody` (65534),
/// for whom the mode is enforced, with the world made accessible to that user.
#[test]
fn unreadable_file_exits_1() {
    use std::os::unix::process::CommandExt;
    let ctx = TestContext::new();
    let as_root = rustix::process::geteuid().is_root();
    let nobody = |mut cmd: Command| -> Command {
        if as_root {
            cmd.uid(65534).gid(65534);
        }
        cmd
    };
    if as_root {
        // Make the world of the test reachable and writable for `nobody`.
        for p in [
            ctx.root.clone(),
            ctx.root.join("home"),
            ctx.root.join("data"),
        ] {
            chmod(&p, 0o777);
        }
        let mut dir = ctx.root.parent();
        while let Some(d) = dir {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d).expect("stat").permissions().mode();
            if mode & 0o001 == 0 {
                eprintln!(
                    "skipped: {} is not searchable by others, so `nobody` cannot reach the test directory",
                    d.display()
                );
                return;
            }
            dir = d.parent();
        }
    }
    let mut init = nobody(ctx.cairn(["init", "--kdf-memory", "64", "--kdf-iterations", "1"]));
    run_ok(&mut init);
    let tree = ctx.root.join("tree");
    write(&tree.join("ok.txt"), "readable\n");
    write(&tree.join("secret.txt"), "unreadable\n");
    chmod(&tree, 0o777);
    chmod(&tree.join("ok.txt"), 0o644);
    chmod(&tree.join("secret.txt"), 0o000);

    let out = cairn_snapshot!(ctx, nobody(ctx.cairn(["backup", "--host", "testhost", "tree"])), @"
    success: false
    exit_code: 1
    ----- stdout -----
    snapshot [ID] saved (parent none)
      2 files, 1 dirs, 9 B read; 20 B in total
      added [SIZE] (2 blobs), stored [SIZE] after compression and encryption, in [ELAPSED]
    ----- stderr -----
    warning: cannot open [TMP]/tree/secret.txt: Permission denied (os error 13); stored as empty
    warning: 1 entries could not be read (see warnings above)
    ");
    assert_eq!(out.status.code(), Some(1));
    // The snapshot exists and has the readable file.
    let mut restore = nobody(ctx.cairn(["restore", "latest", "--target", "out"]));
    run_ok(&mut restore);
    assert_eq!(
        std::fs::read(ctx.root.join("out/ok.txt")).expect("restored"),
        b"readable\n"
    );
    // JSON: the warning on stderr, the summary with "errors": 1 on stdout.
    let out = cairn_snapshot!(ctx, nobody(ctx.cairn(["backup", "--json", "--host", "testhost", "tree"])), @r#"
    success: false
    exit_code: 1
    ----- stdout -----
    {"bytes_done":0,"bytes_total":null,"elapsed_seconds":"[ELAPSED]","items_done":0,"operation":"backup","schema":1,"type":"begin"}
    {"bytes_done":9,"bytes_total":null,"elapsed_seconds":"[ELAPSED]","items_done":2,"operation":"backup","schema":1,"type":"end"}
    {"operation":"backup","parent":"[ID]","schema":1,"snapshot":"[ID]","source":{"identity":"tree:testhost:[TMP]/tree","kind":"tree","paths":["[TMP]/tree"]},"summary":{"blobs_added":0,"bytes_added":0,"bytes_read":0,"bytes_stored":0,"dirs":1,"duration_ms":"[ELAPSED]","errors":1,"files":2,"files_read":0,"total_bytes":20},"type":"summary"}
    ----- stderr -----
    warning: cannot open [TMP]/tree/secret.txt: Permission denied (os error 13); stored as empty
    "#);
    assert_eq!(out.status.code(), Some(1));

    // Once readable again (same size, same mtime: only chmod), the next backup must store
    // the real contents, not keep the "stored as empty" placeholder of its parent.
    chmod(&tree.join("secret.txt"), 0o644);
    let mut backup = nobody(ctx.cairn(["backup", "--host", "testhost", "tree"]));
    run_ok(&mut backup);
    let mut restore = nobody(ctx.cairn(["restore", "latest", "--target", "out2"]));
    run_ok(&mut restore);
    assert_eq!(
        std::fs::read(ctx.root.join("out2/secret.txt")).expect("restored"),
        b"unreadable\n",
        "a file that was unreadable once stays empty in later snapshots"
    );
}
