//! Catalog listings and snapshot references.

use std::io::Cursor;
use std::sync::Arc;

use cairn_repo::format::{NodeKind, Snapshot};
use cairn_repo::{
    BackupOptions, CancellationToken, Error, Repository, SnapshotFilter, VolumeBackupOptions,
    catalog,
};

use crate::support::{backup, init_mem, no_progress, rt};

async fn paths(
    repo: &Repository,
    snap: &Snapshot,
    path: &str,
    recursive: bool,
) -> cairn_repo::Result<Vec<String>> {
    Ok(catalog(repo, snap, "snap", path, recursive)
        .await?
        .into_iter()
        .map(|e| e.path)
        .collect())
}

#[test]
fn catalog_lists_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("a/c/empty-dir")).unwrap();
    std::fs::write(src.join("a/b.txt"), b"bee").unwrap();
    std::fs::write(src.join("a/c/d.bin"), vec![7u8; 12_345]).unwrap();
    std::fs::write(src.join("e.txt"), b"e").unwrap();
    std::fs::write(src.join("a/c/ünï code"), b"u").unwrap();
    std::os::unix::fs::symlink("e.txt", src.join("link")).unwrap();
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        let out = backup(&repo, &src, &BackupOptions::default()).await;
        let s = &out.snapshot;
        assert_eq!(
            paths(&repo, s, "", false).await.unwrap(),
            ["a", "e.txt", "link"]
        );
        assert_eq!(
            paths(&repo, s, "", true).await.unwrap(),
            [
                "a",
                "a/b.txt",
                "a/c",
                "a/c/d.bin",
                "a/c/empty-dir",
                "a/c/ünï code",
                "e.txt",
                "link"
            ]
        );
        assert_eq!(
            paths(&repo, s, "a", false).await.unwrap(),
            ["a/b.txt", "a/c"]
        );
        assert_eq!(
            paths(&repo, s, "/a/c/", true).await.unwrap(),
            ["a/c/d.bin", "a/c/empty-dir", "a/c/ünï code"]
        );
        assert!(
            paths(&repo, s, "a/c/empty-dir", true)
                .await
                .unwrap()
                .is_empty()
        );

        let one = catalog(&repo, s, "snap", "a/c/d.bin", false).await.unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].path, "a/c/d.bin");
        assert_eq!(one[0].node.kind, NodeKind::File);
        assert_eq!(one[0].node.size, 12_345);
        let all = catalog(&repo, s, "snap", "", true).await.unwrap();
        let link = all.iter().find(|e| e.path == "link").unwrap();
        assert_eq!(link.node.kind, NodeKind::Symlink);
        assert_eq!(link.node.link_target, b"e.txt");
        assert_eq!(
            all.iter().find(|e| e.path == "a/c").unwrap().node.kind,
            NodeKind::Dir
        );

        for missing in ["nope", "a/nope", "e.txt/x", "a/b.txt/c"] {
            let e = paths(&repo, s, missing, false).await.unwrap_err();
            assert!(
                matches!(e, Error::NoSuchPath { ref path, .. } if path == missing),
                "{missing}: {e:?}"
            );
        }

        // A volume snapshot has no files.
        let img = tmp.path().join("img");
        std::fs::write(&img, vec![1u8; 10_000]).unwrap();
        let vol = cairn_repo::backup_volume(
            &repo,
            &img,
            &VolumeBackupOptions::default(),
            no_progress(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let e = paths(&repo, &vol.snapshot, "", false).await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    });
}

#[test]
fn snapshot_references() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), b"f").unwrap();
    rt().block_on(async {
        let (_mem, repo) = init_mem().await;
        let any = SnapshotFilter::default();
        let e = repo.find_snapshot("latest", &any).await.unwrap_err();
        assert!(matches!(e, Error::NoSuchSnapshot(_)), "{e:?}");

        let mut tagged = BackupOptions::default();
        tagged.tags = vec!["t1".into()];
        let s1 = backup(&repo, &src, &tagged).await;
        let s2 = cairn_repo::backup_stream(
            &Arc::clone(&repo),
            Cursor::new(b"stream".to_vec()),
            "s",
            &BackupOptions::default(),
            no_progress(),
            CancellationToken::new(),
        )
        .await
        .unwrap();

        assert_eq!(repo.find_snapshot("latest", &any).await.unwrap().0, s2.id);
        let mut f = SnapshotFilter::default();
        f.tags = vec!["t1".into()];
        assert_eq!(repo.find_snapshot("latest", &f).await.unwrap().0, s1.id);
        f.tags = vec!["t2".into()];
        assert!(matches!(
            repo.find_snapshot("latest", &f).await.unwrap_err(),
            Error::NoSuchSnapshot(_)
        ));

        let hex = s1.id.to_hex();
        for r in [
            hex.clone(),
            hex[..8].to_string(),
            hex[..8].to_ascii_uppercase(),
        ] {
            let (id, snap) = repo.find_snapshot(&r, &any).await.unwrap();
            assert_eq!(id, s1.id, "{r}");
            assert_eq!(snap, s1.snapshot);
        }
        // A prefix that matches neither, and references that are no ids at all.
        let (h1, h2) = (hex.as_bytes()[0], s2.id.to_hex().as_bytes()[0]);
        let unused = b"0123456789abcdef"
            .iter()
            .find(|&&c| c != h1 && c != h2)
            .map(|&c| (c as char).to_string())
            .unwrap();
        for r in [
            unused.as_str(),
            "",
            "not-hex",
            "latest!",
            &format!("{hex}0"),
        ] {
            let e = repo.find_snapshot(r, &any).await.unwrap_err();
            assert!(matches!(e, Error::NoSuchSnapshot(_)), "{r:?}: {e:?}");
        }

        // Copies with other tags until two ids share their first digit: that digit is ambiguous.
        let mut ids = vec![s1.id, s2.id];
        let clash = loop {
            if let Some(c) = ids.iter().enumerate().find_map(|(i, a)| {
                ids[i + 1..]
                    .iter()
                    .any(|b| a.to_hex()[..1] == b.to_hex()[..1])
                    .then(|| a.to_hex()[..1].to_string())
            }) {
                break c;
            }
            let mut copy = s1.snapshot.clone();
            copy.tags = vec![format!("copy{}", ids.len())];
            ids.push(repo.save_snapshot(&copy).await.unwrap());
            assert!(ids.len() <= 17);
        };
        let e = repo.find_snapshot(&clash, &any).await.unwrap_err();
        assert!(matches!(e, Error::AmbiguousSnapshot(_)), "{e:?}");
        assert_eq!(repo.snapshots(&any).await.unwrap().len(), ids.len());
    });
}
