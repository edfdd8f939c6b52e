//! PVC data: back up through a CSI VolumeSnapshot (wait until ready, provision a temporary PVC
//! from it, run a mover Job on that PVC, delete both whatever happens; the PVCs of one
//! namespace and driver are cut together by a VolumeGroupSnapshot, `crate::group`, whose
//! members stand in for the snapshots and go with the group) or by a mover reading
//! the live PVC next to its pod; restore by a mover writing a snapshot into a PVC. One mover per
//! PVC, at most `parallel` at a time. The cairn snapshot a mover wrote is found in the
//! repository by the run's tag and the volume's identity.

use std::sync::Arc;

use cairn_repo::{Repository, SnapshotFilter};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::document::{VolumeBackup, VolumeMethod};
use crate::error::{Error, Result};
use crate::group::{self, GroupPolicy};
use crate::mover::{Direction, MoverSpec, RUN_LABEL, VolumeMode, run_job};
use crate::object::{ObjectKey, at, str_at};
use crate::wait::{self, WaitPolicy};
use cairn_repo::error_message;

/// Options of the volume step.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VolumeOptions {
    /// How to read the data.
    pub method: VolumeMethod,
    /// Mover image (with `cairn`).
    pub image: String,
    /// Secret with `CAIRN_REPOSITORY` and `CAIRN_PASSWORD`, in each application namespace.
    pub repo_secret: String,
    /// VolumeSnapshotClass (the cluster's default if `None`).
    pub snapshot_class: Option<String>,
    /// Movers at a time.
    pub parallel: usize,
    /// Waiting for snapshots and Jobs.
    pub wait: WaitPolicy,
    /// A unique id of this run (names temporary objects, tags the volume snapshots).
    pub run_id: String,
    /// When to cut volumes together with VolumeGroupSnapshots.
    pub group_snapshots: GroupPolicy,
    /// VolumeGroupSnapshotClass (the driver's default if `None`).
    pub group_snapshot_class: Option<String>,
}

impl VolumeOptions {
    /// Options with the defaults: CSI snapshots, 4 movers, 5 minutes per wait.
    pub fn new(image: &str, repo_secret: &str, run_id: &str) -> Self {
        Self {
            method: VolumeMethod::CsiSnapshot,
            image: image.to_owned(),
            repo_secret: repo_secret.to_owned(),
            snapshot_class: None,
            parallel: 4,
            wait: WaitPolicy::default(),
            run_id: run_id.to_owned(),
            group_snapshots: GroupPolicy::Auto,
            group_snapshot_class: None,
        }
    }

    fn tag(&self) -> String {
        format!("cairn-run={}", self.run_id)
    }
}

/// Source identity of a PVC's data in an application.
pub fn volume_identity(app: &str, namespace: &str, pvc: &str) -> String {
    format!("app:{app}:pvc:{namespace}/{pvc}")
}

/// A DNS-1123 name of at most 63 characters.
pub(crate) fn object_name(parts: &[&str]) -> String {
    let s: String = parts
        .join("-")
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

/// The VolumeSnapshot manifest for a PVC.
pub fn snapshot_spec(
    name: &str,
    namespace: &str,
    pvc: &str,
    class: Option<&str>,
    run: &str,
) -> Value {
    let mut spec = json!({"source": {"persistentVolumeClaimName": pvc}});
    if let Some(c) = class {
        spec["volumeSnapshotClassName"] = json!(c);
    }
    json!({
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": name, "namespace": namespace, "labels": {RUN_LABEL: run}},
        "spec": spec,
    })
}

/// The temporary PVC provisioned from a snapshot of `source`.
pub fn clone_pvc_spec(name: &str, source: &Value, snapshot: &str, size: &str, run: &str) -> Value {
    let mut spec = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
        "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": snapshot},
    });
    for f in ["storageClassName", "volumeMode"] {
        if let Some(v) = at(source, &["spec", f]) {
            spec[f] = v.clone();
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": str_at(source, &["metadata", "namespace"]), "labels": {RUN_LABEL: run}},
        "spec": spec,
    })
}

