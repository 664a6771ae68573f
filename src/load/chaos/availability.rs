//! Availability per fault kind, from what the clients observed:
//!
//! - **no answer**: the longest stretch a client waited for any answer from
//!   a serving server (a refusal counts as an answer; a timeout, a refused
//!   connection or "I am the standby" does not);
//! - **refused while free**: the longest stretch a client could not get a
//!   seat although fewer seats than the count could possibly be held
//!   (counting every seat a client might hold, orphans of unanswered
//!   checkouts included);
//! - **heartbeat gap**: the longest stretch a held seat could not be
//!   renewed.
//!
//! Each stretch is charged to every fault whose window (plus the settling
//! time after it) it overlaps, or to "no fault".

use super::history::{lives, Life, Obs, Op, Outcome, Setup, Window};
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest stretch of one measure, and where it was.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Worst {
    pub secs: f64,
    /// When it began and which client.
    pub from: f64,
    pub client: usize,
}

impl Worst {
    fn take(&mut self, from: Duration, to: Duration, client: usize) {
        let secs = to.saturating_sub(from).as_secs_f64();
        if secs > self.secs {
            *self = Worst {
                secs,
                from: from.as_secs_f64(),
                client,
            };
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Faults of this kind carried out.
    pub faults: usize,
    pub no_answer: Worst,
    pub refused_while_free: Worst,
    pub heartbeat_gap: Worst,
}

/// Figures by fault kind ("no fault" for stretches outside every window).
pub fn per_kind(setup: &Setup, obs: &[Obs], windows: &[Window]) -> BTreeMap<String, Figures> {
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    for w in windows {
        out.entry(w.kind.clone()).or_default().faults += 1;
    }
    let mut charge =
        |from: Duration, to: Duration, client: usize, pick: fn(&mut Figures) -> &mut Worst| {
            let mut kinds: Vec<&str> = windows
                .iter()
                .filter(|w| w.start <= to && from <= w.end + setup.settle)
                .map(|w| w.kind.as_str())
                .collect();
            if kinds.is_empty() {
                kinds.push("no fault");
            }
            kinds.dedup();
            for k in kinds {
                pick(out.entry(k.to_string()).or_default()).take(from, to, client);
            }
        };
    let mut by_client: BTreeMap<usize, Vec<&Obs>> = BTreeMap::new();
    for o in obs {
        by_client.entry(o.client).or_default().push(o);
    }
    let possibly = possibly_held(setup, obs, windows);
    for (client, list) in &by_client {
        // No answer: from the first unanswered request to the next answer.
        let mut open: Option<Duration> = None;
        for o in list.iter().filter(|o| o.op != Op::Lost) {
            let from = *open.get_or_insert(o.sent);
            if !matches!(o.outcome, Outcome::NoAnswer(_)) {
                charge(from, o.got, *client, |f| &mut f.no_answer);
                open = None;
            }
        }
        // Refused while a seat was free: from the first such refusal to the
        // next grant (a refusal while every seat may be held ends it).
        let mut open: Option<Duration> = None;
        for o in list.iter().filter(|o| o.op == Op::Checkout) {
            if o.outcome == Outcome::Ok {
                if let Some(from) = open.take() {
                    charge(from, o.got, *client, |f| &mut f.refused_while_free);
                }
            } else if possibly_at(&possibly, o.got) < setup.count as usize {
                open.get_or_insert(o.sent);
            } else if let Some(from) = open.take() {
                charge(from, o.sent, *client, |f| &mut f.refused_while_free);
            }
        }
    }
    // Heartbeat gaps: from the first failed renewal to the next success.
    let mut attempts: BTreeMap<&str, Vec<&Obs>> = BTreeMap::new();
    for o in obs.iter().filter(|o| o.op == Op::Heartbeat) {
        if let Some(h) = &o.handle {
            attempts.entry(h).or_default().push(o);
        }
    }
    for list in attempts.values() {
        let mut open: Option<Duration> = None;
        for o in list {
            let from = *open.get_or_insert(o.sent);
            match o.outcome {
                Outcome::Ok => {
                    charge(from, o.got, o.client, |f| &mut f.heartbeat_gap);
                    open = None;
                }
                Outcome::Refused(_) => {
                    charge(from, o.got, o.client, |f| &mut f.heartbeat_gap);
                    break;
                }
                Outcome::NoAnswer(_) => {}
            }
        }
    }
    out
}

/// Every stretch in which a server might count a seat: from the checkout's
/// sending until its checkin was confirmed, or else until a lease after the
/// last sign of it (one lease more if a fault came meanwhile: a takeover
/// renews every lease it knows). Unanswered checkouts count too.
fn possibly_held(setup: &Setup, obs: &[Obs], windows: &[Window]) -> Vec<(Duration, Duration)> {
    let lease = setup.lease;
    let extend = |from: Duration, to: Duration| {
        let fault_between = windows.iter().any(|w| w.start <= to && w.end >= from);
        if fault_between {
            to + lease
        } else {
            to
        }
    };
    let mut spans = Vec::new();
    let all: BTreeMap<String, Life> = lives(obs);
    for life in all.values() {
        let Some(&(first_sent, _)) = life.renewals.first() else {
            continue;
        };
        let last_got = life
            .renewals
            .iter()
            .map(|r| r.1)
            .max()
            .unwrap_or(first_sent);
        let end = match life.checked_in {
            Some(t) => t,
            None => extend(last_got, last_got + lease),
        };
        spans.push((first_sent, end));
    }
    for o in obs {
        if o.op == Op::Checkout && matches!(o.outcome, Outcome::NoAnswer(_)) {
            spans.push((o.sent, extend(o.sent, o.got + lease)));
        }
    }
    spans
}

fn possibly_at(spans: &[(Duration, Duration)], t: Duration) -> usize {
    spans.iter().filter(|(a, b)| *a <= t && t < *b).count()
}

#[cfg(test)]
mod tests {
    use super::super::schedule::Mode;
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn obs(
        client: usize,
        op: Op,
        handle: Option<&str>,
        sent: f64,
        got: f64,
        outcome: Outcome,
    ) -> Obs {
        Obs {
            client,
            op,
            handle: handle.map(str::to_string),
            sent: s(sent),
            got: s(got),
            outcome,
        }
    }

    const SETUP: Setup = Setup {
        mode: Mode::Witness,
        count: 2,
        lease: Duration::from_secs(10),
        settle: Duration::from_secs(2),
    };

    #[test]
    fn stretches_are_charged_to_the_fault_they_overlap() {
        let no = || Outcome::NoAnswer("timeout".into());
        let history = vec![
            obs(0, Op::Checkout, Some("h1"), 1.0, 1.01, Outcome::Ok),
            obs(0, Op::Heartbeat, Some("h1"), 2.0, 2.01, Outcome::Ok),
            // The primary dies at 3: heartbeats fail until 6.5.
            obs(0, Op::Heartbeat, Some("h1"), 3.0, 5.0, no()),
            obs(0, Op::Heartbeat, Some("h1"), 5.0, 6.5, Outcome::Ok),
            // A ghost keeps the only free seat away from client 1 for 4 s
            // (client 0 holds one of two seats).
            obs(
                1,
                Op::Checkout,
                None,
                10.0,
                10.01,
                Outcome::Refused("NO_SEATS".into()),
            ),
            obs(
                1,
                Op::Checkout,
                None,
                12.0,
                12.01,
                Outcome::Refused("NO_SEATS".into()),
            ),
            obs(1, Op::Checkout, Some("h2"), 14.0, 14.01, Outcome::Ok),
        ];
        let windows = vec![Window {
            kind: "kill primary".into(),
            text: "SIGKILL primary".into(),
            start: s(3.0),
            end: s(4.0),
        }];
        let figures = per_kind(&SETUP, &history, &windows);
        let kill = &figures["kill primary"];
        assert_eq!(kill.faults, 1);
        assert!((kill.heartbeat_gap.secs - 3.5).abs() < 1e-6, "{kill:?}");
        assert!((kill.no_answer.secs - 3.5).abs() < 1e-6);
        let none = &figures["no fault"];
        assert!(
            (none.refused_while_free.secs - 4.01).abs() < 1e-6,
            "{none:?}"
        );
        assert_eq!(none.refused_while_free.client, 1);
        assert_eq!(kill.refused_while_free, Worst::default());
    }

    #[test]
    fn a_refusal_while_every_seat_may_be_held_is_no_unavailability() {
        let history = vec![
            obs(0, Op::Checkout, Some("a"), 1.0, 1.01, Outcome::Ok),
            obs(1, Op::Checkout, Some("b"), 1.0, 1.01, Outcome::Ok),
            obs(
                2,
                Op::Checkout,
                None,
                2.0,
                2.01,
                Outcome::Refused("NO_SEATS".into()),
            ),
            obs(
                2,
                Op::Checkout,
                None,
                3.0,
                3.01,
                Outcome::Refused("NO_SEATS".into()),
            ),
            obs(0, Op::Checkin, Some("a"), 4.0, 4.01, Outcome::Ok),
            obs(2, Op::Checkout, Some("c"), 4.5, 4.51, Outcome::Ok),
        ];
        let figures = per_kind(&SETUP, &history, &[]);
        assert_eq!(figures["no fault"].refused_while_free.secs, 0.0);
    }
}
