//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod ops;
pub(crate) use ops::{DaemonArgs, ScheduleAddArgs, ScheduleCommand, StatusArgs};

/// Encrypted, deduplicated, incremental backups of volumes, file trees and streams.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args, Clone)]
pub(crate) struct GlobalArgs {
    /// Repository location: a path (local disk, NFS mount), s3://bucket/prefix,
    /// azblob://container/prefix, gs://bucket/prefix, or the name of stored credentials that
    /// have a location. Default: the embedded repository in the user's data directory.
    #[arg(
        long,
        short = 'r',
        global = true,
        env = "CAIRN_REPOSITORY",
        hide_env_values = true
    )]
    pub(crate) repo: Option<String>,
    /// Read the passphrase from this file (else CAIRN_PASSWORD, else a prompt on a terminal).
    #[arg(
        long,
        global = true,
        env = "CAIRN_PASSWORD_FILE",
        hide_env_values = true
    )]
    pub(crate) password_file: Option<PathBuf>,
    /// Machine-readable JSON output on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Print only results and errors.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
    /// More log output (repeat for more).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// No progress bars.
    #[arg(long, global = true)]
    pub(crate) no_progress: bool,
    /// Stored credentials (name or id) for a remote --repo. Default: the only stored
    /// credentials of the location's provider, if there is exactly one.
    #[arg(long, global = true, env = "CAIRN_CREDENTIALS")]
    pub(crate) credentials: Option<String>,
    /// Limit uploads to this many KiB/s.
    #[arg(long, global = true, value_name = "KIB_PER_S")]
    pub(crate) limit_upload: Option<u64>,
    /// Limit downloads to this many KiB/s.
    #[arg(long, global = true, value_name = "KIB_PER_S")]
    pub(crate) limit_download: Option<u64>,
    /// Worker threads for hashing, compression and encryption (default: one per core).
    #[arg(long, global = true)]
    pub(crate) threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a repository.
    Init(InitArgs),
    /// Back up paths, a volume (--volume) or standard input (--stdin).
    Backup(BackupArgs),
    /// Restore a snapshot (or a path inside it) to a directory, file or device.
    Restore(RestoreArgs),
    /// List snapshots.
    #[command(alias = "list")]
    Snapshots(SnapshotsArgs),
    /// List the files inside a snapshot.
    Catalog(CatalogArgs),
    /// Manage the passphrases (keys) of a repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Kubernetes applications: back up, restore, list, describe.
    #[command(subcommand)]
    App(Box<AppCommand>),
    /// Active and recent operations on this machine (backups, restores, copies, prunes …).
    Status(StatusArgs),
    /// Manage scheduled backups (run by `cairn daemon`).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Run the schedules; optionally serve Prometheus metrics.
    Daemon(DaemonArgs),
    /// Manage stored credentials for remote locations (secrets are kept encrypted).
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Copy snapshots to another repository (another store, credentials, passphrase).
    Copy(CopyArgs),
    /// Delete snapshots that keep rules do not keep (grouped by source and host).
    Forget(crate::commands::maint_args::ForgetArgs),
    /// Delete data no snapshot references; repack mostly-empty packs. Runs alongside backups.
    Prune(crate::commands::maint_args::PruneArgs),
    /// Verify the repository's structure and, with --read-data, every stored byte.
    Check(crate::commands::maint_args::CheckArgs),
    /// Repair a damaged repository.
    #[command(subcommand)]
    Repair(crate::commands::maint_args::RepairCommand),
    /// Show what changed between two snapshots.
    Diff(crate::commands::maint_args::DiffArgs),
    /// Remove stale locks (left by processes that died).
    Unlock(crate::commands::maint_args::UnlockArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum CredentialsCommand {
    /// Store credentials for S3, Azure Blob or Google Cloud Storage; prints the new id.
    Create(Box<CredentialsCreateArgs>),
    /// List stored credentials (never their secrets).
    List,
    /// Delete stored credentials by name or id.
    Delete {
        /// Name or id.
        name: String,
    },
}

/// Secrets can come from a flag (visible to other local users in the process list), a file
/// (the way Kubernetes Secrets are mounted) or the environment variable named in each help.
#[derive(Debug, Args)]
pub(crate) struct CredentialsCreateArgs {
    /// Name to refer to these credentials by (--credentials NAME, --repo NAME).
    pub(crate) name: String,
    /// Which store.
    #[arg(long, value_enum)]
    pub(crate) provider: crate::credentials::Provider,
    /// Default location for --repo NAME, e.g. s3://bucket/prefix.
    #[arg(long)]
    pub(crate) location: Option<String>,
    /// Endpoint URL (S3-compatible stores, Azure emulators, GCS emulators).
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// S3 region.
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// S3: address buckets as bucket.host (default: path style, host/bucket).
    #[arg(long)]
    pub(crate) virtual_host_style: bool,
    /// Allow a plain-HTTP endpoint (a lab; credentials and data travel unencrypted).
    #[arg(long)]
    pub(crate) disable_tls: bool,
    /// S3 access key id (else AWS_ACCESS_KEY_ID).
    #[arg(long)]
    pub(crate) access_key: Option<String>,
    /// S3 secret access key (else --secret-key-file, else AWS_SECRET_ACCESS_KEY).
    #[arg(long, hide_env_values = true)]
    pub(crate) secret_key: Option<String>,
    /// File holding the S3 secret access key.
    #[arg(long)]
    pub(crate) secret_key_file: Option<PathBuf>,
    /// Azure storage account name (else AZURE_STORAGE_ACCOUNT).
    #[arg(long)]
    pub(crate) account_name: Option<String>,
    /// Azure account key (else --account-key-file, else AZURE_STORAGE_KEY).
    #[arg(long)]
    pub(crate) account_key: Option<String>,
    /// File holding the Azure account key.
    #[arg(long)]
    pub(crate) account_key_file: Option<PathBuf>,
    /// Azure SAS token (else --sas-token-file, else AZURE_STORAGE_SAS_TOKEN).
    #[arg(long)]
    pub(crate) sas_token: Option<String>,
    /// File holding the Azure SAS token.
    #[arg(long)]
    pub(crate) sas_token_file: Option<PathBuf>,
    /// Google Cloud project (informational).
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// Google service-account JSON key file (its content is stored encrypted).
    #[arg(long)]
    pub(crate) json_key_file: Option<PathBuf>,
    /// Google: send unsigned requests (an emulator or a public bucket).
    #[arg(long)]
    pub(crate) anonymous: bool,
    /// Repository passphrase for repositories used with these credentials (else
    /// --encryption-passphrase-file, else CAIRN_ENCRYPTION_PASSPHRASE).
    #[arg(long)]
    pub(crate) encryption_passphrase: Option<String>,
    /// File holding the repository passphrase.
    #[arg(long)]
    pub(crate) encryption_passphrase_file: Option<PathBuf>,
    /// S3: lock every backup made with these credentials for this many days (Object Lock
    /// retention; the bucket must have Object Lock enabled). `backup --retain-*` overrides it.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub(crate) retain_days: Option<u32>,
}

/// Cost of deriving a key from a passphrase.
#[derive(Debug, Args, Clone, Copy)]
pub(crate) struct KdfArgs {
    /// Argon2id memory in KiB (default 65536).
    #[arg(long, default_value_t = 65536)]
    pub(crate) kdf_memory: u32,
    /// Argon2id passes (default 3).
    #[arg(long, default_value_t = 3)]
    pub(crate) kdf_iterations: u32,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    pub(crate) kdf: KdfArgs,
    /// zstd level for new data (0: off).
    #[arg(long, default_value_t = 1)]
    pub(crate) compression: i32,
    /// Fixed chunk size of volumes in KiB (power of two, 4 to 4096).
    #[arg(long, default_value_t = 64)]
    pub(crate) volume_chunk_kib: u32,
    /// Target pack size in MiB.
    #[arg(long, default_value_t = 16)]
    pub(crate) pack_mib: u32,
}

#[derive(Debug, Args)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "command-line flags, each independent"
)]
pub(crate) struct BackupArgs {
    /// Paths to back up (a directory tree, files), or the device / image with --volume.
    pub(crate) paths: Vec<PathBuf>,
    /// Back up a block device or volume image: fixed-size chunks, zeros stored as holes.
    #[arg(long, conflicts_with = "stdin")]
    pub(crate) volume: bool,
    /// Back up standard input (a logical dump) as the file --name.
    #[arg(long, requires = "name")]
    pub(crate) stdin: bool,
    /// File name of the standard-input backup.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag")]
    pub(crate) tags: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long)]
    pub(crate) host: Option<String>,
    /// Source identity to record and to find the parent by (default: kind, host and paths).
    #[arg(long)]
    pub(crate) source_id: Option<String>,
    /// Compare against this snapshot instead of the latest of the same source.
    #[arg(long, conflicts_with = "full")]
    pub(crate) parent: Option<String>,
    /// Re-read and re-hash everything instead of trusting the parent.
    #[arg(long)]
    pub(crate) full: bool,
    /// Pack uploads in flight.
    #[arg(long, default_value_t = 2)]
    pub(crate) upload_concurrency: usize,
    /// Volumes: read only the extents in FILE (CSI SnapshotMetadata JSON or `offset,length`
    /// lines) and take the rest from the parent snapshot of the same source.
    #[arg(long, value_name = "FILE", requires = "volume", conflicts_with_all = ["allocated_blocks", "since_image", "full"])]
    pub(crate) changed_blocks: Option<PathBuf>,
    /// Volumes: read only the extents in FILE; everything else is stored as zeros (a first
    /// backup that skips unallocated space).
    #[arg(long, value_name = "FILE", requires = "volume", conflicts_with_all = ["since_image", "full"])]
    pub(crate) allocated_blocks: Option<PathBuf>,
    /// Volumes: compute the changed extents by comparing the volume with this older image
    /// of it, then back up as with --changed-blocks.
    #[arg(long, value_name = "OLD", requires = "volume", conflicts_with = "full")]
    pub(crate) since_image: Option<PathBuf>,
    /// Volumes: if the block list does not fit the volume or its parent, read the whole
    /// volume (with a warning) instead of failing.
    #[arg(long, requires = "volume")]
    pub(crate) full_on_mismatch: bool,
    /// Volumes: store every chunk a changed-block list touches whole, not as patches.
    #[arg(long, requires = "volume")]
    pub(crate) no_patches: bool,
    /// Lock the snapshot and everything it needs against deletion on the store until TIME
    /// (RFC 3339, e.g. 2027-01-31T00:00:00Z). Needs S3 with Object Lock enabled. Takes
    /// precedence over --retain-for and CAIRN_RETAIN_FOR.
    #[arg(long, value_name = "TIME")]
    pub(crate) retain_until: Option<jiff::Timestamp>,
    /// Like --retain-until, for a span from now (`30d`, `2w`, `1y`). Default: the
    /// `--retain-days` of the stored credentials in use.
    #[arg(long, value_name = "SPAN", env = "CAIRN_RETAIN_FOR")]
    pub(crate) retain_for: Option<jiff::Span>,
}

