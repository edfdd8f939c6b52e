//! Prometheus metrics of the daemon, and the HTTP endpoint that serves them.
//!
//! The endpoint answers `GET /metrics` with the text exposition format and closes the
//! connection. It is a few lines on a tokio listener rather than an HTTP framework: a
//! scrape is one small GET, and the daemon should not grow a web stack for it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cairn_repo::CancellationToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one number of a schedule.
type Get = fn(&ScheduleMetrics) -> Option<f64>;

/// The numbers of one schedule.
#[derive(Debug, Default, Clone)]
pub(crate) struct ScheduleMetrics {
    pub(crate) runs_total: u64,
    pub(crate) failures_total: u64,
    pub(crate) skipped_total: u64,
    pub(crate) missed_total: u64,
    pub(crate) running: bool,
    pub(crate) last_success_timestamp: Option<f64>,
    pub(crate) last_duration_seconds: Option<f64>,
    pub(crate) last_bytes_read: Option<u64>,
    pub(crate) last_bytes_added: Option<u64>,
    pub(crate) next_run_timestamp: Option<f64>,
}

/// All metrics, shared between the scheduler and the endpoint.
#[derive(Debug, Default, Clone)]
pub(crate) struct Metrics(Arc<Mutex<BTreeMap<String, ScheduleMetrics>>>);

impl Metrics {
    /// Changes the numbers of one schedule.
    pub(crate) fn update(&self, schedule: &str, f: impl FnOnce(&mut ScheduleMetrics)) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(m.entry(schedule.to_string()).or_default());
    }

    /// Drops the numbers of schedules that no longer exist.
    pub(crate) fn retain(&self, names: &[String]) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        m.retain(|k, _| names.contains(k));
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::from(
            "# HELP cairn_up 1 while the cairn daemon runs.\n# TYPE cairn_up gauge\ncairn_up 1\n",
        );
        let families: [(&str, &str, &str, Get); 10] = [
            (
                "cairn_schedule_runs_total",
                "counter",
                "Runs started.",
                |s| Some(s.runs_total as f64),
            ),
            (
                "cairn_schedule_failures_total",
                "counter",
                "Runs that failed (backup or forget).",
                |s| Some(s.failures_total as f64),
            ),
            (
                "cairn_schedule_skipped_total",
                "counter",
                "Firings skipped because the previous run was still active.",
                |s| Some(s.skipped_total as f64),
            ),
            (
                "cairn_schedule_missed_total",
                "counter",
                "Firings missed while the daemon was not running.",
                |s| Some(s.missed_total as f64),
            ),
            (
                "cairn_schedule_running",
                "gauge",
                "1 while a run is active.",
                |s| Some(f64::from(u8::from(s.running))),
            ),
            (
                "cairn_schedule_last_success_timestamp_seconds",
                "gauge",
                "End of the last successful run (Unix time).",
                |s| s.last_success_timestamp,
            ),
            (
                "cairn_schedule_last_duration_seconds",
                "gauge",
                "Duration of the last finished run.",
                |s| s.last_duration_seconds,
            ),
            (
                "cairn_schedule_last_bytes_read",
                "gauge",
                "Bytes the last successful backup read.",
                |s| s.last_bytes_read.map(|b| b as f64),
            ),
            (
                "cairn_schedule_last_bytes_added",
                "gauge",
                "New bytes the last successful backup added to the repository.",
                |s| s.last_bytes_added.map(|b| b as f64),
            ),
            (
                "cairn_schedule_next_run_timestamp_seconds",
                "gauge",
                "When the schedule fires next (Unix time).",
                |s| s.next_run_timestamp,
            ),
        ];
        for (name, kind, help, get) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (schedule, s) in m.iter() {
                if let Some(v) = get(s) {
                    let _ = writeln!(out, "{name}{{schedule=\"{}\"}} {v}", escape(schedule));
                }
            }
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds `addr` (so a taken port fails at start) and serves until `stop`.
pub(crate) async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    stop: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                () = stop.cancelled() => return,
            };
            match conn {
                Ok((stream, _)) => {
                    let m = metrics.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &m).await {
                            tracing::debug!(
                                error = &e as &dyn std::error::Error,
                                "metrics request"
                            );
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(
                        error = &e as &dyn std::error::Error,
                        "accepting a metrics connection"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((local, handle))
}

/// Reads one request head (at most 8 KiB, 5 s) and answers it.
async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", metrics.render()),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "not found; metrics are at /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "only GET\n".into()),
    };
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        resp.push_str(&body);
    }
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}
