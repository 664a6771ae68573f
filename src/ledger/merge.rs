//! Merging two ledgers after a split.
//!
//! When the link between the two servers of a pair breaks and both serve
//! (two-server mode), or one wakes from a pause after the other took over,
//! the one that steps down hands its seats to the one that stays. The merge
//! follows what clients did on both sides:
//!
//! - a seat returned on either side (checked in, removed) stays returned:
//!   each ledger remembers returns for two leases ([`ReturnedSeats`]),
//!   long enough for any copy of that seat elsewhere to run out;
//! - a seat held on either side is honoured, with the lease it had left
//!   there (never a fresh one), so a client that kept heartbeating on the
//!   side that steps down keeps its seat;
//! - held on both sides, the later lease wins;
//! - roams end by the calendar, not by a lease: one still running is
//!   honoured until its end, and held on both sides, the later end wins
//!   (an extension made on either side).
//!
//! Only seats both sides granted beyond the count can then exceed it, and
//! only until they are returned or their leases run out.

use super::{Event, Extension, Ledger, Name, Now, Reason, SeatSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most returns remembered; the oldest are forgotten first.
const RETURNED_KEPT: usize = 100_000;

/// A seat returned lately, remembered so a merge never brings back one
/// returned by request, and a reclaim knows the seat was here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Returned {
    pub handle: Name,
    pub reason: Reason,
    /// How much longer it is remembered (in a snapshot).
    #[serde(default)]
    pub left_ms: u64,
}

/// What a server stepping down after a split hands to the one that stays.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merge {
    pub seats: Vec<SeatSnapshot>,
    pub returned: Vec<Returned>,
}

/// What a merge changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Seats new here, taken over.
    pub adopted: usize,
    /// Seats held on both sides whose lease the other side had renewed.
    pub extended: usize,
    /// Seats held here that the other side's clients had returned.
    pub returned: usize,
    /// Seats held there that were returned here: not brought back.
    pub kept_returned: usize,
}

/// Recent returns by request, with when each may be forgotten. The
/// handles are the seats' own (shared, not copied).
#[derive(Default)]
pub(super) struct ReturnedSeats {
    by_handle: HashMap<Name, (Reason, Instant)>,
    order: VecDeque<Name>,
}

impl ReturnedSeats {
    pub fn remember(&mut self, handle: &Name, reason: Reason, until: Instant) {
        if self
            .by_handle
            .insert(Arc::clone(handle), (reason, until))
            .is_none()
        {
            self.order.push_back(Arc::clone(handle));
        }
        while self.order.len() > RETURNED_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_handle.remove(&old);
            }
        }
    }

    /// Returned by request (checked in, removed) lately.
    pub fn contains(&self, handle: &str, now: Instant) -> bool {
        self.by_handle
            .get(handle)
            .is_some_and(|(reason, until)| reason.by_request() && *until > now)
    }

    /// Returned here lately for any reason, its lease running out included.
    pub fn seen(&self, handle: &str, now: Instant) -> bool {
        self.by_handle
            .get(handle)
            .is_some_and(|(_, until)| *until > now)
    }

    /// Returns remembered (some may have run out, until pruned).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Forgets returns whose time is up (oldest first).
    pub fn prune(&mut self, now: Instant) {
        while let Some(front) = self.order.front() {
            match self.by_handle.get(front) {
                Some((_, until)) if *until > now => break,
                _ => {
                    let old = self.order.pop_front().expect("front exists");
                    self.by_handle.remove(&old);
                }
            }
        }
    }

    pub fn snapshot(&self, now: Instant) -> Vec<Returned> {
        self.order
            .iter()
            .filter_map(|h| {
                let (reason, until) = self.by_handle.get(h)?;
                let left = until.saturating_duration_since(now);
                (!left.is_zero()).then(|| Returned {
                    handle: h.clone(),
                    reason: *reason,
                    left_ms: left.as_millis() as u64,
                })
            })
            .collect()
    }

    pub fn restore(list: &[Returned], now: Instant) -> ReturnedSeats {
        let mut seats = ReturnedSeats::default();
        for r in list {
            let until = now + Duration::from_millis(r.left_ms);
            seats.remember(&r.handle, r.reason, until);
        }
        seats
    }
}

