//! `/metrics`: the server's numbers in the Prometheus text format
//! (version 0.0.4), and the counters the loop keeps for them.
//!
//! Every metric is listed with its meaning in docs/OPERATIONS.md.

use super::core::Core;
use crate::codes::Code;
use crate::ledger::Now;
use crate::protocol::status::StatusReport;
use std::collections::HashMap;
use std::fmt::Write;

/// Counters kept by the loop (monotonic since the server started).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Seats granted to CHECKOUT requests (at once or from the queue).
    pub checkouts: u64,
    /// Seats granted to RECLAIM requests (a client moving its handle here).
    pub reclaims: u64,
    /// CHECKOUT and RECLAIM requests refused, by code.
    pub denials: HashMap<Code, u64>,
}

impl Counters {
    pub fn denied(&mut self, code: Code) {
        *self.denials.entry(code).or_insert(0) += 1;
    }
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every state a server of a pair (or a lone one) can be in itself.
const STATES: &[&str] = &["starting", "syncing", "ready", "active", "recovering"];
const ROLES: &[&str] = &["standalone", "primary", "backup"];

/// Renders every metric.
pub fn render(core: &Core, now: Now) -> String {
    let report = super::status::build(core, now);
    render_report(&report, core, now)
}

fn render_report(report: &StatusReport, core: &Core, _now: Now) -> String {
    let mut m = Metrics::default();

    m.family(
        "floatd_build_info",
        "gauge",
        "Always 1; the version of this floatd in a label.",
    );
    m.sample(
        "floatd_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    m.family(
        "floatd_uptime_seconds",
        "gauge",
        "Seconds since this server started.",
    );
    m.sample("floatd_uptime_seconds", &[], report.uptime_secs);

    m.family(
        "floatd_role",
        "gauge",
        "1 for the role this server plays (standalone, primary or backup), 0 for the others.",
    );
    for role in ROLES {
        m.sample(
            "floatd_role",
            &[("role", role)],
            u64::from(*role == report.role),
        );
    }
    m.family(
        "floatd_state",
        "gauge",
        "1 for this server's state (active serves; ready and syncing stand by), 0 for the others.",
    );
    for state in STATES {
        m.sample(
            "floatd_state",
            &[("state", state)],
            u64::from(*state == report.state),
        );
    }
    m.family(
        "floatd_epoch",
        "gauge",
        "The failover epoch this server serves or follows.",
    );
    m.sample("floatd_epoch", &[], report.epoch);
    m.family(
        "floatd_journal_seq",
        "gauge",
        "The sequence number of the last journal record.",
    );
    m.sample("floatd_journal_seq", &[], report.seq);
    m.family(
        "floatd_connections",
        "gauge",
        "Client connections open now.",
    );
    m.sample("floatd_connections", &[], report.connections as u64);
    m.family(
        "floatd_alerts",
        "gauge",
        "Alerts shown on the status page now (a pair problem, a journal failure).",
    );
    m.sample("floatd_alerts", &[], report.alerts.len() as u64);
    m.family(
        "floatd_licence_lines_skipped",
        "gauge",
        "Broken licence lines and files left out at the last start or reread (bad signature, \
         parse error, unreadable); 0 when all load.",
    );
    m.sample(
        "floatd_licence_lines_skipped",
        &[],
        core.served.skipped.len() as u64,
    );

    // Seats, per pool.
    m.family("floatd_seats_in_use", "gauge", "Seats of a pool held now.");
    for f in &report.features {
        m.sample("floatd_seats_in_use", &pool_labels(f), f.in_use);
    }
    m.family(
        "floatd_seats_licensed",
        "gauge",
        "Seats a pool holds by its licences (uncounted pools are not listed).",
    );
    for f in &report.features {
        if let Some(count) = f.count {
            m.sample("floatd_seats_licensed", &pool_labels(f), count);
        }
    }
    m.family(
        "floatd_seats_roaming",
        "gauge",
        "Seats of a pool out roaming now (counted in floatd_seats_in_use too).",
    );
    for f in &report.features {
        m.sample("floatd_seats_roaming", &pool_labels(f), f.roaming);
    }
    m.family(
        "floatd_queue_length",
        "gauge",
        "Checkouts waiting for a feature (shared by its pools).",
    );
    let mut seen = std::collections::HashSet::new();
    for f in &report.features {
        if seen.insert(f.name.as_str()) {
            m.sample(
                "floatd_queue_length",
                &[("feature", &f.name)],
                f.queue as u64,
            );
        }
    }
    m.family(
        "floatd_licence_expiry_timestamp_seconds",
        "gauge",
        "When a pool stops serving: the Unix time of the end of its expiry day, UTC (permanent pools are not listed).",
    );
    for f in &report.features {
        if let Some(at) = expiry_timestamp(&f.expires) {
            m.sample_i(
                "floatd_licence_expiry_timestamp_seconds",
                &pool_labels(f),
                at,
            );
        }
    }

    // Counters.
    let c = &core.counters;
    m.family(
        "floatd_checkouts_total",
        "counter",
        "Checkouts granted (at once or from the queue) since start; one checkout may take several seats.",
    );
    m.sample("floatd_checkouts_total", &[], c.checkouts);
    m.family(
        "floatd_reclaims_total",
        "counter",
        "Reclaims granted (a client moving its handle to this server) since start.",
    );
    m.sample("floatd_reclaims_total", &[], c.reclaims);
    m.family(
        "floatd_denials_total",
        "counter",
        "Checkouts and reclaims refused since start, by error code.",
    );
    let mut denials: Vec<(&str, u64)> = c.denials.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    denials.sort_unstable();
    for (code, n) in denials {
        m.sample("floatd_denials_total", &[("code", code)], n);
    }

    // Journal.
    let j = core.journal.stats();
    m.family(
        "floatd_journal_fsync_seconds",
        "summary",
        "Time the journal's group commits spent in fsync.",
    );
    m.sample_f(
        "floatd_journal_fsync_seconds_sum",
        &[],
        j.total_fsync_us as f64 / 1e6,
    );
    m.sample("floatd_journal_fsync_seconds_count", &[], j.fsyncs);
    m.family(
        "floatd_journal_fsync_last_seconds",
        "gauge",
        "Duration of the last journal fsync.",
    );
    m.sample_f(
        "floatd_journal_fsync_last_seconds",
        &[],
        j.last_fsync_us as f64 / 1e6,
    );
    m.family(
        "floatd_journal_fsync_max_seconds",
        "gauge",
        "Longest journal fsync since start.",
    );
    m.sample_f(
        "floatd_journal_fsync_max_seconds",
        &[],
        j.max_fsync_us as f64 / 1e6,
    );
    m.family(
        "floatd_journal_failed",
        "gauge",
        "1 once the journal could not write or fsync (no grants until restarted).",
    );
    m.sample(
        "floatd_journal_failed",
        &[],
        u64::from(core.journal.failure().is_some()),
    );

    // The pair.
    if let Some(peer) = report.servers.get(1) {
        m.family(
            "floatd_peer_up",
            "gauge",
            "1 while the other server of the pair is heard from, else 0.",
        );
        m.sample(
            "floatd_peer_up",
            &[("peer", &peer.addr)],
            u64::from(peer.state != "inaccessible"),
        );
        m.family(
            "floatd_peer_state",
            "gauge",
            "1 for the state this server last heard from the other server (inaccessible when not heard).",
        );
        for state in STATES.iter().chain(&["inaccessible"]) {
            m.sample(
                "floatd_peer_state",
                &[("peer", &peer.addr), ("state", state)],
                u64::from(peer.state == *state),
            );
        }
        if let Some(ms) = peer.last_contact_ms {
            m.family(
                "floatd_peer_last_contact_seconds",
                "gauge",
                "Seconds since this server last heard from the other server.",
            );
            m.sample_f(
                "floatd_peer_last_contact_seconds",
                &[("peer", &peer.addr)],
                ms as f64 / 1e3,
            );
        }
        if let Some(lag) = peer.lag {
            m.family(
                "floatd_replication_lag_records",
                "gauge",
                "Journal records the standby has not acknowledged (active) or this standby has not applied.",
            );
            m.sample(
                "floatd_replication_lag_records",
                &[("peer", &peer.addr)],
                lag,
            );
        }
    }
    if let Some(w) = &report.witness {
        m.family(
            "floatd_witness_up",
            "gauge",
            "1 while the witness is reachable, else 0 (witness mode only).",
        );
        m.sample(
            "floatd_witness_up",
            &[("witness", &w.addr)],
            u64::from(w.state == "reachable"),
        );
    }
    m.out
}

/// The first second a pool expiring on `date` (`YYYY-MM-DD`) no longer
/// serves: the end of that day, UTC. `None` for `permanent`.
fn expiry_timestamp(date: &str) -> Option<i64> {
    let day = crate::civil::Date::parse(date)?;
    Some((day.days_since_epoch() + 1) * 86_400)
}

fn pool_labels(f: &crate::protocol::status::FeatureStatus) -> Vec<(&'static str, &str)> {
    vec![
        ("feature", f.name.as_str()),
        ("version", f.version.as_str()),
        ("expires", f.expires.as_str()),
        ("share", f.share.as_str()),
    ]
}

#[derive(Default)]
struct Metrics {
    out: String,
}

impl Metrics {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.labels(name, labels);
        let _ = writeln!(self.out, " {value}");
    }

    fn sample_i(&mut self, name: &str, labels: &[(&str, &str)], value: i64) {
        self.labels(name, labels);
        let _ = writeln!(self.out, " {value}");
    }

    fn sample_f(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.labels(name, labels);
        let _ = writeln!(self.out, " {value}");
    }
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_the_end_of_the_day_utc() {
        assert_eq!(expiry_timestamp("1970-01-01"), Some(86_400));
        assert_eq!(expiry_timestamp("2027-12-31"), Some(1_830_297_600));
        assert_eq!(expiry_timestamp("permanent"), None);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
    }

    #[test]
    fn families_and_samples_are_well_formed() {
        let mut m = Metrics::default();
        m.family("x_total", "counter", "Things.");
        m.sample("x_total", &[("code", "NO_SEATS")], 3);
        m.sample_f("y", &[], 0.25);
        assert_eq!(
            m.out,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{code=\"NO_SEATS\"} 3\ny 0.25\n"
        );
    }
}
