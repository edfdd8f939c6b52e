//! Cairn's repository engine: chunk → hash → compress → encrypt → pack → index; snapshots;
//! backup of file trees, streams and block volumes; restore; keys.
//!
//! The engine knows nothing of Kubernetes and never prints. Storage is async
//! ([`cairn_storage::Storage`]); CPU work runs on the rayon pool and hands packs to an async
//! upload task through a bounded channel. See `ARCHITECTURE.md` and `docs/format.md`.

mod archiver;
mod backup;
mod blob;
mod catalog;
mod check;
mod copy;
mod diff;
mod error;
mod forget;
mod fsmeta;
mod immutable;
mod index;
mod keys;
mod lock;
mod progress;
mod prune;
mod reader;
mod refs;
mod repair;
mod repository;
mod restore;
mod retention;
mod snapshots;
mod volume;
mod volume_changes;
mod volume_restore;
mod worker;
mod writer;

pub use backup::{BackupOptions, BackupOutcome, ParentChoice, backup_paths, backup_stream};
pub use catalog::{CatalogEntry, catalog};
pub use check::{Affected, CheckOptions, CheckReport, CheckStats, Problem, check};
pub use copy::{Copied, CopyOutcome, copy_snapshots};
pub use diff::{ChangeKind, EntryChange, SnapshotDiff, VolumeDiff, diff};
pub use error::{Error, Result, error_message};
pub use forget::{ForgetEntry, forget, retention_group};
pub use index::{BlobLocation, Index};
pub use keys::{KeyInfo, local_identity};
pub use lock::{LockGuard, LockInfo, LockOptions};
pub use progress::{DynProgress, NoProgress, Progress};
pub use prune::{PruneOptions, PruneReport, prune};
pub use repair::{RepairReport, repair_index};
pub use repository::{InitOptions, Repository};
pub use restore::{RestoreOptions, RestoreOutcome, restore};
pub use retention::{Decision, KeepRules, RetentionItem, select as select_retention};
pub use snapshots::SnapshotFilter;
pub use volume::{VolumeBackupOptions, backup_volume};
pub use volume_changes::{BlockSelection, COMPACT_DIVISOR, MAX_PATCHES, diff_images};
pub use volume_restore::verify_volume;

pub use cairn_crypto::KdfParams;
pub use cairn_format as format;
pub use tokio_util::sync::CancellationToken;