/// Backs up the data of every PVC, `parallel` at a time: [`take_snapshots`], then
/// [`move_volumes`]. Failures are recorded per volume.
pub async fn backup_volumes(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    app: &str,
    pvcs: &[Value],
    opts: &VolumeOptions,
) -> Vec<VolumeBackup> {
    let taken = take_snapshots(cluster, pvcs, opts).await;
    move_volumes(cluster, repo, app, pvcs, taken, opts).await
}

/// The point in time of each PVC, in the order of the PVCs given to [`take_snapshots`], and
/// the group snapshots to delete once the data is moved.
#[derive(Debug)]
pub struct Taken {
    each: Vec<Result<Option<Snapshot>>>,
    /// Something the volume's record should say (a group that fell back to one by one).
    warnings: Vec<Option<String>>,
    groups: Vec<ObjectKey>,
}

/// A ready VolumeSnapshot of one PVC.
#[derive(Debug)]
struct Snapshot {
    key: ObjectKey,
    /// Size for the PVC provisioned from it.
    size: String,
    /// The VolumeGroupSnapshot it is a member of; deleting that deletes it.
    group: Option<String>,
}

/// The instant of the backup: with CSI snapshots, the PVCs that share a namespace and a CSI
/// driver are cut together by a VolumeGroupSnapshot (per [`GroupPolicy`]; `crate::group`),
/// the others by a VolumeSnapshot each, `parallel` at a time; each is waited for until ready
/// to use. This is the step hooks quiesce the application around; it takes seconds, the
/// copies that follow take as long as the data. With pod copies there is no separate instant
/// (the copy is the instant): nothing is done.
pub async fn take_snapshots(cluster: &Cluster, pvcs: &[Value], opts: &VolumeOptions) -> Taken {
    let mut taken = Taken {
        each: pvcs.iter().map(|_| Ok(None)).collect(),
        warnings: vec![None; pvcs.len()],
        groups: Vec::new(),
    };
    if opts.method != VolumeMethod::CsiSnapshot {
        return taken;
    }
    let api = group::api_version(cluster);
    let (groups, mut singles) = match plan_groups(cluster, pvcs, opts, api.is_some()).await {
        Ok(plan) => plan,
        Err(reason) => {
            // Grouping is required but cannot be planned: nothing is cut.
            for r in &mut taken.each {
                *r = Err(Error::Failed {
                    what: "group snapshots".into(),
                    reason: reason.clone(),
                });
            }
            return taken;
        }
    };
    for (n, g) in groups.iter().enumerate() {
        let outcome = match &api {
            Some(api) => take_group(cluster, pvcs, g, n, api, opts, &mut taken).await,
            None => Err(format!(
                "the cluster serves no {}/v1beta1 or later",
                group::API_GROUP
            )),
        };
        match outcome {
            Ok(()) => {}
            Err(reason) if opts.group_snapshots == GroupPolicy::Require => {
                for &i in &g.members {
                    taken.each[i] = Err(Error::Failed {
                        what: format!("group snapshot of namespace {}", g.namespace),
                        reason: format!("group snapshots are required: {reason}"),
                    });
                }
            }
            Err(reason) => {
                tracing::warn!(namespace = %g.namespace, %reason, "snapshotting one by one");
                for &i in &g.members {
                    taken.warnings[i] = Some(format!(
                        "not cut together with the other volumes of driver {} ({reason}); \
                         snapshotted on its own",
                        g.driver
                    ));
                }
                singles.extend(&g.members);
            }
        }
    }
    singles.sort_unstable();
    let results: Vec<(usize, Result<Option<Snapshot>>)> = futures::stream::iter(singles)
        .map(|i| async move { (i, take_one(cluster, &pvcs[i], opts).await) })
        .buffered(opts.parallel.max(1))
        .collect()
        .await;
    for (i, r) in results {
        taken.each[i] = r;
    }
    taken
}

