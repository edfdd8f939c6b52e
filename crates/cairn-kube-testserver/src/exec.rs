//! `pods/exec`: the WebSocket channel protocol (`v5.channel.k8s.io`, `v4.channel.k8s.io`)
//! in front of an [`ExecHandler`] the test installs.
//!
//! Frames carry a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 status (a JSON `Status`
//! ending the session), 4 resize (ignored), 255 close (v5: `[255, 0]` closes stdin).

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Message, handshake::derive_accept_key, protocol::Role};

use crate::error::ApiError;
use crate::router::{Body, Query, full};
use crate::server::Shared;

/// What a client asked to run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExecRequest {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container (the first one when the client named none).
    pub container: String,
    /// argv.
    pub command: Vec<String>,
    /// Whether the client attached stdin.
    pub stdin: bool,
    /// The pod object at the time of the request.
    pub pod_object: Value,
}

/// The streams of one exec session.
#[derive(Debug)]
#[non_exhaustive]
pub struct ExecIo {
    /// Data the client writes to stdin; ends when the client closes stdin.
    pub stdin: mpsc::Receiver<Bytes>,
    /// Sends to the client's stdout.
    pub stdout: mpsc::Sender<Bytes>,
    /// Sends to the client's stderr.
    pub stderr: mpsc::Sender<Bytes>,
}

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecResult {
    /// Exit code; non-zero is reported as `NonZeroExitCode`.
    pub exit_code: i32,
    /// A failure message instead of an exit code (e.g. "executable not found").
    pub error: Option<String>,
}

impl ExecResult {
    /// Exited with `code`.
    pub fn exited(code: i32) -> Self {
        Self {
            exit_code: code,
            error: None,
        }
    }

    /// Could not run at all.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            exit_code: 126,
            error: Some(message.into()),
        }
    }
}

/// Output of a simple (closure) exec handler.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecOutput {
    /// Exit code.
    pub exit_code: i32,
    /// Bytes for stdout.
    pub stdout: Vec<u8>,
    /// Bytes for stderr.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// An output with the given code and streams.
    pub fn new(exit_code: i32, stdout: impl Into<Vec<u8>>, stderr: impl Into<Vec<u8>>) -> Self {
        Self {
            exit_code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }
}

/// Decides what an exec runs.
#[async_trait::async_trait]
pub trait ExecHandler: Send + Sync + 'static {
    /// Runs `request`, streaming through `io`, and reports how it ended.
    async fn exec(&self, request: ExecRequest, io: ExecIo) -> ExecResult;
}

/// A closure given the request and the whole stdin (read to its end first).
#[async_trait::async_trait]
impl<F> ExecHandler for F
where
    F: Fn(&ExecRequest, &[u8]) -> ExecOutput + Send + Sync + 'static,
{
    async fn exec(&self, request: ExecRequest, mut io: ExecIo) -> ExecResult {
        let mut input = Vec::new();
        while let Some(chunk) = io.stdin.recv().await {
            input.extend_from_slice(&chunk);
        }
        let out = self(&request, &input);
        if !out.stdout.is_empty() {
            let _ = io.stdout.send(Bytes::from(out.stdout)).await;
        }
        if !out.stderr.is_empty() {
            let _ = io.stderr.send(Bytes::from(out.stderr)).await;
        }
        ExecResult::exited(out.exit_code)
    }
}

/// Runs the command as a local process (argv as given, stdin/stdout/stderr streamed), as if
/// the pod were this machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalProcess;

#[async_trait::async_trait]
impl ExecHandler for LocalProcess {
    async fn exec(&self, request: ExecRequest, io: ExecIo) -> ExecResult {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Some((program, args)) = request.command.split_first() else {
            return ExecResult::failed("empty command");
        };
        let mut child = match tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => return ExecResult::failed(format!("starting {program:?}: {e}")),
        };
        let ExecIo {
            mut stdin,
            stdout,
            stderr,
        } = io;
        let child_in = child.stdin.take();
        let feed = async move {
            if let Some(mut pipe) = child_in {
                while let Some(chunk) = stdin.recv().await {
                    if pipe.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
            }
        };
        let pump = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>,
                    tx: mpsc::Sender<Bytes>| async move {
            let Some(mut pipe) = pipe else { return };
            let mut buf = vec![0_u8; 16 * 1024];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 || tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                    break;
                }
            }
        };
        let out = pump(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            stdout,
        );
        let err = pump(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            stderr,
        );
        let status = async {
            tokio::join!(out, err);
            child.wait().await
        };
        tokio::pin!(status);
        tokio::pin!(feed);
        let mut stdin_done = false;
        // Stdin feeding ends when the client closes stdin (dropping the pipe gives the
        // process its EOF) or with the process.
        let status = loop {
            tokio::select! {
                s = &mut status => break s,
                () = &mut feed, if !stdin_done => stdin_done = true,
            }
        };
        match status {
            Ok(s) => ExecResult::exited(s.code().unwrap_or(128)),
            Err(e) => ExecResult::failed(format!("waiting for {program:?}: {e}")),
        }
    }
}

