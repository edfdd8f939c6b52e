//! Changes made to backed-up objects on their way into the target cluster: namespace mapping
//! (with the references that name namespaces), storage class mapping, labels, annotations,
//! images, generic JSON patches selected by kind/name/label, and cloning (unique cluster-scoped
//! names, provenance labels). Pure: objects in, objects out.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::object::{ObjectKey, at_mut, labels, map_at_mut, pod_spec_path, str_at};
use crate::selector::LabelSelector;

/// Label naming the application backup a cloned object came from.
pub const PROVENANCE_BACKUP: &str = "cairn.io/cloned-from-backup";
/// Label naming the namespace a cloned object came from.
pub const PROVENANCE_NAMESPACE: &str = "cairn.io/cloned-from-namespace";

/// Which objects a rule applies to; every non-empty field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Match {
    /// Kinds (`Deployment`, `deployments`, `deployments.apps`), any if empty.
    pub kinds: Vec<String>,
    /// Object names, any if empty.
    pub names: Vec<String>,
    /// Namespaces (as backed up), any if empty.
    pub namespaces: Vec<String>,
    /// A label selector.
    pub label_selector: Option<String>,
}

impl Match {
    /// True if the object matches.
    ///
    /// # Errors
    /// `Invalid` for a malformed label selector.
    pub fn matches(&self, obj: &Value) -> Result<bool> {
        let Some(key) = ObjectKey::of(obj) else {
            return Ok(false);
        };
        let kind_ok = self.kinds.is_empty()
            || self
                .kinds
                .iter()
                .any(|k| kind_matches(k, &key.kind, None, key.group()));
        let name_ok = self.names.is_empty() || self.names.contains(&key.name);
        let ns_ok = self.namespaces.is_empty()
            || key
                .namespace
                .as_ref()
                .is_some_and(|n| self.namespaces.contains(n));
        let label_ok = match &self.label_selector {
            Some(s) => LabelSelector::parse(s)?.matches(&labels(obj)),
            None => true,
        };
        Ok(kind_ok && name_ok && ns_ok && label_ok)
    }
}

/// True if `pattern` names this kind: the kind, its plural, or either qualified by the group
/// (`Deployment`, `deployments`, `deployments.apps`, `Deployment.apps`), case-insensitively.
pub fn kind_matches(pattern: &str, kind: &str, plural: Option<&str>, group: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let kind = kind.to_ascii_lowercase();
    let mut names = vec![kind.clone(), format!("{kind}.{group}")];
    if let Some(pl) = plural {
        names.push(pl.to_ascii_lowercase());
        names.push(format!("{}.{group}", pl.to_ascii_lowercase()));
    } else {
        // Without discovery at hand, accept the regular English plural.
        let pl = if kind.ends_with('s') {
            format!("{kind}es")
        } else {
            format!("{kind}s")
        };
        names.push(format!("{pl}.{group}"));
        names.push(pl);
    }
    names.contains(&p)
}

/// A patch applied to the objects a [`Match`] selects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct PatchRule {
    /// Which objects.
    #[serde(rename = "match")]
    pub target: Match,
    /// An RFC 6902 JSON patch.
    pub json_patch: Option<json_patch::Patch>,
    /// An RFC 7386 JSON merge patch.
    pub merge_patch: Option<Value>,
}

/// Every transform of a restore. The default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct Transforms {
    /// Old namespace → new namespace.
    pub namespace_map: BTreeMap<String, String>,
    /// Old storage class → new storage class.
    pub storage_class_map: BTreeMap<String, String>,
    /// Image prefix → replacement (`docker.io/library/mysql:8.0` → `registry.local/mysql:8.0`,
    /// or a registry prefix `docker.io/` → `registry.local/`).
    pub image_map: BTreeMap<String, String>,
    /// Labels set on every restored object.
    pub add_labels: BTreeMap<String, String>,
    /// Labels removed from every restored object.
    pub remove_labels: Vec<String>,
    /// Annotations set on every restored object.
    pub add_annotations: BTreeMap<String, String>,
    /// Annotations removed from every restored object.
    pub remove_annotations: Vec<String>,
    /// Patches selected by kind/name/label.
    pub patches: Vec<PatchRule>,
    /// Clone: suffix making cluster-scoped names unique, and provenance labels.
    pub clone_suffix: Option<String>,
}

