//! The servers: start, the watchdog emulated (the role machine), the event loop emulated (the real request handling).

use super::*;

impl World {
    pub(super) fn start_server(&mut self, s: usize) {
        self.disturbed = self.now;
        self.silenced[s] = self.now;
        let srv = &mut self.servers[s];
        srv.starts += 1;
        srv.started_at = self.now;

        let seed = (s as u64 + 1) * 1_000_003 + srv.starts * 7919 + self.seq;
        let now = clock(self.base, srv.rate, self.now);
        let unix = self.unix0 + self.now / 1_000_000;
        let live = Live::start(
            srv.role,
            self.cfg.witness,
            self.cfg.count,
            &srv.journal,
            seed,
            now,
            unix,
        );
        srv.live = Some(live);
        srv.frozen = false;
        self.trace(|| format!("s{s} started"));
        self.at(self.now, Event::WatchdogTick(s));
        self.at(self.now, Event::LoopTick(s));
    }

    pub(super) fn machine(&mut self, s: usize, input: Input) {
        let now = clock(self.base, self.servers[s].rate, self.now);
        let Some(live) = &mut self.servers[s].live else {
            return;
        };
        let was_serving = live.machine.state().is_serving();
        let actions = live.machine.handle(input, now);
        if !was_serving && live.machine.state().is_serving() {
            self.check_takeover(s);
        }

        for a in actions {
            self.act(s, a);
        }
    }

    pub(super) fn act(&mut self, s: usize, a: Action) {
        let me = End::Server(s);
        match a {
            Action::ToPeer(msg) => {
                let to = End::Server(1 - s);
                let gen = self.link_gen(me, to);
                if gen != 0 {
                    let ev = Event::ToServer {
                        to: 1 - s,
                        link: (me, to),
                        gen,
                        msg,
                    };
                    self.send(me, to, ev);
                }
            }
            Action::ToWitness(msg) => {
                let gen = self.link_gen(me, End::Witness);
                if gen != 0 {
                    self.send(me, End::Witness, Event::ToWitness { from: s, gen, msg });
                }
            }
            Action::ToLoop(msg) => {
                // The status report waits for the next loop tick; the rest
                // wakes the loop, as the watchdog's waker does.
                let wake = !matches!(msg, floatd::failover::FromWatchdog::Status(_));
                if let Some(live) = &self.servers[s].live {
                    let _ = live.to_loop.send(msg);
                }
                if wake {
                    self.loop_soon(s);
                }
            }
            Action::ClosePeerLink => {
                // The machine knows: no LinkDown follows.
                self.links.remove(&(me, End::Server(1 - s)));
            }
            Action::DialPeer(_) => {
                let at = self.now + self.rng.between(200, 3_000);
                self.at(
                    at,
                    Event::Dialled {
                        from: s,
                        to: End::Server(1 - s),
                    },
                );
            }
            Action::DialWitness => {
                if self.cfg.witness {
                    let at = self.now + self.rng.between(200, 3_000);
                    self.at(
                        at,
                        Event::Dialled {
                            from: s,
                            to: End::Witness,
                        },
                    );
                }
            }
        }
    }

    pub(super) fn loop_soon(&mut self, s: usize) {
        if !self.servers[s].loop_due {
            self.servers[s].loop_due = true;
            self.at(self.now, Event::LoopRun(s));
        }
    }

    /// One iteration of the server's event loop.
    pub(super) fn run_loop(&mut self, s: usize) {
        let now = self.server_now(s);
        let Some(live) = &mut self.servers[s].live else {
            return;
        };
        live.core.on_wake(now);
        let mut replies = Vec::new();
        for (&id, conn) in live.conns.iter_mut() {
            while live.core.accepting_requests() {
                let Some(line) = conn.inbox.pop_front() else {
                    break;
                };
                let key = id as usize;
                if let Some(reply) = live.core.handle_line(&mut conn.state, key, &line, now) {
                    if reply.grant.is_some() {
                        self.out.grants += 1;
                    }
                    conn.output
                        .push(reply.text.as_bytes(), reply.wait_for, reply.grant);
                }
            }
        }
        let mut effects = Effects::default();
        live.core.after_requests(now, &mut effects);
        // A deadline already past after the loop's work would make the
        // real loop poll without waiting, for ever (a spinning server).
        if let Some(due) = live.core.next_deadline(now.mono) {
            if due <= now.mono {
                let role = live.machine.state().as_str();
                self.out.violations.push(format!(
                    "{:>9.3}s VIOLATION: s{s} ({role}) would spin: its next deadline has passed",
                    self.now as f64 / 1e6
                ));
            }
        }

        for (key, reply) in effects.pushes {
            if let Some(conn) = live.conns.get_mut(&(key as u64)) {
                conn.output
                    .push(reply.text.as_bytes(), reply.wait_for, reply.grant);
            }
        }
        if let Some(line) = &effects.broadcast {
            for conn in live.conns.values_mut() {
                conn.output.push(line.as_bytes(), None, None);
            }
        }
        let release = live.core.release();
        for conn in live.conns.values_mut() {
            match release {
                Release::Upto(seq) => conn.output.release(seq),
                Release::Settle {
                    release,
                    fail_after,
                } => {
                    let core = &mut live.core;
                    conn.output
                        .settle(release, fail_after, |h| core.take_back(h, now));
                }
            }
            let mut bytes = Vec::new();
            let _ = conn.output.flush_to(&mut bytes);
            for line in String::from_utf8_lossy(&bytes).lines() {
                replies.push((conn.client, line.to_string()));
            }
        }
        live.core.after_release(now);
        let to_watchdog: Vec<_> = live.from_loop.try_iter().collect();
        let journal_pending = live.core.journal.failure().is_none()
            && live.core.journal.durable_seq() < live.core.ledger.last_seq();
        let conn_of: BTreeMap<usize, u64> =
            live.conns.iter().map(|(id, c)| (c.client, *id)).collect();
        if effects.resume_requests {
            self.loop_soon(s);
        }
        for (client, line) in replies {
            let conn = conn_of[&client];
            self.send(
                End::Server(s),
                End::Client(client),
                Event::Reply { client, conn, line },
            );
        }
        for msg in to_watchdog {
            self.machine(s, Input::Loop(msg));
        }
        if journal_pending && !self.servers[s].sync_due {
            self.servers[s].sync_due = true;
            let at = self.now + self.rng.between(200, 4_000);
            self.at(at, Event::Sync(s));
        }
    }

    pub(super) fn connected(&mut self, client: usize, server: usize, conn: u64) {
        if self.clients[client].conn != Some(conn) {
            return;
        }
        let Some(live) = &mut self.servers[server].live else {
            return;
        };
        let peer: SocketAddr = format!("10.0.0.{}:5000", client + 1).parse().expect("addr");
        let mut c = SimConn {
            client,
            state: ClientState::new(peer, false),
            output: Default::default(),
            inbox: Default::default(),
        };
        c.output.push(live.core.greeting().as_bytes(), None, None);
        // One connection per client at a time on a server.
        live.conns.retain(|_, old| old.client != client);
        live.conns.insert(conn, c);
        self.conns.insert(conn, (client, server));
        self.loop_soon(server);
    }
}
