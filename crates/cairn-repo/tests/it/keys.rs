//! Passphrases: wrong ones, adding, listing, removing and changing keys.

use std::io::Cursor;
use std::sync::Arc;

use cairn_repo::{BackupOptions, CancellationToken, Error, KdfParams, Repository};
use cairn_storage::{DynStorage, MemoryStorage};

use crate::support::{PASS, Rng, init_mem, no_progress, restore, rt};

fn dynamic(mem: &MemoryStorage) -> DynStorage {
    Arc::new(mem.clone())
}

async fn open_err(mem: &MemoryStorage, pass: &[u8]) -> Error {
    Repository::open(dynamic(mem), pass).await.unwrap_err()
}

#[test]
fn wrong_passphrase_is_refused() {
    rt().block_on(async {
        let (mem, _repo) = init_mem().await;
        for pass in [&b"wrong"[..], b"", b"correct horse battery stapl"] {
            let e = open_err(&mem, pass).await;
            assert!(matches!(e, Error::WrongPassphrase { .. }), "{e:?}");
        }
        assert!(Repository::open(dynamic(&mem), PASS).await.is_ok());
        // An empty storage is not a repository.
        let e = open_err(&MemoryStorage::new(), PASS).await;
        assert!(matches!(e, Error::NotARepository { .. }), "{e:?}");
        // A second init is refused.
        let e = Repository::init(dynamic(&mem), PASS, &crate::support::init_options())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::AlreadyInitialized { .. }), "{e:?}");
    });
}

#[test]
fn add_list_remove_and_change_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Rng(41).mixed(100_000);
    let kdf = KdfParams::insecure_for_tests();
    rt().block_on(async {
        let (mem, repo) = init_mem().await;
        let snap = cairn_repo::backup_stream(
            &repo,
            Cursor::new(data.clone()),
            "data",
            &BackupOptions::default(),
            no_progress(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let k1 = repo.key_id();

        // Add a second passphrase; both open, each marked current in its own session.
        let k2 = repo.add_key(b"second", kdf).await.unwrap();
        assert_ne!(k1, k2);
        let keys = repo.list_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().any(|k| k.id == k1 && k.current));
        assert!(keys.iter().any(|k| k.id == k2 && !k.current));
        let repo2 = Repository::open(dynamic(&mem), b"second").await.unwrap();
        assert_eq!(repo2.key_id(), k2);
        let keys = repo2.list_keys().await.unwrap();
        assert!(keys.iter().any(|k| k.id == k2 && k.current));

        // Removing: not the key in use, not an unknown or ambiguous prefix.
        let e = repo.remove_key(&k1.to_hex()).await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        let e = repo.remove_key("zz").await.unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
        let e = repo.remove_key("").await.unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput(ref m) if m.contains("ambiguous")),
            "{e:?}"
        );
        assert_eq!(repo.list_keys().await.unwrap().len(), 2);

        // The second session removes the first key by prefix: the first passphrase is gone.
        assert_eq!(repo2.remove_key(&k1.to_hex()[..10]).await.unwrap(), k1);
        let e = open_err(&mem, PASS).await;
        assert!(matches!(e, Error::WrongPassphrase { .. }), "{e:?}");

        // The first (stale) session may not remove the last key.
        let e = repo.remove_key(&k2.to_hex()).await.unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput(ref m) if m.contains("last")),
            "{e:?}"
        );
        assert_eq!(repo2.list_keys().await.unwrap().len(), 1);

        // Change the passphrase: the old one stops working, the new one works.
        let mut r = Repository::open(dynamic(&mem), b"second").await.unwrap();
        let k3 = r.change_passphrase(b"third", kdf).await.unwrap();
        assert_eq!(r.key_id(), k3);
        let keys = r.list_keys().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].id == k3 && keys[0].current);
        let e = open_err(&mem, b"second").await;
        assert!(matches!(e, Error::WrongPassphrase { .. }), "{e:?}");

        // The data is unchanged and opens with the new passphrase.
        let repo3 = Arc::new(Repository::open(dynamic(&mem), b"third").await.unwrap());
        let s = repo3.load_snapshot(&snap.id).await.unwrap();
        let out = tmp.path().join("out");
        restore(&repo3, &s, &out).await;
        assert!(std::fs::read(&out).unwrap() == data);
    });
}
