//! `cairn daemon`: runs the schedules and serves their metrics.
//!
//! Each run is a child process of this binary: `cairn backup …`, then, when the schedule
//! keeps only some snapshots, `cairn forget --keep-… --filter-source ID --prune`. A child
//! records its own operation in the local state (tagged with the schedule through
//! `CAIRN_SCHEDULE`), so `cairn status` shows scheduled runs like any other; the daemon
//! records what no child does: missed firings and skipped (overlapping) ones.
//!
//! SIGTERM or SIGINT stops planning, passes SIGINT to running children (a backup then
//! finishes the uploads of what it read and stops, leaving the repository consistent),
//! waits for them, and exits 0.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn_repo::CancellationToken;
use cairn_state::{
    Clock, Decision, NewOperation, OpState, OperationKind, Planner, Schedule, StateDb, SystemClock,
};
use jiff::Timestamp;
use tokio::task::JoinHandle;

use crate::args::{DaemonArgs, GlobalArgs};
use crate::exit::ExitStatus;
use crate::metrics::{self, Metrics};
use crate::printer::Printer;
use crate::record::SCHEDULE_ENV;
use crate::state;

/// How long shutdown waits for running children after passing them SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_mins(2);

pub(crate) async fn run(
    g: &GlobalArgs,
    a: &DaemonArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stop = CancellationToken::new();
    stop_on_signals(&stop)?;
    let db = Arc::new(state::open()?);
    let exe = std::env::current_exe().context("finding this program to run schedules")?;
    let metrics = Metrics::default();
    if let Some(addr) = a.metrics_listen {
        let (local, _) = metrics::serve(addr, metrics.clone(), stop.clone())
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
        printer.info(&format!("metrics at http://{local}/metrics"));
    }
    printer.info(&format!(
        "daemon started (pid {}); state at {}",
        std::process::id(),
        db.path().display()
    ));
    let mut d = Daemon {
        db,
        exe,
        forward: forwarded_flags(g),
        metrics,
        printer: printer.clone(),
        running: HashMap::new(),
    };
    let clock = SystemClock;
    while !stop.is_cancelled() {
        d.reap();
        let wake = match d.tick(clock.now()) {
            Ok(w) => w,
            Err(e) => {
                printer.error(&format!("reading the schedules: {e:#}"));
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wake) => {}
            () = stop.cancelled() => {}
        }
    }
    d.shutdown().await;
    printer.info("daemon stopped");
    Ok(ExitStatus::Success)
}

/// Global flags the children need: the passphrase file and the thread count (the
/// repository comes from the schedule, the passphrase variable from the environment).
fn forwarded_flags(g: &GlobalArgs) -> Vec<OsString> {
    let mut f = Vec::new();
    if let Some(p) = &g.password_file {
        f.push("--password-file".into());
        f.push(std::path::absolute(p).unwrap_or_else(|_| p.clone()).into());
    }
    if let Some(t) = g.threads {
        f.push("--threads".into());
        f.push(t.to_string().into());
    }
    f
}

/// A run in progress.
struct Running {
    /// The pid of the child it waits for (0 between children).
    pid: Arc<AtomicU32>,
    handle: JoinHandle<()>,
}

struct Daemon {
    db: Arc<StateDb>,
    exe: PathBuf,
    forward: Vec<OsString>,
    metrics: Metrics,
    printer: Printer,
    running: HashMap<String, Running>,
}

impl Daemon {
    /// Forgets finished runs.
    fn reap(&mut self) {
        self.running.retain(|_, r| !r.handle.is_finished());
    }

