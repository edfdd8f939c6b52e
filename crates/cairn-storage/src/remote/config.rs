//! [`RemoteOptions`]: the user's settings for the remote backends, and reading them from the
//! environment.
//!
//! Every field is optional: `OpenDAL` falls back to each cloud's own discovery (AWS profile
//! and instance metadata, GCE metadata, …) for whatever is left unset. Secrets never appear
//! in `Debug` output.

use std::fmt;

use super::LockMode;
use crate::retry::RetryOptions;
use crate::{Error, ErrorKind, Result};

/// Optional settings for S3, Azure Blob and GCS. Build it with `RemoteOptions::default()`
/// and set fields, or read it with [`RemoteOptions::from_env`].
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// S3 endpoint, e.g. `https://minio.example:9000` (`CAIRN_S3_ENDPOINT`, `AWS_ENDPOINT_URL`).
    pub s3_endpoint: Option<String>,
    /// S3 signing region (`AWS_REGION`, `AWS_DEFAULT_REGION`). Defaults to `us-east-1` when
    /// a custom endpoint is set.
    pub region: Option<String>,
    /// S3 access key id (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// S3 secret access key (`AWS_SECRET_ACCESS_KEY`). Secret.
    pub secret_access_key: Option<String>,
    /// S3 session token for temporary credentials (`AWS_SESSION_TOKEN`). Secret.
    pub session_token: Option<String>,
    /// Address buckets as `bucket.host` instead of `host/bucket` (`CAIRN_S3_VIRTUAL_HOST_STYLE`).
    pub virtual_host_style: bool,
    /// Allow plain-HTTP endpoints (`CAIRN_ALLOW_HTTP`). Off by default so that credentials
    /// are not sent in the clear by accident.
    pub allow_http: bool,
    /// Send unsigned requests (public buckets, emulators) (`CAIRN_STORAGE_ANONYMOUS`).
    pub anonymous: bool,
    /// Azure storage account name (`AZURE_STORAGE_ACCOUNT`).
    pub azure_account_name: Option<String>,
    /// Azure storage account key (`AZURE_STORAGE_KEY`). Secret.
    pub azure_account_key: Option<String>,
    /// Azure shared access signature (`AZURE_STORAGE_SAS_TOKEN`). Secret.
    pub azure_sas_token: Option<String>,
    /// Azure Blob endpoint (`CAIRN_AZBLOB_ENDPOINT`); defaults to
    /// `https://<account>.blob.core.windows.net`.
    pub azure_endpoint: Option<String>,
    /// Path of a GCS service-account JSON file (`GOOGLE_APPLICATION_CREDENTIALS`).
    pub gcs_credential_path: Option<String>,
    /// A GCS service-account JSON document itself (`CAIRN_GCS_CREDENTIAL_JSON`). Secret.
    pub gcs_credential_json: Option<String>,
    /// GCS endpoint (`CAIRN_GCS_ENDPOINT`, `STORAGE_EMULATOR_HOST`).
    pub gcs_endpoint: Option<String>,
    /// Parallel part uploads per large object (`CAIRN_STORAGE_CONCURRENCY`); default 4.
    pub concurrency: Option<usize>,
    /// Multipart chunk size in bytes (`CAIRN_STORAGE_CHUNK_SIZE`); default 32 MiB, at least 5 MiB.
    pub chunk_size: Option<usize>,
    /// S3 Object Lock mode for locked backups (`CAIRN_S3_LOCK_MODE`: `compliance`, the
    /// default, or `governance`).
    pub lock_mode: LockMode,
    /// How the remote backend retries temporary errors.
    pub retry: RetryOptions,
}

