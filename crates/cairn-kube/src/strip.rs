//! Removing what belongs to the cluster an object was read from, so that it can be created in
//! another one (or again in the same one). The table [`STRIPPED`] is what `docs/kubernetes.md`
//! documents; [`strip`] applies it.

use serde_json::Value;

use crate::object::{annotations, at, at_mut, remove_at, str_at};

/// One row of the strip table: which kinds (`*` for all), which field, and why.
#[derive(Debug, Clone, Copy)]
pub struct StripRule {
    /// Kind the rule applies to, or `*`.
    pub kind: &'static str,
    /// The field, as a dotted path (`[]` for every element of a list).
    pub field: &'static str,
    /// Why it is removed.
    pub why: &'static str,
}

/// Every field removed before an object is created in the target cluster.
pub const STRIPPED: &[StripRule] = &[
    StripRule {
        kind: "*",
        field: "metadata.uid",
        why: "assigned by the API server; identifies the object in the old cluster only",
    },
    StripRule {
        kind: "*",
        field: "metadata.resourceVersion",
        why: "optimistic-concurrency token of the old cluster's storage; a create must not carry one",
    },
    StripRule {
        kind: "*",
        field: "metadata.creationTimestamp",
        why: "set by the API server at creation",
    },
    StripRule {
        kind: "*",
        field: "metadata.deletionTimestamp, metadata.deletionGracePeriodSeconds",
        why: "an object being deleted is restored alive",
    },
    StripRule {
        kind: "*",
        field: "metadata.managedFields",
        why: "field ownership of the old cluster's clients",
    },
    StripRule {
        kind: "*",
        field: "metadata.generation",
        why: "counted by the API server",
    },
    StripRule {
        kind: "*",
        field: "metadata.selfLink",
        why: "deprecated, set by the API server",
    },
    StripRule {
        kind: "*",
        field: "metadata.ownerReferences",
        why: "they name owners by the old uids; controllers re-adopt their objects by selector, and owned objects controllers recreate are not backed up",
    },
    StripRule {
        kind: "*",
        field: "status",
        why: "observed state, written by controllers in the new cluster (CRDs: conditions of the old cluster)",
    },
    StripRule {
        kind: "Service",
        field: "spec.clusterIP, spec.clusterIPs",
        why: "allocated from the old cluster's service range (kept when `None`: a headless Service)",
    },
    StripRule {
        kind: "Service",
        field: "spec.ports[].nodePort, spec.healthCheckNodePort",
        why: "auto-assigned ports may be taken; kept only when the last-applied configuration set them explicitly",
    },
    StripRule {
        kind: "PersistentVolume",
        field: "spec.claimRef.uid, spec.claimRef.resourceVersion",
        why: "name the old claim object; the claim is matched again by namespace and name",
    },
    StripRule {
        kind: "PersistentVolume, PersistentVolumeClaim",
        field: "metadata.annotations pv.kubernetes.io/bind-completed, pv.kubernetes.io/bound-by-controller, volume.kubernetes.io/selected-node",
        why: "binding state of the old cluster; the binder sets them again",
    },
    StripRule {
        kind: "PersistentVolumeClaim",
        field: "spec.volumeName (unless its PersistentVolume is restored too)",
        why: "the claim is provisioned afresh and filled from the volume backup",
    },
    StripRule {
        kind: "Pod",
        field: "spec.nodeName",
        why: "the old cluster's node; the scheduler picks one",
    },
    StripRule {
        kind: "Job",
        field: "spec.selector, controller-uid labels of spec.template (unless spec.manualSelector)",
        why: "generated from the old Job's uid",
    },
];

/// Options of [`strip`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StripOptions {
    /// Keep PVCs' `spec.volumeName` (their PVs are restored too).
    pub keep_volume_name: bool,
}

const BIND_ANNOTATIONS: &[&str] = &[
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/selected-node",
];

/// Removes the fields of [`STRIPPED`] from an object in place.
pub fn strip(obj: &mut Value, opts: StripOptions) {
    for f in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "generation",
        "selfLink",
        "ownerReferences",
    ] {
        remove_at(obj, &["metadata", f]);
    }
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
    let kind = str_at(obj, &["kind"]).unwrap_or_default().to_owned();
    match kind.as_str() {
        "Service" => strip_service(obj),
        "PersistentVolume" => {
            remove_at(obj, &["spec", "claimRef", "uid"]);
            remove_at(obj, &["spec", "claimRef", "resourceVersion"]);
            strip_bind_annotations(obj);
        }
        "PersistentVolumeClaim" => {
            strip_bind_annotations(obj);
            if !opts.keep_volume_name {
                remove_at(obj, &["spec", "volumeName"]);
            }
        }
        "Pod" => {
            remove_at(obj, &["spec", "nodeName"]);
        }
        "Job" => strip_job(obj),
        _ => {}
    }
    // An emptied annotations map is dropped rather than sent as `{}`.
    if at(obj, &["metadata", "annotations"])
        .and_then(Value::as_object)
        .is_some_and(serde_json::Map::is_empty)
    {
        remove_at(obj, &["metadata", "annotations"]);
    }
}

