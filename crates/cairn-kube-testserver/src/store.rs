//! The object store: resource types, objects, the resourceVersion counter, the event
//! history and the watch broadcast.
//!
//! All state sits behind one mutex that no `.await` ever holds; every write bumps the global
//! counter, records a [`WatchEvent`] in the history and broadcasts it, all under the lock, so
//! a watcher that subscribes under the lock and replays the history sees every event once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::object::{meta_str, set_meta};
use crate::reactor::{Action, Change, Reactor};
use crate::resources::ResourceType;

/// How many events the history keeps for watches that resume from a resourceVersion.
const HISTORY: usize = 100_000;
/// How far reactors may chain (a reactor's action triggering reactors again).
const REACTOR_ROUNDS: usize = 16;

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventKind {
    /// The watch event `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change, as watches see it.
#[derive(Clone, Debug)]
pub(crate) struct WatchEvent {
    pub(crate) group: String,
    pub(crate) plural: String,
    pub(crate) namespace: String,
    pub(crate) kind: EventKind,
    pub(crate) object: Value,
    pub(crate) rv: u64,
}

/// Replayed events plus a receiver for later ones.
pub(crate) type Subscription = (Vec<Arc<WatchEvent>>, broadcast::Receiver<Arc<WatchEvent>>);

/// Objects of one (group, plural), keyed by (namespace, name); namespace is `""` for
/// cluster-scoped objects.
pub(crate) type Bucket = BTreeMap<(String, String), Value>;

/// Everything the lock protects.
pub(crate) struct State {
    pub(crate) resources: Vec<ResourceType>,
    pub(crate) objects: BTreeMap<(String, String), Bucket>,
    pub(crate) rv: u64,
    history: VecDeque<Arc<WatchEvent>>,
    events: broadcast::Sender<Arc<WatchEvent>>,
    pending: Vec<Arc<WatchEvent>>,
}

impl State {
    pub(crate) fn new(resources: Vec<ResourceType>) -> Self {
        let (events, _) = broadcast::channel(16_384);
        Self {
            resources,
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            events,
            pending: Vec::new(),
        }
    }

    /// The resource serving `plural` in `group`/`version`.
    pub(crate) fn resource(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<&ResourceType> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Any served version of (group, plural), the first registered.
    pub(crate) fn resource_any_version(&self, group: &str, plural: &str) -> Option<&ResourceType> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.plural == plural)
    }

    pub(crate) fn bucket(&self, rt: &ResourceType) -> Option<&Bucket> {
        self.objects.get(&(rt.group.clone(), rt.plural.clone()))
    }

    pub(crate) fn lookup(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<&Value> {
        self.bucket(rt)?.get(&(ns.to_string(), name.to_string()))
    }

    pub(crate) fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .get(&(String::new(), "namespaces".to_string()))
            .is_some_and(|b| b.contains_key(&(String::new(), ns.to_string())))
    }

    /// Stores `object` (or removes it for `Deleted`) under a fresh resourceVersion, records
    /// and broadcasts the event, and returns the stored object.
    pub(crate) fn commit(
        &mut self,
        rt: &ResourceType,
        kind: EventKind,
        mut object: Value,
    ) -> Value {
        self.rv += 1;
        let rv = self.rv;
        set_meta(&mut object, "resourceVersion", json!(rv.to_string()));
        let ns = meta_str(&object, "namespace").to_string();
        let name = meta_str(&object, "name").to_string();
        let bucket = self
            .objects
            .entry((rt.group.clone(), rt.plural.clone()))
            .or_default();
        if kind == EventKind::Deleted {
            bucket.remove(&(ns.clone(), name));
        } else {
            bucket.insert((ns.clone(), name), object.clone());
        }
        let event = Arc::new(WatchEvent {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: ns,
            kind,
            object: object.clone(),
            rv,
        });
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(Arc::clone(&event));
        self.pending.push(Arc::clone(&event));
        // No receiver is not an error: nobody watches.
        let _ = self.events.send(event);
        object
    }

    /// Events of (group, plural) after `since`, and a receiver for later ones.
    ///
    /// # Errors
    /// 410 Expired when `since` is older than the kept history.
    pub(crate) fn subscribe(
        &self,
        rt: &ResourceType,
        since: u64,
    ) -> Result<Subscription, ApiError> {
        if let Some(first) = self.history.front()
            && since + 1 < first.rv
            && self.history.len() == HISTORY
        {
            return Err(ApiError::expired(format!(
                "too old resource version: {since} ({})",
                first.rv - 1
            )));
        }
        let replay = self
            .history
            .iter()
            .filter(|e| e.rv > since && e.group == rt.group && e.plural == rt.plural)
            .cloned()
            .collect();
        Ok((replay, self.events.subscribe()))
    }

    /// Runs the reactors on the changes committed since the last call, applying their
    /// actions (which may commit more changes, up to a bounded depth).
    pub(crate) fn run_reactors(&mut self, reactors: &[Reactor]) {
        if reactors.is_empty() {
            self.pending.clear();
            return;
        }
        for _ in 0..REACTOR_ROUNDS {
            let pending = std::mem::take(&mut self.pending);
            if pending.is_empty() {
                return;
            }
            let mut actions = Vec::new();
            for event in &pending {
                let Some(rt) = self.resource_any_version(&event.group, &event.plural) else {
                    continue;
                };
                let change = Change {
                    kind: event.kind,
                    group: &event.group,
                    version: &rt.version,
                    resource: &event.plural,
                    object: &event.object,
                    view: crate::reactor::View(self),
                };
                for reactor in reactors {
                    actions.extend(reactor(&change));
                }
            }
            for action in actions {
                if let Err(err) = self.apply_action(action) {
                    tracing::warn!(error = %err, "test server reactor action failed");
                }
            }
        }
        self.pending.clear();
    }

    fn apply_action(&mut self, action: Action) -> Result<(), ApiError> {
        let find = |state: &Self, group: &str, resource: &str| {
            state
                .resource_any_version(group, resource)
                .cloned()
                .ok_or_else(|| ApiError::no_route(&format!("{group}/{resource}")))
        };
        match action {
            Action::Create {
                group,
                resource,
                namespace,
                object,
            } => {
                let rt = find(self, &group, &resource)?;
                crate::ops::create(self, &rt, namespace.as_deref(), object, false)?;
            }
            Action::MergePatch {
                group,
                resource,
                namespace,
                name,
                patch,
                status,
            } => {
                let rt = find(self, &group, &resource)?;
                let sub = if status {
                    crate::ops::Sub::Status
                } else {
                    crate::ops::Sub::Main
                };
                crate::ops::patch(
                    self,
                    &rt,
                    namespace.as_deref().unwrap_or_default(),
                    &name,
                    &crate::ops::PatchBody::Merge(patch),
                    sub,
                    false,
                )?;
            }
            Action::Delete {
                group,
                resource,
                namespace,
                name,
            } => {
                let rt = find(self, &group, &resource)?;
                crate::ops::delete(
                    self,
                    &rt,
                    namespace.as_deref().unwrap_or_default(),
                    &name,
                    &Value::Null,
                    false,
                )?;
            }
        }
        Ok(())
    }
}

/// The shared store.
pub(crate) struct Store {
    pub(crate) state: parking_lot::Mutex<State>,
    pub(crate) reactors: parking_lot::RwLock<Vec<Reactor>>,
}

impl Store {
    pub(crate) fn new(resources: Vec<ResourceType>) -> Self {
        Self {
            state: parking_lot::Mutex::new(State::new(resources)),
            reactors: parking_lot::RwLock::new(Vec::new()),
        }
    }

    /// Runs `f` on the state, then the reactors on what it committed.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let reactors = self.reactors.read().clone();
        let mut state = self.state.lock();
        let out = f(&mut state);
        state.run_reactors(&reactors);
        out
    }
}
