//! An application backup from start to finish: collect the resources, back up the PVCs' data,
//! then write the document — last, so only a finished backup is ever listed.

use std::sync::Arc;

use cairn_repo::Repository;
use cairn_repo::format::Id;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::collect::collect;
use crate::document::{AppBackup, VolumeBackup, VolumeMethod};
use crate::error::Result;
use crate::mover::VolumeMode;
use crate::object::str_at;
use crate::select::Selection;
use crate::store;
use crate::volumes::{VolumeOptions, backup_volumes};

/// Options of an application backup.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AppBackupOptions {
    /// The application's name.
    pub name: String,
    /// What to back up.
    pub selection: Selection,
    /// How to back up PVC data; `None` records the PVCs without data.
    pub volumes: Option<VolumeOptions>,
    /// Results of hooks run around the volume step, recorded as given.
    pub hooks: Vec<Value>,
}

impl AppBackupOptions {
    /// Resources only, no hooks.
    pub fn new(name: &str, selection: Selection) -> Self {
        Self {
            name: name.to_owned(),
            selection,
            volumes: None,
            hooks: Vec::new(),
        }
    }
}

/// Backs up an application; returns the snapshot id of its document and the document.
///
/// Items that fail (a volume whose snapshot or mover failed) make the backup PartiallyFailed,
/// with the reasons in `problems`; errors that leave nothing to save are returned.
///
/// # Errors
/// `Kube` for discovery or list failures, `Invalid` for a bad selection, `Repo`.
pub async fn backup(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    opts: &AppBackupOptions,
) -> Result<(Id, AppBackup)> {
    let started = jiff::Timestamp::now();
    let found = collect(cluster, &opts.selection).await?;
    let mut doc = AppBackup::new(&opts.name, opts.selection.clone(), started);
    doc.cluster = found.cluster;
    doc.dependencies = found.dependencies;
    doc.skipped = found.skipped;
    doc.hooks.clone_from(&opts.hooks);
    let pvcs: Vec<Value> = found
        .resources
        .iter()
        .filter(|o| {
            str_at(o, &["kind"]) == Some("PersistentVolumeClaim")
                && str_at(o, &["apiVersion"]) == Some("v1")
        })
        .cloned()
        .collect();
    doc.volumes = match &opts.volumes {
        Some(v) => backup_volumes(cluster, repo, &opts.name, &pvcs, v).await,
        None => pvcs
            .iter()
            .map(|p| VolumeBackup {
                namespace: str_at(p, &["metadata", "namespace"])
                    .unwrap_or_default()
                    .to_owned(),
                pvc: str_at(p, &["metadata", "name"])
                    .unwrap_or_default()
                    .to_owned(),
                method: VolumeMethod::None,
                volume_mode: if VolumeMode::of_pvc(p) == VolumeMode::Block {
                    "Block"
                } else {
                    "Filesystem"
                }
                .into(),
                size: str_at(p, &["spec", "resources", "requests", "storage"]).map(str::to_owned),
                snapshot: None,
                error: None,
            })
            .collect(),
    };
    doc.volumes
        .sort_by(|a, b| (&a.namespace, &a.pvc).cmp(&(&b.namespace, &b.pvc)));
    let failures: Vec<(String, String)> = doc
        .volumes
        .iter()
        .filter_map(|v| {
            v.error
                .as_ref()
                .map(|e| (format!("volume {}/{}", v.namespace, v.pvc), e.clone()))
        })
        .collect();
    for (item, reason) in failures {
        doc.problem(item, reason);
    }
    for h in &opts.hooks {
        if h.get("ok").and_then(Value::as_bool) == Some(false) {
            doc.problem(
                format!(
                    "hook {}",
                    h.get("name").and_then(Value::as_str).unwrap_or("?")
                ),
                h.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("failed")
                    .to_owned(),
            );
        }
    }
    doc.resources = found.resources;
    doc.finished = jiff::Timestamp::now();
    let id = store::save(repo, &doc).await?;
    Ok((id, doc))
}
