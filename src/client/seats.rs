//! The seats a client holds and what it knows of each: when its lease was
//! last renewed, whether it waits to be reclaimed after a lost connection,
//! and how seats that ended did so. No I/O; time is an argument.

use super::Seat;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// How long after a failed heartbeat the next try comes.
pub const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Seats that ended (lost, or returned by `close`) whose state is kept for
/// the application to read; the oldest are forgotten first.
const ENDED_KEPT: usize = 1024;

/// The state of a seat, as the application sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatState {
    /// Held: its lease was renewed in time.
    Held,
    /// The connection to the server was lost; the library is looking for
    /// the active server to reclaim the seat there. Its lease still runs.
    Reconnecting,
    /// The lease ran out before the library could renew it (no server
    /// reachable for that long). The server may have given the seat to
    /// someone else; the library keeps trying to reclaim it, and the state
    /// returns to `Held` if that succeeds.
    Expired,
    /// A server refused the seat (removed by an administrator, its licence
    /// gone, or it expired there): it is not held and will not come back.
    Lost,
    /// Returned to the server by [`Client::close`](super::Client::close).
    Returned,
}

#[derive(Clone, Debug)]
struct Tracked {
    seat: Seat,
    /// When the lease was last granted or renewed.
    renewed: Instant,
    /// Not before this may the next heartbeat go (after a failed one).
    retry_at: Option<Instant>,
    /// The connection was lost since the last renewal.
    reclaim: bool,
    /// `Expired` has been reported for this lease.
    expiry_told: bool,
}

/// Every seat of one client.
#[derive(Debug, Default)]
pub struct SeatTable {
    held: BTreeMap<String, Tracked>,
    ended: BTreeMap<String, SeatState>,
    ended_order: VecDeque<String>,
}

impl SeatTable {
    /// A seat was granted (or adopted) at `now`.
    pub fn granted(&mut self, seat: Seat, now: Instant) {
        self.ended.remove(&seat.handle);
        self.held.insert(
            seat.handle.clone(),
            Tracked {
                seat,
                renewed: now,
                retry_at: None,
                reclaim: false,
                expiry_told: false,
            },
        );
    }

    /// A heartbeat or reclaim renewed the seat's lease. Returns true when
    /// the seat had been waiting for a reclaim (or had expired): it is
    /// recovered.
    pub fn renewed(&mut self, handle: &str, lease: Option<Duration>, now: Instant) -> bool {
        let Some(t) = self.held.get_mut(handle) else {
            return false;
        };
        let recovered = t.reclaim || now >= t.renewed + t.seat.lease;
        t.renewed = now;
        t.retry_at = None;
        t.reclaim = false;
        t.expiry_told = false;
        if let Some(lease) = lease {
            t.seat.lease = lease;
        }
        recovered
    }

    /// A heartbeat of the seat failed (no server answered): try again soon.
    pub fn heartbeat_failed(&mut self, handle: &str, now: Instant) {
        if let Some(t) = self.held.get_mut(handle) {
            t.retry_at = Some(now + RETRY_AFTER);
        }
    }

    /// The connection was lost: every held seat must be reclaimed. Returns
    /// false when no seat is held (nothing is reconnecting).
    pub fn disconnected(&mut self) -> bool {
        for t in self.held.values_mut() {
            t.reclaim = true;
        }
        !self.held.is_empty()
    }

    /// A server refused the seat. Returns false if it was not held.
    pub fn lost(&mut self, handle: &str) -> bool {
        self.end(handle, SeatState::Lost)
    }

    /// The seat was returned by `close`.
    pub fn returned(&mut self, handle: &str) {
        self.end(handle, SeatState::Returned);
    }

