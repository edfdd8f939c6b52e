//! Back up a tree, restore it elsewhere, compare everything.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use cairn_repo::BackupOptions;
use cairn_storage::LocalStorage;
use proptest::prelude::*;

use crate::support::{
    Rng, TreeShape, build_random_tree, chmod, compare_trees, init_mem, init_options, is_root,
    is_sparse, lchown, mkfifo, restore, rt, set_times, try_set_xattr, write_sparse,
};

async fn round_trip(repo: &Arc<cairn_repo::Repository>, src: &Path, dst: &Path) -> Vec<String> {
    let out = crate::support::backup(repo, src, &BackupOptions::default()).await;
    assert_eq!(out.snapshot.summary.errors, 0, "backup skipped entries");
    restore(repo, &out.snapshot, dst).await;
    compare_trees(src, dst)
}

/// One tree with every kind of entry and metadata the engine keeps.
fn build_every_kind(root: &Path) {
    let mut rng = Rng(7);
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir(root.join("sticky")).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("small"), b"hello, cairn\n").unwrap();
    std::fs::write(root.join("sub/multi-chunk"), rng.mixed(300_000)).unwrap();
    std::fs::write(root.join("sub/deeper/random"), rng.bytes(70_000)).unwrap();
    write_sparse(
        &root.join("sparse"),
        2 * 1024 * 1024,
        1024 * 1024,
        &rng.bytes(12_345),
    );
    write_sparse(&root.join("sparse-tail"), 1024 * 1024, 0, &rng.bytes(5000));
    write_sparse(&root.join("all-hole"), 512 * 1024, 0, b"");
    std::fs::write(root.join("linked"), rng.bytes(3000)).unwrap();
    std::fs::hard_link(root.join("linked"), root.join("sub/linked-too")).unwrap();
    std::fs::hard_link(root.join("linked"), root.join("sub/deeper/linked-three")).unwrap();
    std::os::unix::fs::symlink("small", root.join("link-to-small")).unwrap();
    std::os::unix::fs::symlink("../nowhere/at all", root.join("sub/dangling")).unwrap();
    mkfifo(&root.join("fifo"), 0o640);
    std::fs::write(root.join("setuid"), b"#!/bin/sh\n").unwrap();
    let weird = std::ffi::OsStr::from_bytes(b"not-utf8-\xff\xfe");
    std::fs::write(root.join(weird), b"weird name").unwrap();
    let xattr_ok = try_set_xattr(&root.join("small"), "user.comment", b"a value")
        & try_set_xattr(&root.join("small"), "user.empty", b"")
        & try_set_xattr(&root.join("sub"), "user.dir", &[0, 1, 2, 255]);
    if !xattr_ok {
        eprintln!("the filesystem refuses user xattrs; not checking them");
    }
    if is_root() {
        use rustix::fs::{CWD, FileType, Mode, mknodat};
        mknodat(
            CWD,
            root.join("null"),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            rustix::fs::makedev(1, 3),
        )
        .unwrap();
        lchown(&root.join("small"), 1234, 5678);
        lchown(&root.join("link-to-small"), 42, 43);
        lchown(&root.join("sub"), 65534, 65534);
        lchown(&root.join("setuid"), 1000, 1000);
    }
    chmod(&root.join("setuid"), 0o4755);
    chmod(&root.join("sticky"), 0o1777);
    chmod(&root.join("sub/deeper"), 0o2750);
    chmod(&root.join("small"), 0o600);
    let mut t = 1_600_000_000_123_456_789_i64;
    for p in [
        "empty",
        "small",
        "sub/multi-chunk",
        "sub/deeper/random",
        "sparse",
        "sparse-tail",
        "all-hole",
        "linked",
        "link-to-small",
        "sub/dangling",
        "fifo",
        "setuid",
    ] {
        set_times(&root.join(p), t);
        t += 1_000_000_007;
    }
    set_times(&root.join(weird), -1_234_567_890_987_654_321 / 1000);
    for d in ["sub/deeper", "sub", "sticky", ""] {
        set_times(&root.join(d), t);
        t += 3;
    }
}

#[test]
fn every_kind_of_entry_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_every_kind(&src);
    let sparse = std::fs::symlink_metadata(src.join("sparse")).unwrap();
    assert!(
        is_sparse(&sparse),
        "the fixture's sparse file is not sparse"
    );
    let dst = tmp.path().join("restored");
    let diffs = rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        round_trip(&repo, &src, &dst).await
    });
    assert!(diffs.is_empty(), "{diffs:#?}");
    // The comparison checks hard links pairwise; check the count too.
    let md = std::fs::metadata(dst.join("linked")).unwrap();
    assert_eq!(md.nlink(), 3);
}

