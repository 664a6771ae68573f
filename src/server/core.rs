//! What the server does with requests, without sockets: the ledger, the
//! storage and the gate behind the event loop. The loop reads lines and
//! writes replies; this module turns lines into replies and ledger changes
//! and says when each reply may leave.
//!
//! - [`super::requests`]: each request, one by one.
//! - [`super::pairing`]: what the watchdog tells the loop.
//! - [`super::gate`]: whether this server may grant now.
//! - [`super::release`]: when a reply may leave.

use super::conn::ClientState;
use super::gate::{self, Decision, GateInputs};
use super::licences::LicenceSource;
use super::options::OptionsSource;
use super::pairing::{PairLink, Presence};
use super::release::{Effects, Reply};
use crate::codes::Code;
use crate::failover::ToWatchdog;
use crate::journal::Storage;
use crate::ledger::{Event, Gate, Ledger, Name, Now, Outcome, Reason, Refusal, WaiterId, Woken};
use crate::licence::Served;
use crate::protocol::peer::HistoryMark;
use crate::protocol::reply::{self, Greeting};
use crate::protocol::PROTOCOL_VERSION;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The fewest records between two snapshots.
const SNAPSHOT_MIN_RECORDS: u64 = 10_000;

/// Whether to take a snapshot (and truncate the journal) now: after
/// [`SNAPSHOT_MIN_RECORDS`] records, or twice as many records as the
/// snapshot would hold items (seats and remembered returns), whichever is
/// more. A snapshot costs time in proportion to its items, so under heavy
/// churn the records between two snapshots pay for it (at most half an
/// item each), and replay at start reads at most about three times the
/// state.
pub fn snapshot_due(records_since: u64, snapshot_items: u64) -> bool {
    records_since >= SNAPSHOT_MIN_RECORDS.max(snapshot_items.saturating_mul(2))
}

pub struct Core {
    pub ledger: Ledger,
    pub journal: Box<dyn Storage>,
    pub state_dir: PathBuf,
    pub licences: LicenceSource,
    /// Where the options file is found; reread with the licences.
    pub options: OptionsSource,
    pub served: Served,
    pub presence: Presence,
    pub admin_token: Option<String>,
    pub admin_token_always: bool,
    /// Limits guessing of the admin token.
    pub auth_limiter: super::admin::AuthLimiter,
    pub started: Instant,
    pub connections: usize,
    /// The failover pair, when this server is one of two.
    pub pair: Option<PairLink>,
    /// Everything the gate is decided from ([`gate::decide`]).
    pub(super) gate: GateInputs,
    /// When the loop last woke, to notice a pause (SIGSTOP, VM pause).
    last_wake: Instant,
    /// A pause longer than this may have let the other server take over.
    pub pause_limit: Duration,
    /// Queued checkouts: waiter id -> connection key.
    pub(super) waiters: HashMap<u64, usize>,
    pub(super) next_waiter: u64,
    shutdown: Option<bool>,
    records_since_snapshot: u64,
    pub(super) journal_failure_logged: bool,
    /// Stepping down: requests wait (unread) until the other server has
    /// this server's seats, or until then.
    pub(super) handover_until: Option<Instant>,
    /// Replies waiting past this record can never be confirmed (stepped
    /// down before the standby acknowledged them).
    pub(super) unconfirmed_after: Option<u64>,
    /// Stepping down: the handover goes once held replies are settled.
    pub(super) handover_pending: bool,
    pub(super) journal_failure_told: bool,
    /// Checkouts, reclaims and denials, for /metrics.
    pub counters: super::metrics::Counters,
    /// Seats in use over time, for the status page's chart.
    pub history: super::history::History,
    /// The pair's roam key, for roam tokens.
    pub roam: super::roam::RoamDesk,
    /// A pair's other server's peer port, reread with the licences.
    pub peer_setting: Option<super::peer_setting::PeerSetting>,
}