/// Which PVCs to cut together (`group::plan`) and which alone, per the policy; why not, when
/// groups are required but the PVs (hence the drivers) cannot be read.
async fn plan_groups(
    cluster: &Cluster,
    pvcs: &[Value],
    opts: &VolumeOptions,
    served: bool,
) -> std::result::Result<(Vec<group::Group>, Vec<usize>), String> {
    let all_single = || (Vec::new(), (0..pvcs.len()).collect());
    let wanted = match opts.group_snapshots {
        GroupPolicy::Auto => served,
        GroupPolicy::Require => true,
        _ => false,
    };
    if !wanted {
        return Ok(all_single());
    }
    match cluster.list_kind("v1", "PersistentVolume", None).await {
        Ok(volumes) => Ok(group::plan(pvcs, &volumes)),
        Err(e) if opts.group_snapshots == GroupPolicy::Require => Err(format!(
            "group snapshots are required, but the PVs cannot be read: {}",
            error_message(&e)
        )),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read PVs; no group snapshots");
            Ok(all_single())
        }
    }
}

/// Cuts group `g` (the `n`th of this run) and records its members in `taken`; on failure
/// deletes what was made and returns why.
async fn take_group(
    cluster: &Cluster,
    pvcs: &[Value],
    g: &group::Group,
    n: usize,
    api: &str,
    opts: &VolumeOptions,
    taken: &mut Taken,
) -> std::result::Result<(), String> {
    let name = object_name(&["cairn", &opts.run_id, "group", &n.to_string()]);
    let req = group::Request {
        api_version: api,
        name: &name,
        class: opts.group_snapshot_class.as_deref(),
        run: &opts.run_id,
        wait: opts.wait,
    };
    let members: Vec<&Value> = g.members.iter().map(|&i| &pvcs[i]).collect();
    let key = group::key(&req, &g.namespace);
    let found = match group::take(cluster, &req, &members).await {
        Ok(found) => found,
        Err(e) => {
            cleanup(cluster, &[&key]).await;
            return Err(format!(
                "the VolumeGroupSnapshot failed: {}",
                error_message(&e)
            ));
        }
    };
    taken.groups.push(key);
    for (&i, m) in g.members.iter().zip(found) {
        taken.each[i] = Ok(Some(Snapshot {
            size: size_for(&pvcs[i], m.restore_size.as_deref()),
            key: m.key,
            group: Some(name.clone()),
        }));
    }
    Ok(())
}

/// The size of a PVC provisioned from a snapshot of `pvc`.
fn size_for(pvc: &Value, restore_size: Option<&str>) -> String {
    restore_size
        .or_else(|| str_at(pvc, &["spec", "resources", "requests", "storage"]))
        .unwrap_or("1Gi")
        .to_owned()
}

async fn take_one(
    cluster: &Cluster,
    pvc: &Value,
    opts: &VolumeOptions,
) -> Result<Option<Snapshot>> {
    let ns = str_at(pvc, &["metadata", "namespace"]).unwrap_or_default();
    let name = str_at(pvc, &["metadata", "name"]).unwrap_or_default();
    let snap_name = object_name(&["cairn", &opts.run_id, name]);
    let snap = snapshot_spec(
        &snap_name,
        ns,
        name,
        opts.snapshot_class.as_deref(),
        &opts.run_id,
    );
    let key = crate::cluster::key_of(&snap)?;
    let ready = async {
        cluster.create(&snap).await?;
        wait_snapshot_ready(cluster, &key, opts.wait).await
    }
    .await;
    match ready {
        Ok(ready) => Ok(Some(Snapshot {
            key,
            size: size_for(pvc, str_at(&ready, &["status", "restoreSize"])),
            group: None,
        })),
        Err(e) => {
            cleanup(cluster, &[&key]).await;
            Err(e)
        }
    }
}

/// Deletes temporary objects, logging (not returning) failures.
async fn cleanup(cluster: &Cluster, keys: &[&ObjectKey]) {
    for k in keys {
        if let Err(e) = cluster.delete(k).await {
            tracing::warn!(object = %k, error = %e, "cleanup failed");
        }
    }
}

