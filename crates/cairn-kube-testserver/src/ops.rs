//! The verbs on the store: create, get, list, update, patch, delete, deletecollection and
//! the scale subresource, with the real server's metadata rules and error statuses.

use serde_json::{Value, json};

use crate::crd;
use crate::error::ApiError;
use crate::object::{
    get_path, meta_str, metadata_mut, name_suffix, now, parse_rv, set_meta, set_path, spec_part,
    uid,
};
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{EventKind, State};

/// Which endpoint of an object a write goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sub {
    /// The object itself (status ignored when the status subresource exists).
    Main,
    /// `/status`: only status changes.
    Status,
}

/// A patch body by content type.
#[derive(Clone, Debug)]
pub(crate) enum PatchBody {
    /// `application/merge-patch+json`, and `application/strategic-merge-patch+json`
    /// (treated as a merge patch: lists are replaced, not merged by key).
    Merge(Value),
    /// `application/json-patch+json` (RFC 6902).
    Json(Value),
    /// `application/apply-patch+yaml` (server-side apply, treated as a merge patch that
    /// creates the object when missing; no field ownership).
    Apply(Value),
}

/// Options of a list or deletecollection.
#[derive(Clone, Debug, Default)]
pub(crate) struct ListOptions {
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) limit: Option<usize>,
    pub(crate) continue_token: Option<String>,
}

/// The object as `rt` serves it: `apiVersion` and `kind` of the requested version.
pub(crate) fn stamped(rt: &ResourceType, mut object: Value) -> Value {
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), json!(rt.api_version()));
        map.insert("kind".into(), json!(rt.kind));
    }
    object
}

fn check_type(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if let Some(v) = body.get("apiVersion").and_then(Value::as_str)
        && v != rt.api_version()
        && !(rt.custom && v.split('/').next() == Some(rt.group.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if let Some(k) = body.get("kind").and_then(Value::as_str)
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

fn check_namespace(rt: &ResourceType, ns: &str, body: &mut Value) -> Result<(), ApiError> {
    let given = meta_str(body, "namespace").to_string();
    if rt.namespaced {
        if !given.is_empty() && given != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        set_meta(body, "namespace", json!(ns));
    } else {
        set_meta(body, "namespace", Value::Null);
    }
    Ok(())
}

/// Defaults a few built-ins get on create (what their strategies or controllers set at once).
fn defaults_on_create(rt: &ResourceType, object: &mut Value) {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => {
            let name = meta_str(object, "name").to_string();
            let labels = metadata_mut(object)
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Value::Object(l) = labels {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            object["status"] = json!({ "phase": "Active" });
        }
        ("", "pods" | "persistentvolumeclaims" | "persistentvolumes") => {
            object["status"] = json!({ "phase": "Pending" });
        }
        _ => {}
    }
}

/// Creates an object.
///
/// # Errors
/// 400 on a body of the wrong type or namespace, 404 when the namespace is missing, 409
/// when the name is taken, 422 without a name, 500 when `resourceVersion` is set.
pub(crate) fn create(
    state: &mut State,
    rt: &ResourceType,
    ns: Option<&str>,
    mut body: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    check_type(rt, &body)?;
    let ns = ns.unwrap_or_default();
    if rt.namespaced && ns.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} is namespaced: create it in a namespace",
            rt.qualified()
        )));
    }
    check_namespace(rt, ns, &mut body)?;
    if !meta_str(&body, "resourceVersion").is_empty() {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut name = meta_str(&body, "name").to_string();
    if name.is_empty() {
        let prefix = meta_str(&body, "generateName").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &rt.group,
                &rt.plural,
                "",
                format!(
                    "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                    rt.kind
                ),
            ));
        }
        name = format!("{prefix}{}", name_suffix());
        while state.lookup(rt, ns, &name).is_some() {
            name = format!("{prefix}{}", name_suffix());
        }
        set_meta(&mut body, "name", json!(name));
    }
    if rt.namespaced && !state.namespace_exists(ns) {
        return Err(ApiError::not_found("", "namespaces", ns));
    }
    if state.lookup(rt, ns, &name).is_some() {
        return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
    }
    set_meta(&mut body, "uid", json!(uid()));
    set_meta(&mut body, "creationTimestamp", json!(now()));
    set_meta(&mut body, "deletionTimestamp", Value::Null);
    set_meta(&mut body, "deletionGracePeriodSeconds", Value::Null);
    if body.get("spec").is_some() || rt.custom {
        set_meta(&mut body, "generation", json!(1));
    }
    if rt.status
        && let Value::Object(map) = &mut body
    {
        map.remove("status");
    }
    defaults_on_create(rt, &mut body);
    let body = stamped(rt, body);
    let body = if crd::is_crd(rt) {
        let mut body = body;
        let added = crd::resources_of(&body)?;
        body["status"] = crd::status_of(&body);
        if !dry_run {
            register_crd(state, &body, added);
        }
        body
    } else {
        body
    };
    if dry_run {
        return Ok(body);
    }
    Ok(state.commit(rt, EventKind::Added, body))
}

