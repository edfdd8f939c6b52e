//! Retention against tables of dates, including daylight-saving changes and ISO weeks.

use cairn_format::Id;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use rstest::rstest;

use super::{KeepRules, RetentionItem, select};

fn id(n: usize) -> Id {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&(n as u64).to_be_bytes());
    Id(b)
}

/// Items at the given instants (RFC 3339), in one group, tagged as given (`|`-separated).
fn items(times: &[&str]) -> Vec<RetentionItem> {
    times
        .iter()
        .enumerate()
        .map(|(n, t)| {
            let (t, tags) = t.split_once(' ').unwrap_or((t, ""));
            RetentionItem {
                id: id(n),
                time: t.parse::<Timestamp>().unwrap(),
                group: "g".into(),
                tags: tags
                    .split('|')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
            }
        })
        .collect()
}

/// The indexes (into `times`) of the kept items, ascending.
fn kept(times: &[&str], rules: &KeepRules, tz: &str) -> Vec<usize> {
    let tz = TimeZone::get(tz).unwrap();
    let its = items(times);
    let mut k: Vec<usize> = select(&its, rules, &tz)
        .into_iter()
        .filter(|d| d.keep)
        .map(|d| its.iter().position(|i| i.id == d.id).unwrap())
        .collect();
    k.sort_unstable();
    k
}

fn rules(f: impl FnOnce(&mut KeepRules)) -> KeepRules {
    let mut r = KeepRules::default();
    f(&mut r);
    r
}

#[rstest]
// keep-last: the newest N, whatever the order given.
#[case::last(&["2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-02T00:00:00Z"], rules(|r| r.last = 2), "UTC", vec![1, 2])]
// daily: the newest of each day; days without snapshots do not count.
#[case::daily(&["2024-01-01T01:00:00Z", "2024-01-01T23:00:00Z", "2024-01-03T05:00:00Z", "2024-01-03T06:00:00Z", "2024-01-07T00:00:00Z"], rules(|r| r.daily = 3), "UTC", vec![1, 3, 4])]
// daily in a time zone: 23:30 UTC on Jan 1 is Jan 2 in Berlin, the same day as the next one.
#[case::daily_tz(&["2024-01-01T22:30:00Z", "2024-01-01T23:30:00Z", "2024-01-02T10:00:00Z"], rules(|r| r.daily = 5), "Europe/Berlin", vec![0, 2])]
// Spring forward (US, 2024-03-10 02:00 → 03:00): the 23-hour day is one day.
#[case::dst_spring_day(&["2024-03-10T05:30:00Z", "2024-03-11T03:30:00Z", "2024-03-11T04:30:00Z"], rules(|r| r.daily = 5), "America/New_York", vec![1, 2])]
// Fall back (US, 2024-11-03 02:00 → 01:00): 05:30Z and 06:30Z are both 01:30 local but
// different hours (EDT and EST), so hourly keeps both.
#[case::dst_fall_hour(&["2024-11-03T05:10:00Z", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z"], rules(|r| r.hourly = 5), "America/New_York", vec![1, 2])]
// … and the 25-hour day is one day: 00:30 EDT, 01:30 EST and 23:30 EST are all Nov 3.
#[case::dst_fall_day(&["2024-11-03T04:30:00Z", "2024-11-03T06:30:00Z", "2024-11-04T04:30:00Z", "2024-11-04T05:30:00Z"], rules(|r| r.daily = 5), "America/New_York", vec![2, 3])]
// ISO weeks: 2020-12-31 and 2021-01-03 are both in 2020-W53; 2021-01-04 starts W01.
#[case::iso_week(&["2020-12-28T12:00:00Z", "2020-12-31T12:00:00Z", "2021-01-03T12:00:00Z", "2021-01-04T12:00:00Z"], rules(|r| r.weekly = 3), "UTC", vec![2, 3])]
// monthly and yearly, limited by N.
#[case::monthly(&["2023-11-05T00:00:00Z", "2023-12-05T00:00:00Z", "2023-12-20T00:00:00Z", "2024-01-02T00:00:00Z"], rules(|r| r.monthly = 2), "UTC", vec![2, 3])]
#[case::yearly(&["2021-06-01T00:00:00Z", "2022-06-01T00:00:00Z", "2022-12-31T23:00:00Z", "2023-01-01T00:30:00Z"], rules(|r| r.yearly = 10), "UTC", vec![0, 2, 3])]
// New Year's Eve in Tokyo is already the next year.
#[case::yearly_tz(&["2022-12-31T14:30:00Z", "2022-12-31T15:30:00Z"], rules(|r| r.yearly = 10), "Asia/Tokyo", vec![0, 1])]
// within: relative to the group's newest snapshot, inclusive.
#[case::within(&["2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-08T00:00:00Z", "2024-01-10T00:00:00Z"], rules(|r| r.within = Some(Span::new().days(7))), "UTC", vec![1, 2, 3])]
// within in calendar days across spring forward: 7 days before 2024-03-14T12:00 EDT is 2024-03-07T12:00 EST (17:00Z), not 16:00Z.
#[case::within_dst(&["2024-03-07T16:30:00Z", "2024-03-07T17:00:00Z", "2024-03-14T16:00:00Z"], rules(|r| r.within = Some(Span::new().days(7))), "America/New_York", vec![1, 2])]
// tags keep whatever the calendar says.
#[case::tag(&["2024-01-01T00:00:00Z prod", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z test|prod"], rules(|r| { r.last = 1; r.tags = vec!["prod".into()]; }), "UTC", vec![0, 2])]
// several rules: union.
#[case::union(&["2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z", "2024-01-02T10:00:00Z", "2024-02-01T10:00:00Z"], rules(|r| { r.last = 1; r.daily = 2; r.monthly = 2; }), "UTC", vec![2, 3])]
fn table(
    #[case] times: &[&str],
    #[case] r: KeepRules,
    #[case] tz: &str,
    #[case] expect: Vec<usize>,
) {
    assert_eq!(kept(times, &r, tz), expect);
}

#[test]
fn groups_are_independent_and_reasons_are_named() {
    let mut its = items(&["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"]);
    let mut other = items(&["2024-01-01T00:00:00Z"]);
    other[0].id = id(99);
    other[0].group = "h".into();
    its.append(&mut other);
    let r = rules(|r| {
        r.last = 1;
        r.daily = 1;
    });
    let d = select(&its, &r, &TimeZone::UTC);
    assert_eq!(d.len(), 3);
    // Group g: the newest is kept by last and daily; the older one goes.
    assert_eq!(d[0].id, id(1));
    assert_eq!(d[0].reasons, vec!["last", "daily"]);
    assert!(!d[1].keep);
    assert!(d[1].reasons.is_empty());
    // Group h: its only snapshot is the newest of its group.
    assert_eq!((d[2].id, d[2].keep), (id(99), true));
}

#[test]
fn no_rules_is_empty() {
    assert!(KeepRules::default().is_empty());
    assert!(!rules(|r| r.tags = vec!["x".into()]).is_empty());
}
