//! Cairn's test kit: everything tests need around storage, in one dev-dependency.
//!
//! - [`FaultStorage`]: a layer that fails, drops or truncates writes, fails reads and
//!   injects temporary errors, with per-operation call counters.
//! - [`behaviour_trials`]: the storage behaviour suite every backend must pass, as
//!   `libtest-mimic` trials (run by `tests/behaviour/main.rs` against memory, local and,
//!   the real servers named by `CAIRN_TEST_<BACKEND>_URL`).
//! - [`servers`]: finding those servers (s3s-fs, moto, Azurite, fake-gcs-server) and
//!   skipping or failing (in CI) when one is absent.
//! - [`random_name`]: unique names for temporary roots and prefixes.
//!
//! Repository fixtures (`set_up_repo`, damaged repositories) will join once `cairn-repo`
//! settles.

pub mod behaviour;
pub mod fault;
pub mod proxy;
pub mod servers;

pub use behaviour::{Outcome, behaviour_trials, pattern};
pub use fault::{FaultStorage, Injected, Op, Trigger, WriteFault};
pub use proxy::FaultProxy;
pub use servers::TestServer;

/// A random name such as `cairn-test-1f2e3d4c5b6a7988`, for temporary roots and prefixes.
///
/// # Panics
///
/// If the operating system has no randomness to give.
pub fn random_name(prefix: &str) -> String {
    let mut bytes = [0_u8; 8];
    #[allow(
        clippy::expect_used,
        reason = "test support: without randomness no test can run"
    )]
    getrandom::fill(&mut bytes).expect("invariant: the OS provides randomness");
    format!("{prefix}-{}", hex::encode(bytes))
}