/// Kinds whose cluster-scoped objects are renamed by a clone (the rest are shared: CRDs,
/// storage classes, and namespaces, which the namespace map renames).
const CLONE_RENAMED: &[&str] = &["PersistentVolume", "ClusterRole", "ClusterRoleBinding"];

/// Applies the transforms to the objects of one restore.
///
/// # Errors
/// `Invalid` for a malformed selector or a JSON patch that does not apply (naming the object).
pub fn apply(objs: &mut [Value], t: &Transforms, backup: &str) -> Result<()> {
    let renamed = clone_renames(objs, t);
    for obj in objs.iter_mut() {
        let key = ObjectKey::of(obj);
        let selected: Vec<&PatchRule> = t
            .patches
            .iter()
            .filter_map(|p| p.target.matches(obj).map(|m| m.then_some(p)).transpose())
            .collect::<Result<_>>()?;
        let old_ns = key.as_ref().and_then(|k| k.namespace.clone());
        map_namespaces(obj, &t.namespace_map);
        map_storage_classes(obj, &t.storage_class_map);
        map_images(obj, &t.image_map);
        rename_cluster_refs(obj, &renamed);
        if let Some(m) = map_at_mut(obj, &["metadata", "labels"]) {
            for l in &t.remove_labels {
                m.remove(l);
            }
            for (k, v) in &t.add_labels {
                m.insert(k.clone(), Value::String(v.clone()));
            }
            if t.clone_suffix.is_some() {
                m.insert(PROVENANCE_BACKUP.into(), Value::String(label_value(backup)));
                if let Some(ns) = &old_ns {
                    m.insert(PROVENANCE_NAMESPACE.into(), Value::String(ns.clone()));
                }
            }
        }
        if let Some(m) = map_at_mut(obj, &["metadata", "annotations"]) {
            for a in &t.remove_annotations {
                m.remove(a);
            }
            for (k, v) in &t.add_annotations {
                m.insert(k.clone(), Value::String(v.clone()));
            }
        }
        for p in selected {
            let what = key
                .as_ref()
                .map_or_else(|| "object".to_owned(), ToString::to_string);
            if let Some(jp) = &p.json_patch {
                json_patch::patch(obj, jp)
                    .map_err(|e| Error::invalid(format!("JSON patch of {what}"), e.to_string()))?;
            }
            if let Some(mp) = &p.merge_patch {
                json_patch::merge(obj, mp);
            }
        }
        drop_empty_meta(obj);
    }
    Ok(())
}

/// A label value (at most 63 characters of `[A-Za-z0-9._-]`).
fn label_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect()
}

fn drop_empty_meta(obj: &mut Value) {
    if let Some(m) = at_mut(obj, &["metadata"]).and_then(Value::as_object_mut) {
        for f in ["labels", "annotations"] {
            if m.get(f)
                .and_then(Value::as_object)
                .is_some_and(serde_json::Map::is_empty)
            {
                m.remove(f);
            }
        }
    }
}

/// `(kind, old name) → new name` for the cluster-scoped objects a clone renames.
fn clone_renames(objs: &mut [Value], t: &Transforms) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let Some(suffix) = &t.clone_suffix else {
        return out;
    };
    for obj in objs.iter_mut() {
        let Some(key) = ObjectKey::of(obj) else {
            continue;
        };
        if key.namespace.is_none() && CLONE_RENAMED.contains(&key.kind.as_str()) {
            let new = format!("{}-{suffix}", key.name);
            if let Some(m) = map_at_mut(obj, &["metadata"]) {
                m.insert("name".into(), Value::String(new.clone()));
            }
            out.insert((key.kind, key.name), new);
        }
    }
    out
}

