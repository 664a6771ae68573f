//! The clients: waking, acting, reading replies; a lost seat is a violation.

use super::*;

impl World {
    /// Wakes client `c` at `now + after`, unless it wakes sooner anyway
    /// (one wake-up pending per client).
    pub(super) fn wake_client(&mut self, c: usize, after: Time) {
        let at = self.now + after;
        let pending = self.wakes[c];
        if pending > self.now && pending <= at {
            return;
        }
        self.wakes[c] = at;
        self.at(at, Event::ClientWake(c));
    }

    pub(super) fn client_step(&mut self, c: usize) {
        if self.wakes[c] != self.now {
            return; // superseded by an earlier wake-up
        }
        let now = self.now;
        let act = self.clients[c].step(now, &mut self.rng);
        if let Some(sent) = self.clients[c].timed_out.take() {
            // Every request gets an answer: a server that ran, reachable,
            // all along must have answered within the client's timeout.
            if self.calm() && self.disturbed + 1_000_000 < sent {
                let server = self.clients[c].server;
                self.violation(format!(
                    "c{c}: a request to s{server} sent at {:.3}s got no answer while nothing failed",
                    sent as f64 / 1e6
                ));
            }
        }
        if let Some(act) = act {
            self.client_act(c, act);
        }
        let cl = &mut self.clients[c];
        if cl.conn.is_some() && cl.greeted || cl.conn.is_none() {
            let unserved = now.saturating_sub(cl.last_served);
            if !cl.held.is_empty() || !cl.stopping {
                cl.longest_unserved = cl.longest_unserved.max(unserved);
            }
        }
        let next = self.clients[c].next_due(now).max(now + 1_000);
        self.wake_client(c, next - now);
    }

    pub(super) fn client_act(&mut self, c: usize, act: Act) {
        self.trace(|| format!("c{c}: {act:?}"));
        match act {
            Act::Connect(s) => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.clients[c].conn = Some(conn);
                self.clients[c].greeted = false;
                let (me, to) = (End::Client(c), End::Server(s));
                if !self.up(to) || !self.reachable(me, to) {
                    // Refused, or the SYN vanishes: the client gives up later.
                    if !self.up(to) && self.reachable(me, to) {
                        let at = self.now + 500;
                        self.at(at, Event::Reset { client: c, conn });
                    } else {
                        self.clients[c].pending =
                            Some((crate::sim::client::Asked::Hello, self.now));
                    }
                    return;
                }
                let at = self.arrival(me, to);
                self.at(
                    at,
                    Event::Connected {
                        client: c,
                        server: s,
                        conn,
                    },
                );
            }
            Act::Send(line) => {
                let Some(conn) = self.clients[c].conn else {
                    return;
                };
                let Some(&(_, s)) = self.conns.get(&conn) else {
                    return; // not connected yet: the request waits for a timeout
                };
                self.send(
                    End::Client(c),
                    End::Server(s),
                    Event::Request {
                        server: s,
                        conn,
                        line,
                    },
                );
            }
            Act::Drop => {}
        }
    }

    pub(super) fn client_line(&mut self, c: usize, conn: u64, line: &str) {
        if self.clients[c].conn != Some(conn) {
            return;
        }
        self.trace(|| format!("c{c} <- {line}"));
        let now = self.now;
        let (act, lost) = self.clients[c].on_line(line, now, &mut self.rng);
        if let Some(lost) = lost {
            self.violation(format!(
                "c{c} lost seat {} it still held: {}",
                lost.handle, lost.reply
            ));
        }
        if let Some(act) = act {
            self.client_act(c, act);
        }
        self.wake_client(c, 0);
    }
}
