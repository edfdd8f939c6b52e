//! Volume backups from changed-block and allocated-block lists: patched chunks, compaction,
//! resize, rejected lists, and a property test that restore(incremental) == the new volume.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use cairn_repo::format::{BlockList, BlockRange};
use cairn_repo::{
    BackupOptions, BackupOutcome, BlockSelection, CancellationToken, Error, Repository,
    RestoreOptions, VolumeBackupOptions,
};
use cairn_storage::MemoryStorage;
use proptest::prelude::*;

use crate::support::{PASS, Rng, init_options, no_progress, rt, snapshot_ids, try_restore_with};

const KIB: u64 = 1024;

/// A memory repository with `chunk`-byte volume chunks.
async fn repo_with_chunk(chunk: u32) -> (MemoryStorage, Arc<Repository>) {
    let mem = MemoryStorage::new();
    let mut o = init_options();
    o.volume_chunk_size = chunk;
    let repo = Repository::init(Arc::new(mem.clone()), PASS, &o)
        .await
        .unwrap();
    (mem, Arc::new(repo))
}

async fn vbackup(
    repo: &Arc<Repository>,
    image: &Path,
    selection: Option<BlockSelection>,
    full_on_mismatch: bool,
) -> cairn_repo::Result<BackupOutcome> {
    let mut o = VolumeBackupOptions::new(BackupOptions::default());
    o.selection = selection;
    o.full_on_mismatch = full_on_mismatch;
    cairn_repo::backup_volume(repo, image, &o, no_progress(), CancellationToken::new()).await
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "callers pass it as the optional selection"
)]
fn changed(capacity: Option<u64>, ranges: &[(u64, u64)]) -> Option<BlockSelection> {
    Some(BlockSelection::Changed(list(capacity, ranges)))
}

fn list(capacity: Option<u64>, ranges: &[(u64, u64)]) -> BlockList {
    BlockList {
        capacity,
        ranges: ranges
            .iter()
            .map(|&(offset, len)| BlockRange { offset, len })
            .collect(),
    }
}

/// Restores `snap` to a fresh file (with --verify) and returns its bytes.
async fn restored(repo: &Arc<Repository>, b: &BackupOutcome, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!("r-{}", b.id.to_hex()));
    let mut o = RestoreOptions::default();
    o.verify = true;
    let r = try_restore_with(repo, &b.snapshot, &out, &o).await.unwrap();
    assert!(r.errors.is_empty(), "verify: {:?}", r.errors);
    std::fs::read(out).unwrap()
}

/// Writes `data` at `off` in both the image and its expected content.
fn put(image: &Path, expect: &mut [u8], off: u64, data: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(image).unwrap();
    f.write_all_at(data, off).unwrap();
    expect[off as usize..off as usize + data.len()].copy_from_slice(data);
}

fn new_image(path: &Path, size: u64, rng: &mut Rng) -> Vec<u8> {
    let mut expect = vec![0u8; size as usize];
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
    let data = rng.bytes(size as usize / 2);
    put(path, &mut expect, 0, &data);
    expect
}

