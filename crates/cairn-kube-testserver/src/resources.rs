//! The resource types the server knows: built-in groups and those CRDs add.
//!
//! A [`ResourceType`] is one row of a discovery document (group, version, plural, kind,
//! scope, verbs, subresources). Objects are stored per (group, plural), so every served
//! version of a resource sees the same objects, as with a CRD whose conversion strategy is
//! `None`.

/// Where the scale subresource finds the replica counts of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// Dotted path of the desired replicas, e.g. `.spec.replicas`.
    pub spec_replicas: String,
    /// Dotted path of the observed replicas, e.g. `.status.replicas`.
    pub status_replicas: String,
    /// Dotted path of the label selector (a string or a `LabelSelector` object).
    pub label_selector: Option<String>,
}

impl ScalePaths {
    /// The paths the built-in workloads use (`spec.replicas`, `status.replicas`,
    /// `spec.selector`).
    pub fn workload() -> Self {
        Self {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".spec.selector".into()),
        }
    }
}

/// One resource of one group version, as discovery lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural resource name used in URLs, e.g. `deployments`.
    pub plural: String,
    /// Singular name, e.g. `deployment`.
    pub singular: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Verbs listed in discovery.
    pub verbs: Vec<String>,
    /// Short names, e.g. `deploy`.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Whether the `status` subresource exists (then the main endpoint ignores status).
    pub status: bool,
    /// The `scale` subresource, when the resource has one.
    pub scale: Option<ScalePaths>,
    /// Other subresources listed in discovery only (e.g. `exec`, `log`).
    pub extra_subresources: Vec<String>,
    /// Added by a CustomResourceDefinition (objects keep `apiVersion`/`kind` in lists).
    pub custom: bool,
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceType {
    /// A resource with all verbs, no short names and no subresources.
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced,
            verbs: ALL_VERBS.iter().map(|v| (*v).to_string()).collect(),
            short_names: Vec::new(),
            categories: Vec::new(),
            status: false,
            scale: None,
            extra_subresources: Vec::new(),
            custom: false,
        }
    }

    /// Adds short names.
    #[must_use]
    pub fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| (*s).to_string()).collect();
        self
    }

    /// Adds the `status` subresource.
    #[must_use]
    pub fn with_status(mut self) -> Self {
        self.status = true;
        self
    }

    /// Adds the `scale` subresource with the workload paths.
    #[must_use]
    pub fn with_scale(mut self) -> Self {
        self.scale = Some(ScalePaths::workload());
        self
    }

    /// Adds the `all` category (what `kubectl get all` shows).
    #[must_use]
    pub fn in_all(mut self) -> Self {
        self.categories = vec!["all".into()];
        self
    }

    /// Lists extra subresources in discovery (served only where the server implements them).
    #[must_use]
    pub fn extra(mut self, subs: &[&str]) -> Self {
        self.extra_subresources = subs.iter().map(|s| (*s).to_string()).collect();
        self
    }

    /// Restricts the verbs.
    #[must_use]
    pub fn verbs(mut self, verbs: &[&str]) -> Self {
        self.verbs = verbs.iter().map(|s| (*s).to_string()).collect();
        self
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group`, or `plural` for the core group (how errors name a resource).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// The built-in resources a fresh server serves, group by group.
#[allow(clippy::too_many_lines, reason = "a table")]
pub fn builtin() -> Vec<ResourceType> {
    let r = ResourceType::new;
    vec![
        // core/v1
        r("", "v1", "namespaces", "Namespace", false)
            .short(&["ns"])
            .with_status()
            .verbs(&[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ]),
        r("", "v1", "pods", "Pod", true)
            .short(&["po"])
            .in_all()
            .with_status()
            .extra(&["exec", "log", "eviction", "attach", "portforward"]),
        r("", "v1", "services", "Service", true)
            .short(&["svc"])
            .in_all()
            .with_status()
            .verbs(&[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]),
        r("", "v1", "endpoints", "Endpoints", true).short(&["ep"]),
        r("", "v1", "configmaps", "ConfigMap", true).short(&["cm"]),
        r("", "v1", "secrets", "Secret", true),
        r("", "v1", "serviceaccounts", "ServiceAccount", true)
            .short(&["sa"])
            .extra(&["token"]),
        r(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
        )
        .short(&["pvc"])
        .with_status(),
        r("", "v1", "persistentvolumes", "PersistentVolume", false)
            .short(&["pv"])
            .with_status(),
        r("", "v1", "nodes", "Node", false)
            .short(&["no"])
            .with_status(),
        r("", "v1", "events", "Event", true).short(&["ev"]),
        r(
            "",
            "v1",
            "replicationcontrollers",
            "ReplicationController",
            true,
        )
        .short(&["rc"])
        .in_all()
        .with_status()
        .with_scale(),
        r("", "v1", "limitranges", "LimitRange", true).short(&["limits"]),
        r("", "v1", "resourcequotas", "ResourceQuota", true)
            .short(&["quota"])
            .with_status(),
        // apps/v1
        r("apps", "v1", "deployments", "Deployment", true)
            .short(&["deploy"])
            .in_all()
            .with_status()
            .with_scale(),
        r("apps", "v1", "statefulsets", "StatefulSet", true)
            .short(&["sts"])
            .in_all()
            .with_status()
            .with_scale(),
        r("apps", "v1", "daemonsets", "DaemonSet", true)
            .short(&["ds"])
            .in_all()
            .with_status(),
        r("apps", "v1", "replicasets", "ReplicaSet", true)
            .short(&["rs"])
            .in_all()
            .with_status()
            .with_scale(),
        r(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
        ),
        // batch/v1
        r("batch", "v1", "jobs", "Job", true).in_all().with_status(),
        r("batch", "v1", "cronjobs", "CronJob", true)
            .short(&["cj"])
            .in_all()
            .with_status(),
        // autoscaling/v2
        r(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
        )
        .short(&["hpa"])
        .in_all()
        .with_status(),
        // rbac.authorization.k8s.io/v1
        r("rbac.authorization.k8s.io", "v1", "roles", "Role", true),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
        ),
        r(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
        ),
        // storage.k8s.io/v1
        r(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            false,
        )
        .short(&["sc"]),
        r(
            "storage.k8s.io",
            "v1",
            "volumeattachments",
            "VolumeAttachment",
            false,
        )
        .with_status(),
        r("storage.k8s.io", "v1", "csidrivers", "CSIDriver", false),
        r("storage.k8s.io", "v1", "csinodes", "CSINode", false),
        // snapshot.storage.k8s.io/v1 (the external-snapshotter CRDs, installed on most clusters)
        r(
            "snapshot.storage.k8s.io",
            "v1",
            "volumesnapshots",
            "VolumeSnapshot",
            true,
        )
        .short(&["vs"])
        .with_status(),
        r(
            "snapshot.storage.k8s.io",
            "v1",
            "volumesnapshotcontents",
            "VolumeSnapshotContent",
            false,
        )
        .short(&["vsc", "vscs"])
        .with_status(),
        r(
            "snapshot.storage.k8s.io",
            "v1",
            "volumesnapshotclasses",
            "VolumeSnapshotClass",
            false,
        )
        .short(&["vsclass", "vsclasses"]),
        // groupsnapshot.storage.k8s.io/v1beta1
        r(
            "groupsnapshot.storage.k8s.io",
            "v1beta1",
            "volumegroupsnapshots",
            "VolumeGroupSnapshot",
            true,
        )
        .short(&["vgs"])
        .with_status(),
        r(
            "groupsnapshot.storage.k8s.io",
            "v1beta1",
            "volumegroupsnapshotcontents",
            "VolumeGroupSnapshotContent",
            false,
        )
        .short(&["vgsc", "vgscs"])
        .with_status(),
        r(
            "groupsnapshot.storage.k8s.io",
            "v1beta1",
            "volumegroupsnapshotclasses",
            "VolumeGroupSnapshotClass",
            false,
        )
        .short(&["vgsclass", "vgsclasses"]),
        // networking.k8s.io/v1
        r("networking.k8s.io", "v1", "ingresses", "Ingress", true)
            .short(&["ing"])
            .with_status(),
        r(
            "networking.k8s.io",
            "v1",
            "networkpolicies",
            "NetworkPolicy",
            true,
        )
        .short(&["netpol"]),
        r(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "IngressClass",
            false,
        ),
        // discovery.k8s.io/v1
        r(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            true,
        ),
        // apiextensions.k8s.io/v1
        r(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
        )
        .short(&["crd", "crds"])
        .with_status(),
        // policy/v1
        r(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
        )
        .short(&["pdb"])
        .with_status(),
        // coordination.k8s.io/v1
        r("coordination.k8s.io", "v1", "leases", "Lease", true),
        // scheduling.k8s.io/v1
        r(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "PriorityClass",
            false,
        )
        .short(&["pc"]),
    ]
}
