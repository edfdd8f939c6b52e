//! Immutability (issue 4): a backup with `retain_until` locks its snapshot and every object
//! it needs on a store with object lock; forget, prune and key removal leave them alone. The
//! store is `MemoryStorage::with_object_lock`, which refuses to delete or overwrite a
//! locked object, so a command that tried would fail these tests.

use std::sync::Arc;

use cairn_repo::format::layout;
use cairn_repo::{
    BackupOptions, CheckOptions, Error, KdfParams, KeepRules, PruneOptions, Repository,
    SnapshotFilter,
};
use cairn_storage::{ErrorKind, MemoryStorage, Storage};

use crate::support::*;

async fn init_locking() -> (MemoryStorage, Arc<Repository>) {
    let mem = MemoryStorage::with_object_lock();
    let repo = Repository::init(Arc::new(mem.clone()), PASS, &init_options())
        .await
        .unwrap();
    (mem, Arc::new(repo))
}

fn in_days(days: i64) -> jiff::Timestamp {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * days))
        .unwrap()
}

fn locked(until: jiff::Timestamp) -> BackupOptions {
    let mut o = BackupOptions::default();
    o.retain_until = Some(until);
    o
}

#[test]
fn a_locked_backup_locks_everything_it_needs_and_nothing_deletes_it() {
    rt().block_on(async {
        let (mem, repo) = init_locking().await;
        let extra = repo
            .add_key(b"second", KdfParams::insecure_for_tests())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let mut rng = Rng(5);
        let content = rng.bytes(400_000);
        std::fs::write(src.join("f"), &content).unwrap();
        let until = in_days(30);
        let kept = backup(&repo, &src, &locked(until)).await;
        assert_eq!(kept.snapshot.retain_until, Some(until));
        assert_eq!(kept.snapshot.version, 2);

        // Every pack, the snapshot, the config and every key are locked at least that long.
        let mut lockable: Vec<String> = mem
            .paths()
            .into_iter()
            .filter(|p| {
                p.starts_with("data/")
                    || p.starts_with("keys/")
                    || p.starts_with("snapshots/")
                    || p == layout::CONFIG
            })
            .collect();
        lockable.sort();
        assert!(lockable.iter().any(|p| p.starts_with("data/")));
        for p in &lockable {
            let t = mem.retained_until(p).await.unwrap();
            assert!(t.is_some_and(|t| t >= until), "{p} locked until {t:?}");
        }
        // Index and lock files are not locked: prune and repair may rewrite them.
        for p in mem.paths().iter().filter(|p| p.starts_with("index/")) {
            assert_eq!(mem.retained_until(p).await.unwrap(), None, "{p}");
        }

        // Three unlocked backups after it, each with new data.
        for i in 0..3 {
            std::fs::write(src.join("f"), rng.bytes(300_000 + i)).unwrap();
            backup(&repo, &src, &BackupOptions::default()).await;
        }
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
        let locked_entry = entries.iter().find(|e| e.id == kept.id).unwrap();
        assert!(locked_entry.decision.keep);
        assert!(
            locked_entry
                .decision
                .reasons
                .iter()
                .any(|r| r.starts_with("locked until")),
            "{:?}",
            locked_entry.decision
        );
        assert_eq!(entries.iter().filter(|e| !e.decision.keep).count(), 2);

        // Prune twice (mark, then sweep): the memory store would refuse to delete a locked
        // pack, so success means prune never tried.
        let mut opts = PruneOptions::default();
        opts.margin = std::time::Duration::ZERO;
        opts.repack_unused = 0.0;
        let first = cairn_repo::prune(&repo, &opts).await.unwrap();
        assert_eq!(first.retained_snapshots, 1);
        assert!(first.retained_packs > 0);
        let second = cairn_repo::prune(&repo, &opts).await.unwrap();
        assert!(second.deleted_packs > 0, "{second:?}");

        let mut c = CheckOptions::default();
        c.read_data = true;
        let r = cairn_repo::check(&repo, &c).await.unwrap();
        assert!(!r.is_damaged(), "{r:#?}");
        let out = dir.path().join("out");
        restore(&repo, &kept.snapshot, &out).await;
        assert_eq!(std::fs::read(out.join("f")).unwrap(), content);

        // A locked key cannot be removed.
        let err = repo.remove_key(&extra.to_hex()).await.unwrap_err();
        assert!(matches!(err, Error::Retained(_)), "{err}");
        assert!(err.to_string().contains("locked"), "{err}");
        assert!(
            mem.paths()
                .contains(&layout::object_path(layout::KEYS, &extra))
        );
    });
}

#[test]
fn a_store_without_object_lock_refuses_before_writing_anything() {
    rt().block_on(async {
        let (mem, repo) = init_mem().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), Rng(1).bytes(100_000)).unwrap();
        let before = mem.paths();
        let err = try_backup(&repo, dir.path(), &locked(in_days(1)))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Storage(e) if e.kind() == ErrorKind::Unsupported),
            "{err}"
        );
        assert!(err.to_string().contains("object lock"), "{err}");
        assert_eq!(mem.paths(), before, "nothing may be written");
    });
}

#[test]
fn a_lock_in_the_past_is_refused() {
    rt().block_on(async {
        let (mem, repo) = init_locking().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"data").unwrap();
        let before = mem.paths();
        let err = try_backup(&repo, dir.path(), &locked(in_days(-1)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
        assert_eq!(mem.paths(), before);
    });
}

#[test]
fn locks_only_grow_and_shared_packs_keep_the_longest() {
    rt().block_on(async {
        let (mem, repo) = init_locking().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), Rng(3).bytes(200_000)).unwrap();
        let long = in_days(60);
        let mut o = locked(long);
        o.full = true;
        backup(&repo, dir.path(), &o).await;
        let first: Vec<String> = mem
            .paths()
            .into_iter()
            .filter(|p| p.starts_with("data/"))
            .collect();
        // The same data again with a shorter lock: the packs it shares keep the longer one,
        // and whatever it wrote anew has the shorter one.
        let short = in_days(10);
        let mut o = locked(short);
        o.full = true;
        backup(&repo, dir.path(), &o).await;
        for p in mem.paths().iter().filter(|p| p.starts_with("data/")) {
            let t = mem.retained_until(p).await.unwrap();
            let want = if first.contains(p) { long } else { short };
            assert!(t.is_some_and(|t| t >= want), "{p}: {t:?}");
        }
    });
}
