//! Unit tests of the hooks: ordering, timeouts, on-error policies, sessions and release
//! guarantees, with real local processes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

fn executor() -> Arc<dyn HookExecutor> {
    Arc::new(LocalExecutor::new())
}

fn pods() -> PodSelector {
    PodSelector::new("ns", "app=db", Some("main"))
}

/// A hook appending `pre-NAME` / `post-NAME` to `$LOG`.
fn logging_hook(name: &str, log: &Path) -> HookSpec {
    let mut h = HookSpec::empty(name, pods());
    h.pre = Some(sh(&format!("echo pre-{name} >> \"$LOG\"")));
    h.post = Some(sh(&format!("echo post-{name} >> \"$LOG\"")));
    h.env.insert(
        "LOG".into(),
        EnvSource::Value(log.to_string_lossy().into_owned()),
    );
    h
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn temp_log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    (dir, log)
}

#[tokio::test]
async fn pre_in_order_post_in_reverse_around_the_step() {
    let (_d, log) = temp_log();
    let hooks = vec![logging_hook("a", &log), logging_hook("b", &log)];
    let log2 = log.clone();
    let (report, outcome) = run_around(executor(), &hooks, || async move {
        std::fs::write(
            &log2,
            format!(
                "{}\nstep\n",
                std::fs::read_to_string(&log2).unwrap().trim_end()
            ),
        )
        .unwrap();
        Ok::<_, String>(7)
    })
    .await
    .unwrap();
    assert!(matches!(outcome, StepOutcome::Ran(Ok(7))));
    assert_eq!(
        log_lines(&log),
        ["pre-a", "pre-b", "step", "post-b", "post-a"]
    );
    assert!(!report.failed);
    let phases: Vec<_> = report
        .records
        .iter()
        .map(|r| (r.hook.as_str(), r.phase))
        .collect();
    assert_eq!(
        phases,
        [
            ("a", Phase::Pre),
            ("b", Phase::Pre),
            ("b", Phase::Post),
            ("a", Phase::Post)
        ]
    );
    let r = &report.records[0];
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.target.pod, "local");
    assert_eq!(r.target.container.as_deref(), Some("main"));
}

#[tokio::test]
async fn a_hook_past_its_timeout_is_killed_and_reported() {
    for command in [
        vec!["sleep".to_owned(), "10".to_owned()],
        sh("sleep 10; echo late"),
    ] {
        let mut h = HookSpec::empty("slow", pods());
        h.pre = Some(command.clone());
        h.timeout = Duration::from_millis(200);
        let started = Instant::now();
        let (report, outcome) = run_around(executor(), &[h], || async { Ok::<_, String>(()) })
            .await
            .unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{command:?} took {took:?}");
        assert!(matches!(outcome, StepOutcome::Skipped(ref r) if r.contains("timed out")));
        assert!(report.failed);
        let r = &report.records[0];
        assert!(r.timed_out);
        assert_eq!(r.exit_code, None);
        assert!(
            r.error
                .as_deref()
                .unwrap()
                .contains("timed out after 200ms")
        );
        assert!(!r.stdout.contains("late"));
    }
}

#[tokio::test]
async fn on_error_fail_stops_skips_the_step_and_still_runs_posts() {
    let (_d, log) = temp_log();
    let mut bad = logging_hook("bad", &log);
    bad.pre = Some(sh("echo pre-bad >> \"$LOG\"; echo broken >&2; exit 3"));
    let hooks = vec![logging_hook("a", &log), bad, logging_hook("c", &log)];
    let (report, outcome) = run_around(executor(), &hooks, || async {
        panic!("the step must not run");
        #[allow(unreachable_code, reason = "gives the closure its type")]
        Ok::<(), String>(())
    })
    .await
    .unwrap();
    assert!(matches!(outcome, StepOutcome::Skipped(ref r) if r.contains("code 3")));
    assert!(report.failed);
    // c was never reached; bad's post runs (its pre was attempted), then a's.
    assert_eq!(log_lines(&log), ["pre-a", "pre-bad", "post-bad", "post-a"]);
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].exit_code, Some(3));
    assert_eq!(failed[0].stderr.trim(), "broken");
}

#[tokio::test]
async fn on_error_continue_records_and_goes_on() {
    let (_d, log) = temp_log();
    let mut bad = logging_hook("bad", &log);
    bad.pre = Some(sh("exit 3"));
    bad.on_error = OnError::Continue;
    let hooks = vec![bad, logging_hook("c", &log)];
    let (report, outcome) = run_around(executor(), &hooks, || async { Ok::<_, String>(()) })
        .await
        .unwrap();
    assert!(matches!(outcome, StepOutcome::Ran(Ok(()))));
    assert!(!report.failed);
    assert_eq!(log_lines(&log), ["pre-c", "post-c", "post-bad"]);
    assert_eq!(report.failures().count(), 1);
}

