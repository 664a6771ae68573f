//! The role state machine: every decision of a server of a pair.
//!
//! Which role am I? When do I take over, step down, hand back? When is the
//! standby in sync, and when stale? Pure: [`RoleMachine::handle`] takes one
//! [`Input`] and the time, and returns [`Action`]s; it reads no clock,
//! touches no socket or channel. The watchdog thread ([`super::watchdog`])
//! feeds it and carries the actions out; the simulation in `tests/` feeds
//! it a simulated network and clock.
//!
//! - [`decide`]: the decisions: lead, take over, step down, hand back or
//!   over, and what the journal failing changes.
//! - [`messages`]: what the other server and the loop say.
//! - [`replication`]: the journal stream, both ends (follower and standby).
//! - [`fence`]: witness mode: the witness link, the grant lease, the stale
//!   record and claims.
//! - [`report`]: what status shows about the pair.
//! - [`operator`]: what the operator changes at run time (the other
//!   server's address, forgetting the backup).
//!
//! Silence is counted in awake time ([`super::awake`]): a server frozen
//! for a while does not take the other's silence for death when it wakes.

mod decide;
mod fence;
mod messages;
mod operator;
mod replication;
mod report;
#[cfg(test)]
mod tests;

use super::awake::{max_step_for, AwakeClock};
use super::ring::Ring;
use super::{FromWatchdog, PairSettings, RoleView, ToWatchdog};
use crate::ledger::Merge;
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
    /// A dial to the other server's peer port was refused: nothing listens
    /// there (its process is gone, or not started yet).
    PeerDialRefused,
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
    /// The last dial to the other server was refused and nothing was
    /// heard from it since (see [`Input::PeerDialRefused`]).
    peer_refused: bool,
    last_dial: Option<Instant>,
    last_ping: Option<Instant>,
    follower: Follower,
    /// Standby: when a SyncFrom was last sent on the current link.
    sync_asked: Option<Instant>,
    /// Witness mode only.
    fence: Option<Fence>,
    /// Primary: asked the active backup to hand back (and when, in awake
    /// time: an answer to a request made since the last pause is news).
    handback_asked: Option<Duration>,
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
            peer_refused: false,
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
            Input::PeerLinkDown => self.on_link_down(now),
            Input::PeerDialRefused => self.on_dial_refused(),
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

    /// Witness mode: the other server's process looks gone: the link it
    /// answered on closed, its peer port refuses connections, and its
    /// heartbeat is overdue (a live server listens on its peer port and
    /// pings every interval). Reason to claim before takeover_after; the
    /// witness consents only if it saw the other's connection close too
    /// (docs/FAILOVER.md, "Early takeover"). In two-server mode nothing
    /// would confirm it (a firewall refusing is not a dead process), so
    /// only silence counts there.
    fn peer_gone(&self) -> bool {
        self.fence.is_some()
            && self.peer_refused
            && !self.link_up
            && self
                .peer
                .heard_awake
                .is_none_or(|t| self.clock.since(t) >= self.s.ping_interval)
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
        // A paused server re-announces its role after the re-check. One
        // handing back has told the loop to stop granting, and tells it
        // its new role once the loop has stopped: an "active" in between
        // would have it serve (and write records) after the handback.
        if self.told.as_ref() != Some(&view) && self.paused_at.is_none() && !self.handing_back {
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
        self.peer_refused = false;
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

    fn on_link_down(&mut self, now: Instant) {
        if self.link_up {
            log::info!("peer link to {} down", self.s.peer);
        }
        self.link_up = false;
        self.sync_asked = None;
        if self.state.is_serving() {
            self.follower = Follower::default();
            self.follower_changed();
        }
        self.end_lease_if_cut_off(now);
    }

    fn on_dial_refused(&mut self) {
        if !self.link_up && !self.peer_refused {
            log::info!(
                "the other server's peer port ({}) refuses connections",
                self.s.peer
            );
            self.peer_refused = true;
        }
    }
}

/// True when history `a` is ahead of `b`.
fn newer(a: HistoryMark, b: HistoryMark) -> bool {
    (a.epoch, a.seq) > (b.epoch, b.seq)
}

fn merge_message(m: &PendingMerge) -> PeerMessage {
    PeerMessage::Merge {
        id: m.id,
        seats: m.merge.seats.clone(),
        returned: m.merge.returned.clone(),
    }
}
