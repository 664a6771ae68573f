//! What the other server says, and what the loop says: each message
//! updates what this server knows, then the decisions run again.

use super::{FromWatchdog, RoleMachine};
use crate::config::Role;
use crate::failover::ToWatchdog;
use crate::journal::FORMAT_VERSION;
use crate::ledger::Merge;
use crate::protocol::peer::{PeerMessage, PeerState};
use std::time::{Duration, Instant};

impl RoleMachine {
    pub(super) fn on_peer(&mut self, message: PeerMessage, now: Instant) {
        // It speaks: whatever refused our dial, its process lives.
        self.peer_refused = false;
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
                if self
                    .peer
                    .echo
                    .is_some_and(|(.., before)| before != incarnation)
                {
                    // The other server restarted: what its predecessor was
                    // asked and never answered is asked again.
                    self.sync_asked = None;
                    self.handback_asked = None;
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
                        // It answers a request made since this server last
                        // woke: no old news, so no need to listen first.
                        if self
                            .handback_asked
                            .is_some_and(|asked| asked >= self.listening_since)
                        {
                            self.listening_since = Duration::ZERO;
                        }
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

    pub(super) fn compare_digest(&mut self, digest: String) {
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

    pub(super) fn on_loop(&mut self, msg: ToWatchdog, now: Instant) {
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
                // The primary claims as soon as it hears of the handback:
                // let the witness hear first that this server stands by.
                self.ping_witness(now);
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
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}
