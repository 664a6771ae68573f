//! Who may touch a seat: handles are bearer secrets, so a seat is renewed
//! or returned only by its holder, and shown to everybody else under a
//! public seat id that cannot be turned back into the handle.
//!
//! - [`Ledger::heartbeat_by`] and [`Ledger::checkin_by`] honour a request
//!   only from the client the seat was granted to (same client id, user and
//!   host: a client that reconnects still can). Anybody else gets exactly
//!   the answer an unknown handle gets, so a guess learns nothing.
//! - [`seat_id`] is the public name of a seat: a short hash of its handle,
//!   so both servers of a pair (which share handles) show the same id.
//! - [`Ledger::remove_selected`] is the operator's removal: by handle, by
//!   seat id, or every seat of a feature held by a user on a host.

use super::{unknown_handle, CheckinOutcome, Grant, Ledger, Name, Now, Reason, Refusal};
use crate::codes::Code;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Hex digits in a seat id: 48 bits, so ids of the seats out at once
/// practically never collide (and a collision is refused, not guessed).
pub const SEAT_ID_LEN: usize = 12;

/// The public id of the seat held under `handle`.
pub fn seat_id(handle: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"floatd-seat-id-v1\0")
        .chain_update(handle.as_bytes())
        .finalize();
    digest
        .iter()
        .take(SEAT_ID_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when `text` has the shape of a seat id (not of a handle).
pub fn looks_like_seat_id(text: &str) -> bool {
    text.len() == SEAT_ID_LEN && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The client asking to renew or return a seat, as it said in HELLO.
#[derive(Clone, Copy, Debug)]
pub struct SeatHolder<'a> {
    pub client: &'a str,
    pub user: &'a str,
    pub host: &'a str,
}

impl SeatHolder<'_> {
    fn holds(&self, grant: &Grant) -> bool {
        *grant.client == *self.client && *grant.user == *self.user && *grant.host == *self.host
    }
}

/// Which seats an operator removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeatSelector {
    /// One seat, by its handle or its public seat id.
    Seat(String),
    /// Every seat of `feature` that `user` holds on `host`.
    Holder {
        feature: String,
        user: String,
        host: String,
    },
}

impl Ledger {
    /// Renews a seat's lease, for its holder only (unless renewals are
    /// refused now: [`Ledger::renewal_refused`]).
    pub fn heartbeat_by(
        &mut self,
        handle: &str,
        holder: &SeatHolder,
        now: Now,
    ) -> Result<Duration, Refusal> {
        if let Some(refusal) = self.renewal_refused() {
            return Err(refusal);
        }
        self.check_holder(handle, holder)?;
        self.heartbeat(handle, now)
    }

    /// Returns a seat, for its holder only.
    pub fn checkin_by(
        &mut self,
        handle: &str,
        holder: &SeatHolder,
        now: Now,
    ) -> Result<CheckinOutcome, Refusal> {
        self.check_holder(handle, holder)?;
        self.checkin(handle, now)
    }

    fn check_holder(&self, handle: &str, holder: &SeatHolder) -> Result<(), Refusal> {
        match self.seats.get(handle) {
            Some(seat) if holder.holds(&seat.grant) => Ok(()),
            _ => Err(unknown_handle()),
        }
    }

    /// The handles of the seats `selector` names (none when nothing matches).
    fn select(&self, selector: &SeatSelector) -> Vec<Name> {
        match selector {
            SeatSelector::Seat(key) if self.seats.contains_key(key.as_str()) => {
                vec![key.as_str().into()]
            }
            SeatSelector::Seat(key) if looks_like_seat_id(key) => {
                let key = key.to_ascii_lowercase();
                self.seats
                    .keys()
                    .filter(|h| seat_id(h) == key)
                    .cloned()
                    .collect()
            }
            SeatSelector::Seat(_) => Vec::new(),
            SeatSelector::Holder {
                feature,
                user,
                host,
            } => {
                let mut handles: Vec<Name> = self
                    .seats
                    .values()
                    .filter(|s| {
                        let g = &s.grant;
                        *g.feature == **feature && *g.user == **user && *g.host == **host
                    })
                    .map(|s| s.grant.handle.clone())
                    .collect();
                handles.sort();
                handles
            }
        }
    }

