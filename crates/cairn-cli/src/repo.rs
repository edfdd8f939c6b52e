//! Finding the repository and the passphrase, and opening it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use cairn_repo::{InitOptions, KdfParams, Repository};
use cairn_storage::{DynStorage, Location, ThrottleStorage};

use crate::credentials::{Credential, Store};

use crate::args::{GlobalArgs, KdfArgs};
use crate::printer::Printer;

/// A passphrase, zeroed when dropped.
pub(crate) type Secret = zeroize::Zeroizing<Vec<u8>>;

/// The embedded default location: `<data dir>/cairn/repository`.
pub(crate) fn default_location() -> anyhow::Result<PathBuf> {
    let base = dirs::data_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/share")))
        .context("no home or data directory to hold the default repository; pass --repo")?;
    Ok(base.join("cairn").join("repository"))
}

/// The location string and whether it is the embedded default.
pub(crate) fn location(g: &GlobalArgs) -> anyhow::Result<(String, bool)> {
    match &g.repo {
        Some(r) if !r.is_empty() => Ok((r.clone(), false)),
        _ => Ok((default_location()?.display().to_string(), true)),
    }
}

/// Where the repository is and which stored credentials reach it.
pub(crate) struct Resolved {
    pub(crate) location: Location,
    pub(crate) is_default: bool,
    credential: Option<(Store, Credential)>,
}

/// Resolves `--repo` (a path, a URL, or the name of stored credentials with a location) and
/// the credentials to use: `--credentials NAME`, else the ones `--repo` named, else the only
/// stored credentials of the location's provider.
pub(crate) fn resolve(g: &GlobalArgs) -> anyhow::Result<Resolved> {
    let (loc, is_default) = location(g)?;
    let mut store = None;
    let mut named = None;
    if !is_default && !loc.contains(['/', '\\', ':']) {
        let s = Store::load()?;
        if let Some(c) = s.get(&loc).filter(|c| c.location.is_some()).cloned() {
            named = Some(c);
        }
        store = Some(s);
    }
    let text = named
        .as_ref()
        .and_then(|c| c.location.clone())
        .unwrap_or(loc);
    let location =
        Location::parse(&text).with_context(|| format!("invalid repository location {text:?}"))?;
    let Location::Remote { service, .. } = &location else {
        return Ok(Resolved {
            location,
            is_default,
            credential: None,
        });
    };
    let store = match store {
        Some(s) => s,
        None => Store::load()?,
    };
    let credential = if let Some(name) = &g.credentials {
        let Some(c) = store.get(name).cloned() else {
            bail!("no stored credentials named {name:?} (see `cairn credentials list`)");
        };
        if c.provider.service() != *service {
            bail!(
                "credentials {name:?} are for {}, not for {location}",
                c.provider.name()
            );
        }
        Some(c)
    } else {
        named.or_else(|| store.default_for(*service).cloned())
    };
    Ok(Resolved {
        location,
        is_default,
        credential: credential.map(|c| (store, c)),
    })
}

/// Opens the storage at the configured location, with bandwidth limits.
pub(crate) fn storage(g: &GlobalArgs) -> anyhow::Result<(DynStorage, bool)> {
    let r = resolve(g)?;
    let mut opts = cairn_storage::remote::RemoteOptions::from_env()
        .context("reading storage settings from the environment")?;
    if let Some((store, c)) = &r.credential {
        opts = c.remote_options(store, opts)?;
        tracing::debug!(credentials = %c.name, location = %r.location, "using stored credentials");
    }
    let mut st = r
        .location
        .open(&opts)
        .with_context(|| format!("cannot open storage at {}", r.location))?;
    if g.limit_upload.is_some() || g.limit_download.is_some() {
        let kib = |v: Option<u64>| v.map(|k| k.saturating_mul(1024));
        st = Arc::new(ThrottleStorage::new(
            st,
            kib(g.limit_upload),
            kib(g.limit_download),
        ));
    }
    Ok((st, r.is_default))
}

/// The `--retain-days` of the stored credentials in use, if any.
pub(crate) fn location_retain_days(g: &GlobalArgs) -> anyhow::Result<Option<u32>> {
    Ok(resolve(g)?.credential.and_then(|(_, c)| c.retain_days))
}

fn trim_newline(mut v: Vec<u8>) -> Vec<u8> {
    while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        v.pop();
    }
    v
}

