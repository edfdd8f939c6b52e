//! Volume incrementals through the CLI: CSI changed-block lists, rejected lists, verifying a
//! source against its snapshot, a real ext4 image, and a 1 TiB sparse volume whose peak
//! memory is measured.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{Rng, TestContext, format_output, manifest, run, run_ok, snapshot_ids};

const MIB: u64 = 1 << 20;

fn csi(capacity: u64, blocks: &[(u64, u64)]) -> String {
    let b: Vec<String> = blocks
        .iter()
        .map(|(o, l)| format!(r#"{{"byte_offset":{o},"size_bytes":{l}}}"#))
        .collect();
    format!(
        r#"{{"block_metadata_type":"VARIABLE_LENGTH","volume_capacity_bytes":{capacity},"block_metadata":[{}]}}"#,
        b.join(",")
    )
}

/// The last JSON line of stdout (the summary).
fn summary(out: &std::process::Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().expect("a summary line")).expect("json")
}

fn write_at(path: &Path, off: u64, data: &[u8]) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    f.write_all_at(data, off).expect("write");
}

#[test]
fn changed_block_lists_through_the_cli() {
    let ctx = TestContext::new();
    ctx.init();
    let img = ctx.root.join("disk.img");
    let cap = 8 * MIB;
    std::fs::File::create(&img)
        .expect("create")
        .set_len(cap)
        .expect("size");
    let mut rng = Rng::new(11);
    write_at(&img, 0, &rng.bytes(3 * MIB as usize));
    let backup = |extra: &[&str]| {
        let mut c = ctx.cairn(["backup", "--json", "--host", "h", "--volume", "disk.img"]);
        c.args(extra);
        run(&mut c)
    };
    // A list without a parent: exit 2, nothing written.
    std::fs::write(ctx.root.join("l1.json"), csi(cap, &[(0, 4096)])).expect("list");
    let out = backup(&["--changed-blocks", "l1.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", format_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a parent snapshot"),
        "{}",
        format_output(&out)
    );
    assert!(snapshot_ids(&ctx).is_empty());
    // A malformed list: exit 2 before the repository is touched.
    std::fs::write(ctx.root.join("bad.txt"), "0,4096\nnonsense\n").expect("list");
    let out = backup(&["--changed-blocks", "bad.txt"]);
    assert_eq!(out.status.code(), Some(2), "{}", format_output(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));

    let out = backup(&[]);
    assert!(out.status.success(), "{}", format_output(&out));

    // Three changed blocks, as two streamed CSI responses (JSON lines).
    let writes = [(4096u64, 4096u64), (MIB + 8192, 4096), (5 * MIB, 4096)];
    for &(o, l) in &writes {
        write_at(&img, o, &rng.bytes(l as usize));
    }
    let lines = format!("{}\n{}\n", csi(cap, &writes[..1]), csi(cap, &writes[1..]));
    std::fs::write(ctx.root.join("delta.jsonl"), lines).expect("list");
    // Capacity mismatch: refused, or a logged full read with --full-on-mismatch.
    std::fs::write(ctx.root.join("wrongcap.json"), csi(cap * 2, &writes)).expect("list");
    let out = backup(&["--changed-blocks", "wrongcap.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", format_output(&out));
    assert_eq!(snapshot_ids(&ctx).len(), 1);
    let out = backup(&["--changed-blocks", "wrongcap.json", "--full-on-mismatch"]);
    assert!(out.status.success(), "{}", format_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reading the whole volume instead"),
        "{}",
        format_output(&out)
    );
    // The whole volume, but for 4 MiB pieces that are holes in the image: [0, 4 MiB) holds
    // the data, [4, 8 MiB) the write at 5 MiB.
    assert_eq!(summary(&out)["summary"]["bytes_read"], 8 * MIB);

    let out = backup(&["--changed-blocks", "delta.jsonl"]);
    assert!(out.status.success(), "{}", format_output(&out));
    let s = summary(&out);
    assert_eq!(s["summary"]["bytes_read"], 3 * 4096, "{s}");
    run_ok(&mut ctx.cairn(["restore", "latest", "--target", "out.img", "--verify"]));
    assert!(
        std::fs::read(ctx.root.join("out.img")).expect("read")
            == std::fs::read(&img).expect("read")
    );
    // The source matches its snapshot...
    run_ok(&mut ctx.cairn(["restore", "latest", "--target", "disk.img", "--verify-only"]));
    // ...until a write the next list leaves out: the snapshot misses it, and comparing the
    // source with the snapshot finds it (exit 1).
    write_at(&img, 6 * MIB, &rng.bytes(4096));
    write_at(&img, 7 * MIB, &rng.bytes(4096));
    std::fs::write(ctx.root.join("partial.txt"), format!("{},4096\n", 6 * MIB)).expect("list");
    let out = backup(&["--changed-blocks", "partial.txt"]);
    assert!(out.status.success(), "{}", format_output(&out));
    let out = run(&mut ctx.cairn(["restore", "latest", "--target", "disk.img", "--verify-only"]));
    assert_eq!(out.status.code(), Some(1), "{}", format_output(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("chunk at offset {}", 7 * MIB)),
        "{err}"
    );
    assert!(
        !err.contains(&format!("chunk at offset {} ", 6 * MIB)),
        "{err}"
    );
}

fn e2fs_available() -> bool {
    let ok = Command::new("mkfs.ext4")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none() && std::env::var_os("CAIRN_CI").is_none(),
            "mkfs.ext4 (e2fsprogs) is missing in CI: scripts/test.sh installs it"
        );
        eprintln!("SKIPPED: mkfs.ext4 not found (install e2fsprogs)");
    }
    ok
}