fn register_crd(state: &mut State, crd: &Value, added: Vec<ResourceType>) {
    let group = crd.pointer("/spec/group").and_then(Value::as_str);
    let plural = crd.pointer("/spec/names/plural").and_then(Value::as_str);
    state.resources.retain(|r| {
        !(r.custom && Some(r.group.as_str()) == group && Some(r.plural.as_str()) == plural)
    });
    state.resources.extend(added);
}

fn unregister_crd(state: &mut State, crd: &Value) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(rt) = state
        .resources
        .iter()
        .find(|r| r.custom && r.group == group && r.plural == plural)
        .cloned()
    else {
        return;
    };
    let objects: Vec<Value> = state
        .bucket(&rt)
        .map(|b| b.values().cloned().collect())
        .unwrap_or_default();
    for object in objects {
        state.commit(&rt, EventKind::Deleted, object);
    }
    state.objects.remove(&(group.clone(), plural.clone()));
    state
        .resources
        .retain(|r| !(r.custom && r.group == group && r.plural == plural));
}

/// Reads an object.
///
/// # Errors
/// 404 when it does not exist.
pub(crate) fn get(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> Result<Value, ApiError> {
    state
        .lookup(rt, ns, name)
        .cloned()
        .map(|o| stamped(rt, o))
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
}

/// Lists objects in `ns` (all namespaces when `None`), sorted by namespace and name.
///
/// # Errors
/// 400 on a malformed continue token.
pub(crate) fn list(
    state: &State,
    rt: &ResourceType,
    ns: Option<&str>,
    opts: &ListOptions,
) -> Result<Value, ApiError> {
    let start = match &opts.continue_token {
        Some(token) => Some(
            token
                .split_once('/')
                .map(|(n, m)| (n.to_string(), m.to_string()))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("invalid continue token {token:?}"))
                })?,
        ),
        None => None,
    };
    let matching: Vec<(&(String, String), &Value)> = state
        .bucket(rt)
        .into_iter()
        .flat_map(|b| b.iter())
        .filter(|(key, _)| ns.is_none_or(|n| key.0 == n))
        .filter(|(key, _)| start.as_ref().is_none_or(|s| *key > s))
        .filter(|(_, o)| opts.labels.matches(o) && opts.fields.matches(o))
        .collect();
    let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let mut metadata = json!({ "resourceVersion": state.rv.to_string() });
    if matching.len() > limit {
        let ((last_ns, last_name), _) = matching[limit - 1];
        metadata["continue"] = json!(format!("{last_ns}/{last_name}"));
        metadata["remainingItemCount"] = json!(matching.len() - limit);
    }
    let items: Vec<Value> = matching
        .into_iter()
        .take(limit)
        .map(|(_, o)| {
            let mut o = o.clone();
            // A real server leaves apiVersion/kind out of built-in list items.
            if !rt.custom
                && let Value::Object(map) = &mut o
            {
                map.remove("apiVersion");
                map.remove("kind");
            } else {
                o = stamped(rt, o);
            }
            o
        })
        .collect();
    Ok(json!({
        "apiVersion": rt.api_version(),
        "kind": format!("{}List", rt.kind),
        "metadata": metadata,
        "items": items,
    }))
}

