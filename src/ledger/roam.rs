//! Roaming in the ledger: seats taken away from the network for days.
//!
//! A roam is a seat like any other (it is granted, journaled, replicated,
//! counted against its pool and against MAX and RESERVE), with three
//! differences:
//!
//! - It ends by the calendar, not by a lease: at the UTC midnight after
//!   its last day, by the wall clock of whichever server is active then
//!   ([`Roam::until`], written once into the record). It needs no
//!   heartbeat, and a restart or takeover gives it no grace: it already
//!   has days.
//! - It draws only on pools whose licence lines allow roaming that long
//!   (`roam=DAYS`), and only on their roamable seats: a pool with 7 seats
//!   that may not roam and 3 that may roam 30 days has 3 to roam
//!   ([`Ledger::roam_room`] counts by roam length).
//! - It takes seats of its own whatever `share=` says: the seats leave
//!   with the machine.
//!
//! The options file narrows it further (`policy::roam`).

use super::event::{Extension, Grant, Reason, Roam, RoamKey};
use super::policy::{PolicyDenial, Requester};
use super::{unknown_handle, CheckoutRequest, Event, Gate, GrantRules, Ledger, Now, Refusal};
use crate::codes::Code;
use crate::licence::{Expiry, Version};
use std::sync::Arc;

/// Seconds in a day of the calendar roams follow.
pub const DAY_SECS: u64 = 86_400;

/// A client's request to roam.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoamRequest {
    /// Feature, version, count and who (`wait` is ignored: roams never wait).
    pub checkout: CheckoutRequest,
    /// Days asked for, counted after today.
    pub days: u32,
    /// The host id of the machine the seats roam to.
    pub hostid: String,
}

/// The refusal for lease requests (heartbeat, checkin, reclaim) about a roam.
pub(super) fn not_a_lease() -> Refusal {
    Refusal::new(
        Code::BadRequest,
        "this handle is a roam: it needs no heartbeat; return it with ROAM-RETURN",
    )
}

fn policy_refusal(d: PolicyDenial) -> Refusal {
    Refusal {
        code: d.code,
        message: d.message,
        rule: Some(d.rule),
    }
}

impl Ledger {
    /// Sets the length of a roam day (tests shorten it; 86,400 s otherwise).
    pub fn set_roam_day(&mut self, secs: u64) {
        self.roam_day = secs.max(1);
    }

    /// When a roam of `days` days asked for at `unix` ends: the midnight
    /// after the `days`-th day after today, so a roam lasts more than
    /// `days` whole days (at most one more) and ends at a midnight (UTC,
    /// by this server's calendar).
    pub fn roam_until(&self, unix: u64, days: u32) -> u64 {
        let day = self.roam_day;
        (unix / day + days as u64 + 1).saturating_mul(day)
    }

    /// Grants a roam, or refuses it with a stable code (and records the
    /// refusal for the report log).
    pub fn roam(&mut self, request: &RoamRequest, now: Now) -> Result<Arc<Grant>, Refusal> {
        if let Gate::Closed(refusal) | Gate::ReclaimOnly(refusal) = &self.gate {
            return Err(refusal.clone());
        }
        let roam = Roam {
            hostid: request.hostid.clone(),
            days: request.days,
            from: now.unix,
            until: self.roam_until(now.unix, request.days),
        };
        let checkout = &request.checkout;
        let result = self.try_grant(checkout, None, GrantRules::Checkout, Some(&roam), now);
        if let Err(refusal) = &result {
            self.record_denial(checkout, refusal, Some(request.days), now);
        }
        result
    }

