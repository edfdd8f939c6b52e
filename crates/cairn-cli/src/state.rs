//! Where the local state lives: `$CAIRN_STATE_DIR`, else `<state dir>/cairn` (Linux:
//! `~/.local/state/cairn`), else `<data dir>/cairn`. The database is `state.db` there;
//! other files in that directory belong to other parts of cairn.

use std::path::PathBuf;

use anyhow::Context;
use cairn_state::StateDb;

/// The state directory.
pub(crate) fn dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("CAIRN_STATE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let base = dirs::state_dir()
        .or_else(dirs::data_dir)
        .context("no state or data directory for the local state; set CAIRN_STATE_DIR")?;
    Ok(base.join("cairn"))
}

/// Opens the state database.
pub(crate) fn open() -> anyhow::Result<StateDb> {
    let path = dir()?.join(cairn_state::DB_FILE);
    StateDb::open(&path).with_context(|| format!("opening the local state at {}", path.display()))
}
