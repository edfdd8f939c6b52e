//! An application backup from start to finish: collect the resources, back up the PVCs' data,
//! then write the document — last, so only a finished backup is ever listed.

use std::sync::Arc;

use cairn_repo::Repository;
use cairn_repo::format::Id;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::collect::collect;
use crate::document::{AppBackup, VolumeBackup, VolumeMethod};
use crate::dump::{DumpSpec, backup_dump};
use crate::error::{Error, Result};
use crate::hooks::{HookExecutor, HookReport, HookSpec, KubeExecutor, StepOutcome, run_around};
use crate::object::str_at;
use crate::select::Selection;
use crate::store;
use crate::volumes::{
    VolumeOptions, backup_volumes, move_volumes, not_backed_up, take_snapshots, volume_record,
};
use crate::wait::WaitPolicy;

/// Options of an application backup.
#[derive(Clone)]
#[non_exhaustive]
pub struct AppBackupOptions {
    /// The application's name.
    pub name: String,
    /// What to back up.
    pub selection: Selection,
    /// How to back up PVC data; `None` records the PVCs without data.
    pub volumes: Option<VolumeOptions>,
    /// Hooks run around the instant of the backup (the CSI snapshots, or the whole pod copy),
    /// in order; their records are kept in the document.
    pub hooks: Vec<HookSpec>,
    /// Where hooks run; `None`: in the pods, through the cluster's exec API.
    pub executor: Option<Arc<dyn HookExecutor>>,
    /// PVCs saved as logical dumps instead (after the hooks' window; `crate::dump`).
    pub dumps: Vec<DumpSpec>,
    /// How long a dump waits for a running pod that mounts its PVC.
    pub dump_wait: WaitPolicy,
}

impl std::fmt::Debug for AppBackupOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBackupOptions")
            .field("name", &self.name)
            .field("selection", &self.selection)
            .field("volumes", &self.volumes)
            .field("hooks", &self.hooks)
            .field("dumps", &self.dumps)
            .finish_non_exhaustive()
    }
}

