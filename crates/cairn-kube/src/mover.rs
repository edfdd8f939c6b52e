//! Data mover Jobs: a pod running `cairn` against a PVC, in block mode (the volume as a raw
//! device at [`DEVICE_PATH`]) or filesystem mode (mounted at [`MOUNT_PATH`]), to back it up
//! into the repository or restore a snapshot into it. The repository location and passphrase
//! come from a Secret (`CAIRN_REPOSITORY`, `CAIRN_PASSWORD`). [`job_spec`] is pure;
//! [`run_job`] creates the Job, waits for it (poll, timeout) and always deletes it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::object::{ObjectKey, at};
use crate::wait::{self, WaitPolicy, condition};

/// Where a block-mode mover sees the volume.
pub const DEVICE_PATH: &str = "/dev/xvda";
/// Where a filesystem-mode mover mounts the volume.
pub const MOUNT_PATH: &str = "/data";
/// Label on every object a mover run creates (Jobs, temporary PVCs and snapshots).
pub const RUN_LABEL: &str = "cairn.io/run";

/// How the mover sees the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VolumeMode {
    /// A raw block device.
    Block,
    /// A mounted filesystem.
    Filesystem,
}

impl VolumeMode {
    /// From a PVC's `spec.volumeMode` (default Filesystem).
    pub fn of_pvc(pvc: &Value) -> Self {
        if at(pvc, &["spec", "volumeMode"]).and_then(Value::as_str) == Some("Block") {
            Self::Block
        } else {
            Self::Filesystem
        }
    }
}

/// What the mover does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Direction {
    /// Back the volume up with this source identity and these tags.
    Backup {
        /// `--source-id`.
        identity: String,
        /// `--tag`, repeated.
        tags: Vec<String>,
    },
    /// Restore this cairn snapshot into the volume.
    Restore {
        /// Snapshot id.
        snapshot: String,
    },
}

/// Everything a mover Job needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MoverSpec {
    /// Job name.
    pub name: String,
    /// Namespace of the Job and the PVC.
    pub namespace: String,
    /// The PVC the mover reads or writes.
    pub pvc: String,
    /// Block or filesystem.
    pub mode: VolumeMode,
    /// Backup or restore.
    pub direction: Direction,
    /// Container image with the `cairn` binary.
    pub image: String,
    /// Secret holding `CAIRN_REPOSITORY` and `CAIRN_PASSWORD`.
    pub repo_secret: String,
    /// Labels on the Job (the run label among them).
    pub labels: BTreeMap<String, String>,
}

impl MoverSpec {
    /// A mover for `pvc` in `namespace`.
    pub fn new(
        name: &str,
        namespace: &str,
        pvc: &str,
        mode: VolumeMode,
        direction: Direction,
        image: &str,
        repo_secret: &str,
    ) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            pvc: pvc.to_owned(),
            mode,
            direction,
            image: image.to_owned(),
            repo_secret: repo_secret.to_owned(),
            labels: BTreeMap::new(),
        }
    }
}

/// The `cairn` command line of a mover.
pub fn command(spec: &MoverSpec) -> Vec<String> {
    let path = match spec.mode {
        VolumeMode::Block => DEVICE_PATH,
        VolumeMode::Filesystem => MOUNT_PATH,
    };
    let mut c = vec!["cairn".to_owned()];
    match &spec.direction {
        Direction::Backup { identity, tags } => {
            c.push("backup".into());
            if spec.mode == VolumeMode::Block {
                c.push("--volume".into());
            }
            c.extend(["--source-id".into(), identity.clone()]);
            for t in tags {
                c.extend(["--tag".into(), t.clone()]);
            }
            c.push(path.into());
        }
        Direction::Restore { snapshot } => {
            c.extend([
                "restore".into(),
                snapshot.clone(),
                "--target".into(),
                path.into(),
                "--overwrite".into(),
            ]);
        }
    }
    c
}

/// The Job manifest of a mover: one pod, no retries (a failed copy is reported, not repeated
/// blindly), the PVC as a device or a mount, the repository from the Secret.
pub fn job_spec(spec: &MoverSpec) -> Value {
    let (attach_key, attach) = match spec.mode {
        VolumeMode::Block => (
            "volumeDevices",
            json!([{"name": "data", "devicePath": DEVICE_PATH}]),
        ),
        VolumeMode::Filesystem => (
            "volumeMounts",
            json!([{"name": "data", "mountPath": MOUNT_PATH}]),
        ),
    };
    let read_only =
        matches!(spec.direction, Direction::Backup { .. }) && spec.mode == VolumeMode::Filesystem;
    let mut container = json!({
        "name": "cairn",
        "image": spec.image,
        "command": command(spec),
        "envFrom": [{"secretRef": {"name": spec.repo_secret}}],
        "securityContext": {"allowPrivilegeEscalation": false},
    });
    container[attach_key] = attach;
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": spec.labels},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": spec.labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": spec.pvc, "readOnly": read_only}}],
                }
            }
        }
    })
}

/// Waits until a Job succeeded (condition `Complete`, or `status.succeeded` ≥ 1).
///
/// # Errors
/// `Failed` when it failed (condition `Failed`), `Timeout`, `Kube`.
pub async fn wait_job(cluster: &Cluster, key: &ObjectKey, policy: WaitPolicy) -> Result<()> {
    wait::until(&format!("{key} to finish"), policy, || async {
        let Some(job) = cluster.get(key).await? else {
            return Err(Error::Failed {
                what: key.to_string(),
                reason: "the Job disappeared".into(),
            });
        };
        if condition(&job, "Failed") == Some("True")
            || at(&job, &["status", "failed"])
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0
        {
            return Err(Error::Failed {
                what: key.to_string(),
                reason: failure_reason(&job),
            });
        }
        let done = condition(&job, "Complete") == Some("True")
            || at(&job, &["status", "succeeded"])
                .and_then(Value::as_i64)
                .unwrap_or(0)
                > 0;
        Ok(done.then_some(()))
    })
    .await
}

fn failure_reason(job: &Value) -> String {
    at(job, &["status", "conditions"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Failed"))
        .and_then(|c| {
            c.get("message")
                .or_else(|| c.get("reason"))
                .and_then(Value::as_str)
        })
        .unwrap_or("the Job failed")
        .to_owned()
}

/// Creates a mover Job, waits for it, and deletes it whatever happened.
///
/// # Errors
/// The creation's or the wait's error.
pub async fn run_job(cluster: &Cluster, spec: &MoverSpec, policy: WaitPolicy) -> Result<()> {
    let job = job_spec(spec);
    let key = crate::cluster::key_of(&job)?;
    cluster.create(&job).await?;
    let result = wait_job(cluster, &key, policy).await;
    if let Err(e) = cluster.delete(&key).await {
        tracing::warn!(job = %key, error = %e, "cleanup of mover Job failed");
    }
    result
}
