//! Roaming: seats taken away from the network for days, and the signed
//! token that lets an application run offline meanwhile.
//!
//! - [`token`]: the token's format, signing by the server pair's roam key,
//!   and the offline check a client makes (host, dates, pinned key).
//! - [`key`]: the pair's roam key wrapped for the journal, so the standby
//!   gets it over the peer link.
//!
//! The seat side of a roam (counting, limits, its end by the calendar) is
//! the ledger's (`ledger::roam`); the server hands out tokens
//! (`server::roam`) and the client library stores and checks them
//! (`client::roam`). `docs/ROAMING.md` tells the whole story, with the
//! threat model.

pub mod key;
pub mod token;

pub use token::{check_offline, OfflineRefusal, RoamToken, SignedToken, TokenError};

use crate::licence::{HostId, HostIds};

/// The host id a roam is bound to on this machine: its `machine:` id
/// (which survives network changes) if it has one, else its first MAC
/// address, else its host name. `None` when the machine has no id at all.
pub fn roam_hostid(host: &HostIds) -> Option<HostId> {
    let ids = host.ids();
    ids.iter()
        .find(|id| matches!(id, HostId::Machine(_)))
        .or_else(|| ids.iter().find(|id| matches!(id, HostId::Mac(_))))
        .or_else(|| ids.first())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_id_is_preferred() {
        let id = |t: &str| HostId::parse(t).unwrap();
        let all = HostIds::from_ids([
            id("host:ws1"),
            id("mac:52:54:00:12:34:56"),
            id("machine:0123456789abcdef"),
        ]);
        assert_eq!(roam_hostid(&all), Some(id("machine:0123456789abcdef")));
        let no_machine = HostIds::from_ids([id("host:ws1"), id("mac:52:54:00:12:34:56")]);
        assert_eq!(roam_hostid(&no_machine), Some(id("mac:52:54:00:12:34:56")));
        assert_eq!(
            roam_hostid(&HostIds::from_ids([id("host:ws1")])),
            Some(id("host:ws1"))
        );
        assert_eq!(roam_hostid(&HostIds::default()), None);
    }
}
