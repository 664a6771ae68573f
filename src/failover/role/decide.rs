//! The decisions: lead, take over, step down, hand back, hand over.

use super::replication::Follower;
use super::{merge_message, newer, FromWatchdog, PendingMerge, RoleMachine};
use crate::config::Role;
use crate::failover::next_epoch;
use crate::ledger::{Merge, Snapshot};
use crate::protocol::peer::{HistoryMark, PeerMessage, PeerState};
use std::time::{Duration, Instant};

impl RoleMachine {
    /// Both servers are up and neither serves: does this one lead? The
    /// primary does, unless its journal failed.
    pub(super) fn leads(&self) -> bool {
        self.can_serve && (!self.peer.can_serve || self.s.role == Role::Primary)
    }

    pub(super) fn decide(&mut self, now: Instant) {
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

    pub(super) fn decide_standby(&mut self, alive: bool, peer_serving: bool, now: Instant) {
        let gone = self.peer_gone();
        if !alive || gone {
            if self.listened_long_enough() {
                let in_sync = self.state == PeerState::Ready;
                if !self.takeover_logged && self.can_serve {
                    self.takeover_logged = true;
                    let why = if alive {
                        "the other server's process is gone (its link closed, its peer port refuses connections)".to_string()
                    } else {
                        format!(
                            "no word from the active server for {:?} of listening",
                            self.s.takeover_after
                        )
                    };
                    log::warn!(
                        "{why}: taking over ({})",
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
            (self.state == PeerState::Syncing || !peer_serving)
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
                    .is_none_or(|t| self.clock.since(t) >= self.s.takeover_after);
                if due {
                    self.handback_asked = Some(self.clock.now());
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

    pub(super) fn decide_serving(&mut self, peer_serving: bool, now: Instant) {
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
        if peer_serving && self.loses_to_peer() && !self.stepping_down {
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
    pub(super) fn loses_to_peer(&self) -> bool {
        let me_primary = self.s.role == Role::Primary;
        (self.peer.epoch, !me_primary) > (self.epoch, me_primary)
    }

    /// Becomes active: at once in two-server mode, with the witness's
    /// consent in witness mode (which also decides whether a recovery
    /// period is needed).
    pub(super) fn activate(&mut self, in_sync: bool, now: Instant) {
        if !self.can_serve || self.stepping_down {
            return;
        }
        // Woken from a pause: what arrived meanwhile is old news (the
        // other server may have taken over since it said it stood by).
        if self.listening_since > Duration::ZERO && !self.listened_long_enough() {
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

    pub(super) fn become_active(&mut self, epoch: u64, in_sync: bool, now: Instant) {
        self.epoch = epoch;
        self.handback_asked = None;
        // Keep a catch-up the standby already asked for (it may have asked
        // just before we took over); it is not in sync with this reign yet.
        self.follower.in_sync = false;
        self.follower.unacked_since = None;
        let last = self.last.seq;
        if let Some(f) = &mut self.fence {
            // The witness cleared any stale record when it consented, and
            // the loop holds every answer of this reign for the standby.
            f.clear_stale();
            f.holding_from = Some(last);
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

    pub(super) fn become_standby(&mut self) {
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
    pub(super) fn step_down(&mut self) {
        if self.stepping_down {
            return;
        }
        self.stepping_down = true;
        let active = self.peer.client_addr.clone();
        self.tell_loop(FromWatchdog::StepDown { active });
    }

    /// The loop stopped granting and says what it holds: hand it to the
    /// winner, drop the diverged history and follow the winner's.
    pub(super) fn hand_over(&mut self, merge: Merge, now: Instant) {
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
    pub(super) fn resend_merge(&mut self, now: Instant) {
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
    pub(super) fn journal_failed(&mut self) {
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
    pub(super) fn check_limits(&mut self, now: Instant) {
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
