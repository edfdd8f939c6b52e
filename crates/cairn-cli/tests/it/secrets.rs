//! Passphrases never reach stdout or stderr, even with `-vvv` and `CAIRN_LOG=trace`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::common::{TestContext, format_output, small_tree, write};

const PASS: &str = "Zebra-Quokka-7741-passphrase";
const NEW_PASS: &str = "Narwhal-Ocelot-3319-newpass";
const NEWER_PASS: &str = "Axolotl-Pangolin-5582-newer";
const WRONG_PASS: &str = "Wombat-Capybara-9903-wrong";

/// Runs `cmd` with trace logging and checks that no passphrase is in its output; returns
/// the output for further checks.
fn check(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.arg("-vvv").env("CAIRN_LOG", "trace");
    let out = if let Some(data) = stdin {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(data).expect("write stdin");
        drop(pipe);
        child.wait_with_output().expect("wait")
    } else {
        cmd.stdin(Stdio::null()).output().expect("run")
    };
    let text = format_output(&out);
    for secret in [PASS, NEW_PASS, NEWER_PASS, WRONG_PASS] {
        // Also as hex and as a byte list, the shapes a careless Debug would take.
        let hex = hex::encode(secret);
        let bytes = format!("{:?}", secret.as_bytes());
        for needle in [secret.to_string(), hex, bytes] {
            assert!(
                !text.contains(&needle),
                "{cmd:?} printed a passphrase ({needle}):\n{text}"
            );
        }
    }
    out
}

fn ok(cmd: &mut Command, stdin: Option<&[u8]>) {
    let out = check(cmd, stdin);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        format_output(&out)
    );
}

#[test]
fn passphrases_never_printed() {
    let mut ctx = TestContext::new();
    ctx.password = PASS.to_string();
    small_tree(&ctx.root);
    let image = ctx.root.join("disk.img");
    write(&image, vec![7u8; 300_000]);

    ok(
        &mut ctx.cairn(["init", "--kdf-memory", "64", "--kdf-iterations", "1"]),
        None,
    );
    // Trace logging is really on: the backup logs something.
    let out = check(&mut ctx.cairn(["backup", "tree"]), None);
    assert!(out.status.success(), "{}", format_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TRACE")
            || String::from_utf8_lossy(&out.stderr).contains("DEBUG"),
        "no debug or trace logs:\n{}",
        format_output(&out)
    );
    ok(&mut ctx.cairn(["backup", "--json", "tree"]), None);
    ok(&mut ctx.cairn(["backup", "--volume", "disk.img"]), None);
    ok(
        &mut ctx.cairn(["backup", "--stdin", "--name", "dump.sql"]),
        Some(b"SELECT 1;\n"),
    );
    ok(&mut ctx.cairn(["snapshots"]), None);
    ok(&mut ctx.cairn(["snapshots", "--json"]), None);
    ok(&mut ctx.cairn(["catalog", "latest", "-R"]), None);
    ok(
        &mut ctx.cairn(["restore", "latest", "--target", "out", "--verify"]),
        None,
    );
    ok(&mut ctx.cairn(["key", "list"]), None);
    ok(
        ctx.cairn(["key", "add", "--kdf-memory", "64", "--kdf-iterations", "1"])
            .env("CAIRN_NEW_PASSWORD", NEW_PASS),
        None,
    );
    // Open with the added key, and change its passphrase.
    ctx.password = NEW_PASS.to_string();
    ok(&mut ctx.cairn(["key", "list", "--json"]), None);
    ok(
        ctx.cairn([
            "key",
            "passwd",
            "--kdf-memory",
            "64",
            "--kdf-iterations",
            "1",
        ])
        .env("CAIRN_NEW_PASSWORD", NEWER_PASS),
        None,
    );
    // The passphrase from a file.
    let pass_file = ctx.root.join("pass.txt");
    write(&pass_file, format!("{NEWER_PASS}\n"));
    ok(
        ctx.cairn(["snapshots"])
            .arg("--password-file")
            .arg(&pass_file)
            .env_remove("CAIRN_PASSWORD"),
        None,
    );
    // Removing the first key (opened with the newest passphrase).
    ctx.password = NEWER_PASS.to_string();
    let out = check(&mut ctx.cairn(["key", "list", "--json"]), None);
    let keys = crate::common::json(&out);
    let other = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["current"] == false)
        .and_then(|k| k["id"].as_str())
        .expect("a key not in use")
        .to_string();
    ok(&mut ctx.cairn(["key", "remove", &other]), None);

    // Failures print no passphrase either.
    ctx.password = WRONG_PASS.to_string();
    let out = check(&mut ctx.cairn(["snapshots"]), None);
    assert_eq!(out.status.code(), Some(2));
    let out = check(&mut ctx.cairn(["backup", "tree", "--json"]), None);
    assert_eq!(out.status.code(), Some(2));
    // The first passphrase no longer opens anything (its key was removed).
    ctx.password = PASS.to_string();
    let out = check(&mut ctx.cairn(["snapshots"]), None);
    assert_eq!(out.status.code(), Some(2));
}

/// The embedded default is created with the passphrase; that path logs no secret either.
#[test]
fn passphrase_not_printed_creating_the_default_repository() {
    let mut ctx = TestContext::new();
    ctx.password = PASS.to_string();
    small_tree(&ctx.root);
    ok(ctx.command().args(["backup", "tree"]), None);
}
