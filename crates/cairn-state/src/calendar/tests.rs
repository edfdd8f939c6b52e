use jiff::Timestamp;
use rstest::rstest;

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[rstest]
#[case("90s", 90)]
#[case("15m", 900)]
#[case("1h", 3600)]
#[case("2d", 172_800)]
#[case("30", 30)]
fn intervals_parse(#[case] text: &str, #[case] secs: u64) {
    assert_eq!(parse_interval(text).unwrap(), secs);
    assert_eq!(parse_interval(&format_interval(secs)).unwrap(), secs);
}

#[rstest]
#[case("")]
#[case("0s")]
#[case("5 weeks")]
#[case("m")]
#[case("-1s")]
#[case("99999999999999999999d")]
fn bad_intervals_are_rejected(#[case] text: &str) {
    assert!(matches!(parse_interval(text), Err(Error::Interval(_))));
}

#[test]
fn bad_cron_and_zone_are_rejected() {
    assert!(matches!(
        Trigger::cron("61 * * * *", None),
        Err(Error::Cron { .. })
    ));
    assert!(matches!(
        Trigger::cron("0 2 * * *", Some("Mars/Olympus")),
        Err(Error::TimeZone { .. })
    ));
}

/// Daily 02:30 in New York across the 2026 spring-forward (8 March: 02:00 EST → 03:00
/// EDT, so 02:30 does not exist) and fall-back (1 November: 02:00 EDT → 01:00 EST).
#[rstest]
// An ordinary winter day: 02:30 EST = 07:30Z.
#[case("2026-03-06T12:00:00Z", "2026-03-07T07:30:00Z")]
// Spring forward: 02:30 does not exist; the run is at the first instant after the gap,
// 03:00 EDT = 07:00Z, once.
#[case("2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z")]
// The day after: 02:30 EDT = 06:30Z.
#[case("2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z")]
// Fall back: 02:30 happens once (the repeated hour is 01:00–02:00), as EST = 07:30Z.
#[case("2026-10-31T12:00:00Z", "2026-11-01T07:30:00Z")]
fn daily_0230_follows_new_york_dst(#[case] after: &str, #[case] want: &str) {
    let t = Trigger::cron("30 2 * * *", Some("America/New_York")).unwrap();
    assert_eq!(t.next_after(ts(after)).unwrap(), ts(want));
}

/// Daily 01:30 on the fall-back day: 01:30 happens twice (EDT, then EST); the job runs once.
#[test]
fn repeated_hour_runs_once() {
    let t = Trigger::cron("30 1 * * *", Some("America/New_York")).unwrap();
    let first = t.next_after(ts("2026-10-31T12:00:00Z")).unwrap();
    assert_eq!(first, ts("2026-11-01T05:30:00Z")); // 01:30 EDT
    let second = t.next_after(first).unwrap();
    assert_eq!(second, ts("2026-11-02T06:30:00Z")); // the next day, 01:30 EST
}

#[test]
fn spring_forward_day_has_exactly_one_run() {
    let t = Trigger::cron("30 2 * * *", Some("America/New_York")).unwrap();
    let mut at = ts("2026-03-07T12:00:00Z");
    let mut runs = Vec::new();
    while at < ts("2026-03-10T00:00:00Z") {
        at = t.next_after(at).unwrap();
        runs.push(at);
    }
    // 7 March (07:30Z), 8 March (07:00Z, shifted past the gap), 9 March (06:30Z), and
    // the first one past the window.
    assert_eq!(
        runs,
        [
            ts("2026-03-08T07:00:00Z"),
            ts("2026-03-09T06:30:00Z"),
            ts("2026-03-10T06:30:00Z")
        ]
    );
}

#[test]
fn interval_adds_its_period() {
    let t = Trigger::interval("15m").unwrap();
    assert_eq!(
        t.next_after(ts("2026-01-01T00:00:00Z")).unwrap(),
        ts("2026-01-01T00:15:00Z")
    );
    assert_eq!(t.describe(), "every 15m");
}
