//! The order in which a restore creates objects: what others depend on first. Configurable
//! by a list of kinds; the default is [`DEFAULT_ORDER`].

use serde_json::Value;

use crate::object::ObjectKey;
use crate::transform::kind_matches;

/// The default restore order: one tier per entry, in this order; `*` is every kind not listed,
/// and custom resources (kinds a CRD defines) come after everything else.
pub const DEFAULT_ORDER: &[&str] = &[
    "CustomResourceDefinition",
    "Namespace",
    "StorageClass",
    "PriorityClass",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "LimitRange",
    "ResourceQuota",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "Pod",
    "Service",
    "*",
];

/// Sorts objects for creation: by tier of `order` (entries name kinds as
/// [`kind_matches`](crate::transform::kind_matches) reads them; `*` for the rest), custom
/// resources last, then by namespace and name so that a restore is reproducible.
pub fn sort_for_restore(
    objs: &mut [Value],
    order: &[String],
    is_custom: &dyn Fn(&ObjectKey) -> bool,
) {
    let rest = order.iter().position(|o| o == "*").unwrap_or(order.len());
    let tier = |o: &Value| -> (usize, String, String) {
        let Some(k) = ObjectKey::of(o) else {
            return (usize::MAX, String::new(), String::new());
        };
        let listed = order
            .iter()
            .position(|p| p != "*" && kind_matches(p, &k.kind, None, k.group()));
        let t = match listed {
            Some(i) => i,
            None if is_custom(&k) => order.len(),
            None => rest,
        };
        (t, k.namespace.unwrap_or_default(), k.name)
    };
    objs.sort_by_cached_key(tier);
}

/// [`DEFAULT_ORDER`] as owned strings.
pub fn default_order() -> Vec<String> {
    DEFAULT_ORDER.iter().map(|s| (*s).to_owned()).collect()
}
