//! Hook specifications as written in a backup spec (YAML or JSON, camelCase), and their
//! validation into [`Steps`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::recipes::Recipe;

/// One hook: where it runs, what it does, how long it may take, and what a failure means.
///
/// It is either a built-in `recipe` or any of `pre`, `session` and `post` written out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct HookSpec {
    /// Name shown in records and logs.
    pub name: String,
    /// The pods and container to run in.
    pub pods: PodSelector,
    /// A built-in recipe (excludes `pre`, `session` and `post`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
    /// Command (argv) run before the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre: Option<Vec<String>>,
    /// A process held open across the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionSpec>,
    /// Command (argv) run after the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<Vec<String>>,
    /// Limit for each step ("30s", "500ms", "2m"; default 30s).
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// What a failure of this hook means (default: fail the backup).
    #[serde(default)]
    pub on_error: OnError,
    /// Environment for the commands (credentials: `fromEnv` or `secretKeyRef`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, EnvSource>,
}

impl HookSpec {
    /// A hook with defaults (30 s, on error: fail) running `recipe` in `pods`.
    pub fn recipe(name: impl Into<String>, pods: PodSelector, recipe: Recipe) -> Self {
        Self {
            recipe: Some(recipe),
            ..Self::empty(name, pods)
        }
    }

    /// A hook with defaults that does nothing yet; set `pre`, `session` or `post`.
    pub fn empty(name: impl Into<String>, pods: PodSelector) -> Self {
        Self {
            name: name.into(),
            pods,
            recipe: None,
            pre: None,
            session: None,
            post: None,
            timeout: default_timeout(),
            on_error: OnError::Fail,
            env: BTreeMap::new(),
        }
    }

    /// The steps this hook runs: the recipe's, or those written out.
    ///
    /// # Errors
    /// [`SpecError`] when the hook is empty, mixes a recipe with explicit steps, has an
    /// empty command or a zero timeout.
    pub fn steps(&self) -> Result<Steps, SpecError> {
        let err = |reason: &str| SpecError {
            hook: self.name.clone(),
            reason: reason.to_owned(),
        };
        if self.name.trim().is_empty() {
            return Err(err("a hook needs a name"));
        }
        if self.timeout.is_zero() {
            return Err(err("timeout must be more than zero"));
        }
        let explicit = self.pre.is_some() || self.session.is_some() || self.post.is_some();
        let steps = match (&self.recipe, explicit) {
            (Some(_), true) => {
                return Err(err("give either a recipe or pre/session/post, not both"));
            }
            (None, false) => {
                return Err(err("give a recipe or at least one of pre, session, post"));
            }
            (Some(r), false) => r.steps().map_err(|reason| err(&reason))?,
            (None, true) => Steps {
                pre: self.pre.clone(),
                session: self.session.clone(),
                post: self.post.clone(),
            },
        };
        let empty = |c: &Option<Vec<String>>| {
            c.as_ref()
                .is_some_and(|c| c.first().is_none_or(String::is_empty))
        };
        if empty(&steps.pre)
            || empty(&steps.post)
            || steps
                .session
                .as_ref()
                .is_some_and(|s| s.command.first().is_none_or(String::is_empty))
        {
            return Err(err("a command cannot be empty"));
        }
        Ok(steps)
    }
}

/// What a hook runs, after recipes are expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Steps {
    /// Before the snapshot, to completion.
    pub pre: Option<Vec<String>>,
    /// Opened before the snapshot (after `pre`), released after it (before `post`).
    pub session: Option<SessionSpec>,
    /// After the snapshot, to completion.
    pub post: Option<Vec<String>>,
}

/// A long-lived process: `start` is written to its stdin, then Cairn waits for `ready` on
/// its stdout; after the snapshot `release` is written, stdin is closed and the process
/// must exit. Whatever it holds (a table lock, a backup mode) dies with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionSpec {
    /// The program (argv), e.g. a database client reading statements from stdin.
    pub command: Vec<String>,
    /// Written to stdin when the session opens.
    #[serde(default)]
    pub start: String,
    /// Printed on stdout once the application is quiesced (empty: ready once `start` is
    /// written).
    #[serde(default)]
    pub ready: String,
    /// Written to stdin after the snapshot, before stdin is closed.
    #[serde(default)]
    pub release: String,
}

