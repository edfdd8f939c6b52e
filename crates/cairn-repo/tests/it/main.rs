//! Engine integration tests for `cairn-repo`: one binary (STYLE §5.4).
//!
//! Every test builds its repository in memory (or in a temporary directory), backs up small
//! trees, images and streams made under `tempfile` directories, restores them and compares
//! bit for bit. Modules:
//!
//! - `roundtrip`: random trees (proptest) and one tree with every kind of entry.
//! - `incremental`: unchanged files are not re-read, `full` re-reads, snapshots are synthetic
//!   fulls.
//! - `volume`: images with random, compressible, zero and sparse regions; incremental volume
//!   backups; verify; restore targets.
//! - `stream`: standard-input style backups.
//! - `corruption`: every stored object with a flipped bit, truncated packs.
//! - `keys`: passphrases.
//! - `catalog`: listings and snapshot references.
//! - `crash`: a failing write at every point of a backup (`FaultStorage`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines,
    clippy::cast_possible_wrap,
    clippy::many_single_char_names,
    clippy::unnecessary_debug_formatting,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub,
    reason = "test code: a failed expectation is a test failure"
)]

mod support;

mod catalog;
mod copy;
mod corruption;
mod crash;
mod immutable;
mod incremental;
mod keys;
mod maint;
mod roundtrip;
mod stream;
mod volume;
mod volume_cbt;
