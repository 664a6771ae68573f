//! The watchdog thread: pings the other server, streams the journal to the
//! standby, and decides this server's role. See docs/FAILOVER.md.
//!
//! Each server dials the other's peer port and sends its own messages on
//! that connection; it receives the other's messages on the connection the
//! other dialled. So each direction has one connection and one owner, and
//! a server that restarts simply dials again.

use super::link::{self, LinkEvent, LinkWriter};
use super::ring::Ring;
use super::{next_epoch, FromWatchdog, PairSettings, PairStatus, ToWatchdog};
use crate::config::Role;
use crate::journal::FORMAT_VERSION;
use crate::ledger::Snapshot;
use crate::protocol::peer::{HistoryMark, PeerMessage, PeerState};
use crate::protocol::status::{ServerStatus, WitnessStatus};
use crossbeam_channel::{select, Receiver, Sender};
use mio::Waker;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records kept for catch-up from the tail.
const RING_RECORDS: usize = 100_000;
/// Proven connections from the other server kept at once (the newest).
const MAX_INBOUND: usize = 4;

/// What the watchdog knows of the other server.
#[derive(Default)]
struct PeerView {
    state: Option<PeerState>,
    epoch: u64,
    last: HistoryMark,
    client_addr: Option<String>,
    digest: String,
    last_heard: Option<Instant>,
    /// Whether it (when active) counts this server as an in-sync standby.
    counts_us_in_sync: bool,
    /// Its last `sent_ms` and when it arrived, echoed back for the RTT.
    echo: Option<(u64, Instant)>,
    rtt_ms: Option<u64>,
}

/// The standby as the active server follows it.
#[derive(Default)]
struct Follower {
    /// Records up to here were sent (None: the standby has not asked yet).
    sent_upto: Option<u64>,
    acked: u64,
    /// When the oldest unacknowledged record was sent.
    unacked_since: Option<Instant>,
    in_sync: bool,
    /// The standby counts as in sync once it acknowledged this record: the
    /// last one when its catch-up was sent (it follows live after that).
    catchup_target: Option<u64>,
    /// A snapshot was asked of the loop for the standby.
    awaiting_snapshot: bool,
}

/// The link to the witness and what it last said.
#[derive(Default)]
struct WitnessLink {
    out: Option<LinkWriter>,
    last_dial: Option<Instant>,
    next_id: u64,
    /// Pings not yet answered: id and when sent.
    pings: std::collections::VecDeque<(u64, Instant)>,
    /// Its last answer: active, epoch, stale record, learning, when.
    view: Option<(String, u64, Option<u64>, bool, Instant)>,
    /// An outstanding (or last refused) claim: id, epoch, when sent.
    claim: Option<(u64, u64, Instant)>,
    /// The last refusal's reason, logged once until it changes.
    last_refusal: Option<String>,
}

/// The loop's side of the conversation.
pub struct LoopPort {
    pub to_loop: Sender<FromWatchdog>,
    pub from_loop: Receiver<ToWatchdog>,
    pub waker: Arc<Waker>,
}

/// Where this server starts from.
pub struct Start {
    pub last: HistoryMark,
    pub epoch: u64,
    pub digest: String,
}

struct Watchdog {
    s: PairSettings,
    port: LoopPort,
    state: PeerState,
    epoch: u64,
    /// The last record this server holds (made, or forwarded to apply).
    last: HistoryMark,
    /// The last record durable in this server's journal.
    durable: u64,
    digest: String,
    ring: Ring,
    out: Option<LinkWriter>,
    /// Connections the other server dialled to us that proved the secret
    /// (its messages arrive here; a restart leaves an old one until it
    /// closes). The link hands over proven connections only.
    inbound: Vec<LinkWriter>,
    events_tx: Sender<LinkEvent>,
    last_dial: Option<Instant>,
    peer: PeerView,
    follower: Follower,
    /// Standby: a SyncFrom was sent on the current link.
    /// Standby: when a SyncFrom was last sent on the current link.
    sync_asked: Option<Instant>,
    /// Primary: asked the active backup to hand back (and when).
    handback_asked: Option<Instant>,
    /// Backup: handing back, waiting for the loop to stop granting.
    handing_back: bool,
    /// Stepping down after a partition, waiting for the loop's seats.
    stepping_down: bool,
    /// Seats to hand to the winner after stepping down, sent on every
    /// (re)connection until this server is in sync with it (adopting is
    /// idempotent, losing them is not).
    merge: Option<Vec<crate::ledger::SeatSnapshot>>,
    recovery_until: Option<Instant>,
    /// Serving, but the loop was paused: grants wait until this re-check.
    paused_at: Option<Instant>,
    serving_since: Option<Instant>,
    started: Instant,
    /// Witness mode: the witness link, and until when grants are allowed.
    witness: Option<WitnessLink>,
    lease_until: Option<Instant>,
    /// Witness mode: the standby is stale since this entry; answers
    /// without its acknowledgement wait until the witness records it.
    stale_pending: Option<u64>,
    /// Witness mode: the stale record the witness confirmed.
    stale_recorded: Option<u64>,
    /// Witness mode: the loop holds replies for acknowledgements again
    /// from this record on (it said so); the stale record may be cleared
    /// once the standby acknowledged it.
    holding_from: Option<u64>,
    backup_expired: bool,
    /// The takeover attempt after this silence was logged already.
    takeover_logged: bool,
    /// Witness mode: the witness records this (standby) server stale.
    witness_says_stale: bool,
    last_expired_log: Option<Instant>,
    backup_lost_logged: bool,
    digest_alerted: bool,
}

