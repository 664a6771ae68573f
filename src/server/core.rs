//! What the server does with a request: the ledger, storage and role
//! behind the event loop. Socket handling stays in `event_loop`; this
//! module turns request lines into replies and ledger changes.

use super::admin;
use super::conn::{Conn, Session};
use super::licences::LicenceSource;
use super::options::OptionsSource;
use crate::codes::Code;
use crate::journal::Journal;
use crate::ledger::{
    CheckinOutcome, CheckoutRequest, Event, Gate, Ledger, Now, Outcome, Reason, Refusal, WaiterId,
};
use crate::licence::Served;
use crate::protocol::reply::{self, Greeting};
use crate::protocol::{Request, PROTOCOL_VERSION};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// Replies for other connections than the one being served, made while
/// finishing an iteration.
#[derive(Default)]
pub struct Effects {
    /// (connection key, line, sequence number it waits for)
    pub pushes: Vec<(usize, String, Option<u64>)>,
    /// A line for every connection (e.g. `* MOVED`).
    pub broadcast: Option<String>,
}

/// How the server presents itself (greeting, status); the failover code
/// updates it when the role changes.
#[derive(Clone, Debug)]
pub struct Presence {
    pub role: String,
    pub state: String,
    pub server: String,
    pub peer_addr: Option<String>,
    pub active_addr: Option<String>,
}

/// Take a snapshot (and truncate the journal) after this many records.
const SNAPSHOT_EVERY: u64 = 10_000;

pub struct Core {
    pub ledger: Ledger,
    pub journal: Journal,
    pub state_dir: PathBuf,
    pub licences: LicenceSource,
    /// Where the options file is found; reread with the licences.
    pub options: OptionsSource,
    pub served: Served,
    pub presence: Presence,
    pub admin_token: Option<String>,
    pub admin_token_always: bool,
    pub started: Instant,
    pub connections: usize,
    /// Queued checkouts: waiter id -> connection key.
    waiters: HashMap<u64, usize>,
    next_waiter: u64,
    shutdown: Option<bool>,
    records_since_snapshot: u64,
}

impl Core {
    pub fn new(
        ledger: Ledger,
        journal: Journal,
        state_dir: PathBuf,
        licences: LicenceSource,
        served: Served,
        presence: Presence,
    ) -> Core {
        Core {
            ledger,
            journal,
            state_dir,
            licences,
            options: OptionsSource::default(),
            served,
            presence,
            admin_token: None,
            admin_token_always: false,
            started: Instant::now(),
            connections: 0,
            waiters: HashMap::new(),
            next_waiter: 1,
            shutdown: None,
            records_since_snapshot: 0,
        }
    }

    pub fn greeting(&self) -> String {
        Greeting {
            proto: PROTOCOL_VERSION,
            role: self.presence.role.clone(),
            state: self.presence.state.clone(),
            epoch: self.ledger.epoch(),
            server: self.presence.server.clone(),
            peer: self.presence.peer_addr.clone(),
            active: self.presence.active_addr.clone(),
        }
        .to_line()
    }

    /// Whether a new connection may make admin requests without the token.
    pub fn admin_by_default(&self, loopback: bool) -> bool {
        loopback && !self.admin_token_always
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.ledger.next_deadline()
    }

    /// Replies up to this journal sequence number may be sent.
    pub fn released_seq(&mut self) -> u64 {
        self.journal.durable_seq()
    }

    pub fn request_shutdown(&mut self, release_seats: bool) {
        if self.shutdown.is_none() {
            self.shutdown = Some(release_seats);
        }
    }

    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Answers one request line. Returns the reply and the journal sequence
    /// number it must wait for, or `None` when the reply comes later.
    pub fn handle_line(
        &mut self,
        conn: &mut Conn,
        conn_key: usize,
        line: &str,
        now: Now,
    ) -> Option<(String, Option<u64>)> {
        let request = match Request::parse(line) {
            Ok(r) => r,
            Err(why) => return Some((reply::err(Code::BadRequest, &why).finish(), None)),
        };
        let seq_before = self.ledger.last_seq();
        let text = self.handle(conn, conn_key, request, now)?;
        let seq_after = self.ledger.last_seq();
        let wait_for = (seq_after > seq_before).then_some(seq_after);
        Some((text, wait_for))
    }

