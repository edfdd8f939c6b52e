//! Ready-made reactors that stand in for the controllers a real cluster runs.
//!
//! Install them with [`crate::TestServerBuilder::reactor`] or
//! [`crate::TestServer::add_reactor`]. Each reacts at once, inside the request that made
//! the change, so a test sees the end state without waiting.

use serde_json::{Value, json};

use crate::reactor::{Action, Change};
use crate::store::EventKind;

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The CSI driver name the simulated provisioner and snapshotter use.
pub const DRIVER: &str = "test.csi.cairn.dev";

/// The external-snapshotter: a new VolumeSnapshot gets a VolumeSnapshotContent
/// (`snapcontent-<uid>`) and `status.readyToUse: true`, `boundVolumeSnapshotContentName`,
/// `creationTime` and `restoreSize` (the source PVC's requested storage).
pub fn snapshotter(change: &Change<'_>) -> Vec<Action> {
    if !change.is("snapshot.storage.k8s.io", "volumesnapshots") {
        return Vec::new();
    }
    let snap = change.object;
    if change.kind == EventKind::Deleted {
        return delete_bound_content(change);
    }
    if change.kind != EventKind::Added {
        return Vec::new();
    }
    if snap
        .pointer(&format!(
            "/metadata/labels/{}",
            GROUP_MEMBER_LABEL.replace('/', "~1")
        ))
        .is_some()
    {
        // A member of a group snapshot: [`group_snapshotter`] made it ready.
        return Vec::new();
    }
    let ns = change.namespace().unwrap_or_default();
    let uid = str_at(snap, "/metadata/uid").unwrap_or_default();
    let content_name = format!("snapcontent-{uid}");
    let pvc_name = str_at(snap, "/spec/source/persistentVolumeClaimName");
    let pvc = pvc_name.and_then(|n| change.view.get("", "persistentvolumeclaims", Some(ns), n));
    let size = pvc
        .and_then(|p| str_at(p, "/spec/resources/requests/storage"))
        .unwrap_or("1Gi");
    let handle = pvc
        .and_then(|p| str_at(p, "/spec/volumeName"))
        .unwrap_or("unknown-volume");
    let mut content_spec = json!({
        "deletionPolicy": "Delete",
        "driver": DRIVER,
        "volumeSnapshotRef": {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "name": change.name(),
            "namespace": ns,
            "uid": uid,
        },
    });
    if let Some(class) = str_at(snap, "/spec/volumeSnapshotClassName") {
        content_spec["volumeSnapshotClassName"] = json!(class);
    }
    match str_at(snap, "/spec/source/volumeSnapshotContentName") {
        Some(existing) => content_spec["source"] = json!({ "snapshotHandle": existing }),
        None => content_spec["source"] = json!({ "volumeHandle": handle }),
    }
    let mut actions = Vec::new();
    if str_at(snap, "/spec/source/volumeSnapshotContentName").is_none() {
        actions.push(Action::Create {
            group: "snapshot.storage.k8s.io".into(),
            resource: "volumesnapshotcontents".into(),
            namespace: None,
            object: json!({
                "metadata": { "name": content_name },
                "spec": content_spec,
            }),
        });
    }
    let bound = str_at(snap, "/spec/source/volumeSnapshotContentName")
        .map_or(content_name.clone(), str::to_string);
    actions.push(Action::patch_status(
        change,
        json!({
            "boundVolumeSnapshotContentName": bound,
            "readyToUse": true,
            "creationTime": crate::object::now(),
            "restoreSize": size,
        }),
    ));
    actions
}

/// A deleted VolumeSnapshot takes its bound content with it when the content's
/// `deletionPolicy` is `Delete`.
fn delete_bound_content(change: &Change<'_>) -> Vec<Action> {
    let Some(content) = str_at(change.object, "/status/boundVolumeSnapshotContentName") else {
        return Vec::new();
    };
    let policy = change
        .view
        .get(
            "snapshot.storage.k8s.io",
            "volumesnapshotcontents",
            None,
            content,
        )
        .and_then(|c| str_at(c, "/spec/deletionPolicy"));
    if policy != Some("Delete") {
        return Vec::new();
    }
    vec![Action::Delete {
        group: "snapshot.storage.k8s.io".into(),
        resource: "volumesnapshotcontents".into(),
        namespace: None,
        name: content.to_owned(),
    }]
}

/// The label the snapshot-controller puts on the member snapshots of a group.
pub const GROUP_MEMBER_LABEL: &str = "groupsnapshot.storage.kubernetes.io/volumeGroupSnapshotName";

