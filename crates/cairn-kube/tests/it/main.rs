//! Integration tests of cairn-kube: logic on real manifests (`manifests`), and end to end
//! against the in-process API server (`server`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines,
    clippy::print_stderr,
    reason = "test helpers outside #[test] functions: a failed setup must stop the test"
)]

mod fixtures;
mod manifests;
