//! The seat ledger: which seats are out, to whom, until when.
//!
//! A pure state machine: no sockets, no files, no threads, no clock of its
//! own (every call takes [`Now`]). The server's event loop owns the only
//! ledger of a process and is the only thing that mutates it.
//!
//! Every change is an [`Event`] that goes through [`Ledger::apply`], and
//! every event the ledger makes itself is also queued in an outbox as a
//! numbered [`Record`] for the journal, the standby and the report log.
//! Replaying the records through `apply` rebuilds the same seats, which is
//! how a restart (journal replay) and a standby (replication) work.

mod event;
mod grant;
mod handle;
mod holders;
mod merge;
pub mod per_client;
pub mod policy;
mod pools;
mod roam;

pub use event::{Denial, Event, Extension, Grant, Name, Reason, Record, Return, Roam, RoamKey};
use grant::{charge_key, GrantRules};
pub use handle::{Entropy, HandleClaim, HandleKey, SeededEntropy, HANDLE_ID_BYTES, MAX_HANDLE_LEN};
pub use holders::{looks_like_seat_id, seat_id, SeatHolder, SeatSelector, SEAT_ID_LEN};
use merge::ReturnedSeats;
pub use merge::{Merge, MergeOutcome, Returned};
pub use policy::Options;
pub use roam::{RoamRequest, DAY_SECS};

use crate::civil::Date;
use crate::codes::Code;
use crate::licence::{Pool, PoolKey, Version};
use policy::{Requester, Usage};
use pools::PoolState;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The two clocks a ledger call needs: the monotonic one measures leases,
/// the wall clock only dates records and decides licence expiry.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono: Instant,
    pub unix: u64,
}

impl Now {
    pub fn current() -> Now {
        Now {
            mono: Instant::now(),
            unix: crate::civil::unix_now_secs(),
        }
    }

    fn today(self) -> Date {
        Date::from_days((self.unix / 86_400) as i64)
    }
}

/// A client's request for seats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub feature: String,
    pub version: Version,
    pub count: u32,
    pub user: Name,
    pub host: Name,
    pub client: Name,
    /// Queue (FIFO) for a seat rather than be refused when none is free.
    pub wait: bool,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
    /// The options-file rule (`file:line`) behind the refusal, if any.
    pub rule: Option<String>,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            rule: None,
        }
    }
}

/// What became of a checkout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Granted(Arc<Grant>),
    /// Waiting in the feature's queue at this position (1 = next).
    Queued {
        position: usize,
    },
    Denied(Refusal),
}

/// Identifies a queued checkout to the server, which maps it to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WaiterId(pub u64);

/// What a reread does with seats whose pool it removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orphans {
    /// Return them (`licence_gone`): the licence was taken away.
    Return,
    /// Keep them until checked in or their lease ends: the licence may
    /// have been broken by mistake (an edit without re-signing).
    Keep,
}

/// Whether the ledger may grant seats now. The server sets it from its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Grant freely.
    Open,
    /// Honour reclaims of existing handles only (recovery period); new
    /// checkouts are refused with the refusal given.
    ReclaimOnly(Refusal),
    /// Grant nothing (standby, fenced, shutting down).
    Closed(Refusal),
}

/// What `checkin` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckinOutcome {
    /// The seat is back in its pool.
    Returned,
    /// The licence's min_checkout keeps the seat out this much longer.
    HeldFor(Duration),
}

/// A seat that is out.
#[derive(Clone, Debug)]
pub struct Seat {
    pub grant: Arc<Grant>,
    pool: Option<usize>,
    /// Monotonic time at which the seat was granted or restored here.
    pub since: Instant,
    pub lease_until: Instant,
    pub hold_until: Instant,
    /// Checked in while min_checkout still held it; returns at `hold_until`.
    pub checked_in: bool,
}

impl Seat {
    /// When the seat returns to its pool if nothing else happens.
    pub fn returns_at(&self) -> Instant {
        if self.checked_in {
            self.hold_until
        } else {
            self.lease_until.max(self.hold_until)
        }
    }
}