    /// Makes a roam last `days` days from today, within the same limits as
    /// a new roam of that length (its seats are out already, so only the
    /// length and who may roam are checked again). A roam already lasting
    /// longer is left as it is. Returns the roam's grant as it now stands.
    pub fn extend_roam(
        &mut self,
        handle: &str,
        days: u32,
        now: Now,
    ) -> Result<Arc<Grant>, Refusal> {
        if let Gate::Closed(refusal) | Gate::ReclaimOnly(refusal) = &self.gate {
            return Err(refusal.clone());
        }
        let seat = self.seats.get(handle).ok_or_else(unknown_handle)?;
        let Some(roam) = &seat.grant.roam else {
            return Err(not_a_roam());
        };
        let until = self.roam_until(now.unix, days);
        if until <= roam.until {
            return Ok(seat.grant.clone());
        }
        let grant = seat.grant.clone();
        let who = Requester {
            user: &grant.user,
            host: &grant.host,
        };
        self.options
            .admit_roam(&grant.feature, who, days)
            .map_err(policy_refusal)?;
        let Some(pool) = seat.pool else {
            return Err(Refusal::new(
                Code::NotRoamable,
                format!(
                    "the licence this roam of {} was granted from is no longer served here",
                    grant.feature
                ),
            ));
        };
        let longest = self.pools[pool].pool.longest_roam().unwrap_or(0);
        if days > longest {
            return Err(too_long(&grant.feature, longest));
        }
        if !self.outlasts(pool, until) {
            return Err(outlives_licence(&grant.feature, days));
        }
        if !self.roam_room(pool, days, grant.count, Some(handle)) {
            return Err(no_room(&grant.feature, days));
        }
        self.commit(
            Event::RoamExtended(Extension {
                handle: Arc::clone(&grant.handle),
                days,
                until,
                at: now.unix,
                feature: grant.feature.clone(),
                version: grant.version,
                count: grant.count,
                user: grant.user.clone(),
                host: grant.host.clone(),
            }),
            now,
        );
        Ok(self.seats[handle].grant.clone())
    }

    /// A roam handed back early: its seats return at once.
    pub fn return_roam(&mut self, handle: &str, now: Now) -> Result<Arc<Grant>, Refusal> {
        let seat = self.seats.get(handle).ok_or_else(unknown_handle)?;
        if seat.grant.roam.is_none() {
            return Err(not_a_roam());
        }
        let grant = seat.grant.clone();
        self.release(handle, Reason::RoamReturn, now);
        Ok(grant)
    }

    /// The pair's roam key as its history last recorded it, if it has.
    pub fn roam_key(&self) -> Option<&RoamKey> {
        self.roam_key.as_ref()
    }

    /// Seats of `feature` out roaming now.
    pub fn roaming(&self, feature: &str) -> u64 {
        self.roaming.get(feature).copied().unwrap_or(0)
    }

    /// Every roam, soonest end first.
    pub fn roams(&self) -> impl Iterator<Item = &Grant> {
        self.roam_ends
            .iter()
            .filter_map(|(_, handle)| self.seats.get(handle).map(|s| &*s.grant))
    }

    /// Returns every roam whose end has come by the wall clock.
    pub(super) fn end_roams(&mut self, now: Now) {
        while let Some((until, handle)) = self.roam_ends.first().cloned() {
            if until > now.unix {
                break;
            }
            if self.seats.contains_key(&handle) {
                self.release(&handle, Reason::RoamEnd, now);
            }
            self.roam_ends.remove(&(until, handle));
        }
    }