/// Starts the watchdog thread with its peer listener already bound.
pub fn spawn(
    settings: PairSettings,
    listener: TcpListener,
    start: Start,
    port: LoopPort,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    link::serve(listener, settings.secret.clone(), events_tx.clone())?;
    let settings_witness = settings.witness.is_some();
    let mut w = Watchdog {
        peer: PeerView {
            client_addr: settings.peer_client_addr.clone(),
            ..PeerView::default()
        },
        s: settings,
        port,
        state: PeerState::Starting,
        epoch: start.epoch,
        last: start.last,
        durable: start.last.seq,
        digest: start.digest,
        ring: Ring::new(RING_RECORDS),
        out: None,
        inbound: Vec::new(),
        events_tx,
        last_dial: None,
        follower: Follower::default(),
        sync_asked: None,
        handback_asked: None,
        handing_back: false,
        stepping_down: false,
        merge: None,
        recovery_until: None,
        paused_at: None,
        serving_since: None,
        started: Instant::now(),
        witness: settings_witness.then(WitnessLink::default),
        lease_until: None,
        stale_pending: None,
        stale_recorded: None,
        holding_from: None,
        backup_expired: false,
        takeover_logged: false,
        witness_says_stale: false,
        last_expired_log: None,
        backup_lost_logged: false,
        digest_alerted: false,
    };
    std::thread::Builder::new()
        .name("floatd-watchdog".into())
        .spawn(move || w.run(events_rx))
}

impl Watchdog {
    fn run(&mut self, events: Receiver<LinkEvent>) {
        let ticker = crossbeam_channel::tick(self.s.ping_interval.min(Duration::from_millis(100)));
        self.tell_role();
        let mut last_ping = Instant::now() - self.s.ping_interval;
        loop {
            select! {
                recv(self.port.from_loop) -> msg => match msg {
                    Ok(msg) => self.on_loop(msg),
                    Err(_) => return, // the server is stopping
                },
                recv(events) -> ev => {
                    if let Ok(ev) = ev {
                        self.on_link(ev);
                    }
                }
                recv(ticker) -> _ => {
                    if last_ping.elapsed() >= self.s.ping_interval {
                        last_ping = Instant::now();
                        self.ping();
                        self.report();
                    }
                    self.decide();
                    self.check_follower();
                }
            }
        }
    }

    // ----- talking to the loop --------------------------------------------

    fn to_loop(&self, msg: FromWatchdog) {
        if self.port.to_loop.send(msg).is_ok() {
            let _ = self.port.waker.wake();
        }
    }

    fn active_addr(&self) -> Option<String> {
        if self.state.is_serving() {
            None
        } else if self.peer.state.is_some_and(|s| s.is_serving()) {
            self.peer.client_addr.clone()
        } else {
            None
        }
    }

    fn tell_role(&mut self) {
        self.to_loop(FromWatchdog::Role {
            state: self.state,
            epoch: self.epoch,
            active: self.active_addr(),
        });
        self.report();
    }

    fn on_loop(&mut self, msg: ToWatchdog) {
        match msg {
            ToWatchdog::Records(records) => {
                let Some(last) = records.last() else { return };
                self.last = HistoryMark {
                    seq: last.seq,
                    epoch: last.epoch,
                };
                let first = records[0].seq;
                for r in &records {
                    self.ring.push(r.clone());
                }
                if (self.state.is_serving() || self.handing_back)
                    && self.follower.sent_upto == Some(first - 1)
                {
                    self.follower.sent_upto = Some(self.last.seq);
                    self.follower.unacked_since.get_or_insert(Instant::now());
                    self.send(&PeerMessage::Records { records });
                }
            }
            ToWatchdog::Durable(seq) => {
                if seq > self.durable {
                    self.durable = seq;
                    if !self.state.is_serving() {
                        self.send(&PeerMessage::Ack { seq });
                    }
                }
            }
            ToWatchdog::Snapshot(snapshot) => {
                if !self.follower.awaiting_snapshot {
                    return;
                }
                self.follower.awaiting_snapshot = false;
                let seq = snapshot.seq;
                self.send(&PeerMessage::Snapshot { snapshot });
                let tail = self
                    .ring
                    .after(HistoryMark {
                        seq,
                        epoch: self.ring_epoch_at(seq),
                    })
                    .unwrap_or_default();
                if !tail.is_empty() {
                    self.send(&PeerMessage::Records { records: tail });
                }
                self.follower.sent_upto = Some(self.last.seq.max(seq));
                self.follower.catchup_target = Some(self.last.seq.max(seq));
                self.follower.unacked_since = Some(Instant::now());
            }
            ToWatchdog::StoppedGranting(last) => {
                self.last = last;
                self.handing_back = false;
                log::info!(
                    "handing back to the primary after record {} (epoch {})",
                    last.seq,
                    self.epoch
                );
                self.send(&PeerMessage::HandedBack { last });
                self.become_standby();
            }
            ToWatchdog::Seats(seats) => {
                if self.stepping_down {
                    self.stepping_down = false;
                    log::warn!(
                        "stepping down: handing {} seat(s) to the other server, then syncing from it",
                        seats.len()
                    );
                    self.merge = Some(seats.clone());
                    self.send(&PeerMessage::Merge { seats });
                    // Our history diverged from the winner's (the same
                    // sequence numbers name other records): drop it and
                    // take the winner's whole.
                    self.last = HistoryMark::default();
                    self.durable = 0;
                    self.ring.clear();
                    self.to_loop(FromWatchdog::Reset(Snapshot {
                        seq: 0,
                        epoch: 0,
                        seats: Vec::new(),
                    }));
                    self.become_standby();
                    self.send(&PeerMessage::SyncFrom {
                        from: HistoryMark::default(),
                    });
                    self.sync_asked = Some(Instant::now());
                }
            }
            ToWatchdog::Digest(digest) => {
                self.digest = digest;
                self.digest_alerted = false;
            }
            ToWatchdog::HoldingFrom(seq) => {
                self.holding_from = Some(seq);
                self.follower_changed();
            }
            ToWatchdog::Paused => {
                if self.state.is_serving() {
                    log::warn!(
                        "this server was paused for longer than takeover_after: checking with the other server before granting again"
                    );
                    self.paused_at = Some(Instant::now());
                }
            }
        }
    }

