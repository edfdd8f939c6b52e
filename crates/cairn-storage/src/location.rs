//! Where a repository lives, parsed from what the user typed, and opening a backend for it.
//!
//! A plain path (`/srv/backup`, `./backup`, `backup`, `file:///srv/backup`) is a
//! [`Location::Local`]; `s3://bucket/prefix`, `azblob://container/prefix` and
//! `gs://bucket/prefix` (also `gcs://`) are [`Location::Remote`]. Credentials never go in the
//! URL: a `user:secret@` part is refused without echoing it, so [`Display`](fmt::Display)
//! output is always safe to log.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::local::LocalStorage;
use crate::remote::{RemoteOptions, RemoteService, RemoteStorage};
use crate::retry::RetryStorage;
use crate::{DynStorage, Error, ErrorKind, Result};

#[cfg(test)]
mod tests;

/// A repository location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// A directory on a local or mounted filesystem.
    Local(PathBuf),
    /// A prefix in a cloud bucket.
    Remote {
        /// Which cloud.
        service: RemoteService,
        /// The bucket (Azure: container).
        bucket: String,
        /// The repository's prefix inside the bucket, without leading or trailing `/`;
        /// empty for the bucket root.
        prefix: String,
    },
}

impl Location {
    /// Parses a user-supplied location.
    ///
    /// # Errors
    ///
    /// `ConfigInvalid` for an empty string, an unknown scheme, a missing bucket, a URL with
    /// credentials, a query or a fragment, or a prefix with `.`/`..` segments.
    pub fn parse(input: &str) -> Result<Self> {
        let input = input.trim();
        if input.is_empty() {
            return Err(invalid("empty location"));
        }
        let Some((scheme, rest)) = input.split_once("://") else {
            return Ok(Self::Local(PathBuf::from(input)));
        };
        let service = match scheme.to_ascii_lowercase().as_str() {
            "file" => return parse_file_url(input, rest),
            "s3" => RemoteService::S3,
            "azblob" => RemoteService::Azblob,
            "gs" | "gcs" => RemoteService::Gcs,
            _ => {
                return Err(invalid(
                    "unknown location scheme; expected a path, file://, s3://, azblob:// or gs://",
                )
                .with_context("scheme", scheme));
            }
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains('@') {
            // Do not echo the input: it holds a secret.
            return Err(invalid(
                "credentials in a location URL are not supported; use the storage options",
            ));
        }
        if rest.contains(['?', '#']) {
            return Err(
                invalid("query strings and fragments are not supported in a location")
                    .with_context("location", input),
            );
        }
        if !valid_bucket(bucket) {
            return Err(invalid("missing or invalid bucket name").with_context("location", input));
        }
        let mut segments = Vec::new();
        for segment in prefix.split('/').filter(|segment| !segment.is_empty()) {
            if segment == "." || segment == ".." || segment.contains('\\') {
                return Err(invalid("`.` and `..` are not allowed in a prefix")
                    .with_context("location", input));
            }
            segments.push(segment);
        }
        Ok(Self::Remote {
            service,
            bucket: bucket.to_owned(),
            prefix: segments.join("/"),
        })
    }

    /// Opens the backend. Remote backends are wrapped in a [`RetryStorage`] configured by
    /// [`RemoteOptions::retry`]; `opts` is ignored for local paths. No I/O happens yet.
    ///
    /// # Errors
    ///
    /// `ConfigInvalid` if the options do not make a valid configuration.
    pub fn open(&self, opts: &RemoteOptions) -> Result<DynStorage> {
        match self {
            Self::Local(path) => {
                let root = std::path::absolute(path).map_err(|err| {
                    invalid("cannot resolve the local path")
                        .with_source(err)
                        .with_context("path", path.display().to_string())
                })?;
                Ok(Arc::new(LocalStorage::new(root)))
            }
            Self::Remote {
                service,
                bucket,
                prefix,
            } => {
                let remote = RemoteStorage::new(*service, bucket, prefix, opts)?;
                Ok(Arc::new(RetryStorage::new(remote, opts.retry.clone())))
            }
        }
    }
}

fn parse_file_url(input: &str, rest: &str) -> Result<Location> {
    // `file:///x` or `file://localhost/x`; anything else names a remote host.
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return Err(
            invalid("a file:// URL must be absolute, like file:///srv/backup")
                .with_context("location", input),
        );
    }
    Ok(Location::Local(PathBuf::from(path)))
}

/// A loose check that accepts every S3, Azure and GCS bucket name and rejects what would
/// break a URL.
fn valid_bucket(bucket: &str) -> bool {
    !bucket.is_empty()
        && bucket.len() <= 222
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::ConfigInvalid, message)
}

impl FromStr for Location {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::Remote {
                service,
                bucket,
                prefix,
            } if prefix.is_empty() => {
                write!(f, "{}://{bucket}", service.scheme())
            }
            Self::Remote {
                service,
                bucket,
                prefix,
            } => write!(f, "{}://{bucket}/{prefix}", service.scheme()),
        }
    }
}
