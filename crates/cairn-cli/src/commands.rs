//! One module per subcommand; each `run` returns the exit status.

mod app;
mod backup;
mod catalog;
mod copy;
mod credentials;
mod daemon;
mod init;
mod key;
mod maint;
pub(crate) mod maint_args;
mod restore;
mod schedule;
mod snapshots;
mod status;

use cairn_repo::{CancellationToken, SnapshotFilter};

use crate::args::{Cli, Command, FilterArgs};
use crate::exit::ExitStatus;
use crate::printer::Printer;

/// Dispatches to the subcommand.
pub(crate) async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let g = &cli.global;
    match cli.command {
        Command::Init(a) => init::run(g, &a, printer).await,
        Command::Backup(a) => backup::run(g, &a, printer).await,
        Command::Restore(a) => restore::run(g, &a, printer).await,
        Command::Snapshots(a) => snapshots::run(g, &a, printer).await,
        Command::Catalog(a) => catalog::run(g, &a, printer).await,
        Command::Key(k) => key::run(g, k, printer).await,
        Command::App(c) => app::run(g, *c, printer).await,
        Command::Status(a) => status::run(&a, printer).await,
        Command::Schedule(c) => schedule::run(g, c, printer),
        Command::Daemon(a) => daemon::run(g, &a, printer).await,
        Command::Credentials(c) => credentials::run(c, printer),
        Command::Copy(a) => copy::run(g, &a, printer).await,
        Command::Forget(a) => maint::forget(g, &a, printer).await,
        Command::Prune(a) => maint::prune(g, &a, printer).await,
        Command::Check(a) => maint::check(g, &a, printer).await,
        Command::Repair(a) => maint::repair(g, &a, printer).await,
        Command::Diff(a) => maint::diff(g, &a, printer).await,
        Command::Unlock(a) => maint::unlock(g, &a, printer).await,
    }
}

/// A token cancelled by the first Ctrl-C; a second one exits at once.
///
/// The handler is registered before this returns: `tokio::signal::ctrl_c()` only registers
/// when the spawned task first runs, and a Ctrl-C before that killed the process with the
/// default disposition instead of stopping cleanly.
pub(crate) fn cancel_on_ctrl_c(printer: &Printer) -> CancellationToken {
    let token = CancellationToken::new();
    let mut interrupts = match Interrupts::register() {
        Ok(i) => i,
        Err(e) => {
            printer.warn(&format!("cannot handle Ctrl-C: {e}"));
            return token;
        }
    };
    let t = token.clone();
    let p = printer.clone();
    tokio::spawn(async move {
        if interrupts.next().await {
            p.info("interrupted: finishing uploads of what was read, then stopping (Ctrl-C again to abort at once)");
            t.cancel();
            if interrupts.next().await {
                std::process::exit(130);
            }
        }
    });
    token
}

/// SIGINT (Ctrl-C), registered eagerly.
#[cfg(unix)]
struct Interrupts(tokio::signal::unix::Signal);

#[cfg(unix)]
impl Interrupts {
    fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::interrupt()).map(Self)
    }

    async fn next(&mut self) -> bool {
        self.0.recv().await.is_some()
    }
}

/// Ctrl-C, registered eagerly.
#[cfg(windows)]
struct Interrupts(tokio::signal::windows::CtrlC);

#[cfg(windows)]
impl Interrupts {
    fn register() -> std::io::Result<Self> {
        tokio::signal::windows::ctrl_c().map(Self)
    }

    async fn next(&mut self) -> bool {
        self.0.recv().await.is_some()
    }
}

impl From<&FilterArgs> for SnapshotFilter {
    fn from(f: &FilterArgs) -> Self {
        let mut s = SnapshotFilter::default();
        s.hosts.clone_from(&f.hosts);
        s.tags.clone_from(&f.tags);
        s.sources.clone_from(&f.sources);
        s
    }
}

/// Splits `SNAPSHOT[:PATH]`.
pub(crate) fn split_ref(s: &str) -> (&str, &str) {
    s.split_once(':').unwrap_or((s, ""))
}
