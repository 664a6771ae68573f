//! Usage per feature and day from report-log lines (docs/REPORT-LOG.md):
//! what `floatctl report` prints. Pure: lines in, rows out; the time zone
//! that decides where days begin is an argument.
//!
//! Every seat is an interval: a `return` line gives its end and its
//! length (`held_secs`), so seats checked out before the first log still
//! count; a `checkout` without a `return` is still out when the logs end
//! (the last line's time). Peak seats in use is the most seats whose
//! intervals overlap at one moment of the day; seat-hours the sum of
//! `count` times the hours of each interval that fall in the day.

use crate::protocol::line;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One line of a report log, as far as usage needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub at: i64,
    /// The record's journal sequence number: orders events of one second.
    pub seq: u64,
    pub kind: Kind,
    pub feature: String,
    pub user: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Checkout { handle: String },
    Return { handle: String, held_secs: i64 },
    Denied { code: String },
}

/// Parses one report-log line; `None` for other words (start, stop,
/// reread) and for lines that are not report lines.
pub fn parse_line(text: &str) -> Option<Event> {
    let (stamp, rest) = text.trim_end().split_once(' ')?;
    let at = stamp.parse::<Timestamp>().ok()?.as_second();
    let l = line::parse(rest).ok()?;
    let get = |k: &str| l.get(k).unwrap_or("").to_string();
    let count = l.get("count").and_then(|c| c.parse().ok()).unwrap_or(1);
    let seq = l.get("seq").and_then(|s| s.parse().ok()).unwrap_or(0);
    let kind = match l.word {
        "checkout" => Kind::Checkout {
            handle: get("handle"),
        },
        "return" => Kind::Return {
            handle: get("handle"),
            held_secs: l.get("held_secs")?.parse().ok()?,
        },
        "denied" => Kind::Denied { code: get("code") },
        _ => return None,
    };
    Some(Event {
        at,
        seq,
        kind,
        feature: get("feature"),
        user: get("user"),
        count,
    })
}

/// What to report on.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// First and last day (local), both included.
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// Only these features (all when empty).
    pub features: Vec<String>,
    /// Users listed per row.
    pub top: usize,
}

/// Usage of one feature on one day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Row {
    pub day: String,
    pub feature: String,
    pub peak_seats: u64,
    pub seat_hours: f64,
    pub checkouts: u64,
    /// Refusals by code (`NO_SEATS`, `EXCLUDED`, ...).
    pub denials: BTreeMap<String, u64>,
    /// The heaviest users by seat-hours, at most `Filter::top`.
    pub top_users: Vec<(String, f64)>,
}

/// A seat out from `start` to `end` (Unix seconds; the sequence numbers
/// order what happened within one second).
struct Interval {
    feature: String,
    user: String,
    count: u64,
    start: (i64, u64),
    end: (i64, u64),
}

/// Usage per feature and day, sorted by day then feature.
pub fn summarise(events: &[Event], filter: &Filter, tz: &TimeZone) -> Vec<Row> {
    let wanted = |f: &str| filter.features.is_empty() || filter.features.iter().any(|w| w == f);
    let end_of_logs = events.iter().map(|e| e.at).max().unwrap_or(0);
    let returned: HashSet<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::Return { handle, .. } => Some(handle.as_str()),
            _ => None,
        })
        .collect();
    let checked_out: HashMap<&str, (i64, u64)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::Checkout { handle } => Some((handle.as_str(), (e.at, e.seq))),
            _ => None,
        })
        .collect();
    let mut intervals = Vec::new();
    let mut rows: BTreeMap<(Date, String), Row> = BTreeMap::new();
    let day_of = |at: i64| local_day(at, tz);
    let in_period =
        |d: Date| filter.from.is_none_or(|f| d >= f) && filter.to.is_none_or(|t| d <= t);
    for e in events.iter().filter(|e| wanted(&e.feature)) {
        let day = day_of(e.at);
        match &e.kind {
            Kind::Checkout { handle } => {
                if in_period(day) {
                    row(&mut rows, day, &e.feature).checkouts += 1;
                }
                if !returned.contains(handle.as_str()) {
                    intervals.push(interval(e, (e.at, e.seq), (end_of_logs, u64::MAX)));
                }
            }
            Kind::Return { handle, held_secs } => {
                // From its checkout line when the logs have it; else from
                // the time it was held, before anything else that second.
                let start = checked_out
                    .get(handle.as_str())
                    .copied()
                    .unwrap_or((e.at - held_secs.max(&0), 0));
                intervals.push(interval(e, start, (e.at, e.seq)));
            }
            Kind::Denied { code } if in_period(day) => {
                *row(&mut rows, day, &e.feature)
                    .denials
                    .entry(code.clone())
                    .or_default() += 1;
            }
            Kind::Denied { .. } => {}
        }
    }
    // Split each interval at local midnights: one piece per day.
    let mut pieces: HashMap<(Date, String), Vec<Interval>> = HashMap::new();
    for iv in intervals {
        let mut start = iv.start;
        while start <= iv.end {
            let day = day_of(start.0);
            let next = (day_start(day.tomorrow().expect("a day after"), tz), 0);
            let end = iv.end.min(next);
            if in_period(day) {
                pieces
                    .entry((day, iv.feature.clone()))
                    .or_default()
                    .push(Interval {
                        start,
                        end,
                        feature: iv.feature.clone(),
                        user: iv.user.clone(),
                        count: iv.count,
                    });
            }
            if end >= iv.end {
                break;
            }
            start = next;
        }
    }
    for ((day, feature), list) in pieces {
        let r = row(&mut rows, day, &feature);
        r.peak_seats = peak(&list);
        let mut by_user: HashMap<&str, f64> = HashMap::new();
        for iv in &list {
            let hours = (iv.end.0 - iv.start.0) as f64 / 3600.0 * iv.count as f64;
            r.seat_hours += hours;
            *by_user.entry(&iv.user).or_default() += hours;
        }
        let mut users: Vec<(String, f64)> = by_user
            .into_iter()
            .map(|(u, h)| (u.to_string(), h))
            .collect();
        users.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        users.truncate(filter.top);
        r.top_users = users;
    }
    rows.into_values().collect()
}

