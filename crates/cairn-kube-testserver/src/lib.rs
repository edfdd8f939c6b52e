//! An in-process Kubernetes API server for tests, spoken to by the real kube-rs client.
//!
//! No cluster can run on the machines Cairn is built on, so the Kubernetes layer is tested
//! end to end against this server: plain HTTP on `127.0.0.1:<random port>`, no
//! authentication, state in memory, gone when the [`TestServer`] is dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use cairn_kube_testserver::TestServer;
//! let server = TestServer::start().await?;
//! let client: kube::Client = server.client();
//! let discovery = kube::discovery::Discovery::new(client).run().await?;
//! # Ok(()) }
//! ```
//!
//! # What it serves
//!
//! - **Discovery**: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}`,
//!   `/apis/{group}/{version}` (`APIResourceList` with kind, scope, verbs, short names,
//!   categories and the `status`/`scale` subresources). `Discovery::run()` works; the
//!   aggregated discovery (`run_aggregated`) is not served. The built-in set
//!   ([`resources::builtin`]) covers core/v1, apps/v1, batch/v1, autoscaling/v2, rbac,
//!   storage.k8s.io, snapshot.storage.k8s.io/v1, groupsnapshot.storage.k8s.io/v1beta1,
//!   networking.k8s.io, discovery.k8s.io, apiextensions.k8s.io, policy, coordination and
//!   scheduling; [`TestServerBuilder`] adds and removes groups and resources.
//! - **Storage** of any group/version/kind, namespaced or cluster-scoped, as unstructured
//!   JSON: `uid` (random v4), `resourceVersion` (one global counter), `creationTimestamp`,
//!   `generation` (1 on create for objects with a `spec` and for custom resources; +1 when
//!   anything outside `metadata`/`status` changes), `generateName`, namespace checks (a
//!   namespaced create into a missing namespace is `404 namespaces "x" not found`, as on a
//!   real server). Namespaces `default`, `kube-system`, `kube-public` and
//!   `kube-node-lease` exist at start.
//! - **Verbs**: create (409 AlreadyExists), get (404 NotFound with a `Status` body), list
//!   (label selectors `=`, `==`, `!=`, `in`, `notin`, exists, `!key`; field selectors on any
//!   dotted path; `limit`/`continue`; all-namespaces lists), update (409 Conflict on a stale
//!   `resourceVersion`; a no-op update keeps the version), patch (merge, JSON patch, strategic
//!   merge and apply — see below), delete (finalizers honoured: the object gets a
//!   `deletionTimestamp` and goes when the last finalizer is removed; `preconditions`),
//!   deletecollection with selectors, `dryRun=All`, and watch.
//! - **Watch** (`?watch=true`): newline-delimited `WatchEvent`s (ADDED, MODIFIED, DELETED,
//!   a BOOKMARK at the end when asked), resuming from any `resourceVersion` still in the
//!   history (the last 100 000 events; older is 410 Expired). `kube::runtime::watcher`
//!   works.
//! - **Subresources**: `/status` (writes change only `status`; the main endpoint ignores
//!   `status` of resources that have the subresource, and create drops it), `/scale`
//!   (`autoscaling/v1` Scale mapped to `spec.replicas` of deployments, statefulsets,
//!   replicasets, replicationcontrollers, and to a CRD's scale paths), `pods/exec` (see
//!   [`ExecHandler`]).
//! - **CRDs**: creating a CustomResourceDefinition serves its resources (every served
//!   version, scope, names, short names, categories, status and scale subresources) at
//!   once, and gives it `status.conditions` NamesAccepted and Established (True),
//!   `acceptedNames` and `storedVersions`; deleting it deletes its objects and resources.
//!   All versions share one store (conversion strategy `None`).
//! - **Controllers**: [`reactor::Reactor`]s see every committed change and answer with
//!   actions applied before the request returns; [`controllers`] has ready-made ones
//!   (snapshots ready to use, PVCs bound, Jobs complete, workloads ready).
//! - **exec**: `Api<Pod>::exec` over the v5/v4 WebSocket channel protocol, to a handler the
//!   test installs ([`TestServer::on_exec`]); [`LocalProcess`] runs the command on this
//!   machine, a closure answers from a table.
//!
//! # What it simplifies (compared with a real API server)
//!
//! - No authentication, authorization (RBAC objects are stored, never enforced),
//!   admission, validation beyond the checks above, OpenAPI schema pruning, or defaulting
//!   beyond: namespaces get `status.phase: Active` and the `kubernetes.io/metadata.name`
//!   label; pods, PVCs and PVs get `status.phase: Pending`.
//! - Strategic merge patch is a JSON merge patch (lists are replaced, never merged by
//!   key; `$patch` directives are not understood). Server-side apply is a merge patch that
//!   creates a missing object; there are no managed fields and no field ownership
//!   conflicts. Bodies must be JSON (kube-rs sends JSON, also for apply).
//! - Field selectors accept any dotted path (a real server accepts a per-resource list).
//!   Watches filter by the object after the change, without the synthetic DELETED a real
//!   server sends when an object stops matching a selector.
//! - `continue` tokens do not pin a snapshot: later pages show the current state. List
//!   `resourceVersion` parameters (`resourceVersionMatch`) are ignored; lists are always
//!   current.
//! - Garbage collection is immediate and in-request: deleting an owner deletes the objects
//!   whose `ownerReferences` name its uid (unless `propagationPolicy=Orphan`); deleting a
//!   namespace deletes its objects at once (no `Terminating` phase).
//! - Items of built-in list responses carry no `apiVersion`/`kind` (as on a real server);
//!   custom resources' items do.
//! - No default ServiceAccount, token or `kube-root-ca.crt` ConfigMap per namespace, no
//!   Service cluster IPs, no scheduling, no pod logs, no port-forward.