#[test]
fn round_trip_through_a_local_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_random_tree(
        &src,
        TreeShape {
            seed: 99,
            entries: 40,
        },
    );
    let dst = tmp.path().join("restored");
    let repo_dir = tmp.path().join("repo");
    let diffs = rt().block_on(async {
        let storage = Arc::new(LocalStorage::new(repo_dir.clone()));
        let repo = Arc::new(
            cairn_repo::Repository::init(storage, crate::support::PASS, &init_options())
                .await
                .unwrap(),
        );
        let out = crate::support::backup(&repo, &src, &BackupOptions::default()).await;
        // A second session: everything it needs comes from the directory.
        let repo = crate::support::open(Arc::new(LocalStorage::new(repo_dir.clone()))).await;
        restore(&repo, &out.snapshot, &dst).await;
        compare_trees(&src, &dst)
    });
    assert!(diffs.is_empty(), "{diffs:#?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_round_trip(seed in any::<u64>(), entries in 1usize..40) {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        build_random_tree(&src, TreeShape { seed, entries });
        let dst = tmp.path().join("restored");
        let diffs = rt().block_on(async {
            let (_mem, repo) = init_mem().await;
            round_trip(&repo, &src, &dst).await
        });
        prop_assert!(diffs.is_empty(), "{:#?}", diffs);
    }
}

/// The comparison the round trips rely on reports each kind of difference.
#[test]
fn the_comparison_sees_every_difference() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_every_kind(&src);
    let dst = tmp.path().join("restored");
    let diffs = rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        round_trip(&repo, &src, &dst).await
    });
    assert!(diffs.is_empty(), "{diffs:#?}");
    let keep_time = |p: &Path, f: &dyn Fn(&Path)| {
        let m = std::fs::symlink_metadata(p).unwrap();
        f(p);
        set_times(p, m.mtime() * 1_000_000_000 + m.mtime_nsec());
    };
    chmod(&dst.join("small"), 0o644);
    keep_time(&dst.join("sub/deeper/random"), &|p| {
        let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"X", 5).unwrap();
    });
    set_times(&dst.join("sub/multi-chunk"), 12_345);
    keep_time(&dst.join("sub"), &|p| {
        let link = p.join("linked-too");
        std::fs::remove_file(&link).unwrap();
        std::fs::copy(dst.join("linked"), &link).unwrap();
    });
    let m = std::fs::symlink_metadata(dst.join("linked")).unwrap();
    set_times(
        &dst.join("sub/linked-too"),
        m.mtime() * 1_000_000_000 + m.mtime_nsec(),
    );
    let xattrs_work = xattr::get(dst.join("small"), "user.comment")
        .unwrap()
        .is_some();
    if xattrs_work {
        xattr::remove(dst.join("small"), "user.comment").unwrap();
    }
    keep_time(&dst, &|p| {
        let dense = std::fs::read(p.join("sparse")).unwrap();
        let m = std::fs::metadata(p.join("sparse")).unwrap();
        std::fs::remove_file(p.join("sparse")).unwrap();
        std::fs::write(p.join("sparse"), dense).unwrap();
        chmod(&p.join("sparse"), m.mode() & 0o7777);
        set_times(
            &p.join("sparse"),
            m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        );
        std::fs::write(p.join("extra"), b"").unwrap();
        std::fs::remove_file(p.join("fifo")).unwrap();
        std::fs::remove_file(p.join("link-to-small")).unwrap();
        std::os::unix::fs::symlink("empty", p.join("link-to-small")).unwrap();
    });
    if is_root() {
        lchown(&dst.join("setuid"), 0, 0);
        chmod(&dst.join("setuid"), 0o4755);
    }
    let diffs = compare_trees(&src, &dst).join("\n");
    let mut want = vec![
        "./small: mode",
        "./sub/deeper/random: content",
        "./sub/multi-chunk: mtime",
        "./sub/linked-too: hard link",
        "./sparse: sparse",
        "unexpected entry \"extra\"",
        "./fifo: not restored",
        "./link-to-small: link target",
    ];
    if xattrs_work {
        want.push("./small: xattrs");
    }
    if is_root() {
        want.push("./setuid: owner");
    }
    for w in want {
        assert!(diffs.contains(w), "missing {w:?} in:\n{diffs}");
    }
}

