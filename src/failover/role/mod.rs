//! The role state machine: every decision of a server of a pair.
//!
//! Which role am I? When do I take over, step down, hand back? When is the
//! standby in sync, and when stale? Pure: [`RoleMachine::handle`] takes one
//! [`Input`] and the time, and returns [`Action`]s; it reads no clock,
//! touches no socket or channel. The watchdog thread ([`super::watchdog`])
//! feeds it and carries the actions out; the simulation in `tests/` feeds
//! it a simulated network and clock.
//!
//! - [`replication`]: the journal stream, both ends (follower and standby).
//! - [`fence`]: witness mode: the witness link, the grant lease, the stale
//!   record and claims.
//! - [`report`]: what status shows about the pair.
//! - [`operator`]: what the operator changes at run time (the other
//!   server's address, forgetting the backup).
//!
//! Silence is counted in awake time ([`super::awake`]): a server frozen
//! for a while does not take the other's silence for death when it wakes.

mod fence;
mod operator;
mod replication;
mod report;
#[cfg(test)]
mod tests;

use super::awake::{max_step_for, AwakeClock};
use super::ring::Ring;
use super::{next_epoch, FromWatchdog, PairSettings, RoleView, ToWatchdog};
use crate::config::Role;
use crate::journal::FORMAT_VERSION;
use crate::ledger::{Merge, Snapshot};
use crate::protocol::peer::{HistoryMark, PeerMessage, PeerState};
use fence::Fence;
use replication::Follower;
use std::time::{Duration, Instant};

/// Records kept for catch-up from the tail.
const RING_RECORDS: usize = 100_000;

/// What happened: the machine's only way to learn anything.
#[derive(Debug)]
pub enum Input {
    /// Time passed (the watchdog ticks every [`PairSettings::tick`]).
    Tick,
    /// The connection this server dialled to the other server is up.
    PeerLinkUp,
    /// ... or went down (closed, or a send failed).
    PeerLinkDown,
    /// A message from the other server (on a connection that proved the secret).
    Peer(PeerMessage),
    WitnessLinkUp,
    WitnessLinkDown,
    /// A message from the witness.
    Witness(PeerMessage),
    /// A message from the event loop.
    Loop(ToWatchdog),
}

/// What to do.
#[derive(Debug)]
pub enum Action {
    /// Send on the connection to the other server (dropped when it is down).
    ToPeer(PeerMessage),
    /// Send on the connection to the witness (dropped when it is down).
    ToWitness(PeerMessage),
    ToLoop(FromWatchdog),
    /// Dial the other server's peer port at this address (in the
    /// background; report `PeerLinkUp`).
    DialPeer(String),
    /// Close the connection this server dialled to the other server (it
    /// moved): nothing more is sent on it, and no `PeerLinkDown` follows.
    ClosePeerLink,
    /// Dial the witness (report `WitnessLinkUp`).
    DialWitness,
}

/// Where a server starts from.
#[derive(Clone, Debug)]
pub struct Start {
    pub last: HistoryMark,
    pub epoch: u64,
    pub digest: String,
    /// Records may have been lost (a journal cut short of a torn tail):
    /// the first time this server serves, it runs a recovery period.
    pub needs_recovery: bool,
    /// Random per process start, so the witness tells a restart from a
    /// server that merely has not heard its answer yet.
    pub incarnation: u64,
}

/// What this server knows of the other one.
#[derive(Default)]
struct PeerView {
    state: Option<PeerState>,
    epoch: u64,
    last: HistoryMark,
    client_addr: Option<String>,
    digest: String,
    /// Awake time of the last message (liveness is judged on this).
    heard_awake: Option<Duration>,
    /// Monotonic time of the last message (status, backup_lost_after).
    heard_at: Option<Instant>,
    /// Whether it (when active) counts this server as an in-sync standby.
    counts_us_in_sync: bool,
    /// False once its journal failed.
    can_serve: bool,
    /// Its last `sent_ms`, when it arrived and its incarnation, echoed
    /// back (round trip, and the grant lease the echo renews).
    echo: Option<(u64, Instant, u64)>,
    rtt_ms: Option<u64>,
}

/// A server stepping down: its handover, until the winner merged it.
struct PendingMerge {
    id: u64,
    merge: Merge,
    sent: Instant,
}

