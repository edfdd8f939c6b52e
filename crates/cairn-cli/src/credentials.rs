//! Stored credentials for remote locations (`cairn credentials …`), kept in the local state
//! directory with their secrets encrypted.
//!
//! Two files live in the state directory (`$CAIRN_STATE_DIR`, else `<state dir>/cairn`,
//! else `<data dir>/cairn`):
//!
//! - `credentials.key`: 64 random bytes, mode 0600, created on first use.
//! - `credentials.json`: one entry per credential. Non-secret fields (name, provider, endpoint,
//!   region, access key id, …) are plain; the secrets (secret key, account key, SAS token,
//!   service-account JSON, encryption passphrase) are one AES-256-GCM envelope under the key
//!   file, bound to the entry's id and name.
//!
//! What this protects against: the secrets are never in a plain config file, so a copy of
//! `credentials.json` alone (a backup of the home directory, a config repo, a support bundle)
//! reveals nothing secret, and a tampered entry fails to open. It does not protect against
//! someone who can read both files as this user (root, or the user's own processes): that
//! would need an OS keyring or a KMS, which a headless data mover does not have.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cairn_crypto::MasterKey;
use cairn_storage::{Location, RemoteOptions, RemoteService};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A secret string: zeroed on drop, never shown by `Debug`, and not `Display`.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct SecretString(Zeroizing<String>);

impl Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl SecretString {
    pub(crate) fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The secret itself, for the one place that must hand it to a backend.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The kind of store a credential is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Provider {
    /// Amazon S3 or an S3-compatible store.
    S3,
    /// Azure Blob Storage.
    Azure,
    /// Google Cloud Storage.
    Google,
}

impl Provider {
    pub(crate) fn service(self) -> RemoteService {
        match self {
            Self::S3 => RemoteService::S3,
            Self::Azure => RemoteService::Azblob,
            Self::Google => RemoteService::Gcs,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Azure => "azure",
            Self::Google => "google",
        }
    }
}

/// The secret half of a credential. Only ever stored sealed.
#[derive(Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Secrets {
    pub(crate) secret_access_key: Option<SecretString>,
    pub(crate) account_key: Option<SecretString>,
    pub(crate) sas_token: Option<SecretString>,
    pub(crate) service_account_json: Option<SecretString>,
    pub(crate) encryption_passphrase: Option<SecretString>,
}

/// One stored credential: public fields plus sealed secrets.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credential {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) provider: Provider,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) region: Option<String>,
    #[serde(default)]
    pub(crate) virtual_host_style: bool,
    #[serde(default)]
    pub(crate) disable_tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retain_days: Option<u32>,
    pub(crate) encryption: bool,
    /// Hex of the sealed [`Secrets`].
    sealed: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl Credential {
    fn aad(&self) -> Vec<u8> {
        format!("cairn credential v1\0{}\0{}", self.id, self.name).into_bytes()
    }

    /// Builds the storage options: the environment's, with this credential's fields on top.
    pub(crate) fn remote_options(
        &self,
        store: &Store,
        mut opts: RemoteOptions,
    ) -> anyhow::Result<RemoteOptions> {
        let secrets = store.open_secrets(self)?;
        let expose = |s: &Option<SecretString>| s.as_ref().map(|s| s.expose().to_owned());
        opts.allow_http |= self.disable_tls;
        match self.provider {
            Provider::S3 => {
                set(&mut opts.s3_endpoint, self.endpoint.as_ref());
                set(&mut opts.region, self.region.as_ref());
                set(&mut opts.access_key_id, self.access_key_id.as_ref());
                set(
                    &mut opts.secret_access_key,
                    expose(&secrets.secret_access_key).as_ref(),
                );
                opts.virtual_host_style = self.virtual_host_style;
            }
            Provider::Azure => {
                set(&mut opts.azure_endpoint, self.endpoint.as_ref());
                set(&mut opts.azure_account_name, self.account_name.as_ref());
                set(
                    &mut opts.azure_account_key,
                    expose(&secrets.account_key).as_ref(),
                );
                set(
                    &mut opts.azure_sas_token,
                    expose(&secrets.sas_token).as_ref(),
                );
            }
            Provider::Google => {
                set(&mut opts.gcs_endpoint, self.endpoint.as_ref());
                set(
                    &mut opts.gcs_credential_json,
                    expose(&secrets.service_account_json).as_ref(),
                );
            }
        }
        Ok(opts)
    }

    /// The repository passphrase stored with this credential, if any.
    pub(crate) fn passphrase(&self, store: &Store) -> anyhow::Result<Option<SecretString>> {
        if !self.encryption {
            return Ok(None);
        }
        Ok(store.open_secrets(self)?.encryption_passphrase)
    }
}