impl Core {
    pub fn new(
        ledger: Ledger,
        journal: Box<dyn Storage>,
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
            auth_limiter: Default::default(),
            started: Instant::now(),
            connections: 0,
            pair: None,
            gate: GateInputs::default(),
            last_wake: Instant::now(),
            pause_limit: Duration::from_secs(3),
            waiters: HashMap::new(),
            next_waiter: 1,
            shutdown: None,
            records_since_snapshot: 0,
            journal_failure_logged: false,
            handover_until: None,
            unconfirmed_after: None,
            handover_pending: false,
            journal_failure_told: false,
            counters: Default::default(),
            history: Default::default(),
            roam: Default::default(),
            peer_setting: None,
        }
    }

    /// Joins a pair: seat requests wait for the watchdog's first word.
    pub fn join_pair(&mut self, link: PairLink, fenced: bool, pause_limit: Duration) {
        self.pair = Some(link);
        self.gate.pair = Some(crate::failover::RoleView {
            state: crate::protocol::peer::PeerState::Starting,
            epoch: self.ledger.last_epoch(),
            active: None,
            recovery_until: None,
            backup_expired: false,
        });
        self.gate.fenced = fenced;
        self.pause_limit = pause_limit;
        self.presence.state = "starting".into();
        // The watchdog starts from the journal's last epoch: show that one
        // (the other server hears the same number) until it speaks.
        self.presence.epoch = self.ledger.last_epoch();
    }

    /// A standalone server whose journal may have lost records serves
    /// reclaims only for one lease first.
    pub fn recover_until(&mut self, until: Instant) {
        self.gate.recovery_until = Some(until);
        self.presence.state = "recovering".into();
    }

    pub fn greeting(&self) -> String {
        Greeting {
            proto: PROTOCOL_VERSION,
            role: self.presence.role.clone(),
            state: self.presence.state.clone(),
            epoch: self.presence.epoch,
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

    /// Everything the gate is decided from, as the loop knows it now.
    pub fn gate_inputs(&self) -> &GateInputs {
        &self.gate
    }

    /// What the gate allows at `now`.
    pub fn decision(&self, now: Instant) -> Decision {
        gate::decide(&self.gate, now)
    }

    /// The state status reports at `now` ([`gate::shown_state`]).
    pub fn shown_state(&self, now: Instant) -> &str {
        gate::shown_state(&self.presence.state, &self.decision(now))
    }

    /// Sets the ledger's gate for this moment, from every input: called
    /// before every request and before the loop's own grants. The only
    /// place the gate is set.
    pub(super) fn refresh_gate(&mut self, now: Instant) -> Decision {
        self.gate.journal_failed = self.journal.failure().is_some();
        self.gate.shutting_down = self.shutdown.is_some();
        self.gate.handing_over = self.handover_until.is_some();
        let decision = self.decision(now);
        if *self.ledger.gate() != decision.gate {
            self.ledger.set_gate(decision.gate.clone());
        }
        self.ledger
            .set_reclaims_past_count(decision.reclaims_past_count);
        let unleased = self
            .serving()
            .then(|| gate::unleased(&self.gate, now))
            .flatten();
        self.ledger.set_renewal_refusal(unleased);
        decision
    }

    /// When the loop must wake next for work of this core: a lease that
    /// runs out (only where leases are returned now: a standby's seats
    /// wait for the active server's records) or a handover that ends.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let leases = self
            .decision(now)
            .expire
            .then(|| self.ledger.next_deadline())
            .flatten();
        [leases, self.handover_until].into_iter().flatten().min()
    }

    /// How often the loop wakes with nothing to do, for housekeeping
    /// (line and idle timeouts): a quarter of the pause limit, so that a
    /// gap of pause_limit between two wakes means the process was paused
    /// (750 ms with the defaults; within 250 ms..1 s).
    pub fn wake_every(&self) -> Duration {
        (self.pause_limit / 4).clamp(Duration::from_millis(250), Duration::from_secs(1))
    }

    /// Requests are read, except while stepping down.
    pub fn accepting_requests(&self) -> bool {
        self.handover_until.is_none()
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
        self.gate.paused = true;
        self.tell_watchdog(ToWatchdog::Paused);
    }

    /// Whether this server serves clients now (always, standalone).
    pub fn serving(&self) -> bool {
        self.gate.serving()
    }

    /// The last record this server holds.
    pub fn history(&self) -> HistoryMark {
        HistoryMark {
            seq: self.ledger.last_seq(),
            epoch: self.ledger.last_epoch(),
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

    /// Answers one request line, or `None` when the answer comes later
    /// (a queued checkout).
    pub fn handle_line(
        &mut self,
        client: &mut ClientState,
        key: usize,
        line: &str,
        now: Now,
    ) -> Option<Reply> {
        match crate::protocol::Request::parse(line) {
            Ok(request) => self.handle(client, key, request, now),
            Err(why) => Some(Reply::now(reply::err(Code::BadRequest, &why).finish())),
        }
    }

    /// The error line for a refusal (with where to go, for a standby).
    pub(super) fn refused(&self, refusal: &Refusal) -> String {
        let mut line = reply::refused(refusal);
        if matches!(refusal.code, Code::Standby | Code::NotActive) {
            line = line.field_opt("active", self.presence.active_addr.as_ref());
        }
        line.finish()
    }

    /// Housekeeping after the requests of an iteration: the watchdog's
    /// word, expiries, queued checkouts decided, records to storage.
    pub fn after_requests(&mut self, now: Now, effects: &mut Effects) {
        self.drain_watchdog(now, effects);
        if self.handover_until.is_some_and(|until| now.mono >= until) {
            log::warn!("the other server did not confirm it has this server's seats: answering clients anyway");
            self.end_handover(effects);
        }
        if self.refresh_gate(now.mono).expire {
            self.ledger.expire_due(now);
        }
        for Woken {
            waiter: WaiterId(id),
            outcome,
            wait_for,
        } in self.ledger.take_woken()
        {
            let Some(key) = self.waiters.remove(&id) else {
                continue;
            };
            let reply = match outcome {
                Outcome::Granted(grant) => {
                    self.counters.checkouts += 1;
                    Reply {
                        text: reply::push_granted(id, &grant).finish(),
                        wait_for,
                        grant: Some(std::sync::Arc::clone(&grant.handle)),
                    }
                }
                Outcome::Denied(refusal) => {
                    self.counters.denied(refusal.code);
                    Reply::now(reply::push_denied(id, &refusal).finish())
                }
                Outcome::Queued { .. } => continue,
            };
            effects.pushes.push((key, reply));
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
        if snapshot_due(self.records_since_snapshot, self.ledger.snapshot_items()) && self.serving()
        {
            self.records_since_snapshot = 0;
            self.journal.snapshot(self.ledger.snapshot(now));
        }
        self.notice_journal_failure();
        // Changes made here are waited for by their own replies (above);
        // the next request's reply waits only for its own.
        self.ledger.take_change();
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
    pub(super) fn flush_records(&mut self) {
        let records = self.ledger.take_records();
        if records.is_empty() {
            return;
        }
        self.records_since_snapshot += records.len() as u64;
        self.note_history(&records);
        if let Some(p) = &self.pair {
            let _ = p.tx.send(ToWatchdog::Records(records.clone()));
        }
        self.journal.append(records);
    }

    /// Tells the usage history (the page's chart) about records made or
    /// applied here.
    pub(super) fn note_history(&mut self, records: &[crate::ledger::Record]) {
        let ledger = &self.ledger;
        let unix = crate::civil::unix_now_secs();
        self.history
            .note(records, unix, |f| super::history::level_of(ledger, f));
    }

    pub(super) fn tell_watchdog(&self, msg: ToWatchdog) {
        if let Some(p) = &self.pair {
            let _ = p.tx.send(msg);
        }
    }

    fn refuse_waiters(&mut self, effects: &mut Effects) {
        let refusal = Refusal::new(Code::ShuttingDown, "the server is shutting down");
        for (id, key) in self.waiters.drain() {
            let text = reply::push_denied(id, &refusal).finish();
            effects.pushes.push((key, Reply::now(text)));
        }
    }

    /// Forgets a closed connection's queued checkouts.
    pub fn connection_closed(&mut self, client: &ClientState) {
        for id in &client.waiters {
            if self.waiters.remove(id).is_some() {
                self.ledger.cancel_wait(WaiterId(*id));
            }
        }
    }

    /// The last steps of a clean shutdown, after replies drained.
    pub fn finish_shutdown(mut self) -> Result<(), String> {
        let now = Now::current();
        if self.shutdown == Some(true) {
            let handles: Vec<Name> = self
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

    /// The gate the ledger holds now (for status and tests).
    pub fn gate(&self) -> &Gate {
        self.ledger.gate()
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot_due;

    #[test]
    fn snapshots_come_every_ten_thousand_records_or_twice_the_state() {
        assert!(!snapshot_due(9_999, 0));
        assert!(snapshot_due(10_000, 0));
        assert!(snapshot_due(10_000, 5_000));
        // 100,000 seats and returns remembered: a snapshot per 200,000 records.
        assert!(!snapshot_due(199_999, 100_000));
        assert!(snapshot_due(200_000, 100_000));
        assert!(snapshot_due(u64::MAX, u64::MAX));
    }
}