    /// The epoch of the record at `seq` (0 if not held here).
    fn ring_epoch_at(&self, seq: u64) -> u64 {
        if seq == self.last.seq {
            return self.last.epoch;
        }
        self.ring.epoch_at(seq).unwrap_or(0)
    }

    // ----- the link ---------------------------------------------------------

    fn send(&mut self, message: &PeerMessage) {
        let Some(out) = &mut self.out else { return };
        if let Err(e) = out.send(message) {
            log::info!("peer link to {} lost: {e}", out.peer);
            self.link_down();
        }
    }

    fn link_down(&mut self) {
        self.out = None;
        self.sync_asked = None;
        if self.state.is_serving() {
            self.follower = Follower::default();
            self.follower_changed();
        }
    }

    /// Whether the loop must hold replies for the standby's acknowledgement.
    /// Two-server mode: while it is in sync. Witness mode: unless the
    /// witness has recorded it stale (every answer without an
    /// acknowledgement is then covered by that record).
    fn wait_for_acks(&self) -> bool {
        self.follower.in_sync || (self.s.witness.is_some() && self.stale_recorded.is_none())
    }

    /// Tells the loop how to release replies, after the follower or the
    /// stale record changed; in witness mode also keeps the stale record
    /// at the witness up to date.
    fn follower_changed(&mut self) {
        if !self.state.is_serving() {
            return;
        }
        if self.s.witness.is_some() {
            let caught_up = self.follower.in_sync
                && self.holding_from.is_some_and(|h| self.follower.acked >= h);
            if !caught_up && self.stale_recorded.is_none() && self.stale_pending.is_none() {
                let since = self
                    .follower
                    .acked
                    .max(self.peer.last.seq.min(self.last.seq));
                self.stale_pending = Some(since);
                log::warn!("standby not in sync (since record {since}): recording it stale at the witness before answering without it");
                self.ping_witness();
            } else if caught_up && (self.stale_recorded.is_some() || self.stale_pending.is_some()) {
                self.stale_recorded = None;
                self.stale_pending = None;
                log::info!("standby in sync: clearing its stale record at the witness");
                self.ping_witness();
            }
        }
        self.to_loop(FromWatchdog::Standby {
            wait_for_acks: self.wait_for_acks(),
            acked: self.follower.acked,
        });
    }

    fn ping(&mut self) {
        if self.out.is_none() {
            self.dial();
        }
        let (echo_ms, held_ms) = match self.peer.echo {
            Some((sent, at)) => (sent, at.elapsed().as_millis() as u64),
            None => (0, 0),
        };
        let heartbeat = PeerMessage::Heartbeat {
            state: self.state,
            epoch: self.epoch,
            last: self.last,
            client_addr: self.s.client_addr.clone(),
            digest: self.digest.clone(),
            sent_ms: self.started.elapsed().as_millis() as u64,
            echo_ms,
            held_ms,
            standby_in_sync: self.follower.in_sync,
        };
        self.send(&heartbeat);
        self.ping_witness();
    }

    // ----- the witness ------------------------------------------------------

