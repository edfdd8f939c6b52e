//! Schedules: a trigger, the backup to run, the keep rules applied after it; stored by name.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::calendar::Trigger;
use crate::db::{StateDb, from_ms, to_ms};
use crate::error::{Error, Result};

/// Which snapshots `forget` keeps after a scheduled backup (`None`: rule not set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct KeepRules {
    /// The newest N.
    pub last: Option<u32>,
    /// The newest of each of the last N hours.
    pub hourly: Option<u32>,
    /// … days.
    pub daily: Option<u32>,
    /// … weeks.
    pub weekly: Option<u32>,
    /// … months.
    pub monthly: Option<u32>,
    /// … years.
    pub yearly: Option<u32>,
}

impl KeepRules {
    /// Whether no rule is set (then nothing is forgotten).
    pub fn is_empty(&self) -> bool {
        self.flags().is_empty()
    }

    /// The rules as `forget` flags: `["--keep-last", "7", …]`.
    pub fn flags(&self) -> Vec<String> {
        [
            ("--keep-last", self.last),
            ("--keep-hourly", self.hourly),
            ("--keep-daily", self.daily),
            ("--keep-weekly", self.weekly),
            ("--keep-monthly", self.monthly),
            ("--keep-yearly", self.yearly),
        ]
        .into_iter()
        .filter_map(|(f, v)| v.map(|n| [f.to_string(), n.to_string()]))
        .flatten()
        .collect()
    }
}

/// The backup a schedule runs: what `cairn backup` is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BackupJob {
    /// Paths, or the one device with `volume`.
    pub sources: Vec<String>,
    /// Back up a block device or image.
    pub volume: bool,
    /// Tags.
    pub tags: Vec<String>,
    /// Host name to record.
    pub host: Option<String>,
    /// Source identity.
    pub source_id: Option<String>,
    /// Repository location (`None`: the daemon's default). Never holds credentials.
    pub repo: Option<String>,
}

impl BackupJob {
    /// The arguments of `cairn backup` for this job (after `backup`).
    pub fn backup_args(&self, full: bool) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(r) = &self.repo {
            a.extend(["--repo".to_string(), r.clone()]);
        }
        if self.volume {
            a.push("--volume".into());
        }
        for t in &self.tags {
            a.extend(["--tag".to_string(), t.clone()]);
        }
        if let Some(h) = &self.host {
            a.extend(["--host".to_string(), h.clone()]);
        }
        if let Some(s) = &self.source_id {
            a.extend(["--source-id".to_string(), s.clone()]);
        }
        if full {
            a.push("--full".into());
        }
        a.push("--".into());
        a.extend(self.sources.iter().cloned());
        a
    }
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Schedule {
    /// Its unique name.
    pub name: String,
    /// When it fires.
    pub trigger: Trigger,
    /// What it backs up.
    pub job: BackupJob,
    /// What it keeps afterwards.
    pub keep: KeepRules,
    /// Every Nth run is a `--full` backup.
    pub full_every: Option<u32>,
    /// Paused schedules do not run.
    pub paused: bool,
    /// When it was added.
    pub created: Timestamp,
    /// When it fires next (`None` until the daemon first plans it).
    pub next_due: Option<Timestamp>,
    /// How many runs it started.
    pub runs: u64,
}

/// The stored JSON of what a user set.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    trigger: Trigger,
    job: BackupJob,
    keep: KeepRules,
    full_every: Option<u32>,
}

impl Schedule {
    /// A new, unpaused schedule.
    ///
    /// # Errors
    /// The name is not usable or the trigger is invalid.
    pub fn new(
        name: &str,
        trigger: Trigger,
        job: BackupJob,
        keep: KeepRules,
        full_every: Option<u32>,
    ) -> Result<Self> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(Error::ScheduleName(name.to_string()));
        }
        trigger.check()?;
        Ok(Self {
            name: name.to_string(),
            trigger,
            job,
            keep,
            full_every: full_every.filter(|n| *n > 0),
            paused: false,
            created: Timestamp::now(),
            next_due: None,
            runs: 0,
        })
    }
}

/// What the daemon records when it starts a scheduled run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScheduleRun {
    /// The run's number (1 for the first).
    pub number: u64,
}

