//! What the watchdog tells the loop, carried out on the ledger: roles,
//! replication, handback, stepping down and merging after a split.

use super::core::Core;
use super::release::Effects;
use crate::codes::Code;
use crate::failover::PairStatus;
use crate::failover::{FromWatchdog, RoleView, ToWatchdog};
use crate::ledger::{Event, Now, Snapshot};
use crate::protocol::reply;
use crossbeam_channel::{Receiver, Sender};

/// How the server presents itself (greeting, status).
#[derive(Clone, Debug)]
pub struct Presence {
    pub role: String,
    pub state: String,
    /// The epoch shown (one number for both servers' view of this one).
    pub epoch: u64,
    pub server: String,
    pub peer_addr: Option<String>,
    pub active_addr: Option<String>,
}

/// The loop's end of the watchdog's channels, and what it last said.
pub struct PairLink {
    pub tx: Sender<ToWatchdog>,
    pub rx: Receiver<crate::failover::FromWatchdog>,
    /// Active: replies wait for the standby's acknowledgement.
    pub wait_for_acks: bool,
    pub acked: u64,
    /// The durable sequence number last told to the watchdog.
    pub durable_told: u64,
    pub status: PairStatus,
}

impl PairLink {
    pub fn new(tx: Sender<ToWatchdog>, rx: Receiver<crate::failover::FromWatchdog>) -> PairLink {
        PairLink {
            tx,
            rx,
            wait_for_acks: false,
            acked: 0,
            durable_told: 0,
            status: PairStatus::default(),
        }
    }
}

impl Core {
    pub(super) fn drain_watchdog(&mut self, now: Now, effects: &mut Effects) {
        let Some(pair) = &self.pair else { return };
        let messages: Vec<FromWatchdog> = pair.rx.try_iter().collect();
        for msg in messages {
            self.on_watchdog(msg, now, effects);
        }
    }

    fn on_watchdog(&mut self, msg: FromWatchdog, now: Now, effects: &mut Effects) {
        match msg {
            FromWatchdog::Role(view) => self.take_role(view, now, effects),
            FromWatchdog::Apply(records) => {
                for r in &records {
                    self.ledger.apply(r, now);
                }
                self.note_history(&records);
                self.journal.append(records);
            }
            FromWatchdog::Reset(snapshot) => self.reset(snapshot, now),
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
            FromWatchdog::StepDown { active } => self.step_down(active, now),
            FromWatchdog::Merge { id, merge } => {
                let outcome = self.ledger.merge(&merge, now);
                log::warn!(
                    "merged the other server's seats: {} taken over, {} renewed, {} returned there, {} kept returned",
                    outcome.adopted,
                    outcome.extended,
                    outcome.returned,
                    outcome.kept_returned
                );
                self.flush_records();
                self.tell_watchdog(ToWatchdog::Merged(id));
            }
            FromWatchdog::MergeDone => {
                if self.handover_until.is_some() {
                    self.end_handover(effects);
                }
            }
            FromWatchdog::GrantLease(until) => self.gate.grant_lease = Some(until),
            FromWatchdog::Status(status) => {
                self.presence.peer_addr = status.advertise_peer.clone();
                if let Some(p) = &mut self.pair {
                    p.status = status;
                }
            }
        }
    }

    /// `BACKUP-FORGET`: the watchdog forgets the backup, unless its last
    /// report says why it would not (the backup is heard from, or this
    /// server is the backup). Greetings stop naming it at once.
    pub(super) fn forget_backup(&mut self) -> String {
        let Some(p) = &self.pair else {
            return reply::err(
                Code::NoBackup,
                "this server is not one of a pair: it has no backup to forget",
            )
            .finish();
        };
        if let Some((code, why)) = &p.status.forget_refusal {
            return reply::err(*code, why).finish();
        }
        let backup = p
            .status
            .servers
            .get(1)
            .map_or_else(|| "the backup".to_string(), |s| s.addr.clone());
        self.presence.peer_addr = None;
        self.tell_watchdog(ToWatchdog::ForgetBackup);
        reply::ok().field("forgotten", backup).finish()
    }

