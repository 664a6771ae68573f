//! The ledger's roaming rules, in memory, with a hand-driven clock.

use super::*;
use crate::ledger::{HandleKey, Options, Outcome, Record, SeededEntropy, WaiterId};
use crate::licence::{Count, Expiry, Pool, PoolKey, RoamAllowance, Share, Version};
use std::path::Path;
use std::time::{Duration, Instant};

/// 2027-01-15T08:00:00Z.
const T0: u64 = 1_800_000_000;
/// The midnight starting 2027-01-16.
const MIDNIGHT_AFTER_T0: u64 = 1_800_057_600;

fn pool(count: u32, roam: &[(u32, u32)], share: Share, expiry: Expiry) -> Pool {
    Pool {
        key: PoolKey {
            feature: "cad".into(),
            version: Version::parse("2").unwrap(),
            expiry,
            share,
        },
        count: Count::Seats(count),
        min_checkout_secs: 0,
        roam: roam
            .iter()
            .map(|&(days, seats)| RoamAllowance {
                days,
                seats: Count::Seats(seats),
            })
            .collect(),
    }
}

fn ledger(pools: Vec<Pool>) -> Ledger {
    Ledger::new(
        pools,
        Duration::from_secs(60),
        HandleKey::from_bytes([3; 32]),
        Box::new(SeededEntropy::new(3)),
    )
}

fn start() -> Now {
    Now {
        mono: Instant::now(),
        unix: T0,
    }
}

fn later(now: Now, secs: u64) -> Now {
    Now {
        mono: now.mono + Duration::from_secs(secs),
        unix: now.unix + secs,
    }
}

fn checkout(user: &str, count: u32) -> CheckoutRequest {
    CheckoutRequest {
        feature: "cad".into(),
        version: Version::parse("1").unwrap(),
        count,
        user: user.into(),
        host: format!("{user}-ws").into(),
        client: format!("{user}-c").into(),
        wait: false,
    }
}

fn ask(user: &str, count: u32, days: u32) -> RoamRequest {
    RoamRequest {
        checkout: checkout(user, count),
        days,
        hostid: format!("machine:{:016x}", user.len()),
    }
}

fn code(r: Result<std::sync::Arc<Grant>, Refusal>) -> Code {
    r.expect_err("refused").code
}

fn used(l: &Ledger) -> u64 {
    l.pools().map(|p| p.used).sum()
}

fn reasons(records: &[Record]) -> Vec<&'static str> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Release(ret) => Some(ret.reason.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_roam_ends_at_the_midnight_after_its_last_day() {
    let l = ledger(vec![]);
    assert_eq!(l.roam_until(T0, 1), MIDNIGHT_AFTER_T0 + DAY_SECS);
    assert_eq!(l.roam_until(T0, 7), MIDNIGHT_AFTER_T0 + 7 * DAY_SECS);
    // A second before midnight still counts that day as today.
    assert_eq!(
        l.roam_until(MIDNIGHT_AFTER_T0 - 1, 1),
        MIDNIGHT_AFTER_T0 + DAY_SECS
    );
    let mut short = ledger(vec![]);
    short.set_roam_day(10);
    assert_eq!(short.roam_until(1005, 2), 1030);
}

#[test]
fn a_roam_counts_its_seats_until_it_ends_without_heartbeats() {
    let now = start();
    let mut l = ledger(vec![pool(2, &[(7, 2)], Share::None, Expiry::Permanent)]);
    let g = l.roam(&ask("ann", 1, 3), now).unwrap();
    let roam = g.roam.clone().unwrap();
    assert_eq!((roam.days, roam.from), (3, T0));
    assert_eq!(roam.until, MIDNIGHT_AFTER_T0 + 3 * DAY_SECS);
    assert_eq!((used(&l), l.roaming("cad")), (1, 1));
    assert_eq!(l.roams().count(), 1);
    // No heartbeat for days: leases do not concern it.
    let just_before = later(now, roam.until - T0 - 1);
    l.expire_due(just_before);
    assert_eq!(used(&l), 1);
    assert_eq!(
        l.heartbeat(&g.handle, now).unwrap_err().code,
        Code::BadRequest
    );
    assert_eq!(
        l.checkin(&g.handle, now).unwrap_err().code,
        Code::BadRequest
    );
    l.take_records();
    l.expire_due(later(now, roam.until - T0));
    assert_eq!((used(&l), l.roaming("cad")), (0, 0));
    assert_eq!(reasons(&l.take_records()), ["roam_end"]);
    assert_eq!(l.roams().count(), 0);
}

