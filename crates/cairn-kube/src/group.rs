//! VolumeGroupSnapshots: every volume of an application that one CSI driver serves in one
//! namespace, cut at a single instant.
//!
//! The PVCs of a group get a temporary label; a VolumeGroupSnapshot selects them by it. Once it
//! is ready, the member VolumeSnapshots the snapshot-controller made (one per PVC, with
//! `spec.source.persistentVolumeClaimName` set and the group recorded in
//! `status.volumeGroupSnapshotName` and as their owner) stand in for per-PVC snapshots. The
//! label goes as soon as the group is ready or has failed; deleting the group deletes its
//! members. Needs `groupsnapshot.storage.k8s.io/v1beta1` or later: alpha members do not name
//! their PVC.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::mover::RUN_LABEL;
use crate::object::{ObjectKey, at, str_at};
use crate::wait::WaitPolicy;

/// The API group of VolumeGroupSnapshots.
pub const API_GROUP: &str = "groupsnapshot.storage.k8s.io";
/// The temporary label that puts a PVC into a group; its value is the group's name.
pub const GROUP_LABEL: &str = "cairn.io/group-snapshot";

/// When to cut an application's volumes together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupPolicy {
    /// Where the cluster serves VolumeGroupSnapshots; if a group fails, its volumes are
    /// snapshotted one by one and each volume's record says so.
    #[default]
    Auto,
    /// Always for volumes that share a namespace and driver; if that cannot be done, those
    /// volumes are not backed up.
    Require,
    /// Never: one VolumeSnapshot per PVC.
    Off,
}

/// PVCs (indices into the caller's list) that can be cut together: same namespace, same CSI
/// driver, at least two of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Namespace of the PVCs and of the VolumeGroupSnapshot.
    pub namespace: String,
    /// CSI driver of their PVs.
    pub driver: String,
    /// Indices of the PVCs.
    pub members: Vec<usize>,
}

/// Splits PVCs into groups and singles. A PVC whose PV or driver is unknown (unbound, not
/// CSI) is a single. Pure: `volumes` is every PersistentVolume the PVCs may be bound to.
pub fn plan(pvcs: &[Value], volumes: &[Value]) -> (Vec<Group>, Vec<usize>) {
    let driver_of = |pvc: &Value| -> Option<&str> {
        let pv_name = str_at(pvc, &["spec", "volumeName"]).filter(|s| !s.is_empty())?;
        let pv = volumes
            .iter()
            .find(|p| str_at(p, &["metadata", "name"]) == Some(pv_name))?;
        str_at(pv, &["spec", "csi", "driver"])
    };
    let mut by_key: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    let mut singles = Vec::new();
    for (i, pvc) in pvcs.iter().enumerate() {
        match (str_at(pvc, &["metadata", "namespace"]), driver_of(pvc)) {
            (Some(ns), Some(driver)) => by_key
                .entry((ns.to_owned(), driver.to_owned()))
                .or_default()
                .push(i),
            _ => singles.push(i),
        }
    }
    let mut groups = Vec::new();
    for ((namespace, driver), members) in by_key {
        if members.len() < 2 {
            singles.extend(members);
        } else {
            groups.push(Group {
                namespace,
                driver,
                members,
            });
        }
    }
    singles.sort_unstable();
    (groups, singles)
}

/// The `apiVersion` to create VolumeGroupSnapshots with: the cluster's preferred version of
/// the group, if it is beta or later.
pub fn api_version(cluster: &Cluster) -> Option<String> {
    let g = cluster.discovery().get(API_GROUP)?;
    let v = g.preferred_version_or_latest();
    (!v.contains("alpha")).then(|| format!("{API_GROUP}/{v}"))
}

/// The VolumeGroupSnapshot manifest selecting the PVCs labelled for it.
pub fn group_snapshot_spec(
    api_version: &str,
    name: &str,
    namespace: &str,
    class: Option<&str>,
    run: &str,
) -> Value {
    let mut spec = json!({"source": {"selector": {"matchLabels": {GROUP_LABEL: name}}}});
    if let Some(c) = class {
        spec["volumeGroupSnapshotClassName"] = json!(c);
    }
    json!({
        "apiVersion": api_version,
        "kind": "VolumeGroupSnapshot",
        "metadata": {"name": name, "namespace": namespace, "labels": {RUN_LABEL: run}},
        "spec": spec,
    })
}

