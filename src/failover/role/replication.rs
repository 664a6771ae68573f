//! The journal stream between the two servers, both ends.
//!
//! The active server forwards every record the loop makes to the standby
//! and follows its acknowledgements ([`Follower`]); a standby that asks
//! (`SyncFrom`) gets the journal tail from the ring, or a snapshot when the
//! tail no longer reaches back to it. The standby applies what arrives,
//! asks again on a gap, and acknowledges what its journal made durable.
//! While the standby is in sync, the loop answers grants only once it
//! acknowledged them; one that stops acknowledging for `sync_timeout` is
//! stale and the active server carries on without it (in witness mode,
//! only once the witness recorded that, see [`super::fence`]).

use super::{FromWatchdog, RoleMachine};
use crate::ledger::{Record, Snapshot};
use crate::protocol::peer::{HistoryMark, PeerMessage, PeerState};
use std::time::Instant;

/// The standby as the active server follows it.
#[derive(Default)]
pub(super) struct Follower {
    /// Records up to here were sent (None: the standby has not asked yet).
    pub sent_upto: Option<u64>,
    pub acked: u64,
    /// When the oldest unacknowledged record was sent.
    pub unacked_since: Option<Instant>,
    pub in_sync: bool,
    /// The standby counts as in sync once it acknowledged this record: the
    /// last one when its catch-up was sent (it follows live after that).
    pub catchup_target: Option<u64>,
    /// A snapshot was asked of the loop for the standby.
    pub awaiting_snapshot: bool,
}

impl RoleMachine {
    /// Records the loop made (active) or applied (standby).
    pub(super) fn on_own_records(&mut self, records: Vec<Record>, now: Instant) {
        let Some(last) = records.last() else { return };
        self.last = HistoryMark {
            seq: last.seq,
            epoch: last.epoch,
        };
        let first = records[0].seq;
        for r in &records {
            self.ring.push(r.clone());
        }
        let forwarding = self.state.is_serving() || self.handing_back;
        if forwarding && self.follower.sent_upto == Some(first - 1) {
            self.follower.sent_upto = Some(self.last.seq);
            self.follower.unacked_since.get_or_insert(now);
            self.send(PeerMessage::Records { records });
        }
    }

    pub(super) fn on_durable(&mut self, seq: u64) {
        if seq > self.durable {
            self.durable = seq;
            if !self.state.is_serving() {
                self.send(PeerMessage::Ack { seq });
            }
        }
    }

    /// The snapshot the loop made for a standby that must catch up.
    pub(super) fn on_own_snapshot(&mut self, snapshot: Snapshot, now: Instant) {
        if !self.follower.awaiting_snapshot {
            return;
        }
        self.follower.awaiting_snapshot = false;
        let seq = snapshot.seq;
        self.send(PeerMessage::Snapshot { snapshot });
        let epoch = if seq == self.last.seq {
            self.last.epoch
        } else {
            self.ring.epoch_at(seq).unwrap_or(0)
        };
        let tail = self
            .ring
            .after(HistoryMark { seq, epoch })
            .unwrap_or_default();
        if !tail.is_empty() {
            self.send(PeerMessage::Records { records: tail });
        }
        let upto = self.last.seq.max(seq);
        self.follower.sent_upto = Some(upto);
        self.follower.catchup_target = Some(upto);
        self.follower.unacked_since = Some(now);
    }

