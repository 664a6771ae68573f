//! Witness mode: the witness link, the grant lease, the stale record and
//! claims (docs/FAILOVER.md, "Witness mode").
//!
//! - Both servers ping the witness every ping interval; its answer to a
//!   ping sent at `t` proves it heard this server at `t` or later, so it
//!   cannot consent to the other server taking over before
//!   `t + takeover_after`: the active server may grant until
//!   `t + fence_after` (the grant lease), and so may an answer of the
//!   standby to a heartbeat sent at `t`.
//! - An active server whose standby stops acknowledging first records
//!   "standby stale since entry N" at the witness, and answers grants
//!   without the standby only once the witness confirmed it.
//! - Nobody becomes active without the witness's consent (a claim).

use super::{FromWatchdog, RoleMachine};
use crate::config::Role;
use crate::protocol::peer::{PeerMessage, PeerState};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Pings remembered while their answers are due.
const PINGS_KEPT: usize = 64;

/// A ping sent to the witness and not answered yet.
struct SentPing {
    id: u64,
    sent: Instant,
}

/// What the witness last said.
struct WitnessView {
    /// The server it records as active, if any.
    active: Option<Role>,
    epoch: u64,
    stale_since: Option<u64>,
    /// Awake time at which it said so.
    heard_awake: Duration,
}

/// This server's request to become active.
enum Claim {
    /// Asked, not answered yet.
    Asked { id: u64, epoch: u64, sent: Instant },
    /// Refused; ask again a ping later.
    Refused { at: Instant },
}

/// The witness as one server of the pair sees it.
#[derive(Default)]
pub(super) struct Fence {
    link_up: bool,
    last_dial: Option<Instant>,
    next_id: u64,
    pings: VecDeque<SentPing>,
    view: Option<WitnessView>,
    claim: Option<Claim>,
    /// The last refusal's reason, logged once until it changes.
    last_refusal: Option<String>,
    /// Grants are allowed until then.
    pub lease_until: Option<Instant>,
    /// The lease was ended early at this time (cut off); answers to pings
    /// sent before it renew nothing.
    lease_ended: Option<Instant>,
    /// The standby is stale since this entry; answers without its
    /// acknowledgement wait until the witness records it.
    stale_pending: Option<u64>,
    /// The stale record the witness confirmed.
    pub stale_recorded: Option<u64>,
    /// The loop holds replies for acknowledgements again from this record
    /// on; the stale record may be cleared once the standby acknowledged it.
    pub holding_from: Option<u64>,
    /// The witness records this (standby) server stale.
    pub says_stale: bool,
    /// This process's incarnation, sent with every ping and claim.
    incarnation: u64,
    /// The last claim whose answer is settled here, told back in every
    /// ping (sent as `granted_claim`): heard, or given up on.
    settled_claim: u64,
}

impl Fence {
    pub fn new(incarnation: u64) -> Fence {
        Fence {
            incarnation,
            ..Fence::default()
        }
    }

    /// The epoch the witness records for the active server (0 if none).
    pub fn recorded_epoch(&self) -> u64 {
        self.view.as_ref().map_or(0, |v| v.epoch)
    }

    pub fn clear_stale(&mut self) {
        self.stale_pending = None;
        self.stale_recorded = None;
        self.holding_from = None;
    }
}

impl RoleMachine {
    pub(super) fn on_witness_link(&mut self, up: bool) {
        let Some(f) = &mut self.fence else { return };
        if f.link_up != up {
            let addr = self.s.witness.as_deref().unwrap_or("?");
            if up {
                log::info!("witness link to {addr} up");
            } else {
                log::info!("witness link to {addr} down");
            }
        }
        f.link_up = up;
        if !up {
            f.pings.clear();
            self.end_lease_if_cut_off(self.now);
        }
    }

    /// Serving, with the connections to both the other server and the
    /// witness closed: the grant lease ends now. Those closes are what the
    /// other two take for this server's death when they take over early
    /// (docs/FAILOVER.md, "Early takeover"), so it must not grant on.
    pub(super) fn end_lease_if_cut_off(&mut self, now: Instant) {
        let cut_off = self.state.is_serving() && !self.link_up;
        let Some(f) = &mut self.fence else { return };
        if !cut_off || f.link_up {
            return;
        }
        f.lease_ended = Some(now);
        if f.lease_until.is_some_and(|u| u > now) {
            f.lease_until = Some(now);
            log::warn!(
                "the links to the other server and to the witness both closed: granting nothing until the witness answers again"
            );
            self.tell_loop(FromWatchdog::GrantLease(now));
        }
    }