fn interval(e: &Event, start: (i64, u64), end: (i64, u64)) -> Interval {
    Interval {
        feature: e.feature.clone(),
        user: e.user.clone(),
        count: e.count,
        start,
        end: end.max(start),
    }
}

fn row<'a>(rows: &'a mut BTreeMap<(Date, String), Row>, day: Date, feature: &str) -> &'a mut Row {
    rows.entry((day, feature.to_string()))
        .or_insert_with(|| Row {
            day: day.to_string(),
            feature: feature.to_string(),
            ..Row::default()
        })
}

/// The most seats out at one moment: a sweep over starts and ends in
/// time and journal order (a seat returned, then granted to another in
/// the same second, is one seat).
fn peak(list: &[Interval]) -> u64 {
    let mut edges: Vec<((i64, u64), i64)> = Vec::with_capacity(list.len() * 2);
    for iv in list {
        edges.push((iv.start, iv.count as i64));
        edges.push((iv.end, -(iv.count as i64)));
    }
    edges.sort_unstable();
    let (mut now, mut most) = (0i64, 0i64);
    for (_, delta) in edges {
        now += delta;
        most = most.max(now);
    }
    most as u64
}

/// The local day of a Unix time.
pub fn local_day(at: i64, tz: &TimeZone) -> Date {
    Timestamp::from_second(at)
        .map(|t| t.to_zoned_datetime(tz.clone()).date())
        .unwrap_or_default()
}