#[test]
fn a_roam_draws_only_on_seats_the_licence_lets_roam() {
    let now = start();
    let mut l = ledger(vec![pool(
        10,
        &[(3, 2), (30, 1)],
        Share::None,
        Expiry::Permanent,
    )]);
    assert_eq!(code(l.roam(&ask("a", 1, 31), now)), Code::RoamTooLong);
    l.roam(&ask("a", 1, 30), now).unwrap();
    // The one 30-day seat is out: a second long roam finds no room ...
    assert_eq!(code(l.roam(&ask("b", 1, 4), now)), Code::TooManyRoaming);
    // ... but the two 3-day seats are there for short ones, and no more.
    l.roam(&ask("b", 2, 3), now).unwrap();
    assert_eq!(code(l.roam(&ask("c", 1, 1), now)), Code::TooManyRoaming);
    assert_eq!(l.roaming("cad"), 3);
    // The other seven serve checkouts as ever.
    let g = l.checkout(checkout("d", 7), WaiterId(1), now);
    assert!(matches!(g, Outcome::Granted(_)), "{g:?}");
    assert_eq!(used(&l), 10);
}

#[test]
fn short_roams_may_use_long_roam_seats() {
    let now = start();
    let mut l = ledger(vec![pool(
        5,
        &[(3, 1), (30, 1)],
        Share::None,
        Expiry::Permanent,
    )]);
    l.roam(&ask("a", 1, 2), now).unwrap();
    l.roam(&ask("b", 1, 2), now).unwrap();
    assert_eq!(code(l.roam(&ask("c", 1, 2), now)), Code::TooManyRoaming);
    // Were a long one asked for now, the short ones would have taken its seat.
    assert_eq!(code(l.roam(&ask("c", 1, 30), now)), Code::TooManyRoaming);
}

#[test]
fn refusals_say_why_and_are_recorded() {
    let now = start();
    let plain = pool(2, &[], Share::None, Expiry::Permanent);
    let mut l = ledger(vec![plain]);
    assert_eq!(code(l.roam(&ask("a", 1, 1), now)), Code::NotRoamable);
    let records = l.take_records();
    match &records[..] {
        [Record {
            event: Event::Denied(d),
            ..
        }] => assert_eq!((d.code, d.roam_days), (Code::NotRoamable, Some(1))),
        other => panic!("{other:?}"),
    }
    let mut r = RoamRequest {
        checkout: checkout("a", 1),
        ..ask("a", 1, 1)
    };
    r.checkout.feature = "nope".into();
    assert_eq!(code(l.roam(&r, now)), Code::NoSuchFeature);
    let mut l = ledger(vec![pool(2, &[(5, 2)], Share::None, Expiry::Permanent)]);
    assert_eq!(code(l.roam(&ask("a", 3, 1), now)), Code::TooManyRoaming);
    l.checkout(checkout("b", 2), WaiterId(1), now);
    assert_eq!(code(l.roam(&ask("a", 1, 1), now)), Code::NoSeats);
}

#[test]
fn a_roam_may_not_outlast_its_licence() {
    let now = start();
    // Serves through 2027-01-20: five more midnights after T0's day.
    let expiry = Expiry::parse("2027-01-20").unwrap();
    let mut l = ledger(vec![pool(2, &[(30, 2)], Share::None, expiry)]);
    assert_eq!(code(l.roam(&ask("a", 1, 6), now)), Code::RoamTooLong);
    let g = l.roam(&ask("a", 1, 5), now).unwrap();
    assert_eq!(code(l.extend_roam(&g.handle, 6, now)), Code::RoamTooLong);
}

#[test]
fn a_roam_takes_its_own_seats_whatever_the_sharing() {
    let now = start();
    let mut l = ledger(vec![pool(3, &[(5, 3)], Share::User, Expiry::Permanent)]);
    assert!(matches!(
        l.checkout(checkout("ann", 1), WaiterId(1), now),
        Outcome::Granted(_)
    ));
    l.roam(&ask("ann", 1, 2), now).unwrap();
    assert_eq!(used(&l), 2);
    // Her second online checkout still shares the first one's seat.
    l.checkout(checkout("ann", 1), WaiterId(2), now);
    assert_eq!(used(&l), 2);
}

