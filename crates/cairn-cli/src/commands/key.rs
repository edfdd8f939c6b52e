//! `cairn key list|add|remove|passwd`.

use crate::args::{GlobalArgs, KeyCommand};
use crate::exit::ExitStatus;
use crate::printer::{JSON_SCHEMA, Printer};
use crate::repo;

pub(crate) async fn run(
    g: &GlobalArgs,
    cmd: KeyCommand,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let repo = repo::open(g, printer, false).await?;
    match cmd {
        KeyCommand::List => {
            let keys = repo.list_keys().await?;
            if printer.json {
                printer.json(&serde_json::json!({"schema": JSON_SCHEMA, "keys": keys}))?;
            } else {
                printer.line(&format!(
                    " {:<8}  {:<16}  {:<12}  {}",
                    "ID", "USER", "HOST", "CREATED"
                ))?;
                for k in keys {
                    let mark = if k.current { '*' } else { ' ' };
                    printer.line(&format!(
                        "{mark}{:<8}  {:<16}  {:<12}  {}",
                        k.id.short(),
                        k.username,
                        k.hostname,
                        k.created.strftime("%Y-%m-%d %H:%M:%S")
                    ))?;
                }
            }
        }
        KeyCommand::Add(a) => {
            let pass = repo::new_passphrase(a.new_password_file.as_ref())?;
            let id = repo.add_key(&pass, repo::kdf(a.kdf)).await?;
            done(printer, "added", &id.to_hex())?;
        }
        KeyCommand::Remove { id } => {
            let removed = repo.remove_key(&id).await?;
            done(printer, "removed", &removed.to_hex())?;
        }
        KeyCommand::Passwd(a) => {
            let pass = repo::new_passphrase(a.new_password_file.as_ref())?;
            let mut repo = std::sync::Arc::try_unwrap(repo)
                .map_err(|_| anyhow::anyhow!("repository handle is shared"))?;
            let id = repo.change_passphrase(&pass, repo::kdf(a.kdf)).await?;
            done(printer, "changed passphrase; new key", &id.to_hex())?;
        }
    }
    Ok(ExitStatus::Success)
}

fn done(printer: &Printer, what: &str, id: &str) -> anyhow::Result<()> {
    if printer.json {
        printer.json(
            &serde_json::json!({"schema": JSON_SCHEMA, "type": "key", "action": what, "id": id}),
        )?;
    } else if !printer.quiet {
        printer.line(&format!("{what} key {}", &id[..8]))?;
    }
    Ok(())
}
