//! Opening and creating repositories; sealed objects; loading the index.

use std::sync::Arc;

use bytes::Bytes;
use cairn_crypto::{KdfParams, MasterKey};
use cairn_format::{
    ChunkerConfig, FORMAT_VERSION, GarbagePlan, Id, IndexFile, RepoConfig, layout, object_aad,
};
use cairn_storage::{DynStorage, ErrorKind};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::Mutex;

use crate::index::{IdSet, Index};
use crate::keys;
use crate::lock::LockOptions;
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
    lock_options: LockOptions,
    /// Durable packs per intermediate index file.
    index_every: usize,
    /// Why `config` could not be used, if it was replaced by its sealed copy on open.
    config_damage: Option<String>,
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
        // The sealed copy authenticates the public config (docs/format.md §5).
        let mut sealed = Vec::new();
        cairn_crypto::seal_into(&key, &object_aad("config"), &bytes, &mut sealed)
            .map_err(|e| Error::Internal(e.to_string()))?;
        storage
            .write(layout::CONFIG_SEALED, Bytes::from(sealed))
            .await?;
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
        let config = match Self::read_config(&storage).await {
            Err(e) if !e.is_corruption() => return Err(e),
            r => r,
        };
        let (key, key_id) = keys::unlock(&storage, passphrase).await?;
        let (config, config_damage) = match config {
            Ok(c) => (c, None),
            Err(e) => {
                // A damaged public config: use the authenticated copy if there is one.
                let Some((c, _)) = Self::read_sealed_config(&storage, &key).await? else {
                    return Err(e);
                };
                tracing::warn!(error = %e, "config is damaged; using its sealed copy");
                (c, Some(e.to_string()))
            }
        };
        let mut repo = Self::assemble(storage, config, key, key_id);
        repo.config_damage = config_damage;
        Ok(repo)
    }

    /// Reads and opens `config.sealed`: the config and its exact bytes, or `None` if absent
    /// (repositories made before it existed).
    ///
    /// # Errors
    /// `Corrupt` if it fails authentication or does not parse; storage errors.
    pub(crate) async fn read_sealed_config(
        storage: &DynStorage,
        key: &MasterKey,
    ) -> Result<Option<(RepoConfig, Vec<u8>)>> {
        let sealed = match storage.read(layout::CONFIG_SEALED).await {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            r => r?,
        };
        let plain = cairn_crypto::open(key, &object_aad("config"), &sealed)
            .map_err(|e| Error::corrupt(layout::CONFIG_SEALED, e))?;
        let config =
            RepoConfig::from_bytes(&plain).map_err(|e| Error::format(layout::CONFIG_SEALED, e))?;
        Ok(Some((config, plain)))
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
            lock_options: LockOptions::default(),
            index_every: crate::writer::INDEX_EVERY,
            config_damage: None,
        }
    }

    /// Sets how many durable packs a backup collects before it writes an index file for
    /// them (at least 1; default 32). Packs a failed backup uploaded but did not index are
    /// uploaded again by the next one, so fewer means less to redo after a failure and more
    /// index files.
    pub fn set_index_every(&mut self, packs: usize) {
        self.index_every = packs.max(1);
    }

    /// Durable packs per intermediate index file.
    pub fn index_every(&self) -> usize {
        self.index_every
    }

    /// Sets the lock timing of this process (tests shorten it).
    pub fn set_lock_options(&mut self, opts: LockOptions) {
        self.lock_options = opts;
    }

    /// The lock timing.
    pub fn lock_options(&self) -> LockOptions {
        self.lock_options
    }

    /// If `config` was damaged and its authenticated copy used instead: what was wrong.
    pub fn config_damage(&self) -> Option<&str> {
        self.config_damage.as_deref()
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
        let garbage = self.garbage_packs().await?;
        // A prune may delete superseded index files between our listing and our reads; the
        // file superseding them was written first, so listing again finds it.
        let mut attempt = 0;
        let files = loop {
            attempt += 1;
            match self.load_index_files().await {
                Err(Error::Storage(e)) if e.kind() == ErrorKind::NotFound && attempt < 5 => {}
                r => break r?,
            }
        };
        let superseded: std::collections::HashSet<Id> = files
            .iter()
            .flat_map(|(_, f)| f.supersedes.iter().copied())
            .collect();
        let mut index = Index::default();
        index.set_garbage(garbage);
        for (id, f) in &files {
            if !superseded.contains(id) {
                index.add_file(*id, f);
            }
        }
        tracing::debug!(blobs = index.len(), files = files.len(), "index loaded");
        Ok(index)
    }

    /// Reads every index file; a damaged one is skipped with a warning (its packs look
    /// unindexed: `check` reports it and `repair index` rebuilds it).
    async fn load_index_files(&self) -> Result<Vec<(Id, IndexFile)>> {
        let ids = self.list_ids(layout::INDEX).await?;
        let loaded: Vec<Option<(Id, IndexFile)>> = futures::stream::iter(ids)
            .map(|id| async move {
                match self.load_index_file(&id).await {
                    Ok(f) => Ok(Some((id, f))),
                    Err(e) if e.is_corruption() => {
                        tracing::warn!(index = %id.short(), error = %e, "skipping damaged index file");
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(LOAD_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(loaded.into_iter().flatten().collect())
    }

    /// Loads one index file.
    ///
    /// # Errors
    /// Storage errors; `Corrupt`.
    pub(crate) async fn load_index_file(&self, id: &Id) -> Result<IndexFile> {
        let plain = self.load_object(layout::INDEX, "index", id).await?;
        IndexFile::from_bytes(&plain).map_err(|e| Error::format(format!("index {}", id.short()), e))
    }

    /// Packs marked as garbage by every readable plan. A damaged plan is skipped: prune
    /// reads the same plans, so it never deletes a pack that backups did not see marked.
    pub(crate) async fn garbage_packs(&self) -> Result<IdSet> {
        let mut set = IdSet::default();
        for (_, plan) in self.garbage_plans().await? {
            if let Ok(plan) = plan {
                set.extend(plan.packs);
            }
        }
        Ok(set)
    }

    /// Every garbage plan, or why it cannot be read. Plans deleted while listing are left
    /// out.
    ///
    /// # Errors
    /// Storage errors.
    pub(crate) async fn garbage_plans(
        &self,
    ) -> Result<Vec<(Id, std::result::Result<GarbagePlan, String>)>> {
        let ids = self.list_ids(layout::GARBAGE).await?;
        let found: Vec<Option<(Id, std::result::Result<GarbagePlan, String>)>> =
            futures::stream::iter(ids)
                .map(|id| async move {
                    match self.load_object(layout::GARBAGE, "garbage", &id).await {
                        Err(Error::Storage(e)) if e.kind() == ErrorKind::NotFound => Ok(None),
                        Err(e) if e.is_corruption() => {
                            tracing::warn!(plan = %id.short(), error = %e, "skipping damaged garbage plan");
                            Ok(Some((id, Err(e.to_string()))))
                        }
                        Err(e) => Err(e),
                        Ok(plain) => Ok(Some((
                            id,
                            GarbagePlan::from_bytes(&plain).map_err(|e| e.to_string()),
                        ))),
                    }
                })
                .buffer_unordered(LOAD_CONCURRENCY)
                .try_collect()
                .await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Forgets the cached index through a shared handle: a backup calls this once its packs
    /// and index files are written (or its upload failed), so later backups dedupe against
    /// them and restores find them.
    pub(crate) async fn forget_index(&self) {
        *self.index.lock().await = None;
    }
}
