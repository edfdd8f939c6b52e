//! End-to-end tests of the test API server through the real kube-rs client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value,
    clippy::similar_names,
    reason = "test helpers outside #[test] functions"
)]

mod crd;
mod crud;
mod discovery;
mod exec;
mod subresources;
mod watch;

use cairn_kube_testserver::TestServer;

async fn server() -> TestServer {
    TestServer::start().await.unwrap()
}
