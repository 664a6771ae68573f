//! What the clients observed, and the checks over it.
//!
//! Every request a fleet client makes is one [`Obs`]: when it was sent,
//! when its outcome was known, and the outcome. From these alone:
//!
//! - a seat is **surely held** from the moment its grant reply arrived
//!   (the server granted before replying) until its checkin was sent, it
//!   was refused, or its lease ran out at the client (a lease runs from
//!   the last successful renewal's *sending*, so the server's deadline is
//!   never earlier). More surely held seats than the count at one instant
//!   is an over-grant that clients acted on;
//! - a seat refused (heartbeat, checkin, or lost by the client library's
//!   reclaim) while its lease still ran at the client is a **lost seat**;
//! - a seat listed by an active server after that server (or its pair)
//!   confirmed its checkin is a **ghost**: a returned seat resurrected.

use super::schedule::Mode;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Checkout,
    Heartbeat,
    Checkin,
    /// The client library gave the seat up (its reclaim was refused).
    Lost,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A serving server answered with this error code.
    Refused(String),
    /// No server answered (unreachable, timed out, none active).
    NoAnswer(String),
}

#[derive(Clone, Debug)]
pub struct Obs {
    pub client: usize,
    pub op: Op,
    /// The seat: granted (a checkout), or acted on.
    pub handle: Option<String>,
    /// From the start of the run.
    pub sent: Duration,
    pub got: Duration,
    pub outcome: Outcome,
}

/// A server's STATUS, taken while the run went on.
#[derive(Clone, Debug)]
pub struct Sample {
    pub server: String,
    pub sent: Duration,
    pub state: String,
    /// Handles listed, with seconds until each returns.
    pub holders: Vec<(String, u64)>,
}

/// A fault as it was carried out: `kind` for the per-kind figures.
#[derive(Clone, Debug)]
pub struct Window {
    pub kind: String,
    pub text: String,
    pub start: Duration,
    pub end: Duration,
}

/// What the checks need to know about the run.
#[derive(Clone, Debug)]
pub struct Setup {
    pub mode: Mode,
    pub count: u32,
    pub lease: Duration,
    /// After a fault ends, how long its effects are still its own.
    pub settle: Duration,
}

/// One seat's life as its client saw it.
#[derive(Clone, Debug, Default)]
pub struct Life {
    pub client: usize,
    /// Times of the grant and of each successful renewal: (sent, got).
    pub renewals: Vec<(Duration, Duration)>,
    /// When the client stopped holding it, and why.
    pub end: Option<(Duration, String)>,
    /// When a checkin of it was confirmed.
    pub checked_in: Option<Duration>,
    /// Refusals of it while held: (when, what).
    pub refusals: Vec<(Duration, String)>,
}

impl Life {
    /// When the lease runs out at the client after the renewal before `t`.
    pub fn lease_end_before(&self, t: Duration, lease: Duration) -> Option<Duration> {
        self.renewals
            .iter()
            .filter(|(_, got)| *got <= t)
            .map(|(sent, _)| *sent + lease)
            .max()
    }

    /// The stretches the seat was surely held.
    fn surely_held(&self, lease: Duration) -> Vec<(Duration, Duration)> {
        let end = self.end.as_ref().map(|e| e.0).unwrap_or(Duration::MAX);
        let mut spans: Vec<(Duration, Duration)> = self
            .renewals
            .iter()
            .map(|(sent, got)| (*got, (*sent + lease).min(end)))
            .filter(|(a, b)| b > a)
            .collect();
        spans.sort();
        let mut merged: Vec<(Duration, Duration)> = Vec::new();
        for (a, b) in spans {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        merged
    }
}

/// Every seat's life, by handle.
pub fn lives(obs: &[Obs]) -> BTreeMap<String, Life> {
    let mut lives: BTreeMap<String, Life> = BTreeMap::new();
    for o in obs {
        let Some(handle) = &o.handle else { continue };
        let life = lives.entry(handle.clone()).or_default();
        life.client = o.client;
        let held = life.end.is_none();
        match (&o.op, &o.outcome) {
            (Op::Checkout | Op::Heartbeat, Outcome::Ok) if held => {
                life.renewals.push((o.sent, o.got))
            }
            (Op::Checkin, outcome) => {
                life.end.get_or_insert((o.sent, "checked in".into()));
                match outcome {
                    Outcome::Ok => life.checked_in = Some(o.got),
                    Outcome::Refused(code) => life
                        .refusals
                        .push((o.got, format!("checkin refused {code}"))),
                    Outcome::NoAnswer(_) => {}
                }
            }
            (Op::Heartbeat, Outcome::Refused(code)) if held => {
                life.refusals
                    .push((o.got, format!("heartbeat refused {code}")));
                life.end = Some((o.got, format!("heartbeat refused {code}")));
            }
            (Op::Lost, Outcome::Refused(why)) if held => {
                life.refusals.push((o.got, format!("lost: {why}")));
                life.end = Some((o.got, format!("lost: {why}")));
            }
            _ => {}
        }
    }
    lives
}

/// What the checks found.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// Most seats surely held at one instant.
    pub peak: u32,
    /// The bound the peak is held to (the count, or twice it in
    /// two-server mode: docs/FAILOVER.md).
    pub bound: u32,
    pub grants: usize,
    pub over_grants: Vec<String>,
    pub lost: Vec<String>,
    pub ghosts: Vec<String>,
}

