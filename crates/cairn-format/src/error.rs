//! Errors from parsing stored bytes.

/// A stored object could not be parsed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Shorter than its structure requires.
    #[error("truncated: {0}")]
    Truncated(&'static str),
    /// A magic number did not match.
    #[error("bad magic in {0}")]
    BadMagic(&'static str),
    /// Written by a newer (or unknown) format version.
    #[error("unsupported {what} version {version} (this build reads up to {supported})")]
    UnsupportedVersion {
        /// Which structure.
        what: &'static str,
        /// The version found.
        version: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The bytes do not decode as the structure.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// Which structure.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Decoded, but the values are inconsistent.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which structure.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl FormatError {
    pub(crate) fn decode(what: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Decode {
            what,
            reason: e.to_string(),
        }
    }
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }
}
