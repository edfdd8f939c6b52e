//! `cairn init`.

use anyhow::Context;
use cairn_repo::{InitOptions, Repository};

use crate::args::{GlobalArgs, InitArgs};
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer};
use crate::repo;

pub(crate) async fn run(
    g: &GlobalArgs,
    a: &InitArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let (storage, _) = repo::storage(g)?;
    let location = storage.location().to_string();
    let pass = repo::passphrase(g, true)?;
    let mut opts = InitOptions::default();
    opts.kdf = repo::kdf(a.kdf);
    opts.compression_level = a.compression;
    opts.volume_chunk_size = a.volume_chunk_kib.saturating_mul(1024);
    opts.pack_size = a.pack_mib.saturating_mul(1024 * 1024);
    let r = Repository::init(storage, &pass, &opts)
        .await
        .with_context(|| format!("creating a repository at {location}"))?;
    if printer.json {
        printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "type": "init", "location": location, "id": r.config().id, "key": r.key_id()}))?;
    } else if !printer.quiet {
        printer.line(&format!(
            "created repository {} at {location}",
            r.config().id.short()
        ))?;
    }
    Ok(ExitStatus::Success)
}
