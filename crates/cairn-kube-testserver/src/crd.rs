//! CustomResourceDefinitions: the resources a CRD adds and the status the server gives it.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::object::{meta_str, now};
use crate::resources::{ResourceType, ScalePaths};

/// The CRD resource itself.
pub(crate) const GROUP: &str = "apiextensions.k8s.io";
/// Plural of the CRD resource.
pub(crate) const PLURAL: &str = "customresourcedefinitions";

pub(crate) fn is_crd(rt: &ResourceType) -> bool {
    rt.group == GROUP && rt.plural == PLURAL
}

fn invalid(crd: &Value, message: &str) -> ApiError {
    ApiError::invalid(
        GROUP,
        PLURAL,
        meta_str(crd, "name"),
        format!(
            "CustomResourceDefinition.apiextensions.k8s.io \"{}\" is invalid: {message}",
            meta_str(crd, "name")
        ),
    )
}

fn strs(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The resources (one per served version) `crd` defines.
///
/// # Errors
/// 422 Invalid when the spec lacks group, names or versions, or the name is not
/// `<plural>.<group>`.
pub(crate) fn resources_of(crd: &Value) -> Result<Vec<ResourceType>, ApiError> {
    let spec = crd
        .get("spec")
        .ok_or_else(|| invalid(crd, "spec: Required value"))?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .filter(|g| !g.is_empty())
        .ok_or_else(|| invalid(crd, "spec.group: Required value"))?;
    let names = spec
        .get("names")
        .ok_or_else(|| invalid(crd, "spec.names: Required value"))?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid(crd, "spec.names.plural: Required value"))?;
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| invalid(crd, "spec.names.kind: Required value"))?;
    if meta_str(crd, "name") != format!("{plural}.{group}") {
        return Err(invalid(
            crd,
            &format!(
                "metadata.name: Invalid value: must be spec.names.plural+\".\"+spec.group ({plural}.{group})"
            ),
        ));
    }
    let singular = names
        .get("singular")
        .and_then(Value::as_str)
        .map_or_else(|| kind.to_ascii_lowercase(), str::to_string);
    let namespaced = match spec.get("scope").and_then(Value::as_str) {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err(invalid(crd, "spec.scope: Unsupported value")),
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid(crd, "spec.versions: Required value"))?;
    let mut out = Vec::new();
    for v in versions {
        let Some(version) = v.get("name").and_then(Value::as_str) else {
            return Err(invalid(crd, "spec.versions[].name: Required value"));
        };
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let subs = v.get("subresources");
        let mut rt = ResourceType::new(group, version, plural, kind, namespaced);
        rt.singular.clone_from(&singular);
        rt.short_names = strs(names.get("shortNames"));
        rt.categories = strs(names.get("categories"));
        rt.status = subs.and_then(|s| s.get("status")).is_some();
        rt.scale = subs.and_then(|s| s.get("scale")).map(|s| ScalePaths {
            spec_replicas: s
                .get("specReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".spec.replicas")
                .to_string(),
            status_replicas: s
                .get("statusReplicasPath")
                .and_then(Value::as_str)
                .unwrap_or(".status.replicas")
                .to_string(),
            label_selector: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
        rt.custom = true;
        out.push(rt);
    }
    Ok(out)
}

/// The status a CRD gets once its names are accepted: Established and NamesAccepted true.
pub(crate) fn status_of(crd: &Value) -> Value {
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let mut accepted = spec.get("names").cloned().unwrap_or_else(|| json!({}));
    if accepted.get("singular").is_none()
        && let Some(kind) = accepted.get("kind").and_then(Value::as_str)
    {
        accepted["singular"] = json!(kind.to_ascii_lowercase());
    }
    if accepted.get("listKind").is_none()
        && let Some(kind) = accepted.get("kind").and_then(Value::as_str)
    {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let stored: Vec<Value> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let time = now();
    let condition = |kind: &str, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": "True",
            "lastTransitionTime": time,
            "reason": reason,
            "message": message,
        })
    };
    json!({
        "acceptedNames": accepted,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    })
}
