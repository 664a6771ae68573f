//! Failover: the watchdog thread, the peer link and the role decisions.
//!
//! The event loop owns the ledger; the watchdog owns the peer link and
//! decides whether this server serves. They talk only through the two
//! message types below, over crossbeam channels, and the watchdog wakes the
//! loop with its `mio::Waker`. The watchdog never touches the ledger.
//!
//! - [`link`]: authenticated connections to the other server (and the witness).
//! - [`lobby`]: accepted connections waiting to prove the secret.
//! - [`watchdog`]: the thread and its state machine.
//! - [`ring`]: recent journal records, for a standby catching up.
//! - [`witness`]: the licence-less tie-breaker of witness mode.

pub mod link;
pub mod lobby;
pub mod ring;
pub mod watchdog;
pub mod witness;

use crate::config::Role;
use crate::ledger::{Record, SeatSnapshot, Snapshot};
use crate::protocol::peer::{HistoryMark, PeerState};
use crate::protocol::status::{ServerStatus, WitnessStatus};
use std::time::Duration;

/// Timings and addresses of a pair.
#[derive(Clone, Debug)]
pub struct PairSettings {
    pub role: Role,
    /// The other server's peer port.
    pub peer: String,
    pub secret: Vec<u8>,
    /// Where this server serves clients, as told to the other server and
    /// to clients (`peer=` in the greeting).
    pub client_addr: String,
    /// Where the other server serves clients, from the licence file, until
    /// it says itself.
    pub peer_client_addr: Option<String>,
    pub ping_interval: Duration,
    pub takeover_after: Duration,
    pub sync_timeout: Duration,
    pub lease: Duration,
    pub backup_max: Duration,
    pub backup_lost_after: Duration,
    /// The witness's peer port (witness mode), if any.
    pub witness: Option<String>,
    /// Witness mode: how long a grant lease lasts (< takeover_after).
    pub fence_after: Duration,
}

/// From the event loop to the watchdog.
#[derive(Debug)]
pub enum ToWatchdog {
    /// Records the loop made or applied, in order.
    Records(Vec<Record>),
    /// The journal is durable up to this sequence number.
    Durable(u64),
    /// The snapshot asked for with [`FromWatchdog::SendSnapshot`].
    Snapshot(Snapshot),
    /// Granting stopped for a handback; the last record is `0`.
    StoppedGranting(HistoryMark),
    /// The seats this server holds, asked for with [`FromWatchdog::StepDown`].
    Seats(Vec<SeatSnapshot>),
    /// Digest of the served pools and options (at start and every reread).
    Digest(String),
    /// Replies wait for the standby's acknowledgement from this record on.
    HoldingFrom(u64),
    /// The loop was paused (SIGSTOP, a VM pause) for longer than
    /// takeover_after and stopped granting: re-check with the other server.
    Paused,
}

/// From the watchdog to the event loop.
#[derive(Debug)]
pub enum FromWatchdog {
    /// Serve (or not) in this state and epoch. `active` is where the
    /// active server is when this one is not it.
    Role {
        state: PeerState,
        epoch: u64,
        active: Option<String>,
    },
    /// Standby: records from the active server, to apply and journal.
    Apply(Vec<Record>),
    /// Standby: replace the ledger with the active server's.
    Reset(Snapshot),
    /// Active: the standby acknowledged records up to `acked`; while
    /// `wait_for_acks`, replies wait for its acknowledgement (answer
    /// [`ToWatchdog::HoldingFrom`] when it turns on).
    Standby { wait_for_acks: bool, acked: u64 },
    /// Send a snapshot (a standby needs one to catch up).
    SendSnapshot,
    /// Hand back to the returning primary: stop granting, tell clients
    /// where to go, then answer [`ToWatchdog::StoppedGranting`].
    StopGranting { active: Option<String> },
    /// Step down after a partition: answer [`ToWatchdog::Seats`].
    StepDown { active: Option<String> },
    /// Seats the other server granted while the pair was split: honour them.
    Merge(Vec<SeatSnapshot>),
    /// The backup has served alone for longer than backup_max_days.
    BackupExpired(bool),
    /// Witness mode: grants are allowed until this instant (the loop
    /// checks it before every grant).
    GrantLease(std::time::Instant),
    /// What status shows about the pair.
    Status(PairStatus),
}

/// What the status report shows about the pair and the witness.
#[derive(Clone, Debug, Default)]
pub struct PairStatus {
    pub servers: Vec<ServerStatus>,
    pub witness: Option<WitnessStatus>,
    pub alerts: Vec<String>,
    /// The other server's client address to advertise in greetings
    /// (`None` once the backup counts as lost).
    pub advertise_peer: Option<String>,
}

/// The next epoch for a server of `role` above every epoch seen. Primaries
/// take odd epochs and backups even ones, so the two never pick the same
/// epoch, and "epoch E" names one writer's history.
pub fn next_epoch(role: Role, above: u64) -> u64 {
    let mut e = above + 1;
    let odd = role != Role::Backup;
    if (e % 2 == 1) != odd {
        e += 1;
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_never_collide_between_roles() {
        assert_eq!(next_epoch(Role::Primary, 0), 1);
        assert_eq!(next_epoch(Role::Backup, 1), 2);
        assert_eq!(next_epoch(Role::Primary, 2), 3);
        assert_eq!(next_epoch(Role::Primary, 3), 5);
        assert_eq!(next_epoch(Role::Backup, 3), 4);
        for above in 0..20 {
            assert_ne!(
                next_epoch(Role::Primary, above),
                next_epoch(Role::Backup, above)
            );
            assert!(next_epoch(Role::Primary, above) > above);
        }
    }
}
