//! Shared fixtures: a temporary world per test (home, data dir, repository), a `cairn`
//! command that never sees the developer's environment, and snapshot formatting.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The passphrase most tests use.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// The `cairn` binary built for this test run.
pub(crate) fn cairn_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cairn")
}

/// One test's world: a temporary directory holding `home/`, `data/` (`XDG_DATA_HOME`) and
/// `repo/` (the repository most commands use).
pub(crate) struct TestContext {
    _temp: TempDir,
    /// The temporary directory, canonical (no symlinks), so that paths printed by cairn match.
    pub(crate) root: PathBuf,
    /// `root/repo`.
    pub(crate) repo: PathBuf,
    /// `root/data`: `XDG_DATA_HOME`.
    pub(crate) data: PathBuf,
    /// The passphrase set with `CAIRN_PASSWORD`.
    pub(crate) password: String,
}

impl TestContext {
    pub(crate) fn new() -> Self {
        let temp = tempfile::Builder::new()
            .prefix("cairn-cli-it")
            .tempdir()
            .expect("temporary directory");
        let root = fs::canonicalize(temp.path()).expect("canonical temporary directory");
        let data = root.join("data");
        fs::create_dir_all(root.join("home")).expect("home");
        fs::create_dir_all(&data).expect("data");
        Self {
            repo: root.join("repo"),
            data,
            root,
            _temp: temp,
            password: PASSWORD.to_string(),
        }
    }

    /// `cairn` with a clean environment: no inherited `CAIRN_*` variable, `HOME` and
    /// `XDG_DATA_HOME` inside the temporary directory, a fixed user, time zone and terminal
    /// width, `CAIRN_PASSWORD` set, and the temporary directory as working directory. No
    /// `--repo`: see [`Self::cairn`].
    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(cairn_bin());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CAIRN_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("HOME", self.root.join("home"))
            .env("XDG_DATA_HOME", &self.data)
            .env("CAIRN_STATE_DIR", self.root.join("state"))
            .env("USER", "tester")
            .env("LOGNAME", "tester")
            .env("TZ", "UTC")
            .env("COLUMNS", "100")
            .env("NO_COLOR", "1")
            .env("CAIRN_PASSWORD", &self.password)
            .current_dir(&self.root);
        cmd
    }

    /// `cairn ARGS --repo <root>/repo`.
    pub(crate) fn cairn<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args).arg("--repo").arg(&self.repo);
        cmd
    }

    /// `cairn init` with a cheap KDF and the given extra flags; panics unless it succeeds.
    pub(crate) fn init_with(&self, extra: &[&str]) {
        let mut cmd = self.cairn(["init", "--kdf-memory", "64", "--kdf-iterations", "1"]);
        cmd.args(extra);
        run_ok(&mut cmd);
    }

    /// `cairn init` with a cheap KDF.
    pub(crate) fn init(&self) {
        self.init_with(&[]);
    }

    /// Regex filters for snapshots, most specific first.
    pub(crate) fn filters(&self) -> Vec<(String, String)> {
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let mut f = vec![
            // The temporary directory (already replaced by `run_and_format`; this catches
            // output formatted by hand).
            (escape(&self.root.to_string_lossy()), "[TMP]".to_string()),
            // Durations and rates.
            (
                r#""elapsed_seconds":[0-9.e-]+"#.to_string(),
                r#""elapsed_seconds":"[ELAPSED]""#.to_string(),
            ),
            (
                r#""duration_ms":[0-9]+"#.to_string(),
                r#""duration_ms":"[ELAPSED]""#.to_string(),
            ),
            (
                r"in [0-9]+\.[0-9]+s".to_string(),
                "in [ELAPSED]".to_string(),
            ),
            // Sizes of what was stored: tree metadata holds times and inode numbers, so their
            // encoded, compressed size varies from run to run. (Zero stays visible.)
            (
                r"(added|stored) [1-9][0-9.]* (B|KiB|MiB)".to_string(),
                "$1 [SIZE]".to_string(),
            ),
            (
                r#""(bytes_added|bytes_stored)":[1-9][0-9]*"#.to_string(),
                r#""$1":"[SIZE]""#.to_string(),
            ),
            // Times.
            (
                r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)".to_string(),
                "[TIME]".to_string(),
            ),
            (
                r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(:[0-9]{2})?( UTC)?".to_string(),
                "[TIME]".to_string(),
            ),
            // Ids: full, then short.
            (r"\b[0-9a-f]{64}\b".to_string(), "[ID]".to_string()),
            (r"\b[0-9a-f]{8}\b".to_string(), "[ID]".to_string()),
            // Owner of files: the catalog's uid and gid columns.
            (
                r"(?m)^([-dlpcbs][rwxsStT-]{9})\s+[0-9]+\s+[0-9]+ ".to_string(),
                "$1 [UID] [GID] ".to_string(),
            ),
            (
                r#""uid":[0-9]+"#.to_string(),
                r#""uid":"[UID]""#.to_string(),
            ),
            (
                r#""gid":[0-9]+"#.to_string(),
                r#""gid":"[GID]""#.to_string(),
            ),
        ];
        // The machine's host name (key list); backups pass `--host testhost`.
        f.push((format!(r"\b{}\b", escape(&host)), "[HOST]".to_string()));
        f
    }

    /// Runs `cmd` and renders exit code, stdout and stderr with the temporary directory
    /// replaced by `[TMP]` (regex filters are applied by the snapshot macro).
    pub(crate) fn run_and_format(
        &self,
        mut cmd: impl std::borrow::BorrowMut<Command>,
    ) -> (String, Output) {
        let output = cmd.borrow_mut().output().expect("run cairn");
        let text = format_output(&output);
        (self.redact_paths(&text), output)
    }

    /// Replaces the temporary directory with `[TMP]`.
    pub(crate) fn redact_paths(&self, s: &str) -> String {
        let root = self.root.to_string_lossy();
        s.replace(root.as_ref(), "[TMP]")
    }
}

