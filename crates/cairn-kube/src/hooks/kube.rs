//! [`KubeExecutor`]: runs hook commands in pods through the Kubernetes exec API (kube-rs,
//! WebSocket). Environment variables (credentials) travel on stdin, never in the exec URL,
//! which API servers log.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Pod, Secret as KubeSecret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Api;
use kube::api::{AttachParams, ListParams};
use tokio::sync::oneshot;

use super::exec::{EnvVar, ExecError, ExecTarget, ExitFuture, HookExecutor, Secret, Session};
use super::spec::PodSelector;

/// Reads `NAME=value` lines from stdin until an empty line, exports them, then runs the
/// command. Needs `sh` in the container (every database image has one).
const ENV_PREAMBLE: &str =
    r#"while IFS= read -r l; do [ -z "$l" ] && break; export "$l"; done; exec "$@""#;

/// Runs hooks in pods of the cluster `client` talks to.
#[derive(Clone)]
pub struct KubeExecutor {
    client: kube::Client,
}

impl std::fmt::Debug for KubeExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeExecutor").finish_non_exhaustive()
    }
}

impl KubeExecutor {
    /// An executor on `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

/// The exit code in an exec stream's final status: `Success` is 0; a failure carries the code
/// as an `ExitCode` cause.
pub(crate) fn exit_code(status: &Status) -> Option<i32> {
    if status.status.as_deref() == Some("Success") {
        return Some(0);
    }
    status
        .details
        .as_ref()?
        .causes
        .as_ref()?
        .iter()
        .find(|c| c.reason.as_deref() == Some("ExitCode"))
        .and_then(|c| c.message.as_deref()?.trim().parse().ok())
}

#[async_trait]
impl HookExecutor for KubeExecutor {
    async fn targets(&self, selector: &PodSelector) -> Result<Vec<ExecTarget>, ExecError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &selector.namespace);
        let list = api
            .list(&ListParams::default().labels(&selector.selector))
            .await
            .map_err(|e| ExecError::Pods {
                selector: selector.to_string(),
                reason: e.to_string(),
            })?;
        let mut out = Vec::new();
        for pod in list.items {
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            let Some(name) = pod.metadata.name.clone() else {
                continue;
            };
            if !running {
                tracing::warn!(pod = %name, namespace = %selector.namespace, "skipping a pod that is not running");
                continue;
            }
            let first = pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .map(|c| c.name.clone());
            out.push(ExecTarget {
                namespace: selector.namespace.clone(),
                pod: name,
                container: selector.container.clone().or(first),
            });
        }
        out.sort();
        Ok(out)
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
        if command.is_empty() {
            return Err(start_err("empty command".into()));
        }
        let mut preamble = Vec::new();
        for (k, v) in env {
            if k.is_empty() || k.contains(['=', '\n']) || v.expose().contains('\n') {
                return Err(start_err(format!(
                    "environment variable {k:?}: names cannot hold '=' or newlines, values cannot hold newlines"
                )));
            }
            preamble.extend_from_slice(format!("{k}={}\n", v.expose()).as_bytes());
        }
        let argv: Vec<String> = if env.is_empty() {
            command.to_vec()
        } else {
            preamble.push(b'\n');
            ["sh", "-c", ENV_PREAMBLE, "sh"]
                .into_iter()
                .map(str::to_owned)
                .chain(command.iter().cloned())
                .collect()
        };
        let mut params = AttachParams::default()
            .stdin(true)
            .stdout(true)
            .stderr(true);
        if let Some(c) = &target.container {
            params = params.container(c.clone());
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &target.namespace);
        let mut proc = api
            .exec(&target.pod, argv, &params)
            .await
            .map_err(|e| start_err(e.to_string()))?;
        let (Some(stdin), Some(stdout), Some(stderr), Some(status)) = (
            proc.stdin(),
            proc.stdout(),
            proc.stderr(),
            proc.take_status(),
        ) else {
            return Err(start_err("exec streams missing".into()));
        };
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        // The future owns the stream: dropping it (or the kill signal) closes the WebSocket.
        let exit: ExitFuture = Box::pin(async move {
            tokio::select! {
                st = status => st.as_ref().and_then(exit_code),
                _ = kill_rx => {
                    proc.abort();
                    None
                }
            }
        });
        let mut session = Session::from_pipes(
            target.clone(),
            Box::new(stdin),
            Box::new(stdout),
            Box::new(stderr),
            exit,
            kill_tx,
            env.iter().map(|(_, v)| v.clone()).collect(),
        );
        if !preamble.is_empty() {
            session.send(&preamble).await?;
        }
        Ok(session)
    }

    async fn secret(&self, namespace: &str, name: &str, key: &str) -> Result<Secret, ExecError> {
        let err = |reason: String| ExecError::Secret {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let api: Api<KubeSecret> = Api::namespaced(self.client.clone(), namespace);
        let s = api.get(name).await.map_err(|e| err(e.to_string()))?;
        let bytes = s
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.clone())
            .or_else(|| {
                s.string_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .map(|v| v.clone().into_bytes())
            })
            .ok_or_else(|| err("no such key".into()))?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| err("value is not UTF-8".into()))
    }
}
