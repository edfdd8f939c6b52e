//! Running hooks around a snapshot: [`quiesce`] runs the pre steps and opens the sessions,
//! in the spec's order, and returns a [`Quiesced`] guard; [`Quiesced::release`] closes the
//! sessions and runs the post steps, in reverse order. [`run_around`] does both around a
//! closure, so no early return can skip the release.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use serde::{Deserialize, Serialize};

use super::exec::{EnvVar, ExecOutput, ExecTarget, HookExecutor, Secret, Session};
use super::spec::{EnvSource, HookSpec, OnError, SpecError, Steps};

/// Which step of a hook a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Phase {
    /// The `pre` command.
    Pre,
    /// Opening a session (until its ready marker).
    SessionStart,
    /// Releasing a session (until its process exited).
    SessionRelease,
    /// The `post` command.
    Post,
}

/// What one step did in one container: kept with the application backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HookRecord {
    /// The hook's name.
    pub hook: String,
    /// The step.
    pub phase: Phase,
    /// Where it ran (pod `*` when the pods could not be found).
    pub target: ExecTarget,
    /// The command (argv; credentials travel in the environment, never here).
    pub command: Vec<String>,
    /// When it started.
    pub started: jiff::Timestamp,
    /// How long it took.
    pub duration_ms: u64,
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Killed at its timeout.
    pub timed_out: bool,
    /// Captured stdout (truncated, secrets blanked).
    pub stdout: String,
    /// Captured stderr (truncated, secrets blanked).
    pub stderr: String,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The hook's on-error policy.
    pub on_error: OnError,
}

impl HookRecord {
    /// The step succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Every step's record, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HookReport {
    /// The records.
    pub records: Vec<HookRecord>,
    /// A hook whose policy is `fail` failed: the backup must not be reported as complete.
    pub failed: bool,
}

impl HookReport {
    /// The records of failed steps.
    pub fn failures(&self) -> impl Iterator<Item = &HookRecord> {
        self.records.iter().filter(|r| !r.ok())
    }
}

/// What [`run_around`] did with the wrapped step.
#[derive(Debug)]
#[non_exhaustive]
pub enum StepOutcome<T, E> {
    /// It ran (inside the quiesce window) and returned this.
    Ran(Result<T, E>),
    /// It did not run: a hook with `onError: fail` failed first (the reason).
    Skipped(String),
}

/// One thing to undo after the snapshot.
enum Undo {
    Session {
        hook: Arc<Hook>,
        session: Session,
        command: Vec<String>,
        release: String,
    },
    Post {
        hook: Arc<Hook>,
        target: ExecTarget,
        command: Vec<String>,
    },
}

/// A validated hook with its environment resolved.
struct Hook {
    name: String,
    timeout: Duration,
    on_error: OnError,
    env: Vec<EnvVar>,
}

/// The application is quiesced (as far as the hooks got): sessions are open and post steps
/// are due. Call [`Quiesced::release`]; if the guard is dropped instead (an early return, a
/// panic), it releases on a background task of the current tokio runtime, and the sessions'
/// processes die with it in any case.
#[must_use = "release the hooks after the snapshot"]
pub struct Quiesced {
    executor: Arc<dyn HookExecutor>,
    undo: Vec<Undo>,
    report: HookReport,
    failure: Option<String>,
}

impl std::fmt::Debug for Quiesced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quiesced")
            .field("pending", &self.undo.len())
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl Quiesced {
    /// Why the snapshot must not be taken (a hook with `onError: fail` failed), if so.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// The records so far.
    pub fn report(&self) -> &HookReport {
        &self.report
    }

    /// Releases the sessions and runs the post steps (in reverse order), then returns every
    /// record of the backup's hooks.
    pub async fn release(mut self) -> HookReport {
        let undo = std::mem::take(&mut self.undo);
        let mut report = std::mem::take(&mut self.report);
        release_all(&*self.executor, undo, &mut report).await;
        report
    }
}

impl Drop for Quiesced {
    fn drop(&mut self) {
        if self.undo.is_empty() {
            return;
        }
        let undo = std::mem::take(&mut self.undo);
        let executor = Arc::clone(&self.executor);
        let mut report = std::mem::take(&mut self.report);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            tracing::warn!("hooks not released explicitly: releasing in the background");
            handle.spawn(async move {
                release_all(&*executor, undo, &mut report).await;
            });
        } else {
            tracing::error!(
                "hooks dropped outside a runtime: sessions are killed, post steps do not run"
            );
        }
    }
}

/// Checks every hook before anything runs.
///
/// # Errors
/// The first hook that cannot run.
pub fn validate(hooks: &[HookSpec]) -> Result<Vec<Steps>, SpecError> {
    hooks.iter().map(HookSpec::steps).collect()
}

