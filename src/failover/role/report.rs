//! What status shows about the pair and the witness, and the alerts.

use super::RoleMachine;
use crate::config::Role;
use crate::failover::PairStatus;
use crate::protocol::status::ServerStatus;
use std::time::Instant;

impl RoleMachine {
    /// A primary that has not heard its backup for backup_lost_after.
    fn backup_lost(&self, now: Instant) -> bool {
        self.s.role == Role::Primary
            && now.saturating_duration_since(self.peer.heard_at.unwrap_or(self.started))
                >= self.s.backup_lost_after
    }

    /// The pair's status (sent to the loop every ping interval).
    pub(super) fn report(&mut self, now: Instant) -> PairStatus {
        let lost = self.backup_lost(now);
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
            epoch: self.shown_epoch(),
            last_contact_ms: None,
            lag: None,
            rtt_ms: None,
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
            addr: self.peer_client_addr(),
            role: self.s.role.other().as_str().to_string(),
            state: match (alive, self.peer.state) {
                (true, Some(s)) => s.as_str().to_string(),
                _ => "inaccessible".to_string(),
            },
            // The other server sends the epoch it shows itself.
            epoch: self.peer.epoch,
            last_contact_ms: self
                .peer
                .heard_at
                .map(|t| now.saturating_duration_since(t).as_millis() as u64),
            lag,
            rtt_ms: if alive { self.peer.rtt_ms } else { None },
        };
        let mut alerts = Vec::new();
        if alive && self.peer.digest != self.digest {
            alerts.push(
                "the other server serves different licences or options: make them identical".into(),
            );
        }
        if alive && !self.peer.can_serve {
            alerts.push(
                "the other server's journal failed: it cannot take over until it is restarted"
                    .into(),
            );
        }
        if !self.can_serve {
            alerts
                .push("this server's journal failed: it cannot serve until it is restarted".into());
        }
        if lost {
            alerts.push(format!(
                "the backup has not been seen for {:?}: no longer advertised",
                self.s.backup_lost_after
            ));
        }
        if self.backup_forgotten {
            alerts.push(format!(
                "the backup ({}) was forgotten (floatctl backup forget): not advertised to clients until it is heard from again",
                self.peer_client_addr()
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
        let witness = self.witness_status();
        if witness.as_ref().is_some_and(|w| w.state != "reachable") {
            alerts.push("the witness is out of reach".into());
        }
        if self.state.is_serving() && self.unfenced(now) {
            alerts.push(
                "no grant lease: neither the standby nor the witness confirms this server; not granting".into(),
            );
        }
        PairStatus {
            servers: vec![me, peer],
            witness,
            alerts,
            advertise_peer: if lost || self.backup_forgotten {
                None
            } else {
                self.peer.client_addr.clone()
            },
            forget_refusal: self.forget_refusal(),
        }
    }
}
