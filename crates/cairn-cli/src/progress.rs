//! Progress: indicatif bars on a terminal, periodic log lines otherwise, JSON Lines events
//! with `--json`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_repo::{DynProgress, NoProgress, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;

use crate::printer::{JSON_SCHEMA, Printer, human_bytes};

/// Chooses the progress display for this run.
pub(crate) fn for_run(printer: &Printer, op: &'static str) -> DynProgress {
    if printer.json {
        return Arc::new(Periodic::new(
            op,
            true,
            Duration::from_secs(1),
            printer.clone(),
        ));
    }
    if printer.quiet || printer.no_progress {
        return Arc::new(NoProgress);
    }
    if std::io::stderr().is_terminal() && printer.verbose == 0 {
        return Arc::new(Bar::new());
    }
    Arc::new(Periodic::new(
        op,
        false,
        Duration::from_secs(10),
        printer.clone(),
    ))
}

/// A terminal progress bar: bytes, items, rate, ETA.
#[allow(clippy::struct_field_names, reason = "the indicatif bar")]
struct Bar {
    bar: ProgressBar,
    items: AtomicU64,
    warnings: AtomicU64,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
        Self {
            bar,
            items: AtomicU64::new(0),
            warnings: AtomicU64::new(0),
        }
    }

    fn style(&self, known: bool) {
        let t = if known {
            "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
        } else {
            "{prefix} [{elapsed_precise}] {spinner} {bytes} {binary_bytes_per_sec} {msg}"
        };
        if let Ok(s) = ProgressStyle::with_template(t) {
            self.bar.set_style(s);
        }
    }
}

impl Progress for Bar {
    fn start(&self, phase: &str, total_bytes: Option<u64>, _total_items: Option<u64>) {
        self.bar.set_prefix(phase.to_string());
        self.set_totals(total_bytes, None);
        self.bar.reset();
    }
    fn set_totals(&self, total_bytes: Option<u64>, _total_items: Option<u64>) {
        self.style(total_bytes.is_some());
        if let Some(t) = total_bytes {
            self.bar.set_length(t);
        }
    }
    fn add_bytes(&self, n: u64) {
        self.bar.inc(n);
    }
    fn add_items(&self, n: u64) {
        let before = self.items.fetch_add(n, Ordering::Relaxed);
        if (before + n) / 512 != before / 512 || before < 512 {
            self.bar.set_message(format!("{} files", before + n));
        }
    }
    fn warn(&self, message: &str) {
        self.warnings.fetch_add(1, Ordering::Relaxed);
        self.bar.suspend(|| {
            #[allow(clippy::print_stderr, reason = "warnings interleave with the bar")]
            {
                eprintln!("warning: {message}");
            }
        });
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Log lines (or JSON events) every `every`.
struct Periodic {
    op: &'static str,
    json: bool,
    every: Duration,
    printer: Printer,
    bytes: AtomicU64,
    items: AtomicU64,
    total: AtomicU64,
    started: Instant,
    last: Mutex<Instant>,
}

impl Periodic {
    fn new(op: &'static str, json: bool, every: Duration, printer: Printer) -> Self {
        let now = Instant::now();
        Self {
            op,
            json,
            every,
            printer,
            bytes: AtomicU64::new(0),
            items: AtomicU64::new(0),
            total: AtomicU64::new(0),
            started: now,
            last: Mutex::new(now),
        }
    }

    fn event(&self, kind: &str) {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let items = self.items.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        if self.json {
            let v = serde_json::json!({
                "schema": JSON_SCHEMA, "type": kind, "operation": self.op,
                "bytes_done": bytes, "bytes_total": (total > 0).then_some(total), "items_done": items,
                "elapsed_seconds": secs,
            });
            let _ = self.printer.json(&v);
        } else {
            let pct = if total > 0 {
                format!(" ({:.1}%)", bytes as f64 * 100.0 / total as f64)
            } else {
                String::new()
            };
            let rate = human_bytes((bytes as f64 / secs.max(0.001)) as u64);
            self.printer.info(&format!(
                "{}: {}{pct}, {items} files, {rate}/s, {secs:.0}s elapsed",
                self.op,
                human_bytes(bytes)
            ));
        }
    }

    fn tick(&self) {
        let due = {
            let Ok(mut last) = self.last.lock() else {
                return;
            };
            if last.elapsed() >= self.every {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        if due {
            self.event("progress");
        }
    }
}

impl Progress for Periodic {
    fn start(&self, _phase: &str, total_bytes: Option<u64>, _total_items: Option<u64>) {
        self.total
            .store(total_bytes.unwrap_or(0), Ordering::Relaxed);
        if self.json {
            self.event("begin");
        }
    }
    fn set_totals(&self, total_bytes: Option<u64>, _total_items: Option<u64>) {
        self.total
            .store(total_bytes.unwrap_or(0), Ordering::Relaxed);
    }
    fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.tick();
    }
    fn add_items(&self, n: u64) {
        self.items.fetch_add(n, Ordering::Relaxed);
    }
    fn warn(&self, message: &str) {
        self.printer.warn(message);
    }
    fn finish(&self) {
        if self.json {
            self.event("end");
        }
    }
}
