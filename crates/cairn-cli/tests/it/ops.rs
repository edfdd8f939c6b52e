//! Operating commands: `status` across processes (also after kill -9), recording that never
//! fails a backup, `schedule`, and `daemon` run for real with a 1-second schedule, its
//! metrics scraped, stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use serde_json::Value;

use crate::common::{
    TestContext, format_output, json, run, run_ok, small_tree, snapshot_ids, write,
};

/// `cairn status --json --all`'s operations.
fn operations(ctx: &TestContext) -> Vec<Value> {
    let out = run_ok(ctx.command().args(["status", "--json", "--all"]));
    json(&out)["operations"]
        .as_array()
        .expect("operations")
        .clone()
}

/// Polls `f` every 50 ms until it returns `Some`, failing after `secs` seconds.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn status_shows_backup_and_restore_from_other_processes() {
    let ctx = TestContext::new();
    ctx.init();
    let tree = small_tree(&ctx.root);
    run_ok(&mut ctx.cairn(["backup".as_ref(), tree.as_os_str()]));
    let target = ctx.root.join("out");
    run_ok(&mut ctx.cairn([
        "restore".as_ref(),
        "latest".as_ref(),
        "--target".as_ref(),
        target.as_os_str(),
    ]));
    let ops = operations(&ctx);
    assert_eq!(ops.len(), 2, "{ops:#?}");
    // Newest first.
    let (restore, backup) = (&ops[0], &ops[1]);
    assert_eq!(backup["kind"], "backup");
    assert_eq!(backup["state"], "done");
    assert_eq!(backup["source"], tree.display().to_string());
    assert_eq!(backup["location"], ctx.repo.display().to_string());
    assert_eq!(
        backup["bytes_done"], 1006,
        "a.txt (6 bytes) and sub/b.bin (1000)"
    );
    assert!(backup["finished"].is_string());
    assert!(backup["error"].is_null());
    assert_eq!(restore["kind"], "restore");
    assert_eq!(restore["state"], "done");
    assert_eq!(restore["bytes_done"], 1006);
    // Human output: a table with both.
    let out = run_ok(ctx.command().arg("status"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ID  KIND"), "{text}");
    assert_eq!(text.matches(" done ").count(), 2, "{text}");
    // --limit 1 keeps the newest.
    let out = run_ok(ctx.command().args(["status", "--json", "--limit", "1"]));
    assert_eq!(json(&out)["operations"].as_array().unwrap().len(), 1);
}

#[test]
fn status_shows_copy_forget_prune_and_check() {
    let ctx = TestContext::new();
    ctx.init();
    let tree = small_tree(&ctx.root);
    run_ok(&mut ctx.cairn(["backup".as_ref(), tree.as_os_str()]));
    let other = ctx.root.join("other");
    crate::common::init_other(&ctx, &other, "another");
    run_ok(
        ctx.cairn(["copy".as_ref(), "--to".as_ref(), other.as_os_str()])
            .env("CAIRN_TO_PASSWORD", "another"),
    );
    run_ok(&mut ctx.cairn(["forget", "--keep-last", "1", "--prune"]));
    run_ok(&mut ctx.cairn(["check"]));
    // A failing check is recorded as failed.
    run(ctx.cairn(["check"]).env("CAIRN_PASSWORD", "wrong"));
    let ops = operations(&ctx);
    let kinds: Vec<&str> = ops.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["check", "prune", "forget", "copy", "backup"],
        "newest first; the wrong passphrase failed before any operation began: {ops:#?}"
    );
    for o in &ops {
        assert_eq!(o["state"], "done", "{o}");
        assert_eq!(o["location"], ctx.repo.display().to_string(), "{o}");
    }
}

/// Starts `cairn backup --stdin` that reads until its stdin closes, and waits until the
/// state shows it active.
fn start_stdin_backup(ctx: &TestContext) -> (Child, Value) {
    let mut child = ctx
        .cairn(["backup", "--stdin", "--name", "dump.sql"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backup");
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"partial dump\n")
        .unwrap();
    let op = wait_for(30, "the backup to be recorded as active", || {
        operations(ctx).into_iter().find(|o| o["state"] == "active")
    });
    (child, op)
}

#[test]
fn killed_backup_shows_as_failed_interrupted() {
    let ctx = TestContext::new();
    ctx.init();
    let (mut child, op) = start_stdin_backup(&ctx);
    assert_eq!(op["kind"], "backup");
    assert_eq!(op["source"], "stdin:dump.sql");
    assert_eq!(op["process"]["pid"], child.id());
    child.kill().unwrap(); // SIGKILL: nothing is recorded by the backup itself.
    child.wait().unwrap();
    let ops = operations(&ctx);
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["state"], "failed", "{ops:#?}");
    let err = ops[0]["error"].as_str().unwrap();
    assert!(err.starts_with("interrupted: process"), "{err}");
}