    fn ping_witness(&mut self) {
        let Some(addr) = self.s.witness.clone() else {
            return;
        };
        let stale_since = self.stale_record();
        let role = self.s.role.as_str().to_string();
        let (state, epoch, last) = (self.state, self.epoch, self.last);
        let hello = PeerMessage::Hello {
            role: role.clone(),
            format: FORMAT_VERSION,
        };
        let timeout = self
            .s
            .ping_interval
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        let events = self.events_tx.clone();
        let secret = self.s.secret.clone();
        let w = self.witness.as_mut().expect("witness mode");
        if w.out.is_none()
            && w.last_dial
                .is_none_or(|t| t.elapsed() >= self.s.ping_interval)
        {
            w.last_dial = Some(Instant::now());
            match link::dial(&addr, &secret, &hello, timeout, events) {
                Ok(link) => {
                    log::info!("witness link to {addr} up");
                    w.out = Some(link);
                }
                Err(e) => log::debug!("witness link to {addr}: {e}"),
            }
        }
        w.next_id += 1;
        let id = w.next_id;
        let ping = PeerMessage::WitnessPing {
            id,
            role,
            state,
            epoch,
            last,
            stale_since,
        };
        if let Some(out) = &mut w.out {
            if out.send(&ping).is_ok() {
                w.pings.push_back((id, Instant::now()));
                while w.pings.len() > 64 {
                    w.pings.pop_front();
                }
            } else {
                log::info!("witness link to {addr} lost");
                w.out = None;
            }
        }
    }

    /// What the witness should record about our standby (serving only).
    fn stale_record(&self) -> Option<u64> {
        if !self.state.is_serving() {
            return None;
        }
        self.stale_pending.or(self.stale_recorded)
    }

    fn witness_reachable(&self) -> bool {
        self.witness
            .as_ref()
            .and_then(|w| w.view.as_ref())
            .is_some_and(|v| v.4.elapsed() < self.s.takeover_after)
    }

    /// Extends the grant lease: the other side heard us at `sent` or later,
    /// so it cannot act on our silence before `sent + takeover_after`.
    fn renew_lease(&mut self, sent: Instant) {
        if self.s.witness.is_none() {
            return;
        }
        let until = sent + self.s.fence_after;
        if self.lease_until.is_none_or(|u| until > u) {
            self.lease_until = Some(until);
            self.to_loop(FromWatchdog::GrantLease(until));
        }
    }

    fn on_witness(&mut self, message: PeerMessage) {
        match message {
            PeerMessage::WitnessView {
                id,
                active,
                epoch,
                stale_since,
                learning,
            } => {
                let w = self.witness.as_mut().expect("witness mode");
                let sent = w.pings.iter().find(|(i, _)| *i == id).map(|(_, t)| *t);
                w.pings.retain(|(i, _)| *i > id);
                w.view = Some((active.clone(), epoch, stale_since, learning, Instant::now()));
                if let Some(sent) = sent {
                    self.renew_lease(sent);
                }
                if let (Some(n), Some(recorded)) = (self.stale_pending, stale_since) {
                    if recorded == n && self.state.is_serving() {
                        self.stale_pending = None;
                        self.stale_recorded = Some(n);
                        log::warn!(
                            "the witness records the standby stale since entry {n}: carrying on without its acknowledgement"
                        );
                        self.follower_changed();
                    }
                }
                let other = match self.s.role {
                    Role::Primary => "backup",
                    _ => "primary",
                };
                // A standby that cannot hear the active server learns here
                // that it no longer counts as in sync.
                if self.state == PeerState::Ready && active == other && stale_since.is_some() {
                    log::warn!("the witness records this standby stale: no longer in sync");
                    self.state = PeerState::Syncing;
                    self.tell_role();
                }
                self.witness_says_stale = active == other && stale_since.is_some();
                if self.state.is_serving()
                    && active == other
                    && epoch > self.epoch
                    && !self.stepping_down
                {
                    log::warn!(
                        "the witness records the {other} active at epoch {epoch}: this server (epoch {}) was replaced and steps down",
                        self.epoch
                    );
                    self.stepping_down = true;
                    self.to_loop(FromWatchdog::StepDown {
                        active: self.peer.client_addr.clone(),
                    });
                }
            }
            PeerMessage::ClaimResult {
                id,
                granted,
                recovery,
                why,
            } => {
                let w = self.witness.as_mut().expect("witness mode");
                let Some((claim_id, epoch, sent)) = w.claim else {
                    return;
                };
                if claim_id != id {
                    return;
                }
                if !granted {
                    // Keep the claim's time so the next one waits a while.
                    w.claim = Some((0, epoch, Instant::now()));
                    if w.last_refusal.as_deref() != Some(why.as_str()) {
                        log::info!("the witness refused this server becoming active: {why}");
                        w.last_refusal = Some(why);
                    }
                    return;
                }
                w.claim = None;
                w.last_refusal = None;
                if self.state.is_serving() {
                    return;
                }
                self.renew_lease(sent);
                self.become_active(epoch, !recovery);
            }
            _ => {}
        }
    }

    fn dial(&mut self) {
        if self
            .last_dial
            .is_some_and(|t| t.elapsed() < self.s.ping_interval)
        {
            return;
        }
        self.last_dial = Some(Instant::now());
        let hello = PeerMessage::Hello {
            role: self.s.role.as_str().to_string(),
            format: FORMAT_VERSION,
        };
        let timeout = self
            .s
            .ping_interval
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        match link::dial(
            &self.s.peer,
            &self.s.secret,
            &hello,
            timeout,
            self.events_tx.clone(),
        ) {
            Ok(w) => {
                log::info!("peer link to {} up", self.s.peer);
                self.out = Some(w);
                self.follower = Follower::default();
                self.sync_asked = None;
                if let Some(seats) = self.merge.clone() {
                    self.send(&PeerMessage::Merge { seats });
                }
            }
            Err(e) => log::debug!("peer link to {}: {e}", self.s.peer),
        }
    }

