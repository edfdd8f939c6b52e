//! The executor boundary: where a hook's command runs ([`HookExecutor`]) and the live process
//! it starts ([`Session`]), with its output captured and bounded.

use std::fmt::{self, Write as _};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, oneshot};

use super::spec::PodSelector;

/// Bytes of each output stream kept in a record: the first and the last this many.
pub const OUTPUT_LIMIT: usize = 16 * 1024;

/// One container a hook runs in. Outside Kubernetes (the local executor) `pod` names the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ExecTarget {
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name (`None`: the pod's first container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl fmt::Display for ExecTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.pod)?;
        if let Some(c) = &self.container {
            write!(f, ":{c}")?;
        }
        Ok(())
    }
}

/// A credential or other secret value: never printed by `Debug`, never logged, and blanked
/// out of captured output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value. Pass it to the process only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An environment variable given to a hook's process.
pub type EnvVar = (String, Secret);

/// What went wrong starting or talking to a process. A command that runs and exits non-zero,
/// or is killed on timeout, is not an error: see [`ExecOutput`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The command could not be started.
    #[error("cannot start {command:?} in {target}: {reason}")]
    Start {
        /// argv\[0\].
        command: String,
        /// Where.
        target: ExecTarget,
        /// Why.
        reason: String,
    },
    /// The pods of a selector could not be listed.
    #[error("cannot list pods for {selector}: {reason}")]
    Pods {
        /// The selector, as written.
        selector: String,
        /// Why.
        reason: String,
    },
    /// A secret reference could not be resolved.
    #[error("cannot read secret {namespace}/{name} key {key}: {reason}")]
    Secret {
        /// Namespace.
        namespace: String,
        /// Secret name.
        name: String,
        /// Key inside it.
        key: String,
        /// Why.
        reason: String,
    },
    /// Writing to the process's stdin failed (it exited or the stream broke).
    #[error("cannot write to the stdin of {target}: {source}")]
    Stdin {
        /// Where.
        target: ExecTarget,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A session did not print its ready marker in time, or exited before printing it.
    #[error("session in {target} not ready: {reason}")]
    NotReady {
        /// Where.
        target: ExecTarget,
        /// Why (timeout, exit, and the tail of stderr).
        reason: String,
    },
}

/// How a process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    /// Exit code; `None` when it was killed or the executor could not tell.
    pub exit_code: Option<i32>,
    /// Killed because it ran past its timeout.
    pub timed_out: bool,
    /// Captured stdout (first and last [`OUTPUT_LIMIT`] bytes, lossy UTF-8, secrets blanked).
    pub stdout: String,
    /// Captured stderr (same rules).
    pub stderr: String,
}

impl ExecOutput {
    /// Exited with code 0 in time.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// The boxed future that resolves with a process's exit code (`None`: unknown or killed).
pub type ExitFuture = Pin<Box<dyn Future<Output = Option<i32>> + Send>>;

/// Runs hook commands somewhere: in pods through the Kubernetes exec API
/// ([`super::KubeExecutor`]) or as local processes ([`super::LocalExecutor`]).
#[async_trait]
pub trait HookExecutor: Send + Sync {
    /// The containers a selector matches, in a stable order.
    async fn targets(&self, selector: &PodSelector) -> Result<Vec<ExecTarget>, ExecError>;

    /// Starts `command` in `target` with stdin, stdout and stderr attached, and returns at
    /// once. The process lives until [`Session::finish`] or until the session is dropped
    /// (which kills it, or closes the stream so it gets EOF).
    async fn open(
        &self,
        target: &ExecTarget,
        command: &[String],
        env: &[EnvVar],
    ) -> Result<Session, ExecError>;

    /// Reads key `key` of Secret `namespace/name`.
    async fn secret(&self, namespace: &str, name: &str, key: &str) -> Result<Secret, ExecError>;

