//! The network: links, their generations, delays in order, cuts and dials.

use super::*;

impl World {
    pub(super) fn reachable(&self, a: End, b: End) -> bool {
        !self.cut.contains(&wire(a, b))
    }

    pub(super) fn up(&self, e: End) -> bool {
        match e {
            End::Server(s) => self.servers[s].live.is_some(),
            End::Witness => self.witness.is_some(),
            End::Client(_) => true,
        }
    }

    /// When a message sent now from `a` to `b` arrives (in order with the
    /// others on that direction).
    pub(super) fn arrival(&mut self, a: End, b: End) -> Time {
        let w = wire(a, b);
        let mut delay = self.rng.between(100, 1_500);
        if let Some(extra) = self.slow.get(&w) {
            delay += self.rng.between(extra / 2, *extra);
        }
        let at = self.now + delay;
        let last = self.fifo.entry((a, b)).or_insert(0);
        let at = at.max(*last);
        *last = at;
        at
    }

    pub(super) fn send(&mut self, a: End, b: End, ev: Event) {
        let w = wire(a, b);
        if self.cut.contains(&w) || self.held.iter().any(|(_, d, _)| *d == (a, b)) {
            // Behind what waits on that connection, in order.
            self.held.push((w, (a, b), ev));
            return;
        }
        let at = self.arrival(a, b);
        self.at(at, ev);
    }

    pub(super) fn link_gen(&self, from: End, to: End) -> u64 {
        self.links.get(&(from, to)).copied().unwrap_or(0)
    }

    /// Closes a connection; the server that dialled it hears so (when it
    /// runs: a frozen one on waking, as its reader thread would report).
    pub(super) fn break_link(&mut self, from: End, to: End) {
        if self.links.remove(&(from, to)).is_none() {
            return;
        }
        self.trace(|| format!("link {from:?} -> {to:?} down"));
        if let End::Server(server) = from {
            self.at(self.now, Event::LinkDown { server, to });
            if to == End::Witness {
                self.at(self.now, Event::WitnessSawClose(server));
            }
        }
    }

    pub(super) fn dialled(&mut self, from: usize, to: End) {
        let me = End::Server(from);
        // Refused: a firewall rejects, or nothing listens (the process is
        // gone) where the host answers.
        let refused =
            self.rejecting.contains(&wire(me, to)) || (self.reachable(me, to) && !self.up(to));
        if refused {
            if let End::Server(other) = to {
                self.trace(|| format!("s{from}: dial to s{other} refused"));
                self.machine(from, Input::PeerDialRefused);
            }
            return;
        }
        let ok = self.reachable(me, to)
            && self.up(to)
            && match to {
                End::Server(o) => !self.servers[o].frozen,
                End::Witness => !self.witness_frozen,
                End::Client(_) => false,
            };
        if !ok || self.link_gen(me, to) != 0 {
            return;
        }
        let gen = self.next_gen;
        self.next_gen += 1;
        self.links.insert((me, to), gen);
        self.trace(|| format!("link s{from} -> {to:?} up"));
        let input = if to == End::Witness {
            Input::WitnessLinkUp
        } else {
            Input::PeerLinkUp
        };
        self.machine(from, input);
    }
}
