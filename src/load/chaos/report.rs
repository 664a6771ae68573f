//! The report of a run: the schedule, what the checks found, availability
//! per fault kind, CPU, resources and state files; as text, and as JSON
//! (written beside the run's logs) for docs/RELIABILITY.md.

use super::availability::Figures;
use super::floods::FloodReport;
use super::history::{Findings, Window};
use super::procs::Probe;
use super::schedule::Fault;
use super::Options;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CpuFigure {
    pub node: String,
    pub at_secs: f64,
    pub percent: f64,
}

/// The active server's seats against the clients', once quiet.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct EndCheck {
    pub server: String,
    pub clients_hold: usize,
    pub server_lists: usize,
    /// Held by a client, not listed by the server: lost.
    pub missing: Vec<String>,
    /// Listed by the server, held by no client: a ghost or a leak.
    pub extra: Vec<String>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Resources {
    pub node: String,
    /// Started again during the run (before and after are two processes).
    pub restarted: bool,
    pub before: Probe,
    pub after: Probe,
}

#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub mode: String,
    pub duration_secs: u64,
    pub clients: usize,
    pub count: u32,
    pub schedule: Vec<String>,
    pub netem: bool,
    pub windows: Vec<Window>,
    /// Faults that could not be carried out here, and why.
    pub not_run: Vec<String>,
    pub requests: usize,
    pub findings: Findings,
    pub availability: BTreeMap<String, Figures>,
    pub end: Option<EndCheck>,
    /// Seats still listed after their confirmed checkin, once all returned.
    pub after_return: Vec<String>,
    pub cpu: Vec<CpuFigure>,
    pub quiet_cpu: BTreeMap<String, f64>,
    pub resources: Vec<Resources>,
    /// Journal and snapshot bytes per server: (seconds, server, journal, snapshot).
    pub state_series: Vec<(f64, String, u64, u64)>,
    pub state_files: BTreeMap<String, (u64, u64)>,
    pub settled_after_secs: f64,
    pub soak_load: Option<crate::load::Report>,
    pub floods: Option<FloodReport>,
    /// Failures found outside the history checks.
    pub failures: Vec<String>,
}

impl Report {
    pub fn new(o: &Options, faults: &[Fault], netem: bool) -> Report {
        Report {
            seed: o.seed,
            mode: o.mode.as_str().into(),
            duration_secs: o.duration.as_secs(),
            clients: o.clients,
            count: o.count,
            schedule: faults.iter().map(|f| f.to_string()).collect(),
            netem,
            ..Report::default()
        }
    }