    /// Pings the witness (dialling it first if needed).
    pub(super) fn ping_witness(&mut self, now: Instant) {
        let stale_since = self.stale_record();
        let (role, state, epoch, last) = (self.s.role, self.state, self.epoch, self.last);
        let ping_interval = self.s.ping_interval;
        let fence_after = self.s.fence_after;
        let Some(f) = &mut self.fence else { return };
        // A claim unanswered for a grant lease is given up on: a consent
        // arriving later is declined (on_claim_result), so the witness may
        // believe this server's state again instead of waiting for ever.
        if let Some(Claim::Asked { id, sent, .. }) = f.claim {
            if now.saturating_duration_since(sent) >= fence_after {
                f.settled_claim = f.settled_claim.max(id);
            }
        }
        if !f.link_up
            && f.last_dial
                .is_none_or(|t| now.saturating_duration_since(t) >= ping_interval)
        {
            f.last_dial = Some(now);
            self.out.push(super::Action::DialWitness);
        }
        if !f.link_up {
            return;
        }
        f.next_id += 1;
        let id = f.next_id;
        f.pings.push_back(SentPing { id, sent: now });
        while f.pings.len() > PINGS_KEPT {
            f.pings.pop_front();
        }
        self.out
            .push(super::Action::ToWitness(PeerMessage::WitnessPing {
                id,
                role: role.as_str().to_string(),
                state,
                epoch,
                last,
                stale_since,
                incarnation: f.incarnation,
                granted_claim: f.settled_claim,
            }));
    }

    /// What the witness should record about our standby (serving only).
    fn stale_record(&self) -> Option<u64> {
        if !self.state.is_serving() {
            return None;
        }
        let f = self.fence.as_ref()?;
        f.stale_pending.or(f.stale_recorded)
    }

    pub(super) fn witness_reachable(&self) -> bool {
        self.fence
            .as_ref()
            .and_then(|f| f.view.as_ref())
            .is_some_and(|v| self.clock.since(v.heard_awake) < self.s.takeover_after)
    }

    /// Extends the grant lease: the other side heard us at `sent` or later,
    /// so it cannot act on our silence before `sent + takeover_after`.
    pub(super) fn renew_lease(&mut self, sent: Instant) {
        let fence_after = self.s.fence_after;
        let Some(f) = &mut self.fence else { return };
        if f.lease_ended.is_some_and(|ended| sent <= ended) {
            return;
        }
        let until = sent + fence_after;
        if f.lease_until.is_none_or(|u| until > u) {
            f.lease_until = Some(until);
            self.tell_loop(FromWatchdog::GrantLease(until));
        }
    }

    /// Keeps the stale record at the witness in step with the follower:
    /// set before answering without the standby, cleared once it caught up.
    pub(super) fn update_stale_record(&mut self) {
        let (in_sync, acked) = (self.follower.in_sync, self.follower.acked);
        let peer_last = self.peer.last.seq.min(self.last.seq);
        let Some(f) = &mut self.fence else { return };
        let caught_up = in_sync && f.holding_from.is_some_and(|h| acked >= h);
        let recorded = f.stale_recorded.is_some() || f.stale_pending.is_some();
        if !caught_up && !recorded {
            let since = acked.max(peer_last);
            f.stale_pending = Some(since);
            log::warn!("standby not in sync (since record {since}): recording it stale at the witness before answering without it");
        } else if caught_up && recorded {
            f.stale_recorded = None;
            f.stale_pending = None;
            log::info!("standby in sync: clearing its stale record at the witness");
        } else {
            return;
        }
        // Tell the witness now rather than at the next ping.
        self.ping_witness(self.now);
    }

    pub(super) fn on_witness(&mut self, message: PeerMessage, now: Instant) {
        match message {
            PeerMessage::WitnessView {
                id,
                active,
                epoch,
                stale_since,
                learning: _,
            } => self.on_witness_view(id, &active, epoch, stale_since),
            PeerMessage::ClaimResult {
                id,
                granted,
                recovery,
                why,
            } => self.on_claim_result(id, granted, recovery, why, now),
            _ => {}
        }
    }

    fn on_witness_view(&mut self, id: u64, active: &str, epoch: u64, stale_since: Option<u64>) {
        let heard_awake = self.clock.now();
        let other = self.s.role.other();
        let serving = self.state.is_serving();
        let my_epoch = self.epoch;
        let Some(f) = &mut self.fence else { return };
        let sent = f.pings.iter().find(|p| p.id == id).map(|p| p.sent);
        f.pings.retain(|p| p.id > id);
        let active = Role::parse(active).ok();
        f.view = Some(WitnessView {
            active,
            epoch,
            stale_since,
            heard_awake,
        });
        // The answer speaks for this server only while the witness still
        // records it as the active one at its epoch: a ping delayed in the
        // network may be answered after the witness let the other take
        // over, and then it proves nothing.
        let records_me = serving && active == Some(self.s.role) && epoch == my_epoch;
        let mut confirmed = false;
        if let (Some(n), Some(recorded)) = (f.stale_pending, stale_since) {
            if recorded == n && records_me {
                f.stale_pending = None;
                f.stale_recorded = Some(n);
                confirmed = true;
                log::warn!(
                    "the witness records the standby stale since entry {n}: carrying on without its acknowledgement"
                );
            }
        }
        let other_active = active == Some(other);
        f.says_stale = other_active && stale_since.is_some();
        if let (Some(sent), true) = (sent, records_me) {
            self.renew_lease(sent);
        }
        if confirmed {
            self.follower_changed();
        }
        // A standby that cannot hear the active server learns here that
        // it no longer counts as in sync.
        if self.state == PeerState::Ready && other_active && stale_since.is_some() {
            log::warn!("the witness records this standby stale: no longer in sync");
            self.state = PeerState::Syncing;
        }
        if serving && other_active && epoch > self.epoch && !self.stepping_down {
            log::warn!(
                "the witness records the {other} active at epoch {epoch}: this server (epoch {}) was replaced and steps down",
                self.epoch
            );
            self.step_down();
        }
    }