    /// Runs `command` to completion: feeds it `stdin`, closes stdin, and waits at most
    /// `timeout` in all (then kills it and reports `timed_out`).
    async fn run(
        &self,
        target: &ExecTarget,
        command: &[String],
        env: &[EnvVar],
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<ExecOutput, ExecError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut session = self.open(target, command, env).await?;
        if !stdin.is_empty() {
            let sent = tokio::time::timeout_at(deadline, session.send(stdin)).await;
            if sent.is_err() {
                return Ok(session.kill().await);
            }
            // A process that exits without reading its stdin is judged by its exit code.
            if let Ok(Err(e)) = sent {
                tracing::debug!(target = %session.target, error = &e as &dyn std::error::Error, "stdin not fully written");
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        Ok(session.finish(left).await)
    }
}

/// Bounded capture of one output stream: the head and the tail, and a count.
#[derive(Default)]
struct Capture {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: u64,
    closed: bool,
}

impl Capture {
    fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.head.len() < OUTPUT_LIMIT {
            let n = data.len().min(OUTPUT_LIMIT - self.head.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        self.tail.extend_from_slice(data);
        if self.tail.len() > 2 * OUTPUT_LIMIT {
            let cut = self.tail.len() - OUTPUT_LIMIT;
            self.tail.drain(..cut);
        }
    }

    fn contains(&self, marker: &[u8]) -> bool {
        let has = |h: &[u8]| h.windows(marker.len()).any(|w| w == marker);
        !marker.is_empty() && (has(&self.head) || has(&self.tail))
    }

    fn render(&self, redact: &[Secret]) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        let tail_start = self.tail.len().saturating_sub(OUTPUT_LIMIT);
        let skipped = self.total - self.head.len() as u64 - (self.tail.len() - tail_start) as u64;
        if skipped > 0 {
            let _ = write!(out, "\n[… {skipped} bytes left out …]\n");
        }
        out.push_str(&String::from_utf8_lossy(&self.tail[tail_start..]));
        for s in redact {
            if !s.expose().is_empty() {
                out = out.replace(s.expose(), "***");
            }
        }
        out
    }
}

/// One stream's capture, shared with the task that reads it.
#[derive(Clone, Default)]
struct Shared {
    capture: Arc<Mutex<Capture>>,
    changed: Arc<Notify>,
}

impl Shared {
    fn spawn_reader(&self, mut reader: Box<dyn AsyncRead + Send + Unpin>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            loop {
                let n = reader.read(&mut buf).await.unwrap_or(0);
                let mut c = me.capture.lock();
                if n == 0 {
                    c.closed = true;
                } else {
                    c.push(&buf[..n]);
                }
                drop(c);
                me.changed.notify_waiters();
                if n == 0 {
                    break;
                }
            }
        });
    }
}

/// A process started by a [`HookExecutor`]: its stdin stays open for as long as the session
/// lives, so a database client can hold a lock across a snapshot. Dropping it kills the
/// process (local) or closes the exec stream (Kubernetes).
pub struct Session {
    /// Where the process runs.
    pub target: ExecTarget,
    stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    stdout: Shared,
    stderr: Shared,
    exit: Option<ExitFuture>,
    kill: Option<oneshot::Sender<()>>,
    redact: Vec<Secret>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Builds a session from a started process's pipes. `exit` resolves with the exit code;
    /// it must stop the process when `kill` fires (or is dropped) and when it is itself
    /// dropped. Values in `redact` are blanked out of captured output. The stdout and stderr
    /// readers are drained by background tasks, so a chatty process never blocks.
    pub fn from_pipes(
        target: ExecTarget,
        stdin: Box<dyn AsyncWrite + Send + Unpin>,
        stdout: Box<dyn AsyncRead + Send + Unpin>,
        stderr: Box<dyn AsyncRead + Send + Unpin>,
        exit: ExitFuture,
        kill: oneshot::Sender<()>,
        redact: Vec<Secret>,
    ) -> Self {
        let (out, err) = (Shared::default(), Shared::default());
        out.spawn_reader(stdout);
        err.spawn_reader(stderr);
        Self {
            target,
            stdin: Some(stdin),
            stdout: out,
            stderr: err,
            exit: Some(exit),
            kill: Some(kill),
            redact,
        }
    }