async fn restore_sub(
    repo: &Arc<cairn_repo::Repository>,
    snap: &cairn_repo::format::Snapshot,
    sub: &str,
    target: &Path,
    overwrite: bool,
) -> cairn_repo::Result<cairn_repo::RestoreOutcome> {
    let mut o = cairn_repo::RestoreOptions::default();
    o.overwrite = overwrite;
    cairn_repo::restore(
        repo,
        snap,
        "snap",
        sub,
        target,
        &o,
        crate::support::no_progress(),
        cairn_repo::CancellationToken::new(),
    )
    .await
}

#[test]
fn subpaths_single_files_and_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build_every_kind(&src);
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        let out = crate::support::backup(&repo, &src, &BackupOptions::default()).await;
        let snap = &out.snapshot;

        // A directory inside the snapshot.
        let sub = tmp.path().join("sub");
        let o = restore_sub(&repo, snap, "sub", &sub, false).await.unwrap();
        assert!(o.errors.is_empty(), "{:#?}", o.errors);
        let diffs = compare_trees(&src.join("sub"), &sub);
        assert!(diffs.is_empty(), "{diffs:#?}");

        // One file, to a new path and into an existing directory.
        let file = tmp.path().join("one-file");
        let o = restore_sub(&repo, snap, "sub/multi-chunk", &file, false)
            .await
            .unwrap();
        assert!(o.errors.is_empty(), "{:#?}", o.errors);
        let diffs = compare_trees(&src.join("sub/multi-chunk"), &file);
        assert!(diffs.is_empty(), "{diffs:#?}");
        let dir = tmp.path().join("into");
        std::fs::create_dir(&dir).unwrap();
        let o = restore_sub(&repo, snap, "sparse", &dir, false)
            .await
            .unwrap();
        assert!(o.errors.is_empty(), "{:#?}", o.errors);
        let diffs = compare_trees(&src.join("sparse"), &dir.join("sparse"));
        assert!(diffs.is_empty(), "{diffs:#?}");

        let e = restore_sub(&repo, snap, "sub/none", &tmp.path().join("x"), false)
            .await
            .unwrap_err();
        assert!(matches!(e, cairn_repo::Error::NoSuchPath { .. }), "{e:?}");

        // The whole tree; again over it: refused, then repaired with overwrite.
        let full = tmp.path().join("full");
        restore(&repo, snap, &full).await;
        let e = restore_sub(&repo, snap, "", &full, false)
            .await
            .unwrap_err();
        assert!(matches!(e, cairn_repo::Error::TargetNotEmpty(_)), "{e:?}");
        std::fs::write(
            full.join("small"),
            b"damaged by hand, and longer than before",
        )
        .unwrap();
        std::fs::remove_file(full.join("sub/deeper/random")).unwrap();
        std::fs::remove_file(full.join("link-to-small")).unwrap();
        std::fs::write(full.join("link-to-small"), b"not a link").unwrap();
        chmod(&full.join("sticky"), 0o700);
        let o = restore_sub(&repo, snap, "", &full, true).await.unwrap();
        assert!(o.errors.is_empty(), "{:#?}", o.errors);
        let diffs = compare_trees(&src, &full);
        assert!(diffs.is_empty(), "{diffs:#?}");
    });
}

/// Small files of one directory are stored together (one blob per bundle, not one per file),
/// restore bit-identically, and a change to one of them re-stores only that file.
#[test]
fn small_files_are_bundled() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("many")).unwrap();
    let mut rng = Rng(11);
    for i in 0..300 {
        let n = rng.range(1, 4000) as usize;
        std::fs::write(src.join(format!("many/f{i:03}")), rng.compressible(n)).unwrap();
    }
    std::fs::write(src.join("alone"), rng.bytes(100)).unwrap();
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        let first = crate::support::backup(&repo, &src, &BackupOptions::default()).await;
        let s = &first.snapshot.summary;
        assert_eq!(s.files_read, 301);
        // 300 files under the chunker minimum (4 KiB here) fit in one 1 MiB bundle; plus `alone`,
        // plus the two trees.
        assert!(
            s.blobs_added <= 4,
            "{} blobs for 301 small files",
            s.blobs_added
        );
        let dst = tmp.path().join("r1");
        restore(&repo, &first.snapshot, &dst).await;
        assert!(compare_trees(&src, &dst).is_empty());

        std::fs::write(src.join("many/f150"), b"changed").unwrap();
        let opts = BackupOptions::default();
        let second = crate::support::backup(&repo, &src, &opts).await;
        let s = &second.snapshot.summary;
        assert_eq!(s.files_read, 1, "only the changed file is read again");
        // The changed file's blob and the two trees above it.
        assert_eq!(s.blobs_added, 3);
        let dst = tmp.path().join("r2");
        restore(&repo, &second.snapshot, &dst).await;
        assert!(compare_trees(&src, &dst).is_empty());
    });
}