impl RemoteOptions {
    /// Reads the options from the process environment (see each field for its variable).
    ///
    /// # Errors
    ///
    /// `ConfigInvalid` if a boolean or number variable does not parse.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), with variables from `var` (for tests and for
    /// callers that keep their own environment). Empty values count as unset.
    ///
    /// # Errors
    ///
    /// `ConfigInvalid` if a boolean or number variable does not parse.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| var(name).filter(|value| !value.is_empty()))
        };
        Ok(Self {
            s3_endpoint: get(&[
                "CAIRN_S3_ENDPOINT",
                "AWS_ENDPOINT_URL_S3",
                "AWS_ENDPOINT_URL",
            ]),
            region: get(&["AWS_REGION", "AWS_DEFAULT_REGION"]),
            access_key_id: get(&["AWS_ACCESS_KEY_ID"]),
            secret_access_key: get(&["AWS_SECRET_ACCESS_KEY"]),
            session_token: get(&["AWS_SESSION_TOKEN"]),
            virtual_host_style: parse_bool(
                "CAIRN_S3_VIRTUAL_HOST_STYLE",
                get(&["CAIRN_S3_VIRTUAL_HOST_STYLE"]),
            )?,
            allow_http: parse_bool("CAIRN_ALLOW_HTTP", get(&["CAIRN_ALLOW_HTTP"]))?,
            anonymous: parse_bool("CAIRN_STORAGE_ANONYMOUS", get(&["CAIRN_STORAGE_ANONYMOUS"]))?,
            azure_account_name: get(&["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"]),
            azure_account_key: get(&["AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"]),
            azure_sas_token: get(&["AZURE_STORAGE_SAS_TOKEN"]),
            azure_endpoint: get(&["CAIRN_AZBLOB_ENDPOINT"]),
            gcs_credential_path: get(&["GOOGLE_APPLICATION_CREDENTIALS"]),
            gcs_credential_json: get(&["CAIRN_GCS_CREDENTIAL_JSON"]),
            gcs_endpoint: get(&["CAIRN_GCS_ENDPOINT", "STORAGE_EMULATOR_HOST"]),
            concurrency: parse_number(
                "CAIRN_STORAGE_CONCURRENCY",
                get(&["CAIRN_STORAGE_CONCURRENCY"]),
            )?,
            chunk_size: parse_number(
                "CAIRN_STORAGE_CHUNK_SIZE",
                get(&["CAIRN_STORAGE_CHUNK_SIZE"]),
            )?,
            lock_mode: parse_lock_mode(get(&["CAIRN_S3_LOCK_MODE"]))?,
            retry: RetryOptions::default(),
        })
    }

    /// Checks an endpoint against [`allow_http`](Self::allow_http) and adds `https://` when
    /// it has no scheme.
    pub(crate) fn endpoint(&self, raw: &str) -> Result<String> {
        let lower = raw.to_ascii_lowercase();
        if lower.starts_with("https://") {
            Ok(raw.trim_end_matches('/').to_owned())
        } else if lower.starts_with("http://") {
            if self.allow_http {
                Ok(raw.trim_end_matches('/').to_owned())
            } else {
                Err(Error::new(
                    ErrorKind::ConfigInvalid,
                    "plain-HTTP endpoint refused; set allow_http (CAIRN_ALLOW_HTTP=1) to use it",
                )
                .with_context("endpoint", raw))
            }
        } else if lower.contains("://") {
            Err(
                Error::new(ErrorKind::ConfigInvalid, "endpoint must be an http(s) URL")
                    .with_context("endpoint", raw),
            )
        } else {
            Ok(format!("https://{}", raw.trim_end_matches('/')))
        }
    }
}

fn parse_bool(name: &'static str, value: Option<String>) -> Result<bool> {
    let Some(value) = value else { return Ok(false) };
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::new(
            ErrorKind::ConfigInvalid,
            "expected a boolean (true/false/1/0)",
        )
        .with_context("variable", name)
        .with_context("value", value)),
    }
}

fn parse_lock_mode(value: Option<String>) -> Result<LockMode> {
    let Some(value) = value else {
        return Ok(LockMode::default());
    };
    match value.to_ascii_lowercase().as_str() {
        "compliance" => Ok(LockMode::Compliance),
        "governance" => Ok(LockMode::Governance),
        _ => Err(Error::new(
            ErrorKind::ConfigInvalid,
            "expected `compliance` or `governance`",
        )
        .with_context("variable", "CAIRN_S3_LOCK_MODE")
        .with_context("value", value)),
    }
}

fn parse_number(name: &'static str, value: Option<String>) -> Result<Option<usize>> {
    value
        .map(|value| {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Error::new(ErrorKind::ConfigInvalid, "expected a positive integer")
                        .with_context("variable", name)
                        .with_context("value", value)
                })
        })
        .transpose()
}

/// Shows whether a secret is set, never its value.
struct Redacted<'a>(&'a Option<String>);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Some(<redacted>)"),
            None => f.write_str("None"),
        }
    }
}

impl fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("s3_endpoint", &self.s3_endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &Redacted(&self.secret_access_key))
            .field("session_token", &Redacted(&self.session_token))
            .field("virtual_host_style", &self.virtual_host_style)
            .field("allow_http", &self.allow_http)
            .field("anonymous", &self.anonymous)
            .field("azure_account_name", &self.azure_account_name)
            .field("azure_account_key", &Redacted(&self.azure_account_key))
            .field("azure_sas_token", &Redacted(&self.azure_sas_token))
            .field("azure_endpoint", &self.azure_endpoint)
            .field("gcs_credential_path", &self.gcs_credential_path)
            .field("lock_mode", &self.lock_mode)
            .field("gcs_credential_json", &Redacted(&self.gcs_credential_json))
            .field("gcs_endpoint", &self.gcs_endpoint)
            .field("concurrency", &self.concurrency)
            .field("chunk_size", &self.chunk_size)
            .field("retry", &self.retry)
            .finish()
    }
}
