//! Block volumes: images with random, compressible, zero and sparse regions.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use cairn_repo::{
    BackupOptions, CancellationToken, Error, Repository, RestoreOptions, VolumeBackupOptions,
};

use crate::support::{Rng, init_mem, is_sparse, no_progress, rt, try_restore_with};

const MIB: u64 = 1024 * 1024;
/// 12 MiB and a bit: not a multiple of the 4 KiB volume chunk, three and a bit 4 MiB leaves.
const SIZE: u64 = 12 * MIB + 1234;

/// Writes the image and returns its expected bytes. Layout (MiB):
/// `[0,1)` random, `[1,2)` compressible, `[2,3)` zeros written out, `[3,4)` random,
/// `[4,9)` a hole (leaf 1 entirely), `[9,10)` mixed, `[10,11)` hole, `[11,end)` random.
fn make_image(path: &Path, rng: &mut Rng) -> Vec<u8> {
    let mut expect = vec![0u8; SIZE as usize];
    let f = std::fs::File::create(path).unwrap();
    f.set_len(SIZE).unwrap();
    let mut put = |off: u64, data: Vec<u8>| {
        f.write_all_at(&data, off).unwrap();
        expect[off as usize..off as usize + data.len()].copy_from_slice(&data);
    };
    put(0, rng.bytes(MIB as usize));
    put(MIB, rng.compressible(MIB as usize));
    put(2 * MIB, vec![0; MIB as usize]);
    put(3 * MIB, rng.bytes(MIB as usize));
    put(9 * MIB, rng.mixed(MIB as usize));
    put(11 * MIB, rng.bytes((SIZE - 11 * MIB) as usize));
    f.sync_all().unwrap();
    expect
}

