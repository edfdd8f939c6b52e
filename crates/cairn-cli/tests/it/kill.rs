//! Crash consistency through the CLI (STYLE 5.5): `kill -9` a backup at a random moment, 50
//! times, mutating the tree between rounds. After every kill `cairn snapshots` works; every
//! 10 rounds committed snapshots restore to exactly the tree they were taken of; at the end
//! a backup completes and every snapshot restores bit-identically.
//!
//! The random delay before each kill is the experiment (uniform over the measured duration
//! of a backup), not synchronisation. The seed is printed; rerun a failure with
//! `CAIRN_TEST_SEED=<seed>`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Rng, TestContext, format_output, manifest, run_ok, seed, snapshot_ids, write};

const ROUNDS: usize = 50;

type Manifest = Vec<(String, String)>;

/// The tree under test: small text files in a few directories, random (incompressible)
/// files, compressible files, empty files and symlinks; about 8 MB.
fn make_tree(tree: &Path, rng: &mut Rng) {
    for i in 0..120 {
        let len = 200 + rng.below(6000) as usize;
        let text = format!("line {i} of a small text file\n").repeat(len / 30 + 1);
        write(&tree.join(format!("small/d{}/t{i}.txt", i % 8)), text);
    }
    for i in 0..10 {
        let len = (128 << 10) + rng.below(768 << 10) as usize;
        write(&tree.join(format!("random/r{i}.bin")), rng.bytes(len));
    }
    for i in 0..4 {
        let mut data = Vec::new();
        for j in 0..40_000 {
            data.extend(format!("{i}:{j}:{}\n", rng.below(1000)).as_bytes());
        }
        write(&tree.join(format!("text/c{i}.log")), data);
    }
    write(&tree.join("empty/e0"), "");
    write(&tree.join("empty/e1"), "");
    std::os::unix::fs::symlink("../random/r0.bin", tree.join("empty/link")).expect("symlink");
}