/// A 4 KiB write in a 64 KiB chunk stores ~4 KiB: ten scattered writes read and store ten
/// 4 KiB patches and one leaf; the restore is the new volume and the source verifies.
#[test]
fn small_writes_store_patches_only() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("vol.img");
    let mut rng = Rng(3);
    let size = 4 << 20;
    let mut expect = new_image(&image, size, &mut rng);
    rt().block_on(async {
        let (_mem, repo) = repo_with_chunk(64 * 1024).await;
        vbackup(&repo, &image, None, false).await.unwrap();
        let mut ranges = Vec::new();
        for i in 0..10u64 {
            let off = i * 6 * 64 * KIB + 8 * KIB;
            put(&image, &mut expect, off, &rng.bytes(4096));
            ranges.push((off, 4096));
        }
        let s2 = vbackup(&repo, &image, changed(Some(size), &ranges), false)
            .await
            .unwrap();
        let sum = &s2.snapshot.summary;
        assert_eq!(sum.bytes_read, 10 * 4096, "read more than the list");
        assert_eq!(sum.blobs_added, 11, "10 patches and a leaf");
        assert!(
            sum.bytes_added < 10 * 4096 + 8 * KIB,
            "stored {} bytes for 40 KiB changed",
            sum.bytes_added
        );
        assert!(restored(&repo, &s2, tmp.path()).await == expect);
        let p = cairn_repo::verify_volume(
            &repo,
            &s2.snapshot,
            &image,
            no_progress(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert!(p.is_empty(), "{p:?}");

        // An incomplete list: the write it leaves out is missing from the snapshot, and
        // comparing the source with the snapshot says where.
        put(&image, &mut expect, 100 * KIB, &rng.bytes(4096));
        put(&image, &mut expect, 2 * 1024 * KIB, &rng.bytes(4096));
        let s3 = vbackup(&repo, &image, changed(None, &[(100 * KIB, 4096)]), false)
            .await
            .unwrap();
        let p = cairn_repo::verify_volume(
            &repo,
            &s3.snapshot,
            &image,
            no_progress(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            p,
            vec![format!(
                "chunk at offset {} differs from the snapshot",
                2 * 1024 * KIB
            )]
        );
    });
}

/// Patches accumulate on one base until they cover more than a quarter of the chunk; then
/// the chunk is stored whole again.
#[test]
fn patches_compact_past_a_quarter_chunk() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("vol.img");
    let mut rng = Rng(4);
    let size = 1 << 20;
    let mut expect = new_image(&image, size, &mut rng);
    rt().block_on(async {
        let (_mem, repo) = repo_with_chunk(64 * 1024).await;
        vbackup(&repo, &image, None, false).await.unwrap();
        let mut added = Vec::new();
        for i in 0..5u64 {
            let off = 64 * KIB + i * 8 * KIB;
            put(&image, &mut expect, off, &rng.bytes(4096));
            let s = vbackup(&repo, &image, changed(None, &[(off, 4096)]), false)
                .await
                .unwrap();
            assert!(restored(&repo, &s, tmp.path()).await == expect, "step {i}");
            added.push(s.snapshot.summary.bytes_added);
        }
        // Four 4 KiB patches (16 KiB, a quarter) stay patches; the fifth compacts.
        for (i, a) in added[..4].iter().enumerate() {
            assert!(*a < 8 * KIB, "step {i} stored {a} bytes");
        }
        assert!(added[4] >= 64 * KIB, "no compaction: {added:?}");
    });
}

/// Lists that do not fit are refused before anything is written; `full_on_mismatch` reads
/// the whole volume instead.
#[test]
fn inconsistent_lists_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("vol.img");
    let mut rng = Rng(5);
    let size = 1 << 20;
    let expect = new_image(&image, size, &mut rng);
    rt().block_on(async {
        let (mem, repo) = repo_with_chunk(64 * 1024).await;
        // No parent yet.
        let e = vbackup(&repo, &image, changed(None, &[(0, 4096)]), false)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput(m) if m.contains("parent")),
            "{e}"
        );
        assert!(snapshot_ids(&mem).is_empty());
        assert!(mem.paths().iter().all(|p| !p.starts_with("data/")));
        vbackup(&repo, &image, None, false).await.unwrap();
        for (sel, what) in [
            (changed(None, &[(size - 10, 11)]), "past the end"),
            (changed(None, &[(0, 8192), (4096, 4096)]), "overlap"),
            (changed(Some(size * 2), &[(0, 4096)]), "is for a volume of"),
            (
                Some(BlockSelection::Allocated(list(Some(size + 1), &[]))),
                "is for a volume of",
            ),
        ] {
            let before = snapshot_ids(&mem).len();
            let e = vbackup(&repo, &image, sel.clone(), false)
                .await
                .unwrap_err();
            assert!(
                matches!(&e, Error::InvalidInput(m) if m.contains(what)),
                "{what}: {e}"
            );
            assert_eq!(
                snapshot_ids(&mem).len(),
                before,
                "{what}: a snapshot was written"
            );
            let s = vbackup(&repo, &image, sel, true).await.unwrap();
            assert_eq!(s.snapshot.summary.bytes_read, size, "{what}");
            assert!(restored(&repo, &s, tmp.path()).await == expect);
        }
    });
}

/// An allocated-block list: unlisted space is not read (garbage there restores as zeros).
#[test]
fn allocated_list_skips_unallocated_space() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("vol.img");
    let mut rng = Rng(6);
    let size = 3 << 20;
    let mut expect = vec![0u8; size as usize];
    std::fs::File::create(&image)
        .unwrap()
        .set_len(size)
        .unwrap();
    put(&image, &mut expect, 0, &rng.bytes(100 * 1024));
    put(&image, &mut expect, 2 << 20, &rng.bytes(64 * 1024));
    // Stale bytes in "unallocated" space: not listed, so never read.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap();
    f.write_all_at(&rng.bytes(64 * 1024), 1 << 20).unwrap();
    rt().block_on(async {
        let (_mem, repo) = repo_with_chunk(64 * 1024).await;
        let sel =
            BlockSelection::Allocated(list(Some(size), &[(0, 100 * 1024), (2 << 20, 64 * 1024)]));
        let s = vbackup(&repo, &image, Some(sel), false).await.unwrap();
        assert_eq!(
            s.snapshot.summary.bytes_read,
            192 * KIB,
            "read only touched chunks"
        );
        assert!(restored(&repo, &s, tmp.path()).await == expect);
    });
}