    /// Decides every schedule once; returns how long to sleep.
    fn tick(&mut self, now: Timestamp) -> anyhow::Result<Duration> {
        let schedules = self.db.schedules()?;
        let names: Vec<String> = schedules.iter().map(|s| s.name.clone()).collect();
        self.metrics.retain(&names);
        let mut wake = Duration::from_secs(1);
        for s in schedules {
            let active = self.running.contains_key(&s.name);
            let decision = match Planner::decide(&s, now, active) {
                Ok(d) => d,
                Err(e) => {
                    self.printer.error(&format!("schedule {}: {e:#}", s.name));
                    continue;
                }
            };
            let next = match &decision {
                Decision::Plan { next }
                | Decision::Wait { next }
                | Decision::Run { next, .. }
                | Decision::Skip { next, .. } => Some(*next),
                _ => None,
            };
            self.metrics.update(&s.name, |m| {
                m.next_run_timestamp = next.map(|t| t.as_millisecond() as f64 / 1000.0);
            });
            if let Some(n) = next {
                let until = n.duration_since(now).as_secs_f64().max(0.02);
                wake = wake.min(Duration::from_secs_f64(until));
            }
            if let Err(e) = self.apply(&s, &decision, now) {
                self.printer.error(&format!("schedule {}: {e:#}", s.name));
            }
        }
        Ok(wake)
    }

    fn apply(&mut self, s: &Schedule, d: &Decision, now: Timestamp) -> anyhow::Result<()> {
        match d {
            Decision::Plan { next } => self.db.set_next_due(&s.name, *next)?,
            Decision::Skip { due, next } => {
                self.db.set_next_due(&s.name, *next)?;
                self.printer.warn(&format!(
                    "schedule {}: skipped the run due at {due}: the previous run is still active",
                    s.name
                ));
                self.record(
                    s,
                    OpState::Skipped,
                    "skipped: previous run still active",
                    now,
                );
                self.metrics.update(&s.name, |m| m.skipped_total += 1);
            }
            Decision::Run {
                due,
                missed,
                full,
                next,
                ..
            } => {
                if *missed > 0 {
                    let msg = format!(
                        "missed: {missed} runs after the one due at {due} did not happen (the \
                         daemon was not running); running once now"
                    );
                    self.printer.warn(&format!("schedule {}: {msg}", s.name));
                    self.record(s, OpState::Skipped, &msg, now);
                    self.metrics.update(&s.name, |m| m.missed_total += missed);
                }
                let run = self.db.start_run(&s.name, *next)?;
                self.printer.info(&format!(
                    "schedule {}: run {} (due {due}){}",
                    s.name,
                    run.number,
                    if *full { ", full" } else { "" }
                ));
                self.start(s.clone(), *full);
            }
            _ => {}
        }
        Ok(())
    }

    /// Records a firing that started no child.
    fn record(&self, s: &Schedule, state: OpState, msg: &str, now: Timestamp) {
        let location = s.job.repo.clone().unwrap_or_else(|| "(default)".into());
        let mut op = NewOperation::new(OperationKind::Backup, s.job.sources.join(" "), &location);
        op.schedule = Some(s.name.clone());
        if let Err(e) = self.db.begin_operation_at(&op, state, Some(msg), now) {
            self.printer
                .warn(&format!("schedule {}: cannot record: {e:#}", s.name));
        }
    }

    fn start(&mut self, s: Schedule, full: bool) {
        let pid = Arc::new(AtomicU32::new(0));
        let job = Job {
            exe: self.exe.clone(),
            forward: self.forward.clone(),
            pid: pid.clone(),
        };
        let (metrics, printer) = (self.metrics.clone(), self.printer.clone());
        let name = s.name.clone();
        metrics.update(&name, |m| {
            m.runs_total += 1;
            m.running = true;
        });
        let handle = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let outcome = job.run(&s, full);
            let secs = started.elapsed().as_secs_f64();
            metrics.update(&s.name, |m| {
                m.running = false;
                m.last_duration_seconds = Some(secs);
                match &outcome {
                    Ok(o) => {
                        m.last_success_timestamp =
                            Some(Timestamp::now().as_millisecond() as f64 / 1000.0);
                        m.last_bytes_read = Some(o.bytes_read);
                        m.last_bytes_added = Some(o.bytes_added);
                    }
                    Err(_) => m.failures_total += 1,
                }
            });
            match outcome {
                Ok(_) => printer.info(&format!("schedule {}: run done in {secs:.1}s", s.name)),
                Err(e) => printer.error(&format!("schedule {}: run failed: {e:#}", s.name)),
            }
        });
        self.running.insert(name, Running { pid, handle });
    }

    /// Passes SIGINT to the children and waits for them.
    async fn shutdown(&mut self) {
        if self.running.is_empty() {
            return;
        }
        self.printer.info(&format!(
            "stopping: interrupting {} running schedule(s)",
            self.running.len()
        ));
        for r in self.running.values() {
            interrupt(r.pid.load(Ordering::Relaxed));
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for (name, r) in self.running.drain() {
            if tokio::time::timeout_at(deadline, r.handle).await.is_err() {
                self.printer
                    .warn(&format!("schedule {name}: the run did not stop in time"));
            }
        }
    }
}

