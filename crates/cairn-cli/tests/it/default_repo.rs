//! The embedded default repository: `<XDG_DATA_HOME>/cairn/repository`, created on first
//! use of `backup` when no `--repo` is given.

use crate::cairn_snapshot;
use crate::common::{TestContext, run_ok, small_tree};

#[test]
fn first_backup_creates_the_default_repository() {
    let ctx = TestContext::new();
    small_tree(&ctx.root);
    let default = ctx.data.join("cairn/repository");
    assert!(!default.exists());

    // No --repo, no CAIRN_REPOSITORY. (This one pays for the default Argon2 parameters.)
    cairn_snapshot!(ctx, ctx.command().args(["backup", "--host", "testhost", "tree"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    snapshot [ID] saved (parent none)
      3 files, 2 dirs, 1006 B read; 1006 B in total
      added [SIZE] (4 blobs), stored [SIZE] after compression and encryption, in [ELAPSED]
    ----- stderr -----
    created the default repository at [TMP]/data/cairn/repository
    ");
    assert!(
        default.join("config").is_file(),
        "no repository at {}",
        default.display()
    );
    // Nothing outside the data directory was created (the home stays empty).
    assert_eq!(
        std::fs::read_dir(ctx.root.join("home"))
            .expect("home")
            .count(),
        0
    );

    // The second backup uses it (no "created" message) and has the first as parent.
    cairn_snapshot!(ctx, ctx.command().args(["backup", "--host", "testhost", "tree"]), @"
    success: true
    exit_code: 0
    ----- stdout -----
    snapshot [ID] saved (parent [ID])
      3 files, 2 dirs, 0 B read; 1006 B in total
      added 0 B (0 blobs), stored 0 B after compression and encryption, in [ELAPSED]
    ----- stderr -----
    ");
    let out = run_ok(ctx.command().args(["snapshots", "--json"]));
    let v = crate::common::json(&out);
    assert_eq!(v["snapshots"].as_array().map(Vec::len), Some(2));

    // `--repo` with the same path sees the same repository.
    let out = run_ok(
        ctx.command()
            .args(["snapshots", "--json", "--repo"])
            .arg(&default),
    );
    assert_eq!(crate::common::json(&out), v);
}

/// Commands other than `backup` do not create it.
#[test]
fn snapshots_does_not_create_the_default_repository() {
    let ctx = TestContext::new();
    cairn_snapshot!(ctx, ctx.command().arg("snapshots"), @"
    success: false
    exit_code: 2
    ----- stdout -----
    ----- stderr -----
    error: no repository at [TMP]/data/cairn/repository (run `cairn init` first)
    ");
    assert!(!ctx.data.join("cairn/repository").exists());
}