impl StateDb {
    /// Stores a new schedule.
    ///
    /// # Errors
    /// A schedule of that name exists, or the database cannot be written.
    pub fn add_schedule(&self, s: &Schedule) -> Result<()> {
        let spec = Spec {
            trigger: s.trigger.clone(),
            job: s.job.clone(),
            keep: s.keep,
            full_every: s.full_every,
        };
        let json = serde_json::to_string(&spec).map_err(|e| self.decode_err("schedule", e))?;
        let inserted = self.write("adding a schedule", |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO schedules (name, spec, paused, created_ms, next_due_ms, runs) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![
                    s.name,
                    json,
                    s.paused,
                    to_ms(s.created),
                    s.next_due.map(to_ms)
                ],
            )
        })?;
        if inserted == 0 {
            return Err(Error::ScheduleExists(s.name.clone()));
        }
        Ok(())
    }

    /// All schedules, by name.
    ///
    /// # Errors
    /// The database cannot be read, or a record does not decode.
    pub fn schedules(&self) -> Result<Vec<Schedule>> {
        let rows = self.read("listing schedules", |c| {
            c.prepare(
                "SELECT name, spec, paused, created_ms, next_due_ms, runs FROM schedules ORDER BY name",
            )?
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(|r| self.decode(r)).collect()
    }

    /// One schedule.
    ///
    /// # Errors
    /// No such schedule, or the database cannot be read.
    pub fn schedule(&self, name: &str) -> Result<Schedule> {
        let r = self.read("reading a schedule", |c| {
            c.query_row(
                "SELECT name, spec, paused, created_ms, next_due_ms, runs FROM schedules WHERE name = ?1",
                [name],
                row,
            )
            .optional()
        })?;
        let r = r.ok_or_else(|| Error::NoSchedule(name.to_string()))?;
        self.decode(r)
    }

    /// Deletes a schedule (its recorded operations stay).
    ///
    /// # Errors
    /// No such schedule, or the database cannot be written.
    pub fn remove_schedule(&self, name: &str) -> Result<()> {
        let n = self.write("removing a schedule", |tx| {
            tx.execute("DELETE FROM schedules WHERE name = ?1", [name])
        })?;
        if n == 0 {
            return Err(Error::NoSchedule(name.to_string()));
        }
        Ok(())
    }

    /// Pauses or resumes a schedule. Both forget the planned time: a resumed schedule
    /// fires at its next time after now, and runs missed while paused are not made up.
    ///
    /// # Errors
    /// No such schedule, or the database cannot be written.
    pub fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        let n = self.write("pausing or resuming a schedule", |tx| {
            tx.execute(
                "UPDATE schedules SET paused = ?2, next_due_ms = NULL WHERE name = ?1",
                params![name, paused],
            )
        })?;
        if n == 0 {
            return Err(Error::NoSchedule(name.to_string()));
        }
        Ok(())
    }

    /// Sets when a schedule fires next (after a skipped run, or when first planned).
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn set_next_due(&self, name: &str, next: Timestamp) -> Result<()> {
        self.write("planning a schedule", |tx| {
            tx.execute(
                "UPDATE schedules SET next_due_ms = ?2 WHERE name = ?1",
                params![name, to_ms(next)],
            )
            .map(drop)
        })
    }

    /// Counts a started run and sets the next time, in one transaction; returns the run.
    ///
    /// # Errors
    /// No such schedule, or the database cannot be written.
    pub fn start_run(&self, name: &str, next: Timestamp) -> Result<ScheduleRun> {
        let number = self.write("counting a scheduled run", |tx| {
            tx.query_row(
                "UPDATE schedules SET runs = runs + 1, next_due_ms = ?2 WHERE name = ?1 \
                 RETURNING runs",
                params![name, to_ms(next)],
                |r| r.get::<_, i64>(0),
            )
            .optional()
        })?;
        let number = number.ok_or_else(|| Error::NoSchedule(name.to_string()))?;
        Ok(ScheduleRun {
            number: number.max(0) as u64,
        })
    }

    fn decode(&self, r: RawSchedule) -> Result<Schedule> {
        let spec: Spec = serde_json::from_str(&r.spec)
            .map_err(|e| self.decode_err(&format!("schedule {:?}", r.name), e))?;
        Ok(Schedule {
            name: r.name,
            trigger: spec.trigger,
            job: spec.job,
            keep: spec.keep,
            full_every: spec.full_every,
            paused: r.paused,
            created: from_ms(r.created_ms),
            next_due: r.next_due_ms.map(from_ms),
            runs: r.runs.max(0) as u64,
        })
    }
}

struct RawSchedule {
    name: String,
    spec: String,
    paused: bool,
    created_ms: i64,
    next_due_ms: Option<i64>,
    runs: i64,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawSchedule> {
    Ok(RawSchedule {
        name: r.get(0)?,
        spec: r.get(1)?,
        paused: r.get(2)?,
        created_ms: r.get(3)?,
        next_due_ms: r.get(4)?,
        runs: r.get(5)?,
    })
}
