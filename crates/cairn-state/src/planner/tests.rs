use jiff::Timestamp;

use super::*;
use crate::schedule::{BackupJob, KeepRules};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A clock the test moves by hand.
struct ManualClock(parking_lot::Mutex<Timestamp>);

impl ManualClock {
    fn at(s: &str) -> Self {
        Self(parking_lot::Mutex::new(ts(s)))
    }
    fn advance(&self, secs: i64) {
        let mut t = self.0.lock();
        *t = t
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock()
    }
}

fn schedule(trigger: Trigger, full_every: Option<u32>) -> Schedule {
    Schedule::new(
        "s",
        trigger,
        BackupJob::default(),
        KeepRules::default(),
        full_every,
    )
    .unwrap()
}

/// Plays the daemon's part: applies a decision to the schedule as the database would.
fn apply(s: &mut Schedule, d: &Decision) {
    match d {
        Decision::Plan { next } | Decision::Skip { next, .. } => s.next_due = Some(*next),
        Decision::Run { next, number, .. } => {
            s.next_due = Some(*next);
            s.runs = *number;
        }
        Decision::Paused | Decision::Wait { .. } => {}
    }
}

#[test]
fn first_decision_plans_then_waits_then_runs() {
    let clock = ManualClock::at("2026-01-01T10:00:00Z");
    let mut s = schedule(Trigger::interval("1h").unwrap(), None);
    let d = Planner::decide(&s, clock.now(), false).unwrap();
    assert_eq!(
        d,
        Decision::Plan {
            next: ts("2026-01-01T11:00:00Z")
        }
    );
    apply(&mut s, &d);
    clock.advance(1800);
    assert_eq!(
        Planner::decide(&s, clock.now(), false).unwrap(),
        Decision::Wait {
            next: ts("2026-01-01T11:00:00Z")
        }
    );
    clock.advance(1800);
    let d = Planner::decide(&s, clock.now(), false).unwrap();
    assert_eq!(
        d,
        Decision::Run {
            due: ts("2026-01-01T11:00:00Z"),
            missed: 0,
            full: false,
            number: 1,
            next: ts("2026-01-01T12:00:00Z"),
        }
    );
}

#[test]
fn downtime_reports_missed_runs_and_runs_once() {
    let clock = ManualClock::at("2026-01-01T10:00:00Z");
    let mut s = schedule(Trigger::interval("1h").unwrap(), None);
    s.next_due = Some(ts("2026-01-01T11:00:00Z"));
    // The daemon was down from 10:00 until 15:30: firings at 11, 12, 13, 14, 15.
    clock.advance(5 * 3600 + 1800);
    let d = Planner::decide(&s, clock.now(), false).unwrap();
    let Decision::Run {
        due, missed, next, ..
    } = d.clone()
    else {
        panic!("expected a run, got {d:?}");
    };
    assert_eq!(due, ts("2026-01-01T11:00:00Z"));
    assert_eq!(missed, 4, "12, 13, 14 and 15 o'clock passed without a run");
    assert_eq!(next, ts("2026-01-01T16:00:00Z"));
    apply(&mut s, &d);
    // Right after: nothing more to run, the backlog is not replayed.
    assert!(matches!(
        Planner::decide(&s, clock.now(), false).unwrap(),
        Decision::Wait { .. }
    ));
}

#[test]
fn missed_cron_runs_are_counted_across_days() {
    let mut s = schedule(Trigger::cron("0 3 * * *", Some("UTC")).unwrap(), None);
    s.next_due = Some(ts("2026-01-01T03:00:00Z"));
    let d = Planner::decide(&s, ts("2026-01-05T12:00:00Z"), false).unwrap();
    let Decision::Run { missed, next, .. } = d else {
        panic!("expected a run, got {d:?}");
    };
    assert_eq!(missed, 4, "2, 3, 4 and 5 January");
    assert_eq!(next, ts("2026-01-06T03:00:00Z"));
}

