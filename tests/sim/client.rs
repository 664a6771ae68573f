//! A simulated client application, doing what the client library does:
//! walk the server list, follow a standby's pointer and MOVED, reclaim held
//! seats on whichever server is active, heartbeat, check out and in.
//!
//! It also keeps the checker's view of what it holds: a seat counts from
//! the moment its grant reply arrives until its checkin is sent or its
//! lease has run out as this client measures it (from when it sent the
//! request that last renewed it, less a margin for clock rates).

use super::Time;
use floatd::codes::Code;
use floatd::protocol::reply::{Greeting, Reply};
use std::collections::BTreeMap;

/// A lease is believed to run out this much early (clock rates differ).
const RATE_MARGIN: f64 = 0.995;

/// A request in flight.
#[derive(Clone, Debug)]
pub enum Asked {
    Hello,
    Checkout,
    Heartbeat(String),
    Checkin,
    Reclaim(String),
}

#[derive(Clone, Debug)]
pub struct Held {
    pub lease: Time,
    /// The lease as this client believes it: counted until then.
    pub until: Time,
    pub next_heartbeat: Time,
    pub check_in_at: Time,
    /// Must be reclaimed on the server now connected.
    pub reclaim: bool,
}

/// What the client wants done.
#[derive(Debug, PartialEq, Eq)]
pub enum Act {
    Connect(usize),
    Send(String),
    /// Gives up on the connection (the server side may linger).
    Drop,
}

/// What the client saw that breaks the promise.
#[derive(Debug)]
pub struct Lost {
    pub handle: String,
    pub reply: String,
}

pub struct Client {
    pub id: usize,
    pub conn: Option<u64>,
    pub server: usize,
    pub greeted: bool,
    /// Where to go next.
    pub prefer: Option<usize>,
    pub held: BTreeMap<String, Held>,
    pub pending: Option<(Asked, Time)>,
    pub next_checkout: Time,
    pub stopping: bool,
    /// Reconnect no earlier than this (back-off).
    pub retry_at: Time,
    pub backoff: Time,
    /// A request that got no answer within [`IO_TIMEOUT`] (for the checker).
    pub timed_out: Option<Time>,
    /// Availability: when it last had an answer from a serving server.
    pub last_served: Time,
    pub longest_unserved: Time,
}

pub const IO_TIMEOUT: Time = 2_000_000;

impl Client {
    pub fn new(id: usize, start: Time) -> Client {
        Client {
            id,
            conn: None,
            server: id % 2,
            greeted: false,
            prefer: None,
            held: BTreeMap::new(),
            pending: None,
            next_checkout: start,
            stopping: false,
            retry_at: 0,
            backoff: 100_000,
            timed_out: None,
            last_served: start,
            longest_unserved: 0,
        }
    }

    /// Seats counted as held at `now`.
    pub fn holding(&self, now: Time) -> usize {
        self.held.values().filter(|h| h.until > now).count()
    }

    fn forget_lapsed(&mut self, now: Time) {
        self.held.retain(|_, h| h.until > now);
    }

    /// The connection broke, or the client gave up on it.
    pub fn disconnected(&mut self, now: Time) {
        self.conn = None;
        self.greeted = false;
        self.pending = None;
        self.retry_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(2_000_000);
        for h in self.held.values_mut() {
            h.reclaim = true;
        }
    }

    fn move_to(&mut self, server: Option<usize>, now: Time) -> Act {
        self.prefer = server.or(Some(1 - self.server));
        self.disconnected(now);
        Act::Drop
    }

    /// When something is next due (a retry, a timeout, a heartbeat, a
    /// checkin, a checkout), for the next wake-up.
    pub fn next_due(&self, now: Time) -> Time {
        let mut due = now + 1_000_000;
        if self.conn.is_none() {
            due = due.min(self.retry_at);
        }
        if let Some((_, sent)) = &self.pending {
            due = due.min(sent + IO_TIMEOUT);
        }
        for h in self.held.values() {
            due = due.min(h.next_heartbeat).min(h.check_in_at).min(h.until);
        }
        if !self.stopping && self.held.is_empty() {
            due = due.min(self.next_checkout);
        }
        due
    }