/// The members of a group snapshot among `snapshots` (VolumeSnapshots of its namespace), by
/// the name of the PVC each was cut from.
pub fn members(group: &Value, snapshots: &[Value]) -> BTreeMap<String, Value> {
    let name = str_at(group, &["metadata", "name"]);
    let uid = str_at(group, &["metadata", "uid"]);
    let owned = |s: &Value| {
        at(s, &["metadata", "ownerReferences"])
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    str_at(r, &["kind"]) == Some("VolumeGroupSnapshot")
                        && uid.is_some()
                        && str_at(r, &["uid"]) == uid
                })
            })
    };
    snapshots
        .iter()
        .filter(|s| {
            (name.is_some() && str_at(s, &["status", "volumeGroupSnapshotName"]) == name)
                || owned(s)
        })
        .filter_map(|s| {
            let pvc = str_at(s, &["spec", "source", "persistentVolumeClaimName"])?;
            Some((pvc.to_owned(), s.clone()))
        })
        .collect()
}

/// A ready member snapshot of one PVC.
#[derive(Debug, Clone)]
pub struct Member {
    /// The VolumeSnapshot.
    pub key: ObjectKey,
    /// Its `status.restoreSize`, if it has one.
    pub restore_size: Option<String>,
}

/// What [`take`] creates.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// From [`api_version`].
    pub api_version: &'a str,
    /// Name of the VolumeGroupSnapshot (also the label's value).
    pub name: &'a str,
    /// VolumeGroupSnapshotClass (the driver's default if `None`).
    pub class: Option<&'a str>,
    /// The run id, for the run label.
    pub run: &'a str,
    /// Waiting for the group and its members.
    pub wait: WaitPolicy,
}

/// The VolumeGroupSnapshot [`take`] creates for `req` in `namespace`.
pub fn key(req: &Request<'_>, namespace: &str) -> ObjectKey {
    ObjectKey {
        api_version: req.api_version.to_owned(),
        kind: "VolumeGroupSnapshot".into(),
        namespace: Some(namespace.to_owned()),
        name: req.name.to_owned(),
    }
}

