//! When a schedule fires: a cron expression in a time zone, or a fixed interval.
//!
//! Cron times are wall-clock times in the schedule's time zone (croner over jiff), so a
//! daily 02:30 job follows daylight saving time: on the spring-forward day, when 02:30 does
//! not exist, it runs at the first instant after the gap (03:00); on the fall-back day, when
//! 02:30 happens twice, it runs once.

use std::str::FromStr;

use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Trigger {
    /// A cron expression (5 fields, or 6 with seconds first) in a time zone.
    Cron {
        /// The expression.
        expr: String,
        /// An IANA time zone name; `None`: the system's zone when evaluated.
        timezone: Option<String>,
    },
    /// Every `seconds` seconds.
    Interval {
        /// The period.
        seconds: u64,
    },
}

impl Trigger {
    /// A cron trigger, checked.
    ///
    /// # Errors
    /// The expression does not parse, or the time zone is unknown.
    pub fn cron(expr: &str, timezone: Option<&str>) -> Result<Self> {
        let t = Self::Cron {
            expr: expr.trim().to_string(),
            timezone: timezone.map(str::to_string),
        };
        t.check()?;
        Ok(t)
    }

    /// An interval trigger from text like `90s`, `15m`, `1h`, `1d`.
    ///
    /// # Errors
    /// The text does not parse or is zero.
    pub fn interval(text: &str) -> Result<Self> {
        Ok(Self::Interval {
            seconds: parse_interval(text)?,
        })
    }

    /// Checks the expression and the time zone.
    ///
    /// # Errors
    /// As [`Self::cron`].
    pub fn check(&self) -> Result<()> {
        match self {
            Self::Cron { expr, timezone } => {
                parse_cron(expr)?;
                zone(timezone.as_deref())?;
                Ok(())
            }
            Self::Interval { seconds: 0 } => Err(Error::Interval("0".into())),
            Self::Interval { .. } => Ok(()),
        }
    }

    /// The first firing time strictly after `after`.
    ///
    /// # Errors
    /// The expression or zone became invalid (a stored record from another build), or no
    /// time matches (an expression like `0 0 30 2 *`).
    pub fn next_after(&self, after: Timestamp) -> Result<Timestamp> {
        match self {
            Self::Interval { seconds } => {
                let secs =
                    i64::try_from(*seconds).map_err(|_| Error::Interval(seconds.to_string()))?;
                after
                    .checked_add(SignedDuration::from_secs(secs))
                    .map_err(Error::Time)
            }
            Self::Cron { expr, timezone } => {
                let cron = parse_cron(expr)?;
                let start = Zoned::new(after, zone(timezone.as_deref())?);
                cron.find_next_occurrence(&start, false)
                    .map(|z| z.timestamp())
                    .map_err(|source| Error::Cron {
                        expr: expr.clone(),
                        source,
                    })
            }
        }
    }

    /// A short description: `cron '0 2 * * *' (Europe/Berlin)`, `every 15m`.
    pub fn describe(&self) -> String {
        match self {
            Self::Cron { expr, timezone } => format!(
                "cron '{expr}' ({})",
                timezone.as_deref().unwrap_or("local time")
            ),
            Self::Interval { seconds } => format!("every {}", format_interval(*seconds)),
        }
    }
}

fn parse_cron(expr: &str) -> Result<Cron> {
    Cron::from_str(expr).map_err(|source| Error::Cron {
        expr: expr.to_string(),
        source,
    })
}

fn zone(name: Option<&str>) -> Result<TimeZone> {
    match name {
        None => Ok(TimeZone::system()),
        Some(n) => TimeZone::get(n).map_err(|source| Error::TimeZone {
            name: n.to_string(),
            source,
        }),
    }
}

/// Seconds of an interval like `90s`, `15m`, `1h`, `1d` (a bare number is seconds).
///
/// # Errors
/// The text does not parse, or is zero.
pub fn parse_interval(text: &str) -> Result<u64> {
    let t = text.trim();
    let bad = || Error::Interval(text.to_string());
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(mult) {
        Some(s) if s > 0 => Ok(s),
        _ => Err(bad()),
    }
}

/// `90` → `90s`, `900` → `15m`, `3600` → `1h`.
fn format_interval(s: u64) -> String {
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests;
