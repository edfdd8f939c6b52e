//! S3 Object Lock: retention on single objects.
//!
//! `OpenDAL` does not speak the object-lock API, so this module sends the two requests it
//! needs itself, signed with the same `reqsign` signer `OpenDAL` uses and sent through
//! `OpenDAL`'s HTTP transport:
//!
//! - `HEAD /<key>` reads `x-amz-object-lock-retain-until-date` (S3 returns it on
//!   `HeadObject`; the separate `GetObjectRetention` call is missing from some servers).
//! - `PUT /<key>?retention` with `<Retention><Mode>…</Mode><RetainUntilDate>…`, and the
//!   `Content-MD5` S3 requires on it.
//!
//! Locks only grow: [`S3Lock::retain`] reads the current date first and sends nothing when
//! it already lasts long enough, so it is idempotent and never asks a compliance-mode lock
//! to shrink (which S3 refuses). A bucket created without Object Lock answers the `PUT`
//! with `InvalidRequest`, which becomes our `Unsupported` with S3's own message.

use std::fmt;
use std::fmt::Write as _;

use bytes::Bytes;
use md5::{Digest as _, Md5};
use opendal::{Buffer, HttpTransporter};
use reqsign_aws_v4::{
    Credential, DefaultCredentialProvider, RequestSigner, StaticCredentialProvider,
};
use reqsign_core::{Context, OsEnv, ProvideCredentialChain, Signer};

use super::RemoteOptions;
use crate::{Error, ErrorKind, Result};

/// S3's two retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Nobody can shorten or remove the lock, not even the account root (the default).
    #[default]
    Compliance,
    /// Users with `s3:BypassGovernanceRetention` can remove the lock.
    Governance,
}

impl LockMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Compliance => "COMPLIANCE",
            Self::Governance => "GOVERNANCE",
        }
    }
}

/// Signs and sends object-lock requests for one bucket and prefix.
pub(super) struct S3Lock {
    transport: HttpTransporter,
    signer: Option<Signer<Credential>>,
    /// `scheme://host[:port]/bucket` (path style) or `scheme://bucket.host[:port]`.
    base: String,
    /// The repository prefix inside the bucket, with a trailing `/` unless empty.
    root: String,
    mode: LockMode,
    location: String,
}