/// The role state machine of one server. See the module documentation.
pub struct RoleMachine {
    s: PairSettings,
    clock: AwakeClock,
    /// Awake time since which this server has been listening.
    listening_since: Duration,
    /// The time of the input being handled.
    now: Instant,
    started: Instant,
    state: PeerState,
    epoch: u64,
    /// The last record this server holds (made, or forwarded to apply).
    last: HistoryMark,
    /// The last record durable in this server's journal.
    durable: u64,
    digest: String,
    /// False once this server's journal failed: it never serves again.
    can_serve: bool,
    /// Random per process start (see [`Start::incarnation`]).
    incarnation: u64,
    needs_recovery: bool,
    ring: Ring,
    peer: PeerView,
    link_up: bool,
    last_dial: Option<Instant>,
    last_ping: Option<Instant>,
    follower: Follower,
    /// Standby: when a SyncFrom was last sent on the current link.
    sync_asked: Option<Instant>,
    /// Witness mode only.
    fence: Option<Fence>,
    /// Primary: asked the active backup to hand back (and when).
    handback_asked: Option<Instant>,
    /// Backup: handing back, waiting for the loop to stop granting.
    handing_back: bool,
    /// Stepping down after a split, waiting for the loop's handover.
    stepping_down: bool,
    merge: Option<PendingMerge>,
    next_merge_id: u64,
    recovery_until: Option<Instant>,
    /// Serving, but the loop was paused: grants wait until this re-check
    /// (awake time of the pause report).
    paused_at: Option<Duration>,
    serving_since: Option<Instant>,
    backup_expired: bool,
    /// The takeover attempt after this silence was logged already.
    takeover_logged: bool,
    last_expired_log: Option<Instant>,
    backup_lost_logged: bool,
    /// The operator told this primary to forget its backup; cleared when
    /// the backup is heard from again.
    backup_forgotten: bool,
    digest_alerted: bool,
    /// The last view told to the loop (to tell only changes).
    told: Option<RoleView>,
    out: Vec<Action>,
}

impl RoleMachine {
    pub fn new(settings: PairSettings, start: Start, now: Instant) -> RoleMachine {
        let fence = settings
            .witness
            .is_some()
            .then(|| Fence::new(start.incarnation));
        let clock = AwakeClock::new(now, max_step_for(settings.tick()));
        RoleMachine {
            peer: PeerView {
                client_addr: settings.peer_client_addr.clone(),
                can_serve: true,
                ..PeerView::default()
            },
            clock,
            listening_since: Duration::ZERO,
            now,

            started: now,
            state: PeerState::Starting,
            epoch: start.epoch,
            last: start.last,
            durable: start.last.seq,
            digest: start.digest,
            can_serve: true,
            incarnation: start.incarnation,
            needs_recovery: start.needs_recovery,

            ring: Ring::new(RING_RECORDS),
            link_up: false,
            last_dial: None,
            last_ping: None,
            follower: Follower::default(),
            sync_asked: None,
            fence,
            handback_asked: None,
            handing_back: false,
            stepping_down: false,
            merge: None,
            next_merge_id: 0,
            recovery_until: None,
            paused_at: None,
            serving_since: None,
            backup_expired: false,
            takeover_logged: false,
            last_expired_log: None,
            backup_lost_logged: false,
            backup_forgotten: false,
            digest_alerted: false,
            told: None,
            out: Vec::new(),
            s: settings,
        }
    }

    pub fn state(&self) -> PeerState {
        self.state
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn settings(&self) -> &PairSettings {
        &self.s
    }

    /// Handles one input at `now`; returns what to do, in order.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        self.now = now;
        if let Some(pause) = self.clock.observe(now) {
            log::warn!(
                "this server was not running for {pause:?} (SIGSTOP or a VM pause): silence is counted only from now"
            );
            // What the other server said meanwhile waits unread: listen
            // afresh before concluding anything from its silence.
            self.listening_since = self.clock.now();
            if self.peer.heard_awake.is_some() {
                self.peer.heard_awake = Some(self.clock.now());
            }
        }
        match input {
            Input::Tick => self.on_tick(now),
            Input::PeerLinkUp => self.on_link_up(now),
            Input::PeerLinkDown => self.on_link_down(),
            Input::Peer(message) => self.on_peer(message, now),
            Input::WitnessLinkUp => self.on_witness_link(true),
            Input::WitnessLinkDown => self.on_witness_link(false),
            Input::Witness(message) => self.on_witness(message, now),
            Input::Loop(message) => self.on_loop(message, now),
        }
        self.tell_role(now);
        std::mem::take(&mut self.out)
    }