/// The passphrase: --password-file, CAIRN_PASSWORD, the encryption passphrase of the
/// stored credentials in use, or a prompt on a terminal.
pub(crate) fn passphrase(g: &GlobalArgs, confirm: bool) -> anyhow::Result<Secret> {
    passphrase_from(g, "CAIRN_PASSWORD", "Repository passphrase: ", confirm)
}

/// As [`passphrase`], with another environment variable and prompt (a second repository).
pub(crate) fn passphrase_from(
    g: &GlobalArgs,
    env: &str,
    text: &str,
    confirm: bool,
) -> anyhow::Result<Secret> {
    if let Some(f) = &g.password_file {
        let v = fs_err::read(f).context("reading the password file")?;
        return Ok(Secret::new(trim_newline(v)));
    }
    if let Ok(p) = std::env::var(env) {
        return Ok(Secret::new(p.into_bytes()));
    }
    if let Some((store, c)) = &resolve(g)?.credential
        && let Some(p) = c.passphrase(store)?
    {
        return Ok(Secret::new(p.expose().as_bytes().to_vec()));
    }
    prompt(text, confirm)
}

/// The new passphrase for key add/passwd.
pub(crate) fn new_passphrase(file: Option<&PathBuf>) -> anyhow::Result<Secret> {
    if let Some(f) = file {
        let v = fs_err::read(f).context("reading the new password file")?;
        return Ok(Secret::new(trim_newline(v)));
    }
    if let Ok(p) = std::env::var("CAIRN_NEW_PASSWORD") {
        return Ok(Secret::new(p.into_bytes()));
    }
    prompt("New passphrase: ", true)
}

fn prompt(text: &str, confirm: bool) -> anyhow::Result<Secret> {
    if !std::io::stdin().is_terminal() {
        bail!("no passphrase: set CAIRN_PASSWORD, pass --password-file, or run on a terminal");
    }
    let p = rpassword::prompt_password(text).context("reading the passphrase")?;
    if confirm {
        let again = rpassword::prompt_password("Again: ").context("reading the passphrase")?;
        if again != p {
            bail!("the passphrases differ");
        }
    }
    if p.is_empty() {
        bail!("an empty passphrase is not allowed");
    }
    Ok(Secret::new(p.into_bytes()))
}

/// KDF parameters from flags.
pub(crate) fn kdf(a: KdfArgs) -> KdfParams {
    KdfParams::new(a.kdf_memory, a.kdf_iterations, 1)
}

/// Opens the repository; for the embedded default, creates it on first use.
pub(crate) async fn open(
    g: &GlobalArgs,
    printer: &Printer,
    create_default: bool,
) -> anyhow::Result<Arc<Repository>> {
    let (storage, is_default) = storage(g)?;
    let location = storage.location().to_string();
    if is_default && create_default && Repository::read_config(&storage).await.is_err() {
        let pass = passphrase(g, true)?;
        let repo = Repository::init(storage, &pass, &InitOptions::default())
            .await
            .with_context(|| format!("creating the default repository at {location}"))?;
        printer.info(&format!("created the default repository at {location}"));
        return Ok(Arc::new(repo));
    }
    let pass = passphrase(g, false)?;
    let mut repo = Repository::open(storage, &pass).await?;
    tune(&mut repo);
    Ok(Arc::new(repo))
}

/// Test-only knobs from the environment (`CAIRN_TEST_INDEX_EVERY`: packs per intermediate
/// index file, so a test can fail a store after an index without uploading gigabytes).
fn tune(repo: &mut Repository) {
    if let Some(n) = std::env::var("CAIRN_TEST_INDEX_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        repo.set_index_every(n);
    }
}

/// Opens a second repository (the target of a copy): `g` holds its location, password file
/// and credentials; its passphrase comes from `CAIRN_TO_PASSWORD` otherwise. It must exist.
pub(crate) async fn open_target(g: &GlobalArgs) -> anyhow::Result<Arc<Repository>> {
    let (storage, _) = storage(g)?;
    let location = storage.location().to_string();
    match Repository::read_config(&storage).await {
        Err(cairn_repo::Error::NotARepository { .. }) => {
            bail!(
                "no repository at {location}: create it first with `cairn init --repo {location}`"
            );
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("reading the target repository at {location}")));
        }
        Ok(_) => {}
    }
    let pass = passphrase_from(
        g,
        "CAIRN_TO_PASSWORD",
        "Target repository passphrase: ",
        false,
    )?;
    let repo = Repository::open(storage, &pass)
        .await
        .with_context(|| format!("opening the target repository at {location}"))?;
    Ok(Arc::new(repo))
}
