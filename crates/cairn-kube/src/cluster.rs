//! A cluster as this layer sees it: a kube-rs client plus API discovery, and unstructured
//! get/list/create/patch/delete of any kind by its [`ObjectKey`]. Every object crosses this
//! boundary as a JSON value carrying its `apiVersion` and `kind`.

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope, verbs};
use serde_json::Value;

use crate::error::{Error, Result, is_not_found};
use crate::object::{ObjectKey, group_of};

/// A connected cluster with its discovered resource types.
pub struct Cluster {
    client: Client,
    discovery: Discovery,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Runs discovery (every API group) against the client's cluster.
    ///
    /// # Errors
    /// `Kube` if discovery fails.
    pub async fn connect(client: Client) -> Result<Self> {
        let discovery = Discovery::new(client.clone())
            .run()
            .await
            .map_err(|e| Error::kube("API discovery", e))?;
        Ok(Self { client, discovery })
    }

    /// Runs discovery again (after CRDs were created).
    ///
    /// # Errors
    /// `Kube` if discovery fails.
    pub async fn refresh(&mut self) -> Result<()> {
        self.discovery = Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(|e| Error::kube("API discovery", e))?;
        Ok(())
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The discovery results.
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The API server's `gitVersion`.
    ///
    /// # Errors
    /// `Kube`.
    pub async fn version(&self) -> Result<String> {
        self.client
            .apiserver_version()
            .await
            .map(|i| i.git_version)
            .map_err(|e| Error::kube("reading the API server version", e))
    }

    /// Every listable resource type, preferred version of each group.
    pub fn listable(&self) -> Vec<(ApiResource, ApiCapabilities)> {
        self.discovery
            .groups()
            .flat_map(kube::discovery::ApiGroup::recommended_resources)
            .filter(|(_, c)| c.supports_operation(verbs::LIST))
            .collect()
    }

    /// The resource type of an object, if the cluster serves it.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, ApiCapabilities)> {
        let group = group_of(api_version);
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        self.discovery
            .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
    }

    fn api(&self, key: &ObjectKey) -> Result<(Api<DynamicObject>, ApiResource)> {
        let (ar, caps) = self.resolve(&key.api_version, &key.kind).ok_or_else(|| {
            Error::invalid(key.to_string(), "the cluster does not serve this kind")
        })?;
        let api = match (&caps.scope, &key.namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            (Scope::Namespaced, None) => {
                return Err(Error::invalid(
                    key.to_string(),
                    "namespaced kind without a namespace",
                ));
            }
            (Scope::Cluster, _) => Api::all_with(self.client.clone(), &ar),
        };
        Ok((api, ar))
    }

    /// Lists every object of a type (in one namespace, or in all).
    ///
    /// # Errors
    /// `Kube`.
    pub async fn list(&self, ar: &ApiResource, namespace: Option<&str>) -> Result<Vec<Value>> {
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        };
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| Error::kube(format!("listing {}", ar.plural), e))?;
        list.items.into_iter().map(|o| to_value(o, ar)).collect()
    }

    /// Lists the objects of a kind by apiVersion and kind; empty if the cluster does not serve it.
    ///
    /// # Errors
    /// `Kube`.
    pub async fn list_kind(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>> {
        match self.resolve(api_version, kind) {
            Some((ar, _)) => self.list(&ar, namespace).await,
            None => Ok(Vec::new()),
        }
    }

    /// Reads one object; `None` if it does not exist.
    ///
    /// # Errors
    /// `Kube`, `Invalid` for a kind the cluster does not serve.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<Value>> {
        let (api, ar) = self.api(key)?;
        match api.get_opt(&key.name).await {
            Ok(Some(o)) => Ok(Some(to_value(o, &ar)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::kube(format!("reading {key}"), e)),
        }
    }

    /// Creates an object.
    ///
    /// # Errors
    /// `Kube` (409 if it exists).
    pub async fn create(&self, obj: &Value) -> Result<Value> {
        let key = key_of(obj)?;
        let (api, ar) = self.api(&key)?;
        let dyn_obj: DynamicObject = serde_json::from_value(obj.clone())
            .map_err(|e| Error::invalid(key.to_string(), e.to_string()))?;
        let created = api
            .create(&PostParams::default(), &dyn_obj)
            .await
            .map_err(|e| Error::kube(format!("creating {key}"), e))?;
        to_value(created, &ar)
    }

    /// Applies a JSON merge patch (RFC 7386) to an object.
    ///
    /// # Errors
    /// `Kube`.
    pub async fn merge_patch(&self, key: &ObjectKey, patch: &Value) -> Result<Value> {
        let (api, ar) = self.api(key)?;
        let out = api
            .patch(&key.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| Error::kube(format!("patching {key}"), e))?;
        to_value(out, &ar)
    }

    /// Applies a merge patch to an object's `status` subresource.
    ///
    /// # Errors
    /// `Kube`.
    pub async fn merge_patch_status(&self, key: &ObjectKey, patch: &Value) -> Result<Value> {
        let (api, ar) = self.api(key)?;
        let out = api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|e| Error::kube(format!("patching the status of {key}"), e))?;
        to_value(out, &ar)
    }

    /// Deletes an object; `false` if it did not exist.
    ///
    /// # Errors
    /// `Kube`.
    pub async fn delete(&self, key: &ObjectKey) -> Result<bool> {
        let (api, _) = self.api(key)?;
        let dp = DeleteParams::background();
        match api.delete(&key.name, &dp).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(Error::kube(format!("deleting {key}"), e)),
        }
    }
}

/// The key of an object or `Invalid`.
pub(crate) fn key_of(obj: &Value) -> Result<ObjectKey> {
    ObjectKey::of(obj)
        .ok_or_else(|| Error::invalid("object", "no apiVersion, kind or metadata.name"))
}

/// An API object as JSON with its `apiVersion` and `kind` (list items often lack them).
fn to_value(o: DynamicObject, ar: &ApiResource) -> Result<Value> {
    let mut v =
        serde_json::to_value(o).map_err(|e| Error::invalid(ar.kind.clone(), e.to_string()))?;
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(ar.api_version.clone()));
        m.insert("kind".into(), Value::String(ar.kind.clone()));
    }
    Ok(v)
}
