//! `copy_snapshots`: trees, small-file bundles, volumes (with patched chunks) and streams copied
//! to a repository with another passphrase restore bit for bit there, alone; a second copy
//! uploads nothing; a damaged source blob stops the copy without a snapshot.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use cairn_repo::format::{BlockList, BlockRange, layout};

use cairn_repo::{
    BackupOptions, BlockSelection, Copied, InitOptions, Repository, RestoreOptions,
    VolumeBackupOptions, copy_snapshots,
};
use cairn_storage::MemoryStorage;
use tokio_util::sync::CancellationToken;

use crate::support::{
    Rng, backup, compare_trees, init_options, no_progress, restore, rt, try_restore_with,
};

async fn target() -> (MemoryStorage, Arc<Repository>) {
    let mem = MemoryStorage::new();
    let mut o: InitOptions = init_options();
    // Another chunk size: copies keep the source's chunks and volume layout.
    o.volume_chunk_size = 8192;
    let repo = Repository::init(Arc::new(mem.clone()), b"another passphrase", &o)
        .await
        .unwrap();
    (mem, Arc::new(repo))
}

fn build(src: &Path, rng: &mut Rng) {
    std::fs::create_dir_all(src.join("d/e")).unwrap();
    for i in 0..40 {
        std::fs::write(src.join(format!("d/small-{i}")), rng.bytes(300 + i * 10)).unwrap();
    }
    std::fs::write(src.join("d/e/big"), rng.mixed(300_000)).unwrap();
    crate::support::write_sparse(&src.join("sparse"), 1 << 20, 512 * 1024, &rng.bytes(5000));
}

async fn restore_volume(
    repo: &Arc<Repository>,
    s: &cairn_repo::format::Snapshot,
    out: &Path,
) -> Vec<u8> {
    let mut o = RestoreOptions::default();
    o.verify = true;
    let r = try_restore_with(repo, s, out, &o).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    std::fs::read(out).unwrap()
}

#[test]
fn copies_restore_alone_in_the_target_and_a_second_copy_uploads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    let mut rng = Rng(41);
    build(&src_dir, &mut rng);
    let image = tmp.path().join("vol.img");
    let mut vol = rng.mixed(256 * 1024);
    std::fs::write(&image, &vol).unwrap();
    rt().block_on(async {
        let (_smem, src) = crate::support::init_mem().await;
        let t1 = backup(&src, &src_dir, &BackupOptions::default()).await;
        std::fs::write(src_dir.join("d/small-3"), b"changed").unwrap();
        let t2 = backup(&src, &src_dir, &BackupOptions::default()).await;
        let vopts = VolumeBackupOptions::new(BackupOptions::default());
        let v1 = cairn_repo::backup_volume(
            &src,
            &image,
            &vopts,
            no_progress(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        // A changed-block incremental: patched chunks.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&image)
            .unwrap();
        f.write_all_at(b"0123456789", 10_000).unwrap();
        vol[10_000..10_010].copy_from_slice(b"0123456789");
        let mut vo = VolumeBackupOptions::new(BackupOptions::default());
        vo.selection = Some(BlockSelection::Changed(BlockList {
            capacity: None,
            ranges: vec![BlockRange {
                offset: 10_000,
                len: 10,
            }],
        }));
        let v2 =
            cairn_repo::backup_volume(&src, &image, &vo, no_progress(), CancellationToken::new())
                .await
                .unwrap();
        let dump = rng.mixed(100_000);
        let s1 = cairn_repo::backup_stream(
            &src,
            std::io::Cursor::new(dump.clone()),
            "dump.sql",
            &BackupOptions::default(),
            no_progress(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let ids = [t1.id, t2.id, v1.id, v2.id, s1.id];

        let (dmem, dst) = target().await;
        let out = copy_snapshots(&src, &dst, &ids, no_progress(), CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(out.snapshots.len(), 5);
        assert!(
            out.snapshots
                .iter()
                .all(|(_, c)| matches!(c, Copied::New(_)))
        );
        assert!(out.blobs_added > 0);
        // Shared content is uploaded once: the second tree snapshot adds little.
        let first_bytes = out.bytes_added;

        // The target alone: reopen it from its storage with its own passphrase.
        let alone = Arc::new(
            Repository::open(Arc::new(dmem.clone()), b"another passphrase")
                .await
                .unwrap(),
        );
        let copied = alone
            .snapshots(&cairn_repo::SnapshotFilter::default())
            .await
            .unwrap();
        assert_eq!(copied.len(), 5);
        let by_time = |t| copied.iter().find(|(_, s)| s.time == t).unwrap().clone();
        let (_, ct2) = by_time(t2.snapshot.time);
        assert_eq!(ct2.source, t2.snapshot.source);
        assert_eq!(ct2.summary, t2.snapshot.summary);
        // The parent is the copy of the source's parent.
        let (ct1_id, _) = by_time(t1.snapshot.time);
        assert_eq!(ct2.parent, Some(ct1_id));
        let r = tmp.path().join("r-t2");
        restore(&alone, &ct2, &r).await;
        assert_eq!(compare_trees(&src_dir, &r), Vec::<String>::new());
        let (_, cv2) = by_time(v2.snapshot.time);
        assert_eq!(
            restore_volume(&alone, &cv2, &tmp.path().join("v2.img")).await,
            vol
        );
        let (_, cs1) = by_time(s1.snapshot.time);
        let r = tmp.path().join("dump.sql");
        restore(&alone, &cs1, &r).await;
        assert!(std::fs::read(&r).unwrap() == dump);

        // Again: everything is present, nothing is uploaded.
        let before = dmem.paths().len();
        let again = copy_snapshots(&src, &dst, &ids, no_progress(), CancellationToken::new())
            .await
            .unwrap();
        assert!(
            again
                .snapshots
                .iter()
                .all(|(_, c)| matches!(c, Copied::Present(_)))
        );
        assert_eq!(again.blobs_added, 0);
        assert_eq!(dmem.paths().len(), before);
        assert!(first_bytes > 0);
    });
}

#[test]
fn a_damaged_source_blob_stops_the_copy_and_writes_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    let mut rng = Rng(42);
    build(&src_dir, &mut rng);
    rt().block_on(async {
        let (smem, src) = crate::support::init_mem().await;
        let t1 = backup(&src, &src_dir, &BackupOptions::default()).await;
        // Flip a byte in the middle of every data pack.
        for p in smem.paths() {
            if p.starts_with("data/") {
                // Inside the first blob of the pack (packs are far longer).
                smem.corrupt(&p, 100).unwrap();
            }
        }
        let (dmem, dst) = target().await;
        let e = copy_snapshots(
            &src,
            &dst,
            &[t1.id],
            no_progress(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(e.is_corruption(), "{e}");
        assert!(
            dmem.paths()
                .iter()
                .all(|p| !p.starts_with(layout::SNAPSHOTS)),
            "no snapshot was written"
        );
    });
}
