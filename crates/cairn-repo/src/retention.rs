//! Retention: which snapshots keep rules keep. A pure function of times, tags and groups, so
//! it is tested against tables of dates (including daylight-saving changes).
//!
//! Within a group (one source identity on one host), snapshots are taken newest first. Each
//! calendar rule keeps the newest snapshot of each of its N most recent periods that hold a
//! snapshot (restic's semantics): `--keep-daily 7` keeps one snapshot for each of the last
//! seven days that have any. Periods are calendar periods in the given time zone: a day is
//! a civil date (23 or 25 hours across a DST change), a week is an ISO 8601 week, and an hour
//! is a civil hour *with its UTC offset*, so the hour repeated when clocks go back counts as
//! two hours. `within` keeps everything up to that span before the group's newest snapshot.

use std::collections::BTreeMap;

use cairn_format::Id;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

/// Keep rules; a snapshot kept by no rule is forgotten.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct KeepRules {
    /// The N newest snapshots.
    pub last: u32,
    /// The newest of each of the last N hours with snapshots.
    pub hourly: u32,
    /// … days.
    pub daily: u32,
    /// … ISO weeks.
    pub weekly: u32,
    /// … months.
    pub monthly: u32,
    /// … years.
    pub yearly: u32,
    /// Everything within this span before the group's newest snapshot.
    pub within: Option<Span>,
    /// Every snapshot carrying one of these tags.
    pub tags: Vec<String>,
}

impl KeepRules {
    /// True if no rule is set (which would forget everything: callers refuse it).
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none()
            && self.tags.is_empty()
    }
}

/// One snapshot as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionItem {
    /// Snapshot id.
    pub id: Id,
    /// Snapshot time.
    pub time: Timestamp,
    /// Group key (source identity and host).
    pub group: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// What happens to one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Snapshot id.
    pub id: Id,
    /// Group key.
    pub group: String,
    /// Kept (by at least one rule) or forgotten.
    pub keep: bool,
    /// The rules that keep it (`last`, `daily`, `within 7d`, `tag prod` …).
    pub reasons: Vec<String>,
}

/// Calendar period of a time, comparable for equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Hour(jiff::civil::Date, i8, i32),
    Day(jiff::civil::Date),
    Week(i16, i8),
    Month(i16, i8),
    Year(i16),
}

type PeriodFn = fn(&jiff::Zoned) -> Period;

fn hour(z: &jiff::Zoned) -> Period {
    Period::Hour(z.date(), z.hour(), z.offset().seconds())
}
fn day(z: &jiff::Zoned) -> Period {
    Period::Day(z.date())
}
fn week(z: &jiff::Zoned) -> Period {
    let w = z.date().iso_week_date();
    Period::Week(w.year(), w.week())
}
fn month(z: &jiff::Zoned) -> Period {
    Period::Month(z.year(), z.month())
}
fn year(z: &jiff::Zoned) -> Period {
    Period::Year(z.year())
}

/// Applies `rules` to `items` (any order), with calendar periods in `tz`. Returns one
/// decision per item, groups in name order, newest first within a group.
pub fn select(items: &[RetentionItem], rules: &KeepRules, tz: &TimeZone) -> Vec<Decision> {
    let mut groups: BTreeMap<&str, Vec<&RetentionItem>> = BTreeMap::new();
    for it in items {
        groups.entry(it.group.as_str()).or_default().push(it);
    }
    let mut out = Vec::with_capacity(items.len());
    for (group, mut list) in groups {
        list.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
        let zoned: Vec<jiff::Zoned> = list.iter().map(|i| i.time.to_zoned(tz.clone())).collect();
        let mut reasons: Vec<Vec<String>> = vec![Vec::new(); list.len()];
        for (i, r) in reasons.iter_mut().enumerate().take(rules.last as usize) {
            let _ = i;
            r.push("last".into());
        }
        let calendar: [(u32, &str, PeriodFn); 5] = [
            (rules.hourly, "hourly", hour),
            (rules.daily, "daily", day),
            (rules.weekly, "weekly", week),
            (rules.monthly, "monthly", month),
            (rules.yearly, "yearly", year),
        ];
        for (n, name, period) in calendar {
            let mut kept = 0;
            let mut last: Option<Period> = None;
            for (i, z) in zoned.iter().enumerate() {
                if kept >= n {
                    break;
                }
                let p = period(z);
                if last != Some(p) {
                    reasons[i].push(name.into());
                    kept += 1;
                }
                last = Some(p);
            }
        }
        if let (Some(span), Some(newest)) = (rules.within, zoned.first()) {
            // Saturating: a span reaching before year -9999 keeps everything.
            let limit = newest.checked_sub(span).ok();
            for (i, z) in zoned.iter().enumerate() {
                if limit.as_ref().is_none_or(|l| z >= l) {
                    reasons[i].push(format!("within {span:#}"));
                }
            }
        }
        for (i, it) in list.iter().enumerate() {
            for t in &rules.tags {
                if it.tags.contains(t) {
                    reasons[i].push(format!("tag {t}"));
                }
            }
        }
        for (it, r) in list.iter().zip(reasons) {
            out.push(Decision {
                id: it.id,
                group: group.to_string(),
                keep: !r.is_empty(),
                reasons: r,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
