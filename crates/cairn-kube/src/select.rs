//! What an application is: the selection (namespaces, an OR of label selectors, included and
//! excluded kinds), and the cluster-scoped objects the selected ones depend on. The dependency
//! closure is pure ([`dependencies`]); [`crate::discover`] fetches the candidates.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::document::Dependency;
use crate::error::Result;
use crate::object::{ObjectKey, at, group_of, labels, str_at};
use crate::selector::{LabelSelector, any_matches};
use crate::transform::kind_matches;

/// What to back up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Selection {
    /// Namespaces whose objects are selected (all namespaces if empty; then at least one
    /// label selector should narrow it down).
    pub namespaces: Vec<String>,
    /// Label selectors; an object is selected if any matches (everything if empty).
    pub selectors: Vec<String>,
    /// Only these kinds (`Deployment`, `deployments`, `deployments.apps`); all if empty.
    pub include_kinds: Vec<String>,
    /// Never these kinds.
    pub exclude_kinds: Vec<String>,
    /// Leave out the cluster-scoped dependencies (CRDs, PVs, storage classes, cluster roles).
    pub no_cluster_dependencies: bool,
}

impl Selection {
    /// The parsed selectors.
    ///
    /// # Errors
    /// `Invalid` for a malformed selector.
    pub fn parsed_selectors(&self) -> Result<Vec<LabelSelector>> {
        self.selectors
            .iter()
            .map(|s| LabelSelector::parse(s))
            .collect()
    }

    /// True if objects of this type may be selected.
    pub fn kind_selected(&self, kind: &str, plural: &str, group: &str) -> bool {
        let m = |p: &String| kind_matches(p, kind, Some(plural), group);
        (self.include_kinds.is_empty() || self.include_kinds.iter().any(m))
            && !self.exclude_kinds.iter().any(m)
    }

    /// True if this namespace is selected.
    pub fn namespace_selected(&self, ns: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns)
    }

    /// True if a namespaced object passes the namespace and label tests.
    pub fn object_selected(&self, obj: &Value, selectors: &[LabelSelector]) -> bool {
        let ns = str_at(obj, &["metadata", "namespace"]).unwrap_or_default();
        self.namespace_selected(ns) && any_matches(selectors, &labels(obj))
    }
}

/// Cluster-scoped objects the dependency closure looks at.
#[derive(Debug, Clone, Default)]
pub struct ClusterObjects {
    /// CustomResourceDefinitions.
    pub crds: Vec<Value>,
    /// PersistentVolumes.
    pub pvs: Vec<Value>,
    /// StorageClasses.
    pub storage_classes: Vec<Value>,
    /// ClusterRoles.
    pub cluster_roles: Vec<Value>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<Value>,
}

/// The cluster-scoped objects `selected` depends on: the CRDs of its custom resources, the PVs
/// bound to its PVCs and the storage classes of both, the ClusterRoleBindings naming its
/// service accounts and the ClusterRoles those (and its RoleBindings) refer to.
pub fn dependencies(selected: &[Value], cluster: &ClusterObjects) -> Vec<(Value, Dependency)> {
    let mut out: Vec<(Value, Dependency)> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |obj: &Value, reason: String, out: &mut Vec<(Value, Dependency)>| {
        if let Some(k) = ObjectKey::of(obj)
            && seen.insert(k.clone())
        {
            out.push((obj.clone(), Dependency { object: k, reason }));
        }
    };
    let find = |list: &[Value], name: &str| -> Option<Value> {
        list.iter()
            .find(|o| str_at(o, &["metadata", "name"]) == Some(name))
            .cloned()
    };
    let mut service_accounts = BTreeSet::new();
    let mut classes: Vec<(String, String)> = Vec::new();
    let mut role_refs: Vec<(String, String)> = Vec::new();
    for obj in selected {
        let Some(key) = ObjectKey::of(obj) else {
            continue;
        };
        let group = group_of(&key.api_version);
        // Custom resources: the CRD that defines the kind.
        if let Some(crd) = cluster.crds.iter().find(|c| {
            str_at(c, &["spec", "group"]) == Some(group)
                && str_at(c, &["spec", "names", "kind"]) == Some(key.kind.as_str())
        }) {
            add(crd, format!("defines {key}"), &mut out);
        }
        match key.kind.as_str() {
            "PersistentVolumeClaim" => {
                if let Some(pv) =
                    str_at(obj, &["spec", "volumeName"]).and_then(|n| find(&cluster.pvs, n))
                {
                    if let Some(sc) = str_at(&pv, &["spec", "storageClassName"]) {
                        classes.push((
                            sc.to_owned(),
                            format!("class of PersistentVolume bound to {key}"),
                        ));
                    }
                    add(&pv, format!("bound to {key}"), &mut out);
                }
                if let Some(sc) = str_at(obj, &["spec", "storageClassName"]) {
                    classes.push((sc.to_owned(), format!("class of {key}")));
                }
            }
            "StatefulSet" => {
                for t in at(obj, &["spec", "volumeClaimTemplates"])
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(sc) = str_at(t, &["spec", "storageClassName"]) {
                        classes.push((
                            sc.to_owned(),
                            format!("class of a volume claim template of {key}"),
                        ));
                    }
                }
            }
            "ServiceAccount" => {
                service_accounts
                    .insert((key.namespace.clone().unwrap_or_default(), key.name.clone()));
            }
            "RoleBinding" if str_at(obj, &["roleRef", "kind"]) == Some("ClusterRole") => {
                if let Some(r) = str_at(obj, &["roleRef", "name"]) {
                    role_refs.push((r.to_owned(), format!("referenced by {key}")));
                }
            }
            _ => {}
        }
    }
    for (sc, why) in classes {
        if let Some(o) = find(&cluster.storage_classes, &sc) {
            add(&o, why, &mut out);
        }
    }
    role_refs.extend(bindings_of(&service_accounts, cluster, &mut |o, why| {
        add(o, why, &mut out);
    }));
    for (r, why) in role_refs {
        if let Some(o) = find(&cluster.cluster_roles, &r) {
            add(&o, why, &mut out);
        }
    }
    out
}

/// The ClusterRoleBindings naming one of `service_accounts` (given to `add`), and the
/// ClusterRoles they refer to.
fn bindings_of(
    service_accounts: &BTreeSet<(String, String)>,
    cluster: &ClusterObjects,
    add: &mut dyn FnMut(&Value, String),
) -> Vec<(String, String)> {
    let mut role_refs = Vec::new();
    for crb in &cluster.cluster_role_bindings {
        let binds = at(crb, &["subjects"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|s| {
                str_at(s, &["kind"]) == Some("ServiceAccount")
                    && service_accounts.contains(&(
                        str_at(s, &["namespace"]).unwrap_or_default().to_owned(),
                        str_at(s, &["name"]).unwrap_or_default().to_owned(),
                    ))
            });
        if let Some(s) = binds {
            let sa = format!(
                "ServiceAccount {}/{}",
                str_at(s, &["namespace"]).unwrap_or_default(),
                str_at(s, &["name"]).unwrap_or_default()
            );
            add(crb, format!("binds {sa}"));
            if let Some(r) = str_at(crb, &["roleRef", "name"]) {
                role_refs.push((r.to_owned(), format!("bound to {sa}")));
            }
        }
    }
    role_refs
}
