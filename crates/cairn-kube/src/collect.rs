//! Reading an application out of a cluster: every listable type from discovery, filtered by
//! the [`Selection`], minus what must never be restored ([`crate::skip`]), plus the
//! cluster-scoped dependencies ([`crate::select::dependencies`]).

use std::collections::BTreeSet;

use kube::discovery::Scope;
use serde_json::Value;

use crate::cluster::Cluster;
use crate::document::{ClusterInfo, Dependency, ResourceType, Skipped};
use crate::error::Result;
use crate::object::{ObjectKey, str_at};
use crate::select::{ClusterObjects, Selection, dependencies};
use crate::skip;

/// What [`collect`] found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Collected {
    /// Selected objects and their dependencies, as fetched.
    pub resources: Vec<Value>,
    /// The dependencies among `resources`.
    pub dependencies: Vec<Dependency>,
    /// Objects left out, with reasons.
    pub skipped: Vec<Skipped>,
    /// The source cluster.
    pub cluster: ClusterInfo,
}

/// Selects an application's objects.
///
/// # Errors
/// `Kube` for failed discovery or lists, `Invalid` for a malformed selector.
pub async fn collect(cluster: &Cluster, sel: &Selection) -> Result<Collected> {
    let selectors = sel.parsed_selectors()?;
    let crds = cluster
        .list_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition", None)
        .await?;
    let custom_groups: BTreeSet<(String, String)> = crds
        .iter()
        .filter_map(|c| {
            Some((
                str_at(c, &["spec", "group"])?.to_owned(),
                str_at(c, &["spec", "names", "kind"])?.to_owned(),
            ))
        })
        .collect();
    let mut out = Collected::default();
    out.cluster.version = cluster.version().await?;
    out.cluster.group_snapshots = cluster
        .discovery()
        .has_group("groupsnapshot.storage.k8s.io");
    let mut candidates = Vec::new();
    let mut ns_objects = Vec::new();
    for (ar, caps) in cluster.listable() {
        let is_namespaced = caps.scope == Scope::Namespaced;
        out.cluster.resource_types.push(ResourceType {
            group: ar.group.clone(),
            version: ar.version.clone(),
            kind: ar.kind.clone(),
            plural: ar.plural.clone(),
            namespaced: is_namespaced,
            custom: custom_groups.contains(&(ar.group.clone(), ar.kind.clone())),
        });
        if ar.group.is_empty() && ar.kind == "Namespace" {
            if sel.kind_selected(&ar.kind, &ar.plural, &ar.group) {
                ns_objects = cluster.list(&ar, None).await?;
            }
            continue;
        }
        if !is_namespaced || !sel.kind_selected(&ar.kind, &ar.plural, &ar.group) {
            continue;
        }
        if let Some(reason) = skip::type_reason(&ar.group, &ar.kind) {
            tracing::debug!(kind = %ar.kind, reason, "type never backed up");
            continue;
        }
        let lists = if sel.namespaces.is_empty() {
            vec![cluster.list(&ar, None).await?]
        } else {
            let mut v = Vec::new();
            for ns in &sel.namespaces {
                v.push(cluster.list(&ar, Some(ns)).await?);
            }
            v
        };
        candidates.extend(
            lists
                .into_iter()
                .flatten()
                .filter(|o| sel.object_selected(o, &selectors)),
        );
    }
    let services: BTreeSet<(String, String)> = candidates
        .iter()
        .filter_map(ObjectKey::of)
        .filter(|k| k.kind == "Service" && k.group().is_empty())
        .map(|k| (k.namespace.unwrap_or_default(), k.name))
        .collect();
    for obj in candidates {
        match skip::object_reason(&obj, &services) {
            Some(reason) => {
                if let Some(object) = ObjectKey::of(&obj) {
                    out.skipped.push(Skipped { object, reason });
                }
            }
            None => out.resources.push(obj),
        }
    }
    // Namespaces: those named, or (selecting by labels across namespaces) those holding
    // selected objects.
    let used: BTreeSet<String> = out
        .resources
        .iter()
        .filter_map(|o| str_at(o, &["metadata", "namespace"]).map(str::to_owned))
        .collect();
    for ns in ns_objects {
        let name = str_at(&ns, &["metadata", "name"])
            .unwrap_or_default()
            .to_owned();
        if sel.namespaces.contains(&name) || (sel.namespaces.is_empty() && used.contains(&name)) {
            out.resources.push(ns);
        }
    }
    if !sel.no_cluster_dependencies {
        add_dependencies(cluster, crds, &mut out).await?;
    }
    Ok(out)
}

/// Adds the cluster-scoped objects the collected ones depend on.
async fn add_dependencies(cluster: &Cluster, crds: Vec<Value>, out: &mut Collected) -> Result<()> {
    let objs = ClusterObjects {
        crds,
        pvs: cluster.list_kind("v1", "PersistentVolume", None).await?,
        storage_classes: cluster
            .list_kind("storage.k8s.io/v1", "StorageClass", None)
            .await?,
        cluster_roles: cluster
            .list_kind("rbac.authorization.k8s.io/v1", "ClusterRole", None)
            .await?,
        cluster_role_bindings: cluster
            .list_kind("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None)
            .await?,
    };
    for (obj, dep) in dependencies(&out.resources, &objs) {
        out.resources.push(obj);
        out.dependencies.push(dep);
    }
    Ok(())
}