/// The snapshot-controller's group path (VolumeGroupSnapshot, v1beta1 and later). A new group
/// selects the PVCs of its namespace by `spec.source.selector.matchLabels` and gets a
/// VolumeGroupSnapshotContent and, per PVC, a member VolumeSnapshot (`<group>-<pvc>`,
/// [`GROUP_MEMBER_LABEL`], owned by the group, `spec.source.persistentVolumeClaimName`,
/// `status.volumeGroupSnapshotName`, ready) with a content of its own; then the group is
/// `readyToUse`. A group that selects no PVC gets `status.error`. Deleting a group deletes its
/// content; the server's garbage collection deletes the members it owns, and [`snapshotter`]
/// their contents.
pub fn group_snapshotter(change: &Change<'_>) -> Vec<Action> {
    if !change.is("groupsnapshot.storage.k8s.io", "volumegroupsnapshots") {
        return Vec::new();
    }
    let uid = str_at(change.object, "/metadata/uid").unwrap_or_default();
    match change.kind {
        // The members went with their owner (garbage collection), their contents with them
        // ([`snapshotter`]).
        EventKind::Deleted => vec![Action::Delete {
            group: "groupsnapshot.storage.k8s.io".into(),
            resource: "volumegroupsnapshotcontents".into(),
            namespace: None,
            name: format!("groupsnapcontent-{uid}"),
        }],
        EventKind::Added => cut_group(change),
        _ => Vec::new(),
    }
}

/// A new group: its content, its members, ready.
fn cut_group(change: &Change<'_>) -> Vec<Action> {
    let group = change.object;
    let ns = change.namespace().unwrap_or_default();
    let name = change.name();
    let uid = str_at(group, "/metadata/uid").unwrap_or_default();
    let Some(wanted) = group
        .pointer("/spec/source/selector/matchLabels")
        .and_then(Value::as_object)
    else {
        return vec![Action::patch_status(
            change,
            json!({"readyToUse": false, "error": {"message": "no selector"}}),
        )];
    };
    let pvcs: Vec<&Value> = change
        .view
        .list("", "persistentvolumeclaims", Some(ns))
        .into_iter()
        .filter(|p| {
            wanted.iter().all(|(k, v)| {
                p.pointer("/metadata/labels")
                    .and_then(|l| l.get(k))
                    .is_some_and(|l| l == v)
            })
        })
        .collect();
    if pvcs.is_empty() {
        return vec![Action::patch_status(
            change,
            json!({"readyToUse": false,
                   "error": {"message": "the selector matches no PersistentVolumeClaim"}}),
        )];
    }
    let mut actions = vec![Action::Create {
        group: "groupsnapshot.storage.k8s.io".into(),
        resource: "volumegroupsnapshotcontents".into(),
        namespace: None,
        object: json!({
            "metadata": {"name": format!("groupsnapcontent-{uid}")},
            "spec": {
                "deletionPolicy": "Delete",
                "driver": DRIVER,
                "volumeGroupSnapshotRef": {"name": name, "namespace": ns, "uid": uid},
                "source": {"volumeHandles": pvcs.iter()
                    .map(|p| str_at(p, "/spec/volumeName").unwrap_or_default())
                    .collect::<Vec<_>>()},
            },
        }),
    }];
    let api_version = format!("groupsnapshot.storage.k8s.io/{}", change.version);
    for p in pvcs {
        actions.extend(member(change, &api_version, p));
    }
    actions.push(Action::patch_status(
        change,
        json!({
            "boundVolumeGroupSnapshotContentName": format!("groupsnapcontent-{uid}"),
            "creationTime": crate::object::now(),
            "readyToUse": true,
        }),
    ));
    actions
}

/// The content, the member snapshot and its ready status for one PVC of a new group.
fn member(change: &Change<'_>, api_version: &str, p: &Value) -> [Action; 3] {
    let ns = change.namespace().unwrap_or_default();
    let name = change.name();
    let uid = str_at(change.object, "/metadata/uid").unwrap_or_default();
    let pvc = str_at(p, "/metadata/name").unwrap_or_default();
    let member = format!("{name}-{pvc}");
    let content = format!("snapcontent-{uid}-{member}");
    let size = str_at(p, "/spec/resources/requests/storage").unwrap_or("1Gi");
    [
        Action::Create {
            group: "snapshot.storage.k8s.io".into(),
            resource: "volumesnapshotcontents".into(),
            namespace: None,
            object: json!({
                "metadata": {"name": content},
                "spec": {
                    "deletionPolicy": "Delete",
                    "driver": DRIVER,
                    "volumeSnapshotRef": {"name": member, "namespace": ns},
                    "source": {"volumeHandle": str_at(p, "/spec/volumeName").unwrap_or_default()},
                },
            }),
        },
        Action::Create {
            group: "snapshot.storage.k8s.io".into(),
            resource: "volumesnapshots".into(),
            namespace: Some(ns.to_owned()),
            object: json!({
                "metadata": {
                    "name": member,
                    "labels": {GROUP_MEMBER_LABEL: name},
                    "ownerReferences": [{"apiVersion": api_version,
                        "kind": "VolumeGroupSnapshot", "name": name, "uid": uid}],
                },
                "spec": {"source": {"persistentVolumeClaimName": pvc}},
            }),
        },
        Action::MergePatch {
            group: "snapshot.storage.k8s.io".into(),
            resource: "volumesnapshots".into(),
            namespace: Some(ns.to_owned()),
            name: member,
            patch: json!({"status": {
                "boundVolumeSnapshotContentName": content,
                "volumeGroupSnapshotName": name,
                "readyToUse": true,
                "creationTime": crate::object::now(),
                "restoreSize": size,
            }}),
            status: true,
        },
    ]
}

