//! Which process runs an operation, identified so that a reused pid is not mistaken for it.
//!
//! A pid alone is not enough: after the process dies the kernel hands the number to another
//! one. On Linux the stamp adds the process start time (field 22 of `/proc/PID/stat`, clock
//! ticks since boot) and the boot id, which together name one process for good. Elsewhere
//! the liveness of a process is [`Liveness::Unknown`] and operations are never reaped.

use serde::{Deserialize, Serialize};

/// A process: its pid and, where known, when it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStamp {
    /// The process id.
    pub pid: u32,
    /// `BOOT_ID:START_TICKS` on Linux; empty where unknown.
    pub start: String,
}

/// Whether the process of a stamp still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The same process still runs.
    Alive,
    /// It ended (or its pid now belongs to another process).
    Dead,
    /// Cannot tell on this system.
    Unknown,
}

impl ProcessStamp {
    /// The stamp of this process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            pid,
            start: start_of(pid).unwrap_or_default(),
        }
    }

    /// Whether the process still runs.
    pub fn liveness(&self) -> Liveness {
        if self.start.is_empty() || !cfg!(target_os = "linux") {
            return Liveness::Unknown;
        }
        match start_of(self.pid) {
            Some(s) if s == self.start => Liveness::Alive,
            _ => Liveness::Dead,
        }
    }
}

/// `BOOT_ID:START_TICKS` of a running process; `None` if it does not run (or is a zombie).
fn start_of(pid: u32) -> Option<String> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let boot = fs_err::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let (state, ticks) = parse_stat(&stat)?;
    if matches!(state, 'Z' | 'X' | 'x') {
        return None;
    }
    Some(format!("{}:{ticks}", boot.trim()))
}

/// The state letter and start time of a `/proc/PID/stat` line. The command name (field 2)
/// is in parentheses and may itself hold spaces and parentheses, so fields are counted from
/// the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // `state` is field 3; `starttime` is field 22.
    let ticks = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, ticks))
}

#[cfg(test)]
mod tests;