#[test]
fn overlapping_run_is_skipped_not_stacked() {
    let clock = ManualClock::at("2026-01-01T11:00:00Z");
    let mut s = schedule(Trigger::interval("1h").unwrap(), None);
    s.next_due = Some(ts("2026-01-01T11:00:00Z"));
    let d = Planner::decide(&s, clock.now(), false).unwrap();
    assert!(matches!(d, Decision::Run { number: 1, .. }));
    apply(&mut s, &d);
    // The run takes more than an hour: at 12:00 it is still active.
    clock.advance(3600);
    let d = Planner::decide(&s, clock.now(), true).unwrap();
    assert_eq!(
        d,
        Decision::Skip {
            due: ts("2026-01-01T12:00:00Z"),
            next: ts("2026-01-01T13:00:00Z")
        }
    );
    apply(&mut s, &d);
    assert_eq!(s.runs, 1, "a skipped firing is not a run");
    // It finished by 13:00: the next firing runs as run 2.
    clock.advance(3600);
    let d = Planner::decide(&s, clock.now(), false).unwrap();
    assert!(
        matches!(
            d,
            Decision::Run {
                number: 2,
                missed: 0,
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn paused_schedule_does_nothing_and_resume_does_not_replay() {
    let mut s = schedule(Trigger::interval("1h").unwrap(), None);
    s.next_due = Some(ts("2026-01-01T11:00:00Z"));
    s.paused = true;
    assert_eq!(
        Planner::decide(&s, ts("2026-01-02T00:00:00Z"), false).unwrap(),
        Decision::Paused
    );
    // Resume (as `StateDb::set_paused` does): unpaused, plan forgotten.
    s.paused = false;
    s.next_due = None;
    let d = Planner::decide(&s, ts("2026-01-02T00:00:00Z"), false).unwrap();
    assert_eq!(
        d,
        Decision::Plan {
            next: ts("2026-01-02T01:00:00Z")
        }
    );
}

#[test]
fn full_every_third_run() {
    let clock = ManualClock::at("2026-01-01T00:00:00Z");
    let mut s = schedule(Trigger::interval("1m").unwrap(), Some(3));
    s.next_due = Some(clock.now());
    let mut fulls = Vec::new();
    for _ in 0..7 {
        let d = Planner::decide(&s, clock.now(), false).unwrap();
        let Decision::Run { full, number, .. } = d else {
            panic!("expected a run, got {d:?}");
        };
        fulls.push((number, full));
        apply(&mut s, &d);
        clock.advance(60);
    }
    assert_eq!(
        fulls,
        [
            (1, false),
            (2, false),
            (3, true),
            (4, false),
            (5, false),
            (6, true),
            (7, false)
        ]
    );
}

/// The daemon as a loop over a New York daily 02:30 cron from 6 to 10 March 2026, ticking
/// every minute: one run per day, the spring-forward one at 03:00 EDT.
#[test]
fn dst_spring_forward_through_the_planner() {
    let clock = ManualClock::at("2026-03-06T00:00:00Z");
    let mut s = schedule(
        Trigger::cron("30 2 * * *", Some("America/New_York")).unwrap(),
        None,
    );
    let mut runs = Vec::new();
    while clock.now() < ts("2026-03-10T12:00:00Z") {
        let d = Planner::decide(&s, clock.now(), false).unwrap();
        if let Decision::Run { due, missed, .. } = d {
            assert_eq!(missed, 0);
            runs.push(due);
        }
        apply(&mut s, &d);
        clock.advance(60);
    }
    assert_eq!(
        runs,
        [
            ts("2026-03-06T07:30:00Z"),
            ts("2026-03-07T07:30:00Z"),
            ts("2026-03-08T07:00:00Z"),
            ts("2026-03-09T06:30:00Z"),
            ts("2026-03-10T06:30:00Z"),
        ]
    );
}

/// The same over the fall-back weekend with 01:30, which happens twice on 1 November.
#[test]
fn dst_fall_back_through_the_planner() {
    let clock = ManualClock::at("2026-10-30T12:00:00Z");
    let mut s = schedule(
        Trigger::cron("30 1 * * *", Some("America/New_York")).unwrap(),
        None,
    );
    let mut runs = Vec::new();
    while clock.now() < ts("2026-11-02T12:00:00Z") {
        let d = Planner::decide(&s, clock.now(), false).unwrap();
        if let Decision::Run { due, .. } = d {
            runs.push(due);
        }
        apply(&mut s, &d);
        clock.advance(60);
    }
    assert_eq!(
        runs,
        [
            ts("2026-10-31T05:30:00Z"),
            ts("2026-11-01T05:30:00Z"),
            ts("2026-11-02T06:30:00Z"),
        ]
    );
}