/// Checks `metadata.resourceVersion` of `body` against the stored object.
fn check_rv(rt: &ResourceType, old: &Value, body: &Value) -> Result<(), ApiError> {
    let given = meta_str(body, "resourceVersion");
    if !given.is_empty() && given != meta_str(old, "resourceVersion") {
        return Err(ApiError::stale(
            &rt.group,
            &rt.plural,
            meta_str(old, "name"),
        ));
    }
    Ok(())
}

/// Builds the new object of an update from the old one and the client's body.
fn merge_update(rt: &ResourceType, old: &Value, body: Value, sub: Sub) -> Value {
    let mut new = match sub {
        Sub::Main => {
            let mut new = body;
            if rt.status
                && let Value::Object(map) = &mut new
            {
                match old.get("status") {
                    Some(s) => map.insert("status".into(), s.clone()),
                    None => map.remove("status"),
                };
            }
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                let value = old
                    .get("metadata")
                    .and_then(|m| m.get(field))
                    .cloned()
                    .unwrap_or(Value::Null);
                set_meta(&mut new, field, value);
            }
            new
        }
        Sub::Status => {
            let mut new = old.clone();
            match body.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Value::Object(map) = &mut new {
                        map.remove("status");
                    }
                }
            }
            new
        }
    };
    if let Some(generation) = old.pointer("/metadata/generation").and_then(Value::as_i64)
        && spec_part(&new) != spec_part(old)
    {
        set_meta(&mut new, "generation", json!(generation + 1));
    }
    set_meta(
        &mut new,
        "resourceVersion",
        json!(meta_str(old, "resourceVersion")),
    );
    stamped(rt, new)
}

/// Commits an update: no-op when nothing changed, deletion when the last finalizer of a
/// deleted object went away.
fn finish_update(
    state: &mut State,
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    if new == stamped(rt, old.clone()) {
        return Ok(new);
    }
    if crd::is_crd(rt) {
        let added = crd::resources_of(&new)?;
        new["status"] = crd::status_of(&new);
        if !dry_run {
            register_crd(state, &new, added);
        }
    }
    if dry_run {
        return Ok(new);
    }
    let finalized = !meta_str(&new, "deletionTimestamp").is_empty()
        && new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
    if finalized {
        return Ok(remove(state, rt, new, true));
    }
    Ok(state.commit(rt, EventKind::Modified, new))
}

/// Replaces an object (PUT), or its status.
///
/// # Errors
/// 404 when missing, 400 when the name or namespace differ from the URL, 409 on a stale
/// `resourceVersion`.
pub(crate) fn replace(
    state: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    mut body: Value,
    sub: Sub,
    dry_run: bool,
) -> Result<Value, ApiError> {
    check_type(rt, &body)?;
    let old = state
        .lookup(rt, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
    let given = meta_str(&body, "name");
    if !given.is_empty() && given != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        )));
    }
    check_namespace(rt, ns, &mut body)?;
    check_rv(rt, &old, &body)?;
    let new = merge_update(rt, &old, body, sub);
    finish_update(state, rt, &old, new, dry_run)
}

fn apply_patch(mut doc: Value, patch: &PatchBody) -> Result<Value, ApiError> {
    match patch {
        PatchBody::Merge(p) | PatchBody::Apply(p) => {
            json_patch::merge(&mut doc, p);
            Ok(doc)
        }
        PatchBody::Json(p) => {
            let ops: json_patch::Patch = serde_json::from_value(p.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::invalid(
                    "",
                    "",
                    "",
                    format!("the JSON patch could not be applied: {e}"),
                )
            })?;
            Ok(doc)
        }
    }
}