impl Ledger {
    /// What this ledger hands over when its server steps down.
    pub fn merge_offer(&mut self, now: Now) -> Merge {
        self.returned.prune(now.mono);
        let snapshot = self.snapshot(now);
        Merge {
            seats: snapshot.seats,
            returned: snapshot.returned,
        }
    }

    /// Merges what the other server handed over (see the module docs).
    /// Every change is committed as a record, so a standby follows it.
    pub fn merge(&mut self, merge: &Merge, now: Now) -> MergeOutcome {
        let mut outcome = MergeOutcome::default();
        for theirs in &merge.seats {
            let handle = &theirs.grant.handle;
            if let Some(ours) = self.seats.get(handle) {
                if let (Some(mine), Some(other)) = (&ours.grant.roam, &theirs.grant.roam) {
                    if other.until > mine.until {
                        self.commit(Event::RoamExtended(roam_extension(theirs, now)), now);
                        outcome.extended += 1;
                    }
                    continue;
                }
            }
            if let Some(ours) = self.seats.get_mut(handle) {
                let until = now.mono + Duration::from_millis(theirs.lease_left_ms);
                if !theirs.checked_in && !ours.checked_in && until > ours.lease_until {
                    ours.lease_until = until;
                    let returns = ours.returns_at();
                    self.deadlines
                        .push(std::cmp::Reverse((returns, handle.clone())));
                    outcome.extended += 1;
                }
                continue;
            }
            if self.returned.contains(handle, now.mono) {
                outcome.kept_returned += 1;
                continue;
            }
            let left = match &theirs.grant.roam {
                Some(roam) => roam.until.saturating_sub(now.unix),
                None if theirs.checked_in => theirs.hold_left_ms,
                None => theirs.lease_left_ms.max(theirs.hold_left_ms),
            };
            if left == 0 {
                continue; // it ran out there too
            }
            self.commit(Event::Adopt(theirs.clone()), now);
            outcome.adopted += 1;
        }
        for r in &merge.returned {
            let held = self.seats.get(&*r.handle).is_some_and(|s| !s.checked_in);
            if held {
                self.release(&r.handle, r.reason, now);
                outcome.returned += 1;
            } else {
                let until = now.mono + Duration::from_millis(r.left_ms);
                self.returned.remember(&r.handle, r.reason, until);
            }
        }
        outcome
    }

    /// Applies an `Adopt` record: the seat with the time it had left (a
    /// roam keeps its end: `add_seat` files it by the calendar).
    pub(super) fn adopt_seat(&mut self, seat: &SeatSnapshot, now: Now) {
        self.add_seat(seat.grant.clone(), now);
        if seat.grant.roam.is_some() {
            return;
        }
        if let Some(s) = self.seats.get_mut(&seat.grant.handle) {
            s.lease_until = now.mono + Duration::from_millis(seat.lease_left_ms);
            s.hold_until = now.mono + Duration::from_millis(seat.hold_left_ms);
            s.checked_in = seat.checked_in;
            let returns = s.returns_at();
            self.deadlines
                .push(std::cmp::Reverse((returns, seat.grant.handle.clone())));
        }
    }
}

/// The record that gives a roam held here the later end the other side
/// gave it.
fn roam_extension(theirs: &SeatSnapshot, now: Now) -> Extension {
    let g = &theirs.grant;
    let roam = g.roam.as_ref().expect("a roam");
    Extension {
        handle: g.handle.clone(),
        days: roam.days,
        until: roam.until,
        at: now.unix,
        feature: g.feature.clone(),
        version: g.version,
        count: g.count,
        user: g.user.clone(),
        host: g.host.clone(),
    }
}