/// Points references at renamed cluster-scoped objects: PVCs' volumeName, (Cluster)RoleBindings'
/// roleRef to a ClusterRole.
fn rename_cluster_refs(obj: &mut Value, renamed: &BTreeMap<(String, String), String>) {
    if renamed.is_empty() {
        return;
    }
    let kind = str_at(obj, &["kind"]).unwrap_or_default().to_owned();
    let (path, target_kind): (&[&str], &str) = match kind.as_str() {
        "PersistentVolumeClaim" => (&["spec", "volumeName"], "PersistentVolume"),
        "RoleBinding" | "ClusterRoleBinding"
            if str_at(obj, &["roleRef", "kind"]) == Some("ClusterRole") =>
        {
            (&["roleRef", "name"], "ClusterRole")
        }
        _ => return,
    };
    if let Some(v) = at_mut(obj, path)
        && let Some(new) = v
            .as_str()
            .and_then(|n| renamed.get(&(target_kind.to_owned(), n.to_owned())))
    {
        *v = Value::String(new.clone());
    }
}

fn map_namespaces(obj: &mut Value, map: &BTreeMap<String, String>) {
    if map.is_empty() {
        return;
    }
    let remap = |v: &mut Value| {
        if let Some(new) = v.as_str().and_then(|s| map.get(s)) {
            *v = Value::String(new.clone());
        }
    };
    if let Some(v) = at_mut(obj, &["metadata", "namespace"]) {
        remap(v);
    }
    match str_at(obj, &["kind"]).unwrap_or_default() {
        "Namespace" => {
            if let Some(v) = at_mut(obj, &["metadata", "name"]) {
                remap(v);
            }
            // The name label the API server sets on namespaces follows the name.
            if let Some(v) = at_mut(obj, &["metadata", "labels", "kubernetes.io/metadata.name"]) {
                remap(v);
            }
        }
        "PersistentVolume" => {
            if let Some(v) = at_mut(obj, &["spec", "claimRef", "namespace"]) {
                remap(v);
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            if let Some(subjects) = at_mut(obj, &["subjects"]).and_then(Value::as_array_mut) {
                for s in subjects {
                    if s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                        && let Some(v) = s.get_mut("namespace")
                    {
                        remap(v);
                    }
                }
            }
        }
        _ => {}
    }
}

fn map_storage_classes(obj: &mut Value, map: &BTreeMap<String, String>) {
    if map.is_empty() {
        return;
    }
    let remap = |v: &mut Value| {
        if let Some(new) = v.as_str().and_then(|s| map.get(s)) {
            *v = Value::String(new.clone());
        }
    };
    match str_at(obj, &["kind"]).unwrap_or_default() {
        "PersistentVolumeClaim" | "PersistentVolume" => {
            if let Some(v) = at_mut(obj, &["spec", "storageClassName"]) {
                remap(v);
            }
        }
        "StatefulSet" => {
            if let Some(ts) =
                at_mut(obj, &["spec", "volumeClaimTemplates"]).and_then(Value::as_array_mut)
            {
                for t in ts {
                    if let Some(v) = at_mut(t, &["spec", "storageClassName"]) {
                        remap(v);
                    }
                }
            }
        }
        _ => {}
    }
}

fn map_images(obj: &mut Value, map: &BTreeMap<String, String>) {
    if map.is_empty() {
        return;
    }
    let kind = str_at(obj, &["kind"]).unwrap_or_default().to_owned();
    let Some(path) = pod_spec_path(&kind) else {
        return;
    };
    let Some(spec) = at_mut(obj, path) else {
        return;
    };
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs {
            let Some(img) = c.get_mut("image") else {
                continue;
            };
            let Some(cur) = img.as_str() else { continue };
            // The longest matching prefix wins, so an exact image beats a registry prefix.
            let best = map
                .iter()
                .filter(|(from, _)| cur.starts_with(from.as_str()))
                .max_by_key(|(from, _)| from.len());
            if let Some((from, to)) = best {
                *img = Value::String(format!("{to}{}", &cur[from.len()..]));
            }
        }
    }
}

/// The namespaces a set of objects lives in after the transforms.
pub fn namespaces_of(objs: &[Value]) -> BTreeSet<String> {
    objs.iter()
        .filter_map(|o| str_at(o, &["metadata", "namespace"]).map(str::to_owned))
        .collect()
}
