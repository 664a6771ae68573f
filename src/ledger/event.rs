//! Ledger events: the one vocabulary for every change to the seats.
//!
//! The ledger emits an event for each change; the same events are written
//! to the journal, streamed to the standby server and turned into report-log
//! lines. Replaying them through [`super::Ledger::apply`] rebuilds the
//! ledger, which is why every change goes through an event.

use crate::codes::Code;
use crate::licence::{PoolKey, Version};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A name a seat carries (handle, feature, user, host, client id): shared,
/// never copied, between the seat, its records, its reply and the indexes
/// that count it.
pub type Name = Arc<str>;

/// A seat granted to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub handle: Name,
    pub feature: Name,
    /// The version the client asked for (the pool's may be newer).
    pub version: Version,
    /// The pool the seat is counted in.
    pub pool: PoolKey,
    pub count: u32,
    pub user: Name,
    pub host: Name,
    pub client: Name,
    /// Lease length: the seat returns this long after the last heartbeat.
    pub lease_ms: u64,
    /// The seat stays out at least this long after the grant (min_checkout).
    pub min_hold_ms: u64,
    /// Wall-clock time of the grant, for the report log and status ages only.
    pub at: u64,
    /// Set when the seats roam: they need no heartbeat and stay out until
    /// the roam ends or is returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roam: Option<Box<Roam>>,
}

/// The terms of a roam: seats taken away from the network for days.
///
/// A roam ends by the calendar, not by a lease: at `until`, by the wall
/// clock of whichever server is active then. Both times are Unix seconds
/// written once by the server that granted (or extended) the roam, so
/// replaying or replicating the record gives the same end everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roam {
    /// The host id of the client's machine (`machine:HEX`, ...): the
    /// roam token is good on that machine only.
    pub hostid: String,
    /// Days last asked for (the licence and options limit this).
    pub days: u32,
    /// When the roam began (the grant's wall-clock time).
    pub from: u64,
    /// When it ends: the UTC midnight after its last day, by the server's
    /// calendar. Its seats count as in use until then.
    pub until: u64,
}

/// Why a seat came back to its pool. Stable codes in the report log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The client checked the seat in.
    Checkin,
    /// The lease ran out without a heartbeat.
    Expired,
    /// An operator removed the seat.
    Removed,
    /// The seat's licence disappeared on reread.
    LicenceGone,
    /// The server shut down and its seats do not survive (no state directory).
    Shutdown,
    /// Granted, but the grant could not be made durable and acknowledged
    /// before the server stopped granting (its journal failed, or it
    /// stepped down after a split): the client was told it did not get it.
    Unconfirmed,
    /// The client returned a roam before its end.
    RoamReturn,
    /// A roam's last day ended.
    RoamEnd,
}

impl Reason {
    /// Returned because someone asked (the client, an operator, a licence
    /// change), not because a lease ran out: a merge after a split must
    /// not bring such a seat back.
    pub fn by_request(self) -> bool {
        !matches!(self, Reason::Expired)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Checkin => "checkin",
            Reason::Expired => "expired",
            Reason::Removed => "removed",
            Reason::LicenceGone => "licence_gone",
            Reason::Shutdown => "shutdown",
            Reason::Unconfirmed => "unconfirmed",
            Reason::RoamReturn => "roam_return",
            Reason::RoamEnd => "roam_end",
        }
    }
}

/// A seat coming back, with what the report log needs to say whose it
/// was and for how long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Return {
    pub handle: Name,
    pub reason: Reason,
    pub at: u64,
    pub feature: Name,
    pub version: Version,
    pub count: u32,
    pub user: Name,
    pub host: Name,
    /// Wall-clock time of the grant.
    pub granted_at: u64,
}

/// A checkout that was refused (recorded for the report log only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    pub feature: Name,
    pub version: Version,
    pub count: u32,
    pub user: Name,
    pub host: Name,
    pub code: Code,
    /// The options-file rule that denied it, as `file:line`, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub at: u64,
    /// The days asked for, when the request was to roam.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roam_days: Option<u32>,
}

/// The roam key of a server pair, as its journal carries it to the
/// standby: the secret wrapped under a key derived from the peer secret
/// (so the journal and the peer link never hold it in the clear), and the
/// id of its public half.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoamKey {
    pub key_id: String,
    pub wrapped: String,
    pub at: u64,
}

/// A roam made longer: it now ends at `until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub handle: Name,
    /// The days asked for, counted from the day of the extension.
    pub days: u32,
    pub until: u64,
    pub at: u64,
    /// Whose roam, for the report log.
    pub feature: Name,
    pub version: Version,
    pub count: u32,
    pub user: Name,
    pub host: Name,
}

/// One change. Seat events change the ledger; the others only go on record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// Shared with the seat it makes and the reply that announces it.
    Grant(Arc<Grant>),
    /// A seat the other server of the pair granted while the two were
    /// split, taken over with the lease it had left there.
    Adopt(super::SeatSnapshot),
    Release(Return),
    Denied(Denial),
    /// A roam was extended.
    RoamExtended(Extension),
    /// The pair signs roam tokens with this key from now on.
    RoamKey(RoamKey),
    /// Licences (and options) were reread; `pools` is how many now serve.
    Reread {
        pools: usize,
        at: u64,
    },
    Started {
        at: u64,
    },
    Stopped {
        at: u64,
    },
    /// This server began serving (failover takeover or failback) in the
    /// record's epoch; `state` is `active` or `recovering`.
    Activated {
        server: String,
        state: String,
        at: u64,
    },
}

/// An event with its place in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Strictly increasing across the life of the state directory and
    /// across both servers of a failover pair.
    pub seq: u64,
    /// The failover epoch of the server that made the change (1 standalone).
    pub epoch: u64,
    pub event: Event,
}

impl Event {
    /// True for events that change seats (and so must be durable, and
    /// acknowledged by the standby, before the client hears of them).
    pub fn changes_seats(&self) -> bool {
        matches!(
            self,
            Event::Grant(_) | Event::Adopt(_) | Event::Release(_) | Event::RoamExtended(_)
        )
    }
}