    fn on_link(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Accepted(w) => {
                // The other server dialled (again) and proved the secret.
                if self.inbound.len() >= MAX_INBOUND {
                    self.inbound.remove(0);
                }
                self.inbound.push(w);
            }
            LinkEvent::Closed { link, why } => {
                if let Some(w) = self.witness.as_mut() {
                    if w.out.as_ref().is_some_and(|o| o.id == link) {
                        log::info!("witness link closed: {why}");
                        w.out = None;
                        return;
                    }
                }
                if self.out.as_ref().is_some_and(|w| w.id == link) {
                    log::info!("peer link to {} closed: {why}", self.s.peer);
                    self.link_down();
                } else {
                    self.inbound.retain(|w| w.id != link);
                }
            }
            LinkEvent::Message { link, message } => {
                let from_witness = self
                    .witness
                    .as_ref()
                    .is_some_and(|w| w.out.as_ref().is_some_and(|o| o.id == link));
                if from_witness {
                    self.on_witness(message);
                    return;
                }
                if self.inbound.iter().any(|w| w.id == link) {
                    self.on_message(message);
                }
            }
        }
    }

    fn on_message(&mut self, message: PeerMessage) {
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
                standby_in_sync,
            } => {
                let now = Instant::now();
                if echo_ms > 0 {
                    let mine = self.started.elapsed().as_millis() as u64;
                    self.peer.rtt_ms = Some(mine.saturating_sub(echo_ms).saturating_sub(held_ms));
                    // The standby heard our heartbeat sent at echo_ms.
                    if !state.is_serving() {
                        self.renew_lease(self.started + Duration::from_millis(echo_ms));
                    }
                }
                self.peer.echo = Some((sent_ms, now));
                let first_contact = self
                    .peer
                    .last_heard
                    .is_none_or(|t| t.elapsed() > self.s.takeover_after);
                self.peer.last_heard = Some(now);
                self.peer.state = Some(state);
                self.peer.epoch = epoch;
                self.peer.last = last;
                self.peer.counts_us_in_sync = standby_in_sync;
                self.peer.client_addr = Some(client_addr);
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
                if first_contact {
                    log::info!(
                        "heard from the other server: {} at epoch {epoch}, record {}",
                        state.as_str(),
                        last.seq
                    );
                }
                self.decide();
            }
            PeerMessage::Records { records } => self.on_records(records),
            PeerMessage::Ack { seq } => {
                if !self.state.is_serving() && !self.handing_back {
                    return;
                }
                self.follower.acked = self.follower.acked.max(seq);
                if self
                    .follower
                    .sent_upto
                    .is_some_and(|s| self.follower.acked >= s)
                {
                    self.follower.unacked_since = None;
                } else if self.follower.unacked_since.is_some() {
                    self.follower.unacked_since = Some(Instant::now());
                }
                let caught_up = self
                    .follower
                    .catchup_target
                    .is_some_and(|t| self.follower.acked >= t);
                if !self.follower.in_sync && caught_up {
                    self.follower.in_sync = true;
                    self.holding_from = None;
                    log::info!("standby in sync at record {}", self.follower.acked);
                }
                self.follower_changed();
            }
            PeerMessage::SyncFrom { from } => self.on_sync_from(from),
            PeerMessage::Snapshot { snapshot } => {
                if self.state.is_serving() {
                    log::warn!("ignoring a snapshot from the other server while serving");
                    return;
                }
                log::info!(
                    "installing the active server's snapshot at record {}",
                    snapshot.seq
                );
                self.last = HistoryMark {
                    seq: snapshot.seq,
                    epoch: snapshot.epoch,
                };
                self.ring.clear();
                self.durable = 0;
                self.to_loop(FromWatchdog::Reset(snapshot));
            }
            PeerMessage::HandbackRequest => {
                let primary_caught_up = self.follower.in_sync;
                if self.s.role == Role::Backup && self.state.is_serving() && primary_caught_up {
                    log::info!("the primary is back and in sync: handing back");
                    self.handing_back = true;
                    self.to_loop(FromWatchdog::StopGranting {
                        active: self.peer.client_addr.clone(),
                    });
                }
            }
            PeerMessage::HandedBack { last } => {
                if self.s.role == Role::Primary && !self.state.is_serving() {
                    if self.last.seq >= last.seq {
                        log::info!("the backup handed back at record {}: taking over", last.seq);
                        self.activate(true);
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
            PeerMessage::WitnessPing { .. }
            | PeerMessage::WitnessView { .. }
            | PeerMessage::Claim { .. }
            | PeerMessage::ClaimResult { .. } => {}
            PeerMessage::Merge { seats } => {
                if self.state.is_serving() {
                    log::warn!(
                        "the other server hands over {} seat(s) it granted while the pair was split",
                        seats.len()
                    );
                    self.to_loop(FromWatchdog::Merge(seats));
                }
            }
        }
    }

    /// Standby: records from the active server.
    fn on_records(&mut self, records: Vec<crate::ledger::Record>) {
        if self.state.is_serving() {
            return;
        }
        let fresh: Vec<_> = records
            .into_iter()
            .filter(|r| r.seq > self.last.seq)
            .collect();
        let Some(first) = fresh.first() else { return };
        if first.seq != self.last.seq + 1 {
            log::warn!(
                "gap in replication (have {}, got {}): asking again",
                self.last.seq,
                first.seq
            );
            if self.state == PeerState::Ready {
                self.state = PeerState::Syncing;
                self.tell_role();
            }
            self.send(&PeerMessage::SyncFrom { from: self.last });
            return;
        }
        let last = fresh.last().expect("non-empty");
        self.last = HistoryMark {
            seq: last.seq,
            epoch: last.epoch,
        };
        for r in &fresh {
            self.ring.push(r.clone());
        }
        self.to_loop(FromWatchdog::Apply(fresh));
    }

    /// A standby (or a primary about to take back) asks for our history.
    fn on_sync_from(&mut self, from: HistoryMark) {
        self.follower = Follower {
            catchup_target: Some(self.last.seq),
            ..Follower::default()
        };
        if from == self.last {
            self.follower.sent_upto = Some(self.last.seq);
            self.follower.acked = from.seq;
            if self.state.is_serving() || self.handing_back {
                self.follower.in_sync = true;
                self.holding_from = None;
                log::info!("standby in sync at record {}", from.seq);
                self.follower_changed();
            }
        } else if let Some(tail) = self.ring.after(from) {
            log::info!(
                "standby catching up from the journal tail: {} record(s) after {}",
                tail.len(),
                from.seq
            );
            self.follower.sent_upto = Some(self.last.seq);
            self.follower.unacked_since = Some(Instant::now());
            self.send(&PeerMessage::Records { records: tail });
        } else {
            log::info!(
                "standby at record {} (epoch {}) cannot continue from our journal tail: sending a snapshot",
                from.seq,
                from.epoch
            );
            self.follower.awaiting_snapshot = true;
            self.to_loop(FromWatchdog::SendSnapshot);
        }
    }

    // ----- decisions --------------------------------------------------------

    fn peer_alive(&self) -> bool {
        self.peer
            .last_heard
            .is_some_and(|t| t.elapsed() < self.s.takeover_after)
    }

    fn decide(&mut self) {
        let alive = self.peer_alive();
        let peer_serving = alive && self.peer.state.is_some_and(|s| s.is_serving());
        match self.state {
            PeerState::Starting => {
                if peer_serving {
                    self.become_standby();
                } else if alive {
                    // Both standing by: the primary leads, from the longer history.
                    if self.s.role == Role::Primary {
                        if newer(self.peer.last, self.last) {
                            self.become_standby();
                        } else {
                            self.activate(true);
                        }
                    }
                } else if self.started.elapsed() >= self.s.takeover_after {
                    if self.takeover_logged {
                        self.activate(false);
                        return;
                    }
                    self.takeover_logged = true;
                    log::warn!(
                        "the other server ({}) did not answer for {:?}: serving alone",
                        self.s.peer,
                        self.s.takeover_after
                    );
                    self.activate(false);
                }
            }
            PeerState::Syncing | PeerState::Ready => {
                if !alive {
                    if self.started.elapsed() >= self.s.takeover_after {
                        let in_sync = self.state == PeerState::Ready;
                        if !self.takeover_logged {
                            self.takeover_logged = true;
                            log::warn!(
                                "no word from the active server for {:?}: taking over ({})",
                                self.s.takeover_after,
                                if in_sync {
                                    "in sync"
                                } else {
                                    "not in sync: recovery period first"
                                }
                            );
                        }
                        self.activate(in_sync);
                    }
                    return;
                }
                self.takeover_logged = false;
                // Ask (again, if asking led nowhere: the request may have
                // met the other server between two roles).
                let ask_again = self.sync_asked.is_none_or(|t| {
                    self.state == PeerState::Syncing && t.elapsed() >= self.s.takeover_after
                });
                if ask_again && self.out.is_some() {
                    self.sync_asked = Some(Instant::now());
                    self.send(&PeerMessage::SyncFrom { from: self.last });
                }
                // In sync is what the active server says: only it knows
                // whether it waits for our acknowledgements.
                if peer_serving {
                    // In witness mode the witness must agree: the active
                    // server may have recorded us stale there.
                    let in_sync = self.peer.counts_us_in_sync && !self.witness_says_stale;
                    if self.state == PeerState::Syncing && in_sync {
                        self.merge = None;
                        self.state = PeerState::Ready;
                        log::info!("in sync with the active server at record {}", self.last.seq);
                        self.tell_role();
                    } else if self.state == PeerState::Ready && !in_sync {
                        self.state = PeerState::Syncing;
                        log::warn!("the active server no longer counts this standby in sync");
                        self.tell_role();
                    }
                }
                if !peer_serving {
                    // The other server stopped serving (handing back to us,
                    // or starting): the primary leads when it is caught up.
                    if self.s.role == Role::Primary && !newer(self.peer.last, self.last) {
                        self.activate(
                            self.state == PeerState::Ready || self.last == self.peer.last,
                        );
                    }
                } else if self.s.role == Role::Primary && self.state == PeerState::Ready {
                    let due = self
                        .handback_asked
                        .is_none_or(|t| t.elapsed() >= self.s.takeover_after);
                    if due {
                        self.handback_asked = Some(Instant::now());
                        log::info!("in sync with the active backup: asking it to hand back");
                        self.send(&PeerMessage::HandbackRequest);
                    }
                }
            }
            PeerState::Active | PeerState::Recovering => {
                if self
                    .recovery_until
                    .is_some_and(|until| Instant::now() >= until)
                {
                    self.recovery_until = None;
                    self.state = PeerState::Active;
                    log::info!("recovery period over: granting new seats");
                    self.tell_role();
                }
                if let Some(paused) = self.paused_at {
                    let heard_since = self.peer.last_heard.is_some_and(|t| t > paused);
                    if heard_since && peer_serving && self.loses_to_peer() {
                        self.paused_at = None; // stepping down below
                    } else if heard_since || paused.elapsed() >= self.s.takeover_after {
                        self.paused_at = None;
                        log::info!("re-checked after the pause: still the active server");
                        self.tell_role();
                    }
                }
                if peer_serving && !self.stepping_down && self.loses_to_peer() {
                    log::warn!(
                        "both servers are active (the link was cut): the other one (epoch {}) stays, this one (epoch {}) steps down",
                        self.peer.epoch,
                        self.epoch
                    );
                    self.stepping_down = true;
                    self.to_loop(FromWatchdog::StepDown {
                        active: self.peer.client_addr.clone(),
                    });
                }
                self.check_limits();
            }
        }
    }

    /// When both serve, the higher epoch stays (a tie goes to the primary).
    fn loses_to_peer(&self) -> bool {
        let me_primary = self.s.role == Role::Primary;
        (self.peer.epoch, !me_primary) > (self.epoch, me_primary)
    }

    /// Becomes active: at once in two-server mode, with the witness's
    /// consent in witness mode (which also decides whether a recovery
    /// period is needed).
    fn activate(&mut self, in_sync: bool) {
        let witness_epoch = self
            .witness
            .as_ref()
            .and_then(|w| w.view.as_ref())
            .map_or(0, |v| v.1);
        let epoch = next_epoch(
            self.s.role,
            self.epoch
                .max(self.peer.epoch)
                .max(self.last.epoch)
                .max(witness_epoch),
        );
        let Some(w) = self.witness.as_mut() else {
            self.become_active(epoch, in_sync);
            return;
        };
        // One claim at a time; after a refusal, ask again a few pings later.
        let pending = w.claim.is_some_and(|(id, _, t)| {
            let wait = if id == 0 {
                self.s.ping_interval * 5
            } else {
                self.s.takeover_after
            };
            t.elapsed() < wait
        });
        if pending {
            return;
        }
        let Some(out) = &mut w.out else {
            log::debug!("cannot ask the witness: no link");
            return;
        };
        w.next_id += 1;
        let id = w.next_id;
        let claim = PeerMessage::Claim {
            id,
            role: self.s.role.as_str().to_string(),
            epoch,
            last: self.last,
        };
        if out.send(&claim).is_ok() {
            log::debug!("asking the witness to become active at epoch {epoch}");
            w.claim = Some((id, epoch, Instant::now()));
        } else {
            w.out = None;
        }
    }

    fn become_active(&mut self, epoch: u64, in_sync: bool) {
        self.epoch = epoch;
        self.handback_asked = None;
        // Keep a catch-up the standby already asked for (it may have asked
        // just before we took over); it is not in sync with this reign yet.
        self.follower.in_sync = false;
        self.follower.unacked_since = None;
        // The witness cleared any stale record when it consented.
        self.stale_pending = None;
        self.stale_recorded = None;
        self.holding_from = None;
        self.serving_since = Some(Instant::now());
        if in_sync {
            self.state = PeerState::Active;
            self.recovery_until = None;
        } else {
            self.state = PeerState::Recovering;
            self.recovery_until = Some(Instant::now() + self.s.lease);
        }
        log::warn!(
            "now {} as {} at epoch {}",
            self.state.as_str(),
            self.s.role,
            self.epoch
        );
        self.tell_role();
        self.follower_changed();
    }

    fn become_standby(&mut self) {
        self.state = PeerState::Syncing;
        self.serving_since = None;
        self.recovery_until = None;
        self.follower = Follower::default();
        self.stale_pending = None;
        self.stale_recorded = None;
        self.holding_from = None;
        self.sync_asked = None;
        self.handback_asked = None;
        if self.backup_expired {
            self.backup_expired = false;
            self.to_loop(FromWatchdog::BackupExpired(false));
        }
        log::info!(
            "standing by for the active server (record {})",
            self.last.seq
        );
        self.tell_role();
    }

    /// Active: declares the standby stale when it stops acknowledging.
    fn check_follower(&mut self) {
        if !self.state.is_serving() || !self.follower.in_sync {
            return;
        }
        let late = self
            .follower
            .unacked_since
            .is_some_and(|t| t.elapsed() > self.s.sync_timeout);
        if late || !self.peer_alive() {
            self.follower.in_sync = false;
            if self.s.witness.is_none() {
                log::warn!(
                    "standby stale since record {}: carrying on without its acknowledgement",
                    self.follower.acked
                );
            }
            self.follower_changed();
        }
    }

    /// backup_max_days and backup_lost_after.
    fn check_limits(&mut self) {
        if self.s.role == Role::Backup {
            let over = self
                .serving_since
                .is_some_and(|t| t.elapsed() >= self.s.backup_max);
            if over && !self.backup_expired {
                self.backup_expired = true;
                self.to_loop(FromWatchdog::BackupExpired(true));
            }
            if over
                && self
                    .last_expired_log
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(86_400))
            {
                self.last_expired_log = Some(Instant::now());
                log::error!(
                    "this backup has served alone for {:?} (backup_max_days): it refuses new checkouts until the primary returns",
                    self.s.backup_max
                );
            }
        }
    }

    fn backup_lost(&self) -> bool {
        self.s.role == Role::Primary
            && self.peer.last_heard.unwrap_or(self.started).elapsed() >= self.s.backup_lost_after
    }

    fn report(&mut self) {
        let lost = self.backup_lost();
        if lost && !self.backup_lost_logged {
            self.backup_lost_logged = true;
            log::error!(
                "the backup ({}) has not been seen for {:?} (backup_lost_after): no longer advertised to clients",
                self.s.peer,
                self.s.backup_lost_after
            );
        } else if !lost && self.backup_lost_logged {
            self.backup_lost_logged = false;
            log::info!("the backup is back: advertised to clients again");
        }
        let me = ServerStatus {
            addr: self.s.client_addr.clone(),
            role: self.s.role.as_str().to_string(),
            state: self.state.as_str().to_string(),
            // A standby shows the epoch of the history it follows.
            epoch: self.epoch.max(self.last.epoch),
            last_contact_ms: None,
            lag: None,
            rtt_ms: None,
        };
        let peer_role = match self.s.role {
            Role::Primary => "backup",
            _ => "primary",
        };
        let alive = self.peer_alive();
        let lag = if self.state.is_serving() && alive {
            Some(self.last.seq.saturating_sub(self.follower.acked))
        } else if alive {
            Some(self.peer.last.seq.saturating_sub(self.last.seq))
        } else {
            None
        };
        let peer = ServerStatus {
            addr: self
                .peer
                .client_addr
                .clone()
                .unwrap_or_else(|| self.s.peer.clone()),
            role: peer_role.to_string(),
            state: match (alive, self.peer.state) {
                (true, Some(s)) => s.as_str().to_string(),
                _ => "inaccessible".to_string(),
            },
            epoch: self.peer.epoch.max(self.peer.last.epoch),
            last_contact_ms: self.peer.last_heard.map(|t| t.elapsed().as_millis() as u64),
            lag,
            rtt_ms: if alive { self.peer.rtt_ms } else { None },
        };
        let mut alerts = Vec::new();
        if alive && self.peer.digest != self.digest {
            alerts.push(
                "the other server serves different licences or options: make them identical".into(),
            );
        }
        if lost {
            alerts.push(format!(
                "the backup has not been seen for {:?}: no longer advertised",
                self.s.backup_lost_after
            ));
        }
        if self.backup_expired {
            alerts.push(
                "the backup has served alone past backup_max_days: new checkouts refused".into(),
            );
        }
        if self.state.is_serving() && alive && !self.follower.in_sync {
            alerts.push("the standby is not in sync".into());
        }
        let witness = self.s.witness.as_ref().map(|addr| {
            let view = self.witness.as_ref().and_then(|w| w.view.as_ref());
            WitnessStatus {
                addr: addr.clone(),
                state: if self.witness_reachable() {
                    "reachable".into()
                } else {
                    "inaccessible".into()
                },
                active: view.map(|v| v.0.clone()).unwrap_or_default(),
                epoch: view.map_or(0, |v| v.1),
                stale_since: view.and_then(|v| v.2),
            }
        });
        if witness.as_ref().is_some_and(|w| w.state != "reachable") {
            alerts.push("the witness is out of reach".into());
        }
        if self.s.witness.is_some()
            && self.state.is_serving()
            && self.lease_until.is_none_or(|u| Instant::now() >= u)
        {
            alerts.push(
                "no grant lease: neither the standby nor the witness confirms this server; not granting".into(),
            );
        }
        self.to_loop(FromWatchdog::Status(PairStatus {
            servers: vec![me, peer],
            witness,
            alerts,
            advertise_peer: if lost {
                None
            } else {
                self.peer.client_addr.clone()
            },
        }));
    }
}

/// True when history `a` is ahead of `b`.
fn newer(a: HistoryMark, b: HistoryMark) -> bool {
    (a.epoch, a.seq) > (b.epoch, b.seq)
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}
