//! Application-consistency hooks: commands run in pods before and after volume snapshots.
//!
//! A backup spec lists [`HookSpec`]s, backup-wide and ordered. Each runs in the containers a
//! [`PodSelector`] matches, as a built-in [`Recipe`] (MariaDB/MySQL, PostgreSQL, MongoDB,
//! Redis, fsfreeze) or written out as any of three steps:
//!
//! - `pre`: a command run to completion before the snapshot;
//! - `session`: a process held open across the snapshot (its stdin stays open), for locks
//!   that die with their connection (`FLUSH TABLES WITH READ LOCK`, `pg_backup_start`);
//! - `post`: a command run after the snapshot.
//!
//! Every step has the hook's timeout (then the process is killed and the step fails) and
//! on-error policy ([`OnError`]: `fail` stops the backup, `continue` records and goes on).
//!
//! # Use
//!
//! ```text
//! let (report, outcome) = hooks::run_around(executor, &spec.hooks, || take_snapshots()).await?;
//! // report: every step's HookRecord, stored with the application backup;
//! // outcome: StepOutcome::Ran(result of take_snapshots) or Skipped(reason).
//! ```
//!
//! [`run_around`] runs the pre steps and opens the sessions in order, runs the closure only
//! if no `fail` hook failed, then releases in reverse order — whatever the closure returned,
//! also when it panicked. For finer control, [`quiesce`] returns a [`Quiesced`] guard; call
//! [`Quiesced::release`] after the snapshot (dropping the guard releases in the background).
//! Post steps run for every hook that was reached, even if its own pre step failed.
//!
//! Where commands run is a [`HookExecutor`]: [`KubeExecutor`] (the Kubernetes exec API,
//! credentials sent on stdin, not in the URL) or [`LocalExecutor`] (local processes, for
//! sources outside Kubernetes and for tests). Output is captured, bounded
//! ([`OUTPUT_LIMIT`]) and scrubbed of the hook's secret values.

mod exec;
mod kube;
mod local;
mod recipes;
mod run;
mod spec;

pub use exec::{
    EnvVar, ExecError, ExecOutput, ExecTarget, ExitFuture, HookExecutor, OUTPUT_LIMIT, Secret,
    Session,
};
pub use kube::KubeExecutor;
pub(crate) use kube::exit_code;
pub use local::LocalExecutor;
pub(crate) use recipes::{MARIADB_PASSWORD, PG_CREDENTIALS};
pub use recipes::{READY_MARKER, Recipe, postgres_backup_label};
pub use run::{
    HookRecord, HookReport, Phase, Quiesced, StepOutcome, quiesce, run_around, validate,
};
pub use spec::{
    EnvSource, HookSpec, OnError, PodSelector, SessionSpec, SpecError, Steps, parse_hooks,
};

#[cfg(test)]
mod tests;