fn sh(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("run tool");
    assert!(out.status.success(), "{cmd:?}:\n{}", format_output(&out));
    out
}

/// An ext4 image made with `mkfs.ext4 -d`, changed with debugfs, backed up incrementally
/// from `--since-image`, restored: `e2fsck -fn` passes and its files equal the source's.
#[test]
fn ext4_image_survives_an_incremental_round_trip() {
    if !e2fs_available() {
        return;
    }
    let ctx = TestContext::new();
    ctx.init();
    let src = ctx.root.join("src");
    let mut rng = Rng::new(12);
    crate::common::write(&src.join("data/a.bin"), rng.bytes(700_000));
    crate::common::write(&src.join("data/b.txt"), "hello ext4\n".repeat(1000));
    crate::common::write(&src.join("keep.txt"), "unchanged\n");
    let img = ctx.root.join("fs.img");
    std::fs::File::create(&img)
        .expect("create")
        .set_len(64 * MIB)
        .expect("size");
    sh(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "4096", "-d"])
        .arg(&src)
        .arg(&img));
    run_ok(&mut ctx.cairn(["backup", "--host", "h", "--volume", "fs.img"]));
    std::fs::copy(&img, ctx.root.join("old.img")).expect("copy");
    crate::common::write(&ctx.root.join("new.bin"), rng.bytes(300_000));
    for req in [
        "write new.bin data/new.bin",
        "rm data/a.bin",
        "mkdir more",
        "write keep.txt more/copy.txt",
    ] {
        let mut c = Command::new("debugfs");
        c.current_dir(&ctx.root).args(["-w", "-R", req]).arg(&img);
        sh(&mut c);
    }
    let keep = ctx.root.join("keep.txt");
    std::fs::write(&keep, "unchanged\n").expect("keep");
    let out = run_ok(&mut ctx.cairn([
        "backup",
        "--json",
        "--host",
        "h",
        "--volume",
        "fs.img",
        "--since-image",
        "old.img",
    ]));
    let s = summary(&out);
    let read = s["summary"]["bytes_read"].as_u64().expect("bytes_read");
    assert!(read > 0 && read < 4 * MIB, "read {read} bytes of 64 MiB");
    run_ok(&mut ctx.cairn(["restore", "latest", "--target", "out.img", "--verify"]));
    sh(Command::new("e2fsck")
        .args(["-fn"])
        .arg(ctx.root.join("out.img")));
    let (d1, d2) = (ctx.root.join("dump-src"), ctx.root.join("dump-out"));
    for (imgp, d) in [(&img, &d1), (&ctx.root.join("out.img"), &d2)] {
        std::fs::create_dir_all(d).expect("mkdir");
        let mut c = Command::new("debugfs");
        c.arg("-R")
            .arg(format!("rdump / {}", d.display()))
            .arg(imgp);
        sh(&mut c);
    }
    let m = manifest(&d2);
    assert_eq!(manifest(&d1), m);
    assert!(m.iter().any(|(p, _)| p == "data/new.bin"), "{m:?}");
    assert!(!m.iter().any(|(p, _)| p == "data/a.bin"), "{m:?}");
}

