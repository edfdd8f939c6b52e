//! Snapshot manifests: the last object a backup writes, and what makes it visible.

use serde::{Deserialize, Serialize};

use crate::tree::check_name;
use crate::versioned::{decode_json, encode_json};
use crate::{FormatError, Id, Node, VolumeMap};

/// What kind of source a snapshot captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SourceKind {
    /// Files and directories.
    Tree,
    /// A block device or volume image.
    Volume,
    /// Standard input (a logical dump).
    Stream,
}

/// Where a snapshot came from. `identity` is what the next backup of the same source matches
/// to find its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Kind of source.
    pub kind: SourceKind,
    /// Paths or names given on the command line (absolute paths for trees and volumes).
    pub paths: Vec<String>,
    /// Stable identity: `kind:host:paths…`, unless the user set one.
    pub identity: String,
}

/// The content of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Root {
    /// A file tree (or a single file or stream): the root node, with its subtree for directories.
    Node(Box<Node>),
    /// A block volume.
    Volume(VolumeMap),
}

/// Statistics of the backup that wrote a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotSummary {
    /// Files seen.
    pub files: u64,
    /// Directories seen.
    pub dirs: u64,
    /// Files whose content was read (new or changed).
    pub files_read: u64,
    /// Bytes of content in the snapshot.
    pub total_bytes: u64,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Blobs added to the repository.
    pub blobs_added: u64,
    /// Plaintext bytes of the blobs added.
    pub bytes_added: u64,
    /// Bytes written to storage (packs, after compression and encryption).
    pub bytes_stored: u64,
    /// Entries skipped with a warning (unreadable files …).
    pub errors: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

/// `snapshots/<id>`, sealed JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Snapshot version (1).
    pub version: u32,
    /// When the backup started.
    pub time: jiff::Timestamp,
    /// Host that made it.
    pub hostname: String,
    /// User that made it.
    pub username: String,
    /// User tags.
    pub tags: Vec<String>,
    /// The source.
    pub source: Source,
    /// The snapshot this one was made against, if any (informational: every snapshot is a
    /// synthetic full and restores on its own).
    pub parent: Option<Id>,
    /// The content.
    pub root: Root,
    /// Statistics.
    pub summary: SnapshotSummary,
    /// Program that wrote it (`cairn 0.1.0`).
    pub program: String,
    /// Until when the snapshot and every object it needs are locked on the store (S3 Object
    /// Lock); `None` for a snapshot without a lock. Only version 2 has it, so that a reader
    /// that does not know locks refuses the snapshot instead of deleting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until: Option<jiff::Timestamp>,
}

impl Snapshot {
    /// Newest snapshot version.
    pub const VERSION: u32 = 2;

    /// Sets the lock and the version that goes with it: 2 with a lock, 1 without (so that
    /// snapshots without a lock stay readable by readers of version 1).
    pub fn set_retain_until(&mut self, until: Option<jiff::Timestamp>) {
        self.retain_until = until;
        self.version = if until.is_some() { 2 } else { 1 };
    }

    /// Whether the snapshot is locked at `now`.
    pub fn is_retained_at(&self, now: jiff::Timestamp) -> bool {
        self.retain_until.is_some_and(|t| t > now)
    }

    /// Encodes as JSON.
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_bytes(&self) -> Result<Vec<u8>, FormatError> {
        encode_json("snapshot", self)
    }

    /// Parses a snapshot and validates its root (a node as a tree entry, a volume map's
    /// geometry).
    ///
    /// # Errors
    /// Malformed JSON, unsupported version, an invalid root node or volume map.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FormatError> {
        let s: Self = decode_json("snapshot", Self::VERSION, bytes, |s: &Self| s.version)?;
        if s.version < 2 && s.retain_until.is_some() {
            return Err(FormatError::invalid(
                "snapshot",
                "retain-until needs snapshot version 2",
            ));
        }
        match &s.root {
            Root::Volume(map) => map.validate()?,
            // The root may be unnamed (a whole filesystem); otherwise its name follows the
            // rules of directory entries, as a restore may create it under the target.
            Root::Node(node) => {
                check_name("snapshot", &node.name)?;
                node.validate("snapshot")?;
            }
        }
        Ok(s)
    }
}
