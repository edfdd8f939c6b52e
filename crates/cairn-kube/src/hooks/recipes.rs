//! Built-in recipes: the pre, session and post steps that quiesce common databases. What each
//! one guarantees is documented in `docs/kubernetes.md` ("Hooks").
//!
//! Every recipe runs through `sh` in the container and takes its credentials from the
//! environment (the container's own, e.g. `MARIADB_ROOT_PASSWORD` of the official images, or
//! the hook's `env`), so no password appears in a command line or a record.

use serde::{Deserialize, Serialize};

use super::spec::{SessionSpec, Steps};

/// Printed by a session recipe once the database is quiesced.
pub const READY_MARKER: &str = "cairn-quiesced";
/// Printed by the PostgreSQL recipe before and after the `backup_label` contents.
pub(crate) const LABEL_BEGIN: &str = "cairn-backup-label-begin";
/// See [`LABEL_BEGIN`].
pub(crate) const LABEL_END: &str = "cairn-backup-label-end";

/// A built-in recipe, by name: `{"name": "postgresql"}`, `{"name": "fsfreeze", "path": "/data"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum Recipe {
    /// MariaDB or MySQL: `FLUSH TABLES WITH READ LOCK` held in a session.
    #[serde(alias = "mysql")]
    Mariadb,
    /// PostgreSQL: `pg_backup_start` … `pg_backup_stop` in a session (9.6–14 names too).
    #[serde(alias = "postgres")]
    Postgresql,
    /// MongoDB: `db.fsyncLock()` before, `db.fsyncUnlock()` after (mongosh).
    Mongodb,
    /// Redis: `BGSAVE`, then wait until it finished and succeeded.
    Redis,
    /// Freeze a mounted filesystem (`fsfreeze`; needs a privileged container).
    Fsfreeze {
        /// Mount point.
        path: String,
    },
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// Shell lines that set the MariaDB password from the container's environment: `MYSQL_PWD`,
/// else the images' `MARIADB_ROOT_PASSWORD` / `MYSQL_ROOT_PASSWORD` (the hook recipe and the
/// dump recipe, `crate::dump`, share them).
pub(crate) const MARIADB_PASSWORD: &str = r#"p="${MYSQL_PWD:-${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}}"
if [ -n "$p" ]; then export MYSQL_PWD="$p"; else unset MYSQL_PWD; fi
"#;

/// Shell lines that set the PostgreSQL user and password: the libpq variables, defaulting to
/// the image's `POSTGRES_USER` (else `postgres`) and `POSTGRES_PASSWORD`.
pub(crate) const PG_CREDENTIALS: &str = r#"export PGUSER="${PGUSER:-${POSTGRES_USER:-postgres}}"
if [ -z "${PGPASSWORD:-}" ] && [ -n "${POSTGRES_PASSWORD:-}" ]; then export PGPASSWORD="$POSTGRES_PASSWORD"; fi
"#;

/// Client for MariaDB (or MySQL). Host and port: `MYSQL_HOST`, `MYSQL_TCP_PORT` (the client
/// reads them); user: `CAIRN_MYSQL_USER` (default root); password: [`MARIADB_PASSWORD`].
fn mariadb_client() -> String {
    format!(
        "{MARIADB_PASSWORD}c=$(command -v mariadb || command -v mysql) || \
         {{ echo \"no mariadb or mysql client in this container\" >&2; exit 127; }}\n\
         exec \"$c\" --batch --unbuffered --skip-column-names --user=\"${{CAIRN_MYSQL_USER:-root}}\""
    )
}

/// `psql` reading from stdin. Connection: the libpq variables (`PGHOST`, `PGPORT`,
/// `PGDATABASE`) and [`PG_CREDENTIALS`].
fn psql_client() -> String {
    format!(
        "{PG_CREDENTIALS}exec psql -X -q -A -t -v ON_ERROR_STOP=1 -d \"${{PGDATABASE:-postgres}}\""
    )
}

const PG_START: &str = r"SELECT current_setting('server_version_num')::int >= 150000 AS cairn_pg15 \gset
\if :cairn_pg15
SELECT pg_backup_start('cairn', true);
\else
SELECT pg_start_backup('cairn', true, false);
\endif
\echo cairn-quiesced
";

const PG_STOP: &str = r"\echo cairn-backup-label-begin
\if :cairn_pg15
SELECT labelfile FROM pg_backup_stop(true);
\else
SELECT labelfile FROM pg_stop_backup(false, true);
\endif
\echo cairn-backup-label-end
\q
";

