//! What the server does with a request: the ledger, storage and role
//! behind the event loop. Socket handling stays in `event_loop`; this
//! module turns request lines into replies and ledger changes.

use super::admin;
use super::conn::{Conn, Session};
use super::licences::LicenceSource;
use super::options::OptionsSource;
use crate::codes::Code;
use crate::failover::{FromWatchdog, PairStatus, ToWatchdog};
use crate::journal::Journal;
use crate::ledger::{CheckinOutcome, Event, Gate, Ledger, Now, Outcome, Reason, Refusal, WaiterId};
use crate::licence::Served;
use crate::protocol::peer::{HistoryMark, PeerState};
use crate::protocol::reply::{self, Greeting};
use crate::protocol::{Request, PROTOCOL_VERSION};
use crossbeam_channel::{Receiver, Sender};
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

/// The loop's end of the watchdog's channels, and what it last said.
pub struct PairLink {
    pub tx: Sender<ToWatchdog>,
    pub rx: Receiver<FromWatchdog>,
    pub state: PeerState,
    /// Active: replies wait for the standby's acknowledgement.
    pub wait_for_acks: bool,
    pub acked: u64,
    /// Standby: the durable sequence number last told to the watchdog.
    pub durable_told: u64,
    pub status: PairStatus,
    pub backup_expired: bool,
}

impl PairLink {
    pub fn new(tx: Sender<ToWatchdog>, rx: Receiver<FromWatchdog>) -> PairLink {
        PairLink {
            tx,
            rx,
            state: PeerState::Starting,
            wait_for_acks: false,
            acked: 0,
            durable_told: 0,
            status: PairStatus::default(),
            backup_expired: false,
        }
    }
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
    /// The failover pair, when this server is one of two.
    pub pair: Option<PairLink>,
    /// Witness mode: grants are allowed until this instant, and only then.
    pub grant_lease: Option<Instant>,
    /// Witness mode is on (grants need a grant lease).
    pub fenced_mode: bool,
    /// Paused past takeover_after: no grants until the watchdog re-checked.
    paused: bool,
    /// When the loop last woke, to notice a pause (SIGSTOP, VM pause).
    last_wake: Instant,
    /// A pause longer than this may have let the other server take over.
    pub pause_limit: std::time::Duration,
    /// Queued checkouts: waiter id -> connection key.
    waiters: HashMap<u64, usize>,
    next_waiter: u64,
    shutdown: Option<bool>,
    records_since_snapshot: u64,
    /// Checkouts, reclaims and denials, for /metrics.
    pub counters: super::metrics::Counters,
    /// The pair's roam key, for roam tokens.
    pub roam: super::roam::RoamDesk,
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
            pair: None,
            grant_lease: None,
            fenced_mode: false,
            paused: false,
            last_wake: Instant::now(),
            pause_limit: std::time::Duration::from_secs(3),
            waiters: HashMap::new(),
            next_waiter: 1,
            shutdown: None,
            records_since_snapshot: 0,
            counters: Default::default(),
            roam: Default::default(),
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

    /// Replies up to this journal sequence number may be sent: durable
    /// here, and acknowledged by the standby while it is in sync.
    pub fn released_seq(&mut self) -> u64 {
        let durable = self.journal.durable_seq();
        match &self.pair {
            Some(p) if p.state.is_serving() && p.wait_for_acks => durable.min(p.acked),
            _ => durable,
        }
    }

    /// Called as soon as the loop wakes, before any request: a serving
    /// member of a pair that was paused longer than takeover_after may have
    /// been replaced meanwhile, so it grants nothing until its watchdog has
    /// checked with the other server.
    pub fn on_wake(&mut self, now: Now) {
        let gap = now.mono.saturating_duration_since(self.last_wake);
        self.last_wake = now.mono;
        if gap < self.pause_limit || !self.serving() || self.pair.is_none() {
            return;
        }
        log::warn!("the server was paused for {gap:?}: no grants until the pair is re-checked");
        self.paused = true;
        self.ledger.set_gate(Gate::Closed(Refusal::new(
            Code::NotActive,
            "this server was paused and is checking with the other server; retry shortly",
        )));
        self.tell_watchdog(ToWatchdog::Paused);
    }

