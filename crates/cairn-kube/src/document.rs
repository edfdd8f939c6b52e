//! The application backup document: everything a restore needs besides the volume data, as one
//! versioned JSON document (`docs/format.md`, "Application backups"). Pure: no I/O.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::object::{ObjectKey, group_of};
use crate::select::Selection;

/// Version of the document this code writes; readers accept this version and older.
pub const FORMAT_VERSION: u32 = 1;

/// Outcome of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum BackupStatus {
    /// Every selected resource and volume was saved.
    Completed,
    /// Some items failed; `problems` says which and why.
    PartiallyFailed,
}

/// A resource type of the source cluster, from discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    /// API group (`""` for core).
    pub group: String,
    /// Version used to read it.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Defined by a CustomResourceDefinition.
    pub custom: bool,
}

/// The source cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// `gitVersion` of the API server.
    pub version: String,
    /// Every listable resource type discovery reported.
    pub resource_types: Vec<ResourceType>,
    /// The cluster serves `groupsnapshot.storage.k8s.io` (VolumeGroupSnapshot).
    pub group_snapshots: bool,
}

/// An object found by the selection but not saved, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// The object.
    pub object: ObjectKey,
    /// Why it is not backed up.
    pub reason: String,
}

/// A cluster-scoped object added because a selected object depends on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// The object added.
    pub object: ObjectKey,
    /// Which selected object needs it, and how.
    pub reason: String,
}

/// How a PVC's data was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum VolumeMethod {
    /// CSI VolumeSnapshot, then a data mover Job reading a PVC made from it.
    CsiSnapshot,
    /// A data mover reading the mount of a running pod.
    PodCopy,
    /// A logical dump streamed into `cairn backup --stdin`.
    Dump,
    /// Not saved (resources only).
    None,
}

/// The data of one PVC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeBackup {
    /// Namespace of the PVC.
    pub namespace: String,
    /// Name of the PVC.
    pub pvc: String,
    /// How the data was saved.
    pub method: VolumeMethod,
    /// `Block` or `Filesystem`.
    pub volume_mode: String,
    /// Requested size (`10Gi`).
    #[serde(default)]
    pub size: Option<String>,
    /// The cairn snapshot holding the data.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// The VolumeGroupSnapshot its CSI snapshot was a member of: every volume with the same
    /// group was cut at the same instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_snapshot: Option<String>,
    /// Something that did not stop the backup but weakens it (a group snapshot that failed,
    /// so this volume was cut on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// For a logical dump: the tool that made it, to load it with on restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump: Option<DumpInfo>,
    /// Why the data is missing, if it is.
    #[serde(default)]
    pub error: Option<String>,
}

/// How a logical dump was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DumpInfo {
    /// `mariadb` or `postgresql`.
    pub recipe: String,
    /// The container it ran in, if one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// One failed item of a `PartiallyFailed` backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The item (object, volume, hook).
    pub item: String,
    /// What went wrong.
    pub reason: String,
}

/// One application backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AppBackup {
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u32,
    /// The application's name (the backup's identity is `app:<name>`).
    pub name: String,
    /// When the backup started.
    pub started: jiff::Timestamp,
    /// When the document was written.
    pub finished: jiff::Timestamp,
    /// Completed or PartiallyFailed.
    pub status: BackupStatus,
    /// What was asked for.
    pub selection: Selection,
    /// The source cluster.
    pub cluster: ClusterInfo,
    /// The objects, as the API server returned them.
    pub resources: Vec<Value>,
    /// Cluster-scoped objects added as dependencies (also in `resources`).
    pub dependencies: Vec<Dependency>,
    /// Objects seen but not saved.
    pub skipped: Vec<Skipped>,
    /// The data of the PVCs.
    pub volumes: Vec<VolumeBackup>,
    /// Results of the hooks, as the hook runner reports them.
    pub hooks: Vec<Value>,
    /// Why the backup is PartiallyFailed.
    pub problems: Vec<Problem>,
}

impl AppBackup {
    /// A new, empty, completed document.
    pub fn new(name: &str, selection: Selection, started: jiff::Timestamp) -> Self {
        Self {
            version: FORMAT_VERSION,
            name: name.to_owned(),
            started,
            finished: started,
            status: BackupStatus::Completed,
            selection,
            cluster: ClusterInfo::default(),
            resources: Vec::new(),
            dependencies: Vec::new(),
            skipped: Vec::new(),
            volumes: Vec::new(),
            hooks: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Records a failed item; the backup becomes PartiallyFailed.
    pub fn problem(&mut self, item: impl Into<String>, reason: impl Into<String>) {
        self.status = BackupStatus::PartiallyFailed;
        self.problems.push(Problem {
            item: item.into(),
            reason: reason.into(),
        });
    }

    /// True if the object's kind is defined by a CRD in the source cluster.
    pub fn is_custom(&self, key: &ObjectKey) -> bool {
        let g = group_of(&key.api_version);
        self.cluster
            .resource_types
            .iter()
            .any(|t| t.custom && t.group == g && t.kind == key.kind)
    }

    /// The document as JSON bytes.
    ///
    /// # Errors
    /// `Invalid` if it cannot be serialised (not expected for values read from an API server).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid("application backup", e.to_string()))
    }

    /// Parses a document, refusing versions newer than this code knows.
    ///
    /// # Errors
    /// `Invalid` for malformed JSON or an unknown version.
    pub fn from_bytes(b: &[u8]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Head {
            version: u32,
        }
        let head: Head = serde_json::from_slice(b)
            .map_err(|e| Error::invalid("application backup", e.to_string()))?;
        if head.version == 0 || head.version > FORMAT_VERSION {
            return Err(Error::invalid(
                "application backup",
                format!(
                    "version {} (this cairn reads up to {FORMAT_VERSION})",
                    head.version
                ),
            ));
        }
        serde_json::from_slice(b).map_err(|e| Error::invalid("application backup", e.to_string()))
    }
}