/// The Unix time a local day begins.
fn day_start(day: Date, tz: &TimeZone) -> i64 {
    day.to_zoned_datetime(tz.clone())
        .map(|z| z.timestamp().as_second())
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Event> {
        text.lines().filter_map(parse_line).collect()
    }

    fn all() -> Filter {
        Filter {
            top: 3,
            ..Filter::default()
        }
    }

    #[test]
    fn parses_the_words_usage_needs() {
        let e = parse_line(
            "2026-11-23T23:24:10Z return feature=cad version=2.0 count=2 user=\"Ada Lovelace\" host=ws handle=h1 reason=checkin held_secs=3 epoch=1 seq=3",
        )
        .unwrap();
        assert_eq!(e.user, "Ada Lovelace");
        assert_eq!(e.count, 2);
        assert_eq!(e.at, 1_795_476_250);
        assert_eq!(
            e.kind,
            Kind::Return {
                handle: "h1".into(),
                held_secs: 3
            }
        );
        assert!(parse_line("2026-11-23T23:24:13Z reread pools=2 epoch=1 seq=9").is_none());
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn peak_seat_hours_checkouts_denials_and_top_users_per_day() {
        let log = "\
2026-01-05T08:00:00Z checkout feature=cad version=0.0 pool=2.0 count=1 user=ann host=a client=c handle=h1 epoch=1 seq=1
2026-01-05T09:00:00Z checkout feature=cad version=0.0 pool=2.0 count=2 user=bob host=b client=c handle=h2 epoch=1 seq=2
2026-01-05T09:30:00Z denied feature=cad version=0.0 count=1 user=tim host=t code=NO_SEATS epoch=1 seq=3
2026-01-05T10:00:00Z return feature=cad version=0.0 count=1 user=ann host=a handle=h1 reason=checkin held_secs=7200 epoch=1 seq=4
2026-01-05T11:00:00Z return feature=cad version=0.0 count=2 user=bob host=b handle=h2 reason=expired held_secs=7200 epoch=1 seq=5
2026-01-05T12:00:00Z denied feature=cad version=0.0 count=1 user=tim host=t code=EXCLUDED rule=o:1 epoch=1 seq=6
";
        let rows = summarise(&events(log), &all(), &TimeZone::UTC);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.day.as_str(), r.feature.as_str()), ("2026-01-05", "cad"));
        assert_eq!(r.peak_seats, 3, "ann's 1 and bob's 2 overlap 09:00-10:00");
        assert!((r.seat_hours - 6.0).abs() < 1e-9, "{}", r.seat_hours);
        assert_eq!(r.checkouts, 2);
        assert_eq!(r.denials["NO_SEATS"], 1);
        assert_eq!(r.denials["EXCLUDED"], 1);
        assert_eq!(r.top_users[0].0, "bob");
        assert!((r.top_users[0].1 - 4.0).abs() < 1e-9);
        assert_eq!(r.top_users[1].0, "ann");
    }

    #[test]
    fn seats_across_midnight_and_from_before_the_logs_count_on_each_day() {
        // Out since 22:00 the day before the first line; still out at the end.
        let log = "\
2026-01-06T02:00:00Z return feature=cad version=0.0 count=1 user=ann host=a handle=h0 reason=checkin held_secs=14400 epoch=1 seq=10
2026-01-06T23:00:00Z checkout feature=cad version=0.0 pool=2.0 count=1 user=bob host=b client=c handle=h1 epoch=1 seq=11
2026-01-07T01:00:00Z denied feature=viewer version=0.0 count=1 user=tim host=t code=NO_SEATS epoch=1 seq=12
";
        let rows = summarise(&events(log), &all(), &TimeZone::UTC);
        let get = |day: &str, f: &str| {
            rows.iter()
                .find(|r| r.day == day && r.feature == f)
                .unwrap()
        };
        assert!((get("2026-01-05", "cad").seat_hours - 2.0).abs() < 1e-9);
        assert!((get("2026-01-06", "cad").seat_hours - 3.0).abs() < 1e-9);
        assert!((get("2026-01-07", "cad").seat_hours - 1.0).abs() < 1e-9);
        assert_eq!(get("2026-01-06", "cad").peak_seats, 1);
        assert_eq!(get("2026-01-07", "viewer").denials["NO_SEATS"], 1);
        // A period and a feature filter.
        let only = Filter {
            from: Some(jiff::civil::date(2026, 1, 6)),
            to: Some(jiff::civil::date(2026, 1, 6)),
            features: vec!["cad".into()],
            top: 1,
        };
        let rows = summarise(&events(log), &only, &TimeZone::UTC);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].day, "2026-01-06");
        assert_eq!(rows[0].checkouts, 1);
        assert_eq!(rows[0].top_users.len(), 1);
    }

    #[test]
    fn within_one_second_the_journal_order_decides_the_peak() {
        let log = "\
2026-01-05T08:00:00Z checkout feature=cad version=0.0 pool=2.0 count=2 user=ann host=a client=c handle=h1 epoch=1 seq=1
2026-01-05T08:00:00Z return feature=cad version=0.0 count=2 user=ann host=a handle=h1 reason=checkin held_secs=0 epoch=1 seq=2
2026-01-05T08:00:00Z checkout feature=cad version=0.0 pool=2.0 count=1 user=bob host=b client=c handle=h2 epoch=1 seq=3
2026-01-05T08:00:00Z checkout feature=cad version=0.0 pool=2.0 count=1 user=cy host=c client=c handle=h3 epoch=1 seq=4
";
        let rows = summarise(&events(log), &all(), &TimeZone::UTC);
        assert_eq!(rows[0].peak_seats, 2, "ann's 2, then bob's and cy's 2");
    }

    #[test]
    fn days_begin_at_local_midnight() {
        let tz = TimeZone::fixed(jiff::tz::offset(2));
        let log = "2026-01-05T23:00:00Z denied feature=cad version=0.0 count=1 user=t host=t code=NO_SEATS epoch=1 seq=1\n";
        let rows = summarise(&events(log), &all(), &tz);
        assert_eq!(rows[0].day, "2026-01-06", "01:00 at UTC+2");
    }
}
