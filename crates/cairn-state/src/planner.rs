//! Deciding what a schedule does at a given time: wait, run (reporting missed runs), or skip
//! (its previous run is still active). Pure: the time comes from a [`Clock`], so tests drive
//! it through DST changes, downtime and overlaps without waiting.

use jiff::Timestamp;

use crate::calendar::Trigger;
use crate::error::{Error, Result};
use crate::schedule::Schedule;

/// The source of "now".
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// What to do with a schedule now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Paused: nothing.
    Paused,
    /// Not planned yet: plan it for `next` (and do nothing now).
    Plan {
        /// The first firing time.
        next: Timestamp,
    },
    /// Not due before `next`.
    Wait {
        /// The planned time.
        next: Timestamp,
    },
    /// Run once now.
    Run {
        /// The firing time this run is for.
        due: Timestamp,
        /// Firing times between `due` and now that passed without a run (downtime): they
        /// are reported and not run.
        missed: u64,
        /// Pass `--full` (every `full_every`th run).
        full: bool,
        /// The run's number (1 for the first).
        number: u64,
        /// The next firing time after now.
        next: Timestamp,
    },
    /// Due, but the previous run is still active: skip this firing.
    Skip {
        /// The firing time that is skipped.
        due: Timestamp,
        /// The next firing time after now.
        next: Timestamp,
    },
}

/// Counting missed cron firings stops here (a per-second cron after a month of downtime).
const MAX_COUNTED: u64 = 10_000;

/// The firing times in `(due, now]` (missed) and the first after `now`.
fn missed_and_next(trigger: &Trigger, due: Timestamp, now: Timestamp) -> Result<(u64, Timestamp)> {
    if let Trigger::Interval { seconds } = trigger {
        // Keep the phase of the interval: the next time is due + k·period.
        let period = (*seconds).max(1);
        let behind = u64::try_from(now.duration_since(due).as_secs()).unwrap_or(0);
        let missed = behind / period;
        let step = i64::try_from((missed + 1).saturating_mul(period)).unwrap_or(i64::MAX);
        let next = due
            .checked_add(jiff::SignedDuration::from_secs(step))
            .map_err(Error::Time)?;
        return Ok((missed, next));
    }
    let mut missed = 0;
    let mut next = trigger.next_after(due)?;
    while next <= now {
        missed += 1;
        next = if missed >= MAX_COUNTED {
            trigger.next_after(now)?
        } else {
            trigger.next_after(next)?
        };
    }
    Ok((missed, next))
}

/// Decides for schedules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Planner;

impl Planner {
    /// What `s` does at `now`, given whether its previous run is still active.
    ///
    /// # Errors
    /// The trigger cannot be evaluated.
    pub fn decide(s: &Schedule, now: Timestamp, previous_active: bool) -> Result<Decision> {
        if s.paused {
            return Ok(Decision::Paused);
        }
        let Some(due) = s.next_due else {
            return Ok(Decision::Plan {
                next: s.trigger.next_after(now)?,
            });
        };
        if now < due {
            return Ok(Decision::Wait { next: due });
        }
        let (missed, next) = missed_and_next(&s.trigger, due, now)?;
        if previous_active {
            return Ok(Decision::Skip { due, next });
        }
        let number = s.runs + 1;
        let full = s
            .full_every
            .is_some_and(|n| n > 0 && number.is_multiple_of(u64::from(n)));
        Ok(Decision::Run {
            due,
            missed,
            full,
            number,
            next,
        })
    }
}

#[cfg(test)]
mod tests;
