//! Maintenance commands against real processes: the prune race (backups, prune and forget
//! running at once on one repository), forget's dry run, check finding damage, diff.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};

use crate::common::{TestContext, run, run_ok};

const BACKUPS: usize = 3;

fn spawn(ctx: &TestContext, args: &[&str], margin: &str) -> Child {
    ctx.cairn(args)
        .env("CAIRN_TEST_PRUNE_MARGIN_SECS", margin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cairn")
}

fn wait_ok(child: Child, what: &str) -> String {
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes this round's content of source `b`: a file that changes every round (new blobs,
/// old ones become garbage) and one that changes every tenth round.
fn write_source(dir: &Path, b: usize, round: usize) -> HashMap<String, Vec<u8>> {
    let mut files = HashMap::new();
    let fresh: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (round * 7 + b) as u8)
        .collect();
    let slow: Vec<u8> = (0..30_000u32)
        .map(|i| (i.wrapping_mul(40_503) >> 7) as u8 ^ (round / 10) as u8)
        .collect();
    fs::write(dir.join("fresh"), &fresh).unwrap();
    fs::write(dir.join("slow"), &slow).unwrap();
    files.insert("fresh".into(), fresh);
    files.insert("slow".into(), slow);
    files
}

/// Issue 6: 100 rounds of several backup processes writing to one repository while prune
/// runs with a shortened safety margin and forget deletes snapshots. Afterwards `check
/// --read-data` is clean and every kept snapshot restores bit-identically.
#[test]
fn prune_races_backups_and_forget() {
    let rounds: usize = std::env::var("CAIRN_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let ctx = TestContext::new();
    ctx.init_with(&["--pack-mib", "1"]);
    let srcs: Vec<_> = (0..BACKUPS)
        .map(|b| {
            let d = ctx.root.join(format!("src{b}"));
            fs::create_dir_all(&d).unwrap();
            d
        })
        .collect();
    let mut expected: HashMap<String, (usize, HashMap<String, Vec<u8>>)> = HashMap::new();
    let margin = "0.2";
    for round in 0..rounds {
        let contents: Vec<_> = srcs
            .iter()
            .enumerate()
            .map(|(b, d)| write_source(d, b, round))
            .collect();
        let backups: Vec<Child> = srcs
            .iter()
            .map(|d| spawn(&ctx, &["backup", "-q", d.to_str().unwrap()], margin))
            .collect();
        // Prune and forget run while the backups do.
        let prune = spawn(&ctx, &["prune", "-q"], margin);
        let forget =
            (round % 3 == 2).then(|| spawn(&ctx, &["forget", "-q", "--keep-last", "2"], margin));
        for (b, child) in backups.into_iter().enumerate() {
            let id = wait_ok(child, "backup").trim().to_string();
            assert_eq!(id.len(), 64, "backup -q prints the id: {id:?}");
            expected.insert(id, (b, contents[b].clone()));
        }
        let out = prune.wait_with_output().unwrap();
        // A prune may meet another one's exclusive lock; anything else is a failure.
        assert!(
            out.status.success() || String::from_utf8_lossy(&out.stderr).contains("locked"),
            "prune failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(f) = forget {
            wait_ok(f, "forget");
        }
    }
    // Let the last marks ripen, then sweep everything that is garbage.
    std::thread::sleep(std::time::Duration::from_millis(300));
    for _ in 0..3 {
        wait_ok(spawn(&ctx, &["prune", "-q"], "0"), "final prune");
    }
    let out = run(&mut ctx.cairn(["check", "--read-data"]));
    assert!(
        out.status.success(),
        "check after the race: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let list = run_ok(&mut ctx.cairn(["snapshots", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let kept: Vec<String> = v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        kept.len() >= BACKUPS,
        "forget keeps at least the newest of each source"
    );
    for id in &kept {
        let (_, files) = &expected[id];
        let target = ctx.root.join(format!("restore-{}", &id[..8]));
        run_ok(&mut ctx.cairn(["restore", id.as_str(), "--target", target.to_str().unwrap()]));
        for (name, content) in files {
            let got = fs::read(target.join(name)).unwrap();
            assert!(
                got == *content,
                "snapshot {id}: {name} differs after restore"
            );
        }
    }
    // Prune really deleted data: the repository holds little more than the kept snapshots.
    let packs = fs::read_dir(ctx.repo.join("data")).unwrap().count();
    assert!(packs > 0);
}

#[test]
fn forget_dry_run_names_the_rules_and_check_finds_a_flipped_byte() {
    let ctx = TestContext::new();
    ctx.init();
    let src = ctx.root.join("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..3 {
        // Incompressible, so the data pack is the biggest one.
        let data: Vec<u8> = (0..100_000 + i as u32)
            .map(|x| (x.wrapping_mul(2_654_435_761).rotate_left(i as u32 + 3) >> 11) as u8)
            .collect();
        fs::write(src.join("f"), data).unwrap();
        run_ok(&mut ctx.cairn(["backup", "-q", src.to_str().unwrap()]));
    }
    let out = run_ok(&mut ctx.cairn(["forget", "--keep-last", "1", "--dry-run", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let snaps = v["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 3);
    assert_eq!(snaps[0]["keep"], true);
    assert_eq!(snaps[0]["reasons"][0], "last");
    assert_eq!(v["removed"], 2);
    // A dry run changes nothing.
    let list = run_ok(&mut ctx.cairn(["snapshots", "--json"]));
    let l: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(l["snapshots"].as_array().unwrap().len(), 3);
    // diff between the first and the last: the file changed size and content.
    let first = l["snapshots"][0]["id"].as_str().unwrap().to_string();
    let out = run_ok(&mut ctx.cairn(["diff", first.as_str(), "latest"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("M f  (size, mtime, content)") || text.contains("M f  (size, content"),
        "{text}"
    );
    // Flip one byte in the middle of the biggest pack: check --read-data finds it, names
    // the file, and exits 1.
    let mut packs: Vec<_> = walk(&ctx.repo.join("data"));
    packs.sort_by_key(|p| fs::metadata(p).unwrap().len());
    let big = packs.last().unwrap();
    let mut bytes = fs::read(big).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(big, bytes).unwrap();
    let out = run(&mut ctx.cairn(["check", "--read-data"]));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("damaged: pack"), "{text}");
    assert!(
        text.contains("affected: snapshot") && text.contains("file f:"),
        "{text}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