/// The PV provisioner and binder: a new PVC without `spec.volumeName` gets a PV
/// (`pvc-<uid>`, CSI driver [`DRIVER`], claimRef to the PVC, phase Bound), `spec.volumeName`,
/// the bind annotations and `status.phase: Bound` with its capacity.
pub fn provisioner(change: &Change<'_>) -> Vec<Action> {
    if change.kind != EventKind::Added || !change.is("", "persistentvolumeclaims") {
        return Vec::new();
    }
    let pvc = change.object;
    if str_at(pvc, "/spec/volumeName").is_some_and(|v| !v.is_empty()) {
        return Vec::new();
    }
    let ns = change.namespace().unwrap_or_default();
    let uid = str_at(pvc, "/metadata/uid").unwrap_or_default();
    let pv_name = format!("pvc-{uid}");
    let size = str_at(pvc, "/spec/resources/requests/storage").unwrap_or("1Gi");
    let modes = pvc
        .pointer("/spec/accessModes")
        .cloned()
        .unwrap_or_else(|| json!(["ReadWriteOnce"]));
    let mut pv_spec = json!({
        "capacity": { "storage": size },
        "accessModes": modes,
        "persistentVolumeReclaimPolicy": "Delete",
        "volumeMode": str_at(pvc, "/spec/volumeMode").unwrap_or("Filesystem"),
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "name": change.name(),
            "namespace": ns,
            "uid": uid,
        },
        "csi": { "driver": DRIVER, "volumeHandle": format!("vol-{uid}") },
    });
    if let Some(class) = str_at(pvc, "/spec/storageClassName") {
        pv_spec["storageClassName"] = json!(class);
    }
    vec![
        Action::Create {
            group: String::new(),
            resource: "persistentvolumes".into(),
            namespace: None,
            object: json!({
                "metadata": {
                    "name": pv_name,
                    "annotations": { "pv.kubernetes.io/provisioned-by": DRIVER },
                },
                "spec": pv_spec,
            }),
        },
        Action::MergePatch {
            group: String::new(),
            resource: "persistentvolumes".into(),
            namespace: None,
            name: pv_name.clone(),
            patch: json!({ "status": { "phase": "Bound" } }),
            status: true,
        },
        Action::MergePatch {
            group: String::new(),
            resource: "persistentvolumeclaims".into(),
            namespace: Some(ns.to_string()),
            name: change.name().to_string(),
            patch: json!({
                "metadata": { "annotations": {
                    "pv.kubernetes.io/bind-completed": "yes",
                    "pv.kubernetes.io/bound-by-controller": "yes",
                }},
                "spec": { "volumeName": pv_name },
            }),
            status: false,
        },
        Action::patch_status(
            change,
            json!({ "phase": "Bound", "capacity": { "storage": size }, "accessModes": modes }),
        ),
    ]
}

/// The Job controller, optimistically: a new Job succeeds at once (`succeeded` =
/// `spec.completions` or 1, a Complete condition, start and completion times).
pub fn jobs_succeed(change: &Change<'_>) -> Vec<Action> {
    if change.kind != EventKind::Added || !change.is("batch", "jobs") {
        return Vec::new();
    }
    let completions = change
        .object
        .pointer("/spec/completions")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let now = crate::object::now();
    vec![Action::patch_status(
        change,
        json!({
            "startTime": now,
            "completionTime": now,
            "succeeded": completions,
            "conditions": [
                { "type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now },
                { "type": "Complete", "status": "True", "lastTransitionTime": now },
            ],
        }),
    )]
}

/// Workload controllers: Deployments, StatefulSets, ReplicaSets get `status` with every
/// desired replica ready and `observedGeneration` current, whenever their spec changes.
pub fn workloads_ready(change: &Change<'_>) -> Vec<Action> {
    let workload = change.is("apps", "deployments")
        || change.is("apps", "statefulsets")
        || change.is("apps", "replicasets");
    if change.kind == EventKind::Deleted || !workload {
        return Vec::new();
    }
    let o = change.object;
    let replicas = o
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let generation = o
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let observed = o
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    let ready = o
        .pointer("/status/readyReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if observed == Some(generation) && ready == replicas {
        return Vec::new();
    }
    let mut status = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
    });
    if change.resource == "statefulsets" {
        status["currentReplicas"] = json!(replicas);
    }
    vec![Action::patch_status(change, status)]
}
