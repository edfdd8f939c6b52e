//! Arguments of the maintenance commands: forget, prune, check, repair, diff, unlock.

use clap::{Args, Subcommand};

use crate::args::FilterArgs;

/// Keep rules of `forget` (also used by the scheduler).
#[allow(
    clippy::struct_field_names,
    reason = "the fields are the --keep-* flags, named as users type them"
)]
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct KeepArgs {
    /// Keep the N newest snapshots.
    #[arg(long, default_value_t = 0)]
    pub(crate) keep_last: u32,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, default_value_t = 0)]
    pub(crate) keep_hourly: u32,
    /// … of the last N days.
    #[arg(long, default_value_t = 0)]
    pub(crate) keep_daily: u32,
    /// … of the last N ISO weeks.
    #[arg(long, default_value_t = 0)]
    pub(crate) keep_weekly: u32,
    /// … of the last N months.
    #[arg(long, default_value_t = 0)]
    pub(crate) keep_monthly: u32,
    /// … of the last N years.
    #[arg(long, default_value_t = 0)]
    pub(crate) keep_yearly: u32,
    /// Keep every snapshot within this span of the newest one of its group (`7d`, `36h`,
    /// `1y 6mo`, `P2W`).
    #[arg(long)]
    pub(crate) keep_within: Option<String>,
    /// Keep every snapshot with this tag (repeatable).
    #[arg(long)]
    pub(crate) keep_tag: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ForgetArgs {
    #[command(flatten)]
    pub(crate) keep: KeepArgs,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
    /// Show what would be forgotten and which rule keeps the rest; change nothing.
    #[arg(long, short = 'n')]
    pub(crate) dry_run: bool,
    /// Run `prune` afterwards.
    #[arg(long)]
    pub(crate) prune: bool,
    #[command(flatten)]
    pub(crate) prune_opts: PruneOpts,
}

/// Options shared by `prune` and `forget --prune`.
#[derive(Debug, Args, Clone)]
pub(crate) struct PruneOpts {
    /// Repack a pack when at least this percentage of its bytes is unreferenced (100: only
    /// delete packs that are wholly unreferenced).
    #[arg(long, default_value = "50", value_name = "PERCENT")]
    pub(crate) repack_unused: f64,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Show what would be deleted, marked and repacked; change nothing.
    #[arg(long, short = 'n')]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) opts: PruneOpts,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Read every pack: authenticate every byte and recompute every blob id.
    #[arg(long)]
    pub(crate) read_data: bool,
    /// Read only this share of the packs, chosen at random (`10%`).
    #[arg(long, value_name = "PERCENT", conflicts_with = "read_data")]
    pub(crate) read_data_subset: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RepairCommand {
    /// Rebuild the index from the packs' trailers.
    Index,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The older snapshot (id, prefix or `latest`).
    pub(crate) first: String,
    /// The newer snapshot.
    pub(crate) second: String,
}

#[derive(Debug, Args)]
pub(crate) struct UnlockArgs {
    /// Remove every lock, also those of running processes (dangerous: a prune may then
    /// delete data a running backup uses).
    #[arg(long)]
    pub(crate) remove_all: bool,
}
