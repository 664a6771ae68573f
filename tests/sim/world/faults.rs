//! Faults: kill, freeze, cut, slow, a failing disk; and healing everything at the end.

use super::*;

impl World {
    pub(super) fn fault(&mut self, f: Fault) {
        if self.quiescing {
            return;
        }
        self.disturbed = self.now;
        match &f {
            Fault::Kill(s, _) | Fault::Freeze(s, _) | Fault::DiskFails(s) => {
                self.silenced[*s] = self.now
            }
            Fault::Cut(Wire::Pair, _) | Fault::Slow(Wire::Pair, ..) | Fault::Firewall(..) => {
                self.silenced = [self.now; 2]
            }
            _ => {}
        }
        self.trace(|| format!("FAULT {f:?}"));
        match f {
            Fault::Kill(s, down) => {
                if self.servers[s].live.is_some() {
                    self.kill(s);
                    let at = self.now + down;
                    self.at(at, Event::Restart(s));
                }
            }
            Fault::Freeze(s, len) => {
                if self.servers[s].running() {
                    self.servers[s].frozen = true;
                    let at = self.now + len;
                    self.at(at, Event::Thaw(s));
                }
            }
            Fault::KillWitness(down) => {
                if self.witness.is_some() {
                    self.witness = None;
                    self.witness_frozen = false;
                    self.witness_deferred.clear();
                    for s in 0..2 {
                        self.break_link(End::Server(s), End::Witness);
                    }
                    let at = self.now + down;
                    self.at(at, Event::RestartWitness);
                }
            }
            Fault::FreezeWitness(len) => {
                if self.witness.is_some() && !self.witness_frozen {
                    self.witness_frozen = true;
                    let at = self.now + len;
                    self.at(at, Event::ThawWitness);
                }
            }
            Fault::Cut(w, len) => {
                if self.cut.insert(w) {
                    let at = self.now + len;
                    self.at(at, Event::Heal(w));
                }
            }
            Fault::Firewall(s, len) => {
                let mut wires = vec![Wire::Pair];
                if self.cfg.witness {
                    wires.push(Wire::Witness(s));
                }
                for w in wires {
                    self.rejecting.insert(w);
                    if self.cut.insert(w) {
                        let at = self.now + len;
                        self.at(at, Event::Heal(w));
                    }
                    self.reset_links_over(w);
                }
            }
            Fault::Slow(w, extra, len) => {
                self.slow.insert(w, extra);
                let at = self.now + len;
                self.at(at, Event::Unslow(w));
            }
            Fault::DiskFails(s) => self.servers[s].journal.fail("simulated disk failure"),
        }
    }

    pub(super) fn kill(&mut self, s: usize) {
        self.servers[s].live = None;
        self.servers[s].frozen = false;
        self.servers[s].loop_due = false;
        self.servers[s].sync_due = false;
        self.deferred[s].clear();
        self.servers[s].journal.crash();
        let me = End::Server(s);
        for to in [End::Server(1 - s), End::Witness] {
            let closed = self.links.remove(&(me, to)).is_some();
            if closed && to == End::Witness && self.reachable(me, to) {
                self.at(self.now, Event::WitnessSawClose(s));
            }
        }
        // Its peers see the connections close, where a RST gets through.
        let other = End::Server(1 - s);
        if self.reachable(other, me) {
            self.break_link(other, me);
        }
        self.reset_clients_of(s);
    }

    /// Every client connection of server `s` is reset (where the RST gets
    /// through; elsewhere the client times out).
    pub(super) fn reset_clients_of(&mut self, s: usize) {
        let me = End::Server(s);
        let dropped: Vec<(u64, usize)> = self
            .conns
            .iter()
            .filter(|(_, (_, srv))| *srv == s)
            .map(|(id, (c, _))| (*id, *c))
            .collect();
        for (conn, client) in dropped {
            self.conns.remove(&conn);
            if let Some(live) = &mut self.servers[s].live {
                if let Some(c) = live.conns.remove(&conn) {
                    live.core.connection_closed(&c.state);
                }
            }
            if self.reachable(End::Client(client), me) {
                let at = self.now + 500;
                self.at(at, Event::Reset { client, conn });
            }
        }
    }

    pub(super) fn thaw(&mut self, s: usize) {
        self.disturbed = self.now;
        self.silenced[s] = self.now;
        if !self.servers[s].frozen {
            return;
        }
        self.servers[s].frozen = false;
        self.trace(|| format!("s{s} thawed"));
        let mut ticks = 0;
        for ev in std::mem::take(&mut self.deferred[s]) {
            // Timers fired while frozen collapse into one each.
            if matches!(ev, Event::WatchdogTick(_) | Event::LoopTick(_)) {
                ticks += 1;
                if ticks > 2 {
                    continue;
                }
            }
            self.at(self.now, ev);
        }
        self.at(self.now, Event::WatchdogTick(s));
        self.at(self.now, Event::LoopTick(s));
    }

    pub(super) fn heal(&mut self, w: Wire) {
        self.disturbed = self.now;
        if w == Wire::Pair {
            self.silenced = [self.now; 2];
        }
        self.rejecting.remove(&w);
        if !self.cut.remove(&w) {
            return;
        }
        self.trace(|| format!("{w:?} healed"));
        // What was sent meanwhile arrives now (TCP retransmits), unless the
        // connection was reset.
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(x, _, _)| *x == w);
        self.held = rest;
        let reset = self.rng.chance(0.3);
        if reset {
            self.reset_links_over(w);
            if let Wire::Clients(server) = w {
                self.reset_clients_of(server);
            }
        }
        let backoff = self.rng.between(1_000, 400_000);
        for (i, (_, dir, ev)) in mine.into_iter().enumerate() {
            let at = self.now + backoff + i as Time;
            // Later sends on the same direction come after these.
            let last = self.fifo.entry(dir).or_insert(0);
            *last = (*last).max(at);
            self.at(at, ev);
        }
    }

    /// Every connection over wire `w` is reset; both ends hear so.
    fn reset_links_over(&mut self, w: Wire) {
        let pairs: Vec<(End, End)> = self
            .links
            .keys()
            .copied()
            .filter(|(a, b)| wire(*a, *b) == w)
            .collect();
        for (a, b) in pairs {
            self.break_link(a, b);
        }
    }

    /// Everything heals; clients return their seats and stop.
    pub(super) fn quiesce(&mut self) {
        self.quiescing = true;
        self.trace(|| "QUIESCE: every fault heals, clients return their seats".into());
        let wires: Vec<Wire> = self.cut.iter().copied().collect();
        for w in wires {
            self.heal(w);
        }
        self.slow.clear();
        for s in 0..2 {
            if self.servers[s].frozen {
                self.thaw(s);
            }
            if self.servers[s].journal.lock().failure.is_some() {
                // The operator replaces the disk and restarts the server.
                self.kill(s);
            }
            if self.servers[s].live.is_none() {
                self.start_server(s);
            }
        }
        if self.cfg.witness {
            if self.witness_frozen {
                self.at(self.now, Event::ThawWitness);
            }
            if self.witness.is_none() {
                self.at(self.now, Event::RestartWitness);
            }
        }
        for c in 0..self.clients.len() {
            self.clients[c].stopping = true;
            self.wake_client(c, 0);
        }
    }
}