    /// Every failed check, one line each.
    pub fn all_failures(&self) -> Vec<String> {
        let mut out = self.failures.clone();
        let f = &self.findings;
        out.extend(f.over_grants.iter().map(|s| format!("over-grant: {s}")));
        out.extend(f.lost.iter().map(|s| format!("lost seat: {s}")));
        out.extend(f.ghosts.iter().map(|s| format!("ghost: {s}")));
        if let Some(e) = &self.end {
            if e.server == "none active" {
                out.push("end check: no active server".into());
            }
            out.extend(e.missing.iter().map(|h| {
                format!(
                    "end check: {h} held by a client, not listed by the {} server",
                    e.server
                )
            }));
            out.extend(e.extra.iter().map(|h| {
                format!(
                    "end check: {h} listed by the {} server, held by no client",
                    e.server
                )
            }));
        }
        out.extend(
            self.after_return
                .iter()
                .map(|h| format!("after the last checkins: {h} still listed")),
        );
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let windows: Vec<_> = self
            .windows
            .iter()
            .map(|w| serde_json::json!({"kind": w.kind, "fault": w.text, "start": w.start.as_secs_f64(), "end": w.end.as_secs_f64()}))
            .collect();
        let availability: BTreeMap<_, _> = self
            .availability
            .iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    serde_json::json!({
                        "faults": f.faults,
                        "no_answer_secs": f.no_answer.secs,
                        "refused_while_free_secs": f.refused_while_free.secs,
                        "heartbeat_gap_secs": f.heartbeat_gap.secs,
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "seed": self.seed, "mode": self.mode, "duration_secs": self.duration_secs,
            "clients": self.clients, "count": self.count, "netem": self.netem,
            "schedule": self.schedule, "faults": windows, "not_run": self.not_run, "requests": self.requests,
            "grants": self.findings.grants, "peak": self.findings.peak, "bound": self.findings.bound,
            "failures": self.all_failures(), "availability": availability,
            "end": self.end, "quiet_cpu": self.quiet_cpu, "cpu": self.cpu,
            "resources": self.resources, "state_series": self.state_series,
            "state_files": self.state_files, "settled_after_secs": self.settled_after_secs,
            "soak_load": self.soak_load, "floods": self.floods,
        })
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let f = &self.findings;
        let _ = writeln!(
            s,
            "\n== chaos report: seed {} mode {} duration {}s, {} clients on {} seats",
            self.seed, self.mode, self.duration_secs, self.clients, self.count
        );
        let _ = writeln!(
            s,
            "replay: make chaos SEED={} DURATION={} MODE={}",
            self.seed, self.duration_secs, self.mode
        );
        let _ = writeln!(
            s,
            "{} requests, {} seats granted; most held at once {} (bound {})",
            self.requests, f.grants, f.peak, f.bound
        );
        for text in &self.not_run {
            let _ = writeln!(s, "NOT RUN: {text}");
        }
        let _ = writeln!(
            s,
            "\navailability per fault kind (longest stretch, seconds):"
        );
        let _ = writeln!(
            s,
            "  {:<38} {:>6} {:>10} {:>14} {:>14}",
            "fault kind", "faults", "no answer", "refused/free", "heartbeat gap"
        );
        for (kind, fig) in &self.availability {
            let _ = writeln!(
                s,
                "  {:<38} {:>6} {:>10.2} {:>14.2} {:>14.2}",
                kind,
                fig.faults,
                fig.no_answer.secs,
                fig.refused_while_free.secs,
                fig.heartbeat_gap.secs
            );
        }
        let mut peaks: BTreeMap<&str, (f64, f64, usize)> = BTreeMap::new();
        for c in &self.cpu {
            let e = peaks.entry(&c.node).or_default();
            e.0 = e.0.max(c.percent);
            e.1 += c.percent;
            e.2 += 1;
        }
        let _ = writeln!(
            s,
            "\nCPU (% of a core): during the run mean/max, then idle after it:"
        );
        for (node, (max, sum, n)) in &peaks {
            let idle = self
                .quiet_cpu
                .get(*node)
                .map_or("-".into(), |p| format!("{p:.1}"));
            let _ = writeln!(
                s,
                "  {node:<8} {:.1} / {max:.1}, idle {idle}",
                sum / (*n).max(1) as f64
            );
        }
        if !self.resources.is_empty() {
            let _ = writeln!(s, "\nresources before -> after (RSS KiB, threads, fds):");
            for r in &self.resources {
                let _ = writeln!(
                    s,
                    "  {:<8} {} -> {}, {} -> {}, {} -> {}{}",
                    r.node,
                    r.before.rss_kib,
                    r.after.rss_kib,
                    r.before.threads,
                    r.after.threads,
                    r.before.fds,
                    r.after.fds,
                    if r.restarted {
                        " (restarted during the run)"
                    } else {
                        ""
                    }
                );
            }
        }
        for (node, (j, snap)) in &self.state_files {
            let _ = writeln!(
                s,
                "state files of {node}: journal {j} bytes, snapshot {snap} bytes"
            );
        }
        if let Some(l) = &self.soak_load {
            let _ = writeln!(s, "\nsoak load: {} holders, {} requests answered OK, {} errors, {} disconnects, {} redirects", l.clients, l.ops, l.errors_total, l.disconnects, l.redirects);
        }
        if let Some(fl) = &self.floods {
            let _ = write!(s, "\n{}", fl.render());
        }
        let _ = writeln!(
            s,
            "\npair settled {:.1}s after the faults were healed",
            self.settled_after_secs
        );
        let failures = self.all_failures();
        if failures.is_empty() {
            let _ = writeln!(s, "\nPASS: every check held");
        } else {
            let _ = writeln!(s, "\nFAIL: {} check(s) failed:", failures.len());
            for line in failures.iter().take(40) {
                let _ = writeln!(s, "  {line}");
            }
            if failures.len() > 40 {
                let _ = writeln!(
                    s,
                    "  ... and {} more (see report.json)",
                    failures.len() - 40
                );
            }
        }
        s
    }
}