    /// Writes to the process's stdin and flushes.
    ///
    /// # Errors
    /// `Stdin` when the process closed its stdin (usually: it exited).
    pub async fn send(&mut self, data: &[u8]) -> Result<(), ExecError> {
        let target = &self.target;
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(ExecError::Stdin {
                target: target.clone(),
                source: std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed"),
            });
        };
        let r = async {
            stdin.write_all(data).await?;
            stdin.flush().await
        }
        .await;
        r.map_err(|source| ExecError::Stdin {
            target: target.clone(),
            source,
        })
    }

    /// Waits until `marker` appears on stdout.
    ///
    /// # Errors
    /// `NotReady` when stdout ends first or `timeout` passes; the reason carries the tail
    /// of stderr.
    pub async fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<(), ExecError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.stdout.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let c = self.stdout.capture.lock();
                if c.contains(marker.as_bytes()) {
                    return Ok(());
                }
                if c.closed {
                    return Err(self.not_ready("the process ended its output first"));
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(self.not_ready(&format!("no ready marker within {timeout:?}")));
            }
        }
    }

    fn not_ready(&self, why: &str) -> ExecError {
        let err = self.stderr.capture.lock().render(&self.redact);
        let err = err.trim();
        let tail: String = err
            .chars()
            .rev()
            .take(500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        ExecError::NotReady {
            target: self.target.clone(),
            reason: if tail.is_empty() {
                why.to_owned()
            } else {
                format!("{why}; stderr: {tail}")
            },
        }
    }

    /// Closes stdin and waits at most `timeout` for the process to exit; kills it after.
    pub async fn finish(mut self, timeout: Duration) -> ExecOutput {
        if let Some(mut stdin) = self.stdin.take() {
            // Best effort: a process that already exited has nothing to read.
            let _ = tokio::time::timeout(timeout, stdin.shutdown()).await;
        }
        let Some(exit) = self.exit.take() else {
            return self.output(None, false).await;
        };
        if let Ok(code) = tokio::time::timeout(timeout, exit).await {
            self.output(code, false).await
        } else {
            if let Some(k) = self.kill.take() {
                let _ = k.send(());
            }
            self.output(None, true).await
        }
    }

    /// Kills the process now and reports it as timed out.
    pub async fn kill(mut self) -> ExecOutput {
        self.stdin = None;
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(exit) = self.exit.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), exit).await;
        }
        self.output(None, true).await
    }

    /// Collects the output once the streams end (briefly waiting for the readers to drain:
    /// a killed shell's children may still hold the pipes).
    fn output(
        &self,
        exit_code: Option<i32>,
        timed_out: bool,
    ) -> impl Future<Output = ExecOutput> + Send + use<> {
        let (stdout, stderr, redact) = (
            self.stdout.clone(),
            self.stderr.clone(),
            self.redact.clone(),
        );
        collect(stdout, stderr, redact, exit_code, timed_out)
    }
}

/// Waits briefly for both readers to end, then renders the captures.
async fn collect(
    stdout: Shared,
    stderr: Shared,
    redact: Vec<Secret>,
    exit_code: Option<i32>,
    timed_out: bool,
) -> ExecOutput {
    {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        for s in [&stdout, &stderr] {
            loop {
                let changed = s.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if s.capture.lock().closed {
                    break;
                }
                if tokio::time::timeout_at(deadline, changed).await.is_err() {
                    break;
                }
            }
        }
        ExecOutput {
            exit_code,
            timed_out,
            stdout: stdout.capture.lock().render(&redact),
            stderr: stderr.capture.lock().render(&redact),
        }
    }
}