/// A seat as it is written to a snapshot or sent to a standby: times as
/// time remaining, since the monotonic clocks of two processes or hosts
/// have nothing in common.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatSnapshot {
    pub grant: Arc<Grant>,
    pub lease_left_ms: u64,
    pub hold_left_ms: u64,
    pub checked_in: bool,
}

/// The ledger's whole state at one sequence number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last record included.
    pub seq: u64,
    pub epoch: u64,
    pub seats: Vec<SeatSnapshot>,
    /// Seats returned lately by their clients, so that a merge after a
    /// split never brings them back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returned: Vec<Returned>,
    /// The pair's roam key, as last recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roam_key: Option<RoamKey>,
}

/// A queued checkout decided, and the record its reply waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Woken {
    pub waiter: WaiterId,
    pub outcome: Outcome,
    pub wait_for: Option<u64>,
}

/// A pool with its use, for status displays.
#[derive(Clone, Debug)]
pub struct PoolView<'a> {
    pub pool: &'a Pool,
    pub used: u64,
}

struct Waiter {
    id: WaiterId,
    request: CheckoutRequest,
}

/// Seats held per user and per host within one feature, for options rules.
#[derive(Default)]
struct FeatureUsage {
    by_user: HashMap<Name, u64>,
    by_host: HashMap<Name, u64>,
}

impl Usage for FeatureUsage {
    fn by_user(&self, user: &str) -> u64 {
        self.by_user.get(user).copied().unwrap_or(0)
    }
    fn by_host(&self, host: &str) -> u64 {
        self.by_host.get(host).copied().unwrap_or(0)
    }
}

fn adjust(map: &mut HashMap<Name, u64>, key: &Name, delta: i64) {
    if delta >= 0 {
        match map.get_mut(&**key) {
            Some(v) => *v += delta as u64,
            None => {
                map.insert(Arc::clone(key), delta as u64);
            }
        }
    } else if let Some(v) = map.get_mut(key) {
        *v = v.saturating_sub(delta.unsigned_abs());
        if *v == 0 {
            map.remove(key);
        }
    }
}

/// The seat ledger. See the module documentation.
pub struct Ledger {
    pools: Vec<PoolState>,
    pool_index: HashMap<PoolKey, usize>,
    /// Pool indexes of each feature, soonest expiry first, then lowest version.
    by_feature: HashMap<String, Vec<usize>>,
    seats: HashMap<Name, Seat>,
    /// Return deadlines; entries go stale when leases are renewed and are
    /// re-filed when they come up (one entry a seat at any time).
    deadlines: BinaryHeap<Reverse<(Instant, Name)>>,
    usage: HashMap<Name, FeatureUsage>,
    /// Checkouts held and waiting per client, against its limit.
    per_client: per_client::PerClient,
    queues: HashMap<String, VecDeque<Waiter>>,
    options: Options,
    lease: Duration,
    handle_key: HandleKey,
    /// Randomness for handle ids, handed in: the ledger does no I/O.
    entropy: Box<dyn Entropy>,
    /// Seats returned lately, remembered for merges and reclaims.
    returned: ReturnedSeats,
    /// A reclaim of a seat this ledger never saw is honoured past the
    /// count (the gate says when: `server::gate::Decision`).
    reclaims_past_count: bool,
    /// Renewals are refused with this (witness mode, no grant lease).
    renewal_refusal: Option<Refusal>,
    gate: Gate,
    next_seq: u64,
    /// The epoch this server writes records with.
    epoch: u64,
    /// The epoch of the last record applied (with `next_seq - 1`, it names
    /// the history this ledger holds).
    last_epoch: u64,
    outbox: Vec<Record>,
    woken: Vec<Woken>,
    /// The last seat-changing record made since [`Ledger::take_change`].
    changed: Option<u64>,
    /// Roams by their end (wall clock, Unix seconds), then handle.
    roam_ends: BTreeSet<(u64, Name)>,
    /// Seats out roaming, per feature.
    roaming: HashMap<String, u64>,
    /// Seconds in a roam day: 86,400, shorter only in tests.
    roam_day: u64,
    /// The pair's roam key, as last recorded.
    roam_key: Option<RoamKey>,
}