/// Cuts `pvcs` (one namespace) at one instant as the group `req.name`: labels them, creates the
/// VolumeGroupSnapshot, waits until it is ready, removes the labels (also on failure), and
/// returns the member snapshot of each PVC, in the order of `pvcs`. The caller deletes the
/// group ([`key`]), which deletes the members, when done with them, or at once on an error.
///
/// # Errors
/// `Failed` (the group reports an error, or lacks a member for a PVC), `Timeout`, `Kube`.
pub async fn take(cluster: &Cluster, req: &Request<'_>, pvcs: &[&Value]) -> Result<Vec<Member>> {
    let (name, policy) = (req.name, req.wait);
    let namespace = pvcs
        .first()
        .and_then(|p| str_at(p, &["metadata", "namespace"]))
        .unwrap_or_default();
    let pvc_keys: Vec<ObjectKey> = pvcs.iter().filter_map(|p| ObjectKey::of(p)).collect();
    let mut labelled = Vec::new();
    let result = async {
        for k in &pvc_keys {
            cluster
                .merge_patch(k, &json!({"metadata": {"labels": {GROUP_LABEL: name}}}))
                .await?;
            labelled.push(k);
        }
        let spec = group_snapshot_spec(req.api_version, name, namespace, req.class, req.run);
        cluster.create(&spec).await?;
        crate::volumes::wait_snapshot_ready(cluster, &key(req, namespace), policy).await
    }
    .await;
    // The label selected the PVCs when the group was cut; it must not outlive that.
    for k in labelled {
        let unlabel = json!({"metadata": {"labels": {GROUP_LABEL: null}}});
        if let Err(e) = cluster.merge_patch(k, &unlabel).await {
            tracing::warn!(object = %k, error = %e, "removing the group label failed");
        }
    }
    let group = result?;
    let snapshots = cluster
        .list_kind(
            "snapshot.storage.k8s.io/v1",
            "VolumeSnapshot",
            Some(namespace),
        )
        .await?;
    let found = members(&group, &snapshots);
    let mut out = Vec::with_capacity(pvcs.len());
    for p in pvcs {
        let pvc = str_at(p, &["metadata", "name"]).unwrap_or_default();
        let Some(s) = found.get(pvc) else {
            return Err(Error::Failed {
                what: format!("VolumeGroupSnapshot {namespace}/{name}"),
                reason: format!("the group holds no snapshot of PVC {pvc}"),
            });
        };
        let key = crate::cluster::key_of(s)?;
        let ready = crate::volumes::wait_snapshot_ready(cluster, &key, policy).await?;
        out.push(Member {
            key,
            restore_size: str_at(&ready, &["status", "restoreSize"]).map(str::to_owned),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvc(ns: &str, name: &str, pv: Option<&str>) -> Value {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns}, "spec": {"volumeName": pv}})
    }

    fn pv(name: &str, driver: Option<&str>) -> Value {
        let mut p = json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name}, "spec": {}});
        if let Some(d) = driver {
            p["spec"]["csi"] = json!({"driver": d, "volumeHandle": name});
        }
        p
    }

    #[test]
    fn groups_are_per_namespace_and_driver_with_two_or_more_members() {
        let pvcs = [
            pvc("a", "db", Some("pv1")),
            pvc("a", "logs", Some("pv2")),
            pvc("a", "cache", Some("pv3")),
            pvc("b", "db", Some("pv4")),
            pvc("a", "unbound", None),
            pvc("a", "nfs", Some("pv5")),
            pvc("a", "wal", Some("pv6")),
        ];
        let volumes = [
            pv("pv1", Some("ebs")),
            pv("pv2", Some("ebs")),
            pv("pv3", Some("efs")),
            pv("pv4", Some("ebs")),
            pv("pv5", None),
            pv("pv6", Some("ebs")),
        ];
        let (groups, singles) = plan(&pvcs, &volumes);
        assert_eq!(
            groups,
            [Group {
                namespace: "a".into(),
                driver: "ebs".into(),
                members: vec![0, 1, 6],
            }]
        );
        assert_eq!(singles, [2, 3, 4, 5]);
    }

    #[test]
    fn members_are_found_by_status_or_owner_and_keyed_by_pvc() {
        let group = json!({"metadata": {"name": "g", "uid": "u1"}});
        let snap =
            |name: &str, pvc: Option<&str>, status_group: Option<&str>, owner: Option<&str>| {
                let mut s =
                    json!({"metadata": {"name": name}, "spec": {"source": {}}, "status": {}});
                if let Some(p) = pvc {
                    s["spec"]["source"]["persistentVolumeClaimName"] = json!(p);
                }
                if let Some(g) = status_group {
                    s["status"]["volumeGroupSnapshotName"] = json!(g);
                }
                if let Some(u) = owner {
                    s["metadata"]["ownerReferences"] =
                        json!([{"kind": "VolumeGroupSnapshot", "name": "g", "uid": u}]);
                }
                s
            };
        let all = [
            snap("s1", Some("db"), Some("g"), None),
            snap("s2", Some("logs"), None, Some("u1")),
            snap("s3", Some("other"), Some("h"), Some("u2")),
            snap("s4", None, Some("g"), None),
            snap("s5", Some("mine"), None, None),
        ];
        let m = members(&group, &all);
        let names: Vec<(&str, &str)> = m
            .iter()
            .map(|(k, v)| (k.as_str(), v["metadata"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(names, [("db", "s1"), ("logs", "s2")]);
    }

    #[test]
    fn the_spec_selects_by_the_group_label() {
        let s = group_snapshot_spec(
            "groupsnapshot.storage.k8s.io/v1beta1",
            "cairn-1-g",
            "shop",
            Some("fast"),
            "1",
        );
        assert_eq!(
            s["spec"]["source"]["selector"]["matchLabels"][GROUP_LABEL],
            "cairn-1-g"
        );
        assert_eq!(s["spec"]["volumeGroupSnapshotClassName"], "fast");
        assert_eq!(s["metadata"]["namespace"], "shop");
    }
}
