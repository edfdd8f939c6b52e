//! Restore to production: the workloads that mount the PVCs being restored are scaled to zero,
//! the data is restored into the existing PVCs, and the workloads are scaled back to the
//! replicas they had — also when the data restore fails. The replicas are also written to an
//! annotation on each workload ([`REPLICAS_ANNOTATION`]) so that an interrupted restore can be
//! finished by hand or by [`resume`].

use std::collections::BTreeSet;
use std::future::Future;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::object::{ObjectKey, at, claim_names, pod_spec_path, str_at};
use crate::restore::{REPLICAS_ANNOTATION, release_workloads};
use crate::wait::{self, WaitPolicy};

/// Kinds scaled down, with their API versions.
const SCALABLE: &[(&str, &str)] = &[
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "ReplicaSet"),
];

/// The workloads in `namespace` whose pods mount any of `pvcs`, with their replicas.
///
/// ReplicaSets owned by a Deployment are left to their Deployment; a StatefulSet owns the PVCs
/// `<template>-<statefulset>-<ordinal>` of its volume claim templates.
///
/// # Errors
/// `Kube`.
pub async fn owners(
    cluster: &Cluster,
    namespace: &str,
    pvcs: &BTreeSet<String>,
) -> Result<Vec<(ObjectKey, i64)>> {
    let mut out = Vec::new();
    for (api_version, kind) in SCALABLE {
        for obj in cluster
            .list_kind(api_version, kind, Some(namespace))
            .await?
        {
            if crate::object::controller_owner(&obj).is_some() {
                continue;
            }
            let Some(key) = ObjectKey::of(&obj) else {
                continue;
            };
            if mounts_any(&obj, &key, pvcs) {
                let replicas = at(&obj, &["spec", "replicas"])
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                out.push((key, replicas));
            }
        }
    }
    Ok(out)
}

fn mounts_any(obj: &Value, key: &ObjectKey, pvcs: &BTreeSet<String>) -> bool {
    let direct = pod_spec_path(&key.kind)
        .and_then(|p| at(obj, p))
        .is_some_and(|spec| claim_names(spec).iter().any(|c| pvcs.contains(c)));
    let templates = at(obj, &["spec", "volumeClaimTemplates"])
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| str_at(t, &["metadata", "name"]))
        .any(|t| {
            let prefix = format!("{t}-{}-", key.name);
            pvcs.iter().any(|p| {
                p.strip_prefix(&prefix)
                    .is_some_and(|o| o.bytes().all(|b| b.is_ascii_digit()) && !o.is_empty())
            })
        });
    direct || templates
}

/// Scales the workloads to zero, recording their replicas in [`REPLICAS_ANNOTATION`], and waits
/// until no pod of the namespace mounts the PVCs.
///
/// # Errors
/// `Kube`, `Timeout` if pods remain.
pub async fn scale_down(
    cluster: &Cluster,
    namespace: &str,
    held: &[(ObjectKey, i64)],
    pvcs: &BTreeSet<String>,
    policy: WaitPolicy,
) -> Result<()> {
    for (key, replicas) in held {
        let patch = json!({"metadata":{"annotations":{REPLICAS_ANNOTATION: replicas.to_string()}},"spec":{"replicas":0}});
        cluster.merge_patch(key, &patch).await?;
    }
    wait::until(
        &format!("pods in {namespace} to release {pvcs:?}"),
        policy,
        || async {
            let pods = cluster.list_kind("v1", "Pod", Some(namespace)).await?;
            let busy = pods.iter().any(|p| {
                at(p, &["spec"]).is_some_and(|s| claim_names(s).iter().any(|c| pvcs.contains(c)))
            });
            Ok((!busy).then_some(()))
        },
    )
    .await
}

/// Runs `restore_data` with the owning workloads of `pvcs` scaled to zero, then scales them
/// back to their replicas whether it succeeded or not. Returns the workloads it held.
///
/// # Errors
/// The data restore's error (after scaling back), else a scaling error.
pub async fn with_workloads_stopped<F, Fut>(
    cluster: &Cluster,
    namespace: &str,
    pvcs: &BTreeSet<String>,
    policy: WaitPolicy,
    restore_data: F,
) -> Result<Vec<(ObjectKey, i64)>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let held = owners(cluster, namespace, pvcs).await?;
    let stopped = scale_down(cluster, namespace, &held, pvcs, policy).await;
    let restored = match stopped {
        Ok(()) => restore_data().await,
        Err(e) => Err(e),
    };
    let back = release_workloads(cluster, &held).await;
    match (restored, back) {
        (Err(e), Err(b)) => {
            tracing::error!(error = %b, "scaling back after a failed restore also failed");
            Err(e)
        }
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(held),
    }
}

/// Scales back every workload of `namespace` that still carries [`REPLICAS_ANNOTATION`] (after
/// a restore that was interrupted).
///
/// # Errors
/// `Kube`, `Invalid` for an annotation that is not a number.
pub async fn resume(cluster: &Cluster, namespace: &str) -> Result<Vec<(ObjectKey, i64)>> {
    let mut held = Vec::new();
    for (api_version, kind) in SCALABLE {
        for obj in cluster
            .list_kind(api_version, kind, Some(namespace))
            .await?
        {
            let Some(key) = ObjectKey::of(&obj) else {
                continue;
            };
            if let Some(r) = str_at(&obj, &["metadata", "annotations", REPLICAS_ANNOTATION]) {
                let n = r.parse().map_err(|_| {
                    Error::invalid(format!("{REPLICAS_ANNOTATION} of {key}"), r.to_owned())
                })?;
                held.push((key, n));
            }
        }
    }
    release_workloads(cluster, &held).await?;
    Ok(held)
}