/// Escapes regex metacharacters.
fn escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii() {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

/// `success`, `exit_code`, stdout and stderr as one text.
pub(crate) fn format_output(output: &Output) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "success: {}", output.status.success());
    let _ = writeln!(
        s,
        "exit_code: {}",
        output
            .status
            .code()
            .map_or_else(|| format!("{:?}", output.status), |c| c.to_string())
    );
    let _ = writeln!(s, "----- stdout -----");
    s.push_str(&String::from_utf8_lossy(&output.stdout));
    let _ = writeln!(s, "----- stderr -----");
    s.push_str(&String::from_utf8_lossy(&output.stderr));
    s
}

/// Runs a command and panics, showing its output, unless it exits 0.
pub(crate) fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run cairn");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        format_output(&out)
    );
    out
}

/// Runs a command and returns its output whatever the exit status.
pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run cairn")
}

/// Snapshot of a command: `cairn_snapshot!(ctx, cmd, @"…")`. Returns the `Output`.
#[macro_export]
macro_rules! cairn_snapshot {
    ($ctx:expr, $cmd:expr, @$snapshot:literal) => {{
        let (snapshot, output) = $ctx.run_and_format($cmd);
        let mut settings = ::insta::Settings::clone_current();
        for (matcher, replacement) in $ctx.filters() {
            settings.add_filter(&matcher, replacement);
        }
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| {
            ::insta::assert_snapshot!(snapshot, @$snapshot);
        });
        output
    }};
}

/// Writes a file, creating its parent directories.
pub(crate) fn write(path: &Path, data: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("create parent directories");
    }
    fs::write(path, data).expect("write file");
}

/// Sets the permission bits of a path.
pub(crate) fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The small fixed tree of the snapshot tests:
///
/// ```text
/// tree/             0755
/// tree/a.txt        "hello\n"              0644
/// tree/empty        ""                     0600
/// tree/link      -> a.txt
/// tree/sub/         0750
/// tree/sub/b.bin    1000 bytes 0..=255     0644
/// ```
pub(crate) fn small_tree(root: &Path) -> PathBuf {
    let tree = root.join("tree");
    write(&tree.join("a.txt"), "hello\n");
    write(&tree.join("empty"), "");
    let bin: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    write(&tree.join("sub/b.bin"), bin);
    std::os::unix::fs::symlink("a.txt", tree.join("link")).expect("symlink");
    chmod(&tree, 0o755);
    chmod(&tree.join("a.txt"), 0o644);
    chmod(&tree.join("empty"), 0o600);
    chmod(&tree.join("sub"), 0o750);
    chmod(&tree.join("sub/b.bin"), 0o644);
    tree
}

/// A tree as a sorted list of (relative path, description): file contents hashed, symlink
/// targets, directories. Used to compare a restore with what was backed up.
pub(crate) fn manifest(root: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("dir entry"))
            .collect();
        entries.sort_by_key(fs::DirEntry::file_name);
        for e in entries {
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .into_owned();
            let ft = e.file_type().expect("file type");
            if ft.is_symlink() {
                let target = fs::read_link(&path).expect("read_link");
                out.push((rel, format!("symlink {}", target.display())));
            } else if ft.is_dir() {
                out.push((rel, "dir".to_string()));
                walk(base, &path, out);
            } else {
                let data = fs::read(&path).expect("read file");
                out.push((
                    rel,
                    format!("file {} {}", data.len(), blake3::hash(&data).to_hex()),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// Parses stdout as one JSON document.
pub(crate) fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            format_output(output)
        )
    })
}

/// `cairn init` (cheap KDF) of another repository at `path`, with its own passphrase.
pub(crate) fn init_other(ctx: &TestContext, path: &Path, passphrase: &str) {
    run_ok(
        ctx.command()
            .args([
                "init",
                "--kdf-memory",
                "64",
                "--kdf-iterations",
                "1",
                "--repo",
            ])
            .arg(path)
            .env("CAIRN_PASSWORD", passphrase),
    );
}

/// The `"type": "summary"` line of a `--json` run that also streams progress events.
pub(crate) fn json_summary(output: &Output) -> serde_json::Value {
    output
        .stdout
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary line:\n{}", format_output(output)))
}

/// The ids of all snapshots, oldest first.
pub(crate) fn snapshot_ids(ctx: &TestContext) -> Vec<String> {
    let out = run_ok(&mut ctx.cairn(["snapshots", "--json"]));
    json(&out)["snapshots"]
        .as_array()
        .expect("snapshots array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

/// A small deterministic PRNG (SplitMix64) so that randomised tests print and reuse a seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}

/// The seed of a randomised test: `CAIRN_TEST_SEED` if set, else from the clock.
pub(crate) fn seed() -> u64 {
    if let Ok(s) = std::env::var("CAIRN_TEST_SEED") {
        return s.parse().expect("CAIRN_TEST_SEED is a u64");
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