fn status_frame(command: &[String], result: &ExecResult) -> Message {
    let status = match (&result.error, result.exit_code) {
        (None, 0) => json!({ "metadata": {}, "status": "Success" }),
        (Some(message), _) => json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "InternalError",
        }),
        (None, code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"),
            "reason": "NonZeroExitCode",
            "details": { "causes": [{ "reason": "ExitCode", "message": code.to_string() }] },
        }),
    };
    let mut frame = vec![3_u8];
    frame.extend_from_slice(status.to_string().as_bytes());
    Message::Binary(Bytes::from(frame))
}

/// Answers the upgrade request and runs the session on the upgraded connection.
///
/// # Errors
/// 404 when the pod is missing, 400 on a bad container or a request that is no WebSocket
/// upgrade, 500 when no exec handler is installed.
pub(crate) fn exec(
    shared: &Arc<Shared>,
    mut req: Request<Incoming>,
    ns: &str,
    pod: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let pod_object = {
        let state = shared.store.state.lock();
        let rt = state
            .resource_any_version("", "pods")
            .cloned()
            .ok_or_else(|| ApiError::no_route("pods"))?;
        crate::ops::get(&state, &rt, ns, pod)?
    };
    let containers: Vec<String> = pod_object
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let container = match query.get("container") {
        Some(c) if containers.iter().any(|x| x == c) => c.to_string(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {pod}"
            )));
        }
        None => containers.first().cloned().unwrap_or_default(),
    };
    let command: Vec<String> = query
        .all("command")
        .into_iter()
        .map(str::to_string)
        .collect();
    let handler = shared.exec.read().clone().ok_or_else(|| {
        ApiError::internal("the test server has no exec handler (TestServer::on_exec)")
    })?;
    let key = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
        .ok_or_else(|| ApiError::bad_request("exec needs a WebSocket upgrade"))?;
    let offered = req
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let protocol = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
        .into_iter()
        .find(|p| offered.split(',').any(|o| o.trim() == *p))
        .ok_or_else(|| {
            ApiError::bad_request(format!("unsupported exec subprotocols {offered:?}"))
        })?;
    let request = ExecRequest {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        container,
        command,
        stdin: matches!(query.get("stdin"), Some("true" | "1")),
        pod_object,
    };
    let shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(&mut req).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "test server exec upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        tokio::select! {
            () = session(ws, handler, request) => {},
            () = shutdown.cancelled() => {},
        }
    });
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        header::HeaderValue::from_static(protocol),
    );
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        header::HeaderValue::from_str(&key).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    Ok(res)
}

/// Aborts the handler's task when the session ends early (the client went away).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(data);
    Message::Binary(Bytes::from(frame))
}

async fn session<S>(ws: WebSocketStream<S>, handler: Arc<dyn ExecHandler>, request: ExecRequest)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut source) = ws.split();
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(16);
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(16);
    let (err_tx, mut err_rx) = mpsc::channel::<Bytes>(16);
    let command = request.command.clone();
    let mut in_tx = request.stdin.then_some(in_tx);
    // The handler runs on a task of its own: while this loop waits to hand it a stdin frame
    // (the channel is bounded), the handler must go on draining that channel.
    let run = tokio::spawn(async move {
        handler
            .exec(
                request,
                ExecIo {
                    stdin: in_rx,
                    stdout: out_tx,
                    stderr: err_tx,
                },
            )
            .await
    });
    let _abort = AbortOnDrop(run.abort_handle());
    tokio::pin!(run);
    let mut result = None;
    let (mut out_open, mut err_open, mut source_open) = (true, true, true);
    while result.is_none() || out_open || err_open {
        tokio::select! {
            r = &mut run, if result.is_none() => {
                result = Some(r.unwrap_or_else(|e| ExecResult::failed(format!("exec handler failed: {e}"))));
            }
            chunk = out_rx.recv(), if out_open => match chunk {
                Some(chunk) => {
                    if sink.send(frame(1, &chunk)).await.is_err() { return; }
                }
                None => out_open = false,
            },
            chunk = err_rx.recv(), if err_open => match chunk {
                Some(chunk) => {
                    if sink.send(frame(2, &chunk)).await.is_err() { return; }
                }
                None => err_open = false,
            },
            incoming = source.next(), if source_open => match incoming {
                Some(Ok(Message::Binary(data))) => match data.first() {
                    Some(0) => {
                        if let Some(tx) = &in_tx
                            && data.len() > 1
                        {
                            let _ = tx.send(data.slice(1..)).await;
                        }
                    }
                    Some(255) if data.get(1) == Some(&0) => in_tx = None,
                    _ => {}
                },
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    in_tx = None;
                    source_open = false;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    let result = result.unwrap_or_else(|| ExecResult::failed("exec handler did not finish"));
    let _ = sink.send(status_frame(&command, &result)).await;
    let _ = sink.close().await;
}