/// `mongosh` with `MONGODB_URI` (default `mongodb://127.0.0.1:27017`) and, when set, the
/// official image's `MONGO_INITDB_ROOT_USERNAME` / `MONGO_INITDB_ROOT_PASSWORD`.
fn mongosh(eval: &str) -> Vec<String> {
    sh(&format!(
        r#"set -- --quiet "${{MONGODB_URI:-mongodb://127.0.0.1:27017}}" --eval '{eval}'
if [ -n "${{MONGO_INITDB_ROOT_USERNAME:-}}" ]; then
  set -- "$@" --username "$MONGO_INITDB_ROOT_USERNAME" --password "$MONGO_INITDB_ROOT_PASSWORD" --authenticationDatabase admin
fi
exec mongosh "$@""#
    ))
}

/// `BGSAVE` and wait: waits for the server clock to pass the last save (LASTSAVE has
/// one-second resolution), asks for a save (scheduled if a rewrite is running), and polls
/// `LASTSAVE` and `INFO persistence` until a newer save finished (a failing save never
/// moves `LASTSAVE`, so the hook runs into its timeout).
/// Connection: `REDIS_HOST`, `REDIS_PORT`; password: `REDISCLI_AUTH` (read by redis-cli),
/// else the common images' `REDIS_PASSWORD`.
const REDIS_BGSAVE: &str = r#"set -eu
if [ -z "${REDISCLI_AUTH:-}" ] && [ -n "${REDIS_PASSWORD:-}" ]; then export REDISCLI_AUTH="$REDIS_PASSWORD"; fi
cli() { redis-cli -h "${REDIS_HOST:-127.0.0.1}" -p "${REDIS_PORT:-6379}" "$@" | tr -d '\r'; }
before=$(cli LASTSAVE)
case "$before" in ''|*[!0-9]*) echo "LASTSAVE failed: $before" >&2; exit 1;; esac
while [ "$(cli TIME | head -n 1)" -le "$before" ]; do sleep 0.1; done
cli BGSAVE SCHEDULE
while :; do
  info=$(cli INFO persistence)
  now=$(cli LASTSAVE)
  case "$info" in *rdb_bgsave_in_progress:0*) [ "$now" -gt "$before" ] && break;; esac
  sleep 0.1
done
case "$info" in *rdb_last_bgsave_status:ok*) echo "saved at $now";; *) echo "BGSAVE failed" >&2; exit 1;; esac"#;

impl Recipe {
    /// The steps of this recipe.
    ///
    /// # Errors
    /// A message when a parameter is invalid (an fsfreeze path that is not absolute).
    pub fn steps(&self) -> Result<Steps, String> {
        Ok(match self {
            Self::Mariadb => Steps {
                pre: None,
                session: Some(SessionSpec::new(
                    sh(&mariadb_client()),
                    "FLUSH TABLES WITH READ LOCK;\nSELECT 'cairn-quiesced';\n",
                    READY_MARKER,
                    "UNLOCK TABLES;\nSELECT 'cairn-released';\n",
                )),
                post: None,
            },
            Self::Postgresql => Steps {
                pre: None,
                session: Some(SessionSpec::new(
                    sh(&psql_client()),
                    PG_START,
                    READY_MARKER,
                    PG_STOP,
                )),
                post: None,
            },
            Self::Mongodb => Steps {
                pre: Some(mongosh("db.fsyncLock()")),
                session: None,
                post: Some(mongosh("db.fsyncUnlock()")),
            },
            Self::Redis => Steps {
                pre: Some(sh(REDIS_BGSAVE)),
                session: None,
                post: None,
            },
            Self::Fsfreeze { path } => {
                if !path.starts_with('/') {
                    return Err(format!("fsfreeze path {path:?} must be absolute"));
                }
                let cmd = |op: &str| vec!["fsfreeze".to_owned(), op.to_owned(), path.clone()];
                Steps {
                    pre: Some(cmd("--freeze")),
                    session: None,
                    post: Some(cmd("--unfreeze")),
                }
            }
        })
    }
}

/// The `backup_label` the PostgreSQL recipe's release printed (its stdout, as recorded),
/// ending in one newline. Restore writes it as `backup_label` into the data directory: a
/// non-exclusive backup is only recoverable with it.
pub fn postgres_backup_label(stdout: &str) -> Option<String> {
    let start = stdout.find(LABEL_BEGIN)? + LABEL_BEGIN.len();
    let len = stdout[start..].find(LABEL_END)?;
    let label = stdout[start..start + len].trim_matches('\n');
    (!label.is_empty()).then(|| format!("{label}\n"))
}
