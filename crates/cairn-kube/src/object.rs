//! Resources as JSON values: their identity (apiVersion, kind, namespace, name) and the few
//! field accessors every other module needs. Objects stay unstructured so that any kind from
//! discovery, custom resources included, goes through the same code.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The identity of an object: what `kubectl get KIND -n NS NAME` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectKey {
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    /// The kind, e.g. `Deployment`.
    pub kind: String,
    /// The namespace; `None` for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The key of an object, if it has `apiVersion`, `kind` and `metadata.name`.
    pub fn of(obj: &Value) -> Option<Self> {
        Some(Self {
            api_version: obj.get("apiVersion")?.as_str()?.to_owned(),
            kind: obj.get("kind")?.as_str()?.to_owned(),
            namespace: str_at(obj, &["metadata", "namespace"])
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            name: str_at(obj, &["metadata", "name"])?.to_owned(),
        })
    }

    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        group_of(&self.api_version)
    }

    /// The same object ignoring its version (objects are the same across API versions).
    pub fn group_kind_ns_name(&self) -> (&str, &str, Option<&str>, &str) {
        (
            self.group(),
            &self.kind,
            self.namespace.as_deref(),
            &self.name,
        )
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.group();
        let kind = if g.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{g}", self.kind)
        };
        match &self.namespace {
            Some(ns) => write!(f, "{kind} {ns}/{}", self.name),
            None => write!(f, "{kind} {}", self.name),
        }
    }
}

/// The group of an `apiVersion` (`""` for `v1`).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The string at a path of object keys.
pub fn str_at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(obj, path)?.as_str()
}

/// The value at a path of object keys.
pub fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(*k))
}

/// The value at a path, mutable.
pub fn at_mut<'a>(obj: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(obj, |v, k| v.get_mut(*k))
}

/// Removes the field at a path; returns whether it existed.
pub fn remove_at(obj: &mut Value, path: &[&str]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    at_mut(obj, parent)
        .and_then(Value::as_object_mut)
        .is_some_and(|m| m.remove(*last).is_some())
}

/// The object map at a path, created (with intermediate maps) if missing; `None` if a
/// non-object value is in the way.
pub fn map_at_mut<'a>(obj: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut cur = obj;
    for k in path {
        let m = cur.as_object_mut()?;
        cur = m
            .entry((*k).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    cur.as_object_mut()
}

/// The object's labels.
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "labels")
}

/// The object's annotations.
pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "annotations")
}

fn string_map(obj: &Value, field: &str) -> BTreeMap<String, String> {
    at(obj, &["metadata", field])
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The kind and name of the object's controller (the owner reference with `controller: true`).
pub fn controller_owner(obj: &Value) -> Option<(&str, &str)> {
    at(obj, &["metadata", "ownerReferences"])?
        .as_array()?
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|o| Some((o.get("kind")?.as_str()?, o.get("name")?.as_str()?)))
}

/// The pod spec of a pod or of a workload's pod template (Deployment, StatefulSet, DaemonSet,
/// ReplicaSet, ReplicationController, Job, CronJob).
pub fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some(&["spec", "template", "spec"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        _ => None,
    }
}

/// The names of the PVCs a pod spec mounts.
pub fn claim_names(pod_spec: &Value) -> Vec<String> {
    pod_spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| str_at(v, &["persistentVolumeClaim", "claimName"]))
        .map(str::to_owned)
        .collect()
}
