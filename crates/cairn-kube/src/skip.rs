//! What a backup never keeps, and why: objects the cluster itself creates or owns, which a
//! restore must not recreate (the controllers recreate them, or they describe the old cluster).
//! `cairn app describe` prints the reasons recorded here.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::object::{ObjectKey, controller_owner, labels, str_at};

/// Resource types that are never backed up, by `(group, kind)`, with the reason.
pub const NEVER_BACKED_UP: &[(&str, &str, &str)] = &[
    (
        "",
        "Node",
        "nodes belong to the cluster, not to an application",
    ),
    ("", "Event", "events are a log of the old cluster"),
    (
        "events.k8s.io",
        "Event",
        "events are a log of the old cluster",
    ),
    (
        "",
        "ComponentStatus",
        "cluster health, not an application object",
    ),
    ("", "Binding", "a binding is an action, not an object"),
    (
        "storage.k8s.io",
        "VolumeAttachment",
        "attachments describe the old cluster's nodes",
    ),
    (
        "storage.k8s.io",
        "CSINode",
        "per-node driver state of the old cluster",
    ),
    (
        "coordination.k8s.io",
        "Lease",
        "leader-election and heartbeat leases are transient",
    ),
    (
        "metrics.k8s.io",
        "PodMetrics",
        "metrics are computed, not stored",
    ),
    (
        "metrics.k8s.io",
        "NodeMetrics",
        "metrics are computed, not stored",
    ),
    (
        "apps",
        "ControllerRevision",
        "controllers write their revision history again",
    ),
    (
        "snapshot.storage.k8s.io",
        "VolumeSnapshotContent",
        "snapshot contents belong to the old cluster's storage",
    ),
    (
        "authorization.k8s.io",
        "SelfSubjectAccessReview",
        "a review is a request, not an object",
    ),
];

/// Why a type is never backed up, or `None`.
pub fn type_reason(group: &str, kind: &str) -> Option<&'static str> {
    NEVER_BACKED_UP
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map(|(_, _, r)| *r)
}

/// Why this object (of a kept type) is not backed up, or `None` to keep it.
///
/// `services` holds `(namespace, name)` of the Services among the candidates: Endpoints with a
/// Service of the same name are the endpoints controller's.
pub fn object_reason(obj: &Value, services: &BTreeSet<(String, String)>) -> Option<String> {
    let key = ObjectKey::of(obj)?;
    if let Some(r) = type_reason(key.group(), &key.kind) {
        return Some(r.to_owned());
    }
    let owner = controller_owner(obj);
    match (key.group(), key.kind.as_str()) {
        ("", "Pod") => owner.map(|(k, n)| format!("owned by {k} {n}, which recreates it")),
        ("apps", "ReplicaSet") => owner
            .filter(|(k, _)| *k == "Deployment")
            .map(|(k, n)| format!("owned by {k} {n}, which recreates it")),
        ("batch", "Job") => owner
            .filter(|(k, _)| *k == "CronJob")
            .map(|(k, n)| format!("owned by {k} {n}, which recreates it")),
        ("", "Endpoints") => {
            let ns = key.namespace.clone().unwrap_or_default();
            services
                .contains(&(ns, key.name.clone()))
                .then(|| "managed by the endpoints controller of its Service".to_owned())
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            let l = labels(obj);
            l.get("endpointslice.kubernetes.io/managed-by")
                .map(|m| format!("managed by {m}"))
                .or_else(|| {
                    l.get("kubernetes.io/service-name")
                        .map(|s| format!("managed by the controller of Service {s}"))
                })
        }
        ("", "ConfigMap") if key.name == "kube-root-ca.crt" => {
            Some("published in every namespace by the root CA publisher".to_owned())
        }
        ("", "Secret") if str_at(obj, &["type"]) == Some("kubernetes.io/service-account-token") => {
            Some(
                "a service-account token of the old cluster; the token controller issues new ones"
                    .to_owned(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn controller_owned_and_cluster_objects_are_skipped() {
        let none = BTreeSet::new();
        let owned_pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"a",
            "ownerReferences":[{"kind":"ReplicaSet","name":"rs","controller":true,"uid":"1","apiVersion":"apps/v1"}]}});
        assert!(
            object_reason(&owned_pod, &none)
                .unwrap()
                .contains("ReplicaSet rs")
        );
        let bare_pod =
            json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"a"}});
        assert_eq!(object_reason(&bare_pod, &none), None);
        let rs = json!({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"r","namespace":"a",
            "ownerReferences":[{"kind":"Deployment","name":"d","controller":true}]}});
        assert!(object_reason(&rs, &none).is_some());
        let lease = json!({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"l","namespace":"a"}});
        assert!(object_reason(&lease, &none).is_some());
        let ep =
            json!({"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"web","namespace":"a"}});
        assert_eq!(object_reason(&ep, &none), None);
        let svcs = BTreeSet::from([("a".to_owned(), "web".to_owned())]);
        assert!(object_reason(&ep, &svcs).is_some());
        let cm = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"kube-root-ca.crt","namespace":"a"}});
        assert!(object_reason(&cm, &none).is_some());
    }
}