/// Runs a command and samples its peak RSS (VmHWM) until it exits. Returns the output and
/// the peak in KiB.
fn run_measured(mut cmd: Command) -> (std::process::Output, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    // VmHWM is itself a high-water mark: the last reading before exit is the peak (up to
    // the last few milliseconds of the run).
    while child.try_wait().expect("wait").is_none() {
        if let Ok(s) = std::fs::read_to_string(&status_path)
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    (child.wait_with_output().expect("output"), peak)
}

/// Peak RSS bound of a volume backup or restore, documented in docs/benchmarks.md.
const PEAK_RSS_LIMIT_KIB: u64 = 256 * 1024;

/// A 1 TiB sparse volume holding 256 MiB of data in 1 MiB extents: a backup from its
/// allocated-block list, a 0.1% changed-block incremental and a restore, each under the
/// documented memory bound.
#[test]
fn one_tib_sparse_volume_in_bounded_memory() {
    let ctx = TestContext::new();
    ctx.init();
    let img = ctx.root.join("big.img");
    let cap = 1u64 << 40;
    let f = std::fs::File::create(&img).expect("create");
    f.set_len(cap).expect("sparse 1 TiB");
    let mut rng = Rng::new(13);
    let mut extents: Vec<u64> = (0..256).map(|_| rng.below(cap / MIB) * MIB).collect();
    extents.sort_unstable();
    extents.dedup();
    for &o in &extents {
        f.write_all_at(&rng.bytes(MIB as usize), o).expect("write");
    }
    drop(f);
    let blocks: Vec<(u64, u64)> = extents.iter().map(|&o| (o, MIB)).collect();
    std::fs::write(ctx.root.join("alloc.json"), csi(cap, &blocks)).expect("list");
    let mut peaks = Vec::new();
    let mut step = |what: &str, args: &[&str]| {
        let (out, peak) = run_measured(ctx.cairn(args));
        assert!(out.status.success(), "{what}: {}", format_output(&out));
        eprintln!("{what}: peak RSS {} MiB", peak / 1024);
        peaks.push((what.to_string(), peak));
        out
    };
    let out = step(
        "backup (allocated list)",
        &[
            "backup",
            "--json",
            "--volume",
            "big.img",
            "--allocated-blocks",
            "alloc.json",
        ],
    );
    assert_eq!(
        summary(&out)["summary"]["bytes_read"],
        extents.len() as u64 * MIB
    );
    // 0.1% of the data: 64 scattered 4 KiB writes.
    let mut changed = Vec::new();
    for _ in 0..64 {
        let o = extents[rng.below(extents.len() as u64) as usize] + rng.below(256) * 4096;
        if changed.contains(&(o, 4096)) {
            continue;
        }
        write_at(&img, o, &rng.bytes(4096));
        changed.push((o, 4096));
    }
    std::fs::write(ctx.root.join("delta.json"), csi(cap, &changed)).expect("list");
    let out = step(
        "incremental (0.1% changed)",
        &[
            "backup",
            "--json",
            "--volume",
            "big.img",
            "--changed-blocks",
            "delta.json",
        ],
    );
    assert_eq!(
        summary(&out)["summary"]["bytes_read"],
        changed.len() as u64 * 4096
    );
    step(
        "restore",
        &["restore", "latest", "--target", "out.img", "--verify"],
    );
    let out_img = ctx.root.join("out.img");
    let md = std::fs::metadata(&out_img).expect("stat");
    assert_eq!(md.len(), cap);
    assert!(
        md.blocks() * 512 < 2 * extents.len() as u64 * MIB,
        "restore is not sparse"
    );
    let (src, dst) = (
        std::fs::File::open(&img).expect("open"),
        std::fs::File::open(&out_img).expect("open"),
    );
    let (mut want, mut got) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    for &o in &extents {
        src.read_exact_at(&mut want, o).expect("read");
        dst.read_exact_at(&mut got, o).expect("read");
        assert!(want == got, "extent at {o} differs");
    }
    for (what, peak) in &peaks {
        assert!(
            *peak > 0 && *peak < PEAK_RSS_LIMIT_KIB,
            "{what}: peak RSS {peak} KiB over the {PEAK_RSS_LIMIT_KIB} KiB bound"
        );
    }
}
