//! Arguments of the operating commands: `status`, `schedule`, `daemon`.

use std::net::SocketAddr;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Refresh every second until interrupted.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Show all finished operations.
    #[arg(long, conflicts_with = "limit")]
    pub(crate) all: bool,
    /// How many finished operations to show (active ones are always shown).
    #[arg(long, default_value_t = 10)]
    pub(crate) limit: usize,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Add a schedule: a backup that `cairn daemon` runs, then `forget --prune` with the
    /// keep rules.
    Add(Box<ScheduleAddArgs>),
    /// List the schedules.
    List,
    /// Remove a schedule (its recorded runs stay).
    Remove {
        /// The schedule's name.
        name: String,
    },
    /// Stop running a schedule until resumed.
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Run a paused schedule again, from its next time on (missed runs are not made up).
    Resume {
        /// The schedule's name.
        name: String,
    },
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools, reason = "flags of the command line")]
pub(crate) struct ScheduleAddArgs {
    /// A unique name (letters, digits, '-', '_', '.').
    pub(crate) name: String,
    /// Paths to back up, or the one device / image with --volume.
    #[arg(required = true)]
    pub(crate) sources: Vec<String>,
    /// When to run: a cron expression ("minute hour day month weekday", optionally seconds
    /// first), in --timezone.
    #[arg(
        long,
        conflicts_with = "interval",
        required_unless_present = "interval"
    )]
    pub(crate) cron: Option<String>,
    /// When to run: every interval (90s, 15m, 1h, 1d).
    #[arg(long)]
    pub(crate) interval: Option<String>,
    /// IANA time zone of --cron (default: the system's, evaluated when the daemon runs).
    #[arg(long, requires = "cron")]
    pub(crate) timezone: Option<String>,
    /// Back up a block device or volume image.
    #[arg(long)]
    pub(crate) volume: bool,
    /// Tag the snapshots (repeatable).
    #[arg(long = "tag")]
    pub(crate) tags: Vec<String>,
    /// Host name to record.
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// Source identity to record (and to select the snapshots the keep rules apply to).
    #[arg(long)]
    pub(crate) source_id: Option<String>,
    /// Keep the newest N snapshots.
    #[arg(long)]
    pub(crate) keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours.
    #[arg(long)]
    pub(crate) keep_hourly: Option<u32>,
    /// … days.
    #[arg(long)]
    pub(crate) keep_daily: Option<u32>,
    /// … weeks.
    #[arg(long)]
    pub(crate) keep_weekly: Option<u32>,
    /// … months.
    #[arg(long)]
    pub(crate) keep_monthly: Option<u32>,
    /// … years.
    #[arg(long)]
    pub(crate) keep_yearly: Option<u32>,
    /// Every Nth run re-reads everything (`backup --full`).
    #[arg(long)]
    pub(crate) full_every: Option<u32>,
}

#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// Serve Prometheus metrics on this address (like 127.0.0.1:9464) at /metrics.
    #[arg(long)]
    pub(crate) metrics_listen: Option<SocketAddr>,
}
