//! The storage behaviour suite, run against every backend we can reach.
//!
//! Always: `memory`, `local` (a temporary directory), `opendal-memory` (the remote code path
//! over OpenDAL's in-memory service) and `flaky-memory` (memory behind a fault layer that
//! fails every third call temporarily, and the retry layer). Also every real server named by
//! `CAIRN_TEST_<B>_URL` for B in s3 (s3s-fs), moto, azblob (Azurite), gcs (fake-gcs-server),
//! configured by the `CAIRN_TEST_<B>_*` variables (see `crates/cairn-testkit/SERVERS.md`);
//! a missing one is skipped with a notice, or fails the run when `CAIRN_CI` is set.
//! Every run and every trial get a random root.

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
use cairn_testkit::{FaultStorage, behaviour_trials, random_name, servers};
use libtest_mimic::{Arguments, Trial};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let mut trials = Vec::new();

    trials.extend(behaviour_trials(
        "memory",
        || Arc::new(MemoryStorage::new()),
    ));

    trials.extend(behaviour_trials("memory-lock", || {
        Arc::new(MemoryStorage::with_object_lock())
    }));

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

    for backend in servers::BACKENDS {
        match remote_trials(backend) {
            Ok(Some(remote)) => trials.extend(remote),
            Ok(None) => {}
            Err(message) => {
                eprintln!("remote backend {backend}: {message}");
                return ExitCode::FAILURE;
            }
        }
    }

    let conclusion = libtest_mimic::run(&args, trials);
    drop(dir);
    conclusion.exit_code()
}

fn remote_trials(backend: &str) -> Result<Option<Vec<Trial>>, String> {
    let Some(server) = servers::server(backend)? else {
        return Ok(None);
    };
    let location = Location::parse(&server.url).map_err(|err| err.to_string())?;
    let Location::Remote {
        service,
        bucket,
        prefix,
    } = location
    else {
        return Err(format!("{} is not a remote location", server.url));
    };
    let mut opts =
        RemoteOptions::from_vars(|name| server.var(name)).map_err(|err| err.to_string())?;
    // 8 MiB parts, so that the suite's 12 MiB object goes up as a multipart upload.
    opts.chunk_size.get_or_insert(8 * 1024 * 1024);
    let run = random_name("cairn-test");
    eprintln!("remote backend {backend}: {} under {run}/", server.url);
    let make = move || -> DynStorage {
        let root = [prefix.as_str(), run.as_str(), &random_name("trial")]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        Location::Remote {
            service,
            bucket: bucket.clone(),
            prefix: root,
        }
        .open(&opts)
        .expect("the remote options were already checked")
    };
    let trials = behaviour_trials(backend, make)
        .into_iter()
        .map(|trial| {
            let known = SERVER_BUGS
                .iter()
                .find(|(b, case, _)| *b == backend && trial.name() == format!("{b}::{case}"));
            match known {
                Some((_, _, why)) => {
                    eprintln!("{} skipped, a bug of the server: {why}", trial.name());
                    trial.with_ignored_flag(true)
                }
                None => trial,
            }
        })
        .collect();
    Ok(Some(trials))
}

/// Trials that fail because of the test server, not Cairn (each is explained in
/// `crates/cairn-testkit/SERVERS.md`). They are reported as ignored.
const SERVER_BUGS: &[(&str, &str, &str)] = &[
    (
        "s3",
        "write_new_race_has_one_winner",
        "s3s-fs checks If-None-Match: * and then writes, not atomically",
    ),
    (
        "s3",
        "stat_of_a_directory_is_none",
        "s3s-fs answers HEAD of a key prefix with 500, not 404",
    ),
    (
        "gcs",
        "write_new_refuses_existing",
        "fake-gcs-server ignores ifGenerationMatch=0 on uploads",
    ),
    (
        "gcs",
        "write_new_race_has_one_winner",
        "fake-gcs-server ignores ifGenerationMatch=0 on uploads",
    ),
];