#[tokio::test]
async fn post_hooks_run_after_a_failing_step() {
    let (_d, log) = temp_log();
    let hooks = vec![logging_hook("a", &log)];
    let (report, outcome) = run_around(executor(), &hooks, || async {
        Err::<(), _>("snapshot failed".to_owned())
    })
    .await
    .unwrap();
    assert!(matches!(outcome, StepOutcome::Ran(Err(ref e)) if e == "snapshot failed"));
    assert_eq!(log_lines(&log), ["pre-a", "post-a"]);
    assert!(!report.failed, "the hooks themselves succeeded");
}

#[tokio::test]
async fn post_hooks_run_when_the_step_panics() {
    let (_d, log) = temp_log();
    let hooks = vec![logging_hook("a", &log)];
    let task = tokio::spawn(async move {
        let _ = run_around(executor(), &hooks, || async {
            panic!("snapshot code panicked");
            #[allow(unreachable_code, reason = "gives the closure its type")]
            Ok::<(), String>(())
        })
        .await;
    });
    let err = task.await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(log_lines(&log), ["pre-a", "post-a"]);
}

#[tokio::test]
async fn a_session_stays_open_across_the_step_and_gets_its_release() {
    let (_d, log) = temp_log();
    let mut h = HookSpec::empty("hold", pods());
    // Holds until it reads the release line: proves stdin stays open during the step.
    h.session = Some(SessionSpec::new(
        sh(
            "read start; echo \"ready $start\"; read rel; echo \"released $rel\" >> \"$LOG\"; echo bye",
        ),
        "go\n",
        "ready go",
        "now\n",
    ));
    h.env.insert(
        "LOG".into(),
        EnvSource::Value(log.to_string_lossy().into_owned()),
    );
    let log2 = log.clone();
    let (report, outcome) = run_around(executor(), &[h], || async move {
        Ok::<_, String>(log_lines(&log2))
    })
    .await
    .unwrap();
    let StepOutcome::Ran(Ok(during)) = outcome else {
        panic!("step did not run: {outcome:?}");
    };
    assert!(during.is_empty(), "released too early: {during:?}");
    assert_eq!(log_lines(&log), ["released now"]);
    let phases: Vec<_> = report.records.iter().map(|r| r.phase).collect();
    assert_eq!(phases, [Phase::SessionStart, Phase::SessionRelease]);
    assert_eq!(report.records[1].exit_code, Some(0));
    assert!(report.records[1].stdout.contains("bye"));
}

#[tokio::test]
async fn a_session_that_never_gets_ready_fails_in_time() {
    for (script, why) in [
        ("sleep 10", "no ready marker within"),
        ("echo nope >&2; exit 1", "nope"),
    ] {
        let mut h = HookSpec::empty("never", pods());
        h.session = Some(SessionSpec::new(sh(script), "", "ready", ""));
        h.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let (report, outcome) = run_around(executor(), &[h], || async { Ok::<_, String>(()) })
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(matches!(outcome, StepOutcome::Skipped(_)));
        let err = report.records[0].error.as_deref().unwrap();
        assert!(err.contains(why), "{script}: {err}");
        assert_eq!(report.records.len(), 1, "nothing held, nothing to release");
    }
}

#[tokio::test]
async fn secrets_stay_out_of_records_and_debug() {
    let mut h = HookSpec::empty("secret", pods());
    h.pre = Some(sh("echo \"password is $PW\"; echo \"$PW\" >&2"));
    h.env
        .insert("PW".into(), EnvSource::Value("hunter2".into()));
    assert!(!format!("{h:?}").contains("hunter2"));
    let (report, _) = run_around(executor(), &[h], || async { Ok::<_, String>(()) })
        .await
        .unwrap();
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("hunter2"), "{json}");
    assert_eq!(report.records[0].stdout.trim(), "password is ***");
}

#[tokio::test]
async fn missing_credentials_fail_the_hook_before_running_it() {
    let (_d, log) = temp_log();
    let mut h = logging_hook("creds", &log);
    h.env.insert(
        "PW".into(),
        EnvSource::FromEnv("CAIRN_TEST_SURELY_UNSET_VARIABLE".into()),
    );
    let (report, outcome) = run_around(executor(), &[h], || async { Ok::<_, String>(()) })
        .await
        .unwrap();
    assert!(matches!(outcome, StepOutcome::Skipped(_)));
    assert!(
        report.records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("CAIRN_TEST_SURELY_UNSET_VARIABLE")
    );
    assert!(log_lines(&log).is_empty(), "nothing ran");
}

#[tokio::test]
async fn long_output_is_truncated_in_the_middle() {
    let mut h = HookSpec::empty("chatty", pods());
    h.pre = Some(sh(
        "echo first; head -c 200000 /dev/zero | tr '\\0' x; echo; echo last",
    ));
    let (report, _) = run_around(executor(), &[h], || async { Ok::<_, String>(()) })
        .await
        .unwrap();
    let out = &report.records[0].stdout;
    assert!(out.len() < 3 * OUTPUT_LIMIT, "{}", out.len());
    assert!(out.starts_with("first"));
    assert!(out.trim_end().ends_with("last"));
    assert!(out.contains("bytes left out"));
}

