//! Key files: add, list, remove and change passphrases. The master key never changes, so no
//! data is re-encrypted.

use bytes::Bytes;
use cairn_crypto::{KdfParams, Kek, MasterKey};
use cairn_format::{Id, KdfSpec, KeyFile, layout};
use cairn_storage::DynStorage;
use futures::StreamExt;

use crate::{Error, Repository, Result};

fn host_and_user() -> (String, String) {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid{}", rustix::process::getuid().as_raw()));
    (host, user)
}

/// The host name and user name recorded in snapshots, keys and locks.
pub fn local_identity() -> (String, String) {
    host_and_user()
}

pub(crate) async fn write_key(
    storage: &DynStorage,
    key: &MasterKey,
    passphrase: &[u8],
    kdf: KdfParams,
) -> Result<Id> {
    let mut salt = [0u8; 16];
    cairn_crypto::random_bytes(&mut salt).map_err(|e| Error::Internal(e.to_string()))?;
    // Argon2 is CPU-bound for a quarter second: keep it off the async workers.
    let key = key.clone();
    let pass = zeroize::Zeroizing::new(passphrase.to_vec());
    let wrapped = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
        let kek = Kek::derive(&pass, &salt, kdf).map_err(|e| Error::InvalidInput(e.to_string()))?;
        kek.wrap(&key).map_err(|e| Error::Internal(e.to_string()))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    let (hostname, username) = host_and_user();
    let file = KeyFile {
        version: KeyFile::VERSION,
        created: jiff::Timestamp::now(),
        hostname,
        username,
        kdf: KdfSpec {
            algorithm: "argon2id".into(),
            memory_kib: kdf.memory_kib,
            iterations: kdf.iterations,
            parallelism: kdf.parallelism,
            salt: hex::encode(salt),
        },
        wrapped: hex::encode(wrapped),
    };
    let bytes = file
        .to_bytes()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let id = Id(*blake3::hash(&bytes).as_bytes());
    storage
        .write(&layout::object_path(layout::KEYS, &id), Bytes::from(bytes))
        .await?;
    Ok(id)
}

/// Reads every key file.
pub(crate) async fn read_keys(storage: &DynStorage) -> Result<Vec<(Id, KeyFile)>> {
    read_each_key(storage)
        .await?
        .into_iter()
        .map(|(id, k)| k.map(|k| (id, k)))
        .collect()
}

/// Reads every key file, with a result for each: one damaged key file must not keep the
/// others from opening the repository.
pub(crate) async fn read_each_key(storage: &DynStorage) -> Result<Vec<(Id, Result<KeyFile>)>> {
    let entries = storage.list(layout::KEYS).await?;
    Ok(futures::stream::iter(entries)
        .filter_map(|e| async move { e.path.rsplit('/').next().and_then(|n| n.parse::<Id>().ok()) })
        .map(|id| async move {
            let read = async {
                let bytes = storage
                    .read(&layout::object_path(layout::KEYS, &id))
                    .await?;
                if blake3::hash(&bytes).as_bytes() != &id.0 {
                    return Err(Error::corrupt(
                        format!("key {}", id.short()),
                        "content does not match its name",
                    ));
                }
                KeyFile::from_bytes(&bytes)
                    .map_err(|e| Error::format(format!("key {}", id.short()), e))
            };
            (id, read.await)
        })
        .buffer_unordered(8)
        .collect()
        .await)
}

fn try_key(file: &KeyFile, passphrase: &[u8]) -> Result<Option<MasterKey>> {
    let salt = hex::decode(&file.kdf.salt).map_err(|e| Error::corrupt("key salt", e))?;
    let wrapped = hex::decode(&file.wrapped).map_err(|e| Error::corrupt("wrapped key", e))?;
    let params = KdfParams::new(
        file.kdf.memory_kib,
        file.kdf.iterations,
        file.kdf.parallelism,
    );
    let kek =
        Kek::derive(passphrase, &salt, params).map_err(|e| Error::corrupt("key parameters", e))?;
    Ok(kek.unwrap_key(&wrapped).ok())
}

