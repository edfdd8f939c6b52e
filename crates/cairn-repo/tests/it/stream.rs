//! Stream backups (standard input: a logical dump).

use std::io::Cursor;
use std::sync::Arc;

use cairn_repo::{BackupOptions, BackupOutcome, CancellationToken, Error, Repository};

use crate::support::{Rng, init_mem, no_progress, restore, rt};

async fn backup_stream(repo: &Arc<Repository>, data: Vec<u8>, name: &str) -> BackupOutcome {
    cairn_repo::backup_stream(
        repo,
        Cursor::new(data),
        name,
        &BackupOptions::default(),
        no_progress(),
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

#[test]
fn stream_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(31);
    let data = rng.mixed(700_000);
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        let s = backup_stream(&repo, data.clone(), "db.sql").await;
        assert_eq!(s.snapshot.summary.total_bytes, data.len() as u64);

        // To a file path that does not exist yet.
        let file = tmp.path().join("dump.sql");
        restore(&repo, &s.snapshot, &file).await;
        assert!(
            std::fs::read(&file).unwrap() == data,
            "restored stream differs"
        );

        // Into an existing directory: under the stream's name.
        let dir = tmp.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        restore(&repo, &s.snapshot, &dir).await;
        assert!(std::fs::read(dir.join("db.sql")).unwrap() == data);

        // Not over a non-empty file.
        let e = crate::support::try_restore(&repo, &s.snapshot, &file)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::TargetNotEmpty(_)), "{e:?}");

        // The same stream again: its parent is found, its chunks are all stored.
        let again = backup_stream(&repo, data.clone(), "db.sql").await;
        assert_eq!(again.snapshot.parent, Some(s.id));
        assert_eq!(again.snapshot.summary.blobs_added, 0);

        // An empty stream.
        let empty = backup_stream(&repo, Vec::new(), "empty").await;
        let file = tmp.path().join("empty.out");
        restore(&repo, &empty.snapshot, &file).await;
        assert_eq!(std::fs::read(&file).unwrap(), b"");

        // Names that cannot be files.
        for bad in ["", "a/b", ".", ".."] {
            let e = cairn_repo::backup_stream(
                &repo,
                Cursor::new(b"x".to_vec()),
                bad,
                &BackupOptions::default(),
                no_progress(),
                CancellationToken::new(),
            )
            .await
            .unwrap_err();
            assert!(matches!(e, Error::InvalidInput(_)), "{bad:?}: {e:?}");
        }
    });
}

/// `restore` accepts an existing empty file as the target of a single file (only a non-empty
/// one needs `overwrite`), so the restore must then fill it.
#[test]
fn stream_restores_onto_an_existing_empty_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Rng(32).bytes(50_000);
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        let s = backup_stream(&repo, data.clone(), "db.sql").await;
        let target = tmp.path().join("exists-empty");
        std::fs::write(&target, b"").unwrap();
        let o = crate::support::try_restore(&repo, &s.snapshot, &target)
            .await
            .unwrap();
        assert!(
            o.errors.is_empty(),
            "onto an existing empty file: {:#?}",
            o.errors
        );
        assert!(std::fs::read(&target).unwrap() == data);
    });
}