    fn end(&mut self, handle: &str, state: SeatState) -> bool {
        if self.held.remove(handle).is_none() {
            return false;
        }
        if self.ended.insert(handle.to_string(), state).is_none() {
            self.ended_order.push_back(handle.to_string());
        }
        while self.ended_order.len() > ENDED_KEPT {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
        true
    }

    /// Forgets a seat entirely (checked in, or released by the application).
    pub fn forget(&mut self, handle: &str) {
        self.held.remove(handle);
        if self.ended.remove(handle).is_some() {
            self.ended_order.retain(|h| h != handle);
        }
    }

    /// The state of a seat at `now`; `None` for one never held or forgotten.
    pub fn state(&self, handle: &str, now: Instant) -> Option<SeatState> {
        if let Some(t) = self.held.get(handle) {
            return Some(if now >= t.renewed + t.seat.lease {
                SeatState::Expired
            } else if t.reclaim {
                SeatState::Reconnecting
            } else {
                SeatState::Held
            });
        }
        self.ended.get(handle).copied()
    }

    pub fn held(&self) -> Vec<Seat> {
        self.held.values().map(|t| t.seat.clone()).collect()
    }

    pub fn is_held(&self, handle: &str) -> bool {
        self.held.contains_key(handle)
    }

    /// Seats whose heartbeat is due at `now`: a third of the lease after
    /// the last renewal, or the retry time after a failed one.
    pub fn due(&self, now: Instant) -> Vec<Seat> {
        self.held
            .values()
            .filter(|t| now >= next_heartbeat(t))
            .map(|t| t.seat.clone())
            .collect()
    }

    /// When the next heartbeat or expiry falls due, if any seat is held.
    pub fn next_due(&self) -> Option<Instant> {
        self.held
            .values()
            .map(|t| {
                let expiry = t.renewed + t.seat.lease;
                if t.expiry_told {
                    next_heartbeat(t)
                } else {
                    next_heartbeat(t).min(expiry)
                }
            })
            .min()
    }

    /// Seats whose lease ran out by `now` and were not yet reported so.
    pub fn newly_expired(&mut self, now: Instant) -> Vec<String> {
        self.held
            .values_mut()
            .filter(|t| !t.expiry_told && now >= t.renewed + t.seat.lease)
            .map(|t| {
                t.expiry_told = true;
                t.seat.handle.clone()
            })
            .collect()
    }
}

fn next_heartbeat(t: &Tracked) -> Instant {
    t.retry_at.unwrap_or(t.renewed + t.seat.lease / 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licence::Version;

    fn seat(handle: &str, lease_secs: u64) -> Seat {
        Seat {
            handle: handle.into(),
            feature: "cad".into(),
            version: Version::parse("1.0").unwrap(),
            count: 1,
            lease: Duration::from_secs(lease_secs),
            pool: "1.0".into(),
            expires: "permanent".into(),
        }
    }

    #[test]
    fn a_seat_goes_held_reconnecting_expired_and_back() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut table = SeatTable::default();
        table.granted(seat("h", 30), t0);
        assert_eq!(table.state("h", s(1)), Some(SeatState::Held));
        assert!(table.disconnected());
        assert_eq!(table.state("h", s(1)), Some(SeatState::Reconnecting));
        assert_eq!(table.state("h", s(30)), Some(SeatState::Expired));
        assert_eq!(table.newly_expired(s(30)), vec!["h".to_string()]);
        assert!(table.newly_expired(s(31)).is_empty(), "told once");
        assert!(table.renewed("h", None, s(31)), "a reclaim recovers it");
        assert_eq!(table.state("h", s(31)), Some(SeatState::Held));
        assert!(!table.renewed("h", None, s(32)), "a plain renewal");
    }

    #[test]
    fn heartbeats_fall_due_at_a_third_of_the_lease_and_retry_soon() {
        let t0 = Instant::now();
        let mut table = SeatTable::default();
        table.granted(seat("a", 30), t0);
        table.granted(seat("b", 60), t0);
        assert!(table.due(t0 + Duration::from_secs(9)).is_empty());
        let due: Vec<String> = table
            .due(t0 + Duration::from_secs(10))
            .into_iter()
            .map(|s| s.handle)
            .collect();
        assert_eq!(due, vec!["a".to_string()]);
        assert_eq!(table.next_due(), Some(t0 + Duration::from_secs(10)));
        let t1 = t0 + Duration::from_secs(10);
        table.heartbeat_failed("a", t1);
        assert_eq!(table.next_due(), Some(t1 + RETRY_AFTER));
        assert!(table.due(t1).iter().all(|s| s.handle != "a"));
        assert_eq!(table.due(t1 + RETRY_AFTER).len(), 1);
    }

    #[test]
    fn ended_seats_keep_their_state_until_forgotten() {
        let t0 = Instant::now();
        let mut table = SeatTable::default();
        table.granted(seat("lost", 30), t0);
        table.granted(seat("back", 30), t0);
        assert!(table.lost("lost"));
        assert!(!table.lost("lost"), "only once");
        table.returned("back");
        assert_eq!(table.state("lost", t0), Some(SeatState::Lost));
        assert_eq!(table.state("back", t0), Some(SeatState::Returned));
        assert!(table.held().is_empty() && table.next_due().is_none());
        table.forget("lost");
        assert_eq!(table.state("lost", t0), None);
        assert_eq!(table.state("never", t0), None);
    }

    #[test]
    fn the_record_of_ended_seats_is_bounded() {
        let t0 = Instant::now();
        let mut table = SeatTable::default();
        for i in 0..ENDED_KEPT + 10 {
            let h = format!("h{i}");
            table.granted(seat(&h, 30), t0);
            table.lost(&h);
        }
        assert_eq!(table.ended.len(), ENDED_KEPT);
        assert_eq!(table.state("h0", t0), None, "the oldest went first");
        assert_eq!(
            table.state(&format!("h{}", ENDED_KEPT + 9), t0),
            Some(SeatState::Lost)
        );
    }
}