/// Filters used to choose snapshots.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct FilterArgs {
    /// Only snapshots from this host (repeatable).
    #[arg(long = "filter-host")]
    pub(crate) hosts: Vec<String>,
    /// Only snapshots with this tag (repeatable: all must match).
    #[arg(long = "filter-tag")]
    pub(crate) tags: Vec<String>,
    /// Only snapshots of this source path or identity (repeatable).
    #[arg(long = "filter-source")]
    pub(crate) sources: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// SNAPSHOT[:PATH]: an id, an id prefix or `latest`, optionally with a path inside it.
    pub(crate) snapshot: String,
    /// Where to restore: a directory (trees), a file (files, streams, volumes) or a block device.
    #[arg(long, short)]
    pub(crate) target: PathBuf,
    /// Restore over a non-empty target.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// Volumes: re-read the target afterwards and compare every chunk.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Volumes: write nothing; compare the target (e.g. the source device) with the snapshot
    /// and exit 1 if they differ.
    #[arg(long, conflicts_with_all = ["verify", "overwrite"])]
    pub(crate) verify_only: bool,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// Snapshots (ids, prefixes or `latest`); default: every snapshot the filters match.
    pub(crate) snapshots: Vec<String>,
    /// The target repository: a path, a URL or the name of stored credentials.
    #[arg(long = "to", value_name = "LOCATION")]
    pub(crate) to: String,
    /// File with the target's passphrase (else CAIRN_TO_PASSWORD, else the target
    /// credentials' encryption passphrase, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub(crate) to_password_file: Option<PathBuf>,
    /// Stored credentials for the target (name or id).
    #[arg(long, value_name = "NAME")]
    pub(crate) to_credentials: Option<String>,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
}

