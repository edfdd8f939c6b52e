//! Shared helpers: the database servers' environment, processes we start and stop, and a
//! repository to copy data directories into.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_kube::hooks::{EnvSource, HookExecutor, HookSpec, LocalExecutor, PodSelector, Recipe};
use cairn_repo::format::Snapshot;
use cairn_repo::{
    BackupOptions, CancellationToken, InitOptions, KdfParams, NoProgress, Repository,
    RestoreOptions,
};
use cairn_storage::LocalStorage;

/// The variables a server's setup step exports, or `None` (after a loud message) when they
/// are missing outside CI. In CI (`CAIRN_CI=1`) a missing server fails the test.
pub(crate) fn server_env(what: &str, vars: &[&str]) -> Option<Vec<String>> {
    let values: Vec<Option<String>> = vars.iter().map(|v| std::env::var(v).ok()).collect();
    if values.iter().all(Option::is_some) {
        return Some(values.into_iter().flatten().collect());
    }
    let missing: Vec<&str> = vars
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| *k)
        .collect();
    assert!(
        std::env::var("CAIRN_CI").as_deref() != Ok("1"),
        "{what} is not running: {missing:?} unset (scripts/ci.d/30-databases.sh starts it)"
    );
    eprintln!(
        "SKIPPED: no {what} server ({missing:?} unset); run `source scripts/ci.d/30-databases.sh` to test against one"
    );
    None
}

/// The user the database servers run as (`CAIRN_TEST_DB_RUNAS`, set when the tests run as
/// root), if any.
pub(crate) fn runas() -> Option<String> {
    std::env::var("CAIRN_TEST_DB_RUNAS")
        .ok()
        .filter(|u| !u.is_empty())
}

/// `program` run as the database user.
pub(crate) fn db_command(program: &str) -> Command {
    match runas() {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", &user, "--", program]);
            c
        }
        None => Command::new(program),
    }
}

/// Runs a command and returns its output.
pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and insists it succeeds; returns stdout.
pub(crate) fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free TCP port on loopback.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A short random suffix for table and key names (the servers are shared between runs).
pub(crate) fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}_{nanos}", std::process::id())
}

/// A server process we started: its whole process group is killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) log: PathBuf,
}

impl Server {
    /// Starts `cmd` in its own process group, logging to `log`.
    pub(crate) fn start(mut cmd: Command, log: &Path) -> Self {
        let f = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Self {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Polls `probe` until it succeeds (30 s deadline; the server answers when ready).
    pub(crate) fn wait_ready(&mut self, mut probe: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if probe() {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "server exited with {st}: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "server not ready in 30 s: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// A scratch directory the database user can use (created world-traversable, owned by it).
pub(crate) fn scratch(parent: &Path, name: &str) -> PathBuf {
    let p = parent.join(name);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    chown_to_db_user(&p);
    p
}

/// Gives `path` (recursively) to the database user, when the tests run as root.
pub(crate) fn chown_to_db_user(path: &Path) {
    if let Some(user) = runas() {
        run_ok(Command::new("chown").arg("-R").arg(&user).arg(path));
    }
}

/// A temporary directory others can traverse (the database user needs to).
pub(crate) fn tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A new repository on local disk under `dir`.
pub(crate) async fn repository(dir: &Path) -> Arc<Repository> {
    let mut o = InitOptions::default();
    o.kdf = KdfParams::insecure_for_tests();
    let storage = Arc::new(LocalStorage::new(dir.to_path_buf()));
    Arc::new(Repository::init(storage, b"hooks test", &o).await.unwrap())
}

/// Backs up `path` (a data directory) with the engine.
pub(crate) async fn backup(repo: &Arc<Repository>, path: &Path) -> Snapshot {
    cairn_repo::backup_paths(
        repo,
        &[path.to_path_buf()],
        &BackupOptions::default(),
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await
    .unwrap()
    .snapshot
}

/// Restores a snapshot to `target` (which must not exist or be empty), insisting on a clean
/// outcome.
pub(crate) async fn restore(repo: &Arc<Repository>, snap: &Snapshot, target: &Path) {
    let out = cairn_repo::restore(
        repo,
        snap,
        "test",
        "",
        target,
        &RestoreOptions::default(),
        Arc::new(NoProgress),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(out.errors.is_empty(), "restore reported {:#?}", out.errors);
}

/// The local executor, and a hook running `recipe` with `env` as literal values.
pub(crate) fn recipe_hook(
    recipe: Recipe,
    env: &[(&str, &str)],
) -> (Arc<dyn HookExecutor>, HookSpec) {
    let mut h = HookSpec::recipe("db", PodSelector::new("test", "app=db", Some("db")), recipe);
    h.timeout = Duration::from_secs(20);
    for (k, v) in env {
        h.env
            .insert((*k).to_owned(), EnvSource::Value((*v).to_owned()));
    }
    (Arc::new(LocalExecutor::new()), h)
}

/// Starts `mariadbd` on `data` (which the database user owns) on a free loopback port,
/// without grant tables, logging under `dir`; returns it once it answers, and its port.
pub(crate) fn start_mariadb(data: &Path, dir: &Path) -> (Server, String) {
    let run_dir = scratch(dir, "mariadb-run");
    let port = free_port().to_string();
    let mut cmd = db_command("mariadbd");
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", run_dir.join("sock").display()))
        .arg(format!("--pid-file={}", run_dir.join("pid").display()))
        .arg(format!("--port={port}"))
        .args(["--bind-address=127.0.0.1", "--skip-grant-tables"]);
    let mut server = Server::start(cmd, &dir.join("mariadbd.log"));
    server.wait_ready(|| {
        run(Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-P",
                &port,
                "-u",
                "root",
            ])
            .args(["-e", "SELECT 1"]))
        .status
        .success()
    });
    (server, port)
}