/// Resize: a grown volume reads its new space; a plain list (no capacity) after a resize is
/// refused; a shrunk volume keeps its prefix.
#[test]
fn resized_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("vol.img");
    let mut rng = Rng(7);
    let size = (1 << 20) + 1000;
    let mut expect = new_image(&image, size, &mut rng);
    rt().block_on(async {
        let (_mem, repo) = repo_with_chunk(64 * 1024).await;
        vbackup(&repo, &image, None, false).await.unwrap();
        // Grow by 300 KiB and write into the new space and an old chunk.
        let grown = size + 300 * KIB;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&image)
            .unwrap()
            .set_len(grown)
            .unwrap();
        expect.resize(grown as usize, 0);
        put(&image, &mut expect, size + 5000, &rng.bytes(9000));
        put(&image, &mut expect, 4096, &rng.bytes(4096));
        let plain = changed(None, &[(4096, 4096), (size + 5000, 9000)]);
        let e = vbackup(&repo, &image, plain, false).await.unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput(m) if m.contains("resized")),
            "{e}"
        );
        // The CSI list names the new capacity but covers only the old part: the new space
        // is read anyway.
        let s = vbackup(&repo, &image, changed(Some(grown), &[(4096, 4096)]), false)
            .await
            .unwrap();
        assert!(restored(&repo, &s, tmp.path()).await == expect);
        // Shrink to a size inside a chunk.
        let small = 700 * KIB + 77;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&image)
            .unwrap()
            .set_len(small)
            .unwrap();
        expect.truncate(small as usize);
        put(&image, &mut expect, 8192, &rng.bytes(100));
        let s = vbackup(&repo, &image, changed(Some(small), &[(8192, 100)]), false)
            .await
            .unwrap();
        assert_eq!(s.snapshot.summary.total_bytes, small);
        assert!(restored(&repo, &s, tmp.path()).await == expect);
    });
}

/// `SinceImage` computes the list by comparing images; leaves without changes are reused
/// by id (a 100 MiB sparse volume spans two 64 MiB leaves at 64 KiB chunks).
#[test]
fn since_image_and_leaf_reuse() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("vol.img");
    let old = tmp.path().join("old.img");
    let mut rng = Rng(8);
    let size = 100 << 20;
    let mut expect = vec![0u8; size as usize];
    std::fs::File::create(&image)
        .unwrap()
        .set_len(size)
        .unwrap();
    put(&image, &mut expect, 1 << 20, &rng.bytes(200 * 1024));
    put(&image, &mut expect, 70 << 20, &rng.bytes(200 * 1024));
    rt().block_on(async {
        let (_mem, repo) = repo_with_chunk(64 * 1024).await;
        vbackup(&repo, &image, None, false).await.unwrap();
        std::fs::copy(&image, &old).unwrap();
        put(&image, &mut expect, (70 << 20) + 4096, &rng.bytes(4096));
        let l = cairn_repo::diff_images(&old, &image, &CancellationToken::new()).unwrap();
        assert_eq!(l.capacity, Some(size));
        assert_eq!(
            l.normalize(size).unwrap(),
            vec![BlockRange {
                offset: (70 << 20) + 4096,
                len: 4096
            }]
        );
        let s = vbackup(&repo, &image, Some(BlockSelection::SinceImage(old)), false)
            .await
            .unwrap();
        // One patch and one leaf (the other leaf is the parent's), one interior node at most.
        assert_eq!(s.snapshot.summary.bytes_read, 4096);
        assert!(
            s.snapshot.summary.blobs_added <= 2,
            "{:?}",
            s.snapshot.summary
        );
        assert!(restored(&repo, &s, tmp.path()).await == expect);
    });
}

#[derive(Debug, Clone)]
enum Step {
    Write { off: u64, len: u64, zero: bool },
    Resize(u64),
}

