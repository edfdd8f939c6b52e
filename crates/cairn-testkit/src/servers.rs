//! The real object-storage servers tests can use, found through the environment.
//!
//! `scripts/ci.d/20-storage.sh` starts one server per backend and exports, for each backend
//! `B` in [`BACKENDS`], `CAIRN_TEST_B_URL` (bucket and prefix) and the storage variables Cairn
//! reads, prefixed: `CAIRN_TEST_B_AWS_ACCESS_KEY_ID`, `CAIRN_TEST_B_CAIRN_S3_ENDPOINT`, …
//! [`TestServer::vars`] gives them back without the prefix, ready for
//! `RemoteOptions::from_vars` or a child process's environment.
//!
//! A test that needs a server calls [`server`]: when the variable is absent it is skipped
//! with a printed reason, unless `CAIRN_CI` is set, in which case the absence is an error.

use std::collections::BTreeMap;

/// The backends the CI starts a server for: s3s-fs, moto, Azurite, fake-gcs-server.
pub const BACKENDS: [&str; 4] = ["s3", "moto", "azblob", "gcs"];

/// One running server and the variables to reach it.
#[derive(Clone)]
pub struct TestServer {
    /// The backend name (`s3`, `moto`, `azblob`, `gcs`).
    pub name: String,
    /// The location of the test area, e.g. `s3://cairn-test/ci`.
    pub url: String,
    vars: BTreeMap<String, String>,
}

impl TestServer {
    /// The storage variables (`AWS_ACCESS_KEY_ID`, `CAIRN_S3_ENDPOINT`, …) without the
    /// `CAIRN_TEST_B_` prefix.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// One variable, as `RemoteOptions::from_vars` wants it.
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    /// A fresh, unique location under the test area (`<url>/<random>`).
    pub fn fresh_url(&self, what: &str) -> String {
        format!(
            "{}/{}",
            self.url.trim_end_matches('/'),
            crate::random_name(what)
        )
    }
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The variables hold keys; show only their names.
        f.debug_struct("TestServer")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// True when running in CI (`CAIRN_CI` set and not `0`): missing servers are failures.
pub fn in_ci() -> bool {
    std::env::var("CAIRN_CI").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The server for `backend` from the process environment, if its `CAIRN_TEST_B_URL` is set.
pub fn find(backend: &str) -> Option<TestServer> {
    find_in(backend, std::env::vars())
}

/// Like [`find`], over any set of variables.
pub fn find_in(
    backend: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Option<TestServer> {
    let prefix = format!("CAIRN_TEST_{}_", backend.to_ascii_uppercase());
    let mut found: BTreeMap<String, String> = vars
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_owned(), v)))
        .collect();
    let url = found.remove("URL").filter(|u| !u.is_empty())?;
    Some(TestServer {
        name: backend.to_owned(),
        url,
        vars: found,
    })
}

/// The server a test needs: `Ok(Some)` when configured; `Ok(None)` (after printing why the
/// test is skipped) when not and outside CI; `Err` when not and in CI.
///
/// # Errors
///
/// A message naming the missing variable, in CI.
pub fn server(backend: &str) -> Result<Option<TestServer>, String> {
    if let Some(server) = find(backend) {
        return Ok(Some(server));
    }
    let var = format!("CAIRN_TEST_{}_URL", backend.to_ascii_uppercase());
    if in_ci() {
        return Err(format!(
            "{var} is not set but CAIRN_CI is: scripts/ci.d/20-storage.sh should have started the {backend} server"
        ));
    }
    #[allow(
        clippy::print_stderr,
        reason = "test support: a skipped test must say so loudly"
    )]
    {
        eprintln!(
            "SKIPPED: {var} not set; start the servers with scripts/ci.d/20-storage.sh (see crates/cairn-testkit/SERVERS.md)"
        );
    }
    Ok(None)
}
