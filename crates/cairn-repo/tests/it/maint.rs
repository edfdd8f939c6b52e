//! Maintenance: the damage matrix for `check`, prune freeing space and keeping what
//! snapshots use, forget, repair index, diff.

use std::sync::Arc;

use cairn_repo::{
    CancellationToken, CheckOptions, KdfParams, KeepRules, PruneOptions, Repository,
    SnapshotFilter, VolumeBackupOptions,
};
use cairn_storage::{MemoryStorage, Storage};

use crate::support::*;

const PASS2: &[u8] = b"second passphrase";

async fn fixture() -> (MemoryStorage, Arc<Repository>, tempfile::TempDir) {
    let (mem, repo) = init_mem().await;
    repo.add_key(PASS2, KdfParams::insecure_for_tests())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let mut rng = Rng(7);
    std::fs::write(src.join("a"), rng.bytes(200_000)).unwrap();
    std::fs::write(src.join("sub/b"), rng.compressible(100_000)).unwrap();
    backup(&repo, &src, &cairn_repo::BackupOptions::default()).await;
    let img = dir.path().join("vol.img");
    std::fs::write(&img, rng.bytes(64 * 1024)).unwrap();
    cairn_repo::backup_volume(
        &repo,
        &img,
        &VolumeBackupOptions::new(cairn_repo::BackupOptions::default()),
        no_progress(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    (mem, repo, dir)
}

async fn open_any(mem: &MemoryStorage) -> cairn_repo::Result<Arc<Repository>> {
    let st: cairn_storage::DynStorage = Arc::new(mem.clone());
    match Repository::open(st.clone(), PASS).await {
        Ok(r) => Ok(Arc::new(r)),
        Err(_) => Repository::open(st, PASS2).await.map(Arc::new),
    }
}

/// Issue 6: flip a byte in, truncate, and remove every stored object; `check --read-data`
/// reports each (or opening fails with an error naming the object), and names what is
/// affected where something is.
#[test]
fn damage_matrix() {
    rt().block_on(async {
        let (mem, _repo, _dir) = fixture().await;
        let objects = objects(&mem).await;
        let mut cases = 0;
        for (path, bytes) in &objects {
            if path.starts_with("locks/") {
                continue;
            }
            for damage in ["flip", "truncate", "remove"] {
                let m = storage_from(&objects);
                match damage {
                    "flip" => {
                        let mut b = bytes.to_vec();
                        let i = b.len() / 2;
                        b[i] ^= 0x01;
                        m.insert(path.clone(), b.into());
                    }
                    "truncate" => m.insert(path.clone(), bytes.slice(..bytes.len() / 2)),
                    _ => m.delete(path).await.unwrap(),
                }
                cases += 1;
                let what = format!("{damage} {path}");
                // Removing a snapshot or a key is what forget and `key remove` do: nothing
                // records that they existed. Removing the sealed config copy is a warning.
                let undetectable = damage == "remove"
                    && (path.starts_with("snapshots/") || path.starts_with("keys/"));
                let repo = match open_any(&m).await {
                    Ok(r) => r,
                    Err(e) => {
                        assert!(
                            path == "config" && damage == "remove",
                            "{what}: open failed: {e}"
                        );
                        continue;
                    }
                };
                let mut opts = CheckOptions::default();
                opts.read_data = true;
                let r = cairn_repo::check(&repo, &opts).await.unwrap();
                if undetectable {
                    continue;
                }
                if path == "config.sealed" && damage == "remove" {
                    assert!(
                        !r.is_damaged() && r.warnings.iter().any(|w| w.contains("config.sealed")),
                        "{what}: {r:#?}"
                    );
                    continue;
                }
                assert!(r.is_damaged(), "{what}: check found nothing: {r:#?}");
                let name = path.rsplit('/').next().unwrap();
                let short = &name[..name.len().min(8)];
                assert!(
                    r.problems.iter().any(|p| p.object.contains(short)
                        || p.message.contains(short)
                        || (path.starts_with("index/") && p.object.starts_with("blob"))),
                    "{what}: the problem does not name the object: {:#?}",
                    r.problems
                );
                // Losing a snapshot manifest, an index file or a whole pack affects content.
                if path.starts_with("snapshots/")
                    || path.starts_with("index/")
                    || (path.starts_with("data/") && damage == "remove")
                {
                    assert!(
                        !r.affected.is_empty(),
                        "{what}: nothing named as affected: {r:#?}"
                    );
                }
            }
        }
        assert!(cases >= 30, "only {cases} cases");
    });
}

#[test]
fn prune_frees_space_and_keeps_what_snapshots_use() {
    rt().block_on(async {
        let (mem, repo) = init_mem().await;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let mut rng = Rng(11);
        let mut last = None;
        for i in 0..4 {
            std::fs::write(src.join("f"), rng.bytes(300_000 + i)).unwrap();
            last = Some(backup(&repo, &src, &cairn_repo::BackupOptions::default()).await);
        }
        let size = |m: &MemoryStorage| -> usize {
            m.paths().iter().filter(|p| p.starts_with("data/")).count()
        };
        let before = size(&mem);
        let mut rules = KeepRules::default();
        rules.last = 1;
        let entries = cairn_repo::forget(
            &repo,
            &SnapshotFilter::default(),
            &rules,
            &jiff::tz::TimeZone::UTC,
            false,
        )
        .await
        .unwrap();
        assert_eq!(entries.iter().filter(|e| !e.decision.keep).count(), 3);
        let mut opts = PruneOptions::default();
        opts.margin = std::time::Duration::ZERO;
        let first = cairn_repo::prune(&repo, &opts).await.unwrap();
        assert_eq!(first.deleted_packs, 0, "the first run only marks");
        assert!(first.marked_packs > 0);
        let second = cairn_repo::prune(&repo, &opts).await.unwrap();
        assert!(
            second.deleted_packs > 0 && second.freed_bytes > 0,
            "{second:?}"
        );
        assert!(size(&mem) < before);
        let mut c = CheckOptions::default();
        c.read_data = true;
        let r = cairn_repo::check(&repo, &c).await.unwrap();
        assert!(!r.is_damaged(), "{r:#?}");
        let last = last.unwrap();
        let out = dir.path().join("out");
        restore(&repo, &last.snapshot, &out).await;
        assert_eq!(
            std::fs::read(out.join("f")).unwrap(),
            std::fs::read(src.join("f")).unwrap()
        );
        // repair index rebuilds an index that restores the same.
        let rep = cairn_repo::repair_index(&repo).await.unwrap();
        assert!(rep.unreadable.is_empty() && rep.packs > 0);
        let r = cairn_repo::check(&repo, &c).await.unwrap();
        assert!(!r.is_damaged(), "{r:#?}");
    });
}

/// A backup whose index view predates a mark may reuse a marked blob; the sweep must wait
/// for its lock, and un-mark the pack once its snapshot references it.
#[test]
fn sweep_waits_for_older_locks_and_unmarks_resurrected_packs() {
    rt().block_on(async {
        let (mem, repo) = init_mem().await;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("f"), Rng(3).bytes(100_000)).unwrap();
        let first = backup(&repo, &src, &cairn_repo::BackupOptions::default()).await;
        // An "old" backup holds a lock taken before the packs are marked.
        let old_lock = repo
            .lock(false, "backup", repo.lock_options())
            .await
            .unwrap();
        mem.delete(&format!("snapshots/{}", first.id.to_hex()))
            .await
            .unwrap();
        let mut opts = PruneOptions::default();
        opts.margin = std::time::Duration::ZERO;
        let r = cairn_repo::prune(&repo, &opts).await.unwrap();
        assert!(r.marked_packs > 0);
        let r = cairn_repo::prune(&repo, &opts).await.unwrap();
        assert_eq!(r.deleted_packs, 0, "the older lock defers the sweep: {r:?}");
        assert!(!r.deferred.is_empty());
        // The old backup commits a snapshot that references the marked blobs again.
        repo.save_snapshot(&first.snapshot).await.unwrap();
        old_lock.release().await;
        let r = cairn_repo::prune(&repo, &opts).await.unwrap();
        assert_eq!(r.deleted_packs, 0, "{r:?}");
        assert!(r.unmarked_packs > 0, "{r:?}");
        let out = dir.path().join("out");
        restore(&repo, &first.snapshot, &out).await;
        assert_eq!(
            std::fs::read(out.join("f")).unwrap(),
            std::fs::read(src.join("f")).unwrap()
        );
    });
}