#[test]
fn ctrl_c_backup_shows_as_cancelled() {
    let ctx = TestContext::new();
    ctx.init();
    let (mut child, _) = start_stdin_backup(&ctx);
    kill_process(Pid::from_child(&child), Signal::INT).unwrap();
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let ops = operations(&ctx);
    assert_eq!(ops[0]["state"], "cancelled", "{ops:#?}");
}

#[test]
fn unwritable_state_warns_once_and_the_backup_succeeds() {
    let ctx = TestContext::new();
    ctx.init();
    let tree = small_tree(&ctx.root);
    // The state directory is a file: nothing can be created under it.
    let blocker = ctx.root.join("not-a-dir");
    write(&blocker, "x");
    let out = run(ctx
        .cairn(["backup".as_ref(), tree.as_os_str()])
        .env("CAIRN_STATE_DIR", &blocker));
    let text = format_output(&out);
    assert!(out.status.success(), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("cannot record this operation").count(),
        1,
        "{text}"
    );
    assert_eq!(snapshot_ids(&ctx).len(), 1);
}

#[test]
fn schedule_add_list_pause_resume_remove() {
    let ctx = TestContext::new();
    let tree = small_tree(&ctx.root);
    run_ok(&mut ctx.cairn([
        "schedule".as_ref(),
        "add".as_ref(),
        "nightly".as_ref(),
        "--cron".as_ref(),
        "30 2 * * *".as_ref(),
        "--timezone".as_ref(),
        "America/New_York".as_ref(),
        "--keep-daily".as_ref(),
        "7".as_ref(),
        "--keep-weekly".as_ref(),
        "4".as_ref(),
        "--full-every".as_ref(),
        "10".as_ref(),
        "--tag".as_ref(),
        "nightly".as_ref(),
        tree.as_os_str(),
    ]));
    let list = || {
        let out = run_ok(ctx.command().args(["schedule", "list", "--json"]));
        json(&out)["schedules"].as_array().unwrap().clone()
    };
    let s = &list()[0]["schedule"];
    assert_eq!(s["name"], "nightly");
    assert_eq!(s["trigger"]["type"], "cron");
    assert_eq!(s["trigger"]["expr"], "30 2 * * *");
    assert_eq!(s["trigger"]["timezone"], "America/New_York");
    assert_eq!(s["keep"]["daily"], 7);
    assert_eq!(s["full_every"], 10);
    assert_eq!(s["job"]["sources"][0], tree.display().to_string());
    assert_eq!(s["job"]["repo"], ctx.repo.display().to_string());
    assert_eq!(s["paused"], false);
    // Duplicates, bad expressions, bad zones and missing triggers are refused.
    for (args, msg) in [
        (vec!["nightly", "--interval", "1h", "/x"], "exists already"),
        (
            vec!["b", "--cron", "61 * * * *", "/x"],
            "invalid cron expression",
        ),
        (
            vec!["c", "--cron", "0 * * * *", "--timezone", "Mars/Base", "/x"],
            "unknown time zone",
        ),
        (vec!["d", "--interval", "0s", "/x"], "invalid interval"),
        (
            vec!["bad name", "--interval", "1h", "/x"],
            "invalid schedule name",
        ),
    ] {
        let out = run(ctx.command().args(["schedule", "add"]).args(&args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            format_output(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(msg),
            "{}",
            format_output(&out)
        );
    }
    let out = run(ctx.command().args(["schedule", "add", "e", "/x"]));
    assert_eq!(out.status.code(), Some(2), "neither --cron nor --interval");
    run_ok(ctx.command().args(["schedule", "pause", "nightly"]));
    assert_eq!(list()[0]["schedule"]["paused"], true);
    run_ok(ctx.command().args(["schedule", "resume", "nightly"]));
    assert_eq!(list()[0]["schedule"]["paused"], false);
    let out = run_ok(ctx.command().args(["schedule", "list"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("nightly (active): cron '30 2 * * *' (America/New_York)"),
        "{text}"
    );
    assert!(
        text.contains("keep: --keep-daily 7 --keep-weekly 4"),
        "{text}"
    );
    run_ok(ctx.command().args(["schedule", "remove", "nightly"]));
    assert!(list().is_empty());
    let out = run(ctx.command().args(["schedule", "remove", "nightly"]));
    assert_eq!(out.status.code(), Some(2));
}

/// `GET /metrics` on `addr`: the body.
fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// The value of one sample line `name{schedule="s"} v`.
fn sample(body: &str, name: &str, schedule: &str) -> Option<f64> {
    let key = format!("{name}{{schedule=\"{schedule}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.parse().expect("a number"))
}

#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, step by step")]
fn daemon_runs_a_one_second_schedule_serves_metrics_and_stops_on_sigterm() {
    let ctx = TestContext::new();
    ctx.init();
    let tree = small_tree(&ctx.root);
    run_ok(&mut ctx.cairn([
        "schedule".as_ref(),
        "add".as_ref(),
        "every-second".as_ref(),
        "--interval".as_ref(),
        "1s".as_ref(),
        "--full-every".as_ref(),
        "2".as_ref(),
        tree.as_os_str(),
    ]));
    let mut daemon = ctx
        .command()
        .args(["daemon", "--metrics-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    // Collect stderr on a thread; report the metrics address when it is printed.
    let (tx, rx) = mpsc::channel();
    let stderr = daemon.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("metrics at http://") {
                let _ = tx.send(rest.trim_end_matches("/metrics").to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the metrics address");
    // At least two scheduled backups finish.
    let done = wait_for(60, "two scheduled backups", || {
        let ops = operations(&ctx);
        let done: Vec<Value> = ops
            .into_iter()
            .filter(|o| o["schedule"] == "every-second" && o["state"] == "done")
            .collect();
        (done.len() >= 2).then_some(done)
    });
    assert!(
        done.iter()
            .all(|o| o["kind"] == "backup" && o["bytes_done"].as_u64().is_some())
    );
    // The metrics agree: runs, successes, no failures.
    let body = wait_for(30, "metrics of two finished runs", || {
        let body = scrape(&addr);
        let ok = sample(
            &body,
            "cairn_schedule_last_success_timestamp_seconds",
            "every-second",
        )
        .is_some()
            && sample(&body, "cairn_schedule_runs_total", "every-second") >= Some(2.0);
        ok.then_some(body)
    });
    assert!(body.contains("\ncairn_up 1\n"), "{body}");
    assert_eq!(
        sample(&body, "cairn_schedule_failures_total", "every-second"),
        Some(0.0),
        "{body}"
    );
    let last = sample(
        &body,
        "cairn_schedule_last_success_timestamp_seconds",
        "every-second",
    )
    .unwrap();
    let now = jiff::Timestamp::now().as_second() as f64;
    assert!((now - last).abs() < 120.0, "last success {last}, now {now}");
    assert!(
        sample(
            &body,
            "cairn_schedule_last_duration_seconds",
            "every-second"
        )
        .unwrap()
            > 0.0
    );
    assert!(sample(&body, "cairn_schedule_last_bytes_read", "every-second").is_some());
    // Every family is declared.
    for name in ["cairn_schedule_runs_total", "cairn_schedule_failures_total"] {
        assert!(body.contains(&format!("# TYPE {name} counter")), "{body}");
    }
    // SIGTERM: the daemon stops cleanly (a run in progress is interrupted and waited for).
    kill_process(Pid::from_child(&daemon), Signal::TERM).unwrap();
    let status = wait_for(60, "the daemon to exit", || daemon.try_wait().unwrap());
    let log = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("daemon stopped"), "{log}");
    assert!(log.contains(", full"), "run 2 is a full backup: {log}");
    // The snapshots exist, and the repository is fine for the next command.
    assert!(snapshot_ids(&ctx).len() >= 2);
    let listed = run_ok(ctx.command().args(["schedule", "list", "--json"]));
    assert!(
        json(&listed)["schedules"][0]["schedule"]["runs"]
            .as_u64()
            .unwrap()
            >= 2
    );
}
