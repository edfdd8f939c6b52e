//! `cairn`: back up volumes, file trees and streams to an encrypted, deduplicated repository.

mod args;
mod commands;
mod credentials;
mod exit;
mod metrics;
mod printer;
mod progress;
mod record;
mod repo;
mod state;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::exit::ExitStatus;
use crate::printer::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(&cli.global);
    init_tracing(&cli.global);
    let threads = cli
        .global
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get));
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("cairn-worker-{i}"))
        .build_global()
    {
        printer.error(&format!("cannot start worker threads: {e}"));
        return ExitStatus::Error.into();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            printer.error(&format!("cannot start the async runtime: {e}"));
            return ExitStatus::Error.into();
        }
    };
    let status = runtime.block_on(commands::run(cli, &printer));
    // Do not wait for lingering blocking tasks (a stdin reader) on exit.
    runtime.shutdown_background();
    match status {
        Ok(s) => s.into(),
        Err(e) => exit::report(&printer, &e).into(),
    }
}

fn init_tracing(g: &args::GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let default = match g.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // OpenDAL's request signer (reqsign) logs its credential providers with their secrets at
    // debug level; keep it silent whatever the user asked for (issue 4: secrets are never
    // logged).
    let filter = match "reqsign=off".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .try_init();
}
