//! The errors of the application layer, each naming the object, resource or backup concerned.

use std::time::Duration;

/// What went wrong in discovery, selection, backup or restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {what}")]
    Kube {
        /// The operation and the object or resource it was about.
        what: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The repository failed.
    #[error("repository: {what}")]
    Repo {
        /// What was being read or written.
        what: String,
        /// The engine's error.
        #[source]
        source: cairn_repo::Error,
    },
    /// A resource or document did not have the expected shape.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which object, option or document.
        what: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Something did not reach the awaited state in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited (object and condition).
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// A condition failed for good (a Job failed, a snapshot reported an error).
    #[error("{what} failed: {reason}")]
    Failed {
        /// Which object.
        what: String,
        /// The reason it reported.
        reason: String,
    },
    /// A partial restore needs objects that exist neither in the cluster nor in the restore.
    #[error("missing dependencies: {}", .0.join("; "))]
    MissingDependencies(Vec<String>),
    /// No application backup matched.
    #[error("no application backup {0:?}")]
    NotFound(String),
    /// Local I/O (temporary files while reading a backup).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps a client error with what was being done.
    pub(crate) fn kube(what: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Wraps a repository error.
    pub(crate) fn repo(what: impl Into<String>, source: cairn_repo::Error) -> Self {
        Self::Repo {
            what: what.into(),
            source,
        }
    }

    /// An invalid object or option.
    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// True if the error is the API server's 404.
pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// True if the error is the API server's 409 (exists, or a conflicting update).
pub(crate) fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