    fn handle(
        &mut self,
        conn: &mut Conn,
        conn_key: usize,
        request: Request,
        now: Now,
    ) -> Option<String> {
        if self.shutdown.is_some()
            && !matches!(request, Request::Status | Request::Ping | Request::Quit)
        {
            return Some(reply::err(Code::ShuttingDown, "the server is shutting down").finish());
        }
        if request.is_admin() && !conn.admin {
            return Some(
                reply::err(
                    Code::AdminRequired,
                    "admin requests need loopback access or the admin token (AUTH <token>)",
                )
                .finish(),
            );
        }
        let needs_session = matches!(
            request,
            Request::Checkout { .. }
                | Request::Heartbeat { .. }
                | Request::Checkin { .. }
                | Request::Reclaim { .. }
        );
        if needs_session && conn.admin_slot {
            return Some(
                reply::err(
                    Code::Busy,
                    "this connection holds a slot kept for operators; only status and admin requests are served",
                )
                .finish(),
            );
        }
        let session = match (&conn.session, needs_session) {
            (Some(s), _) => Some(s.clone()),
            (None, true) => {
                return Some(
                    reply::err(
                        Code::NotGreeted,
                        "send HELLO proto=1 client=ID user=NAME host=NAME first",
                    )
                    .finish(),
                )
            }
            (None, false) => None,
        };
        let text = match request {
            Request::Hello {
                proto,
                client,
                user,
                host,
            } => {
                if proto != PROTOCOL_VERSION {
                    return Some(
                        reply::err(
                            Code::ProtocolVersion,
                            &format!("this server speaks protocol {PROTOCOL_VERSION}, not {proto}"),
                        )
                        .field("proto", PROTOCOL_VERSION)
                        .finish(),
                    );
                }
                conn.session = Some(Session { client, user, host });
                reply::ok()
                    .field("proto", PROTOCOL_VERSION)
                    .field("lease_ms", self.ledger.lease().as_millis())
                    .finish()
            }
            Request::Auth { token } => match &self.admin_token {
                Some(expected) if admin::token_matches(expected, &token) => {
                    conn.admin = true;
                    reply::ok().field("admin", "yes").finish()
                }
                _ => {
                    log::warn!("wrong admin token from {}", conn.peer);
                    reply::err(Code::AdminRequired, "wrong admin token").finish()
                }
            },
            Request::Checkout {
                feature,
                version,
                count,
                wait,
            } => {
                let s = session.expect("checked above");
                let waiter = self.next_waiter;
                self.next_waiter += 1;
                let request = CheckoutRequest {
                    feature,
                    version,
                    count,
                    user: s.user,
                    host: s.host,
                    client: s.client,
                    wait,
                };
                match self.ledger.checkout(request, WaiterId(waiter), now) {
                    Outcome::Granted(grant) => reply::granted(reply::ok(), &grant).finish(),
                    Outcome::Queued { position } => {
                        self.waiters.insert(waiter, conn_key);
                        conn.waiters.push(waiter);
                        reply::queued(waiter, position).finish()
                    }
                    Outcome::Denied(refusal) => self.refused(&refusal),
                }
            }
            Request::Heartbeat { handle } => match self.ledger.heartbeat(&handle, now) {
                Ok(lease) => reply::ok().field("lease_ms", lease.as_millis()).finish(),
                Err(refusal) => self.refused(&refusal),
            },
            Request::Checkin { handle } => match self.ledger.checkin(&handle, now) {
                Ok(CheckinOutcome::Returned) => reply::ok().finish(),
                Ok(CheckinOutcome::HeldFor(left)) => {
                    reply::ok().field("held_ms", left.as_millis()).finish()
                }
                Err(refusal) => self.refused(&refusal),
            },
            Request::Reclaim {
                handle,
                feature,
                version,
                count,
            } => {
                let s = session.expect("checked above");
                let request = CheckoutRequest {
                    feature,
                    version,
                    count,
                    user: s.user,
                    host: s.host,
                    client: s.client,
                    wait: false,
                };
                match self.ledger.reclaim(&handle, &request, now) {
                    Outcome::Granted(grant) => reply::granted(reply::ok(), &grant).finish(),
                    Outcome::Denied(refusal) => self.refused(&refusal),
                    Outcome::Queued { .. } => unreachable!("reclaims never queue"),
                }
            }
            Request::Status => {
                let report = super::status::build(self, now);
                let json = serde_json::to_string(&report).expect("status serialises");
                format!("STATUS {json}\n")
            }
            Request::Ping => "PONG\n".to_string(),
            Request::Quit => {
                conn.closing = true;
                reply::ok().field("bye", "yes").finish()
            }
            Request::Remove { handle } => match self.ledger.remove(&handle, Reason::Removed, now) {
                Ok(grant) => {
                    log::info!(
                        "operator at {} removed seat {} ({} of {} held by {}@{})",
                        conn.peer,
                        handle,
                        grant.count,
                        grant.feature,
                        grant.user,
                        grant.host
                    );
                    reply::ok().finish()
                }
                Err(refusal) => self.refused(&refusal),
            },
            Request::Reread => match self.reread(now) {
                Ok(pools) => reply::ok()
                    .field("pools", pools)
                    .field_opt("options", self.options.in_use.as_ref().map(|p| p.display()))
                    .finish(),
                Err(e) => {
                    let why = format!(
                        "reread failed, still serving the previous licences and options: {e}"
                    );
                    log::error!("{why} (asked by {})", conn.peer);
                    reply::err(Code::Internal, &why).finish()
                }
            },
            Request::Down { release } => {
                log::info!(
                    "operator at {} asked the server to shut down{}",
                    conn.peer,
                    if release {
                        ", returning every seat"
                    } else {
                        ""
                    }
                );
                self.request_shutdown(release);
                reply::ok().finish()
            }
            Request::RotateLog => {
                let to = crate::report::rotated_path(&self.state_dir, now.unix);
                self.journal.rotate_report(to.clone());
                reply::ok().field("rotated", to.display()).finish()
            }
        };
        Some(text)
    }