    /// Whether this server serves clients now (always, standalone).
    pub fn serving(&self) -> bool {
        self.pair.as_ref().is_none_or(|p| p.state.is_serving())
    }

    /// The last record this server holds.
    pub fn history(&self) -> HistoryMark {
        HistoryMark {
            seq: self.ledger.last_seq(),
            epoch: self.ledger.last_epoch(),
        }
    }

    /// The refusal a standby gives seat requests.
    fn not_serving(&self) -> Refusal {
        match &self.presence.active_addr {
            Some(active) => Refusal::new(
                Code::Standby,
                format!("this server is standing by; the active server is {active}"),
            ),
            None => Refusal::new(
                Code::NotActive,
                "this server is not serving now and knows no active server; try the other one",
            ),
        }
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
        self.refresh_gate(now.mono);
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
                | Request::Roam { .. }
                | Request::RoamExtend { .. }
                | Request::RoamReturn { .. }
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
        if needs_session && !self.serving() {
            let refusal = self.not_serving();
            if matches!(request, Request::Checkout { .. } | Request::Reclaim { .. }) {
                self.counters.denied(refusal.code);
            }
            return Some(self.refused(&refusal));
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
                let request = session
                    .expect("checked above")
                    .request(feature, version, count, wait);
                let waiter = self.next_waiter;
                self.next_waiter += 1;
                match self.ledger.checkout(request, WaiterId(waiter), now) {
                    Outcome::Granted(grant) => {
                        self.counters.checkouts += 1;
                        reply::granted(reply::ok(), &grant).finish()
                    }
                    Outcome::Queued { position } => {
                        self.waiters.insert(waiter, conn_key);
                        conn.waiters.push(waiter);
                        reply::queued(waiter, position).finish()
                    }
                    Outcome::Denied(refusal) => {
                        self.counters.denied(refusal.code);
                        self.refused(&refusal)
                    }
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
                let request = session
                    .expect("checked above")
                    .request(feature, version, count, false);
                match self.ledger.reclaim(&handle, &request, now) {
                    Outcome::Granted(grant) => {
                        self.counters.reclaims += 1;
                        reply::granted(reply::ok(), &grant).finish()
                    }
                    Outcome::Denied(refusal) => {
                        self.counters.denied(refusal.code);
                        self.refused(&refusal)
                    }
                    Outcome::Queued { .. } => unreachable!("reclaims never queue"),
                }
            }
            roam @ (Request::Roam { .. }
            | Request::RoamExtend { .. }
            | Request::RoamReturn { .. }) => {
                super::roam::handle(self, session.expect("checked above"), roam, now)
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

    pub(super) fn refused(&self, refusal: &Refusal) -> String {
        let mut line = reply::refused(refusal);
        if matches!(refusal.code, Code::Standby | Code::NotActive) {
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
        // A standby makes no records: the active server's say.
        if self.serving() {
            self.ledger.commit(
                Event::Reread {
                    pools,
                    at: now.unix,
                },
                now,
            );
        }
        self.tell_watchdog(ToWatchdog::Digest(self.digest()));
        log::info!("reread: serving {pools} pool(s)");
        Ok(pools)
    }

    /// Housekeeping after the requests of an iteration: expiries, queued
    /// checkouts decided, records to storage.
    pub fn after_requests(&mut self, now: Now, effects: &mut Effects) {
        self.drain_watchdog(now, effects);
        self.refresh_gate(now.mono);
        if self.serving() && !matches!(self.ledger.gate(), Gate::Closed(_)) {
            self.ledger.expire_due(now);
        }
        for (WaiterId(id), outcome) in self.ledger.take_woken() {
            let Some(conn_key) = self.waiters.remove(&id) else {
                continue;
            };
            let (text, wait_for) = match outcome {
                Outcome::Granted(grant) => {
                    self.counters.checkouts += 1;
                    (
                        reply::push_granted(id, &grant).finish(),
                        Some(self.ledger.last_seq()),
                    )
                }
                Outcome::Denied(refusal) => {
                    self.counters.denied(refusal.code);
                    (reply::push_denied(id, &refusal).finish(), None)
                }
                Outcome::Queued { .. } => continue,
            };
            effects.pushes.push((conn_key, text, wait_for));
        }
        if self.shutdown.is_some() {
            self.refuse_waiters(effects);
        }
        self.flush_records();
        if let Some(p) = &mut self.pair {
            let durable = self.journal.durable_seq();
            if durable > p.durable_told {
                p.durable_told = durable;
                let _ = p.tx.send(ToWatchdog::Durable(durable));
            }
        }
        if self.records_since_snapshot >= SNAPSHOT_EVERY && self.serving() {
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

    /// Digest of what this server serves (pools and options): the two
    /// servers of a pair compare them.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut pools: Vec<String> = self
            .served
            .pools
            .iter()
            .map(|p| serde_json::to_string(p).expect("pools serialise"))
            .collect();
        pools.sort();
        let mut hash = Sha256::new();
        for p in &pools {
            hash.update(p.as_bytes());
            hash.update(b"\n");
        }
        hash.update(self.options.text.as_bytes());
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Hands the records made so far to the journal (and the watchdog).
    fn flush_records(&mut self) {
        let records = self.ledger.take_records();
        if records.is_empty() {
            return;
        }
        self.records_since_snapshot += records.len() as u64;
        if let Some(p) = &self.pair {
            let _ = p.tx.send(ToWatchdog::Records(records.clone()));
        }
        self.journal.append(records);
    }

    fn tell_watchdog(&self, msg: ToWatchdog) {
        if let Some(p) = &self.pair {
            let _ = p.tx.send(msg);
        }
    }

    fn drain_watchdog(&mut self, now: Now, effects: &mut Effects) {
        let Some(pair) = &self.pair else { return };
        let messages: Vec<FromWatchdog> = pair.rx.try_iter().collect();
        for msg in messages {
            self.on_watchdog(msg, now, effects);
        }
    }

    fn on_watchdog(&mut self, msg: FromWatchdog, now: Now, effects: &mut Effects) {
        match msg {
            FromWatchdog::Role {
                state,
                epoch,
                active,
            } => self.take_role(state, epoch, active, now, effects),
            FromWatchdog::Apply(records) => {
                for r in &records {
                    self.ledger.apply(r, now);
                }
                self.journal.append(records);
            }
            FromWatchdog::Reset(snapshot) => {
                self.ledger.restore(&snapshot, now);
                if let Some(p) = &mut self.pair {
                    p.durable_told = 0;
                }
                self.journal.reset(snapshot);
            }
            FromWatchdog::Standby {
                wait_for_acks,
                acked,
            } => {
                let Some(p) = &mut self.pair else { return };
                let starts_waiting = wait_for_acks && !p.wait_for_acks;
                p.wait_for_acks = wait_for_acks;
                p.acked = acked;
                if starts_waiting {
                    // Records made from now on are answered only once
                    // acknowledged; the watchdog clears a stale record
                    // at the witness once the standby has these.
                    let from = self.ledger.last_seq();
                    self.tell_watchdog(ToWatchdog::HoldingFrom(from));
                }
            }
            FromWatchdog::SendSnapshot => {
                self.flush_records();
                let snapshot = self.ledger.snapshot(now);
                self.tell_watchdog(ToWatchdog::Snapshot(snapshot));
            }
            FromWatchdog::StopGranting { active } => {
                self.stop_serving(active, effects);
                self.flush_records();
                self.tell_watchdog(ToWatchdog::StoppedGranting(self.history()));
            }
            FromWatchdog::StepDown { active } => {
                self.stop_serving(active, effects);
                self.flush_records();
                let seats = self.ledger.snapshot(now).seats;
                self.tell_watchdog(ToWatchdog::Seats(seats));
            }
            FromWatchdog::Merge(seats) => {
                let adopted = self.ledger.adopt(&seats, now);
                log::warn!(
                    "honouring {adopted} seat(s) the other server granted while the pair was split"
                );
            }
            FromWatchdog::BackupExpired(expired) => {
                if let Some(p) = &mut self.pair {
                    p.backup_expired = expired;
                }
                if self.serving() {
                    self.ledger.set_gate(self.serving_gate());
                }
            }
            FromWatchdog::GrantLease(until) => {
                self.grant_lease = Some(until);
            }
            FromWatchdog::Status(status) => {
                self.presence.peer_addr = status.advertise_peer.clone();
                if let Some(p) = &mut self.pair {
                    p.status = status;
                }
            }
        }
    }

    /// True when witness mode forbids granting now: no grant lease, or it
    /// ran out (checked on the monotonic clock before every grant).
    fn fenced(&self, now: Instant) -> bool {
        self.fenced_mode && self.grant_lease.is_none_or(|until| now >= until)
    }

    /// Sets the ledger's gate for this moment: called before every request
    /// and before the loop's own grants (queued checkouts).
    fn refresh_gate(&mut self, now: Instant) {
        if self.pair.is_none() || !self.serving() || self.paused {
            return;
        }
        let gate = self.serving_gate_at(now);
        if *self.ledger.gate() != gate {
            self.ledger.set_gate(gate);
        }
    }

    /// The gate of a serving server in its current state.
    fn serving_gate(&self) -> Gate {
        self.serving_gate_at(Instant::now())
    }

    fn serving_gate_at(&self, now: Instant) -> Gate {
        if self.fenced(now) {
            return Gate::Closed(Refusal::new(
                Code::NotActive,
                "this server cannot confirm it is still the active one (no grant lease: the other server and the witness are out of reach); retry shortly",
            ));
        }
        match &self.pair {
            Some(p) if p.state == PeerState::Recovering => Gate::ReclaimOnly(Refusal::new(
                Code::Recovering,
                "this server just took over and honours reclaims only until its recovery period ends; retry shortly",
            )),
            Some(p) if p.backup_expired => Gate::ReclaimOnly(Refusal::new(
                Code::BackupExpired,
                "this backup has served alone past backup_max_days; new checkouts are refused until the primary returns",
            )),
            _ => Gate::Open,
        }
    }

    /// Applies a role decision of the watchdog.
    fn take_role(
        &mut self,
        state: PeerState,
        epoch: u64,
        active: Option<String>,
        now: Now,
        effects: &mut Effects,
    ) {
        let was_serving = self.serving();
        let previous = self.pair.as_ref().map(|p| p.state);
        if let Some(p) = &mut self.pair {
            p.state = state;
        }
        self.presence.state = state.as_str().to_string();
        if state.is_serving() {
            if !was_serving {
                // Witness mode holds answers for the standby until the
                // witness records it stale; the watchdog says when.
                let fenced_mode = self.fenced_mode;
                if let Some(p) = &mut self.pair {
                    p.wait_for_acks = fenced_mode;
                    p.acked = 0;
                }
            }
            self.paused = false;
            self.presence.active_addr = None;
            self.ledger.set_epoch(epoch);
            if !was_serving {
                // Clients could not heartbeat while nobody served.
                self.ledger.grant_grace(now);
            }
            self.ledger.set_gate(self.serving_gate());
            if previous != Some(state) {
                self.ledger.commit(
                    Event::Activated {
                        server: self.presence.server.clone(),
                        state: state.as_str().to_string(),
                        at: now.unix,
                    },
                    now,
                );
            }
        } else if was_serving {
            self.stop_serving(active, effects);
        } else {
            self.presence.active_addr = active;
            self.ledger.set_gate(Gate::Closed(self.not_serving()));
        }
    }

    /// Stops granting; tells every client where the active server is.
    fn stop_serving(&mut self, active: Option<String>, effects: &mut Effects) {
        self.presence.active_addr = active.clone();
        if let Some(p) = &mut self.pair {
            p.wait_for_acks = false;
            if p.state.is_serving() {
                p.state = PeerState::Syncing;
                self.presence.state = p.state.as_str().to_string();
            }
        }
        self.ledger.set_gate(Gate::Closed(self.not_serving()));
        if let Some(active) = active {
            effects.broadcast = Some(reply::push_moved(&active).finish());
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
        if self.serving() {
            self.ledger.commit(Event::Stopped { at: now.unix }, now);
            self.flush_records();
            self.journal.snapshot(self.ledger.snapshot(now));
        }
        // Dropping the watchdog's channel ends its thread.
        self.pair = None;
        self.journal
            .close()
            .map_err(|e| format!("closing the journal: {e}"))?;
        log::info!("stopped cleanly");
        Ok(())
    }
}
