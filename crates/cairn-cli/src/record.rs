//! Recording operations in the local state, so `cairn status` shows them from any process.
//!
//! The hook for every long-running command is one call around the engine call:
//!
//! ```ignore
//! let outcome = record::track(
//!     g, printer, OperationKind::Prune, &source, progress,
//!     |progress| prune(&repo, &opts, progress, cancel.clone()),
//! ).await?;
//! ```
//!
//! `track` records the operation as active (with this process's pid and start time), wraps
//! the progress so bytes and files are written at most once a second from a background
//! thread (never from the engine's threads), and records the end: done, cancelled (the
//! engine's `Interrupted`) or failed with the error. Recording never fails the operation: a
//! state that cannot be written gives one warning and the command goes on.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use cairn_repo::{DynProgress, Progress};
use cairn_state::{NewOperation, OpState, OperationKind, OperationUpdate, StateDb};

use crate::args::GlobalArgs;
use crate::printer::Printer;

/// How often progress is written.
const UPDATE_EVERY: Duration = Duration::from_secs(1);

/// Environment variable the daemon sets on the commands it starts: the schedule's name.
pub(crate) const SCHEDULE_ENV: &str = "CAIRN_SCHEDULE";

/// Runs `f` as a recorded operation of `kind` on `source`; see the module docs.
///
/// # Errors
/// Those of `f`; recording itself never fails.
pub(crate) async fn track<T, E, F, Fut>(
    g: &GlobalArgs,
    printer: &Printer,
    kind: OperationKind,
    source: &str,
    progress: DynProgress,
    f: F,
) -> anyhow::Result<T>
where
    F: FnOnce(DynProgress) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let rec = Recording::begin(g, printer, kind, source);
    let result = f(rec.progress(progress)).await.map_err(Into::into);
    rec.end(&result);
    result
}

/// Counters the progress wrapper fills and the writer thread reads.
#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    total: AtomicU64,
    files: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> OperationUpdate {
        let total = self.total.load(Ordering::Relaxed);
        OperationUpdate::new(
            self.bytes.load(Ordering::Relaxed),
            (total > 0).then_some(total),
            self.files.load(Ordering::Relaxed),
        )
    }
}

/// Warns once about a state that cannot be written.
struct Warner {
    printer: Printer,
    warned: AtomicBool,
}

impl Warner {
    fn warn(&self, err: &dyn std::fmt::Display) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            self.printer.warn(&format!(
                "cannot record this operation in the local state ({err:#}); it goes on unrecorded"
            ));
        }
    }
}

/// One recorded operation (see [`track`]).
pub(crate) struct Recording {
    counters: Arc<Counters>,
    db: Option<(Arc<StateDb>, i64)>,
    warner: Arc<Warner>,
    writer: Option<(Sender<()>, JoinHandle<()>)>,
    ended: bool,
}

impl Recording {
    /// Records the start of an operation.
    pub(crate) fn begin(
        g: &GlobalArgs,
        printer: &Printer,
        kind: OperationKind,
        source: &str,
    ) -> Self {
        let warner = Arc::new(Warner {
            printer: printer.clone(),
            warned: AtomicBool::new(false),
        });
        let counters = Arc::new(Counters::default());
        let location = crate::repo::location(g).map_or_else(|_| String::new(), |(l, _)| l);
        let mut op = NewOperation::new(kind, source, &location);
        op.schedule = std::env::var(SCHEDULE_ENV).ok().filter(|s| !s.is_empty());
        let db = crate::state::open()
            .and_then(|db| Ok((db.begin_operation(&op)?, db)))
            .map(|(id, db)| (Arc::new(db), id));
        let db = match db {
            Ok(d) => Some(d),
            Err(e) => {
                warner.warn(&e);
                None
            }
        };
        let writer = db.as_ref().and_then(|(db, id)| {
            let (tx, rx) = channel::<()>();
            let (db, id, c, w) = (db.clone(), *id, counters.clone(), warner.clone());
            std::thread::Builder::new()
                .name("cairn-state".into())
                .spawn(move || {
                    let mut last = OperationUpdate::default();
                    while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(UPDATE_EVERY) {
                        let now = c.snapshot();
                        if now != last {
                            if let Err(e) = db.update_operation(id, now) {
                                w.warn(&e);
                            }
                            last = now;
                        }
                    }
                })
                .map_err(|e| warner.warn(&e))
                .ok()
                .map(|h| (tx, h))
        });
        Self {
            counters,
            db,
            warner,
            writer,
            ended: false,
        }
    }

    /// Wraps `inner` so that progress is also recorded.
    pub(crate) fn progress(&self, inner: DynProgress) -> DynProgress {
        Arc::new(Tee {
            inner,
            counters: self.counters.clone(),
        })
    }

    /// Records the end: done, cancelled or failed.
    pub(crate) fn end<T>(mut self, result: &anyhow::Result<T>) {
        let (state, error) = match result {
            Ok(_) => (OpState::Done, None),
            Err(e) if crate::exit::is_interrupted(e) => (
                OpState::Cancelled,
                Some("interrupted by the user".to_string()),
            ),
            Err(e) => (OpState::Failed, Some(crate::exit::message(e))),
        };
        self.finish(state, error.as_deref());
    }

    fn finish(&mut self, state: OpState, error: Option<&str>) {
        self.ended = true;
        if let Some((tx, handle)) = self.writer.take() {
            drop(tx);
            let _ = handle.join();
        }
        if let Some((db, id)) = &self.db
            && let Err(e) = db.finish_operation(*id, state, self.counters.snapshot(), error)
        {
            self.warner.warn(&e);
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.ended {
            self.finish(OpState::Failed, Some("ended without a result"));
        }
    }
}

/// Forwards progress to the display and counts it for the state.
struct Tee {
    inner: DynProgress,
    counters: Arc<Counters>,
}

impl Progress for Tee {
    fn start(&self, phase: &str, total_bytes: Option<u64>, total_items: Option<u64>) {
        self.counters.bytes.store(0, Ordering::Relaxed);
        self.counters
            .total
            .store(total_bytes.unwrap_or(0), Ordering::Relaxed);
        self.inner.start(phase, total_bytes, total_items);
    }
    fn set_totals(&self, total_bytes: Option<u64>, total_items: Option<u64>) {
        self.counters
            .total
            .store(total_bytes.unwrap_or(0), Ordering::Relaxed);
        self.inner.set_totals(total_bytes, total_items);
    }
    fn add_bytes(&self, n: u64) {
        self.counters.bytes.fetch_add(n, Ordering::Relaxed);
        self.inner.add_bytes(n);
    }
    fn add_items(&self, n: u64) {
        self.counters.files.fetch_add(n, Ordering::Relaxed);
        self.inner.add_items(n);
    }
    fn warn(&self, message: &str) {
        self.inner.warn(message);
    }
    fn finish(&self) {
        self.inner.finish();
    }
}
