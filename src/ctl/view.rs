//! `floatctl status` for people, laid out the way lmstat and rlmstat users
//! read it: the servers, then per licence pool one summary line ("cad 2.0:
//! 5 issued, 3 in use, 1 queued, expires 2027-11-30") and one line per
//! holder (seat id, user, host, seats, version, start in local time, lease
//! end). Licences expiring within 14 days are flagged.

use crate::protocol::status::{FeatureStatus, Holder, StatusReport};
use std::fmt::Write as _;

/// Licences this close to their end are flagged (as the server warns).
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// A duration as people read it: `45s`, `3m12s`, `2h05m`, `3d04h`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match secs {
        0..60 => format!("{s}s"),
        60..3600 => format!("{m}m{s:02}s"),
        3600..86_400 => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

/// A Unix time in the local time zone (TZ, /etc/localtime; UTC when
/// neither is there): `2026-11-23 14:02:11`.
pub fn local_time(unix: u64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(unix as i64) else {
        return unix.to_string();
    };
    let zoned = ts.to_zoned_datetime(jiff::tz::TimeZone::system());
    zoned.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// The status table. `now` (Unix seconds) dates lease ends.
pub fn render_status(report: &StatusReport, now: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "server {} ({}, {}, epoch {}), up {}, {} connection(s), lease {}",
        report.server,
        report.role,
        report.state,
        report.epoch,
        duration(report.uptime_secs),
        report.connections,
        duration(report.lease_secs)
    );
    for s in &report.servers {
        let contact = s
            .last_contact_ms
            .map(|ms| format!(", last contact {} ago", duration(ms / 1000)))
            .unwrap_or_default();
        let lag = s.lag.map(|l| format!(", lag {l}")).unwrap_or_default();
        let rtt = s
            .rtt_ms
            .map(|r| format!(", round trip {r} ms"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {}: {} (epoch {}){contact}{lag}{rtt}",
            s.role, s.addr, s.state, s.epoch
        );
    }
    if let Some(w) = &report.witness {
        let _ = writeln!(
            out,
            "  witness {}: {}, records {} active at epoch {}{}",
            w.addr,
            w.state,
            if w.active.is_empty() {
                "nobody"
            } else {
                &w.active
            },
            w.epoch,
            w.stale_since
                .map(|n| format!(", standby stale since entry {n}"))
                .unwrap_or_default()
        );
    }
    for alert in &report.alerts {
        let _ = writeln!(out, "  ALERT: {alert}");
    }
    if report.features.is_empty() {
        let _ = writeln!(out, "\nno licence is served");
    }
    for f in &report.features {
        out.push('\n');
        feature(&mut out, f, now);
    }
    out
}

fn feature(out: &mut String, f: &FeatureStatus, now: u64) {
    let issued = match f.count {
        Some(c) => format!("{c} issued"),
        None => "uncounted".to_string(),
    };
    let queued = if f.queue > 0 {
        format!(", {} queued", f.queue)
    } else {
        String::new()
    };
    let roaming = if f.roaming > 0 {
        format!(" ({} roaming)", f.roaming)
    } else {
        String::new()
    };
    let expiry = match f.days_left {
        None => "permanent".to_string(),
        Some(d) if d <= 0 => format!("EXPIRED {}", f.expires),
        Some(d) if d <= EXPIRY_WARNING_DAYS => format!(
            "expires {} (IN {d} DAY{}: renew)",
            f.expires,
            if d == 1 { "" } else { "S" }
        ),
        Some(_) => format!("expires {}", f.expires),
    };
    let share = if f.share == "none" || f.share.is_empty() {
        String::new()
    } else {
        format!(", shared per {}", f.share)
    };
    let _ = writeln!(
        out,
        "{} {}: {issued}, {} in use{roaming}{queued}, {expiry}{share}",
        f.name, f.version, f.in_use
    );
    if f.holders.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = f.holders.iter().map(|h| holder_row(h, now)).collect();
    let header = [
        "SEAT",
        "USER",
        "HOST",
        "SEATS",
        "VERSION",
        "SINCE",
        "LEASE ENDS",
    ];
    out.push_str(&columns("  ", &header, &rows, &[3]));
    if f.more_holders > 0 {
        let _ = writeln!(out, "  ... and {} more", f.more_holders);
    }
}

/// Rows laid out in columns under `header`, each line after `indent`;
/// the columns numbered in `right` are aligned right (numbers).
pub fn columns(indent: &str, header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut widths = vec![0usize; header.len()];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(indent);
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            if right.contains(&i) {
                let _ = write!(line, "{pad}{cell}  ");
            } else {
                let _ = write!(line, "{cell}{pad}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn holder_row(h: &Holder, now: u64) -> Vec<String> {
    let version = if h.version.is_empty() || h.version == "0.0" {
        "any".to_string()
    } else {
        h.version.clone()
    };
    let lease = match &h.roam {
        Some(r) => format!("roaming to {} until {}", r.hostid, r.until),
        None => format!(
            "{} (in {})",
            local_time(now + h.returns_in_secs),
            duration(h.returns_in_secs)
        ),
    };
    vec![
        h.seat.clone(),
        h.user.clone(),
        h.host.clone(),
        h.count.to_string(),
        version,
        local_time(h.granted_at),
        lease,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(192), "3m12s");
        assert_eq!(duration(3600 + 5 * 60 + 7), "1h05m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600), "3d04h");
    }

    fn report() -> StatusReport {
        StatusReport {
            server: "lic1".into(),
            role: "standalone".into(),
            state: "active".into(),
            epoch: 1,
            lease_secs: 60,
            uptime_secs: 7322,
            features: vec![
                FeatureStatus {
                    name: "cad".into(),
                    version: "2.0".into(),
                    count: Some(5),
                    in_use: 3,
                    expires: "2027-11-30".into(),
                    days_left: Some(400),
                    share: "none".into(),
                    queue: 1,
                    holders: vec![Holder {
                        seat: "3f2a9c01d4e5".into(),
                        user: "alice".into(),
                        host: "ws1".into(),
                        client: "c1".into(),
                        count: 3,
                        version: "2.0".into(),
                        granted_at: 1_800_000_000,
                        age_secs: 192,
                        returns_in_secs: 42,
                        roam: None,
                    }],
                    more_holders: 12,
                    roaming: 0,
                },
                FeatureStatus {
                    name: "viewer".into(),
                    version: "1.0".into(),
                    count: None,
                    expires: "2026-12-01".into(),
                    days_left: Some(9),
                    share: "user".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_summary_per_pool_then_a_line_per_holder() {
        let text = render_status(&report(), 1_800_000_192);
        assert!(text.contains("up 2h02m"), "{text}");
        assert!(
            text.contains("\ncad 2.0: 5 issued, 3 in use, 1 queued, expires 2027-11-30\n"),
            "{text}"
        );
        let holder = text
            .lines()
            .find(|l| l.contains("3f2a9c01d4e5"))
            .expect("the holder's line");
        for part in [
            "alice",
            "ws1",
            " 3 ",
            "2.0",
            &local_time(1_800_000_000),
            "(in 42s)",
        ] {
            assert!(holder.contains(part), "{part:?} in {holder:?}");
        }
        assert!(text.contains("  ... and 12 more\n"), "{text}");
        assert!(
            text.contains(
                "viewer 1.0: uncounted, 0 in use, expires 2026-12-01 (IN 9 DAYS: renew), shared per user"
            ),
            "{text}"
        );
    }
}