    /// Decides what to do next at `now` (none, or one action).
    pub fn step(&mut self, now: Time, rng: &mut super::rng::Rng) -> Option<Act> {
        self.forget_lapsed(now);
        if self.conn.is_none() {
            if now < self.retry_at {
                return None;
            }
            self.server = self.prefer.take().unwrap_or(1 - self.server);
            return Some(Act::Connect(self.server));
        }
        if let Some((_, sent)) = &self.pending {
            if now >= sent + IO_TIMEOUT {
                self.timed_out = Some(*sent);

                return Some(self.move_to(None, now));
            }
            return None;
        }
        if !self.greeted {
            return None;
        }
        if let Some((handle, _)) = self.held.iter().find(|(_, h)| h.reclaim) {
            let handle = handle.clone();
            self.pending = Some((Asked::Reclaim(handle.clone()), now));
            return Some(Act::Send(format!(
                "RECLAIM {handle} feature=cad version=1.0 count=1"
            )));
        }
        let due = |h: &Held| h.check_in_at <= now || self.stopping;
        if let Some((handle, _)) = self.held.iter().find(|(_, h)| due(h)) {
            let handle = handle.clone();
            // No longer held from the moment the checkin is sent.
            self.held.remove(&handle);
            self.pending = Some((Asked::Checkin, now));
            return Some(Act::Send(format!("CHECKIN {handle}")));
        }
        if let Some((handle, _)) = self.held.iter().find(|(_, h)| h.next_heartbeat <= now) {
            let handle = handle.clone();
            self.pending = Some((Asked::Heartbeat(handle.clone()), now));
            return Some(Act::Send(format!("HEARTBEAT {handle}")));
        }
        if !self.stopping && self.held.is_empty() && now >= self.next_checkout {
            self.pending = Some((Asked::Checkout, now));
            self.next_checkout = now + rng.between(100_000, 1_500_000);
            return Some(Act::Send("CHECKOUT cad version=1.0".into()));
        }
        None
    }

    /// A line from the server. Returns an action, and a lost seat if the
    /// reply broke the promise.
    pub fn on_line(
        &mut self,
        line: &str,
        now: Time,
        rng: &mut super::rng::Rng,
    ) -> (Option<Act>, Option<Lost>) {
        if line.starts_with("FLOATD ") {
            let Ok(g) = Greeting::parse(line.trim_end()) else {
                return (Some(self.move_to(None, now)), None);
            };
            if g.state != "active" && g.state != "recovering" {
                let active = g.active.as_deref().and_then(server_of);
                return (Some(self.move_to(active, now)), None);
            }
            self.pending = Some((Asked::Hello, now));
            let hello = format!("HELLO proto=1 client=c{0} user=u{0} host=h{0}", self.id);
            return (Some(Act::Send(hello)), None);
        }
        if let Some(rest) = line.strip_prefix("* MOVED") {
            let active = rest
                .split("active=")
                .nth(1)
                .and_then(|a| server_of(a.trim()));
            self.prefer = active.or(Some(1 - self.server));
            return (None, None);
        }
        if line.starts_with('*') {
            return (None, None);
        }
        let Some((asked, sent)) = self.pending.take() else {
            return (None, None);
        };
        let text = line.trim_end();
        let Ok(reply) = Reply::parse(text) else {
            return (None, None);
        };
        let (code, active) = match &reply {
            Reply::Err { code, line, .. } => (*code, line.get("active").and_then(server_of)),
            _ => (None, None),
        };
        if matches!(
            code,
            Some(Code::Standby | Code::NotActive | Code::ShuttingDown | Code::JournalFailed)
        ) {
            if let Asked::Reclaim(h) | Asked::Heartbeat(h) = &asked {
                if let Some(s) = self.held.get_mut(h) {
                    s.reclaim = true;
                }
            }
            return (Some(self.move_to(active, now)), None);
        }
        self.last_served = now;
        self.backoff = 100_000;
        let mut lost = None;
        match (asked, &reply) {
            (Asked::Hello, Reply::Ok(_)) => self.greeted = true,
            (Asked::Checkout, Reply::Ok(l)) => {
                if let (Some(handle), Some(lease)) = (l.get("handle"), l.get("lease_ms")) {
                    let lease: Time = lease.parse::<u64>().unwrap_or(0) * 1000;
                    let hold = rng.between(200_000, 4_000_000);
                    self.held.insert(
                        handle.to_string(),
                        Held {
                            lease,
                            until: sent + (lease as f64 * RATE_MARGIN) as Time,
                            next_heartbeat: now + lease / 3,
                            check_in_at: now + hold,
                            reclaim: false,
                        },
                    );
                }
            }
            (Asked::Heartbeat(h) | Asked::Reclaim(h), Reply::Ok(_)) => {
                if let Some(s) = self.held.get_mut(&h) {
                    s.until = s.until.max(sent + (s.lease as f64 * RATE_MARGIN) as Time);
                    s.next_heartbeat = now + s.lease / 3;
                    s.reclaim = false;
                }
            }
            (Asked::Heartbeat(h), Reply::Err { .. }) if code == Some(Code::UnknownHandle) => {
                // The server does not know it (it took over, or lost it):
                // reclaim it before giving it up.
                if let Some(s) = self.held.get_mut(&h) {
                    s.reclaim = true;
                }
            }
            (Asked::Heartbeat(h) | Asked::Reclaim(h), Reply::Err { .. }) => {
                if let Some(s) = self.held.remove(&h) {
                    if s.until > now {
                        lost = Some(Lost {
                            handle: h,
                            reply: text.to_string(),
                        });
                    }
                }
            }
            _ => {}
        }
        (None, lost)
    }
}

/// The server index named by an address in the simulation (`s0:1`).
pub fn server_of(addr: &str) -> Option<usize> {
    match addr {
        "s0:1" => Some(0),
        "s1:1" => Some(1),
        _ => None,
    }
}
