//! The per-client checkout limit: how many checkouts one client (its
//! client id, user and host, the triple seats are bound to) may hold and
//! wait for at once.
//!
//! Without it one runaway or hostile connection could take tens of
//! thousands of seats of an uncounted feature, each costing memory, a
//! journal record and a report-log line. It counts checkouts (handles),
//! whatever their seat count: that is what costs; counted pools bound the
//! seats themselves.

use super::{CheckoutRequest, Grant, Name, Refusal};
use crate::codes::Code;
use std::collections::HashMap;
use std::sync::Arc;

/// The default limit (`max_checkouts_per_client`).
pub const DEFAULT_LIMIT: u64 = 1000;

/// Who a checkout belongs to (the names are shared, never copied).
type ClientKey = (Name, Name, Name);

fn key(client: &Name, user: &Name, host: &Name) -> ClientKey {
    (Arc::clone(client), Arc::clone(user), Arc::clone(host))
}

/// Checkouts held and waiting, per client.
#[derive(Default)]
pub struct PerClient {
    /// `None`: no limit.
    limit: Option<u64>,
    held: HashMap<ClientKey, u64>,
    waiting: HashMap<ClientKey, u64>,
}

fn adjust(map: &mut HashMap<ClientKey, u64>, key: ClientKey, up: bool) {
    if up {
        *map.entry(key).or_default() += 1;
    } else if let Some(n) = map.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&key);
        }
    }
}

impl PerClient {
    pub fn new(limit: Option<u64>) -> PerClient {
        PerClient {
            limit,
            ..PerClient::default()
        }
    }

    pub fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit;
    }

    /// A seat entered the ledger (granted, replayed, adopted).
    pub fn held(&mut self, grant: &Grant) {
        adjust(
            &mut self.held,
            key(&grant.client, &grant.user, &grant.host),
            true,
        );
    }

    /// A seat left the ledger.
    pub fn returned(&mut self, grant: &Grant) {
        adjust(
            &mut self.held,
            key(&grant.client, &grant.user, &grant.host),
            false,
        );
    }

    /// Every seat left at once (the ledger is being replaced).
    pub fn forget_held(&mut self) {
        self.held.clear();
    }

    /// A checkout joined a queue.
    pub fn queued(&mut self, request: &CheckoutRequest) {
        adjust(
            &mut self.waiting,
            key(&request.client, &request.user, &request.host),
            true,
        );
    }

    /// A checkout left its queue (granted, refused or given up).
    pub fn dequeued(&mut self, request: &CheckoutRequest) {
        adjust(
            &mut self.waiting,
            key(&request.client, &request.user, &request.host),
            false,
        );
    }

    /// Whether this client may make one more checkout.
    pub fn admit(&self, request: &CheckoutRequest) -> Result<(), Refusal> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let k = key(&request.client, &request.user, &request.host);
        let held = self.held.get(&k).copied().unwrap_or(0);
        let waiting = self.waiting.get(&k).copied().unwrap_or(0);
        if held + waiting < limit {
            return Ok(());
        }
        Err(Refusal::new(
            Code::ClientLimit,
            format!(
                "client {} ({}@{}) holds {held} checkout(s) and waits for {waiting}; a client may \
                 hold at most {limit} (max_checkouts_per_client): check some in first",
                request.client, request.user, request.host
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licence::Version;

    fn request(client: &str) -> CheckoutRequest {
        CheckoutRequest {
            feature: "viewer".into(),
            version: Version::parse("1").unwrap(),
            count: 1,
            user: "u".into(),
            host: "h".into(),
            client: client.into(),
            wait: false,
        }
    }

    fn grant(client: &str) -> Grant {
        let r = request(client);
        Grant {
            handle: "".into(),
            feature: r.feature.into(),
            version: r.version,
            pool: crate::licence::PoolKey {
                feature: "viewer".into(),
                version: r.version,
                expiry: crate::licence::Expiry::Permanent,
                share: crate::licence::Share::None,
            },
            count: 1,
            user: r.user,
            host: r.host,
            client: r.client,
            lease_ms: 1,
            min_hold_ms: 0,
            at: 0,
            roam: None,
        }
    }

    #[test]
    fn held_and_waiting_checkouts_count_against_the_limit() {
        let mut p = PerClient::new(Some(2));
        assert!(p.admit(&request("a")).is_ok());
        p.held(&grant("a"));
        p.queued(&request("a"));
        let refused = p.admit(&request("a")).unwrap_err();
        assert_eq!(refused.code, Code::ClientLimit);
        assert!(
            refused
                .message
                .contains("holds 1 checkout(s) and waits for 1"),
            "{}",
            refused.message
        );
        // Another client is not affected.
        assert!(p.admit(&request("b")).is_ok());
        p.dequeued(&request("a"));
        assert!(p.admit(&request("a")).is_ok());
        p.held(&grant("a"));
        assert!(p.admit(&request("a")).is_err());
        p.returned(&grant("a"));
        assert!(p.admit(&request("a")).is_ok());
        // No limit.
        p.set_limit(None);
        p.held(&grant("a"));
        p.held(&grant("a"));
        assert!(p.admit(&request("a")).is_ok());
    }
}