async fn backup_volume(
    repo: &Arc<Repository>,
    path: &Path,
    base: BackupOptions,
) -> cairn_repo::BackupOutcome {
    cairn_repo::backup_volume(
        repo,
        path,
        &VolumeBackupOptions::new(base),
        no_progress(),
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// The first data offset at or after `pos` (`u64::MAX`: none).
fn next_data(path: &Path, pos: u64) -> u64 {
    let f = std::fs::File::open(path).unwrap();
    match rustix::fs::seek(&f, rustix::fs::SeekFrom::Data(pos)) {
        Ok(d) => d,
        Err(rustix::io::Errno::NXIO) => u64::MAX,
        Err(e) => panic!("SEEK_DATA: {e}"),
    }
}

#[test]
fn volume_round_trip_incremental_and_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("disk.img");
    let mut rng = Rng(21);
    let mut expect = make_image(&image, &mut rng);
    assert!(is_sparse(&std::fs::metadata(&image).unwrap()));
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        let s1 = backup_volume(&repo, &image, BackupOptions::default()).await;
        let nonzero = expect
            .chunks(4096)
            .filter(|c| c.iter().any(|&b| b != 0))
            .count() as u64;
        let sum = &s1.snapshot.summary;
        assert_eq!(sum.total_bytes, SIZE);
        assert!(
            sum.bytes_added >= nonzero * 4096 - 4096
                && sum.bytes_added < nonzero * 4096 + 4 * 64 * 1024,
            "{} bytes added for {nonzero} non-zero chunks",
            sum.bytes_added
        );

        // Restore to a new file: the same bytes, sparse where the zeros were.
        let out = tmp.path().join("restored.img");
        let mut verify = RestoreOptions::default();
        verify.verify = true;
        let o = try_restore_with(&repo, &s1.snapshot, &out, &verify)
            .await
            .unwrap();
        assert!(o.errors.is_empty(), "verify: {:#?}", o.errors);
        assert!(
            std::fs::read(&out).unwrap() == expect,
            "restored image differs"
        );
        let md = std::fs::metadata(&out).unwrap();
        assert_eq!(md.len(), SIZE);
        assert!(
            next_data(&out, 2 * MIB) >= 3 * MIB,
            "written zeros restored as data"
        );
        assert!(next_data(&out, 4 * MIB) >= 9 * MIB, "hole restored as data");
        assert!(
            next_data(&out, 10 * MIB) >= 11 * MIB,
            "hole restored as data"
        );

        // A few changed blocks: only those chunks (and the map leaves above them) are new.
        let changes = [100 * 4096, 2600 * 4096, 2601 * 4096 + 17, SIZE - 100];
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&image)
            .unwrap();
        for &off in &changes {
            let data = rng.bytes(64);
            f.write_all_at(&data, off).unwrap();
            expect[off as usize..off as usize + 64].copy_from_slice(&data);
        }
        drop(f);
        let s2 = backup_volume(&repo, &image, BackupOptions::default()).await;
        assert_eq!(s2.snapshot.parent, Some(s1.id));
        let sum = &s2.snapshot.summary;
        // Four changed chunks, in three leaves (0, 2 and the short last one).
        assert!(
            sum.bytes_added >= 4 * 4096 - 4096 + 64 && sum.bytes_added <= 4 * 4096 + 3 * 64 * 1024,
            "changing 4 chunks added {} bytes in {} blobs",
            sum.bytes_added,
            sum.blobs_added
        );
        assert!(sum.blobs_added <= 4 + 3, "{} blobs added", sum.blobs_added);

        // The new snapshot over the old restore: refused without overwrite, then allowed.
        let e = try_restore_with(&repo, &s2.snapshot, &out, &RestoreOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::TargetNotEmpty(ref p) if p == &out),
            "{e:?}"
        );
        let mut over = verify.clone();
        over.overwrite = true;
        let o = try_restore_with(&repo, &s2.snapshot, &out, &over)
            .await
            .unwrap();
        assert!(o.errors.is_empty(), "verify: {:#?}", o.errors);
        assert!(
            std::fs::read(&out).unwrap() == expect,
            "second snapshot differs"
        );

        // The first snapshot still restores as it was... to an existing empty file.
        let out1 = tmp.path().join("first.img");
        std::fs::write(&out1, b"").unwrap();
        let o = try_restore_with(&repo, &s1.snapshot, &out1, &verify)
            .await
            .unwrap();
        assert!(o.errors.is_empty());
        let first = std::fs::read(&out1).unwrap();
        assert_eq!(first.len() as u64, SIZE);
        assert!(first[100 * 4096..100 * 4096 + 64] != expect[100 * 4096..100 * 4096 + 64]);

        // `full` re-reads everything and finds it all stored.
        let mut full = BackupOptions::default();
        full.full = true;
        let s3 = backup_volume(&repo, &image, full).await;
        assert_eq!(s3.snapshot.summary.blobs_added, 0);
        // Everything but the 4 MiB piece that is a hole (leaf 1) is read again.
        assert_eq!(s3.snapshot.summary.bytes_read, SIZE - 4 * MIB);

        // A directory is not a volume target.
        let e = try_restore_with(&repo, &s3.snapshot, tmp.path(), &RestoreOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    });
}

/// A volume that is all holes, and one smaller than a chunk.
#[test]
fn empty_and_tiny_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let holes = tmp.path().join("holes.img");
    std::fs::File::create(&holes)
        .unwrap()
        .set_len(5 * MIB + 3)
        .unwrap();
    let tiny = tmp.path().join("tiny.img");
    std::fs::write(&tiny, b"tiny volume").unwrap();
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        for (img, name) in [(&holes, "holes"), (&tiny, "tiny")] {
            let s = backup_volume(&repo, img, BackupOptions::default()).await;
            let out = tmp.path().join(format!("{name}.out"));
            let mut verify = RestoreOptions::default();
            verify.verify = true;
            let o = try_restore_with(&repo, &s.snapshot, &out, &verify)
                .await
                .unwrap();
            assert!(o.errors.is_empty(), "{name}: {:#?}", o.errors);
            assert!(
                std::fs::read(&out).unwrap() == std::fs::read(img).unwrap(),
                "{name} differs"
            );
        }
        let md = std::fs::metadata(tmp.path().join("holes.out")).unwrap();
        assert_eq!(md.blocks(), 0, "an all-zero volume restored with data");
    });
}
