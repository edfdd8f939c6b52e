//! Builds the `OpenDAL` [`Operator`] for each remote service from [`RemoteOptions`].
//!
//! We add no `OpenDAL` layer: retries are [`RetryStorage`](crate::retry::RetryStorage)'s job,
//! and `OpenDAL`'s `RetryLayer` would retry underneath it and multiply the attempts.

use opendal::Operator;
use opendal::services::{Azblob, Gcs, S3};

use super::{RemoteOptions, RemoteService};
use crate::{Error, ErrorKind, Result};

/// S3's signing region when a custom endpoint is set and no region is given; S3-compatible
/// servers (`MinIO`, Ceph, s3s) accept it.
pub(super) const DEFAULT_REGION: &str = "us-east-1";

/// Builds an operator for `bucket`, rooted at `/prefix`.
pub(super) fn operator(
    service: RemoteService,
    bucket: &str,
    prefix: &str,
    opts: &RemoteOptions,
) -> Result<Operator> {
    // Without OpenDAL's `auto-register-services` feature (it runs a constructor before
    // `main`) nobody installs the process-wide HTTP transport; do it here. It is idempotent
    // and first-installed-wins.
    opendal::install_default();
    let root = format!("/{prefix}");
    let built = match service {
        RemoteService::S3 => Operator::new(s3(bucket, &root, opts)?),
        RemoteService::Azblob => Operator::new(azblob(bucket, &root, opts)?),
        RemoteService::Gcs => Operator::new(gcs(bucket, &root, opts)?),
    };
    built.map_err(|err| {
        Error::new(
            ErrorKind::ConfigInvalid,
            "cannot configure the remote backend",
        )
        .with_source(err)
        .with_context("service", service.scheme())
        .with_context("bucket", bucket)
    })
}

fn s3(bucket: &str, root: &str, opts: &RemoteOptions) -> Result<S3> {
    let mut builder = S3::default().bucket(bucket).root(root);
    if let Some(endpoint) = &opts.s3_endpoint {
        builder = builder.endpoint(&opts.endpoint(endpoint)?);
    }
    match (&opts.region, &opts.s3_endpoint) {
        (Some(region), _) => builder = builder.region(region),
        (None, Some(_)) => builder = builder.region(DEFAULT_REGION),
        // OpenDAL reads AWS_REGION itself and reports a missing region.
        (None, None) => {}
    }
    if let Some(key) = &opts.access_key_id {
        builder = builder.access_key_id(key);
    }
    if let Some(secret) = &opts.secret_access_key {
        builder = builder.secret_access_key(secret);
    }
    if let Some(token) = &opts.session_token {
        builder = builder.session_token(token);
    }
    if opts.virtual_host_style {
        builder = builder.enable_virtual_host_style();
    }
    if opts.anonymous {
        builder = builder.skip_signature();
    }
    Ok(builder)
}

fn azblob(container: &str, root: &str, opts: &RemoteOptions) -> Result<Azblob> {
    let mut builder = Azblob::default().container(container).root(root);
    let endpoint = match (&opts.azure_endpoint, &opts.azure_account_name) {
        (Some(endpoint), _) => opts.endpoint(endpoint)?,
        (None, Some(account)) => format!("https://{account}.blob.core.windows.net"),
        (None, None) => {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                "Azure Blob needs an account name (AZURE_STORAGE_ACCOUNT) or an endpoint (CAIRN_AZBLOB_ENDPOINT)",
            ));
        }
    };
    builder = builder.endpoint(&endpoint);
    if let Some(account) = &opts.azure_account_name {
        builder = builder.account_name(account);
    }
    if let Some(key) = &opts.azure_account_key {
        builder = builder.account_key(key);
    }
    if let Some(sas) = &opts.azure_sas_token {
        builder = builder.sas_token(sas);
    }
    if opts.anonymous {
        builder = builder.skip_signature();
    }
    Ok(builder)
}

fn gcs(bucket: &str, root: &str, opts: &RemoteOptions) -> Result<Gcs> {
    let mut builder = Gcs::default().bucket(bucket).root(root);
    if let Some(endpoint) = &opts.gcs_endpoint {
        builder = builder.endpoint(&opts.endpoint(endpoint)?);
    }
    if let Some(path) = &opts.gcs_credential_path {
        builder = builder.credential_path(path);
    }
    if let Some(json) = &opts.gcs_credential_json {
        // OpenDAL wants the JSON base64-encoded.
        builder = builder.credential(&base64(json.as_bytes()));
    }
    if opts.anonymous {
        builder = builder.skip_signature();
    }
    Ok(builder)
}

/// Standard base64 with padding (RFC 4648 §4); too small a need for a dependency.
pub(super) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