    fn on_claim_result(
        &mut self,
        id: u64,
        granted: bool,
        recovery: bool,
        why: String,
        now: Instant,
    ) {
        let serving = self.state.is_serving();
        let Some(f) = &mut self.fence else { return };
        let Some(Claim::Asked {
            id: asked,
            epoch,
            sent,
        }) = f.claim
        else {
            return;
        };
        if asked != id {
            return;
        }
        if !granted {
            f.claim = Some(Claim::Refused { at: now });
            if f.last_refusal.as_deref() != Some(why.as_str()) {
                log::info!("the witness refused this server becoming active: {why}");
                f.last_refusal = Some(why);
            }
            return;
        }
        f.claim = None;
        f.last_refusal = None;
        f.settled_claim = id;
        if serving || !self.can_serve {
            return; // its next ping tells the witness it does not serve
        }
        // An answer that took longer than a grant lease (a witness or this
        // server paused meanwhile) is old news: the witness may have let
        // the other server take over since. Claim again if still needed.
        if now.saturating_duration_since(sent) >= self.s.fence_after {
            log::warn!("the witness's consent came too late to rely on: claiming again");
            return;
        }
        // The other server spoke since the claim was made: this standby
        // may have renewed its grant lease (echoing it), and promised not
        // to take over for takeover_after. It stands by; its next ping
        // tells the witness so, and the other server claims again.
        if self.peer.heard_at.is_some_and(|t| t > sent) && self.peer_serving() {
            log::warn!(
                "the witness consented, but the active server spoke since the claim: standing by"
            );
            return;
        }
        self.renew_lease(sent);
        self.become_active(epoch, !recovery, now);
    }

    /// Asks the witness to let this server become active at `epoch`. One
    /// claim at a time; after a refusal, ask again a ping later.
    pub(super) fn claim(&mut self, epoch: u64, now: Instant) {
        let (role, last) = (self.s.role, self.last);
        let (ping, takeover) = (self.s.ping_interval, self.s.takeover_after);
        let Some(f) = &mut self.fence else { return };
        let waiting = match f.claim {
            Some(Claim::Asked { sent, .. }) => now.saturating_duration_since(sent) < takeover,
            // A refusal is often about a moment (the other server handing
            // back has not told the witness yet): ask again a ping later.
            Some(Claim::Refused { at }) => now.saturating_duration_since(at) < ping,
            None => false,
        };
        if waiting {
            return;
        }
        if !f.link_up {
            log::debug!("cannot ask the witness: no link");
            return;
        }
        f.next_id += 1;
        let id = f.next_id;
        f.claim = Some(Claim::Asked {
            id,
            epoch,
            sent: now,
        });
        log::debug!("asking the witness to become active at epoch {epoch}");
        let incarnation = f.incarnation;
        self.out.push(super::Action::ToWitness(PeerMessage::Claim {
            id,
            role: role.as_str().to_string(),
            epoch,
            last,
            incarnation,
        }));
    }

    /// The witness as status shows it: reachable, and what it records.
    pub(super) fn witness_status(&self) -> Option<crate::protocol::status::WitnessStatus> {
        let addr = self.s.witness.clone()?;
        let view = self.fence.as_ref().and_then(|f| f.view.as_ref());
        Some(crate::protocol::status::WitnessStatus {
            addr,
            state: if self.witness_reachable() {
                "reachable".into()
            } else {
                "inaccessible".into()
            },
            active: view
                .and_then(|v| v.active)
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
            epoch: view.map_or(0, |v| v.epoch),
            stale_since: view.and_then(|v| v.stale_since),
        })
    }

    /// The witness, last heard, records this server active at an epoch
    /// above `epoch`.
    pub(super) fn witness_records_me_above(&self, epoch: u64) -> bool {
        self.fence
            .as_ref()
            .and_then(|f| f.view.as_ref())
            .is_some_and(|v| v.active == Some(self.s.role) && v.epoch > epoch)
    }

    /// Witness mode, serving: no grant lease now.
    pub(super) fn unfenced(&self, now: Instant) -> bool {
        self.fence
            .as_ref()
            .is_some_and(|f| f.lease_until.is_none_or(|u| now >= u))
    }
}
