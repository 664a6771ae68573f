//! Failover: the watchdog thread, the peer link and the role decisions.
//!
//! The event loop owns the ledger; the watchdog owns the peer link and
//! decides whether this server serves. They talk only through the two
//! message types below, over crossbeam channels, and the watchdog wakes the
//! loop with its `mio::Waker`. The watchdog never touches the ledger.
//!
//! - [`role`]: the role state machine: every decision of the pair, pure
//!   (inputs in, actions out, the time passed in).
//! - [`watchdog`]: the thread that runs it: channels, links, dialling.
//! - [`link`]: authenticated connections to the other server (and the witness).
//! - [`lobby`]: accepted connections waiting to prove the secret.
//! - [`ring`]: recent journal records, for a standby catching up.
//! - [`witness`]: the licence-less tie-breaker of witness mode.
//! - [`awake`]: time a process was awake to hear, so a pause is not silence.

pub mod awake;
pub mod link;
pub mod lobby;
pub mod ring;
pub mod role;
pub mod watchdog;
pub mod witness;

use crate::codes::Code;
use crate::config::Role;
use crate::ledger::{Merge, Record, Snapshot};
use crate::protocol::peer::{HistoryMark, PeerState};
use crate::protocol::status::{ServerStatus, WitnessStatus};
use std::time::{Duration, Instant};

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

impl PairSettings {
    /// How often the watchdog looks at the time (and pings when due):
    /// twice a ping interval, so an idle pair wakes rarely, at least every
    /// 250 ms (a dead standby's sync_timeout is noticed within that) and at
    /// most every 100 ms. Its awake clock counts a longer gap as a pause
    /// ([`awake::max_step_for`]): 750 ms with the defaults, well below
    /// fence_after and takeover_after.
    pub fn tick(&self) -> Duration {
        let fine = Duration::from_millis(100).min(self.ping_interval);
        (self.ping_interval / 2).clamp(fine, Duration::from_millis(250))
    }
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
    /// Stepping down after a split: what the other server must merge
    /// (answers [`FromWatchdog::StepDown`]).
    Handover(Merge),
    /// The merge the other server handed over was applied here.
    Merged(u64),
    /// Digest of the served pools and options (at start and every reread).
    Digest(String),
    /// Replies wait for the standby's acknowledgement from this record on.
    HoldingFrom(u64),
    /// The loop was paused (SIGSTOP, a VM pause) for longer than
    /// takeover_after and stopped granting: re-check with the other server.
    Paused,
    /// The journal failed: this server can make nothing durable any more.
    JournalFailed,
    /// The operator moved the other server: its peer port is now here
    /// (a reread of the config file). The link is dropped and this dialled.
    PeerAddress(String),
    /// The operator tells a primary to forget its backup now
    /// (`floatctl backup forget`): it is no longer advertised to clients
    /// until it is heard from again.
    ForgetBackup,
}

/// From the watchdog to the event loop.
#[derive(Debug)]
pub enum FromWatchdog {
    /// Serve (or not) as this says.
    Role(RoleView),
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
    /// Step down after a split: stop granting, hold clients' requests
    /// until the other server has this server's seats, and answer
    /// [`ToWatchdog::Handover`].
    StepDown { active: Option<String> },
    /// Seats the other server granted or returned while the pair was
    /// split: merge them, then answer [`ToWatchdog::Merged`].
    Merge { id: u64, merge: Merge },
    /// The other server merged this server's handover: send clients there.
    MergeDone,
    /// Witness mode: grants are allowed until this instant (the loop
    /// checks it before every grant).
    GrantLease(Instant),
    /// What status shows about the pair.
    Status(PairStatus),
}

/// Where this server stands, as the loop needs it to serve.
#[derive(Clone, Debug, PartialEq)]
pub struct RoleView {
    pub state: PeerState,
    /// The epoch shown to clients and operators: this server's own while
    /// it serves, the one of the history it follows while it stands by
    /// (the other server shows the same number for it).
    pub epoch: u64,
    /// Where the active server is, when this one is not it.
    pub active: Option<String>,
    /// Serving reclaims only until then (a recovery period).
    pub recovery_until: Option<Instant>,
    /// The backup has served alone for longer than backup_max_days.
    pub backup_expired: bool,
}

/// What the status report shows about the pair and the witness.
#[derive(Clone, Debug, Default)]
pub struct PairStatus {
    pub servers: Vec<ServerStatus>,
    pub witness: Option<WitnessStatus>,
    pub alerts: Vec<String>,
    /// The other server's client address to advertise in greetings
    /// (`None` once the backup counts as lost, or was forgotten).
    pub advertise_peer: Option<String>,
    /// Why [`ToWatchdog::ForgetBackup`] would be refused now (`None`: it
    /// would be carried out), so the loop can answer the operator.
    pub forget_refusal: Option<(Code, String)>,
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
