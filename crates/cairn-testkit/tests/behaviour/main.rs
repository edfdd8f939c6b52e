//! The storage behaviour suite, run against every backend we can reach.
//!
//! Always: `memory`, `local` (a temporary directory), `opendal-memory` (the remote code path
//! over OpenDAL's in-memory service) and `flaky-memory` (memory behind a fault layer that
//! fails every third call temporarily, and the retry layer). With
//! `CAIRN_TEST_STORAGE=s3|azblob|gcs` and `CAIRN_TEST_STORAGE_URL=<scheme>://bucket/prefix`
//! also that remote backend, configured by `RemoteOptions::from_env()`
//! (see `crates/cairn-testkit/SERVERS.md`). Every run and every trial get a random root.

#![allow(
    clippy::expect_used,
    clippy::print_stderr,
    reason = "a harness-less test binary: setup failures panic and the skip notice goes to stderr"
)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cairn_storage::{
    DynStorage, LocalStorage, Location, MemoryStorage, RemoteOptions, RemoteStorage, RetryOptions,
    RetryStorage,
};
use cairn_testkit::{FaultStorage, behaviour_trials, random_name};
use libtest_mimic::{Arguments, Trial};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let mut trials = Vec::new();

    trials.extend(behaviour_trials(
        "memory",
        || Arc::new(MemoryStorage::new()),
    ));

    let dir = tempfile::tempdir().expect("a temporary directory");
    let base = dir.path().to_path_buf();
    trials.extend(behaviour_trials("local", move || {
        Arc::new(LocalStorage::new(base.join(random_name("repo"))))
    }));

    trials.extend(behaviour_trials("opendal-memory", || {
        let op = opendal::Operator::new(opendal::services::Memory::default())
            .expect("OpenDAL memory operator");
        Arc::new(RemoteStorage::from_operator(op, "opendal-memory"))
    }));

    trials.extend(behaviour_trials("flaky-memory", || {
        let fault = FaultStorage::new(MemoryStorage::new());
        fault.temporary_every(3);
        let retry =
            RetryOptions::default().with_delays(Duration::from_millis(1), Duration::from_millis(5));
        Arc::new(RetryStorage::new(fault, retry))
    }));

    match remote_trials() {
        Ok(Some(remote)) => trials.extend(remote),
        Ok(None) => {
            eprintln!("remote backend skipped: CAIRN_TEST_STORAGE not set (s3, azblob or gcs)");
        }
        Err(message) => {
            eprintln!("remote backend misconfigured: {message}");
            return ExitCode::FAILURE;
        }
    }

    let conclusion = libtest_mimic::run(&args, trials);
    drop(dir);
    conclusion.exit_code()
}

fn remote_trials() -> Result<Option<Vec<Trial>>, String> {
    let Ok(service) = std::env::var("CAIRN_TEST_STORAGE") else {
        return Ok(None);
    };
    if service.is_empty() {
        return Ok(None);
    }
    let url = std::env::var("CAIRN_TEST_STORAGE_URL")
        .map_err(|_| format!("CAIRN_TEST_STORAGE={service} needs CAIRN_TEST_STORAGE_URL, e.g. {service}://bucket/prefix"))?;
    let location = Location::parse(&url).map_err(|err| err.to_string())?;
    let Location::Remote {
        service: parsed,
        bucket,
        prefix,
    } = location
    else {
        return Err(format!(
            "CAIRN_TEST_STORAGE_URL={url} is not a remote location"
        ));
    };
    let expected = if service == "gcs" {
        "gs"
    } else {
        service.as_str()
    };
    if parsed.scheme() != expected {
        return Err(format!("CAIRN_TEST_STORAGE={service} but the URL is {url}"));
    }
    let opts = RemoteOptions::from_env().map_err(|err| err.to_string())?;
    let run = random_name("cairn-test");
    eprintln!("remote backend: {url} under {run}/");
    let make = move || -> DynStorage {
        let root = [prefix.as_str(), run.as_str(), &random_name("trial")]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        Location::Remote {
            service: parsed,
            bucket: bucket.clone(),
            prefix: root,
        }
        .open(&opts)
        .expect("the remote options were already checked")
    };
    Ok(Some(behaviour_trials(&service, make)))
}