    // ----- helpers ----------------------------------------------------------

    fn tell_loop(&mut self, msg: FromWatchdog) {
        self.out.push(Action::ToLoop(msg));
    }

    fn send(&mut self, msg: PeerMessage) {
        if self.link_up {
            self.out.push(Action::ToPeer(msg));
        }
    }

    /// True when the other server was heard within takeover_after of
    /// this server's awake time.
    fn peer_alive(&self) -> bool {
        self.peer
            .heard_awake
            .is_some_and(|t| self.clock.since(t) < self.s.takeover_after)
    }

    fn peer_serving(&self) -> bool {
        self.peer_alive() && self.peer.state.is_some_and(|s| s.is_serving())
    }

    /// A server listens for takeover_after of awake time (since it started,
    /// or woke from a pause) before it concludes it is alone.
    fn listened_long_enough(&self) -> bool {
        self.clock.since(self.listening_since) >= self.s.takeover_after
    }

    /// The epoch shown for this server (see [`RoleView::epoch`]); the
    /// heartbeat carries the same number, so both servers show one truth.
    fn shown_epoch(&self) -> u64 {
        if self.state.is_serving() {
            self.epoch
        } else {
            self.epoch.max(self.last.epoch)
        }
    }

    fn active_addr(&self) -> Option<String> {
        if self.state.is_serving() {
            None
        } else if self.peer_serving() {
            self.peer.client_addr.clone()
        } else {
            None
        }
    }

    /// Tells the loop where this server stands, when that changed.
    fn tell_role(&mut self, _now: Instant) {
        let view = RoleView {
            state: self.state,
            epoch: self.shown_epoch(),
            active: self.active_addr(),
            recovery_until: self.recovery_until,
            backup_expired: self.backup_expired,
        };
        // A paused server re-announces its role after the re-check.
        if self.told.as_ref() != Some(&view) && self.paused_at.is_none() {
            self.told = Some(view.clone());
            self.tell_loop(FromWatchdog::Role(view));
        }
    }

    /// Forces the next [`Self::tell_role`] to tell the loop again.
    fn retell_role(&mut self) {
        self.told = None;
    }

    // ----- inputs ---------------------------------------------------------

    fn on_tick(&mut self, now: Instant) {
        let due = self
            .last_ping
            .is_none_or(|t| now.saturating_duration_since(t) >= self.s.ping_interval);
        if due {
            self.last_ping = Some(now);
            self.ping(now);
            let report = self.report(now);
            self.tell_loop(FromWatchdog::Status(report));
        }
        self.decide(now);
        self.check_follower(now);
        self.resend_merge(now);
    }

    fn ping(&mut self, now: Instant) {
        if !self.link_up
            && self
                .last_dial
                .is_none_or(|t| now.saturating_duration_since(t) >= self.s.ping_interval)
        {
            self.last_dial = Some(now);
            self.out.push(Action::DialPeer(self.s.peer.clone()));
        }
        let (echo_ms, held_ms, echo_incarnation) = match self.peer.echo {
            Some((sent, at, inc)) => (
                sent,
                now.saturating_duration_since(at).as_millis() as u64,
                inc,
            ),
            None => (0, 0, 0),
        };
        let heartbeat = PeerMessage::Heartbeat {
            state: self.state,
            epoch: self.shown_epoch(),
            last: self.last,
            client_addr: self.s.client_addr.clone(),
            digest: self.digest.clone(),
            sent_ms: self.ms_since_start(now),
            echo_ms,
            held_ms,
            incarnation: self.incarnation,
            echo_incarnation,
            standby_in_sync: self.follower.in_sync,
            can_serve: self.can_serve,
        };
        self.send(heartbeat);
        self.ping_witness(now);
    }

    fn ms_since_start(&self, now: Instant) -> u64 {
        // Never 0: 0 means "nothing to echo" on the wire.
        now.saturating_duration_since(self.started).as_millis() as u64 + 1
    }

    fn on_link_up(&mut self, now: Instant) {
        log::info!("peer link to {} up", self.s.peer);
        self.link_up = true;
        self.follower = Follower::default();
        self.sync_asked = None;
        // The link sent our Hello first; a handover not yet merged goes
        // again on every new link (merging twice changes nothing).
        if let Some(m) = &mut self.merge {
            m.sent = now;
            let msg = merge_message(m);
            self.send(msg);
        }
    }