#[derive(Debug, Args)]
pub(crate) struct SnapshotsArgs {
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CatalogArgs {
    /// Snapshot id, prefix or `latest`.
    pub(crate) snapshot: String,
    /// Directory inside the snapshot.
    #[arg(default_value = "")]
    pub(crate) path: String,
    /// List everything below, not just one level.
    #[arg(long, short = 'R')]
    pub(crate) recursive: bool,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// List the keys.
    List,
    /// Add a passphrase (from --new-password-file, CAIRN_NEW_PASSWORD or a prompt).
    Add(NewKeyArgs),
    /// Remove a key by id or prefix (not the one in use, not the last).
    Remove {
        /// Key id or unique prefix.
        id: String,
    },
    /// Change the passphrase of the key in use.
    Passwd(NewKeyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct NewKeyArgs {
    /// Read the new passphrase from this file.
    #[arg(long)]
    pub(crate) new_password_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) kdf: KdfArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AppCommand {
    /// Back up a Kubernetes application: its resources and (with --with-data) its PVCs' data.
    Backup(AppBackupArgs),
    /// Restore an application backup into the current cluster.
    Restore(AppRestoreArgs),
    /// List application backups.
    List {
        /// Only backups of this application.
        name: Option<String>,
    },
    /// Show what an application backup holds, what it skipped and why.
    Describe {
        /// Snapshot id (or prefix) or application name (its newest backup).
        backup: String,
    },
}

/// How volume data is moved (Jobs running `cairn` in the cluster).
#[derive(Debug, Args)]
pub(crate) struct MoverArgs {
    /// Image of the data mover Jobs (must contain `cairn`).
    #[arg(long, default_value = "ghcr.io/cairn-backup/cairn:latest")]
    pub(crate) mover_image: String,
    /// Secret, in each application namespace, with CAIRN_REPOSITORY and CAIRN_PASSWORD.
    #[arg(long)]
    pub(crate) repo_secret: Option<String>,
    /// VolumeSnapshotClass (the cluster's default if unset).
    #[arg(long)]
    pub(crate) snapshot_class: Option<String>,
    /// Cut the volumes that share a namespace and CSI driver at one instant with a
    /// VolumeGroupSnapshot: auto (where the cluster serves it; if it fails, one by one, and
    /// the volumes' records say so), require (else those volumes are not backed up), off.
    #[arg(long, default_value = "auto", value_parser = ["auto", "require", "off"])]
    pub(crate) group_snapshots: String,
    /// VolumeGroupSnapshotClass (the driver's default if unset).
    #[arg(long)]
    pub(crate) group_snapshot_class: Option<String>,
    /// Data movers running at a time.
    #[arg(long, default_value_t = 4)]
    pub(crate) parallel: usize,
    /// Seconds to wait for a snapshot, a Job or a CRD.
    #[arg(long = "timeout", default_value_t = 600)]
    pub(crate) timeout_secs: u64,
}

#[derive(Debug, Args)]
pub(crate) struct AppBackupArgs {
    /// The application's name.
    pub(crate) name: String,
    /// Namespace to back up (repeatable).
    #[arg(long = "namespace", short = 'n')]
    pub(crate) namespaces: Vec<String>,
    /// Label selector (repeatable: an object is selected if any matches).
    #[arg(long = "selector", short = 'l')]
    pub(crate) selectors: Vec<String>,
    /// Only these kinds (repeatable).
    #[arg(long = "include-kind")]
    pub(crate) include_kinds: Vec<String>,
    /// Never these kinds (repeatable).
    #[arg(long = "exclude-kind")]
    pub(crate) exclude_kinds: Vec<String>,
    /// Leave out CRDs, PVs, storage classes and cluster roles the application depends on.
    #[arg(long)]
    pub(crate) no_cluster_dependencies: bool,
    /// Also back up the PVCs' data through data mover Jobs.
    #[arg(long)]
    pub(crate) with_data: bool,
    /// Copy from the live PVCs instead of CSI snapshots.
    #[arg(long, requires = "with_data")]
    pub(crate) pod_copy: bool,
    /// YAML or JSON file of hooks run around the snapshots (a list, or a map with `hooks:`;
    /// see docs/kubernetes.md).
    #[arg(long = "hooks", value_name = "FILE")]
    pub(crate) hooks: Option<PathBuf>,
    /// Save this PVC as a logical dump made in the pod that mounts it, instead of its
    /// blocks: NS/PVC=mariadb|postgresql[@CONTAINER] (repeatable). Restored by loading it
    /// into the restored database.
    #[arg(long = "dump", value_name = "NS/PVC=RECIPE")]
    pub(crate) dumps: Vec<cairn_kube::dump::DumpSpec>,
    #[command(flatten)]
    pub(crate) mover: MoverArgs,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools, reason = "command-line switches")]
pub(crate) struct AppRestoreArgs {
    /// Snapshot id (or prefix) or application name (its newest backup).
    pub(crate) backup: String,
    /// OLD=NEW namespace (repeatable).
    #[arg(long)]
    pub(crate) namespace_map: Vec<String>,
    /// OLD=NEW storage class (repeatable).
    #[arg(long)]
    pub(crate) storage_class_map: Vec<String>,
    /// OLD=NEW image prefix (repeatable).
    #[arg(long)]
    pub(crate) image_map: Vec<String>,
    /// KEY=VALUE label set on every restored object (repeatable).
    #[arg(long = "add-label")]
    pub(crate) add_labels: Vec<String>,
    /// JSON file of transforms (namespaceMap, patches …; see docs/kubernetes.md).
    #[arg(long)]
    pub(crate) transforms: Option<PathBuf>,
    /// Clone: suffix making cluster-scoped names unique, with provenance labels.
    #[arg(long = "clone")]
    pub(crate) clone_suffix: Option<String>,
    /// Objects that exist: skip, update or replace.
    #[arg(long, default_value = "skip")]
    pub(crate) existing: String,
    /// Also delete selected objects that did not exist at backup time.
    #[arg(long)]
    pub(crate) rollback: bool,
    /// Partial restore: only these kinds (repeatable).
    #[arg(long = "only-kind")]
    pub(crate) only_kinds: Vec<String>,
    /// Partial restore: only these names (repeatable).
    #[arg(long = "only-name")]
    pub(crate) only_names: Vec<String>,
    /// Partial restore: only objects matching this label selector.
    #[arg(long)]
    pub(crate) only_selector: Option<String>,
    /// Restore PersistentVolumes too (instead of provisioning new ones).
    #[arg(long)]
    pub(crate) restore_pvs: bool,
    /// Do not check that what a partial restore needs exists.
    #[arg(long)]
    pub(crate) no_dependency_check: bool,
    /// Creation order, as kinds (`*` for the rest), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) order: Vec<String>,
    /// Restore the PVCs' data too (workloads wait at zero replicas until it is in place).
    #[arg(long)]
    pub(crate) with_data: bool,
    /// Restore data into the existing PVCs: scale their workloads to 0 and back.
    #[arg(long, requires = "with_data")]
    pub(crate) to_production: bool,
    /// Print the objects that would be created, in order, and stop.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) mover: MoverArgs,
}