    /// An operator takes seats back at once (min_checkout notwithstanding):
    /// returns the grants removed, or why nothing was.
    pub fn remove_selected(
        &mut self,
        selector: &SeatSelector,
        now: Now,
    ) -> Result<Vec<Arc<Grant>>, Refusal> {
        let handles = self.select(selector);
        match (selector, handles.len()) {
            (SeatSelector::Seat(_), 0) => {
                return Err(Refusal::new(
                    Code::UnknownHandle,
                    "no seat is held here under this seat id or handle",
                ))
            }
            (SeatSelector::Holder { .. }, 0) => {
                return Err(Refusal::new(
                    Code::UnknownHandle,
                    "no seat of this feature is held here by this user on this host",
                ))
            }
            (SeatSelector::Seat(_), n) if n > 1 => {
                return Err(Refusal::new(
                    Code::BadRequest,
                    format!("{n} seats share this seat id: remove by user and host"),
                ))
            }
            _ => {}
        }
        handles
            .iter()
            .map(|h| self.remove(h, Reason::Removed, now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CheckoutRequest, HandleKey, Outcome, SeededEntropy, WaiterId};
    use super::*;
    use crate::licence::{Count, Expiry, Pool, PoolKey, Share, Version};

    fn ledger() -> Ledger {
        let pool = Pool {
            key: PoolKey {
                feature: "cad".into(),
                version: Version::parse("1.0").unwrap(),
                expiry: Expiry::Permanent,
                share: Share::None,
            },
            count: Count::Seats(10),
            min_checkout_secs: 0,
            roam: Vec::new(),
        };
        Ledger::new(
            vec![pool],
            Duration::from_secs(60),
            HandleKey::from_bytes([3; 32]),
            Box::new(SeededEntropy::new(3)),
        )
    }

    fn checkout(l: &mut Ledger, client: &str, user: &str, host: &str, now: Now) -> Arc<Grant> {
        let request = CheckoutRequest {
            feature: "cad".into(),
            version: Version::parse("1.0").unwrap(),
            count: 1,
            user: user.into(),
            host: host.into(),
            client: client.into(),
            wait: false,
        };
        match l.checkout(request, WaiterId(0), now) {
            Outcome::Granted(g) => g,
            other => panic!("{other:?}"),
        }
    }

    fn holder<'a>(client: &'a str, user: &'a str, host: &'a str) -> SeatHolder<'a> {
        SeatHolder { client, user, host }
    }

    #[test]
    fn only_the_holder_renews_or_returns_and_others_learn_nothing() {
        let mut l = ledger();
        let now = Now::current();
        let g = checkout(&mut l, "c1", "alice", "ws1", now);
        let unknown = l
            .heartbeat_by("no-such.handle", &holder("c1", "alice", "ws1"), now)
            .unwrap_err();
        for stranger in [
            holder("c2", "alice", "ws1"),
            holder("c1", "bob", "ws1"),
            holder("c1", "alice", "ws2"),
        ] {
            assert_eq!(
                l.heartbeat_by(&g.handle, &stranger, now),
                Err(unknown.clone())
            );
            assert_eq!(
                l.checkin_by(&g.handle, &stranger, now),
                Err(unknown.clone())
            );
        }
        assert_eq!(l.seat_count(), 1, "a stranger returned nothing");
        let me = holder("c1", "alice", "ws1");
        assert!(l.heartbeat_by(&g.handle, &me, now).is_ok());
        assert_eq!(
            l.checkin_by(&g.handle, &me, now),
            Ok(CheckinOutcome::Returned)
        );
        assert_eq!(l.seat_count(), 0);
    }

    #[test]
    fn seat_ids_are_short_stable_and_not_the_handle() {
        let id = seat_id("abc.def");
        assert_eq!(id.len(), SEAT_ID_LEN);
        assert!(looks_like_seat_id(&id));
        assert_eq!(id, seat_id("abc.def"), "the same on every server");
        assert_ne!(id, seat_id("abc.deg"));
        assert!(!looks_like_seat_id("abc.def"));
        assert!(!looks_like_seat_id("0123456789ag"));
    }

    #[test]
    fn an_operator_removes_by_handle_seat_id_or_holder() {
        let mut l = ledger();
        let now = Now::current();
        let a = checkout(&mut l, "c1", "alice", "ws1", now);
        let b = checkout(&mut l, "c2", "bob", "ws2", now);
        let c = checkout(&mut l, "c3", "bob", "ws2", now);
        let d = checkout(&mut l, "c4", "bob", "ws3", now);

        let by_id = l
            .remove_selected(&SeatSelector::Seat(seat_id(&a.handle).to_uppercase()), now)
            .unwrap();
        assert_eq!(by_id, std::slice::from_ref(&a));
        let again = l.remove_selected(&SeatSelector::Seat(seat_id(&a.handle)), now);
        assert_eq!(again.unwrap_err().code, Code::UnknownHandle);

        let holder = SeatSelector::Holder {
            feature: "cad".into(),
            user: "bob".into(),
            host: "ws2".into(),
        };
        let mut removed: Vec<Name> = l
            .remove_selected(&holder, now)
            .unwrap()
            .into_iter()
            .map(|g| g.handle.clone())
            .collect();
        removed.sort();
        let mut expected = vec![b.handle.clone(), c.handle.clone()];
        expected.sort();
        assert_eq!(removed, expected);
        assert_eq!(
            l.remove_selected(&holder, now).unwrap_err().code,
            Code::UnknownHandle
        );

        assert_eq!(
            l.remove_selected(&SeatSelector::Seat(d.handle.to_string()), now)
                .unwrap(),
            [d]
        );
        assert_eq!(l.seat_count(), 0);
        let records = l.take_records();
        let removals = records
            .iter()
            .filter(|r| {
                matches!(&r.event, super::super::Event::Release(ret) if ret.reason == Reason::Removed)
            })
            .count();
        assert_eq!(removals, 4, "each removal is one journal record");
    }
}
