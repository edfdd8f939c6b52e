//! Opening and creating repositories; sealed objects; loading the index.

use std::sync::Arc;

use bytes::Bytes;
use cairn_crypto::{KdfParams, MasterKey};
use cairn_format::{ChunkerConfig, FORMAT_VERSION, Id, IndexFile, RepoConfig, layout, object_aad};
use cairn_storage::{DynStorage, ErrorKind};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Mutex;

use crate::index::Index;
use crate::keys;
use crate::reader::PackCache;
use crate::{Error, Result};

/// Settings for a new repository.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitOptions {
    /// Argon2id cost of the first key.
    pub kdf: KdfParams,
    /// Content-defined chunking of files and streams.
    pub chunker: ChunkerConfig,
    /// Fixed chunk size of volumes.
    pub volume_chunk_size: u32,
    /// zstd level (0: no compression).
    pub compression_level: i32,
    /// Target pack size.
    pub pack_size: u32,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            kdf: KdfParams::default(),
            chunker: ChunkerConfig::default(),
            volume_chunk_size: 64 * 1024,
            compression_level: 1,
            pack_size: 16 * 1024 * 1024,
        }
    }
}

/// An open repository: storage, config and the unlocked master key.
#[derive(Debug)]
pub struct Repository {
    storage: DynStorage,
    config: RepoConfig,
    key: Arc<MasterKey>,
    pub(crate) key_id: Id,
    /// The index, loaded on first use; forgotten when a backup adds packs to the repository.
    index: Mutex<Option<Arc<Index>>>,
    pub(crate) pack_cache: PackCache,
}

/// How many objects to fetch at once when listing or loading many.
pub(crate) const LOAD_CONCURRENCY: usize = 16;

