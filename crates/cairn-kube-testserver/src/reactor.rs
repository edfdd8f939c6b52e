//! Reactors: test-supplied functions that play the part of controllers.
//!
//! After every committed write the server calls each reactor with the [`Change`]; the
//! [`Action`]s it returns are applied at once, in the same critical section, so by the time
//! the client's request returns, the "controller" has already reacted (a VolumeSnapshot is
//! ready, a PVC is bound, a Job has completed). Reactors run under the store lock: they must
//! be quick and must not call the server. Chains are cut after 16 rounds.

use std::sync::Arc;

use serde_json::Value;

use crate::store::EventKind;

/// One committed change shown to reactors.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Change<'a> {
    /// Added, modified or deleted.
    pub kind: EventKind,
    /// API group (`""` for core).
    pub group: &'a str,
    /// A served version of the resource.
    pub version: &'a str,
    /// Plural resource name.
    pub resource: &'a str,
    /// The object after the change (before it, for deletions).
    pub object: &'a Value,
    /// Read access to every stored object.
    pub view: View<'a>,
}

/// Read access to the store for reactors.
#[derive(Clone, Copy)]
pub struct View<'a>(pub(crate) &'a crate::store::State);

impl std::fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("View")
    }
}

impl View<'_> {
    /// An object by group, plural, namespace (`None` for cluster scope) and name.
    pub fn get(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<&Value> {
        let rt = self.0.resource_any_version(group, plural)?;
        self.0.lookup(rt, namespace.unwrap_or_default(), name)
    }

    /// Every object of `group`/`plural` in `namespace` (in all namespaces if `None`).
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
        let Some(bucket) = self
            .0
            .resource_any_version(group, plural)
            .and_then(|rt| self.0.bucket(rt))
        else {
            return Vec::new();
        };
        bucket
            .iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
            .collect()
    }
}

impl Change<'_> {
    /// Whether this change is about `group`/`resource`.
    pub fn is(&self, group: &str, resource: &str) -> bool {
        self.group == group && self.resource == resource
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        crate::object::meta_str(self.object, "name")
    }

    /// `metadata.namespace`, `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        Some(crate::object::meta_str(self.object, "namespace")).filter(|n| !n.is_empty())
    }
}

/// What a reactor asks the server to do.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Action {
    /// Create an object (`generateName` works).
    Create {
        /// API group.
        group: String,
        /// Plural resource.
        resource: String,
        /// Namespace for namespaced resources.
        namespace: Option<String>,
        /// The object.
        object: Value,
    },
    /// Apply a JSON merge patch to an object, or to its status when `status` is set.
    MergePatch {
        /// API group.
        group: String,
        /// Plural resource.
        resource: String,
        /// Namespace for namespaced resources.
        namespace: Option<String>,
        /// Object name.
        name: String,
        /// RFC 7386 merge patch.
        patch: Value,
        /// Patch through the status subresource.
        status: bool,
    },
    /// Delete an object.
    Delete {
        /// API group.
        group: String,
        /// Plural resource.
        resource: String,
        /// Namespace for namespaced resources.
        namespace: Option<String>,
        /// Object name.
        name: String,
    },
}

impl Action {
    /// A status merge patch on the object `change` is about.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "callers build the patch in place"
    )]
    pub fn patch_status(change: &Change<'_>, patch: Value) -> Self {
        Self::MergePatch {
            group: change.group.to_string(),
            resource: change.resource.to_string(),
            namespace: change.namespace().map(str::to_string),
            name: change.name().to_string(),
            patch: serde_json::json!({ "status": patch }),
            status: true,
        }
    }
}

/// A reactor: called after every committed change.
pub type Reactor = Arc<dyn Fn(&Change<'_>) -> Vec<Action> + Send + Sync>;