/// What a scheduled run did.
struct JobOutcome {
    bytes_read: u64,
    bytes_added: u64,
}

/// Runs the children of one scheduled run (on a blocking thread).
struct Job {
    exe: PathBuf,
    forward: Vec<OsString>,
    pid: Arc<AtomicU32>,
}

impl Job {
    fn run(&self, s: &Schedule, full: bool) -> anyhow::Result<JobOutcome> {
        let mut backup = self.command(s);
        backup
            .arg("backup")
            .arg("--json")
            .args(s.job.backup_args(full));
        let (code, summary) = self.wait(backup, "backup")?;
        // 1: finished with problems (unreadable files): the snapshot exists.
        if code != 0 && code != 1 {
            anyhow::bail!("backup exited with status {code}");
        }
        let summary = summary.context("the backup printed no summary")?;
        let get = |k: &str| summary["summary"][k].as_u64().unwrap_or(0);
        let outcome = JobOutcome {
            bytes_read: get("bytes_read"),
            bytes_added: get("bytes_added"),
        };
        if !s.keep.is_empty() {
            let identity = summary["source"]["identity"]
                .as_str()
                .context("the backup summary names no source identity")?
                .to_string();
            let mut forget = self.command(s);
            forget.arg("forget").args(s.keep.flags());
            forget.arg("--filter-source").arg(identity).arg("--prune");
            if let Some(r) = &s.job.repo {
                forget.arg("--repo").arg(r);
            }
            let (code, _) = self.wait(forget, "forget")?;
            if code != 0 {
                anyhow::bail!("forget exited with status {code}");
            }
        }
        Ok(outcome)
    }

    fn command(&self, s: &Schedule) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(&self.forward)
            .env(SCHEDULE_ENV, &s.name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        c
    }

    /// Runs `cmd`; returns its exit code (128+signal when killed) and its last JSON line
    /// of type `summary`.
    fn wait(
        &self,
        mut cmd: Command,
        what: &str,
    ) -> anyhow::Result<(i32, Option<serde_json::Value>)> {
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        self.pid.store(child.id(), Ordering::Relaxed);
        let mut summary = None;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let line = line.with_context(|| format!("reading the output of {what}"))?;
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["type"] == "summary"
                {
                    summary = Some(v);
                }
            }
        }
        let status = child
            .wait()
            .with_context(|| format!("waiting for {what}"))?;
        self.pid.store(0, Ordering::Relaxed);
        Ok((exit_code(status), summary))
    }
}

#[cfg(unix)]
fn exit_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code()
        .or_else(|| s.signal().map(|n| 128 + n))
        .unwrap_or(-1)
}

#[cfg(not(unix))]
fn exit_code(s: std::process::ExitStatus) -> i32 {
    s.code().unwrap_or(-1)
}

/// Sends SIGINT (a backup's "stop cleanly") to a child.
#[cfg(unix)]
fn interrupt(pid: u32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    }
}

#[cfg(not(unix))]
fn interrupt(_pid: u32) {}

/// Cancels `stop` on SIGTERM or SIGINT; handlers are registered before this returns.
#[cfg(unix)]
fn stop_on_signals(stop: &CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        stop.cancel();
    });
    Ok(())
}

#[cfg(not(unix))]
fn stop_on_signals(stop: &CancellationToken) -> anyhow::Result<()> {
    let stop = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.cancel();
        }
    });
    Ok(())
}