/// All regular files below `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(d).expect("read_dir") {
            let e = e.expect("entry");
            let ft = e.file_type().expect("file type");
            if ft.is_dir() {
                walk(&e.path(), out);
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// A few changes: new random data (so the next backup writes packs), appends, a deletion,
/// a new file. Every change of an existing file changes its size, so that change detection
/// by size and mtime cannot miss it within one timestamp tick.
fn mutate(tree: &Path, rng: &mut Rng, round: usize) {
    let all = files(tree);
    for _ in 0..4 {
        let f = &all[rng.below(all.len() as u64) as usize];
        let old = fs::metadata(f).map_or(0, |m| m.len());
        let mut len = (64 << 10) + rng.below(1 << 20);
        if len == old {
            len += 1;
        }
        write(f, rng.bytes(len as usize));
    }
    let f = &all[rng.below(all.len() as u64) as usize];
    let mut data = fs::read(f).expect("read");
    data.extend(format!("appended in round {round}\n").as_bytes());
    write(f, data);
    if rng.below(3) == 0 && all.len() > 20 {
        let f = &all[rng.below(all.len() as u64) as usize];
        fs::remove_file(f).expect("remove");
    }
    if rng.below(2) == 0 {
        let len = rng.below(300 << 10) as usize;
        write(&tree.join(format!("new/round{round}.bin")), rng.bytes(len));
    }
}

fn backup_cmd(ctx: &TestContext) -> Command {
    let mut cmd = ctx.cairn([
        "--threads",
        "1",
        "backup",
        "-q",
        "--upload-concurrency",
        "1",
        "tree",
    ]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Restores `id` and compares it with the manifest recorded for it.
fn verify_restore(ctx: &TestContext, id: &str, expected: &Manifest, why: &str) {
    let target = ctx.root.join("restore-check");
    if target.exists() {
        fs::remove_dir_all(&target).expect("clean restore target");
    }
    let out = run_ok(&mut ctx.cairn([
        "restore",
        "--no-progress",
        id,
        &format!("--target={}", target.display()),
    ]));
    let got = manifest(&target);
    if &got != expected {
        let exp: BTreeMap<_, _> = expected.iter().cloned().collect();
        let got: BTreeMap<_, _> = got.into_iter().collect();
        let diff: Vec<_> = exp
            .keys()
            .chain(got.keys())
            .filter(|k| exp.get(*k) != got.get(*k))
            .map(|k| format!("{k}: expected {:?}, restored {:?}", exp.get(k), got.get(k)))
            .collect();
        panic!(
            "snapshot {id} ({why}) does not restore to its tree:\n{}\n{}",
            diff.join("\n"),
            format_output(&out)
        );
    }
}

/// Committed snapshots: id → manifest of the tree it was taken of, and the order.
#[derive(Default)]
struct Committed {
    expected: BTreeMap<String, Manifest>,
    order: Vec<String>,
}

impl Committed {
    fn insert(&mut self, id: String, state: Manifest) {
        assert!(!self.expected.contains_key(&id), "{id} is not new");
        self.expected.insert(id.clone(), state);
        self.order.push(id);
    }

    /// Runs a backup to completion and records its snapshot.
    fn backup(&mut self, ctx: &TestContext, state: Manifest) {
        let out = run_ok(&mut backup_cmd(ctx));
        self.insert(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            state,
        );
        assert_eq!(snapshot_ids(ctx).len(), self.expected.len());
    }

    fn verify(&self, ctx: &TestContext, id: &str, why: &str) {
        verify_restore(ctx, id, &self.expected[id], why);
    }
}

#[test]
fn kill_9_during_backup() {
    let seed = seed();
    eprintln!("kill test seed: {seed} (rerun with CAIRN_TEST_SEED={seed})");
    let mut rng = Rng::new(seed);
    let ctx = TestContext::new();
    // Small packs: many pack writes per backup.
    ctx.init_with(&["--pack-mib", "1"]);
    let tree = ctx.root.join("tree");
    make_tree(&tree, &mut rng);

    let mut committed = Committed::default();

    // One full backup, then one incremental after a round of changes, timed: the delay
    // before each kill is drawn from 0 to the longer of the two. Killed backups leave their
    // changes to the next one, which grows until one completes, so this mixes early kills,
    // kills while packs are written, and completed backups.
    let mut durations = Vec::new();
    for round in 0..2 {
        if round > 0 {
            mutate(&tree, &mut rng, 1000 + round);
        }
        let started = Instant::now();
        committed.backup(&ctx, manifest(&tree));
        durations.push(started.elapsed());
    }
    let window = durations
        .iter()
        .max()
        .copied()
        .unwrap_or_default()
        .max(Duration::from_millis(20));
    eprintln!("backup durations (full, incremental) {durations:?}; kill window {window:?}");

    let (mut killed, mut completed, mut committed_before_kill) = (0, 0, 0);
    for round in 0..ROUNDS {
        mutate(&tree, &mut rng, round);
        let state = manifest(&tree);
        let delay = Duration::from_micros(rng.below(window.as_micros() as u64 + 1));
        let mut child = backup_cmd(&ctx).spawn().expect("spawn backup");
        std::thread::sleep(delay);
        // SIGKILL; a child that already finished is not an error.
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        if out.status.success() {
            completed += 1;
        } else {
            killed += 1;
            assert_eq!(
                out.status.code(),
                None,
                "round {round}: the backup failed by itself:\n{}",
                format_output(&out)
            );
        }
        // The repository must open and list after every kill; any snapshot that appeared
        // was taken of this round's tree (the tree only changes between rounds).
        let ids = snapshot_ids(&ctx);
        let new: Vec<String> = ids
            .iter()
            .filter(|id| !committed.expected.contains_key(*id))
            .cloned()
            .collect();
        for id in new {
            if !out.status.success() {
                committed_before_kill += 1;
            }
            committed.insert(id, state.clone());
        }
        assert_eq!(
            ids.len(),
            committed.expected.len(),
            "round {round}: snapshots disappeared"
        );
        if out.status.success() {
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(ids.contains(&id), "round {round}: {id} not listed");
        }

        // Every 5 rounds, also a backup left to finish (killed backups leave their work to
        // the next one, so without these few would finish): committed snapshots to verify.
        if (round + 1) % 5 == 0 {
            committed.backup(&ctx, state.clone());
        }

        if (round + 1) % 10 == 0 {
            // The first, the latest and one drawn at random.
            let order = &committed.order;
            let other = &order[rng.below(order.len() as u64) as usize];
            for (id, why) in [
                (&order[0], "first"),
                (&order[order.len() - 1], "latest"),
                (other, "random"),
            ] {
                committed.verify(&ctx, id, why);
            }
        }
    }
    eprintln!(
        "{ROUNDS} rounds: {killed} killed ({committed_before_kill} of them after committing), {completed} completed before the kill; {} snapshots",
        committed.expected.len()
    );

    // A final backup completes, and every snapshot restores bit-identically.
    mutate(&tree, &mut rng, ROUNDS);
    committed.backup(&ctx, manifest(&tree));
    for id in &committed.order {
        committed.verify(&ctx, id, "final check");
    }
}
