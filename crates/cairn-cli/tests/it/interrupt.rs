//! Ctrl-C (SIGINT) during a backup: exit 130, no new snapshot, the repository still opens and
//! the next backup succeeds.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};

use rustix::process::{Pid, Signal, kill_process};

use crate::common::{Rng, TestContext, format_output, run_ok, snapshot_ids, write};

fn sigint(child: &Child) {
    let pid = Pid::from_child(child);
    kill_process(pid, Signal::INT).expect("send SIGINT");
}

/// Reads JSON Lines from the child's stdout until the `begin` event, returning the lines read.
/// The `begin` event is printed after the Ctrl-C handler is registered, so it is the signal
/// that the backup is running.
fn wait_for_begin(stdout: &mut impl BufRead) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "stdout closed before the begin event: {lines:?}");
        let begin = line.contains(r#""type":"begin""#);
        lines.push(line);
        if begin {
            return lines;
        }
    }
}

/// Finishes the child: the rest of stdout, stderr, the exit status.
fn finish(mut child: Child, stdout: impl Read, mut seen: Vec<String>) -> std::process::Output {
    let mut rest = String::new();
    BufReader::new(stdout)
        .read_to_string(&mut rest)
        .expect("read stdout");
    seen.push(rest);
    let mut stderr = Vec::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_end(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait");
    std::process::Output {
        status,
        stdout: seen.concat().into_bytes(),
        stderr,
    }
}

fn assert_interrupted(ctx: &TestContext, out: &std::process::Output, before: &[String]) {
    let text = format_output(out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted"),
        "{text}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(r#""type":"summary""#),
        "{text}"
    );
    assert_eq!(snapshot_ids(ctx), before, "a snapshot appeared:\n{text}");
}

/// A stream backup never finishes on its own while stdin stays open, so the interrupt is
/// certain to land during the backup.
#[test]
fn sigint_during_stdin_backup() {
    let ctx = TestContext::new();
    ctx.init();
    let mut child = ctx
        .cairn(["backup", "--json", "--stdin", "--name", "endless.bin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    // Feed data until cairn goes away (the write then fails with a broken pipe).
    let feeder = std::thread::spawn(move || {
        let mut rng = Rng::new(42);
        let mut written = 0u64;
        let mut block = vec![0u8; 64 << 10];
        loop {
            rng.fill(&mut block);
            if stdin.write_all(&block).is_err() {
                return written;
            }
            written += block.len() as u64;
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let seen = wait_for_begin(&mut stdout);
    sigint(&child);
    let out = finish(child, stdout, seen);
    let fed = feeder.join().expect("feeder");
    assert!(fed > 0);
    assert_interrupted(&ctx, &out, &[]);

    // The repository opens and takes the next backup.
    let mut next = ctx.cairn(["backup", "--stdin", "--name", "endless.bin"]);
    next.stdin(Stdio::null());
    run_ok(&mut next);
    assert_eq!(snapshot_ids(&ctx).len(), 1);
}

/// A tree backup: large enough (and slowly compressed) that it is still running when the
/// signal arrives right after the `begin` event.
#[test]
fn sigint_during_tree_backup() {
    let ctx = TestContext::new();
    ctx.init_with(&["--compression", "19", "--pack-mib", "1"]);
    let tree = ctx.root.join("tree");
    let mut rng = Rng::new(9);
    for i in 0..24 {
        // Compressible, but not trivially: words from a small vocabulary.
        let words = ["alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta "];
        let text: String = (0..60_000)
            .map(|_| words[rng.below(words.len() as u64) as usize])
            .collect();
        write(&tree.join(format!("d{}/f{i}.txt", i % 4)), text);
    }
    run_ok(&mut ctx.cairn(["backup", "--no-progress", "tree/d0"]));
    let before = snapshot_ids(&ctx);

    let mut child = ctx
        .cairn(["--threads", "1", "backup", "--json", "tree"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let seen = wait_for_begin(&mut stdout);
    sigint(&child);
    let out = finish(child, stdout, seen);
    assert_interrupted(&ctx, &out, &before);

    // The next backup of the same tree completes and restores.
    run_ok(&mut ctx.cairn(["backup", "--no-progress", "tree"]));
    assert_eq!(snapshot_ids(&ctx).len(), before.len() + 1);
    run_ok(&mut ctx.cairn(["restore", "latest", "--target", "out"]));
    assert_eq!(
        crate::common::manifest(&tree),
        crate::common::manifest(&ctx.root.join("out"))
    );
}
