//! Waiting for the cluster to reach a state (a CRD established, a snapshot ready, a Job done):
//! poll with a timeout. Uses tokio time, so tests can pause and advance the clock; in tests
//! against the in-process API server, the test plays the controller and the poll sees it.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// How often and how long to wait.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    /// Give up after this long.
    pub timeout: Duration,
    /// Check this often.
    pub interval: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_mins(5),
            interval: Duration::from_millis(500),
        }
    }
}

/// Calls `check` until it returns `Some`, an error, or the timeout passes.
///
/// # Errors
/// `Timeout` naming `what`; any error of `check`.
pub async fn until<T, F, Fut>(what: &str, policy: WaitPolicy, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + policy.timeout;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_owned(),
                after: policy.timeout,
            });
        }
        tokio::time::sleep(policy.interval).await;
    }
}

/// The status of the condition `type_` in `status.conditions`, if present.
pub fn condition<'a>(obj: &'a serde_json::Value, type_: &str) -> Option<&'a str> {
    obj.get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(serde_json::Value::as_str) == Some(type_))?
        .get("status")?
        .as_str()
}