    /// Standby: records from the active server.
    pub(super) fn on_records(&mut self, records: Vec<Record>) {
        if self.state.is_serving() {
            return;
        }
        // Epochs only grow along a history: a record of an older epoch
        // than ours is from another history (a reign that diverged) that
        // arrived late, not a continuation of ours.
        let fresh: Vec<Record> = records
            .into_iter()
            .filter(|r| r.seq > self.last.seq && r.epoch >= self.last.epoch)
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
            }
            self.send(PeerMessage::SyncFrom { from: self.last });
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
        self.tell_loop(FromWatchdog::Apply(fresh));
    }

    /// Standby: the active server's whole ledger.
    pub(super) fn on_snapshot(&mut self, snapshot: Snapshot) {
        if self.state.is_serving() {
            log::warn!("ignoring a snapshot from the other server while serving");
            return;
        }
        let mark = HistoryMark {
            seq: snapshot.seq,
            epoch: snapshot.epoch,
        };
        if super::newer(self.last, mark) && self.witness_records_me_above(mark.epoch) {
            // This server stopped serving (its journal failed) after a
            // reign the witness still records; the sender served before it
            // and was cut off since. The witness tells the sender it was
            // replaced, it steps down and takes this history instead:
            // installing its older one would drop the seats granted since.
            log::warn!(
                "ignoring a snapshot of epoch {} from a server the witness has replaced (it records this one active at a later epoch)",
                mark.epoch
            );
            return;
        }
        if !self.peer_serving() && super::newer(self.last, mark) {
            // The active server's history is the one to follow, even over
            // a longer one of a reign that lost; from a server that does
            // not serve, a shorter history would lose records of seats.
            log::warn!(
                "ignoring a snapshot at record {} (epoch {}): this server's history is further",
                mark.seq,
                mark.epoch
            );
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
        self.tell_loop(FromWatchdog::Reset(snapshot));
    }

    /// Active: the standby acknowledged records up to `seq`.
    pub(super) fn on_ack(&mut self, seq: u64, now: Instant) {
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
            self.follower.unacked_since = Some(now);
        }
        let caught_up = self
            .follower
            .catchup_target
            .is_some_and(|t| self.follower.acked >= t);
        if !self.follower.in_sync && caught_up {
            self.follower.in_sync = true;
            log::info!("standby in sync at record {}", self.follower.acked);
        }
        self.follower_changed();
    }

    /// A standby (or a primary about to take back) asks for our history.
    /// Answered by the active server, or by any server whose history is
    /// further than the asker's: never one that would take it backwards.
    pub(super) fn on_sync_from(&mut self, from: HistoryMark, now: Instant) {
        let serving = self.state.is_serving() || self.handing_back;
        if !serving && !super::newer(self.last, from) && from != self.last {
            return;
        }
        self.follower = Follower {
            catchup_target: Some(self.last.seq),
            ..Follower::default()
        };
        if from == self.last {
            self.follower.sent_upto = Some(self.last.seq);
            self.follower.acked = from.seq;
            if self.state.is_serving() || self.handing_back {
                self.follower.in_sync = true;
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
            self.follower.unacked_since = Some(now);
            self.send(PeerMessage::Records { records: tail });
        } else {
            log::info!(
                "standby at record {} (epoch {}) cannot continue from our journal tail: sending a snapshot",
                from.seq,
                from.epoch
            );
            self.follower.awaiting_snapshot = true;
            self.tell_loop(FromWatchdog::SendSnapshot);
        }
    }

    /// Active: declares the standby stale when it stops acknowledging.
    pub(super) fn check_follower(&mut self, now: Instant) {
        if !self.state.is_serving() || !self.follower.in_sync {
            return;
        }
        let late = self
            .follower
            .unacked_since
            .is_some_and(|t| now.saturating_duration_since(t) > self.s.sync_timeout);
        if late || !self.peer_alive() {
            self.follower.in_sync = false;
            // In sync again only once it has everything made until now, not
            // at its next acknowledgement: a standby that keeps falling
            // behind must not flap between stale and in sync.
            self.follower.catchup_target = Some(self.last.seq);

            if self.fence.is_none() {
                log::warn!(
                    "standby stale since record {}: carrying on without its acknowledgement",
                    self.follower.acked
                );
            }
            self.follower_changed();
        }
    }

    /// Whether the loop must hold replies for the standby's acknowledgement.
    /// Two-server mode: while it is in sync. Witness mode: unless the
    /// witness has recorded it stale (every answer without an
    /// acknowledgement is then covered by that record).
    fn wait_for_acks(&self) -> bool {
        match &self.fence {
            None => self.follower.in_sync,
            Some(f) => self.follower.in_sync || f.stale_recorded.is_none(),
        }
    }

    /// Tells the loop how to release replies, after the follower or the
    /// stale record changed; in witness mode also keeps the stale record
    /// at the witness up to date.
    pub(super) fn follower_changed(&mut self) {
        if !self.state.is_serving() {
            return;
        }
        self.update_stale_record();
        let wait_for_acks = self.wait_for_acks();
        if !wait_for_acks {
            // The loop stops holding; when it holds again it says from
            // which record (`ToWatchdog::HoldingFrom`).
            if let Some(f) = &mut self.fence {
                f.holding_from = None;
            }
        }
        let msg = FromWatchdog::Standby {
            wait_for_acks,
            acked: self.follower.acked,
        };
        self.tell_loop(msg);
    }
}