/// Finds the key file that opens with `passphrase`.
pub(crate) async fn unlock(storage: &DynStorage, passphrase: &[u8]) -> Result<(MasterKey, Id)> {
    let mut keys = Vec::new();
    let mut damaged = Vec::new();
    for (id, k) in read_each_key(storage).await? {
        match k {
            Ok(k) => keys.push((id, k)),
            Err(e) if e.is_corruption() => {
                tracing::warn!(key = %id.short(), error = %e, "skipping damaged key file");
                damaged.push(e.to_string());
            }
            Err(e) => return Err(e),
        }
    }
    if keys.is_empty() && damaged.is_empty() {
        return Err(Error::corrupt("repository", "it has no key files"));
    }
    let pass = zeroize::Zeroizing::new(passphrase.to_vec());
    let found = tokio::task::spawn_blocking(move || -> Result<Option<(MasterKey, Id)>> {
        for (id, file) in &keys {
            match try_key(file, &pass) {
                Ok(Some(k)) => return Ok(Some((k, *id))),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(key = %id.short(), error = %e, "skipping unreadable key file");
                }
            }
        }
        Ok(None)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    match found {
        Some(k) => Ok(k),
        // The passphrase may belong to a damaged key: say so rather than "wrong passphrase".
        None if !damaged.is_empty() => Err(Error::corrupt(
            "key files",
            format!(
                "no intact key opens with this passphrase, and some are damaged: {}",
                damaged.join("; ")
            ),
        )),
        None => Err(Error::WrongPassphrase {
            location: storage.location().to_string(),
        }),
    }
}

/// A key file as listed to users.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// Key id.
    pub id: Id,
    /// True for the key that opened this session.
    pub current: bool,
    /// When it was added.
    pub created: jiff::Timestamp,
    /// Host that added it.
    pub hostname: String,
    /// User that added it.
    pub username: String,
}

impl Repository {
    /// Lists the key files.
    ///
    /// # Errors
    /// Storage errors or a corrupt key file.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut keys: Vec<KeyInfo> = read_keys(self.storage())
            .await?
            .into_iter()
            .map(|(id, k)| KeyInfo {
                id,
                current: id == self.key_id(),
                created: k.created,
                hostname: k.hostname,
                username: k.username,
            })
            .collect();
        keys.sort_by_key(|k| k.created);
        Ok(keys)
    }

    /// Adds a passphrase.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn add_key(&self, passphrase: &[u8], kdf: KdfParams) -> Result<Id> {
        write_key(self.storage(), self.key(), passphrase, kdf).await
    }

    /// Removes a key file by id (or unique prefix). Refuses the key in use and the last key.
    ///
    /// # Errors
    /// `InvalidInput` for the current or last key or an unknown id.
    pub async fn remove_key(&self, id_prefix: &str) -> Result<Id> {
        let keys = read_keys(self.storage()).await?;
        let matches: Vec<Id> = keys
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| id.to_hex().starts_with(id_prefix))
            .collect();
        let id = match matches.as_slice() {
            [one] => *one,
            [] => return Err(Error::InvalidInput(format!("no key matches {id_prefix:?}"))),
            _ => {
                return Err(Error::InvalidInput(format!(
                    "key prefix {id_prefix:?} is ambiguous"
                )));
            }
        };
        if id == self.key_id() {
            return Err(Error::InvalidInput(
                "refusing to remove the key in use; open the repository with another passphrase"
                    .into(),
            ));
        }
        if keys.len() < 2 {
            return Err(Error::InvalidInput(
                "refusing to remove the last key".into(),
            ));
        }
        let path = layout::object_path(layout::KEYS, &id);
        crate::immutable::refuse_if_locked(self, &path, &format!("key {}", id.short())).await?;
        self.storage()
            .delete(&layout::object_path(layout::KEYS, &id))
            .await?;
        Ok(id)
    }

    /// Replaces the passphrase of the key in use: adds a key for the new passphrase, then
    /// removes the old key file. Returns the new key id.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn change_passphrase(&mut self, new_passphrase: &[u8], kdf: KdfParams) -> Result<Id> {
        // A locked old key cannot be removed: refuse before adding the new one.
        let old_path = layout::object_path(layout::KEYS, &self.key_id);
        crate::immutable::refuse_if_locked(
            self,
            &old_path,
            &format!("key {}", self.key_id.short()),
        )
        .await?;
        let new_id = self.add_key(new_passphrase, kdf).await?;
        let old = self.key_id;
        self.key_id = new_id;
        self.storage()
            .delete(&layout::object_path(layout::KEYS, &old))
            .await?;
        Ok(new_id)
    }
}