#[test]
fn early_return_frees_the_seats_at_once() {
    let now = start();
    let mut l = ledger(vec![pool(1, &[(5, 1)], Share::None, Expiry::Permanent)]);
    let g = l.roam(&ask("a", 1, 5), now).unwrap();
    l.take_records();
    let back = l.return_roam(&g.handle, later(now, 60)).unwrap();
    assert_eq!(back.handle, g.handle);
    assert_eq!(used(&l), 0);
    assert_eq!(reasons(&l.take_records()), ["roam_return"]);
    assert_eq!(code(l.return_roam(&g.handle, now)), Code::UnknownHandle);
    let Outcome::Granted(seat) = l.checkout(checkout("b", 1), WaiterId(1), now) else {
        panic!("the returned seat is free");
    };
    assert_eq!(code(l.return_roam(&seat.handle, now)), Code::BadRequest);
}

#[test]
fn an_extension_moves_the_end_within_the_limits() {
    let now = start();
    let mut l = ledger(vec![pool(2, &[(7, 2)], Share::None, Expiry::Permanent)]);
    let g = l.roam(&ask("a", 1, 3), now).unwrap();
    l.take_records();
    // Two days on, seven more days from then.
    let then = later(now, 2 * DAY_SECS);
    let longer = l.extend_roam(&g.handle, 7, then).unwrap();
    let roam = longer.roam.clone().unwrap();
    assert_eq!(roam.until, MIDNIGHT_AFTER_T0 + 9 * DAY_SECS);
    assert_eq!((roam.days, roam.from), (7, T0));
    assert!(matches!(
        &l.take_records()[..],
        [Record {
            event: Event::RoamExtended(_),
            ..
        }]
    ));
    // Asking for less than it has changes nothing and records nothing.
    let same = l.extend_roam(&g.handle, 1, then).unwrap();
    assert_eq!(same.roam.clone().unwrap().until, roam.until);
    assert!(l.take_records().is_empty());
    assert_eq!(code(l.extend_roam(&g.handle, 8, then)), Code::RoamTooLong);
    // It now ends at the new end, not the old one.
    l.expire_due(later(now, MIDNIGHT_AFTER_T0 + 4 * DAY_SECS - T0));
    assert_eq!(used(&l), 1);
    l.expire_due(later(now, roam.until - T0));
    assert_eq!(used(&l), 0);
    assert_eq!(code(l.extend_roam("nope", 1, now)), Code::UnknownHandle);
}

#[test]
fn the_options_file_narrows_roaming() {
    let now = start();
    let mut l = ledger(vec![pool(10, &[(30, 10)], Share::None, Expiry::Permanent)]);
    let options = crate::ledger::policy::parse(
        "EXCLUDE_ROAM cad user eve\n\
         ROAM_MAX_DAYS 7 cad\n\
         ROAM_MAX_COUNT 4 cad\n\
         ROAM_LOWWATER 7 cad\n\
         MAX 1 cad user bob\n",
        Path::new("site.opt"),
    )
    .unwrap();
    l.set_options(options);
    let refusal = l.roam(&ask("eve", 1, 1), now).unwrap_err();
    assert_eq!(
        (refusal.code, refusal.rule.as_deref()),
        (Code::RoamExcluded, Some("site.opt:1"))
    );
    assert_eq!(code(l.roam(&ask("ann", 1, 8), now)), Code::RoamTooLong);
    // Ten seats, seven never roam: three may.
    l.roam(&ask("ann", 3, 7), now).unwrap();
    let refusal = l.roam(&ask("cy", 1, 7), now).unwrap_err();
    assert_eq!(
        (refusal.code, refusal.rule.as_deref()),
        (Code::TooManyRoaming, Some("site.opt:4"))
    );
    // The checkout rules hold for roams too.
    let mut l2 = ledger(vec![pool(10, &[(30, 10)], Share::None, Expiry::Permanent)]);
    l2.set_options(crate::ledger::policy::parse("MAX 1 cad user bob\n", Path::new("o")).unwrap());
    assert_eq!(code(l2.roam(&ask("bob", 2, 1), now)), Code::MaxReached);
    // Extensions are held to the length and exclusion rules.
    let g = l.roams().next().unwrap().clone();
    assert_eq!(code(l.extend_roam(&g.handle, 8, now)), Code::RoamTooLong);
    l.set_options(Options::default());
    l.extend_roam(&g.handle, 8, now).unwrap();
}