fn set(field: &mut Option<String>, value: Option<&String>) {
    if let Some(v) = value {
        *field = Some(v.clone());
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    credentials: Vec<Credential>,
}

/// The credentials in the state directory.
pub(crate) struct Store {
    dir: PathBuf,
    file: File,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The local state directory: `$CAIRN_STATE_DIR`, else `<state dir>/cairn`, else
/// `<data dir>/cairn`.
pub(crate) fn state_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CAIRN_STATE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::state_dir()
        .or_else(dirs::data_dir)
        .map(|d| d.join("cairn"))
        .context("no state directory; set CAIRN_STATE_DIR")
}

impl Store {
    /// Loads the store (empty when the file does not exist yet).
    pub(crate) fn load() -> anyhow::Result<Self> {
        let dir = state_dir()?;
        let path = dir.join("credentials.json");
        let file = match fs_err::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File {
                version: 1,
                credentials: Vec::new(),
            },
            Err(e) => return Err(e).context("reading the stored credentials"),
        };
        if file.version != 1 {
            bail!(
                "{} has version {}, this cairn reads version 1",
                path.display(),
                file.version
            );
        }
        Ok(Self { dir, file })
    }

    /// Finds a credential by name or id.
    pub(crate) fn get(&self, name_or_id: &str) -> Option<&Credential> {
        self.file
            .credentials
            .iter()
            .find(|c| c.name == name_or_id || c.id == name_or_id)
    }

    /// The credential to use for a remote location of `service` when none was named: the
    /// only one of that provider, if exactly one exists.
    pub(crate) fn default_for(&self, service: RemoteService) -> Option<&Credential> {
        let mut matching = self
            .file
            .credentials
            .iter()
            .filter(|c| c.provider.service() == service);
        let first = matching.next()?;
        matching.next().is_none().then_some(first)
    }

    /// Adds a credential, sealing its secrets.
    pub(crate) fn add(
        &mut self,
        mut credential: NewCredential,
        secrets: &Secrets,
    ) -> anyhow::Result<&Credential> {
        if self.get(&credential.name).is_some() {
            bail!("a credential named {:?} already exists", credential.name);
        }
        if credential.name.is_empty() || credential.name.contains(['/', ':']) {
            bail!("a credential name must be non-empty without '/' or ':'");
        }
        if let Some(l) = &credential.location {
            let parsed = Location::parse(l).with_context(|| format!("invalid location {l:?}"))?;
            match parsed {
                Location::Remote { service, .. } if service == credential.provider.service() => {}
                _ => bail!(
                    "location {l:?} is not a {} location",
                    credential.provider.name()
                ),
            }
        }
        let mut id = [0_u8; 4];
        cairn_crypto::random_bytes(&mut id).context("drawing an id")?;
        let mut c = Credential {
            id: hex::encode(id),
            name: std::mem::take(&mut credential.name),
            provider: credential.provider,
            location: credential.location,
            endpoint: credential.endpoint,
            region: credential.region,
            virtual_host_style: credential.virtual_host_style,
            disable_tls: credential.disable_tls,
            access_key_id: credential.access_key_id,
            account_name: credential.account_name,
            project: credential.project,
            retain_days: credential.retain_days,
            encryption: secrets.encryption_passphrase.is_some(),
            sealed: String::new(),
        };
        let key = self.key(true)?;
        let plain = Zeroizing::new(serde_json::to_vec(secrets).context("encoding secrets")?);
        let mut sealed = Vec::new();
        cairn_crypto::seal_into(&key, &c.aad(), &plain, &mut sealed)
            .context("encrypting the secrets")?;
        c.sealed = hex::encode(sealed);
        self.file.credentials.push(c);
        self.save()?;
        let last = self.file.credentials.len() - 1;
        Ok(&self.file.credentials[last])
    }

    /// Removes a credential by name or id.
    pub(crate) fn remove(&mut self, name_or_id: &str) -> anyhow::Result<Credential> {
        let Some(i) = self
            .file
            .credentials
            .iter()
            .position(|c| c.name == name_or_id || c.id == name_or_id)
        else {
            bail!("no stored credential named {name_or_id:?}");
        };
        let c = self.file.credentials.remove(i);
        self.save()?;
        Ok(c)
    }

    fn open_secrets(&self, c: &Credential) -> anyhow::Result<Secrets> {
        let key = self.key(false)?;
        let sealed = hex::decode(&c.sealed)
            .with_context(|| format!("the stored credential {:?} is damaged", c.name))?;
        let plain = Zeroizing::new(cairn_crypto::open(&key, &c.aad(), &sealed).with_context(
            || {
                format!(
                    "cannot decrypt the stored credential {:?} (damaged, or {} was replaced)",
                    c.name,
                    self.dir.join("credentials.key").display()
                )
            },
        )?);
        serde_json::from_slice(&plain)
            .with_context(|| format!("the stored credential {:?} is damaged", c.name))
    }

    /// The local key, created (0600) on first use when `create`.
    fn key(&self, create: bool) -> anyhow::Result<MasterKey> {
        let path = self.dir.join("credentials.key");
        match fs_err::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let arr: &[u8; 64] = bytes
                    .as_slice()
                    .try_into()
                    .with_context(|| format!("{} is damaged (not 64 bytes)", path.display()))?;
                Ok(MasterKey::from_bytes(arr))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let key = MasterKey::generate().context("drawing a local key")?;
                write_private(&path, key.to_bytes().as_slice(), true)?;
                Ok(key)
            }
            Err(e) => Err(e).context("reading the local credentials key"),
        }
    }

    fn save(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.file).context("encoding credentials")?;
        let path = self.dir.join("credentials.json");
        let tmp = self.dir.join("credentials.json.tmp");
        write_private(&tmp, &bytes, false)?;
        fs_err::rename(&tmp, &path).context("saving the stored credentials")?;
        Ok(())
    }
}