/// Runs `step` inside the quiesce window: the pre steps and sessions first, then `step`
/// (unless a `fail` hook failed), then — whatever `step` returned, also if it panicked —
/// the release. Returns the records and what happened to `step`.
///
/// # Errors
/// [`SpecError`] when a hook is invalid; nothing has run then.
pub async fn run_around<T, E, F, Fut>(
    executor: Arc<dyn HookExecutor>,
    hooks: &[HookSpec],
    step: F,
) -> Result<(HookReport, StepOutcome<T, E>), SpecError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let quiesced = quiesce(executor, hooks).await?;
    if let Some(reason) = quiesced.failure() {
        let reason = reason.to_owned();
        return Ok((quiesced.release().await, StepOutcome::Skipped(reason)));
    }
    let ran = AssertUnwindSafe(step()).catch_unwind().await;
    let report = quiesced.release().await;
    match ran {
        Ok(r) => Ok((report, StepOutcome::Ran(r))),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs the pre steps and opens the sessions of `hooks`, in order; for each hook, in every
/// container its selector matches (in name order). Stops at the first failure of a hook
/// whose policy is `fail` (see [`Quiesced::failure`]). Post steps are queued for every hook
/// that was reached, also when its pre step failed (a timed-out freeze may have frozen).
///
/// # Errors
/// [`SpecError`] when a hook is invalid; nothing has run then.
pub async fn quiesce(
    executor: Arc<dyn HookExecutor>,
    hooks: &[HookSpec],
) -> Result<Quiesced, SpecError> {
    let steps = validate(hooks)?;
    let mut q = Quiesced {
        executor,
        undo: Vec::new(),
        report: HookReport::default(),
        failure: None,
    };
    for (spec, steps) in hooks.iter().zip(steps) {
        if !quiesce_one(&mut q, spec, steps).await {
            break;
        }
    }
    Ok(q)
}

/// One hook in all its containers; false when the backup must stop.
async fn quiesce_one(q: &mut Quiesced, spec: &HookSpec, steps: Steps) -> bool {
    let placeholder = ExecTarget {
        namespace: spec.pods.namespace.clone(),
        pod: "*".into(),
        container: spec.pods.container.clone(),
    };
    let env = match resolve_env(&*q.executor, spec).await {
        Ok(env) => env,
        Err(e) => return q.fail_early(spec, &placeholder, &e),
    };
    let hook = Arc::new(Hook {
        name: spec.name.clone(),
        timeout: spec.timeout,
        on_error: spec.on_error,
        env,
    });
    let targets = match q.executor.targets(&spec.pods).await {
        Ok(t) if t.is_empty() => {
            return q.fail_early(
                spec,
                &placeholder,
                &format!("no running pod: {}", spec.pods),
            );
        }
        Ok(t) => t,
        Err(e) => return q.fail_early(spec, &placeholder, &e.to_string()),
    };
    for target in targets {
        if let Some(post) = &steps.post {
            q.undo.push(Undo::Post {
                hook: Arc::clone(&hook),
                target: target.clone(),
                command: post.clone(),
            });
        }
        if let Some(pre) = &steps.pre {
            let rec = run_step(&*q.executor, &hook, Phase::Pre, &target, pre).await;
            if !q.note(rec) {
                return false;
            }
        }
        if let Some(session) = &steps.session {
            let started = Instant::now();
            let stamp = jiff::Timestamp::now();
            let opened = open_session(&*q.executor, &hook, &target, session).await;
            let mut rec = record(&hook, Phase::SessionStart, &target, &session.command, stamp);
            rec.duration_ms = started.elapsed().as_millis() as u64;
            match opened {
                Ok(s) => q.undo.push(Undo::Session {
                    hook: Arc::clone(&hook),
                    session: s,
                    command: session.command.clone(),
                    release: session.release.clone(),
                }),
                Err(e) => rec.error = Some(e),
            }
            if !q.note(rec) {
                return false;
            }
        }
    }
    true
}

impl Quiesced {
    /// Records a step; false when it failed under the `fail` policy (and remembers why).
    fn note(&mut self, rec: HookRecord) -> bool {
        let stop = match &rec.error {
            Some(e) if rec.on_error == OnError::Fail => {
                self.failure = Some(format!("hook {:?} in {}: {e}", rec.hook, rec.target));
                self.report.failed = true;
                true
            }
            Some(e) => {
                tracing::warn!(hook = %rec.hook, target = %rec.target, error = %e, "hook failed; continuing (onError: continue)");
                false
            }
            None => false,
        };
        self.report.records.push(rec);
        !stop
    }

    fn fail_early(&mut self, spec: &HookSpec, target: &ExecTarget, error: &str) -> bool {
        let hook = Hook {
            name: spec.name.clone(),
            timeout: spec.timeout,
            on_error: spec.on_error,
            env: Vec::new(),
        };
        let mut rec = record(&hook, Phase::Pre, target, &[], jiff::Timestamp::now());
        rec.error = Some(error.to_owned());
        self.note(rec)
    }
}

async fn resolve_env(executor: &dyn HookExecutor, spec: &HookSpec) -> Result<Vec<EnvVar>, String> {
    let mut env = Vec::new();
    for (name, source) in &spec.env {
        let value = match source {
            EnvSource::Value(v) => Secret::new(v.clone()),
            EnvSource::FromEnv(var) => Secret::new(std::env::var(var).map_err(|_| {
                format!("env {name}: variable {var} is not set in Cairn's environment")
            })?),
            EnvSource::SecretKeyRef { name: secret, key } => executor
                .secret(&spec.pods.namespace, secret, key)
                .await
                .map_err(|e| format!("env {name}: {e}"))?,
        };
        env.push((name.clone(), value));
    }
    Ok(env)
}

fn record(
    hook: &Hook,
    phase: Phase,
    target: &ExecTarget,
    command: &[String],
    started: jiff::Timestamp,
) -> HookRecord {
    HookRecord {
        hook: hook.name.clone(),
        phase,
        target: target.clone(),
        command: command.to_vec(),
        started,
        duration_ms: 0,
        exit_code: None,
        timed_out: false,
        stdout: String::new(),
        stderr: String::new(),
        error: None,
        on_error: hook.on_error,
    }
}

fn fill(rec: &mut HookRecord, out: ExecOutput, timeout: Duration) {
    rec.exit_code = out.exit_code;
    rec.timed_out = out.timed_out;
    if out.timed_out {
        rec.error = Some(format!("timed out after {timeout:?} and was killed"));
    } else if out.exit_code != Some(0) {
        rec.error = Some(match out.exit_code {
            Some(c) => format!("exited with code {c}"),
            None => "ended without an exit code".to_owned(),
        });
    }
    rec.stdout = out.stdout;
    rec.stderr = out.stderr;
}

async fn run_step(
    executor: &dyn HookExecutor,
    hook: &Hook,
    phase: Phase,
    target: &ExecTarget,
    command: &[String],
) -> HookRecord {
    let started = Instant::now();
    let mut rec = record(hook, phase, target, command, jiff::Timestamp::now());
    tracing::info!(hook = %hook.name, ?phase, %target, "running hook step");
    match executor
        .run(target, command, &hook.env, &[], hook.timeout)
        .await
    {
        Ok(out) => fill(&mut rec, out, hook.timeout),
        Err(e) => rec.error = Some(e.to_string()),
    }
    rec.duration_ms = started.elapsed().as_millis() as u64;
    rec
}

async fn open_session(
    executor: &dyn HookExecutor,
    hook: &Hook,
    target: &ExecTarget,
    spec: &super::spec::SessionSpec,
) -> Result<Session, String> {
    tracing::info!(hook = %hook.name, %target, "opening hook session");
    let deadline = tokio::time::Instant::now() + hook.timeout;
    let open = async {
        let mut s = executor
            .open(target, &spec.command, &hook.env)
            .await
            .map_err(|e| e.to_string())?;
        if !spec.start.is_empty() {
            s.send(spec.start.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
        }
        if !spec.ready.is_empty() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            s.wait_for(&spec.ready, left)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(s)
    };
    tokio::time::timeout_at(deadline, open)
        .await
        .unwrap_or_else(|_| Err(format!("not ready within {:?}", hook.timeout)))
}

/// Undoes in reverse order; records every step.
async fn release_all(executor: &dyn HookExecutor, mut undo: Vec<Undo>, report: &mut HookReport) {
    while let Some(u) = undo.pop() {
        let rec = match u {
            Undo::Post {
                hook,
                target,
                command,
            } => run_step(executor, &hook, Phase::Post, &target, &command).await,
            Undo::Session {
                hook,
                mut session,
                command,
                release,
            } => {
                let started = Instant::now();
                let target = session.target.clone();
                let mut rec = record(
                    &hook,
                    Phase::SessionRelease,
                    &target,
                    &command,
                    jiff::Timestamp::now(),
                );
                tracing::info!(hook = %hook.name, %target, "releasing hook session");
                let sent = if release.is_empty() {
                    Ok(())
                } else {
                    tokio::time::timeout(hook.timeout, session.send(release.as_bytes()))
                        .await
                        .map_err(|_| "release input not accepted in time".to_owned())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                };
                let left = hook.timeout.saturating_sub(started.elapsed());
                let out = session.finish(left).await;
                fill(&mut rec, out, hook.timeout);
                if let (Err(e), None) = (&sent, &rec.error) {
                    rec.error = Some(e.clone());
                }
                rec.duration_ms = started.elapsed().as_millis() as u64;
                rec
            }
        };
        if let Some(e) = &rec.error {
            tracing::warn!(hook = %rec.hook, target = %rec.target, error = %e, "hook release step failed");
            if rec.on_error == OnError::Fail {
                report.failed = true;
            }
        }
        report.records.push(rec);
    }
}
