//! The invariants, checked after every event and once everything healed.

use super::*;

impl World {
    pub(super) fn check(&mut self) {
        let now = self.now;
        let held: usize = self.clients.iter().map(|c| c.holding(now)).sum();
        self.out.max_held = self.out.max_held.max(held);
        let count = self.cfg.count as usize;
        let limit = if self.cfg.witness { count } else { 2 * count };
        if held > limit {
            self.violation(format!(
                "{held} seats held at once on a count of {count} (limit {limit})"
            ));
        }
        if self.cfg.witness {
            let granting: Vec<usize> = (0..2)
                .filter(|&s| {
                    let srv = &self.servers[s];
                    let Some(live) = &srv.live else { return false };
                    if srv.frozen {
                        return false;
                    }
                    let at = clock(self.base, srv.rate, now);
                    !matches!(live.core.decision(at).gate, Gate::Closed(_))
                })
                .collect();
            if granting.len() > 1 {
                let gates: Vec<String> = (0..2)
                    .map(|s| {
                        let srv = &self.servers[s];
                        let live = srv.live.as_ref().expect("granting");
                        let at = clock(self.base, srv.rate, now);
                        format!(
                            "s{s} {:?} (role {}, epoch {}, lease ends in {:?})",
                            live.core.decision(at).gate,
                            live.machine.state().as_str(),
                            live.machine.epoch(),
                            live.core
                                .gate_inputs()
                                .grant_lease
                                .map(|u| u.checked_duration_since(at))
                        )
                    })
                    .collect();
                self.violation(format!(
                    "both servers may grant at once (witness mode): {gates:?}"
                ));
            }
        }
    }

    /// A server took over: in calm weather the other one must have been
    /// gone (a takeover beside a running, reachable active server is the
    /// false takeover a pause or a slow loop could cause).
    pub(super) fn check_takeover(&mut self, s: usize) {
        let other = &self.servers[1 - s];
        let other_serving = other.running()
            && other
                .live
                .as_ref()
                .is_some_and(|l| l.machine.state().is_serving());
        // The taker's own pause is no excuse: that is what it must not
        // take for the other's silence.
        let heard_for = self.now.saturating_sub(self.silenced[1 - s]);
        let up_for = self.now.saturating_sub(self.servers[s].started_at);
        let long = 2 * TAKEOVER.as_micros() as Time;
        if other_serving && up_for > long && !self.cut.contains(&Wire::Pair) && heard_for > long {
            self.violation(format!(
                "s{s} took over while s{} served, and nothing had silenced it for {:.1}s",
                1 - s,
                heard_for as f64 / 1e6
            ));
        }
    }

    /// No fault is under way.
    pub(super) fn calm(&self) -> bool {
        self.cut.is_empty()
            && self.slow.is_empty()
            && self.servers.iter().all(|s| s.running())
            && (!self.cfg.witness || (self.witness.is_some() && !self.witness_frozen))
    }

    pub(super) fn final_check(&mut self) {
        let serving: Vec<usize> = (0..2)
            .filter(|&s| {
                self.servers[s]
                    .live
                    .as_ref()
                    .is_some_and(|l| l.machine.state() == PeerState::Active)
            })
            .collect();
        // One active, and the other in sync with it (a pair that settles).
        let standby_ready = serving.len() == 1
            && self.servers[1 - serving[0]]
                .live
                .as_ref()
                .is_some_and(|l| l.machine.state() == PeerState::Ready);
        if !standby_ready {
            let states: Vec<String> = (0..2)
                .map(|s| {
                    self.servers[s]
                        .live
                        .as_ref()
                        .map_or("down".into(), |l| l.machine.state().as_str().to_string())
                })
                .collect();
            self.violation(format!(
                "after everything healed, the pair did not settle to one active and one ready server: {states:?}"
            ));

            return;
        }
        let held: usize = self.clients.iter().map(|c| c.held.len()).sum();
        for s in 0..2 {
            let live = self.servers[s].live.as_ref().expect("serving");
            let seats = live.core.ledger.seat_count();
            if seats != 0 || held != 0 {
                let handles: Vec<String> = live
                    .core
                    .ledger
                    .seats()
                    .map(|x| x.grant.handle.to_string())
                    .collect();
                self.violation(format!(
                    "after every client returned its seats and {}s passed, s{s} still counts {seats} seat(s) {handles:?} (clients hold {held})",
                    self.cfg.quiesce / 1_000_000
                ));
            }
        }
    }
}
