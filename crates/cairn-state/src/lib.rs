//! The local state of one machine: the operations that ran or run (backup, restore, copy,
//! prune, forget, check), the schedules, and when a schedule is due.
//!
//! The state lives in one SQLite database (`state.db`) in WAL mode, so several processes
//! (backups, `cairn status`, the daemon) read and write it at once; every write is a short
//! `IMMEDIATE` transaction and waits for the others through SQLite's busy timeout.
//!
//! Nothing here knows about repositories or Kubernetes: the CLI records, this crate stores.
//! Secrets are never stored: [`redact_location`] strips credentials from a location first.

mod calendar;
mod db;
mod error;
mod location;
mod operation;
mod planner;
mod process;
mod schedule;

pub use calendar::{Trigger, parse_interval};
pub use db::StateDb;
pub use error::{Error, Result};
pub use location::redact_location;
pub use operation::{NewOperation, OpState, Operation, OperationKind, OperationUpdate};
pub use planner::{Clock, Decision, Planner, SystemClock};
pub use process::ProcessStamp;
pub use schedule::{BackupJob, KeepRules, Schedule, ScheduleRun};

/// The file name of the database inside the state directory.
pub const DB_FILE: &str = "state.db";