    fn on_link_down(&mut self) {
        if self.link_up {
            log::info!("peer link to {} down", self.s.peer);
        }
        self.link_up = false;
        self.sync_asked = None;
        if self.state.is_serving() {
            self.follower = Follower::default();
            self.follower_changed();
        }
    }

    fn on_peer(&mut self, message: PeerMessage, now: Instant) {
        match message {
            PeerMessage::Hello { role, format } => {
                if role == self.s.role.as_str() {
                    log::error!(
                        "the other server also runs as {role}: one must be primary, the other backup"
                    );
                }
                if format != FORMAT_VERSION {
                    log::error!(
                        "the other server writes journal format {format}, this one {FORMAT_VERSION}: upgrade both"
                    );
                }
            }
            PeerMessage::Heartbeat {
                state,
                epoch,
                last,
                client_addr,
                digest,
                sent_ms,
                echo_ms,
                held_ms,
                incarnation,
                echo_incarnation,
                standby_in_sync,
                can_serve,
            } => {
                let mine = self.ms_since_start(now);
                if echo_ms > 0 && echo_incarnation == self.incarnation && echo_ms <= mine {
                    self.peer.rtt_ms = Some(mine.saturating_sub(echo_ms).saturating_sub(held_ms));
                    // The standby heard our heartbeat sent at echo_ms.
                    if !state.is_serving() {
                        let sent = self.started + Duration::from_millis(echo_ms - 1);
                        self.renew_lease(sent);
                    }
                }
                self.peer.echo = Some((sent_ms, now, incarnation));
                if !self.peer_alive() {
                    log::info!(
                        "heard from the other server: {} at epoch {epoch}, record {}",
                        state.as_str(),
                        last.seq
                    );
                }
                self.peer.heard_awake = Some(self.clock.now());
                self.peer.heard_at = Some(now);
                self.remember_backup();
                self.peer.state = Some(state);
                self.peer.epoch = epoch;
                self.peer.last = last;
                self.peer.counts_us_in_sync = standby_in_sync;
                self.peer.client_addr = Some(client_addr);
                self.peer.can_serve = can_serve;
                self.compare_digest(digest);
                self.decide(now);
            }
            PeerMessage::Records { records } => self.on_records(records),
            PeerMessage::Ack { seq } => self.on_ack(seq, now),
            PeerMessage::SyncFrom { from } => self.on_sync_from(from, now),
            PeerMessage::Snapshot { snapshot } => self.on_snapshot(snapshot),
            PeerMessage::HandbackRequest => {
                // Not during a recovery period: the primary would take over
                // in sync and skip the rest of it, refusing reclaims of
                // seats given out unseen that are still held.
                if self.s.role == Role::Backup
                    && self.state == PeerState::Active
                    && self.follower.in_sync
                {
                    log::info!("the primary is back and in sync: handing back");
                    self.handing_back = true;
                    let active = self.peer.client_addr.clone();
                    self.tell_loop(FromWatchdog::StopGranting { active });
                }
            }
            PeerMessage::HandedBack { last } => {
                if self.s.role == Role::Primary && !self.state.is_serving() {
                    if self.last.seq >= last.seq {
                        log::info!("the backup handed back at record {}: taking over", last.seq);
                        self.activate(true, now);
                    } else {
                        log::warn!(
                            "the backup handed back at record {} but only {} arrived here; syncing first",
                            last.seq,
                            self.last.seq
                        );
                        self.handback_asked = None;
                    }
                }
            }
            PeerMessage::Merge {
                id,
                seats,
                returned,
            } => {
                if self.state.is_serving() {
                    log::warn!(
                        "the other server steps down after a split and hands over {} seat(s) and {} return(s)",
                        seats.len(),
                        returned.len()
                    );
                    let merge = Merge { seats, returned };
                    self.tell_loop(FromWatchdog::Merge { id, merge });
                } else {
                    log::info!(
                        "not serving: the other server's handover waits until one of us serves"
                    );
                }
            }
            PeerMessage::MergeDone { id } => {
                if self.merge.as_ref().is_some_and(|m| m.id == id) {
                    self.merge = None;
                    log::info!(
                        "the active server merged this server's seats: sending clients there"
                    );
                    self.tell_loop(FromWatchdog::MergeDone);
                }
            }
            PeerMessage::WitnessPing { .. }
            | PeerMessage::WitnessView { .. }
            | PeerMessage::Claim { .. }
            | PeerMessage::ClaimResult { .. } => {}
        }
    }