    /// Takes the history of the active server whole.
    fn reset(&mut self, snapshot: Snapshot, now: Now) {
        self.ledger.restore(&snapshot, now);
        if let Some(p) = &mut self.pair {
            p.durable_told = 0;
        }
        self.journal.reset(snapshot);
    }

    /// Applies the watchdog's view of this server's role.
    fn take_role(&mut self, view: RoleView, now: Now, effects: &mut Effects) {
        let was_serving = self.serving();
        let previous = self.gate.pair.as_ref().map(|p| p.state);
        let serving = view.state.is_serving();
        self.presence.state = view.state.as_str().to_string();
        self.presence.epoch = view.epoch;
        // The role message follows the watchdog's re-check after a pause.
        self.gate.paused = false;
        if serving {
            if !was_serving {
                // Witness mode holds answers for the standby until the
                // witness records it stale; the watchdog says when.
                let fenced = self.gate.fenced;
                if let Some(p) = &mut self.pair {
                    p.wait_for_acks = fenced;
                    p.acked = 0;
                }
                // Clients could not heartbeat while nobody served.
                self.ledger.grant_grace(now);
            }
            self.presence.active_addr = None;
            self.unconfirmed_after = None;
            self.ledger.set_epoch(view.epoch);
            let state = view.state;
            self.gate.pair = Some(view);
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
        } else {
            let active = view.active.clone();
            self.gate.pair = Some(view);
            if was_serving {
                self.stop_serving(active, effects);
            } else if self.handover_until.is_none() {
                self.presence.active_addr = active;
            }
        }
        self.refresh_gate(now.mono);
    }

    /// Stops granting; tells every client where the active server is.
    pub(super) fn stop_serving(&mut self, active: Option<String>, effects: &mut Effects) {
        self.presence.active_addr = active.clone();
        if let Some(p) = &mut self.pair {
            p.wait_for_acks = false;
        }
        if let Some(view) = &mut self.gate.pair {
            if view.state.is_serving() {
                view.state = crate::protocol::peer::PeerState::Syncing;
                self.presence.state = view.state.as_str().to_string();
            }
            view.active = active.clone();
        }
        if let Some(active) = active {
            effects.broadcast = Some(reply::push_moved(&active).finish());
        }
    }

    /// Steps down after a split: stops granting at once, holds clients'
    /// requests (unread) until the other server has merged this one's
    /// seats, so no client is sent there before its seat is, and hands the
    /// seats to the watchdog.
    fn step_down(&mut self, active: Option<String>, now: Now) {
        let limit = self.pause_limit.max(std::time::Duration::from_secs(1));
        self.handover_until = Some(now.mono + limit);
        self.presence.active_addr = active.clone();
        if let Some(view) = &mut self.gate.pair {
            view.state = crate::protocol::peer::PeerState::Syncing;
            view.active = active;
        }
        self.refresh_gate(now.mono);
        // Grants whose replies still wait for the standby's acknowledgement
        // (witness mode, before a stale record) were never confirmed: they
        // are taken back as those replies settle, before the handover, so
        // they never reach the other server, whose count they would exceed.
        if let Some(p) = &mut self.pair {
            if p.wait_for_acks {
                p.wait_for_acks = false;
                self.unconfirmed_after = Some(p.acked);
            }
        }
        self.handover_pending = true;
    }

    /// The handover is over (merged, or given up on): requests are read
    /// again and answered with where the active server is.
    pub(super) fn end_handover(&mut self, effects: &mut Effects) {
        self.handover_until = None;
        effects.resume_requests = true;
        let active = self.gate.active_addr().cloned();
        self.presence.active_addr = active.clone();
        if let Some(active) = active {
            effects.broadcast = Some(reply::push_moved(&active).finish());
        }
    }
}