impl Ledger {
    pub fn new(
        pools: Vec<Pool>,
        lease: Duration,
        handle_key: HandleKey,
        entropy: Box<dyn Entropy>,
    ) -> Ledger {
        let mut ledger = Ledger {
            pools: Vec::new(),
            pool_index: HashMap::new(),
            by_feature: HashMap::new(),
            seats: HashMap::new(),
            deadlines: BinaryHeap::new(),
            usage: HashMap::new(),
            per_client: per_client::PerClient::new(Some(per_client::DEFAULT_LIMIT)),
            queues: HashMap::new(),
            options: Options::default(),
            lease,
            handle_key,
            entropy,
            returned: ReturnedSeats::default(),
            reclaims_past_count: false,
            renewal_refusal: None,
            gate: Gate::Open,
            next_seq: 1,
            epoch: 1,
            last_epoch: 0,
            outbox: Vec::new(),
            woken: Vec::new(),
            changed: None,
            roam_ends: BTreeSet::new(),
            roaming: HashMap::new(),
            roam_day: DAY_SECS,
            roam_key: None,
        };
        ledger.index_pools(pools);
        ledger
    }

    // ----- configuration -------------------------------------------------

    pub fn set_gate(&mut self, gate: Gate) {
        self.gate = gate;
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Whether a reclaim of a seat never seen here may exceed the count.
    pub fn set_reclaims_past_count(&mut self, on: bool) {
        self.reclaims_past_count = on;
    }

    /// Renewals are refused with this now (`server::gate::unleased`).
    pub fn set_renewal_refusal(&mut self, refusal: Option<Refusal>) {
        self.renewal_refusal = refusal;
    }

    /// Sets the most checkouts one client may hold and wait for (`None`:
    /// no limit). See [`per_client`].
    pub fn set_client_limit(&mut self, limit: Option<u64>) {
        self.per_client.set_limit(limit);
    }

    pub fn set_options(&mut self, options: Options) {
        self.options = options;
    }

    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    pub fn handle_key(&self) -> &HandleKey {
        &self.handle_key
    }

    /// The sequence number of the last record applied or made.
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The epoch of the last record applied or made (0 for none).
    pub fn last_epoch(&self) -> u64 {
        self.last_epoch
    }

    /// Replaces the pools (licence reread). Seats already out stay out,
    /// even where a pool shrank below its use. Seats whose pool is gone
    /// return with reason `licence_gone`, or with [`Orphans::Keep`] (the
    /// reread skipped broken lines, so the pool may be gone by mistake)
    /// stay out until checked in or their lease ends, and come back into
    /// their pool if a later reread restores it. Queues are then served.
    pub fn set_pools(&mut self, pools: Vec<Pool>, orphans: Orphans, now: Now) {
        self.index_pools(pools);
        let gone: Vec<Name> = self
            .seats
            .iter()
            .filter(|(_, s)| !self.pool_index.contains_key(&s.grant.pool))
            .map(|(h, _)| h.clone())
            .collect();
        self.recharge();
        if matches!(self.gate, Gate::Closed(_)) {
            // A standby keeps them: the active server decides, and its
            // records will say.
            return;
        }
        if orphans == Orphans::Return {
            for handle in gone {
                self.release(&handle, Reason::LicenceGone, now);
            }
        }
        let features: Vec<String> = self.queues.keys().cloned().collect();
        for feature in features {
            self.serve_queue(&feature, now);
        }
    }

    fn index_pools(&mut self, pools: Vec<Pool>) {
        self.pools = pools.into_iter().map(PoolState::new).collect();
        self.pool_index.clear();
        self.by_feature.clear();
        for (i, p) in self.pools.iter().enumerate() {
            self.pool_index.insert(p.pool.key.clone(), i);
            self.by_feature
                .entry(p.pool.key.feature.to_string())
                .or_default()
                .push(i);
        }
        let pools = &self.pools;
        for list in self.by_feature.values_mut() {
            list.sort_by(|a, b| {
                let (a, b) = (&pools[*a].pool.key, &pools[*b].pool.key);
                (a.expiry, &a.version).cmp(&(b.expiry, &b.version))
            });
        }
    }

    /// Recomputes every pool's charges from the seats (after the pools
    /// changed or a snapshot was loaded).
    fn recharge(&mut self) {
        for p in &mut self.pools {
            *p = PoolState::new(p.pool.clone());
        }
        for seat in self.seats.values_mut() {
            seat.pool = self.pool_index.get(&seat.grant.pool).copied();
            if let Some(i) = seat.pool {
                let p = &mut self.pools[i];
                let key = charge_key(p, &seat.grant);
                p.charge(&seat.grant.handle, seat.grant.count, key);
            }
        }
    }

    // ----- client requests -------------------------------------------------

    /// A checkout: granted, queued (when the request asks to wait and only
    /// seats are lacking) or denied.
    pub fn checkout(&mut self, request: CheckoutRequest, waiter: WaiterId, now: Now) -> Outcome {
        if let Gate::Closed(refusal) | Gate::ReclaimOnly(refusal) = &self.gate {
            return Outcome::Denied(refusal.clone());
        }
        // Not recorded: a runaway client would fill the journal and report
        // log with its refusals.
        if let Err(refusal) = self.per_client.admit(&request) {
            return Outcome::Denied(refusal);
        }
        match self.try_grant(&request, None, GrantRules::Checkout, None, now) {
            Ok(grant) => Outcome::Granted(grant),
            Err(refusal)
                if request.wait && matches!(refusal.code, Code::NoSeats | Code::Reserved) =>
            {
                self.per_client.queued(&request);
                let queue = self.queues.entry(request.feature.clone()).or_default();
                queue.push_back(Waiter {
                    id: waiter,
                    request,
                });
                Outcome::Queued {
                    position: queue.len(),
                }
            }
            Err(refusal) => {
                self.record_denial(&request, &refusal, None, now);
                Outcome::Denied(refusal)
            }
        }
    }

    /// Drops a queued checkout (its client went away).
    pub fn cancel_wait(&mut self, waiter: WaiterId) {
        for queue in self.queues.values_mut() {
            if let Some(i) = queue.iter().position(|w| w.id == waiter) {
                if let Some(w) = queue.remove(i) {
                    self.per_client.dequeued(&w.request);
                }
            }
        }
        self.queues.retain(|_, q| !q.is_empty());
    }

    /// Queued checkouts of a feature.
    pub fn queue_len(&self, feature: &str) -> usize {
        self.queues.get(feature).map_or(0, |q| q.len())
    }

    /// Renews a seat's lease, whoever asks (replay, tests): clients go
    /// through [`Ledger::heartbeat_by`], which checks the holder.
    pub fn heartbeat(&mut self, handle: &str, now: Now) -> Result<Duration, Refusal> {
        match self.seats.get_mut(handle) {
            Some(seat) if seat.grant.roam.is_some() => Err(roam::not_a_lease()),
            Some(seat) if !seat.checked_in => {
                let lease = Duration::from_millis(seat.grant.lease_ms);
                seat.lease_until = now.mono + lease;
                Ok(lease)
            }
            _ => Err(unknown_handle()),
        }
    }

    /// Returns a seat, whoever asks: clients go through
    /// [`Ledger::checkin_by`]. min_checkout may keep it out a while longer.
    pub fn checkin(&mut self, handle: &str, now: Now) -> Result<CheckinOutcome, Refusal> {
        let seat = match self.seats.get_mut(handle) {
            Some(seat) if seat.grant.roam.is_some() => return Err(roam::not_a_lease()),
            Some(seat) if !seat.checked_in => seat,
            _ => return Err(unknown_handle()),
        };
        if now.mono < seat.hold_until {
            seat.checked_in = true;
            let left = seat.hold_until - now.mono;
            let returns = seat.hold_until;
            let handle = Arc::clone(&seat.grant.handle);
            self.deadlines.push(Reverse((returns, handle)));
            return Ok(CheckinOutcome::HeldFor(left));
        }
        self.release(handle, Reason::Checkin, now);
        Ok(CheckinOutcome::Returned)
    }

    /// Takes a seat back at once, min_checkout notwithstanding: an operator
    /// removing it (`Reason::Removed`) or a server being decommissioned
    /// (`Reason::Shutdown`).
    pub fn remove(
        &mut self,
        handle: &str,
        reason: Reason,
        now: Now,
    ) -> Result<Arc<Grant>, Refusal> {
        let grant = match self.seats.get(handle) {
            Some(seat) => seat.grant.clone(),
            None => return Err(unknown_handle()),
        };
        self.release(handle, reason, now);
        Ok(grant)
    }

    /// A client that lost its connection (or its server) claims a seat it
    /// was granted. Known handles are renewed; unknown ones are granted
    /// again, counted, when their tag proves the grant and seats allow.
    /// Why a lease may not be renewed now (a heartbeat, or a reclaim of a
    /// seat held here), if it may not: set from the gate's inputs
    /// ([`Ledger::set_renewal_refusal`]).
    pub fn renewal_refused(&self) -> Option<Refusal> {
        self.renewal_refusal.clone()
    }

    pub fn reclaim(&mut self, handle: &str, request: &CheckoutRequest, now: Now) -> Outcome {
        if let Some(refusal) = self.renewal_refused() {
            return Outcome::Denied(refusal);
        }
        if let Some(seat) = self.seats.get_mut(handle) {
            if seat.grant.roam.is_some() {
                return Outcome::Denied(roam::not_a_lease());
            }
            let g = &seat.grant;
            let same = *g.feature == *request.feature
                && g.version == request.version
                && g.count == request.count
                && g.user == request.user
                && g.host == request.host
                && g.client == request.client;
            if !same || seat.checked_in {
                // Worded as for a handle never seen: a stranger learns
                // nothing of seats held here.
                return Outcome::Denied(bad_handle());
            }
            seat.lease_until = now.mono + Duration::from_millis(seat.grant.lease_ms);
            return Outcome::Granted(seat.grant.clone());
        }
        if let Gate::Closed(refusal) = &self.gate {
            return Outcome::Denied(refusal.clone());
        }
        let version = request.version.to_string();
        let claim = HandleClaim {
            feature: &request.feature,
            version: &version,
            count: request.count,
            user: &request.user,
            host: &request.host,
            client: &request.client,
        };
        if handle.len() > MAX_HANDLE_LEN || !self.handle_key.verify(handle, &claim) {
            return Outcome::Denied(bad_handle());
        }
        match self.try_grant(request, Some(handle), GrantRules::Reclaim, None, now) {
            Ok(grant) => Outcome::Granted(grant),
            Err(refusal) => Outcome::Denied(refusal),
        }
    }

    /// Returns every seat whose lease (or min_checkout hold) has run out.
    pub fn expire_due(&mut self, now: Now) {
        while let Some(Reverse((at, _))) = self.deadlines.peek() {
            if *at > now.mono {
                break;
            }
            let Reverse((_, handle)) = self.deadlines.pop().expect("peeked");
            let Some(seat) = self.seats.get(&handle) else {
                continue;
            };
            if seat.grant.roam.is_some() {
                continue; // ends by the calendar (`end_roams`)
            }
            let due = seat.returns_at();
            if due > now.mono {
                self.deadlines.push(Reverse((due, handle)));
                continue;
            }
            let reason = if seat.checked_in {
                Reason::Checkin
            } else {
                Reason::Expired
            };
            self.release(&handle, reason, now);
        }
        self.end_roams(now);
    }

    /// When `expire_due` next has work on a lease (possibly earlier, never
    /// later). Roams end by the wall clock: the server calls `expire_due`
    /// at least every few hundred milliseconds anyway.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Rebuilds the ledger on start: the snapshot, then the journal's
    /// records after it, then a full lease for every seat (clients could
    /// not heartbeat while the server was down).
    pub fn replay(&mut self, snapshot: Option<&Snapshot>, records: &[Record], now: Now) {
        if let Some(snapshot) = snapshot {
            self.restore(snapshot, now);
        }
        for record in records {
            self.apply(record, now);
        }
        self.epoch = self.epoch.max(self.last_epoch);
        self.grant_grace(now);
    }

    /// Gives every seat a full lease from now: after a restart or a
    /// takeover, clients could not heartbeat while no server was up.
    pub fn grant_grace(&mut self, now: Now) {
        for seat in self.seats.values_mut().filter(|s| s.grant.roam.is_none()) {
            let lease = now.mono + Duration::from_millis(seat.grant.lease_ms);
            seat.lease_until = seat.lease_until.max(lease);
        }
        self.rebuild_deadlines();
    }

    // ----- events --------------------------------------------------------

    /// Records an event made here: numbers it, applies it, queues it in the
    /// outbox. The single place a change enters the ledger.
    pub fn commit(&mut self, event: Event, now: Now) {
        let record = Record {
            seq: self.next_seq,
            epoch: self.epoch,
            event,
        };
        self.apply(&record, now);
        if record.event.changes_seats() {
            self.changed = Some(record.seq);
        }
        self.outbox.push(record);
    }

    /// The record the reply to the last request must wait for (durable,
    /// and acknowledged by an in-sync standby) before it may leave: the
    /// last seat change made since the previous call, if any.
    pub fn take_change(&mut self) -> Option<u64> {
        self.changed.take()
    }

    /// Applies a record (made here, replayed from the journal or received
    /// from the active server). Records at or below the last applied
    /// sequence number are ignored, so applying twice is harmless.
    /// Returns whether the record was applied.
    pub fn apply(&mut self, record: &Record, now: Now) -> bool {
        if record.seq < self.next_seq {
            return false;
        }
        self.next_seq = record.seq + 1;
        self.last_epoch = record.epoch;
        match &record.event {
            Event::Grant(grant) => self.add_seat(Arc::clone(grant), now),
            Event::RoamExtended(ext) => self.apply_extension(ext),
            Event::RoamKey(key) => self.roam_key = Some(key.clone()),
            Event::Adopt(seat) => self.adopt_seat(seat, now),
            Event::Release(ret) => {
                self.drop_seat(&ret.handle);
                let keep = (self.lease * 2).max(Duration::from_secs(60));
                self.returned.prune(now.mono);
                self.returned
                    .remember(&ret.handle, ret.reason, now.mono + keep);
            }
            Event::Denied(_)
            | Event::Reread { .. }
            | Event::Started { .. }
            | Event::Stopped { .. }
            | Event::Activated { .. } => {}
        }
        true
    }

    /// Takes the records made since the last call (for journal, standby,
    /// report log).
    pub fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.outbox)
    }

    /// Takes the queued checkouts decided since the last call.
    pub fn take_woken(&mut self) -> Vec<Woken> {
        std::mem::take(&mut self.woken)
    }

    fn add_seat(&mut self, grant: Arc<Grant>, now: Now) {
        let pool = self.pool_index.get(&grant.pool).copied();
        if let Some(i) = pool {
            let p = &mut self.pools[i];
            let key = charge_key(p, &grant);
            p.charge(&grant.handle, grant.count, key);
        } else {
            log::warn!(
                "seat {} is for {}, which is not served here; it is kept until it returns",
                grant.handle,
                grant.pool
            );
        }
        let usage = self.usage.entry(Arc::clone(&grant.feature)).or_default();
        adjust(&mut usage.by_user, &grant.user, grant.count as i64);
        adjust(&mut usage.by_host, &grant.host, grant.count as i64);
        self.per_client.held(&grant);
        let seat = Seat {
            pool,
            since: now.mono,
            lease_until: now.mono + Duration::from_millis(grant.lease_ms),
            hold_until: now.mono + Duration::from_millis(grant.min_hold_ms),
            checked_in: false,
            grant,
        };
        if self.add_roam(&seat.grant) {
            // Ends by the calendar (`roam_ends`), never by a lease.
        } else {
            self.deadlines
                .push(Reverse((seat.returns_at(), seat.grant.handle.clone())));
        }
        self.seats.insert(seat.grant.handle.clone(), seat);
    }

    fn drop_seat(&mut self, handle: &str) {
        let Some(seat) = self.seats.remove(handle) else {
            return;
        };
        if let Some(i) = seat.pool {
            let p = &mut self.pools[i];
            let key = charge_key(p, &seat.grant);
            p.discharge(handle, seat.grant.count, key.as_deref());
        }
        self.drop_roam(&seat.grant);
        if let Some(usage) = self.usage.get_mut(&seat.grant.feature) {
            let delta = -(seat.grant.count as i64);
            adjust(&mut usage.by_user, &seat.grant.user, delta);
            adjust(&mut usage.by_host, &seat.grant.host, delta);
        }
        self.per_client.returned(&seat.grant);
    }

    fn release(&mut self, handle: &str, reason: Reason, now: Now) {
        let Some(seat) = self.seats.get(handle) else {
            return;
        };
        let g = &seat.grant;
        let ret = Return {
            handle: Arc::clone(&g.handle),
            reason,
            at: now.unix,
            feature: Arc::clone(&g.feature),
            version: g.version,
            count: g.count,
            user: Arc::clone(&g.user),
            host: Arc::clone(&g.host),
            granted_at: g.at,
        };
        let feature = Arc::clone(&ret.feature);
        self.commit(Event::Release(ret), now);
        if !self.queues.is_empty() {
            self.serve_queue(&feature, now);
        }
    }

    // ----- views and snapshots -------------------------------------------

    pub fn seat(&self, handle: &str) -> Option<&Seat> {
        self.seats.get(handle)
    }

    pub fn seats(&self) -> impl Iterator<Item = &Seat> {
        self.seats.values()
    }

    pub fn seat_count(&self) -> usize {
        self.seats.len()
    }

    /// Items a snapshot would hold: seats and returns remembered.
    pub fn snapshot_items(&self) -> u64 {
        (self.seats.len() + self.returned.len()) as u64
    }

    pub fn pools(&self) -> impl Iterator<Item = PoolView<'_>> {
        self.pools.iter().map(|p| PoolView {
            pool: &p.pool,
            used: p.used,
        })
    }

    /// The whole state, leases as time remaining.
    pub fn snapshot(&self, now: Now) -> Snapshot {
        let mut seats: Vec<SeatSnapshot> = self
            .seats
            .values()
            .map(|s| SeatSnapshot {
                grant: s.grant.clone(),
                lease_left_ms: s
                    .lease_until
                    .saturating_duration_since(now.mono)
                    .as_millis() as u64,
                hold_left_ms: s.hold_until.saturating_duration_since(now.mono).as_millis() as u64,
                checked_in: s.checked_in,
            })
            .collect();
        seats.sort_by(|a, b| a.grant.handle.cmp(&b.grant.handle));
        Snapshot {
            seq: self.last_seq(),
            epoch: self.last_epoch,
            seats,
            returned: self.returned.snapshot(now.mono),
            roam_key: self.roam_key.clone(),
        }
    }

    /// Replaces the seats with a snapshot's.
    pub fn restore(&mut self, snapshot: &Snapshot, now: Now) {
        self.seats.clear();
        self.usage.clear();
        self.per_client.forget_held();
        self.roam_ends.clear();
        self.roaming.clear();
        for s in &snapshot.seats {
            self.add_seat(s.grant.clone(), now);
            let seat = self.seats.get_mut(&s.grant.handle).expect("just added");
            seat.lease_until = now.mono + Duration::from_millis(s.lease_left_ms);
            seat.hold_until = now.mono + Duration::from_millis(s.hold_left_ms);
            seat.checked_in = s.checked_in;
        }
        self.returned = ReturnedSeats::restore(&snapshot.returned, now.mono);
        self.roam_key = snapshot.roam_key.clone();
        self.next_seq = snapshot.seq + 1;
        self.last_epoch = snapshot.epoch;
        self.epoch = self.epoch.max(snapshot.epoch);
        self.recharge();
        self.rebuild_deadlines();
    }

    fn rebuild_deadlines(&mut self) {
        self.deadlines = self
            .seats
            .values()
            .filter(|s| s.grant.roam.is_none())
            .map(|s| Reverse((s.returns_at(), s.grant.handle.clone())))
            .collect();
    }
}

fn bad_handle() -> Refusal {
    Refusal::new(
        Code::BadHandle,
        "the handle was not issued for this grant by this server or its peer",
    )
}

pub(crate) fn unknown_handle() -> Refusal {
    Refusal::new(
        Code::UnknownHandle,
        "no seat is held here under this handle (checked in, expired or removed)",
    )
}

#[cfg(test)]
mod tests;