fn strip_bind_annotations(obj: &mut Value) {
    for a in BIND_ANNOTATIONS {
        remove_at(obj, &["metadata", "annotations", a]);
    }
}

fn strip_service(obj: &mut Value) {
    if str_at(obj, &["spec", "clusterIP"]) != Some("None") {
        remove_at(obj, &["spec", "clusterIP"]);
        remove_at(obj, &["spec", "clusterIPs"]);
    }
    let explicit = explicit_node_ports(obj);
    remove_at(obj, &["spec", "healthCheckNodePort"]);
    if let Some(ports) = at_mut(obj, &["spec", "ports"]).and_then(Value::as_array_mut) {
        for p in ports {
            let keep = p
                .get("nodePort")
                .and_then(Value::as_u64)
                .is_some_and(|n| explicit.contains(&n));
            if !keep && let Some(m) = p.as_object_mut() {
                m.remove("nodePort");
            }
        }
    }
}

/// Node ports the user set: those in `kubectl.kubernetes.io/last-applied-configuration`.
fn explicit_node_ports(obj: &Value) -> Vec<u64> {
    annotations(obj)
        .get("kubectl.kubernetes.io/last-applied-configuration")
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| {
            Some(
                at(&v, &["spec", "ports"])?
                    .as_array()?
                    .iter()
                    .filter_map(|p| p.get("nodePort")?.as_u64())
                    .collect(),
            )
        })
        .unwrap_or_default()
}

fn strip_job(obj: &mut Value) {
    if at(obj, &["spec", "manualSelector"]).and_then(Value::as_bool) == Some(true) {
        return;
    }
    remove_at(obj, &["spec", "selector"]);
    for l in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
        remove_at(obj, &["spec", "template", "metadata", "labels", l]);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn service_keeps_headless_and_explicit_node_ports() {
        let mut headless = json!({"kind":"Service","metadata":{"name":"m","uid":"u","resourceVersion":"5"},
            "spec":{"clusterIP":"None","clusterIPs":["None"],"ports":[{"port":3306}]},"status":{}});
        strip(&mut headless, StripOptions::default());
        assert_eq!(
            headless,
            json!({"kind":"Service","metadata":{"name":"m"},
            "spec":{"clusterIP":"None","clusterIPs":["None"],"ports":[{"port":3306}]}})
        );
        let applied = r#"{"spec":{"ports":[{"port":80,"nodePort":30080}]}}"#;
        let mut np = json!({"kind":"Service","metadata":{"name":"w","annotations":{
            "kubectl.kubernetes.io/last-applied-configuration": applied}},
            "spec":{"type":"NodePort","clusterIP":"10.0.0.7","clusterIPs":["10.0.0.7"],
            "ports":[{"port":80,"nodePort":30080},{"port":443,"nodePort":31443}]}});
        strip(&mut np, StripOptions::default());
        assert_eq!(
            np["spec"],
            json!({"type":"NodePort","ports":[{"port":80,"nodePort":30080},{"port":443}]})
        );
    }

    #[test]
    fn pv_and_pvc_binding_state() {
        let mut pv = json!({"kind":"PersistentVolume","metadata":{"name":"pv1","annotations":{
            "pv.kubernetes.io/bound-by-controller":"yes","pv.kubernetes.io/provisioned-by":"csi"}},
            "spec":{"claimRef":{"kind":"PersistentVolumeClaim","namespace":"a","name":"c","uid":"x","resourceVersion":"9"}}});
        strip(&mut pv, StripOptions::default());
        assert_eq!(
            pv["spec"]["claimRef"],
            json!({"kind":"PersistentVolumeClaim","namespace":"a","name":"c"})
        );
        assert_eq!(
            pv["metadata"]["annotations"],
            json!({"pv.kubernetes.io/provisioned-by":"csi"})
        );
        let pvc = json!({"kind":"PersistentVolumeClaim","metadata":{"name":"c","annotations":{
            "pv.kubernetes.io/bind-completed":"yes"}},"spec":{"volumeName":"pv1"}});
        let mut a = pvc.clone();
        strip(&mut a, StripOptions::default());
        assert_eq!(
            a,
            json!({"kind":"PersistentVolumeClaim","metadata":{"name":"c"},"spec":{}})
        );
        let mut b = pvc;
        strip(
            &mut b,
            StripOptions {
                keep_volume_name: true,
            },
        );
        assert_eq!(b["spec"]["volumeName"], "pv1");
    }

    #[test]
    fn job_selector_generated_from_uid() {
        let mut job = json!({"kind":"Job","metadata":{"name":"j"},"spec":{"selector":{"matchLabels":{"controller-uid":"u"}},
            "template":{"metadata":{"labels":{"controller-uid":"u","job-name":"j"}}}}});
        strip(&mut job, StripOptions::default());
        assert_eq!(
            job["spec"],
            json!({"template":{"metadata":{"labels":{"job-name":"j"}}}})
        );
    }
}
