//! [`LocalExecutor`]: runs hook commands as local processes (sources outside Kubernetes, and
//! the database tests). Each process gets its own process group, so a timeout kills a shell
//! and everything it started.

use std::process::Stdio;

use async_trait::async_trait;
use rustix::process::{Pid, Signal, kill_process_group};
use tokio::sync::oneshot;

use super::exec::{EnvVar, ExecError, ExecTarget, ExitFuture, HookExecutor, Secret, Session};
use super::spec::PodSelector;

/// Runs commands on this machine. Every selector matches exactly one target, named
/// `local` (the selector's namespace and container are kept in the record).
#[derive(Debug, Clone, Default)]
pub struct LocalExecutor {
    _private: (),
}

impl LocalExecutor {
    /// A local executor.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Kills the process group when dropped, unless the process was reaped.
struct GroupGuard {
    pid: Option<Pid>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            // The group may be gone already; nothing else to do then.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[async_trait]
impl HookExecutor for LocalExecutor {
    async fn targets(&self, selector: &PodSelector) -> Result<Vec<ExecTarget>, ExecError> {
        Ok(vec![ExecTarget {
            namespace: selector.namespace.clone(),
            pod: "local".to_owned(),
            container: selector.container.clone(),
        }])
    }

    async fn open(
        &self,
        target: &ExecTarget,
        command: &[String],
        env: &[EnvVar],
    ) -> Result<Session, ExecError> {
        let start_err = |reason: String| ExecError::Start {
            command: command.first().cloned().unwrap_or_default(),
            target: target.clone(),
            reason,
        };
        let Some((program, args)) = command.split_first() else {
            return Err(start_err("empty command".into()));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v.expose())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| start_err(e.to_string()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(start_err("pipes missing".into()));
        };
        let mut guard = GroupGuard {
            pid: child.id().and_then(|id| Pid::from_raw(id.cast_signed())),
        };
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let exit: ExitFuture = Box::pin(async move {
            let status = tokio::select! {
                s = child.wait() => s,
                _ = kill_rx => {
                    guard.kill();
                    child.wait().await
                }
            };
            // Whatever the command left behind in its group dies with it: a hook ends with
            // its process. (The group id stays reserved while any member lives.)
            guard.kill();
            status.ok().and_then(|s| s.code())
        });
        Ok(Session::from_pipes(
            target.clone(),
            Box::new(stdin),
            Box::new(stdout),
            Box::new(stderr),
            exit,
            kill_tx,
            env.iter().map(|(_, v)| v.clone()).collect(),
        ))
    }

    async fn secret(&self, namespace: &str, name: &str, key: &str) -> Result<Secret, ExecError> {
        Err(ExecError::Secret {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
            reason: "secret references need Kubernetes; use `fromEnv` outside a cluster".into(),
        })
    }
}
