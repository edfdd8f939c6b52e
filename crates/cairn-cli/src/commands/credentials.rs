//! `cairn credentials create|list|delete`: named credentials for remote locations.

use std::path::Path;

use anyhow::{Context, bail};

use crate::args::{CredentialsCommand, CredentialsCreateArgs};
use crate::credentials::{NewCredential, Provider, SecretString, Secrets, Store};
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub(crate) fn run(cmd: CredentialsCommand, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match cmd {
        CredentialsCommand::Create(a) => create(*a, printer),
        CredentialsCommand::List => list(printer),
        CredentialsCommand::Delete { name } => {
            let mut store = Store::load()?;
            let c = store.remove(&name)?;
            printer.info(&format!("deleted credential {} ({})", c.name, c.id));
            if printer.json {
                printer.json(&serde_json::json!({"deleted": c.id, "name": c.name}))?;
            }
            Ok(ExitStatus::Success)
        }
    }
}

/// A secret from the flag, else from the file, else from the environment variable.
fn secret(
    flag: Option<String>,
    file: Option<&Path>,
    env: &str,
) -> anyhow::Result<Option<SecretString>> {
    if let Some(v) = flag {
        return Ok(Some(SecretString::new(v)));
    }
    if let Some(f) = file {
        let v = fs_err::read_to_string(f).context("reading a secret file")?;
        let v = v.trim_end_matches(['\n', '\r']).to_owned();
        return Ok(Some(SecretString::new(v)));
    }
    Ok(std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::new))
}

fn create(a: CredentialsCreateArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let mut secrets = Secrets {
        encryption_passphrase: secret(
            a.encryption_passphrase,
            a.encryption_passphrase_file.as_deref(),
            "CAIRN_ENCRYPTION_PASSPHRASE",
        )?,
        ..Secrets::default()
    };
    let mut new = NewCredential {
        name: a.name,
        provider: a.provider,
        location: a.location,
        endpoint: a.endpoint,
        region: a.region,
        virtual_host_style: a.virtual_host_style,
        disable_tls: a.disable_tls,
        retain_days: a.retain_days,
        access_key_id: None,
        account_name: None,
        project: None,
    };
    match a.provider {
        Provider::S3 => {
            new.access_key_id = a
                .access_key
                .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok());
            secrets.secret_access_key = secret(
                a.secret_key,
                a.secret_key_file.as_deref(),
                "AWS_SECRET_ACCESS_KEY",
            )?;
            if new.access_key_id.is_none() || secrets.secret_access_key.is_none() {
                bail!(
                    "S3 credentials need --access-key and --secret-key (or --secret-key-file, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
                );
            }
        }
        Provider::Azure => {
            new.account_name = a
                .account_name
                .or_else(|| std::env::var("AZURE_STORAGE_ACCOUNT").ok());
            secrets.account_key = secret(
                a.account_key,
                a.account_key_file.as_deref(),
                "AZURE_STORAGE_KEY",
            )?;
            secrets.sas_token = secret(
                a.sas_token,
                a.sas_token_file.as_deref(),
                "AZURE_STORAGE_SAS_TOKEN",
            )?;
            if new.account_name.is_none()
                || (secrets.account_key.is_none() && secrets.sas_token.is_none())
            {
                bail!(
                    "Azure credentials need --account-name and --account-key or --sas-token (or their -file variants)"
                );
            }
        }
        Provider::Google => {
            new.project = a.project;
            if let Some(f) = &a.json_key_file {
                let json = fs_err::read_to_string(f).context("reading the JSON key file")?;
                serde_json::from_str::<serde_json::Value>(&json)
                    .context("the JSON key file is not JSON")?;
                secrets.service_account_json = Some(SecretString::new(json));
            } else if !a.anonymous {
                bail!(
                    "Google credentials need --json-key-file (a service-account key), or --anonymous for an emulator"
                );
            }
        }
    }
    let mut store = Store::load()?;
    let c = store.add(new, &secrets)?;
    printer.info(&format!(
        "created credential {} ({}) for {}",
        c.name,
        c.id,
        c.provider.name()
    ));
    if printer.json {
        printer.json(&serde_json::json!({"id": c.id, "name": c.name}))?;
    } else {
        printer.line(&c.id)?;
    }
    Ok(ExitStatus::Success)
}

fn list(printer: &Printer) -> anyhow::Result<ExitStatus> {
    let store = Store::load()?;
    let listed = store.listed();
    if printer.json {
        printer.json(&listed)?;
        return Ok(ExitStatus::Success);
    }
    if listed.is_empty() {
        printer.info("no stored credentials");
        return Ok(ExitStatus::Success);
    }
    printer.line(&format!(
        "{:<8}  {:<16}  {:<8}  {:<28}  {:<12}  {:<20}  {:<10}  DEFAULT",
        "ID", "NAME", "PROVIDER", "ENDPOINT", "REGION", "ACCESS KEY / ACCOUNT", "ENCRYPTION"
    ))?;
    for c in listed {
        printer.line(&format!(
            "{:<8}  {:<16}  {:<8}  {:<28}  {:<12}  {:<20}  {:<10}  {}",
            c.id,
            c.name,
            c.provider,
            c.endpoint.unwrap_or("-"),
            c.region.unwrap_or("-"),
            c.access_key_id.or(c.account_name).unwrap_or("-"),
            if c.encryption { "yes" } else { "no" },
            if c.default { "yes" } else { "no" },
        ))?;
    }
    Ok(ExitStatus::Success)
}
