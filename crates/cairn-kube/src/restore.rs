//! Restoring an application backup's resources: the plan (filter → strip → transform → order,
//! pure) and its application to a cluster (CRDs first and established, existing-resource
//! policy, rollback deletions, workloads held at zero replicas until their data is restored).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::{Cluster, key_of};
use crate::document::AppBackup;
use crate::error::{Error, Result, is_conflict};
use crate::object::{ObjectKey, at, claim_names, labels, pod_spec_path, str_at};
use crate::order::{default_order, sort_for_restore};
use crate::selector::any_matches;
use crate::skip;
use crate::strip::{StripOptions, strip};
use crate::transform::{Match, Transforms};
use crate::wait::{self, WaitPolicy, condition};

/// Annotation recording the replicas a workload was created or scaled down from.
pub const REPLICAS_ANNOTATION: &str = "cairn.io/replicas";

/// What to do with an object that already exists in the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ExistingPolicy {
    /// Leave it as it is (and report it).
    #[default]
    Skip,
    /// Merge the backed-up object into it (JSON merge patch: fields the backup has win; fields
    /// only the live object has stay).
    Update,
    /// Delete it, wait until it is gone, create the backed-up one.
    Replace,
}

/// Options of a restore.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[allow(
    clippy::struct_excessive_bools,
    reason = "independent switches of the user, not a state machine"
)]
pub struct RestoreOptions {
    /// Transforms applied to every object.
    pub transforms: Transforms,
    /// Creation order (kinds; `*` for the rest; custom resources after everything).
    pub order: Vec<String>,
    /// Policy for objects that exist.
    pub existing: ExistingPolicy,
    /// Also delete selected objects that did not exist at backup time.
    pub rollback: bool,
    /// Partial restore: only these objects (matched as backed up).
    pub only: Option<Match>,
    /// Restore PersistentVolumes (and keep PVCs bound to them) instead of provisioning anew.
    pub restore_pvs: bool,
    /// Create scalable workloads with zero replicas (their PVCs are filled first); the
    /// replicas are recorded in [`REPLICAS_ANNOTATION`] and restored by [`release_workloads`].
    pub hold_workloads: bool,
    /// Refuse a restore whose objects need objects that exist neither in it nor in the cluster.
    pub check_dependencies: bool,
    /// Waiting for CRDs to be established and replaced objects to be gone.
    pub wait: WaitPolicy,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            transforms: Transforms::default(),
            order: default_order(),
            existing: ExistingPolicy::Skip,
            rollback: false,
            only: None,
            restore_pvs: false,
            hold_workloads: false,
            check_dependencies: true,
            wait: WaitPolicy::default(),
        }
    }
}

/// The objects a restore will create, ready and in order.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Plan {
    /// Stripped, transformed, in creation order.
    pub objects: Vec<Value>,
    /// Backed-up objects left out, with reasons.
    pub left_out: Vec<(ObjectKey, String)>,
}

/// Builds the plan of a restore without touching a cluster.
///
/// # Errors
/// `Invalid` for malformed selectors or patches.
pub fn plan(doc: &AppBackup, opts: &RestoreOptions) -> Result<Plan> {
    let mut out = Plan::default();
    let mut objs = Vec::new();
    for obj in &doc.resources {
        let key = key_of(obj)?;
        if let Some(m) = &opts.only
            && !m.matches(obj)?
        {
            continue;
        }
        if key.kind == "PersistentVolume" && key.group().is_empty() && !opts.restore_pvs {
            out.left_out.push((
                key,
                "provisioned anew for its claim (restore PVs to keep it)".into(),
            ));
            continue;
        }
        let mut o = obj.clone();
        strip(
            &mut o,
            StripOptions {
                keep_volume_name: opts.restore_pvs,
            },
        );
        objs.push(o);
    }
    crate::transform::apply(&mut objs, &opts.transforms, &doc.name)?;
    sort_for_restore(&mut objs, &opts.order, &|k| doc.is_custom(k));
    out.objects = objs;
    Ok(out)
}