    fn compare_digest(&mut self, digest: String) {
        if digest != self.digest && !self.digest_alerted {
            self.digest_alerted = true;
            log::error!(
                "the other server serves different licences or options (digest {} here, {} there): after a takeover it would serve other seats or rules; make them identical",
                short(&self.digest),
                short(&digest)
            );
        } else if digest == self.digest && self.digest_alerted {
            self.digest_alerted = false;
            log::info!("the other server's licences and options now match");
        }
        self.peer.digest = digest;
    }

    fn on_loop(&mut self, msg: ToWatchdog, now: Instant) {
        match msg {
            ToWatchdog::Records(records) => self.on_own_records(records, now),
            ToWatchdog::Durable(seq) => self.on_durable(seq),
            ToWatchdog::Snapshot(snapshot) => self.on_own_snapshot(snapshot, now),
            ToWatchdog::StoppedGranting(last) => {
                self.last = last;
                self.handing_back = false;
                log::info!(
                    "handing back to the primary after record {} (epoch {})",
                    last.seq,
                    self.epoch
                );
                self.send(PeerMessage::HandedBack { last });
                self.become_standby();
            }
            ToWatchdog::Handover(merge) => self.hand_over(merge, now),
            ToWatchdog::Merged(id) => self.send(PeerMessage::MergeDone { id }),
            ToWatchdog::Digest(digest) => {
                self.digest = digest;
                self.digest_alerted = false;
            }
            ToWatchdog::HoldingFrom(seq) => {
                if let Some(f) = &mut self.fence {
                    f.holding_from = Some(seq);
                }
                self.follower_changed();
            }
            ToWatchdog::Paused => {
                if self.state.is_serving() {
                    log::warn!(
                        "this server was paused for longer than takeover_after: checking with the other server before granting again"
                    );
                    self.paused_at = Some(self.clock.now());
                }
            }
            ToWatchdog::JournalFailed => self.journal_failed(),
            ToWatchdog::PeerAddress(addr) => self.move_peer(addr, now),
            ToWatchdog::ForgetBackup => self.forget_backup(),
        }
    }

    // ----- decisions --------------------------------------------------------

    /// Both servers are up and neither serves: does this one lead? The
    /// primary does, unless its journal failed.
    fn leads(&self) -> bool {
        self.can_serve && (!self.peer.can_serve || self.s.role == Role::Primary)
    }

    fn decide(&mut self, now: Instant) {
        let alive = self.peer_alive();
        let peer_serving = self.peer_serving();
        match self.state {
            PeerState::Starting => {
                if peer_serving {
                    self.become_standby();
                } else if alive {
                    if self.leads() {
                        if newer(self.peer.last, self.last) {
                            // Catch up from the longer history first.
                            self.become_standby();
                        } else {
                            self.activate(true, now);
                        }
                    }
                } else if self.listened_long_enough() {
                    if !self.takeover_logged {
                        self.takeover_logged = true;
                        log::warn!(
                            "the other server ({}) did not answer for {:?}: serving alone",
                            self.s.peer,
                            self.s.takeover_after
                        );
                    }
                    self.activate(false, now);
                }
            }
            PeerState::Syncing | PeerState::Ready => self.decide_standby(alive, peer_serving, now),
            PeerState::Active | PeerState::Recovering => self.decide_serving(peer_serving, now),
        }
    }