impl Findings {
    pub fn failures(&self) -> usize {
        self.over_grants.len() + self.lost.len() + self.ghosts.len()
    }
}

/// The faults running (or settling) around `t`, for messages.
pub fn faults_at(windows: &[Window], t: Duration, settle: Duration) -> String {
    let active: Vec<&str> = windows
        .iter()
        .filter(|w| w.start <= t && t <= w.end + settle)
        .map(|w| w.text.as_str())
        .collect();
    if active.is_empty() {
        "no fault".into()
    } else {
        active.join(" + ")
    }
}

fn at(t: Duration) -> String {
    format!("t={:.2}s", t.as_secs_f64())
}

/// Runs every check over the run's observations.
pub fn check(setup: &Setup, obs: &[Obs], samples: &[Sample], windows: &[Window]) -> Findings {
    let lives = lives(obs);
    let bound = match setup.mode {
        Mode::Witness => setup.count,
        Mode::TwoServer => setup.count * 2,
    };
    let mut f = Findings {
        bound,
        grants: lives.len(),
        ..Findings::default()
    };
    over_grants(setup, &lives, windows, &mut f);
    for (handle, life) in &lives {
        if let Some((when, what)) = life.refusals.first() {
            if let Some(end) = life.lease_end_before(*when, setup.lease) {
                if *when + Duration::from_millis(500) < end {
                    f.lost.push(format!(
                        "{}: client {} seat {handle}: {what}, {:.1}s before its lease ran out (during {})",
                        at(*when),
                        life.client,
                        (end - *when).as_secs_f64(),
                        faults_at(windows, *when, setup.settle)
                    ));
                }
            }
        }
    }
    ghosts(setup, &lives, samples, windows, &mut f);
    f
}

fn over_grants(
    setup: &Setup,
    lives: &BTreeMap<String, Life>,
    windows: &[Window],
    f: &mut Findings,
) {
    let mut edges: Vec<(Duration, i32, &str)> = Vec::new();
    for (handle, life) in lives {
        for (a, b) in life.surely_held(setup.lease) {
            edges.push((a, 1, handle));
            edges.push((b, -1, handle));
        }
    }
    // Ends before starts at one instant: touching stretches don't overlap.
    edges.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.cmp(&y.1)));
    let mut held: Vec<&str> = Vec::new();
    let mut over_since: Option<Duration> = None;
    for (t, delta, handle) in edges {
        if delta > 0 {
            held.push(handle);
        } else if let Some(i) = held.iter().position(|h| *h == handle) {
            held.swap_remove(i);
        }
        let n = held.len() as u32;
        f.peak = f.peak.max(n);
        if n > f.bound && over_since.is_none() {
            over_since = Some(t);
            if f.over_grants.len() < 20 {
                let mut who: Vec<String> = held
                    .iter()
                    .map(|h| format!("{h} (client {})", lives[*h].client))
                    .collect();
                who.sort();
                f.over_grants.push(format!(
                    "{}: {n} seats held at once, bound {} (during {}): {}",
                    at(t),
                    f.bound,
                    faults_at(windows, t, setup.settle),
                    who.join(", ")
                ));
            }
        } else if n <= f.bound {
            over_since = None;
        }
    }
}

/// A handle listed by an active server after its checkin was confirmed.
/// In two-server mode a split lets the other side keep a returned seat
/// until the servers talk again (docs/FAILOVER.md), so samples taken during
/// a fault or while it settles are left out there; witness mode has no
/// such excuse.
fn ghosts(
    setup: &Setup,
    lives: &BTreeMap<String, Life>,
    samples: &[Sample],
    windows: &[Window],
    f: &mut Findings,
) {
    let mut seen = std::collections::BTreeSet::new();
    // Status lists seat ids, not handles.
    let by_seat: BTreeMap<String, (&String, &Life)> = lives
        .iter()
        .map(|(h, l)| (crate::ledger::seat_id(h), (h, l)))
        .collect();
    for s in samples {
        if s.state != "active" {
            continue;
        }
        let in_fault = windows
            .iter()
            .any(|w| w.start <= s.sent && s.sent <= w.end + setup.settle);
        if setup.mode == Mode::TwoServer && in_fault {
            continue;
        }
        for (seat, returns_in) in &s.holders {
            let Some((handle, life)) = by_seat.get(seat) else {
                continue;
            };
            let Some(checked_in) = life.checked_in else {
                continue;
            };
            // A second's slack, and a seat about to expire anyway is no ghost.
            if s.sent > checked_in + Duration::from_secs(1)
                && *returns_in >= 1
                && seen.insert((*handle).clone())
            {
                f.ghosts.push(format!(
                    "{}: {} lists seat {handle} (returns in {returns_in}s), checked in at {} by client {} (during {})",
                    at(s.sent),
                    s.server,
                    at(checked_in),
                    life.client,
                    faults_at(windows, s.sent, setup.settle)
                ));
            }
        }
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
