//! Integration tests of cairn-kube: logic on real manifests (`manifests`), and end to end
//! against the in-process API server (`server`); the hook recipes against real MariaDB,
//! PostgreSQL and Redis servers started on loopback by `scripts/ci.d/30-databases.sh`
//! (`databases`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines,
    clippy::print_stderr,
    clippy::cast_possible_wrap,
    reason = "test helpers outside #[test] functions: a failed setup must stop the test"
)]

mod databases;
mod dumps;
mod fixtures;
mod manifests;
mod server;
mod support;