/// Writes a file readable only by this user (0600), creating the directory (0700).
fn write_private(path: &Path, bytes: &[u8], create_new: bool) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).context("creating the state directory")?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let mut options = fs_err::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// The public fields of a credential being created.
pub(crate) struct NewCredential {
    pub(crate) name: String,
    pub(crate) provider: Provider,
    pub(crate) location: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) virtual_host_style: bool,
    pub(crate) disable_tls: bool,
    pub(crate) access_key_id: Option<String>,
    pub(crate) account_name: Option<String>,
    pub(crate) project: Option<String>,
    pub(crate) retain_days: Option<u32>,
}

/// The non-secret view of a credential, for `credentials list`.
#[derive(Serialize)]
pub(crate) struct Listed<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) provider: &'static str,
    pub(crate) location: Option<&'a str>,
    pub(crate) endpoint: Option<&'a str>,
    pub(crate) region: Option<&'a str>,
    pub(crate) access_key_id: Option<&'a str>,
    pub(crate) account_name: Option<&'a str>,
    pub(crate) project: Option<&'a str>,
    pub(crate) retain_days: Option<u32>,
    pub(crate) encryption: bool,
    pub(crate) default: bool,
}

impl Store {
    /// Non-secret views of every credential.
    pub(crate) fn listed(&self) -> Vec<Listed<'_>> {
        let mut by_provider: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &self.file.credentials {
            *by_provider.entry(c.provider.name()).or_default() += 1;
        }
        self.file
            .credentials
            .iter()
            .map(|c| Listed {
                id: &c.id,
                name: &c.name,
                provider: c.provider.name(),
                location: c.location.as_deref(),
                endpoint: c.endpoint.as_deref(),
                region: c.region.as_deref(),
                access_key_id: c.access_key_id.as_deref(),
                account_name: c.account_name.as_deref(),
                project: c.project.as_deref(),
                retain_days: c.retain_days,
                encryption: c.encryption,
                default: by_provider.get(c.provider.name()) == Some(&1),
            })
            .collect()
    }
}
