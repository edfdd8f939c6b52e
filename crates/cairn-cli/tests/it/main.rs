//! Integration tests of the `cairn` binary: output snapshots, exit codes, the default
//! repository, interrupts, kill -9 crash consistency, secrets, volumes and stdin.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::print_stdout,
    unreachable_pub,
    missing_docs
)]

mod common;

mod app;
mod copy;
mod default_repo;
mod errors;
mod interrupt;
mod kill;
mod maint;
mod object_lock;
mod ops;
mod output;
mod remote;
mod secrets;
mod volume;
mod volume_cbt;