#[test]
fn only_an_open_gate_grants_or_extends_roams_but_any_server_serving_takes_returns() {
    let now = start();
    let mut l = ledger(vec![pool(2, &[(5, 2)], Share::None, Expiry::Permanent)]);
    let g = l.roam(&ask("a", 1, 2), now).unwrap();
    let recovering = Refusal::new(Code::Recovering, "recovering");
    l.set_gate(Gate::ReclaimOnly(recovering));
    assert_eq!(code(l.roam(&ask("b", 1, 2), now)), Code::Recovering);
    assert_eq!(code(l.extend_roam(&g.handle, 5, now)), Code::Recovering);
    l.return_roam(&g.handle, now).unwrap();
}

#[test]
fn replay_snapshot_and_takeover_keep_roams_exactly() {
    let now = start();
    let mut active = ledger(vec![pool(3, &[(9, 3)], Share::None, Expiry::Permanent)]);
    let a = active.roam(&ask("a", 1, 2), now).unwrap();
    let b = active.roam(&ask("b", 2, 3), now).unwrap();
    active.extend_roam(&a.handle, 9, later(now, 10)).unwrap();
    let records = active.take_records();
    // A standby applying the records, and a restart replaying them.
    let mut standby = ledger(vec![pool(3, &[(9, 3)], Share::None, Expiry::Permanent)]);
    let other = later(now, 5_000);
    for r in &records {
        assert!(standby.apply(r, other));
    }
    assert_eq!(standby.snapshot(other), active.snapshot(other));
    assert_eq!((used(&standby), standby.roaming("cad")), (3, 3));
    // A snapshot restored elsewhere, then a takeover's grace: same ends.
    let mut restored = ledger(vec![pool(3, &[(9, 3)], Share::None, Expiry::Permanent)]);
    restored.restore(&active.snapshot(now), other);
    restored.grant_grace(other);
    let ends: Vec<u64> = restored
        .roams()
        .map(|g| g.roam.as_ref().unwrap().until)
        .collect();
    let b_until = b.roam.clone().unwrap().until;
    assert_eq!(ends, [b_until, MIDNIGHT_AFTER_T0 + 9 * DAY_SECS]);
    // Days later, with no heartbeat anywhere, b's roam ends first.
    restored.expire_due(later(now, b_until - T0));
    assert_eq!((used(&restored), restored.roaming("cad")), (1, 1));
    assert_eq!(reasons(&restored.take_records()), ["roam_end"]);
}

#[test]
fn a_merge_after_a_split_keeps_roams_and_their_later_ends() {
    let now = start();
    let pools = || vec![pool(4, &[(9, 4)], Share::None, Expiry::Permanent)];
    let mut a = ledger(pools());
    let shared = a.roam(&ask("s", 1, 2), now).unwrap();
    let back = a.roam(&ask("r", 1, 2), now).unwrap();
    let mut b = ledger(pools());
    for record in a.take_records() {
        b.apply(&record, now);
    }
    // Split: the other side extends one roam, takes one back and grants one.
    let then = later(now, 3600);
    let extended = b.extend_roam(&shared.handle, 9, then).unwrap();
    b.return_roam(&back.handle, then).unwrap();
    let new = b.roam(&ask("n", 1, 3), then).unwrap();
    let merged = a.merge(&b.merge_offer(then), then);
    assert_eq!(
        (merged.adopted, merged.extended, merged.returned),
        (1, 1, 1)
    );
    let ends: Vec<(crate::ledger::Name, u64)> = a
        .roams()
        .map(|g| (g.handle.clone(), g.roam.as_ref().unwrap().until))
        .collect();
    let until = |g: &Grant| g.roam.as_ref().unwrap().until;
    let mut wanted = vec![
        (new.handle.clone(), until(&new)),
        (shared.handle.clone(), until(&extended)),
    ];
    wanted.sort_by_key(|(_, u)| *u);
    assert_eq!(ends, wanted);
    assert_eq!((used(&a), a.roaming("cad")), (2, 2));
    // Leases do not touch them: a minute without heartbeats changes nothing.
    a.expire_due(later(then, 120));
    assert_eq!(used(&a), 2);
}

#[test]
fn the_pair_s_roam_key_record_travels_with_snapshots() {
    let now = start();
    let mut a = ledger(vec![]);
    assert!(a.roam_key().is_none());
    let key = crate::ledger::RoamKey {
        key_id: "1f3a9c2e".into(),
        wrapped: "wrapped".into(),
        at: T0,
    };
    a.commit(Event::RoamKey(key.clone()), now);
    assert_eq!(a.roam_key(), Some(&key));
    let mut b = ledger(vec![]);
    b.restore(&a.snapshot(now), now);
    assert_eq!(b.roam_key(), Some(&key));
    // Not a seat change: nothing waits for it on its own.
    assert_eq!(a.take_change(), None);
}
