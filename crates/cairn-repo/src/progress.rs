//! Progress reporting: the engine calls a [`Progress`]; the CLI renders it.

use std::sync::Arc;

/// Receives progress of a long operation. Calls are frequent and must be cheap.
pub trait Progress: Send + Sync {
    /// A phase starts, with totals when known.
    fn start(&self, _phase: &str, _total_bytes: Option<u64>, _total_items: Option<u64>) {}
    /// Totals became known (or changed).
    fn set_totals(&self, _total_bytes: Option<u64>, _total_items: Option<u64>) {}
    /// Bytes processed.
    fn add_bytes(&self, _n: u64) {}
    /// Items (files, chunks) processed.
    fn add_items(&self, _n: u64) {}
    /// A problem that did not stop the operation (a skipped file).
    fn warn(&self, _message: &str) {}
    /// The phase ended.
    fn finish(&self) {}
}

/// Discards all progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A shared progress handle.
pub type DynProgress = Arc<dyn Progress>;