    fn refused(&self, refusal: &Refusal) -> String {
        let mut line = reply::refused(refusal);
        if refusal.code == Code::Standby {
            line = line.field_opt("active", self.presence.active_addr.as_ref());
        }
        line.finish()
    }

    /// Rereads licences and options; returns the number of pools served.
    /// Either both are replaced or, when either fails to load, neither.
    /// New options apply to checkouts from now on; seats out stay out.
    pub fn reread(&mut self, now: Now) -> Result<usize, String> {
        let served = self.licences.load()?;
        let options = self.options.load(&served)?;
        let pools = served.pools.len();
        // Options first: the queues served by set_pools obey the new ones.
        self.ledger.set_options(options);
        self.ledger.set_pools(served.pools.clone(), now);
        self.served = served;
        self.ledger.commit(
            Event::Reread {
                pools,
                at: now.unix,
            },
            now,
        );
        log::info!("reread: serving {pools} pool(s)");
        Ok(pools)
    }

    /// Housekeeping after the requests of an iteration: expiries, queued
    /// checkouts decided, records to storage.
    pub fn after_requests(&mut self, now: Now, effects: &mut Effects) {
        if self.ledger.gate() == &Gate::Open {
            self.ledger.expire_due(now);
        }
        for (WaiterId(id), outcome) in self.ledger.take_woken() {
            let Some(conn_key) = self.waiters.remove(&id) else {
                continue;
            };
            let (text, wait_for) = match outcome {
                Outcome::Granted(grant) => (
                    reply::push_granted(id, &grant).finish(),
                    Some(self.ledger.last_seq()),
                ),
                Outcome::Denied(refusal) => (reply::push_denied(id, &refusal).finish(), None),
                Outcome::Queued { .. } => continue,
            };
            effects.pushes.push((conn_key, text, wait_for));
        }
        if self.shutdown.is_some() {
            self.refuse_waiters(effects);
        }
        let records = self.ledger.take_records();
        if !records.is_empty() {
            self.records_since_snapshot += records.len() as u64;
            self.journal.append(records);
        }
        if self.records_since_snapshot >= SNAPSHOT_EVERY {
            self.records_since_snapshot = 0;
            self.journal.snapshot(self.ledger.snapshot(now));
        }
        if let Some(failure) = self.journal.failure() {
            if !matches!(self.ledger.gate(), Gate::Closed(_)) {
                log::error!("journal failed ({failure}); refusing grants until restarted");
                self.ledger.set_gate(Gate::Closed(Refusal::new(
                    Code::Internal,
                    format!("the server cannot record seats: {failure}"),
                )));
            }
        }
    }

    fn refuse_waiters(&mut self, effects: &mut Effects) {
        let refusal = Refusal::new(Code::ShuttingDown, "the server is shutting down");
        for (id, conn_key) in self.waiters.drain() {
            effects
                .pushes
                .push((conn_key, reply::push_denied(id, &refusal).finish(), None));
        }
    }

    /// Forgets a closed connection's queued checkouts.
    pub fn connection_closed(&mut self, conn: &Conn) {
        for id in &conn.waiters {
            if self.waiters.remove(id).is_some() {
                self.ledger.cancel_wait(WaiterId(*id));
            }
        }
    }

    /// The last steps of a clean shutdown, after replies drained.
    pub fn finish_shutdown(mut self) -> Result<(), String> {
        let now = Now::current();
        if self.shutdown == Some(true) {
            let handles: Vec<String> = self
                .ledger
                .seats()
                .map(|s| s.grant.handle.clone())
                .collect();
            for handle in handles {
                let _ = self.ledger.remove(&handle, Reason::Shutdown, now);
            }
        }
        self.ledger.commit(Event::Stopped { at: now.unix }, now);
        let records = self.ledger.take_records();
        self.journal.append(records);
        self.journal.snapshot(self.ledger.snapshot(now));
        self.journal
            .close()
            .map_err(|e| format!("closing the journal: {e}"))?;
        log::info!("stopped cleanly");
        Ok(())
    }
}
