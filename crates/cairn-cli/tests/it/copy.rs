//! `cairn copy`: to a second repository with another passphrase; copies restore from the
//! target alone; copying again uploads nothing; a wrong target passphrase writes nothing.

use crate::common::{
    TestContext, init_other, json_summary, manifest, run, run_ok, small_tree, snapshot_ids,
};

const TARGET_PASSWORD: &str = "the target's own passphrase";

#[test]
fn copy_to_a_second_repository_restores_there_and_copies_once() {
    let ctx = TestContext::new();
    ctx.init();
    let tree = small_tree(&ctx.root);
    run_ok(&mut ctx.cairn(["backup", tree.to_str().unwrap()]));
    std::fs::write(tree.join("a.txt"), "changed\n").unwrap();
    run_ok(&mut ctx.cairn(["backup", tree.to_str().unwrap()]));
    let target = ctx.root.join("target");
    init_other(&ctx, &target, TARGET_PASSWORD);

    let out = run_ok(
        ctx.cairn(["copy", "--json", "--to", target.to_str().unwrap()])
            .env("CAIRN_TO_PASSWORD", TARGET_PASSWORD),
    );
    let summary = json_summary(&out);
    let snaps = summary["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2, "{summary}");
    assert!(snaps.iter().all(|s| s["copied"] == true), "{summary}");
    assert!(summary["blobs_added"].as_u64().unwrap() > 0);

    // The target on its own, with its own passphrase.
    let mut restore = ctx.command();
    restore
        .args(["restore", "latest", "--repo"])
        .arg(&target)
        .arg("--target")
        .arg(ctx.root.join("restored"))
        .env("CAIRN_PASSWORD", TARGET_PASSWORD);
    run_ok(&mut restore);
    assert_eq!(manifest(&ctx.root.join("restored")), manifest(&tree));

    // Again: nothing new.
    let out = run_ok(
        ctx.cairn(["copy", "--json", "--to", target.to_str().unwrap()])
            .env("CAIRN_TO_PASSWORD", TARGET_PASSWORD),
    );
    let summary = json_summary(&out);
    assert!(
        summary["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["copied"] == false),
        "{summary}"
    );
    assert_eq!(summary["blobs_added"], 0);
    assert_eq!(snapshot_ids(&ctx).len(), 2);
}

#[test]
fn a_wrong_target_passphrase_or_a_missing_target_fails_clearly() {
    let ctx = TestContext::new();
    ctx.init();
    let tree = small_tree(&ctx.root);
    run_ok(&mut ctx.cairn(["backup", tree.to_str().unwrap()]));
    let target = ctx.root.join("target");

    let out = run(ctx
        .cairn(["copy", "--to", target.to_str().unwrap()])
        .env("CAIRN_TO_PASSWORD", TARGET_PASSWORD));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no repository at") && err.contains("cairn init"),
        "{err}"
    );

    init_other(&ctx, &target, TARGET_PASSWORD);
    let out = run(ctx
        .cairn(["copy", "--to", target.to_str().unwrap()])
        .env("CAIRN_TO_PASSWORD", "not it"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("target"), "{err}");
    assert!(
        std::fs::read_dir(target.join("snapshots")).map_or(0, Iterator::count) == 0,
        "nothing was copied"
    );
}