pub mod controllers;
mod crd;
mod discovery;
mod error;
mod exec;
mod object;
mod ops;
pub mod reactor;
pub mod resources;
mod router;
mod selector;
mod server;
mod store;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use exec::{ExecHandler, ExecIo, ExecOutput, ExecRequest, ExecResult, LocalProcess};
pub use reactor::{Action, Change, Reactor};
pub use resources::{ResourceType, ScalePaths};
pub use store::EventKind;

use server::Shared;
use store::Store;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding 127.0.0.1:0 failed.
    #[error("binding the test API server to 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// The kube-rs client could not be built for the server's URL.
    #[error("building a kube client for {url}: {source}")]
    Client {
        /// The server URL.
        url: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A seeded object was refused.
    #[error("seeding the test API server: {0}")]
    Seed(#[source] ApiError),
}

/// The namespaces a fresh server has.
const INITIAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Configures a [`TestServer`] before it starts.
#[must_use]
pub struct TestServerBuilder {
    resources: Vec<ResourceType>,
    namespaces: Vec<String>,
    reactors: Vec<Reactor>,
    exec: Option<Arc<dyn ExecHandler>>,
    seed: Vec<Value>,
}

impl Default for TestServerBuilder {
    fn default() -> Self {
        Self {
            resources: resources::builtin(),
            namespaces: INITIAL_NAMESPACES
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            reactors: Vec::new(),
            exec: None,
            seed: Vec::new(),
        }
    }
}

impl TestServerBuilder {
    /// Stops serving every resource of `group` (e.g. a cluster without the snapshot CRDs).
    pub fn without_group(mut self, group: &str) -> Self {
        self.resources.retain(|r| r.group != group);
        self
    }

    /// Stops serving one resource of a group (all versions).
    pub fn without_resource(mut self, group: &str, plural: &str) -> Self {
        self.resources
            .retain(|r| !(r.group == group && r.plural == plural));
        self
    }

    /// Serves one more resource (or replaces the one with the same group/version/plural).
    pub fn with_resource(mut self, resource: ResourceType) -> Self {
        self.resources.retain(|r| {
            !(r.group == resource.group
                && r.version == resource.version
                && r.plural == resource.plural)
        });
        self.resources.push(resource);
        self
    }

    /// Creates one more namespace at start.
    pub fn namespace(mut self, name: &str) -> Self {
        self.namespaces.push(name.to_string());
        self
    }

    /// Creates `object` at start (its `apiVersion`/`kind` pick the resource; CRDs work).
    pub fn object(mut self, object: Value) -> Self {
        self.seed.push(object);
        self
    }

    /// Installs a reactor (see [`reactor`]).
    pub fn reactor(
        mut self,
        reactor: impl Fn(&Change<'_>) -> Vec<Action> + Send + Sync + 'static,
    ) -> Self {
        self.reactors.push(Arc::new(reactor));
        self
    }

    /// Installs the exec handler.
    pub fn exec(mut self, handler: impl ExecHandler) -> Self {
        self.exec = Some(Arc::new(handler));
        self
    }

    /// Binds 127.0.0.1 on a free port and starts serving on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Bind`] when no port can be bound, [`Error::Client`] when kube-rs rejects the
    /// URL, [`Error::Seed`] when a seeded object is refused.
    pub async fn start(self) -> Result<TestServer, Error> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            store: Store::new(self.resources),
            exec: parking_lot::RwLock::new(self.exec),
            shutdown: CancellationToken::new(),
        });
        *shared.store.reactors.write() = self.reactors;
        let server = TestServer {
            client: client_for(&url)?,
            url,
            shared: Arc::clone(&shared),
        };
        for ns in &self.namespaces {
            server
                .create(
                    "",
                    "namespaces",
                    None,
                    json!({ "metadata": { "name": ns } }),
                )
                .map_err(Error::Seed)?;
        }
        for object in self.seed {
            server.create_typed(object).map_err(Error::Seed)?;
        }
        tokio::spawn(server::serve(listener, shared));
        Ok(server)
    }
}