impl fmt::Debug for S3Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Lock")
            .field("base", &self.base)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl S3Lock {
    pub(super) fn new(
        bucket: &str,
        prefix: &str,
        opts: &RemoteOptions,
        location: String,
    ) -> Result<Self> {
        let region = opts
            .region
            .clone()
            .unwrap_or_else(|| super::backend::DEFAULT_REGION.to_owned());
        let endpoint = match &opts.s3_endpoint {
            Some(e) => opts.endpoint(e)?,
            None => format!("https://s3.{region}.amazonaws.com"),
        };
        let endpoint = endpoint.trim_end_matches('/');
        let base = if opts.virtual_host_style {
            match endpoint.split_once("://") {
                Some((scheme, host)) => format!("{scheme}://{bucket}.{host}"),
                None => format!("https://{bucket}.{endpoint}"),
            }
        } else {
            format!("{endpoint}/{}", encode(bucket))
        };
        let transport = HttpTransporter::default();
        let signer = if opts.anonymous {
            None
        } else {
            let ctx = Context::new()
                .with_file_read(reqsign_file_read_tokio::TokioFileRead)
                .with_env(OsEnv)
                .with_http_send(transport.clone());
            let mut chain =
                ProvideCredentialChain::new().push(DefaultCredentialProvider::builder().build());
            if let (Some(ak), Some(sk)) = (&opts.access_key_id, &opts.secret_access_key) {
                let fixed = match &opts.session_token {
                    Some(token) => StaticCredentialProvider::new(ak, sk).with_session_token(token),
                    None => StaticCredentialProvider::new(ak, sk),
                };
                chain = chain.push_front(fixed);
            }
            Some(Signer::new(ctx, chain, RequestSigner::new("s3", &region)))
        };
        let root = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        Ok(Self {
            transport,
            signer,
            base,
            root,
            mode: opts.lock_mode,
            location,
        })
    }

    fn url(&self, path: &str, query: &str) -> String {
        format!(
            "{}/{}{}",
            self.base,
            encode(&format!("{}{path}", self.root)),
            query
        )
    }

    fn error(
        &self,
        kind: ErrorKind,
        message: impl Into<String>,
        op: &'static str,
        path: &str,
    ) -> Error {
        Error::new(kind, message)
            .with_context("operation", op)
            .with_context("location", self.location.as_str())
            .with_context("path", path)
    }

    async fn send(
        &self,
        op: &'static str,
        path: &str,
        req: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>> {
        let (mut parts, body) = req.into_parts();
        if let Some(signer) = &self.signer {
            signer.sign(&mut parts, None).await.map_err(|e| {
                self.error(
                    ErrorKind::PermissionDenied,
                    "cannot sign the request",
                    op,
                    path,
                )
                .with_source(e)
            })?;
        }
        let req = http::Request::from_parts(parts, Buffer::from(body));
        let resp = self.transport.send(req).await.map_err(|e| {
            let err = self
                .error(ErrorKind::Unexpected, "remote storage error", op, path)
                .with_source(e);
            err.temporary()
        })?;
        let (parts, body) = resp.into_parts();
        Ok(http::Response::from_parts(parts, body.to_bytes()))
    }

    /// When the object's retention ends, if it has one.
    pub(super) async fn retained_until(&self, path: &str) -> Result<Option<jiff::Timestamp>> {
        let op = "retained_until";
        let req = http::Request::head(self.url(path, ""))
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .body(Bytes::new())
            .map_err(|e| {
                self.error(ErrorKind::ConfigInvalid, "bad request", op, path)
                    .with_source(e)
            })?;
        let resp = self.send(op, path, req).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(op, path, &resp));
        }
        let Some(value) = resp.headers().get("x-amz-object-lock-retain-until-date") else {
            return Ok(None);
        };
        let text = value.to_str().unwrap_or_default();
        text.parse::<jiff::Timestamp>().map(Some).map_err(|e| {
            self.error(
                ErrorKind::Unexpected,
                format!("the store sent a retention date that does not parse: {text:?}"),
                op,
                path,
            )
            .with_source(e)
        })
    }

    /// Locks the object until `until`, unless it is locked that long already.
    pub(super) async fn retain(&self, path: &str, until: jiff::Timestamp) -> Result<()> {
        // S3 takes whole seconds; round up so the lock is never shorter than asked.
        let until = jiff::Timestamp::from_second(
            until.as_second() + i64::from(until.subsec_nanosecond() > 0),
        )
        .unwrap_or(until);
        if self.retained_until(path).await?.is_some_and(|t| t >= until) {
            return Ok(());
        }
        let op = "retain";
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>",
            self.mode.as_str(),
            until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        );
        let md5 = super::backend::base64(&Md5::digest(body.as_bytes()));
        let req = http::Request::put(self.url(path, "?retention"))
            .header("content-md5", md5)
            .header("content-type", "application/xml")
            .header("content-length", body.len())
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .body(Bytes::from(body))
            .map_err(|e| {
                self.error(ErrorKind::ConfigInvalid, "bad request", op, path)
                    .with_source(e)
            })?;
        let resp = self.send(op, path, req).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.status_error(op, path, &resp))
        }
    }

    /// An error for a response that is not a success: S3's code and message when it sent
    /// them, the kind from the status.
    fn status_error(&self, op: &'static str, path: &str, resp: &http::Response<Bytes>) -> Error {
        let status = resp.status();
        let body = String::from_utf8_lossy(resp.body());
        let code = xml_field(&body, "Code");
        let message = xml_field(&body, "Message");
        let kind = match (status.as_u16(), code) {
            (
                _,
                Some("InvalidRequest" | "ObjectLockConfigurationNotFoundError" | "NotImplemented"),
            )
            | (501, _) => ErrorKind::Unsupported,
            (404, _) => ErrorKind::NotFound,
            (401 | 403, _) => ErrorKind::PermissionDenied,
            _ => ErrorKind::Unexpected,
        };
        let text = match (code, message) {
            (Some(c), Some(m)) => format!("the store answered {status}: {c}: {m}"),
            (Some(c), None) => format!("the store answered {status}: {c}"),
            _ => format!("the store answered {status}"),
        };
        let text = if kind == ErrorKind::Unsupported {
            format!("{text} (is Object Lock enabled on the bucket?)")
        } else {
            text
        };
        let err = self.error(kind, text, op, path);
        if kind != ErrorKind::Unsupported && (status.is_server_error() || status.as_u16() == 429) {
            err.temporary()
        } else {
            err
        }
    }
}

/// The text of the first `<name>…</name>` in an S3 error document.
fn xml_field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let len = body[start..].find(&format!("</{name}>"))?;
    Some(&body[start..start + len])
}

/// Percent-encodes an object key for a URL path: everything but RFC 3986's unreserved
/// characters and `/`.
fn encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{encode, xml_field};

    #[test]
    fn keys_are_encoded_once() {
        assert_eq!(encode("ci/data/ab/ab12"), "ci/data/ab/ab12");
        assert_eq!(encode("a b+c"), "a%20b%2Bc");
    }

    #[test]
    fn error_fields_are_found() {
        let body = "<Error><Code>InvalidRequest</Code><Message>Bucket is missing ObjectLockConfiguration</Message></Error>";
        assert_eq!(xml_field(body, "Code"), Some("InvalidRequest"));
        assert_eq!(
            xml_field(body, "Message"),
            Some("Bucket is missing ObjectLockConfiguration")
        );
        assert_eq!(xml_field(body, "Resource"), None);
    }
}