/// Patches an object or its status; an apply patch creates a missing object.
///
/// # Errors
/// 404 when missing (except apply), 400/422 on a bad patch, 409 when the patch carries a
/// stale `resourceVersion`.
pub(crate) fn patch(
    state: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    patch: &PatchBody,
    sub: Sub,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let Some(old) = state.lookup(rt, ns, name).cloned() else {
        if let PatchBody::Apply(body) = patch
            && sub == Sub::Main
        {
            let mut body = body.clone();
            set_meta(&mut body, "name", json!(name));
            return create(state, rt, Some(ns).filter(|n| !n.is_empty()), body, dry_run);
        }
        return Err(ApiError::not_found(&rt.group, &rt.plural, name));
    };
    let patched = apply_patch(stamped(rt, old.clone()), patch)?;
    check_type(rt, &patched)?;
    if meta_str(&patched, "name") != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta_str(&patched, "name")
        )));
    }
    check_rv(rt, &old, &patched)?;
    let new = merge_update(rt, &old, patched, sub);
    finish_update(state, rt, &old, new, dry_run)
}

/// Deletes an object: marks it when finalizers remain, removes it (cascading to owned
/// objects unless `propagationPolicy` is `Orphan`) otherwise.
///
/// # Errors
/// 404 when missing, 409 when a precondition (uid, resourceVersion) fails.
pub(crate) fn delete(
    state: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    options: &Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let old = state
        .lookup(rt, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
    for (field, what) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        if let Some(want) = options
            .pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
            && want != meta_str(&old, field)
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: {what} in precondition: {want}, {what} in object meta: {}",
                    meta_str(&old, field)
                ),
            ));
        }
    }
    if dry_run {
        return Ok(stamped(rt, old));
    }
    let has_finalizers = old
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        if !meta_str(&old, "deletionTimestamp").is_empty() {
            return Ok(stamped(rt, old));
        }
        let mut marked = old;
        set_meta(&mut marked, "deletionTimestamp", json!(now()));
        set_meta(&mut marked, "deletionGracePeriodSeconds", json!(0));
        return Ok(stamped(rt, state.commit(rt, EventKind::Modified, marked)));
    }
    let cascade = options.get("propagationPolicy").and_then(Value::as_str) != Some("Orphan")
        && options.get("orphanDependents").and_then(Value::as_bool) != Some(true);
    Ok(stamped(rt, remove(state, rt, old, cascade)))
}

