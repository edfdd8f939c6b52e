//! Crash consistency: a write that fails at any point of a backup leaves the repository as it
//! was (no snapshot), earlier snapshots restore bit-identically, and the next backup works.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cairn_repo::format::Id;
use cairn_repo::{BackupOptions, Repository};
use cairn_storage::{ErrorKind, MemoryStorage};
use cairn_testkit::FaultStorage;

use crate::support::{
    Content, Rng, backup, contents, init_mem, objects, open, restore, rt, snapshot_ids,
    storage_from, try_backup,
};

struct Base {
    objects: Vec<(String, Bytes)>,
    first: Id,
    first_contents: BTreeMap<PathBuf, Content>,
}

async fn restore_matches(
    repo: &Arc<Repository>,
    id: &Id,
    want: &BTreeMap<PathBuf, Content>,
    at: &Path,
) {
    let snap = repo.load_snapshot(id).await.unwrap();
    restore(repo, &snap, at).await;
    assert!(
        contents(at) == *want,
        "snapshot {} restores differently",
        id.short()
    );
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Only the Nth write fails (an error the backup must not survive silently).
    Nth,
    /// The Nth and every later write fail (the process or the storage died there).
    From,
}

#[test]
fn a_failed_write_at_any_point_leaves_the_repository_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut rng = Rng(61);
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a"), rng.bytes(300_000)).unwrap();
    std::fs::write(src.join("d/b"), rng.mixed(200_000)).unwrap();
    let rt = rt();
    let base = rt.block_on(async {
        let (mem, repo) = init_mem().await;
        let s = backup(&repo, &src, &BackupOptions::default()).await;
        Base {
            objects: objects(&mem).await,
            first: s.id,
            first_contents: contents(&src),
        }
    });
    // The second backup: a changed file and ~2.5 MiB of new data (several packs).
    std::fs::write(src.join("d/b"), rng.mixed(210_000)).unwrap();
    std::fs::write(src.join("new"), rng.bytes(2_500_000)).unwrap();
    std::fs::write(src.join("d/small"), b"small").unwrap();
    let second_contents = contents(&src);

    // How many writes the second backup makes without faults.
    let writes = rt.block_on(async {
        let fs = FaultStorage::new(storage_from(&base.objects));
        let repo = open(Arc::new(fs.clone())).await;
        backup(&repo, &src, &BackupOptions::default()).await;
        fs.writes()
    });
    assert!(
        writes >= 4,
        "only {writes} writes: want several packs, an index, a snapshot"
    );

    for mode in [Mode::Nth, Mode::From] {
        for n in 1..=writes {
            let ctx = format!("{mode:?} write {n} of {writes}");
            rt.block_on(async {
                let mem: MemoryStorage = storage_from(&base.objects);
                let fs = FaultStorage::new(mem.clone());
                let repo = open(Arc::new(fs.clone())).await;
                match mode {
                    Mode::Nth => fs.fail_write(n, ErrorKind::Unexpected),
                    Mode::From => fs.fail_writes_from(n, ErrorKind::StorageFull),
                };
                let r = try_backup(&repo, &src, &BackupOptions::default()).await;
                assert!(r.is_err(), "{ctx}: the backup succeeded");
                assert_eq!(
                    snapshot_ids(&mem),
                    vec![base.first],
                    "{ctx}: a snapshot was written"
                );

                // The first snapshot restores as it was, from a fresh session.
                let fresh = open(Arc::new(mem.clone())).await;
                let at = tempfile::tempdir().unwrap();
                restore_matches(
                    &fresh,
                    &base.first,
                    &base.first_contents,
                    &at.path().join("r"),
                )
                .await;

                // The storage recovers: the next backup, through the same handle, succeeds
                // and restores (from a fresh session) to the new tree.
                fs.disarm();
                let s = try_backup(&repo, &src, &BackupOptions::default())
                    .await
                    .unwrap_or_else(|e| panic!("{ctx}: the next backup fails: {e}"));
                let fresh = open(Arc::new(mem.clone())).await;
                restore_matches(&fresh, &s.id, &second_contents, &at.path().join("s")).await;
                restore_matches(
                    &fresh,
                    &base.first,
                    &base.first_contents,
                    &at.path().join("t"),
                )
                .await;
            });
        }
    }
}
