use super::*;

#[test]
fn parses_a_stat_line_with_parentheses_in_the_name() {
    let line =
        "4242 (cairn (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 3 0 987654 1000 200";
    assert_eq!(parse_stat(line), Some(('S', 987_654)));
}

#[test]
fn rejects_truncated_stat() {
    assert_eq!(parse_stat("12 (x) S 1 2"), None);
    assert_eq!(parse_stat("no parenthesis"), None);
}

#[cfg(target_os = "linux")]
#[test]
fn this_process_is_alive_and_a_changed_start_is_dead() {
    let me = ProcessStamp::current();
    assert!(!me.start.is_empty());
    assert_eq!(me.liveness(), Liveness::Alive);
    // Same pid, another start time: the pid was reused.
    let reused = ProcessStamp {
        pid: me.pid,
        start: format!("{}0", me.start),
    };
    assert_eq!(reused.liveness(), Liveness::Dead);
}

#[cfg(target_os = "linux")]
#[test]
fn an_exited_child_is_dead() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    let start = start_of(pid);
    child.wait().unwrap();
    let stamp = ProcessStamp {
        pid,
        start: start.unwrap_or_else(|| "boot:1".into()),
    };
    assert_eq!(stamp.liveness(), Liveness::Dead);
}
