//! Errors of the state database and of schedule parsing.

use std::path::PathBuf;

/// A result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with the local state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The state directory could not be created.
    #[error("cannot create the state directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("state database {path}: {what}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored record does not decode.
    #[error("state database {path}: {what} is not valid")]
    Decode {
        /// The database file.
        path: PathBuf,
        /// Which record.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The database was written by a newer cairn.
    #[error("state database {path} has schema version {found}; this cairn knows up to {known}")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A schedule with this name exists already.
    #[error("a schedule named {0:?} exists already")]
    ScheduleExists(String),
    /// No schedule has this name.
    #[error("no schedule named {0:?}")]
    NoSchedule(String),
    /// A schedule name that cannot be used.
    #[error("invalid schedule name {0:?}: use letters, digits, '-', '_' and '.' (1 to 64)")]
    ScheduleName(String),
    /// A cron expression that does not parse.
    #[error("invalid cron expression {expr:?}")]
    Cron {
        /// The expression.
        expr: String,
        /// The cause.
        #[source]
        source: croner::errors::CronError,
    },
    /// A time zone that is not known.
    #[error("unknown time zone {name:?}")]
    TimeZone {
        /// The name given.
        name: String,
        /// The cause.
        #[source]
        source: jiff::Error,
    },
    /// An interval that does not parse or is zero.
    #[error("invalid interval {0:?}: use a number with s, m, h or d (like 90s, 15m, 1h, 1d)")]
    Interval(String),
    /// A time out of the representable range.
    #[error("time arithmetic out of range: {0}")]
    Time(#[source] jiff::Error),
}