impl Repository {
    /// Creates a repository at `storage` whose first key opens with `passphrase`.
    ///
    /// # Errors
    /// `AlreadyInitialized` if a config exists; storage errors.
    pub async fn init(storage: DynStorage, passphrase: &[u8], opts: &InitOptions) -> Result<Self> {
        let location = storage.location().to_string();
        if storage.stat(layout::CONFIG).await?.is_some() {
            return Err(Error::AlreadyInitialized { location });
        }
        let mut rid = [0u8; 32];
        cairn_crypto::random_bytes(&mut rid).map_err(|e| Error::Internal(e.to_string()))?;
        let config = RepoConfig {
            version: FORMAT_VERSION,
            id: Id(rid),
            created: jiff::Timestamp::now(),
            chunker: opts.chunker,
            volume_chunk_size: opts.volume_chunk_size,
            compression_level: opts.compression_level,
            pack_size: opts.pack_size,
        };
        config
            .validate()
            .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let key = MasterKey::generate().map_err(|e| Error::Internal(e.to_string()))?;
        // The key goes first: a config without a key would be an unusable repository.
        let key_id = keys::write_key(&storage, &key, passphrase, opts.kdf).await?;
        let bytes = config
            .to_bytes()
            .map_err(|e| Error::Internal(e.to_string()))?;
        match storage.write_new(layout::CONFIG, Bytes::from(bytes)).await {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyInitialized { location });
            }
            r => r?,
        }
        tracing::info!(repo = %location, id = %config.id.short(), "repository created");
        Ok(Self::assemble(storage, config, key, key_id))
    }

    /// Opens the repository at `storage` with `passphrase`.
    ///
    /// # Errors
    /// `NotARepository`, `WrongPassphrase`, `Unsupported` (newer format), storage errors.
    pub async fn open(storage: DynStorage, passphrase: &[u8]) -> Result<Self> {
        let config = Self::read_config(&storage).await?;
        let (key, key_id) = keys::unlock(&storage, passphrase).await?;
        Ok(Self::assemble(storage, config, key, key_id))
    }

    /// Reads and parses the public config.
    ///
    /// # Errors
    /// `NotARepository` if there is none.
    pub async fn read_config(storage: &DynStorage) -> Result<RepoConfig> {
        let bytes = match storage.read(layout::CONFIG).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::NotARepository {
                    location: storage.location().to_string(),
                });
            }
            r => r?,
        };
        RepoConfig::from_bytes(&bytes).map_err(|e| Error::format("config", e))
    }

    fn assemble(storage: DynStorage, config: RepoConfig, key: MasterKey, key_id: Id) -> Self {
        Self {
            storage,
            config,
            key: Arc::new(key),
            key_id,
            index: Mutex::new(None),
            pack_cache: PackCache::new(64 * 1024 * 1024),
        }
    }

    /// The storage.
    pub fn storage(&self) -> &DynStorage {
        &self.storage
    }

    /// The location, for messages.
    pub fn location(&self) -> &str {
        self.storage.location()
    }

    /// The config.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The master key.
    pub(crate) fn key(&self) -> &Arc<MasterKey> {
        &self.key
    }

    /// The id of the key file that unlocked this repository.
    pub fn key_id(&self) -> Id {
        self.key_id
    }

    /// Seals and stores an object under `dir`, named by the BLAKE3 hash of the stored bytes.
    pub(crate) async fn save_object(&self, dir: &str, kind: &str, plain: &[u8]) -> Result<Id> {
        let mut sealed = Vec::new();
        cairn_crypto::seal_into(&self.key, &object_aad(kind), plain, &mut sealed)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let id = Id(*blake3::hash(&sealed).as_bytes());
        self.storage
            .write(&layout::object_path(dir, &id), Bytes::from(sealed))
            .await?;
        Ok(id)
    }

    /// Loads and opens an object, verifying its name and authenticity.
    pub(crate) async fn load_object(&self, dir: &str, kind: &str, id: &Id) -> Result<Vec<u8>> {
        let bytes = self.storage.read(&layout::object_path(dir, id)).await?;
        self.open_object(kind, id, &bytes)
    }

    /// Opens an object's stored bytes.
    pub(crate) fn open_object(&self, kind: &str, id: &Id, bytes: &[u8]) -> Result<Vec<u8>> {
        let what = || format!("{kind} {}", id.short());
        if blake3::hash(bytes).as_bytes() != &id.0 {
            return Err(Error::corrupt(what(), "content does not match its name"));
        }
        cairn_crypto::open(&self.key, &object_aad(kind), bytes)
            .map_err(|e| Error::corrupt(what(), e))
    }

    /// Lists the ids of objects in a flat directory, skipping names that are not ids.
    pub(crate) async fn list_ids(&self, dir: &str) -> Result<Vec<Id>> {
        let entries = self.storage.list(dir).await?;
        Ok(entries
            .iter()
            .filter_map(|e| e.path.rsplit('/').next().and_then(|n| n.parse::<Id>().ok()))
            .collect())
    }

    /// The index, loaded on first use.
    ///
    /// # Errors
    /// Storage errors or a corrupt index file.
    pub async fn index(&self) -> Result<Arc<Index>> {
        // Held across the load, so concurrent first uses load it once.
        let mut cached = self.index.lock().await;
        if let Some(index) = &*cached {
            return Ok(index.clone());
        }
        let index = Arc::new(self.load_index().await?);
        *cached = Some(index.clone());
        Ok(index)
    }

    /// Reads every index file into a fresh [`Index`] (not cached).
    ///
    /// # Errors
    /// Storage errors or a corrupt index file.
    pub async fn load_index(&self) -> Result<Index> {
        let ids = self.list_ids(layout::INDEX).await?;
        let files: Vec<(Id, IndexFile)> = futures::stream::iter(ids)
            .map(|id| async move {
                let plain = self.load_object(layout::INDEX, "index", &id).await?;
                let file = IndexFile::from_bytes(&plain)
                    .map_err(|e| Error::format(format!("index {}", id.short()), e))?;
                Ok::<_, Error>((id, file))
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .try_collect()
            .await?;
        let superseded: std::collections::HashSet<Id> = files
            .iter()
            .flat_map(|(_, f)| f.supersedes.iter().copied())
            .collect();
        let mut index = Index::default();
        for (id, f) in &files {
            if !superseded.contains(id) {
                index.add_file(*id, f);
            }
        }
        tracing::debug!(blobs = index.len(), files = files.len(), "index loaded");
        Ok(index)
    }

    /// Forgets the cached index through a shared handle: a backup calls this once its packs
    /// and index files are written (or its upload failed), so later backups dedupe against
    /// them and restores find them.
    pub(crate) async fn forget_index(&self) {
        *self.index.lock().await = None;
    }
}