/// Removes an object now, with its side effects: a namespace takes its objects along, a CRD
/// its resources and custom objects, and (with `cascade`) owned objects follow their owner.
fn remove(state: &mut State, rt: &ResourceType, object: Value, cascade: bool) -> Value {
    let removed = state.commit(rt, EventKind::Deleted, object);
    if rt.group.is_empty() && rt.plural == "namespaces" {
        let ns = meta_str(&removed, "name").to_string();
        let inside: Vec<(ResourceType, String)> = state
            .resources
            .iter()
            .filter(|r| r.namespaced)
            .filter_map(|r| {
                let bucket = state.bucket(r)?;
                Some(
                    bucket
                        .keys()
                        .filter(|(n, _)| *n == ns)
                        .map(|(_, name)| (r.clone(), name.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .flatten()
            .collect();
        for (r, name) in inside {
            if let Some(o) = state.lookup(&r, &ns, &name).cloned() {
                remove(state, &r, o, false);
            }
        }
    }
    if crd::is_crd(rt) {
        unregister_crd(state, &removed);
    }
    if cascade {
        let owner = meta_str(&removed, "uid").to_string();
        let dependents: Vec<(ResourceType, String, String)> = state
            .objects
            .iter()
            .flat_map(|((group, plural), bucket)| {
                let owner = owner.as_str();
                bucket.iter().filter_map(move |((ns, name), o)| {
                    let is_dependent = o
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| {
                            refs.iter()
                                .any(|r| r.get("uid").and_then(Value::as_str) == Some(owner))
                        });
                    is_dependent.then(|| (group.clone(), plural.clone(), ns.clone(), name.clone()))
                })
            })
            .filter_map(|(group, plural, ns, name)| {
                state
                    .resource_any_version(&group, &plural)
                    .map(|r| (r.clone(), ns, name))
            })
            .collect();
        for (r, ns, name) in dependents {
            // A dependent deleted meanwhile (by an earlier cascade) is not an error.
            let _ = delete(state, &r, &ns, &name, &Value::Null, false);
        }
    }
    removed
}

/// Deletes every object of `rt` in `ns` that matches the selectors; returns them as a list.
///
/// # Errors
/// As [`delete`] for each object.
pub(crate) fn delete_collection(
    state: &mut State,
    rt: &ResourceType,
    ns: Option<&str>,
    opts: &ListOptions,
    options: &Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let targets: Vec<(String, String)> = state
        .bucket(rt)
        .into_iter()
        .flat_map(|b| b.iter())
        .filter(|((n, _), o)| {
            ns.is_none_or(|ns| n == ns) && opts.labels.matches(o) && opts.fields.matches(o)
        })
        .map(|(k, _)| k.clone())
        .collect();
    let mut items = Vec::new();
    for (n, name) in targets {
        items.push(delete(state, rt, &n, &name, options, dry_run)?);
    }
    Ok(json!({
        "apiVersion": rt.api_version(),
        "kind": format!("{}List", rt.kind),
        "metadata": { "resourceVersion": state.rv.to_string() },
        "items": items,
    }))
}

/// The `autoscaling/v1` Scale of an object.
///
/// # Errors
/// 404 when the object or the scale subresource is missing.
pub(crate) fn get_scale(
    state: &State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let object = get(state, rt, ns, name)?;
    scale_of(rt, &object)
}

fn scale_of(rt: &ResourceType, object: &Value) -> Result<Value, ApiError> {
    let paths = rt
        .scale
        .as_ref()
        .ok_or_else(|| ApiError::no_route(&format!("{}/scale", rt.qualified())))?;
    let replicas = get_path(object, &paths.spec_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let observed = get_path(object, &paths.status_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = paths
        .label_selector
        .as_deref()
        .and_then(|p| get_path(object, p))
        .map(|s| match s {
            Value::String(s) => s.clone(),
            other => LabelSelector::string_of(other),
        })
        .unwrap_or_default();
    let meta = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
    Ok(json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": { "replicas": replicas },
        "status": { "replicas": observed, "selector": selector },
    }))
}

/// Writes the scale subresource: a new Scale (PUT) or a patch of the current one.
///
/// # Errors
/// 404 when missing, 409 on a stale `resourceVersion`, 422 when replicas is not a
/// non-negative integer.
pub(crate) fn update_scale(
    state: &mut State,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    input: Result<Value, &PatchBody>,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let old = state
        .lookup(rt, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
    let current = scale_of(rt, &old)?;
    let scale = match input {
        Ok(body) => body,
        Err(patch) => apply_patch(current, patch)?,
    };
    check_rv(rt, &old, &scale)?;
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "autoscaling",
                "scale",
                name,
                format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: must be a non-negative integer"),
            )
        })?;
    let mut body = old.clone();
    let Some(paths) = rt.scale.as_ref() else {
        return Err(ApiError::no_route(&format!("{}/scale", rt.qualified())));
    };
    set_path(&mut body, &paths.spec_replicas, json!(replicas));
    let new = merge_update(rt, &old, body, Sub::Main);
    let updated = finish_update(state, rt, &old, new, dry_run)?;
    scale_of(rt, &updated)
}

/// Current resourceVersion of the store, for list responses and watches.
pub(crate) fn current_rv(state: &State) -> u64 {
    state.rv
}

/// Parses a client `resourceVersion` parameter (`""` and `"0"` mean "any").
pub(crate) fn since(text: Option<&str>) -> Option<u64> {
    text.and_then(parse_rv).filter(|rv| *rv > 0)
}