/// Copies each PVC's data into the repository with a mover Job: from a PVC provisioned from
/// its snapshot (then deleted with the snapshot, whatever happened), or from the live PVC.
pub async fn move_volumes(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    app: &str,
    pvcs: &[Value],
    taken: Taken,
    opts: &VolumeOptions,
) -> Vec<VolumeBackup> {
    let Taken {
        each,
        warnings,
        groups,
    } = taken;
    let out = futures::stream::iter(pvcs.iter().zip(each).zip(warnings))
        .map(|((pvc, t), warning)| async move {
            let mut v = backup_one(cluster, repo, app, pvc, t, opts).await;
            v.warning = warning;
            v
        })
        .buffer_unordered(opts.parallel.max(1))
        .collect()
        .await;
    // Deleting a group deletes its member snapshots.
    cleanup(cluster, &groups.iter().collect::<Vec<_>>()).await;
    out
}

/// The record of a PVC whose data was not backed up, and why.
pub fn not_backed_up(pvc: &Value, method: VolumeMethod, reason: &str) -> VolumeBackup {
    let mut v = volume_record(pvc, method);
    v.error = Some(reason.to_owned());
    v
}

/// The record of a PVC, before its data is backed up.
pub(crate) fn volume_record(pvc: &Value, method: VolumeMethod) -> VolumeBackup {
    VolumeBackup {
        namespace: str_at(pvc, &["metadata", "namespace"])
            .unwrap_or_default()
            .to_owned(),
        pvc: str_at(pvc, &["metadata", "name"])
            .unwrap_or_default()
            .to_owned(),
        method,
        volume_mode: if VolumeMode::of_pvc(pvc) == VolumeMode::Block {
            "Block"
        } else {
            "Filesystem"
        }
        .into(),
        size: str_at(pvc, &["spec", "resources", "requests", "storage"]).map(str::to_owned),
        snapshot: None,
        group_snapshot: None,
        warning: None,
        dump: None,
        error: None,
    }
}

async fn backup_one(
    cluster: &Cluster,
    repo: &Arc<Repository>,
    app: &str,
    pvc: &Value,
    taken: Result<Option<Snapshot>>,
    opts: &VolumeOptions,
) -> VolumeBackup {
    let mut out = volume_record(pvc, opts.method);
    let (ns, name) = (out.namespace.clone(), out.pvc.clone());
    let mode = VolumeMode::of_pvc(pvc);
    let identity = volume_identity(app, &ns, &name);
    let mover = |pvc_name: &str| {
        let mut m = MoverSpec::new(
            &object_name(&["cairn", &opts.run_id, &name]),
            &ns,
            pvc_name,
            mode,
            Direction::Backup {
                identity: identity.clone(),
                tags: vec![opts.tag(), crate::store::APP_TAG.to_owned() + "-volume"],
            },
            &opts.image,
            &opts.repo_secret,
        );
        m.labels.insert(RUN_LABEL.into(), opts.run_id.clone());
        m
    };
    let outcome = match (opts.method, taken) {
        (_, Err(e)) => Err(e),
        (VolumeMethod::CsiSnapshot, Ok(Some(snap))) => {
            out.group_snapshot.clone_from(&snap.group);
            from_snapshot(cluster, pvc, &snap, opts, &mover).await
        }
        (VolumeMethod::PodCopy, Ok(None)) => run_job(cluster, &mover(&name), opts.wait).await,
        _ => Err(Error::invalid(
            format!("volume {ns}/{name}"),
            "this method is run by the caller",
        )),
    };
    let found = match outcome {
        Ok(()) => find_volume_snapshot(repo, &identity, &opts.tag()).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(id) => out.snapshot = Some(id),
        Err(e) => out.error = Some(error_message(&e)),
    }
    out
}

