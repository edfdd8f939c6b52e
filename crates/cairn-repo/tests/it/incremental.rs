//! Incremental tree backups: unchanged files are not re-read, `full` re-reads, and every
//! snapshot is a synthetic full that restores without the others.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use cairn_repo::format::{Id, Root, Snapshot, layout};
use cairn_repo::{BackupOptions, BackupOutcome};

use crate::support::{
    Content, Rng, backup, contents, init_mem, objects, open, restore, rt, set_times, storage_from,
};

fn root_tree(s: &Snapshot) -> Option<Id> {
    match &s.root {
        Root::Node(n) => n.subtree,
        Root::Volume(_) => None,
    }
}

fn build(src: &Path, rng: &mut Rng) {
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::create_dir_all(src.join("c")).unwrap();
    std::fs::write(src.join("a/one"), rng.bytes(100)).unwrap();
    std::fs::write(src.join("a/b/two"), rng.compressible(5000)).unwrap();
    std::fs::write(src.join("big"), rng.mixed(400_000)).unwrap();
    std::fs::write(src.join("c/three"), rng.bytes(20_000)).unwrap();
    std::os::unix::fs::symlink("big", src.join("c/link")).unwrap();
    // Directories last touched long ago (atime and mtime), as in any tree not read today:
    // reading them moves their atime.
    for d in ["a/b", "a", "c", ""] {
        set_times(&src.join(d), 1_500_000_000_000_000_000);
    }
}

#[test]
fn unchanged_files_are_not_read_and_each_snapshot_is_a_synthetic_full() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut rng = Rng(11);
    build(&src, &mut rng);
    rt().block_on(async {
        let (mem, repo) = init_mem().await;
        let opts = BackupOptions::default();
        let mut stages: Vec<(BackupOutcome, std::collections::BTreeMap<_, Content>)> = Vec::new();

        let s1 = backup(&repo, &src, &opts).await;
        assert_eq!(s1.snapshot.summary.files, 4);
        assert_eq!(s1.snapshot.summary.files_read, 4);
        assert!(s1.snapshot.summary.blobs_added > 4);
        stages.push((s1.clone(), contents(&src)));

        // Nothing changed: nothing read, nothing added, the same root tree.
        let s2 = backup(&repo, &src, &opts).await;
        let sum = &s2.snapshot.summary;
        assert_eq!(s2.snapshot.parent, Some(s1.id));
        assert_eq!(sum.files, 4);
        assert_eq!(sum.files_read, 0, "unchanged files were read again");
        assert_eq!(sum.bytes_read, 0);
        assert_eq!(sum.blobs_added, 0, "an unchanged tree added blobs");
        assert_eq!(root_tree(&s2.snapshot), root_tree(&s1.snapshot));
        stages.push((s2.clone(), contents(&src)));

        // One small file changes: only it is read.
        std::fs::write(src.join("a/b/two"), rng.compressible(6000)).unwrap();
        let s3 = backup(&repo, &src, &opts).await;
        assert_eq!(s3.snapshot.parent, Some(s2.id));
        assert_eq!(s3.snapshot.summary.files_read, 1);
        assert_eq!(s3.snapshot.summary.bytes_read, 6000);
        assert_ne!(root_tree(&s3.snapshot), root_tree(&s2.snapshot));
        stages.push((s3.clone(), contents(&src)));

        // A few bytes change in the middle of the big file: it alone is read, and only the
        // chunks around the change (plus three trees) are new.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(src.join("big"))
            .unwrap();
        f.write_all_at(b"a small change in the middle", 200_000)
            .unwrap();
        drop(f);
        let s4 = backup(&repo, &src, &opts).await;
        let sum = &s4.snapshot.summary;
        assert_eq!(sum.files_read, 1);
        assert_eq!(sum.bytes_read, 400_000);
        assert!(
            sum.bytes_added < 3 * 65_536 + 16_384,
            "a 28-byte change added {} bytes (stored again what the repository had)",
            sum.bytes_added
        );
        assert!(sum.blobs_added <= 3 + 3, "{} blobs added", sum.blobs_added);
        stages.push((s4.clone(), contents(&src)));

        // `full`: every file is read again, but nothing new is stored.
        let mut full = BackupOptions::default();
        full.full = true;
        let s5 = backup(&repo, &src, &full).await;
        assert_eq!(s5.snapshot.summary.files_read, 4);
        assert_eq!(
            s5.snapshot.summary.bytes_read,
            400_000 + 6000 + 100 + 20_000
        );
        // No content is stored again; trees may be, as reading a file moves its atime,
        // which the nodes record.
        assert!(
            s5.snapshot.summary.bytes_added < 8192,
            "a full backup of stored data added {} bytes",
            s5.snapshot.summary.bytes_added
        );
        stages.push((s5, contents(&src)));

        // Each snapshot restores with every other snapshot deleted.
        let all = objects(&mem).await;
        for (i, (out, expect)) in stages.iter().enumerate() {
            let others: Vec<String> = stages
                .iter()
                .filter(|(o, _)| o.id != out.id)
                .map(|(o, _)| layout::object_path(layout::SNAPSHOTS, &o.id))
                .collect();
            let only: Vec<_> = all
                .iter()
                .filter(|(p, _)| !others.contains(p))
                .cloned()
                .collect();
            let storage = storage_from(&only);
            let repo = open(Arc::new(storage)).await;
            let snap = repo.load_snapshot(&out.id).await.unwrap();
            assert_eq!(
                repo.snapshots(&cairn_repo::SnapshotFilter::default())
                    .await
                    .unwrap()
                    .len(),
                1
            );
            let dst = tmp.path().join(format!("restore-{i}"));
            restore(&repo, &snap, &dst).await;
            assert!(
                contents(&dst) == *expect,
                "snapshot {i} does not restore on its own"
            );
        }
    });
}

/// A backup, then a restore of what it wrote, through one repository handle.
#[test]
fn restore_with_the_handle_that_made_the_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, &mut Rng(12));
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        // Loads the (empty) index before the backup, as a CLI session that lists first would.
        repo.index().await.unwrap();
        let out = backup(&repo, &src, &BackupOptions::default()).await;
        let dst = tmp.path().join("restored");
        restore(&repo, &out.snapshot, &dst).await;
        assert!(contents(&dst) == contents(&src));
    });
}

/// Two backups of the same data through one handle: the second stores nothing.
#[test]
fn second_backup_through_the_same_handle_dedupes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, &mut Rng(13));
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        backup(&repo, &src, &BackupOptions::default()).await;
        let mut opts = BackupOptions::default();
        opts.parent = cairn_repo::ParentChoice::None;
        let again = backup(&repo, &src, &opts).await;
        let sum = &again.snapshot.summary;
        assert_eq!(sum.files_read, 4);
        // At most the four trees are new (reading a file moves its atime, which nodes keep);
        // no content is stored twice.
        assert!(
            sum.blobs_added <= 4 && sum.bytes_added < 4096,
            "data already in the repository was stored again: {} blobs, {} bytes",
            sum.blobs_added,
            sum.bytes_added
        );
    });
}