impl AppBackupOptions {
    /// Resources only, no hooks.
    pub fn new(name: &str, selection: Selection) -> Self {
        Self {
            name: name.to_owned(),
            selection,
            volumes: None,
            hooks: Vec::new(),
            executor: None,
            dumps: Vec::new(),
            dump_wait: WaitPolicy::default(),
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
    let all_pvcs: Vec<Value> = found
        .resources
        .iter()
        .filter(|o| {
            str_at(o, &["kind"]) == Some("PersistentVolumeClaim")
                && str_at(o, &["apiVersion"]) == Some("v1")
        })
        .cloned()
        .collect();
    let (dumped, pvcs) = split_dumps(&opts.dumps, all_pvcs)?;
    let unsaved = || -> Vec<VolumeBackup> {
        pvcs.iter()
            .map(|p| volume_record(p, VolumeMethod::None))
            .collect()
    };
    let (volumes, report) = match &opts.volumes {
        Some(v) if opts.hooks.is_empty() => (
            backup_volumes(cluster, repo, &opts.name, &pvcs, v).await,
            None,
        ),
        Some(v) => {
            let (vols, report) = quiesced_volumes(cluster, repo, opts, &pvcs, v).await?;
            (vols, Some(report))
        }
        None if !opts.hooks.is_empty() => {
            let (report, _) = run_around(executor(cluster, opts), &opts.hooks, || async {
                Ok::<(), std::convert::Infallible>(())
            })
            .await
            .map_err(|e| Error::invalid("hooks", e.to_string()))?;
            (unsaved(), Some(report))
        }
        None => (unsaved(), None),
    };
    doc.volumes = volumes;
    doc.volumes
        .extend(run_dumps(cluster, repo, opts, &dumped).await);
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
    if let Some(report) = report {
        for r in report.failures() {
            doc.problem(
                format!("hook {} ({:?}, {})", r.hook, r.phase, r.target),
                r.error.clone().unwrap_or_else(|| "failed".into()),
            );
        }
        doc.hooks = report
            .records
            .iter()
            .map(serde_json::to_value)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::invalid("hook records", e.to_string()))?;
    }
    doc.resources = found.resources;
    doc.finished = jiff::Timestamp::now();
    let id = store::save(repo, &doc).await?;
    Ok((id, doc))
}

/// PVCs saved as dumps, each with its spec.
type Dumped = Vec<(Value, DumpSpec)>;

/// Splits the PVCs into those saved as dumps (with their spec) and the rest.
///
/// # Errors
/// `Invalid` when a dump names a PVC the selection does not hold.
fn split_dumps(dumps: &[DumpSpec], pvcs: Vec<Value>) -> Result<(Dumped, Vec<Value>)> {
    let dump_of = |pvc: &Value| {
        dumps.iter().find(|d| {
            str_at(pvc, &["metadata", "namespace"]) == Some(d.namespace.as_str())
                && str_at(pvc, &["metadata", "name"]) == Some(d.pvc.as_str())
        })
    };
    for d in dumps {
        if !pvcs.iter().any(|p| dump_of(p) == Some(d)) {
            return Err(Error::invalid(
                format!("dump of {}/{}", d.namespace, d.pvc),
                "the selection holds no such PersistentVolumeClaim",
            ));
        }
    }
    let mut dumped = Vec::new();
    let mut rest = Vec::new();
    for p in pvcs {
        match dump_of(&p).cloned() {
            Some(d) => dumped.push((p, d)),
            None => rest.push(p),
        }
    }
    Ok((dumped, rest))
}

/// The dumps, one at a time, after the hooks' window (a dump is consistent by itself).
async fn run_dumps(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    opts: &AppBackupOptions,
    dumped: &[(Value, DumpSpec)],
) -> Vec<VolumeBackup> {
    let wait = opts.dump_wait;
    let mut tags = vec![crate::store::APP_TAG.to_owned() + "-volume"];
    if let Some(v) = &opts.volumes {
        tags.push(format!("cairn-run={}", v.run_id));
    }
    let mut out = Vec::new();
    for (pvc, spec) in dumped {
        out.push(backup_dump(cluster, repo, &opts.name, pvc, spec, &tags, wait).await);
    }
    out
}

fn executor(cluster: &Cluster, opts: &AppBackupOptions) -> Arc<dyn HookExecutor> {
    opts.executor
        .clone()
        .unwrap_or_else(|| Arc::new(KubeExecutor::new(cluster.client().clone())))
}

/// The volume step inside the hooks' window. With CSI snapshots the window spans only the
/// snapshots; the copies run after the release. A pod copy has no separate instant, so the
/// window spans the copies. When a `fail` hook failed, no volume is backed up.
async fn quiesced_volumes(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    opts: &AppBackupOptions,
    pvcs: &[Value],
    v: &VolumeOptions,
) -> Result<(Vec<VolumeBackup>, HookReport)> {
    let exec = executor(cluster, opts);
    let invalid = |e: crate::hooks::SpecError| Error::invalid("hooks", e.to_string());
    if v.method == VolumeMethod::CsiSnapshot {
        let (report, outcome) = run_around(exec, &opts.hooks, || async {
            Ok::<_, std::convert::Infallible>(take_snapshots(cluster, pvcs, v).await)
        })
        .await
        .map_err(invalid)?;
        let vols = match outcome {
            StepOutcome::Ran(Ok(taken)) => {
                move_volumes(cluster, repo, &opts.name, pvcs, taken, v).await
            }
            StepOutcome::Ran(Err(never)) => match never {},
            StepOutcome::Skipped(reason) => skipped(pvcs, v.method, &reason),
        };
        Ok((vols, report))
    } else {
        let (report, outcome) = run_around(exec, &opts.hooks, || async {
            Ok::<_, std::convert::Infallible>(
                backup_volumes(cluster, repo, &opts.name, pvcs, v).await,
            )
        })
        .await
        .map_err(invalid)?;
        let vols = match outcome {
            StepOutcome::Ran(Ok(vols)) => vols,
            StepOutcome::Ran(Err(never)) => match never {},
            StepOutcome::Skipped(reason) => skipped(pvcs, v.method, &reason),
        };
        Ok((vols, report))
    }
}

fn skipped(pvcs: &[Value], method: VolumeMethod, reason: &str) -> Vec<VolumeBackup> {
    pvcs.iter()
        .map(|p| not_backed_up(p, method, &format!("not backed up: {reason}")))
        .collect()
}
