//! The engine's error type: what went wrong, with the context a user needs to act on it.

use std::path::PathBuf;

use cairn_format::FormatError;

/// Result with the engine [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An engine error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage failed (not found, denied, full, unreachable …).
    #[error("storage: {0}")]
    Storage(#[from] cairn_storage::Error),
    /// A stored object failed authentication or does not parse: damage or tampering.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// The object (`pack 1a2b…`, `snapshot …`, `blob … of file /x`).
        what: String,
        /// Why it is considered corrupt.
        reason: String,
    },
    /// No key file opens with the passphrase given.
    #[error("wrong passphrase: no key in {location} opens with it")]
    WrongPassphrase {
        /// The repository location.
        location: String,
    },
    /// There is no repository at the location.
    #[error("no repository at {location} (run `cairn init` first)")]
    NotARepository {
        /// The location.
        location: String,
    },
    /// `init` found an existing repository.
    #[error("a repository already exists at {location}")]
    AlreadyInitialized {
        /// The location.
        location: String,
    },
    /// A snapshot reference did not match.
    #[error("no snapshot matches {0:?}")]
    NoSuchSnapshot(String),
    /// A snapshot reference matched several.
    #[error("snapshot id prefix {0:?} is ambiguous")]
    AmbiguousSnapshot(String),
    /// A path inside a snapshot does not exist.
    #[error("no path {path:?} in snapshot {snapshot}")]
    NoSuchPath {
        /// The snapshot.
        snapshot: String,
        /// The path asked for.
        path: String,
    },
    /// A local file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `create` …).
        op: &'static str,
        /// The local path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The request cannot be carried out as given.
    #[error("{0}")]
    InvalidInput(String),
    /// The restore target exists and is not empty.
    #[error("target {} is not empty (use --overwrite to restore over it)", .0.display())]
    TargetNotEmpty(PathBuf),
    /// The repository is locked by another process.
    #[error("repository is locked: {0}")]
    Locked(String),
    /// The object is locked on the store (object lock) and cannot be removed yet.
    #[error("{0}")]
    Retained(String),
    /// The operation was cancelled (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// A format version this build does not read.
    #[error("{0}")]
    Unsupported(String),
    /// An internal task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn format(what: impl Into<String>, e: FormatError) -> Self {
        match e {
            FormatError::UnsupportedVersion { .. } => {
                Self::Unsupported(format!("{}: {e}", what.into()))
            }
            other => Self::corrupt(what, other),
        }
    }

    /// True if this error means stored data is damaged.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Self::Corrupt { .. })
            || matches!(self, Self::Storage(e) if e.kind() == cairn_storage::ErrorKind::Corrupt)
    }

    /// Adds a description of what was being read to a corruption error (e.g. the file whose
    /// content a damaged blob belongs to).
    #[must_use]
    pub fn within(self, context: impl std::fmt::Display) -> Self {
        match self {
            Self::Corrupt { what, reason } => Self::Corrupt {
                what: format!("{what} (in {context})"),
                reason,
            },
            other => other,
        }
    }
}

/// An error and its causes, `: `-separated like anyhow's `{:#}`, without a cause whose text
/// its parent's message already ends with: errors that both print and expose their source
/// would read "stat x: No such file or directory: No such file or directory" otherwise. The
/// one way every layer (CLI, application records) words an error chain.
pub fn error_message(err: &dyn std::error::Error) -> String {
    let mut msg = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    msg
}