    /// The pools a roam may draw on, of the `candidates` a checkout of the
    /// same feature and version could use; or why there are none.
    pub(super) fn roam_candidates(
        &self,
        candidates: Vec<usize>,
        request: &CheckoutRequest,
        roam: &Roam,
    ) -> Result<Vec<usize>, Refusal> {
        let feature = &request.feature;
        let roamable: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| self.pools[i].pool.longest_roam().is_some())
            .collect();
        let Some(longest) = roamable
            .iter()
            .filter_map(|&i| self.pools[i].pool.longest_roam())
            .max()
        else {
            let asked = Version::parse("0").expect("0 is a version");
            let what = if request.version == asked {
                feature.to_string()
            } else {
                format!("{feature} {}", request.version)
            };
            return Err(Refusal::new(
                Code::NotRoamable,
                format!("the licence for {what} does not let its seats roam"),
            ));
        };
        if roam.days > longest {
            return Err(too_long(feature, longest));
        }
        let who = Requester {
            user: &request.user,
            host: &request.host,
        };
        self.options
            .admit_roam(feature, who, roam.days)
            .map_err(policy_refusal)?;
        let lasting: Vec<usize> = roamable
            .into_iter()
            .filter(|&i| self.outlasts(i, roam.until))
            .collect();
        if lasting.is_empty() {
            return Err(outlives_licence(feature, roam.days));
        }
        self.options
            .admit_roam_count(
                feature,
                request.count,
                self.roaming(feature),
                self.licensed(feature),
            )
            .map_err(policy_refusal)?;
        let room: Vec<usize> = lasting
            .into_iter()
            .filter(|&i| self.roam_room(i, roam.days, request.count, None))
            .collect();
        if room.is_empty() {
            return Err(no_room(feature, roam.days));
        }
        Ok(room)
    }

    /// Whether pool `pool` still serves at `until` (its last day ends then
    /// or later).
    fn outlasts(&self, pool: usize, until: u64) -> bool {
        match self.pools[pool].pool.key.expiry {
            Expiry::Permanent => true,
            Expiry::Date(last) => {
                let end = (last.days_since_epoch() + 1).max(0) as u64 * DAY_SECS;
                until <= end
            }
        }
    }

    /// Seats of `feature` its pools hold in all; `None` when any is uncounted.
    fn licensed(&self, feature: &str) -> Option<u64> {
        self.by_feature
            .get(feature)?
            .iter()
            .try_fold(0u64, |sum, &i| {
                self.pools[i].pool.limit().map(|n| sum.saturating_add(n))
            })
    }

    /// Whether pool `pool` has roamable seats for `count` more seats
    /// roaming `days` days, besides the roams out now (but `except`).
    ///
    /// Seats allowed to roam d days may carry any roam of d days or fewer.
    /// So the roams fit exactly when, for every length x, the roams of x
    /// days or more are no more than the seats allowed x days or more (the
    /// lengths of the roams themselves are the only x worth trying).
    pub(super) fn roam_room(
        &self,
        pool: usize,
        days: u32,
        count: u32,
        except: Option<&str>,
    ) -> bool {
        let p = &self.pools[pool].pool;
        let mut roams: Vec<(u32, u64)> = self
            .roam_ends
            .iter()
            .filter(|(_, handle)| Some(&**handle) != except)
            .filter_map(|(_, handle)| self.seats.get(handle))
            .filter(|s| s.pool == Some(pool))
            .filter_map(|s| {
                s.grant
                    .roam
                    .as_ref()
                    .map(|r| (r.days, s.grant.count as u64))
            })
            .collect();
        roams.push((days, count as u64));
        roams.iter().all(|&(x, _)| {
            let demand: u64 = roams.iter().filter(|(d, _)| *d >= x).map(|(_, c)| c).sum();
            p.roam_seats(x).is_none_or(|supply| demand <= supply)
        })
    }

    /// Books a granted roam; false for any other seat.
    pub(super) fn add_roam(&mut self, grant: &Grant) -> bool {
        let Some(roam) = &grant.roam else {
            return false;
        };
        self.roam_ends.insert((roam.until, grant.handle.clone()));
        *self.roaming.entry(grant.feature.to_string()).or_default() += grant.count as u64;
        true
    }

    /// Unbooks a roam that came back (nothing for other seats).
    pub(super) fn drop_roam(&mut self, grant: &Grant) {
        let Some(roam) = &grant.roam else {
            return;
        };
        self.roam_ends.remove(&(roam.until, grant.handle.clone()));
        if let Some(n) = self.roaming.get_mut(&*grant.feature) {
            *n = n.saturating_sub(grant.count as u64);
            if *n == 0 {
                self.roaming.remove(&*grant.feature);
            }
        }
    }

    pub(super) fn apply_extension(&mut self, ext: &Extension) {
        let Some(seat) = self.seats.get_mut(&ext.handle) else {
            return;
        };
        let Some(roam) = Arc::make_mut(&mut seat.grant).roam.as_mut() else {
            return;
        };
        self.roam_ends.remove(&(roam.until, ext.handle.clone()));
        roam.until = ext.until;
        roam.days = ext.days;
        self.roam_ends.insert((ext.until, ext.handle.clone()));
    }
}

fn not_a_roam() -> Refusal {
    Refusal::new(
        Code::BadRequest,
        "this handle is a seat checked out here, not a roam: check it in instead",
    )
}

fn too_long(feature: &str, longest: u32) -> Refusal {
    Refusal::new(
        Code::RoamTooLong,
        format!("the licence lets {feature} roam for at most {longest} day(s)"),
    )
}

fn outlives_licence(feature: &str, days: u32) -> Refusal {
    Refusal::new(
        Code::RoamTooLong,
        format!("a roam of {days} day(s) would outlast every licence for {feature} that may roam"),
    )
}

fn no_room(feature: &str, days: u32) -> Refusal {
    Refusal::new(
        Code::TooManyRoaming,
        format!("every seat of {feature} the licence lets roam {days} day(s) is out roaming"),
    )
}

#[cfg(test)]
#[path = "roam_tests.rs"]
mod tests;
