//! What the operator changes at run time: where the other server is (a
//! reread of the config file moves it), and forgetting the backup
//! (`floatctl backup forget`, as Synergy's `lmu -xb` does).

use super::{Action, FromWatchdog, RoleMachine};
use crate::codes::Code;
use crate::config::Role;
use std::time::Instant;

impl RoleMachine {
    /// The other server's peer port moved: the link to the old address is
    /// closed and the new one dialled at once. Its client address is learnt
    /// from its first heartbeat, as at start.
    pub(super) fn move_peer(&mut self, addr: String, now: Instant) {
        if addr == self.s.peer {
            return;
        }
        log::info!(
            "the other server's peer port moves from {} to {addr}: dialling it there",
            self.s.peer
        );
        if self.link_up {
            self.out.push(Action::ClosePeerLink);
            self.on_link_down(now);
        }
        self.s.peer = addr;
        self.peer_refused = false;
        self.last_dial = Some(now);
        self.out.push(Action::DialPeer(self.s.peer.clone()));
    }

    /// Why forgetting the backup would be refused now (`None`: it would
    /// be forgotten). Only a primary has a backup to forget, and a backup
    /// that is heard from would be advertised again at its next heartbeat.
    pub(super) fn forget_refusal(&self) -> Option<(Code, String)> {
        if self.s.role != Role::Primary {
            return Some((
                Code::NoBackup,
                "this server is the backup: only the primary of a pair forgets its backup".into(),
            ));
        }
        if self.peer_alive() {
            let state = self.peer.state.map_or("starting", |s| s.as_str());
            return Some((
                Code::BackupAlive,
                format!(
                    "the backup ({}) is heard from ({state}): stop it first; a running backup is advertised again at once",
                    self.peer_client_addr()
                ),
            ));
        }
        None
    }

    /// Forgets the backup, unless [`Self::forget_refusal`] says why not:
    /// clients are no longer told about it until it is heard from again.
    pub(super) fn forget_backup(&mut self) {
        if let Some((_, why)) = self.forget_refusal() {
            log::info!("not forgetting the backup: {why}");
            return;
        }
        if !self.backup_forgotten {
            self.backup_forgotten = true;
            log::warn!(
                "the backup ({}) is forgotten, as the operator asked: no longer advertised to clients until it is heard from again",
                self.peer_client_addr()
            );
        }
        // Status and greetings say so now, not at the next ping.
        let report = self.report(self.now);
        self.tell_loop(FromWatchdog::Status(report));
    }

    /// The other server was heard from: a forgotten backup counts again.
    pub(super) fn remember_backup(&mut self) {
        if std::mem::take(&mut self.backup_forgotten) {
            log::info!("the forgotten backup is heard from again: advertised to clients again");
        }
    }

    /// The other server's client address (as it said, else as the licence
    /// file says, else its peer port).
    pub(super) fn peer_client_addr(&self) -> String {
        self.peer
            .client_addr
            .clone()
            .unwrap_or_else(|| self.s.peer.clone())
    }
}
