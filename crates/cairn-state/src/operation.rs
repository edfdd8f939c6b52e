//! Operations: what ran or runs on this machine, with progress and outcome.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::db::{StateDb, from_ms, to_ms};
use crate::error::Result;
use crate::process::{Liveness, ProcessStamp};

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OperationKind {
    /// `cairn backup`.
    Backup,
    /// `cairn restore`.
    Restore,
    /// `cairn copy`.
    Copy,
    /// `cairn prune`.
    Prune,
    /// `cairn forget`.
    Forget,
    /// `cairn check`.
    Check,
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OpState {
    /// Running.
    Active,
    /// Finished successfully.
    Done,
    /// Ended with an error, or its process died (the error says "interrupted").
    Failed,
    /// Stopped by the user.
    Cancelled,
    /// Not started: a scheduled run whose previous run was still active.
    Skipped,
}

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// The stored and printed name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($s => Ok(Self::$v),)* _ => Err(format!("unknown value {s:?}")) }
            }
        }
    };
}

text_enum!(OperationKind { Backup => "backup", Restore => "restore", Copy => "copy",
    Prune => "prune", Forget => "forget", Check => "check" });
text_enum!(OpState { Active => "active", Done => "done", Failed => "failed",
    Cancelled => "cancelled", Skipped => "skipped" });

/// An operation about to start.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewOperation {
    /// What it does.
    pub kind: OperationKind,
    /// What it reads (paths, a device, a snapshot id).
    pub source: String,
    /// The repository location, without credentials (see [`crate::redact_location`]).
    pub location: String,
    /// The schedule that started it, if any.
    pub schedule: Option<String>,
}

impl NewOperation {
    /// An operation of `kind` on `source` in the repository at `location`.
    pub fn new(kind: OperationKind, source: impl Into<String>, location: &str) -> Self {
        Self {
            kind,
            source: source.into(),
            location: crate::redact_location(location),
            schedule: None,
        }
    }
}

/// Progress to record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationUpdate {
    /// Bytes processed so far.
    pub bytes_done: u64,
    /// Bytes in all, when known.
    pub bytes_total: Option<u64>,
    /// Files (items) processed so far.
    pub files: u64,
}

impl OperationUpdate {
    /// Progress of `bytes_done` of `bytes_total`, `files` files.
    pub fn new(bytes_done: u64, bytes_total: Option<u64>, files: u64) -> Self {
        Self {
            bytes_done,
            bytes_total,
            files,
        }
    }
}

/// A recorded operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Operation {
    /// Its number on this machine.
    pub id: i64,
    /// What it does.
    pub kind: OperationKind,
    /// What it reads.
    pub source: String,
    /// The repository location (without credentials).
    pub location: String,
    /// The schedule that started it.
    pub schedule: Option<String>,
    /// Where it stands.
    pub state: OpState,
    /// Bytes processed.
    pub bytes_done: u64,
    /// Bytes in all, when known.
    pub bytes_total: Option<u64>,
    /// Files processed.
    pub files: u64,
    /// When it started.
    pub started: Timestamp,
    /// When progress was last recorded.
    pub updated: Timestamp,
    /// When it ended.
    pub finished: Option<Timestamp>,
    /// Why it failed, was cancelled or skipped.
    pub error: Option<String>,
    /// The process that ran it.
    pub process: ProcessStamp,
}