fn client_for(url: &str) -> Result<kube::Client, Error> {
    let err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Client {
        url: url.to_string(),
        source,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| err(e.into()))?;
    let mut config = kube::Config::new(uri);
    config.default_namespace = "default".into();
    kube::Client::try_from(config).map_err(|e| err(e.into()))
}

/// A running in-process API server; stops when dropped.
pub struct TestServer {
    url: String,
    client: kube::Client,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server with the built-in resources and the initial namespaces.
    ///
    /// # Errors
    /// As [`TestServerBuilder::start`].
    pub async fn start() -> Result<Self, Error> {
        Self::builder().start().await
    }

    /// A builder to choose resources, namespaces, reactors and the exec handler.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kube-rs client for this server (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A kubeconfig file body pointing at this server (for code that reads `KUBECONFIG`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: cairn-test\n  cluster:\n    server: {url}\ncontexts:\n- name: cairn-test\n  context:\n    cluster: cairn-test\n    user: cairn-test\n    namespace: default\ncurrent-context: cairn-test\nusers:\n- name: cairn-test\n  user: {{}}\n",
            url = self.url
        )
    }

    /// Installs (or replaces) the exec handler.
    pub fn on_exec(&self, handler: impl ExecHandler) {
        *self.shared.exec.write() = Some(Arc::new(handler));
    }

    /// Installs one more reactor.
    pub fn add_reactor(
        &self,
        reactor: impl Fn(&Change<'_>) -> Vec<Action> + Send + Sync + 'static,
    ) {
        self.shared.store.reactors.write().push(Arc::new(reactor));
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.state.lock().rv
    }

    /// Whether a resource is served (any version).
    pub fn serves(&self, group: &str, plural: &str) -> bool {
        self.shared
            .store
            .state
            .lock()
            .resource_any_version(group, plural)
            .is_some()
    }

    /// Reads an object directly (no HTTP), as stored.
    pub fn get(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let state = self.shared.store.state.lock();
        let rt = state.resource_any_version(group, plural)?.clone();
        ops::get(&state, &rt, namespace.unwrap_or_default(), name).ok()
    }

    /// Every stored object of a resource, sorted by namespace and name.
    pub fn list(&self, group: &str, plural: &str) -> Vec<Value> {
        let state = self.shared.store.state.lock();
        let Some(rt) = state.resource_any_version(group, plural).cloned() else {
            return Vec::new();
        };
        state
            .bucket(&rt)
            .map(|b| b.values().map(|o| ops::stamped(&rt, o.clone())).collect())
            .unwrap_or_default()
    }

    /// Creates an object directly (no HTTP), with the same rules as a POST.
    ///
    /// # Errors
    /// As the POST would fail (404 for an unknown resource).
    pub fn create(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        object: Value,
    ) -> Result<Value, ApiError> {
        self.shared.store.write(|state| {
            let rt = state
                .resource_any_version(group, plural)
                .cloned()
                .ok_or_else(|| ApiError::no_route(&format!("{group}/{plural}")))?;
            ops::create(state, &rt, namespace, object, false)
        })
    }

    /// Creates an object directly, finding its resource from `apiVersion` and `kind` and
    /// its namespace from `metadata.namespace`.
    ///
    /// # Errors
    /// As [`TestServer::create`]; 400 without `apiVersion`/`kind`.
    pub fn create_typed(&self, object: Value) -> Result<Value, ApiError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (group, version) = api_version
            .rsplit_once('/')
            .unwrap_or(("", api_version.as_str()));
        let namespace = object::meta_str(&object, "namespace").to_string();
        self.shared.store.write(|state| {
            let rt = state
                .resources
                .iter()
                .find(|r| r.group == group && r.version == version && r.kind == kind)
                .cloned()
                .ok_or_else(|| {
                    ApiError::bad_request(format!("no resource serves {api_version} {kind}"))
                })?;
            let ns = Some(namespace.as_str()).filter(|n| rt.namespaced && !n.is_empty());
            ops::create(state, &rt, ns, object, false)
        })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}
