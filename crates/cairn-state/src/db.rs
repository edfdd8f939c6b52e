//! The database file: opening, the schema, and short write transactions.
//!
//! SQLite in WAL mode lets readers run while one writer writes, across processes. Writers
//! take the lock at the start of their transaction (`BEGIN IMMEDIATE`), so two writers never
//! deadlock upgrading a read lock, and wait for each other through the busy timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// The newest schema version this build knows (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// How long a writer waits for another one before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS operations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    location    TEXT NOT NULL,
    schedule    TEXT,
    state       TEXT NOT NULL,
    bytes_done  INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER,
    files       INTEGER NOT NULL DEFAULT 0,
    started_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    finished_ms INTEGER,
    error       TEXT,
    pid         INTEGER NOT NULL,
    proc_start  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_state ON operations (state);
CREATE INDEX IF NOT EXISTS operations_schedule ON operations (schedule, id);
CREATE TABLE IF NOT EXISTS schedules (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL,
    paused      INTEGER NOT NULL DEFAULT 0,
    created_ms  INTEGER NOT NULL,
    next_due_ms INTEGER,
    runs        INTEGER NOT NULL DEFAULT 0
);
";

/// The open state database. One connection, shared by the threads of a process.
#[derive(Debug)]
pub struct StateDb {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl StateDb {
    /// Opens (creating if needed) the database `path`, and its directory.
    ///
    /// # Errors
    /// The directory or the file cannot be created, the file is not a database, or it was
    /// written by a newer cairn.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs_err::create_dir_all(dir).map_err(|source| Error::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let path = path.to_path_buf();
        let db_err = |what: &str| {
            let path = path.clone();
            let what = what.to_string();
            move |source| Error::Db { path, what, source }
        };
        let conn = Connection::open(&path).map_err(db_err("opening"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(db_err("setting the busy timeout"))?;
        // Switching to WAL needs a moment of exclusive access. SQLite answers BUSY at once,
        // without the busy handler, when a concurrent opener holds a lock it cannot wait for
        // (two processes creating the file together), so this retries until the busy timeout.
        // The mode is persistent, so later opens find it set.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        let mode: String = loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                r => break r.map_err(db_err("enabling the write-ahead log"))?,
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "state database is not in WAL mode");
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(db_err("setting pragmas"))?;
        let db = Self {
            path,
            conn: Mutex::new(conn),
        };
        db.migrate()?;
        Ok(db)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&self) -> Result<()> {
        let path = self.path.clone();
        self.write("creating the schema", move |tx| {
            let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if found > SCHEMA_VERSION {
                return Ok(Err(Error::TooNew {
                    path,
                    found,
                    known: SCHEMA_VERSION,
                }));
            }
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
            Ok(Ok(()))
        })?
    }

    /// Runs `f` in one `IMMEDIATE` transaction and commits it.
    pub(crate) fn write<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn.lock();
        let run = |conn: &mut Connection| -> rusqlite::Result<T> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v = f(&tx)?;
            tx.commit()?;
            Ok(v)
        };
        run(&mut conn).map_err(|source| self.err(what, source))
    }

    /// Runs `f` on the connection (reads).
    pub(crate) fn read<T>(
        &self,
        what: &str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let conn = self.conn.lock();
        f(&conn).map_err(|source| self.err(what, source))
    }

    pub(crate) fn err(&self, what: &str, source: rusqlite::Error) -> Error {
        Error::Db {
            path: self.path.clone(),
            what: what.to_string(),
            source,
        }
    }

    pub(crate) fn decode_err(&self, what: &str, source: serde_json::Error) -> Error {
        Error::Decode {
            path: self.path.clone(),
            what: what.to_string(),
            source,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn to_ms(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

/// The timestamp of stored milliseconds (the epoch if out of range, which only a damaged
/// file could hold).
pub(crate) fn from_ms(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}
