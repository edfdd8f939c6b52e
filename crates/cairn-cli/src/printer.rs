//! The only place that prints: results to stdout, messages to stderr; human or JSON.

use std::io::Write;

use serde::Serialize;

use crate::args::GlobalArgs;

/// Output settings and the writers.
#[derive(Debug, Clone)]
pub(crate) struct Printer {
    pub(crate) json: bool,
    pub(crate) quiet: bool,
    pub(crate) verbose: u8,
    pub(crate) no_progress: bool,
}

/// Version of the JSON output schema.
pub(crate) const JSON_SCHEMA: u32 = 1;

#[allow(
    clippy::unused_self,
    reason = "all output goes through the printer, also output no setting changes"
)]
impl Printer {
    pub(crate) fn new(g: &GlobalArgs) -> Self {
        Self {
            json: g.json,
            quiet: g.quiet,
            verbose: g.verbose,
            no_progress: g.no_progress,
        }
    }

    /// A line of human output on stdout.
    #[allow(
        clippy::print_stdout,
        reason = "the printer is the one place that prints results"
    )]
    pub(crate) fn line(&self, s: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{s}")
    }

    /// One JSON document (or JSON Lines event) on stdout.
    pub(crate) fn json<T: Serialize>(&self, value: &T) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, value).map_err(std::io::Error::other)?;
        writeln!(out)
    }

    /// A message on stderr (not in quiet mode).
    #[allow(
        clippy::print_stderr,
        reason = "the printer is the one place that prints messages"
    )]
    pub(crate) fn info(&self, s: &str) {
        if !self.quiet && !self.json {
            eprintln!("{s}");
        }
    }

    /// A warning on stderr (always, also in JSON mode, where stdout stays machine-readable).
    #[allow(
        clippy::print_stderr,
        reason = "the printer is the one place that prints messages"
    )]
    pub(crate) fn warn(&self, s: &str) {
        eprintln!("warning: {s}");
    }

    /// An error on stderr.
    #[allow(
        clippy::print_stderr,
        reason = "the printer is the one place that prints messages"
    )]
    pub(crate) fn error(&self, s: &str) {
        if self.json {
            let v = serde_json::json!({"schema": JSON_SCHEMA, "type": "error", "message": s});
            eprintln!("{v}");
        } else {
            eprintln!("error: {s}");
        }
    }
}

/// Formats a byte count for humans (binary units).
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