fn arb_steps() -> impl Strategy<Value = (u64, Vec<Vec<Step>>)> {
    let write = (0u64..1_000_000, 1u64..40_000, proptest::bool::weighted(0.2))
        .prop_map(|(off, len, zero)| Step::Write { off, len, zero });
    let step = prop_oneof![8 => write, 1 => (100_000u64..1_200_000).prop_map(Step::Resize)];
    (
        100_000u64..1_000_000,
        proptest::collection::vec(proptest::collection::vec(step, 1..12), 1..4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random volumes and random writes with their exact changed-block lists: every
    /// incremental restores to exactly the new volume.
    #[test]
    fn incremental_from_exact_lists_restores_the_new_volume((size, rounds) in arb_steps()) {
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("vol.img");
        let mut rng = Rng(size);
        let mut expect = new_image(&image, size, &mut rng);
        rt().block_on(async {
            let (_mem, repo) = repo_with_chunk(16 * 1024).await;
            vbackup(&repo, &image, None, false).await.unwrap();
            for round in rounds {
                let mut touched = vec![false; expect.len()];
                let mut resized = false;
                for s in round {
                    match s {
                        Step::Write { off, len, zero } => {
                            let cap = expect.len() as u64;
                            let off = off % cap;
                            let len = len.min(cap - off);
                            let data = if zero { vec![0; len as usize] } else { rng.bytes(len as usize) };
                            put(&image, &mut expect, off, &data);
                            touched[off as usize..(off + len) as usize].fill(true);
                        }
                        Step::Resize(n) => {
                            std::fs::OpenOptions::new().write(true).open(&image).unwrap().set_len(n).unwrap();
                            expect.resize(n as usize, 0);
                            // Grown space reads as zeros: changed, whatever the parent held
                            // there (a shrink then a grow within one round zeroes the middle).
                            touched.resize(n as usize, true);
                            resized = true;
                        }
                    }
                }
                // The exact list: runs of touched bytes.
                let mut ranges = Vec::new();
                let mut i = 0;
                while i < touched.len() {
                    if touched[i] {
                        let j = i + touched[i..].iter().take_while(|&&t| t).count();
                        ranges.push((i as u64, (j - i) as u64));
                        i = j;
                    } else {
                        i += 1;
                    }
                }
                let cap = expect.len() as u64;
                let sel = changed(resized.then_some(cap), &ranges);
                let s = vbackup(&repo, &image, sel, false).await.unwrap();
                assert!(restored(&repo, &s, tmp.path()).await == expect, "restore differs");
            }
        });
    }
}

/// Restore leaves holes at the file system's 4 KiB granularity, not the chunk's: a 64 KiB
/// chunk holding two data blocks around a zero block, and a patch landing in an all-zero
/// chunk, restore to exactly their data blocks (the chunk-sized writes before this allocated
/// 64 KiB for each).
#[test]
fn restore_keeps_zero_blocks_inside_chunks_as_holes() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp.path().join("disk.img");
    let size = 1024 * KIB;
    std::fs::File::create(&image)
        .unwrap()
        .set_len(size)
        .unwrap();
    let mut expect = vec![0u8; size as usize];
    let mut rng = Rng(77);
    put(&image, &mut expect, 0, &rng.bytes(4096));
    put(&image, &mut expect, 8 * KIB, &rng.bytes(4096));
    put(&image, &mut expect, 128 * KIB, &rng.bytes(64 * 1024));
    rt().block_on(async {
        let (_mem, repo) = repo_with_chunk(64 * 1024).await;
        vbackup(&repo, &image, None, false).await.unwrap();
        // A 4 KiB write into the all-zero chunk at 512 KiB, backed up from its list: a patch.
        put(&image, &mut expect, 516 * KIB, &rng.bytes(4096));
        let b = vbackup(
            &repo,
            &image,
            changed(Some(size), &[(516 * KIB, 4096)]),
            false,
        )
        .await
        .unwrap();
        let out = tmp.path().join("out.img");
        let r = try_restore_with(&repo, &b.snapshot, &out, &RestoreOptions::default())
            .await
            .unwrap();
        assert!(r.errors.is_empty());
        assert!(
            std::fs::read(&out).unwrap() == expect,
            "restored image differs"
        );
        let data_blocks = expect
            .chunks(4096)
            .filter(|c| c.iter().any(|&b| b != 0))
            .count() as u64;
        assert_eq!(data_blocks, 2 + 16 + 1);
        let allocated = std::fs::metadata(&out).unwrap().blocks() * 512;
        assert!(
            allocated <= data_blocks * 4096,
            "{allocated} bytes allocated for {data_blocks} data blocks"
        );
        assert_eq!(r.bytes, data_blocks * 4096, "bytes written");
    });
}