/// Provisions a PVC from the snapshot, runs the mover on it, deletes both (a group member
/// goes with its group, after every member is moved).
async fn from_snapshot(
    cluster: &Cluster,
    pvc: &Value,
    snap: &Snapshot,
    opts: &VolumeOptions,
    mover: &dyn Fn(&str) -> MoverSpec,
) -> Result<()> {
    let pvc_name = str_at(pvc, &["metadata", "name"]).unwrap_or_default();
    let tmp_name = object_name(&["cairn", &opts.run_id, pvc_name]);
    let tmp_key = ObjectKey {
        api_version: "v1".into(),
        kind: "PersistentVolumeClaim".into(),
        namespace: snap.key.namespace.clone(),
        name: tmp_name.clone(),
    };
    let result = async {
        cluster
            .create(&clone_pvc_spec(
                &tmp_name,
                pvc,
                &snap.key.name,
                &snap.size,
                &opts.run_id,
            ))
            .await?;
        run_job(cluster, &mover(&tmp_name), opts.wait).await
    }
    .await;
    // Temporary objects go whatever happened.
    if snap.group.is_some() {
        cleanup(cluster, &[&tmp_key]).await;
    } else {
        cleanup(cluster, &[&tmp_key, &snap.key]).await;
    }
    result
}

/// Waits until a VolumeSnapshot (or a VolumeGroupSnapshot: the same status fields) is
/// `readyToUse`; returns it.
///
/// # Errors
/// `Failed` when the snapshot reports an error, `Timeout`, `Kube`.
pub async fn wait_snapshot_ready(
    cluster: &Cluster,
    key: &ObjectKey,
    policy: WaitPolicy,
) -> Result<Value> {
    wait::until(&format!("{key} to be ready"), policy, || async {
        let Some(s) = cluster.get(key).await? else {
            return Err(Error::Failed {
                what: key.to_string(),
                reason: "the snapshot disappeared".into(),
            });
        };
        if let Some(msg) = str_at(&s, &["status", "error", "message"]) {
            return Err(Error::Failed {
                what: key.to_string(),
                reason: msg.to_owned(),
            });
        }
        let ready = at(&s, &["status", "readyToUse"]).and_then(Value::as_bool) == Some(true);
        Ok(ready.then_some(s))
    })
    .await
}

/// The id of the snapshot a mover wrote for `identity` in this run.
async fn find_volume_snapshot(repo: &Repository, identity: &str, run_tag: &str) -> Result<String> {
    let mut f = SnapshotFilter::default();
    f.tags = vec![run_tag.to_owned()];
    f.sources = vec![identity.to_owned()];
    let found = repo
        .snapshots(&f)
        .await
        .map_err(|e| Error::repo("finding the volume snapshot", e))?;
    found
        .last()
        .map(|(id, _)| id.to_hex())
        .ok_or_else(|| Error::Failed {
            what: identity.to_owned(),
            reason: "the mover finished but wrote no snapshot".into(),
        })
}

/// Restores volume data into PVCs (already created, or existing in production): one mover
/// per volume that has a snapshot, `parallel` at a time. `namespace_map` maps the backed-up
/// namespaces. Returns `(namespace/pvc, error)` for each failure.
pub async fn restore_volumes(
    cluster: &Cluster,
    volumes: &[VolumeBackup],
    namespace_map: &std::collections::BTreeMap<String, String>,
    opts: &VolumeOptions,
) -> Vec<(String, String)> {
    // Logical dumps are loaded by `crate::dump` into the running database instead.
    let jobs = volumes.iter().filter_map(|v| {
        if v.method == VolumeMethod::Dump {
            return None;
        }
        let snap = v.snapshot.clone()?;
        let ns = namespace_map
            .get(&v.namespace)
            .cloned()
            .unwrap_or_else(|| v.namespace.clone());
        let mode = if v.volume_mode == "Block" {
            VolumeMode::Block
        } else {
            VolumeMode::Filesystem
        };
        let mut m = MoverSpec::new(
            &object_name(&["cairn-restore", &opts.run_id, &v.pvc]),
            &ns,
            &v.pvc,
            mode,
            Direction::Restore { snapshot: snap },
            &opts.image,
            &opts.repo_secret,
        );
        m.labels.insert(RUN_LABEL.into(), opts.run_id.clone());
        Some(m)
    });
    futures::stream::iter(jobs)
        .map(|m| async move {
            let r = run_job(cluster, &m, opts.wait).await;
            r.err()
                .map(|e| (format!("{}/{}", m.namespace, m.pvc), error_message(&e)))
        })
        .buffer_unordered(opts.parallel.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await
}