#[tokio::test]
async fn dropping_the_guard_releases_in_the_background() {
    let (_d, log) = temp_log();
    let mut h = HookSpec::empty("held", pods());
    h.session = Some(SessionSpec::new(
        sh("echo ready; read rel; echo \"released $rel\" >> \"$LOG\""),
        "",
        "ready",
        "late\n",
    ));
    h.env.insert(
        "LOG".into(),
        EnvSource::Value(log.to_string_lossy().into_owned()),
    );
    let q = quiesce(executor(), &[h]).await.unwrap();
    assert!(q.failure().is_none());
    drop(q);
    // The release runs on a spawned task: wait for its effect, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(5);
    while log_lines(&log).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log_lines(&log), ["released late"]);
}

#[test]
fn specs_parse_from_json_and_reject_mistakes() {
    let ok: Vec<HookSpec> = serde_json::from_value(serde_json::json!([
        {"name": "db", "pods": {"namespace": "shop", "selector": "app=mariadb", "container": "mariadb"},
         "recipe": {"name": "mysql"}, "timeout": "45s", "onError": "continue",
         "env": {"MYSQL_PWD": {"secretKeyRef": {"name": "db-root", "key": "password"}}}},
        {"name": "fs", "pods": {"namespace": "shop"}, "recipe": {"name": "fsfreeze", "path": "/data"}},
        {"name": "custom", "pods": {"namespace": "shop"}, "pre": ["sync"], "timeout": 5}
    ]))
    .unwrap();
    assert_eq!(ok[0].recipe, Some(Recipe::Mariadb));
    assert_eq!(ok[0].timeout, Duration::from_secs(45));
    assert_eq!(ok[0].on_error, OnError::Continue);
    assert_eq!(ok[1].timeout, Duration::from_secs(30));
    assert_eq!(ok[2].timeout, Duration::from_secs(5));
    let steps = validate(&ok).unwrap();
    assert!(steps[0].session.is_some());
    assert_eq!(
        steps[1].post.as_deref(),
        Some(&["fsfreeze".to_owned(), "--unfreeze".into(), "/data".into()][..])
    );
    // Round trip.
    let back: Vec<HookSpec> = serde_json::from_str(&serde_json::to_string(&ok).unwrap()).unwrap();
    assert_eq!(back, ok);

    let bad = [
        serde_json::json!({"name": "x", "pods": {"namespace": "a"}, "recipe": {"name": "redis"}, "pre": ["true"]}),
        serde_json::json!({"name": "x", "pods": {"namespace": "a"}}),
        serde_json::json!({"name": "x", "pods": {"namespace": "a"}, "pre": []}),
        serde_json::json!({"name": "x", "pods": {"namespace": "a"}, "pre": ["true"], "timeout": "0s"}),
        serde_json::json!({"name": "x", "pods": {"namespace": "a"}, "recipe": {"name": "fsfreeze", "path": "data"}}),
    ];
    for b in bad {
        let h: HookSpec = serde_json::from_value(b.clone()).unwrap();
        assert!(h.steps().is_err(), "{b}");
    }
    let unparsable = [
        serde_json::json!({"name": "x", "pods": {"namespace": "a"}, "pre": ["true"], "timeout": "3 fortnights"}),
        serde_json::json!({"name": "x", "pods": {"namespace": "a"}, "pre": ["true"], "typo": 1}),
        serde_json::json!({"name": "x", "pods": {"namespace": "a"}, "recipe": {"name": "oracle"}}),
    ];
    for b in unparsable {
        assert!(
            serde_json::from_value::<HookSpec>(b.clone()).is_err(),
            "{b}"
        );
    }
}

#[test]
fn the_backup_label_is_found_in_the_release_output() {
    let out = "0/5000100\ncairn-backup-label-begin\nSTART WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nLABEL: cairn\n\ncairn-backup-label-end\n";
    assert_eq!(
        postgres_backup_label(out).unwrap(),
        "START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nLABEL: cairn\n"
    );
    assert_eq!(postgres_backup_label("cairn-backup-label-begin\n"), None);
}

#[test]
fn exec_status_gives_the_exit_code() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
    let ok = Status {
        status: Some("Success".into()),
        ..Status::default()
    };
    assert_eq!(super::kube::exit_code(&ok), Some(0));
    let failed = Status {
        status: Some("Failure".into()),
        reason: Some("NonZeroExitCode".into()),
        details: Some(StatusDetails {
            causes: Some(vec![StatusCause {
                reason: Some("ExitCode".into()),
                message: Some("42".into()),
                ..StatusCause::default()
            }]),
            ..StatusDetails::default()
        }),
        ..Status::default()
    };
    assert_eq!(super::kube::exit_code(&failed), Some(42));
    assert_eq!(super::kube::exit_code(&Status::default()), None);
}