/// What a restore did, object by object.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Created.
    pub created: Vec<ObjectKey>,
    /// Existed and were left alone.
    pub skipped_existing: Vec<ObjectKey>,
    /// Existed and were merged into.
    pub updated: Vec<ObjectKey>,
    /// Existed and were deleted and created again.
    pub replaced: Vec<ObjectKey>,
    /// Deleted by rollback: selected, but not in the backup.
    pub deleted: Vec<ObjectKey>,
    /// Held at zero replicas, with the replicas to restore.
    pub held: Vec<(ObjectKey, i64)>,
    /// Not in the plan, with reasons.
    pub left_out: Vec<(ObjectKey, String)>,
    /// Failed, with reasons.
    pub failed: Vec<(ObjectKey, String)>,
}

/// Restores a plan into a cluster.
///
/// Objects are created in plan order; after the CRDs, the restore waits until each is
/// established and runs discovery again so that their custom resources resolve. A failure of
/// one object is recorded and the restore goes on.
///
/// # Errors
/// `MissingDependencies` (when checked), `Timeout` for a CRD never established, `Kube` for
/// discovery.
pub async fn apply(
    cluster: &mut Cluster,
    doc: &AppBackup,
    plan: Plan,
    opts: &RestoreOptions,
) -> Result<RestoreReport> {
    let mut report = RestoreReport {
        left_out: plan.left_out.clone(),
        ..RestoreReport::default()
    };
    if opts.check_dependencies {
        let missing = missing_dependencies(cluster, &plan.objects).await?;
        if !missing.is_empty() {
            return Err(Error::MissingDependencies(missing));
        }
    }
    let mut crds_pending = false;
    for mut obj in plan.objects.clone() {
        let key = key_of(&obj)?;
        let is_crd = key.kind == "CustomResourceDefinition";
        if !is_crd && crds_pending {
            cluster.refresh().await?;
            crds_pending = false;
        }
        if opts.hold_workloads {
            hold(&mut obj, &key, &mut report);
        }
        match apply_one(cluster, &obj, &key, opts.existing, opts.wait).await {
            Ok(outcome) => {
                match outcome {
                    Outcome::Created => report.created.push(key.clone()),
                    Outcome::Skipped => report.skipped_existing.push(key.clone()),
                    Outcome::Updated => report.updated.push(key.clone()),
                    Outcome::Replaced => report.replaced.push(key.clone()),
                }
                if is_crd && outcome != Outcome::Skipped {
                    wait_established(cluster, &key, opts.wait).await?;
                    crds_pending = true;
                } else if is_crd {
                    crds_pending = true;
                }
            }
            Err(e) => {
                tracing::warn!(object = %key, error = %e, "restore of object failed");
                report.failed.push((key, cairn_repo::error_message(&e)));
            }
        }
    }
    if crds_pending {
        cluster.refresh().await?;
    }
    if opts.rollback {
        rollback(cluster, doc, &plan, opts, &mut report).await?;
    }
    Ok(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Created,
    Skipped,
    Updated,
    Replaced,
}

async fn apply_one(
    cluster: &Cluster,
    obj: &Value,
    key: &ObjectKey,
    policy: ExistingPolicy,
    wait: WaitPolicy,
) -> Result<Outcome> {
    match cluster.create(obj).await {
        Ok(_) => return Ok(Outcome::Created),
        Err(Error::Kube { source, .. }) if is_conflict(&source) => {}
        Err(e) => return Err(e),
    }
    match policy {
        ExistingPolicy::Skip => Ok(Outcome::Skipped),
        ExistingPolicy::Update => {
            cluster.merge_patch(key, obj).await?;
            Ok(Outcome::Updated)
        }
        ExistingPolicy::Replace => {
            cluster.delete(key).await?;
            wait::until(&format!("{key} to be deleted"), wait, || async {
                Ok(cluster.get(key).await?.is_none().then_some(()))
            })
            .await?;
            cluster.create(obj).await?;
            Ok(Outcome::Replaced)
        }
    }
}

async fn wait_established(cluster: &Cluster, key: &ObjectKey, policy: WaitPolicy) -> Result<()> {
    wait::until(&format!("{key} to be established"), policy, || async {
        let crd = cluster.get(key).await?;
        Ok(crd
            .filter(|c| condition(c, "Established") == Some("True"))
            .map(|_| ()))
    })
    .await
}

/// Sets a scalable workload's replicas to 0, recording the original in an annotation.
fn hold(obj: &mut Value, key: &ObjectKey, report: &mut RestoreReport) {
    if !matches!(
        key.kind.as_str(),
        "Deployment" | "StatefulSet" | "ReplicaSet"
    ) {
        return;
    }
    let replicas = at(obj, &["spec", "replicas"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if replicas == 0 {
        return;
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(0));
    }
    if let Some(m) = crate::object::map_at_mut(obj, &["metadata", "annotations"]) {
        m.insert(REPLICAS_ANNOTATION.into(), json!(replicas.to_string()));
    }
    report.held.push((key.clone(), replicas));
}

/// Scales held workloads back to their recorded replicas and drops the annotation.
///
/// # Errors
/// `Kube`; every workload is tried before the first error is returned.
pub async fn release_workloads(cluster: &Cluster, held: &[(ObjectKey, i64)]) -> Result<()> {
    let mut first = None;
    for (key, replicas) in held {
        let patch = json!({"metadata":{"annotations":{REPLICAS_ANNOTATION: null}},"spec":{"replicas":replicas}});
        if let Err(e) = cluster.merge_patch(key, &patch).await {
            tracing::error!(object = %key, error = %e, "scaling back failed");
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Objects the plan needs that exist neither in it nor in the cluster.
async fn missing_dependencies(cluster: &Cluster, objs: &[Value]) -> Result<Vec<String>> {
    let planned: BTreeSet<(String, Option<String>, String)> = objs
        .iter()
        .filter_map(ObjectKey::of)
        .map(|k| (k.kind, k.namespace, k.name))
        .collect();
    let crds_planned = objs
        .iter()
        .any(|o| str_at(o, &["kind"]) == Some("CustomResourceDefinition"));
    let mut needs: BTreeMap<ObjectKey, String> = BTreeMap::new();
    for obj in objs {
        let Some(key) = ObjectKey::of(obj) else {
            continue;
        };
        if cluster.resolve(&key.api_version, &key.kind).is_none() && !crds_planned {
            needs.insert(
                ObjectKey {
                    api_version: "apiextensions.k8s.io/v1".into(),
                    kind: "CustomResourceDefinition".into(),
                    namespace: None,
                    name: format!("(defining {}/{})", key.api_version, key.kind),
                },
                format!("needed by {key}"),
            );
        }
        for dep in references(obj, &key) {
            needs
                .entry(dep)
                .or_insert_with(|| format!("needed by {key}"));
        }
    }
    let mut missing = Vec::new();
    for (dep, why) in needs {
        if planned.contains(&(dep.kind.clone(), dep.namespace.clone(), dep.name.clone())) {
            continue;
        }
        if dep.name.starts_with("(defining") {
            missing.push(format!("{dep} {why}"));
            continue;
        }
        if cluster.get(&dep).await?.is_none() {
            missing.push(format!("{dep} {why}"));
        }
    }
    Ok(missing)
}

/// What an object refers to by name: its namespace, storage class, PVCs, config maps, secrets
/// and service account of its pod spec, the role of a binding.
fn references(obj: &Value, key: &ObjectKey) -> Vec<ObjectKey> {
    let mut out = Vec::new();
    let core = |kind: &str, ns: Option<&String>, name: &str| ObjectKey {
        api_version: "v1".into(),
        kind: kind.into(),
        namespace: ns.cloned(),
        name: name.into(),
    };
    let ns = key.namespace.as_ref();
    if let Some(n) = ns {
        out.push(core("Namespace", None, n));
    }
    if key.kind == "PersistentVolumeClaim"
        && let Some(sc) = str_at(obj, &["spec", "storageClassName"]).filter(|s| !s.is_empty())
    {
        out.push(ObjectKey {
            api_version: "storage.k8s.io/v1".into(),
            kind: "StorageClass".into(),
            namespace: None,
            name: sc.into(),
        });
    }
    if let Some(spec) = pod_spec_path(&key.kind).and_then(|p| at(obj, p)) {
        for c in claim_names(spec) {
            out.push(core("PersistentVolumeClaim", ns, &c));
        }
        if let Some(sa) = str_at(spec, &["serviceAccountName"]).filter(|s| *s != "default") {
            out.push(core("ServiceAccount", ns, sa));
        }
        for v in at(spec, &["volumes"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) =
                str_at(v, &["configMap", "name"]).filter(|_| !optional(v.get("configMap")))
            {
                out.push(core("ConfigMap", ns, n));
            }
            if let Some(n) =
                str_at(v, &["secret", "secretName"]).filter(|_| !optional(v.get("secret")))
            {
                out.push(core("Secret", ns, n));
            }
        }
        let containers = ["containers", "initContainers"]
            .iter()
            .filter_map(|l| spec.get(*l).and_then(Value::as_array))
            .flatten();
        for c in containers {
            for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                if let Some(r) =
                    at(e, &["valueFrom", "secretKeyRef"]).filter(|r| !optional(Some(r)))
                {
                    out.extend(str_at(r, &["name"]).map(|n| core("Secret", ns, n)));
                }
                if let Some(r) =
                    at(e, &["valueFrom", "configMapKeyRef"]).filter(|r| !optional(Some(r)))
                {
                    out.extend(str_at(r, &["name"]).map(|n| core("ConfigMap", ns, n)));
                }
            }
            for e in c
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(r) = e.get("secretRef").filter(|r| !optional(Some(r))) {
                    out.extend(str_at(r, &["name"]).map(|n| core("Secret", ns, n)));
                }
                if let Some(r) = e.get("configMapRef").filter(|r| !optional(Some(r))) {
                    out.extend(str_at(r, &["name"]).map(|n| core("ConfigMap", ns, n)));
                }
            }
        }
    }
    if matches!(key.kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
        && let (Some(kind), Some(name)) = (
            str_at(obj, &["roleRef", "kind"]),
            str_at(obj, &["roleRef", "name"]),
        )
    {
        let role_ns = if kind == "Role" { ns.cloned() } else { None };
        out.push(ObjectKey {
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: kind.into(),
            namespace: role_ns,
            name: name.into(),
        });
    }
    out
}

fn optional(v: Option<&Value>) -> bool {
    v.and_then(|v| v.get("optional")).and_then(Value::as_bool) == Some(true)
}

/// Deletes objects of the backup's selection that are in the target but not in the backup.
async fn rollback(
    cluster: &Cluster,
    doc: &AppBackup,
    plan: &Plan,
    opts: &RestoreOptions,
    report: &mut RestoreReport,
) -> Result<()> {
    let selectors = doc.selection.parsed_selectors()?;
    let keep: BTreeSet<(String, String, Option<String>, String)> = plan
        .objects
        .iter()
        .filter_map(ObjectKey::of)
        .map(|k| {
            (
                k.group().to_owned(),
                k.kind.clone(),
                k.namespace.clone(),
                k.name.clone(),
            )
        })
        .collect();
    let namespaces = crate::transform::namespaces_of(&plan.objects);
    let reverse_ns: BTreeMap<&String, &String> = opts
        .transforms
        .namespace_map
        .iter()
        .map(|(a, b)| (b, a))
        .collect();
    for (ar, caps) in cluster.listable() {
        if caps.scope != kube::discovery::Scope::Namespaced
            || !doc.selection.kind_selected(&ar.kind, &ar.plural, &ar.group)
            || skip::type_reason(&ar.group, &ar.kind).is_some()
        {
            continue;
        }
        for ns in &namespaces {
            for obj in cluster.list(&ar, Some(ns)).await? {
                let Some(k) = ObjectKey::of(&obj) else {
                    continue;
                };
                if keep.contains(&(
                    k.group().to_owned(),
                    k.kind.clone(),
                    k.namespace.clone(),
                    k.name.clone(),
                )) || !any_matches(&selectors, &labels(&obj))
                    || skip::object_reason(&obj, &BTreeSet::new()).is_some()
                    || is_cluster_made(&k)
                {
                    continue;
                }
                // A partial restore rolls back only what it restores.
                if let Some(m) = &opts.only {
                    let mut as_backed_up = obj.clone();
                    if let Some(old) = reverse_ns.get(ns)
                        && let Some(v) =
                            crate::object::at_mut(&mut as_backed_up, &["metadata", "namespace"])
                    {
                        *v = Value::String((*old).clone());
                    }
                    if !m.matches(&as_backed_up)? {
                        continue;
                    }
                }
                if cluster.delete(&k).await? {
                    report.deleted.push(k);
                }
            }
        }
    }
    Ok(())
}

/// Objects the cluster creates in every namespace; never deleted by a rollback.
fn is_cluster_made(k: &ObjectKey) -> bool {
    (k.kind == "ServiceAccount" && k.name == "default")
        || (k.kind == "ConfigMap" && k.name == "kube-root-ca.crt")
}