const COLUMNS: &str = "id, kind, source, location, schedule, state, bytes_done, bytes_total, \
    files, started_ms, updated_ms, finished_ms, error, pid, proc_start";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Operation> {
    let text = |i: usize, v: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown value {v:?}").into(),
        )
    };
    let kind: String = r.get(1)?;
    let state: String = r.get(5)?;
    Ok(Operation {
        id: r.get(0)?,
        kind: kind.parse().map_err(|_| text(1, kind))?,
        source: r.get(2)?,
        location: r.get(3)?,
        schedule: r.get(4)?,
        state: state.parse().map_err(|_| text(5, state))?,
        bytes_done: r.get::<_, i64>(6)?.max(0) as u64,
        bytes_total: r.get::<_, Option<i64>>(7)?.map(|v| v.max(0) as u64),
        files: r.get::<_, i64>(8)?.max(0) as u64,
        started: from_ms(r.get(9)?),
        updated: from_ms(r.get(10)?),
        finished: r.get::<_, Option<i64>>(11)?.map(from_ms),
        error: r.get(12)?,
        process: ProcessStamp {
            pid: r.get(13)?,
            start: r.get(14)?,
        },
    })
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl StateDb {
    /// Records the start of an operation by this process, now; returns its id.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn begin_operation(&self, op: &NewOperation) -> Result<i64> {
        self.begin_operation_at(op, OpState::Active, None, Timestamp::now())
    }

    /// Records an operation that starts in `state` (`Skipped` for a run that did not
    /// start), with an error text.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn begin_operation_at(
        &self,
        op: &NewOperation,
        state: OpState,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<i64> {
        let me = ProcessStamp::current();
        let now = to_ms(now);
        let finished = (state != OpState::Active).then_some(now);
        self.write("recording an operation", |tx| {
            tx.execute(
                "INSERT INTO operations (kind, source, location, schedule, state, started_ms, \
                 updated_ms, finished_ms, error, pid, proc_start) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10)",
                params![
                    op.kind.as_str(),
                    op.source,
                    op.location,
                    op.schedule,
                    state.as_str(),
                    now,
                    finished,
                    error,
                    me.pid,
                    me.start
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Records progress of an active operation.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn update_operation(&self, id: i64, u: OperationUpdate) -> Result<()> {
        let now = to_ms(Timestamp::now());
        self.write("recording progress", |tx| {
            tx.execute(
                "UPDATE operations SET bytes_done = ?2, bytes_total = ?3, files = ?4, \
                 updated_ms = ?5 WHERE id = ?1 AND state = 'active'",
                params![
                    id,
                    clamp(u.bytes_done),
                    u.bytes_total.map(clamp),
                    clamp(u.files),
                    now
                ],
            )
            .map(drop)
        })
    }

    /// Records the end of an operation, with its last progress.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn finish_operation(
        &self,
        id: i64,
        state: OpState,
        u: OperationUpdate,
        error: Option<&str>,
    ) -> Result<()> {
        let now = to_ms(Timestamp::now());
        self.write("recording the end of an operation", |tx| {
            tx.execute(
                "UPDATE operations SET state = ?2, bytes_done = ?3, bytes_total = ?4, \
                 files = ?5, updated_ms = ?6, finished_ms = ?6, error = ?7 WHERE id = ?1",
                params![
                    id,
                    state.as_str(),
                    clamp(u.bytes_done),
                    u.bytes_total.map(clamp),
                    clamp(u.files),
                    now,
                    error
                ],
            )
            .map(drop)
        })
    }

    /// One operation, by id (after reaping dead processes).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn operation(&self, id: i64) -> Result<Option<Operation>> {
        self.reap_dead()?;
        self.read("reading an operation", |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM operations WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()
        })
    }

    /// Active operations first (oldest first), then the `limit` most recent others (newest
    /// first; all with `None`). Operations whose process died are marked failed first.
    ///
    /// # Errors
    /// The database cannot be read or written.
    pub fn operations(&self, limit: Option<usize>) -> Result<Vec<Operation>> {
        self.reap_dead()?;
        let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        self.read("listing operations", |c| {
            let mut out: Vec<Operation> = c
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM operations WHERE state = 'active' ORDER BY id"
                ))?
                .query_map([], from_row)?
                .collect::<rusqlite::Result<_>>()?;
            let rest = c
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM operations WHERE state != 'active' \
                     ORDER BY id DESC LIMIT ?1"
                ))?
                .query_map([limit], from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            out.extend(rest);
            Ok(out)
        })
    }

    /// The most recent operations of one schedule, newest first.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn schedule_operations(&self, schedule: &str, limit: usize) -> Result<Vec<Operation>> {
        self.reap_dead()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("listing the operations of a schedule", |c| {
            c.prepare(&format!(
                "SELECT {COLUMNS} FROM operations WHERE schedule = ?1 ORDER BY id DESC LIMIT ?2"
            ))?
            .query_map(params![schedule, limit], from_row)?
            .collect()
        })
    }

    /// Marks active operations whose process ended as failed ("interrupted"); returns how
    /// many.
    ///
    /// # Errors
    /// The database cannot be read or written.
    pub fn reap_dead(&self) -> Result<usize> {
        let active: Vec<(i64, ProcessStamp)> = self.read("listing active operations", |c| {
            c.prepare("SELECT id, pid, proc_start FROM operations WHERE state = 'active'")?
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        ProcessStamp {
                            pid: r.get(1)?,
                            start: r.get(2)?,
                        },
                    ))
                })?
                .collect()
        })?;
        let dead: Vec<(i64, u32)> = active
            .into_iter()
            .filter(|(_, p)| p.liveness() == Liveness::Dead)
            .map(|(id, p)| (id, p.pid))
            .collect();
        if dead.is_empty() {
            return Ok(0);
        }
        self.write("marking interrupted operations", |tx| {
            let mut n = 0;
            for (id, pid) in &dead {
                let msg = format!(
                    "interrupted: process {pid} ended without recording a result (killed or crashed)"
                );
                n += tx.execute(
                    "UPDATE operations SET state = 'failed', error = ?2, finished_ms = updated_ms \
                     WHERE id = ?1 AND state = 'active'",
                    params![id, msg],
                )?;
            }
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests;