impl SessionSpec {
    /// A session running `command`.
    pub fn new(command: Vec<String>, start: &str, ready: &str, release: &str) -> Self {
        Self {
            command,
            start: start.to_owned(),
            ready: ready.to_owned(),
            release: release.to_owned(),
        }
    }
}

/// Which pods a hook runs in: the running pods of one namespace matching a label selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct PodSelector {
    /// Namespace.
    pub namespace: String,
    /// Label selector in the API's syntax (`app=db,tier in (a,b)`; empty: every pod).
    #[serde(default)]
    pub selector: String,
    /// Container (default: the pod's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl PodSelector {
    /// Pods of `namespace` matching `selector`, in `container`.
    pub fn new(namespace: &str, selector: &str, container: Option<&str>) -> Self {
        Self {
            namespace: namespace.to_owned(),
            selector: selector.to_owned(),
            container: container.map(str::to_owned),
        }
    }
}

impl fmt::Display for PodSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pods {:?} in {}", self.selector, self.namespace)?;
        if let Some(c) = &self.container {
            write!(f, " (container {c})")?;
        }
        Ok(())
    }
}

/// What a failed hook does to the backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum OnError {
    /// Stop: run no further pre hooks, skip the snapshot, release what was quiesced, and
    /// fail the backup.
    #[default]
    Fail,
    /// Record the failure and go on.
    Continue,
}

/// Where an environment variable's value comes from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub enum EnvSource {
    /// A literal (not for credentials).
    Value(String),
    /// An environment variable of the process running Cairn.
    FromEnv(String),
    /// A key of a Kubernetes Secret in the hook's namespace.
    SecretKeyRef {
        /// Secret name.
        name: String,
        /// Key.
        key: String,
    },
}

impl fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(_) => f.write_str("Value(***)"),
            Self::FromEnv(v) => write!(f, "FromEnv({v})"),
            Self::SecretKeyRef { name, key } => write!(f, "SecretKeyRef({name}/{key})"),
        }
    }
}

/// A hook specification that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hook {hook:?}: {reason}")]
pub struct SpecError {
    /// The hook's name.
    pub hook: String,
    /// What is wrong.
    pub reason: String,
}

/// A hooks file: a list of hooks, or a backup spec with a `hooks:` list (YAML or JSON).
#[derive(Deserialize)]
#[serde(untagged)]
enum HooksFile {
    List(Vec<HookSpec>),
    Spec { hooks: Vec<HookSpec> },
}

/// Parses and validates a hooks file (YAML or JSON): a list of hooks, or a map whose `hooks`
/// key is one.
///
/// # Errors
/// [`SpecError`] naming the file's problem (hook `*` when it does not parse) or the first
/// invalid hook.
pub fn parse_hooks(text: &str) -> Result<Vec<HookSpec>, SpecError> {
    let hooks = match serde_saphyr::from_str::<HooksFile>(text) {
        Ok(HooksFile::List(h) | HooksFile::Spec { hooks: h }) => h,
        Err(e) => {
            // The untagged error says only "no variant matched": name the real problem.
            let reason = serde_saphyr::from_str::<Vec<HookSpec>>(text)
                .err()
                .map_or_else(|| e.to_string(), |e| e.to_string());
            return Err(SpecError {
                hook: "*".into(),
                reason,
            });
        }
    };
    let mut names = std::collections::BTreeSet::new();
    for h in &hooks {
        h.steps()?;
        if !names.insert(h.name.as_str()) {
            return Err(SpecError {
                hook: h.name.clone(),
                reason: "two hooks have this name".into(),
            });
        }
    }
    Ok(hooks)
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Durations as "250ms", "30s", "5m", "1h" (or a bare number of seconds).
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: expected e.g. 500ms, 30s, 5m"))?;
        let ms = match unit.trim() {
            "ms" => Some(n),
            "" | "s" => n.checked_mul(1000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
        };
        ms.map(Duration::from_millis)
            .ok_or_else(|| format!("duration {s:?} is too long"))
    }

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let ms = d.as_millis();
        if ms.is_multiple_of(1000) {
            s.serialize_str(&format!("{}s", ms / 1000))
        } else {
            s.serialize_str(&format!("{ms}ms"))
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Duration::from_secs(n)),
            Raw::Text(t) => parse(&t).map_err(D::Error::custom),
        }
    }
}