    fn decide_standby(&mut self, alive: bool, peer_serving: bool, now: Instant) {
        if !alive {
            if self.listened_long_enough() {
                let in_sync = self.state == PeerState::Ready;
                if !self.takeover_logged && self.can_serve {
                    self.takeover_logged = true;
                    log::warn!(
                        "no word from the active server for {:?} of listening: taking over ({})",
                        self.s.takeover_after,
                        if in_sync {
                            "in sync"
                        } else {
                            "not in sync: recovery period first"
                        }
                    );
                }
                self.activate(in_sync, now);
            }
            return;
        }
        self.takeover_logged = false;
        // Ask (again, if asking led nowhere: the request may have met the
        // other server between two roles).
        let ask_again = self.sync_asked.is_none_or(|t| {
            self.state == PeerState::Syncing
                && now.saturating_duration_since(t) >= self.s.takeover_after
        });
        // Follow the active server, or catch up with a further history.
        let worth_asking = peer_serving || newer(self.peer.last, self.last);
        if ask_again && worth_asking && self.link_up {
            self.sync_asked = Some(now);
            self.send(PeerMessage::SyncFrom { from: self.last });
        }
        if peer_serving {
            // In sync is what the active server says (only it knows
            // whether it waits for our acknowledgements); in witness mode
            // the witness must agree (it may record us stale).
            let witness_says_stale = self.fence.as_ref().is_some_and(|f| f.says_stale);
            let in_sync = self.peer.counts_us_in_sync && !witness_says_stale && self.can_serve;
            if self.state == PeerState::Syncing && in_sync {
                self.state = PeerState::Ready;
                self.needs_recovery = false;
                log::info!("in sync with the active server at record {}", self.last.seq);
            } else if self.state == PeerState::Ready && !in_sync {
                self.state = PeerState::Syncing;
                log::warn!("the active server no longer counts this standby in sync");
            }
            if self.s.role == Role::Primary && self.state == PeerState::Ready && self.can_serve {
                let due = self
                    .handback_asked
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.s.takeover_after);
                if due {
                    self.handback_asked = Some(now);
                    log::info!("in sync with the active backup: asking it to hand back");
                    self.send(PeerMessage::HandbackRequest);
                }
            }
        } else if self.leads() && !newer(self.peer.last, self.last) {
            // The other server stopped serving (handing back to us, its
            // journal failed, or it is starting): lead when caught up.
            let in_sync = self.state == PeerState::Ready || self.last == self.peer.last;
            self.activate(in_sync, now);
        }
    }

    fn decide_serving(&mut self, peer_serving: bool, now: Instant) {
        if self.recovery_until.is_some_and(|until| now >= until) {
            self.recovery_until = None;
            self.state = PeerState::Active;
            log::info!("recovery period over: granting new seats");
        }
        if let Some(paused) = self.paused_at {
            let heard_since = self.peer.heard_awake.is_some_and(|t| t > paused);
            if heard_since && peer_serving && self.loses_to_peer() {
                self.paused_at = None; // stepping down below
            } else if heard_since || self.clock.since(paused) >= self.s.takeover_after {
                self.paused_at = None;
                log::info!("re-checked after the pause: still the active server");
                self.retell_role();
            }
        }
        if peer_serving && self.loses_to_peer() {
            log::warn!(
                "both servers are active (the link was cut): the other one (epoch {}) stays, this one (epoch {}) steps down",
                self.peer.epoch,
                self.epoch
            );
            self.step_down();
        }
        self.check_limits(now);
    }

    /// When both serve, the higher epoch stays (a tie goes to the primary).
    fn loses_to_peer(&self) -> bool {
        let me_primary = self.s.role == Role::Primary;
        (self.peer.epoch, !me_primary) > (self.epoch, me_primary)
    }

    /// Becomes active: at once in two-server mode, with the witness's
    /// consent in witness mode (which also decides whether a recovery
    /// period is needed).
    fn activate(&mut self, in_sync: bool, now: Instant) {
        if !self.can_serve || self.stepping_down {
            return;
        }
        let witness_epoch = self.fence.as_ref().map_or(0, |f| f.recorded_epoch());
        let epoch = next_epoch(
            self.s.role,
            self.epoch
                .max(self.peer.epoch)
                .max(self.last.epoch)
                .max(witness_epoch),
        );
        if self.fence.is_some() {
            self.claim(epoch, now);
        } else {
            self.become_active(epoch, in_sync, now);
        }
    }

    fn become_active(&mut self, epoch: u64, in_sync: bool, now: Instant) {
        self.epoch = epoch;
        self.handback_asked = None;
        // Keep a catch-up the standby already asked for (it may have asked
        // just before we took over); it is not in sync with this reign yet.
        self.follower.in_sync = false;
        self.follower.unacked_since = None;
        if let Some(f) = &mut self.fence {
            // The witness cleared any stale record when it consented.
            f.clear_stale();
        }
        self.serving_since = Some(now);
        if in_sync && !self.needs_recovery {
            self.state = PeerState::Active;
            self.recovery_until = None;
        } else {
            self.state = PeerState::Recovering;
            self.recovery_until = Some(now + self.s.lease);
        }
        self.needs_recovery = false;
        log::warn!(
            "now {} as {} at epoch {}",
            self.state.as_str(),
            self.s.role,
            self.epoch
        );
        self.follower_changed();
    }

    fn become_standby(&mut self) {
        self.state = PeerState::Syncing;
        self.serving_since = None;
        self.recovery_until = None;
        self.follower = Follower::default();
        if let Some(f) = &mut self.fence {
            f.clear_stale();
        }
        self.sync_asked = None;
        self.handback_asked = None;
        self.paused_at = None;
        self.backup_expired = false;
        log::info!(
            "standing by for the active server (record {})",
            self.last.seq
        );
    }

    /// Both serve and this one loses: stop granting at once, and hand the
    /// loop's seats over once it says what they are.
    fn step_down(&mut self) {
        if self.stepping_down {
            return;
        }
        self.stepping_down = true;
        let active = self.peer.client_addr.clone();
        self.tell_loop(FromWatchdog::StepDown { active });
    }

    /// The loop stopped granting and says what it holds: hand it to the
    /// winner, drop the diverged history and follow the winner's.
    fn hand_over(&mut self, merge: Merge, now: Instant) {
        if !self.stepping_down {
            return;
        }
        self.stepping_down = false;
        log::warn!(
            "stepping down: handing {} seat(s) and {} return(s) to the other server, then syncing from it",
            merge.seats.len(),
            merge.returned.len()
        );
        self.next_merge_id += 1;
        let pending = PendingMerge {
            id: self.next_merge_id,
            merge,
            sent: now,
        };
        self.send(merge_message(&pending));
        self.merge = Some(pending);
        // Our history diverged from the winner's (the same sequence
        // numbers name other records): drop it and take the winner's whole.
        self.last = HistoryMark::default();
        self.durable = 0;
        self.ring.clear();
        self.tell_loop(FromWatchdog::Reset(Snapshot::default()));
        self.become_standby();
        self.sync_asked = Some(now);
        self.send(PeerMessage::SyncFrom {
            from: HistoryMark::default(),
        });
    }

    /// A handover not yet merged goes again every takeover_after while the
    /// other server serves; after one lease its seats have run out anyway.
    fn resend_merge(&mut self, now: Instant) {
        let Some(m) = &self.merge else { return };
        let age = now.saturating_duration_since(m.sent);
        if self.serving_since.is_some() || age >= self.s.lease + self.s.takeover_after {
            log::warn!("the other server never merged this server's handover: giving up on it");
            self.merge = None;
            self.tell_loop(FromWatchdog::MergeDone);
            return;
        }
        if age >= self.s.takeover_after && self.peer_serving() {
            let msg = {
                let m = self.merge.as_mut().expect("checked");
                m.sent = now;
                merge_message(m)
            };
            self.send(msg);
        }
    }

    /// This server's journal failed: it never serves again until restarted.
    /// Serving, it stops, so that an in-sync standby takes over as it would
    /// from a dead server, only sooner (it hears this one cannot serve).
    fn journal_failed(&mut self) {
        if !self.can_serve {
            return;
        }
        self.can_serve = false;
        if self.state.is_serving() {
            log::error!(
                "the journal failed: handing over to the other server (this server serves again only after a restart)"
            );
            self.become_standby();
        } else {
            log::error!(
                "the journal failed: this standby can no longer take over (restart it once the disk is fixed)"
            );
            if self.state == PeerState::Ready {
                self.state = PeerState::Syncing;
            }
        }
    }

    /// backup_max_days.
    fn check_limits(&mut self, now: Instant) {
        if self.s.role != Role::Backup {
            return;
        }
        let over = self
            .serving_since
            .is_some_and(|t| now.saturating_duration_since(t) >= self.s.backup_max);
        if over && !self.backup_expired {
            self.backup_expired = true;
        }
        let log_due = self
            .last_expired_log
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(86_400));
        if over && log_due {
            self.last_expired_log = Some(now);
            log::error!(
                "this backup has served alone for {:?} (backup_max_days): it refuses new checkouts until the primary returns",
                self.s.backup_max
            );
        }
    }
}

fn merge_message(m: &PendingMerge) -> PeerMessage {
    PeerMessage::Merge {
        id: m.id,
        seats: m.merge.seats.clone(),
        returned: m.merge.returned.clone(),
    }
}

/// True when history `a` is ahead of `b`.
fn newer(a: HistoryMark, b: HistoryMark) -> bool {
    (a.epoch, a.seq) > (b.epoch, b.seq)
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}
