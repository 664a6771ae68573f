use super::*;
use crate::licence::{Count, Expiry, Share};

fn pool(feature: &str, version: &str, count: Count, share: Share, min_checkout: u32) -> Pool {
    Pool {
        key: PoolKey {
            feature: feature.into(),
            version: Version::parse(version).unwrap(),
            expiry: Expiry::Permanent,
            share,
        },
        count,
        min_checkout_secs: min_checkout,
        roam: Vec::new(),
    }
}

fn ledger(pools: Vec<Pool>) -> Ledger {
    Ledger::new(
        pools,
        Duration::from_secs(60),
        HandleKey::from_bytes([1; 32]),
        Box::new(SeededEntropy::new(1)),
    )
}

fn req(feature: &str, user: &str) -> CheckoutRequest {
    CheckoutRequest {
        feature: feature.into(),
        version: Version::parse("1.0").unwrap(),
        count: 1,
        user: user.into(),
        host: format!("{user}-host").into(),
        client: format!("{user}-client").into(),
        wait: false,
    }
}

fn at(base: Now, secs: u64) -> Now {
    Now {
        mono: base.mono + Duration::from_secs(secs),
        unix: base.unix + secs,
    }
}

fn granted(outcome: Outcome) -> std::sync::Arc<Grant> {
    match outcome {
        Outcome::Granted(g) => g,
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn denied(outcome: Outcome) -> Code {
    match outcome {
        Outcome::Denied(r) => r.code,
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn used(l: &Ledger, feature: &str) -> u64 {
    l.pools()
        .filter(|p| &*p.pool.key.feature == feature)
        .map(|p| p.used)
        .sum()
}

#[test]
fn grants_up_to_the_count_then_denies_and_checkin_frees() {
    let now = Now::current();
    let mut l = ledger(vec![pool("cad", "2.0", Count::Seats(2), Share::None, 0)]);
    let a = granted(l.checkout(req("cad", "a"), WaiterId(1), now));
    granted(l.checkout(req("cad", "b"), WaiterId(2), now));
    assert_eq!(
        denied(l.checkout(req("cad", "c"), WaiterId(3), now)),
        Code::NoSeats
    );
    assert_eq!(l.checkin(&a.handle, now).unwrap(), CheckinOutcome::Returned);
    granted(l.checkout(req("cad", "c"), WaiterId(3), now));
    assert_eq!(used(&l, "cad"), 2);
    assert_eq!(
        l.checkin(&a.handle, now).unwrap_err().code,
        Code::UnknownHandle
    );
}

#[test]
fn every_change_is_a_numbered_record() {
    let now = Now::current();
    let mut l = ledger(vec![pool("cad", "2.0", Count::Seats(1), Share::None, 0)]);
    let a = granted(l.checkout(req("cad", "a"), WaiterId(1), now));
    denied(l.checkout(req("cad", "b"), WaiterId(2), now));
    l.checkin(&a.handle, now).unwrap();
    let records = l.take_records();
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert!(matches!(records[0].event, Event::Grant(_)));
    assert!(matches!(
        records[1].event,
        Event::Denied(Denial {
            code: Code::NoSeats,
            ..
        })
    ));
    assert!(matches!(
        records[2].event,
        Event::Release(Return {
            reason: Reason::Checkin,
            ..
        })
    ));
    assert!(l.take_records().is_empty());
}

#[test]
fn replaying_records_rebuilds_the_same_seats() {
    let now = Now::current();
    let pools = vec![pool("cad", "2.0", Count::Seats(3), Share::None, 0)];
    let mut l = ledger(pools.clone());
    let a = granted(l.checkout(req("cad", "a"), WaiterId(1), now));
    let b = granted(l.checkout(req("cad", "b"), WaiterId(2), now));
    l.checkin(&a.handle, now).unwrap();
    let records = l.take_records();
    let mut replica = ledger(pools);
    for r in &records {
        assert!(replica.apply(r, now));
        assert!(!replica.apply(r, now), "applying twice is a no-op");
    }
    assert!(replica.seat(&b.handle).is_some());
    assert!(replica.seat(&a.handle).is_none());
    assert_eq!(used(&replica, "cad"), 1);
    assert_eq!(replica.last_seq(), l.last_seq());
}

#[test]
fn versions_and_unknown_features() {
    let now = Now::current();
    let mut l = ledger(vec![
        pool("cad", "2.0", Count::Seats(1), Share::None, 0),
        pool("cad", "3.0", Count::Seats(1), Share::None, 0),
    ]);
    let mut r = req("cad", "a");
    r.version = Version::parse("2.5").unwrap();
    let g = granted(l.checkout(r.clone(), WaiterId(1), now));
    assert_eq!(g.pool.version, Version::parse("3").unwrap());
    assert_eq!(
        denied(l.checkout(r.clone(), WaiterId(2), now)),
        Code::NoSeats
    );
    r.version = Version::parse("4").unwrap();
    assert_eq!(denied(l.checkout(r, WaiterId(3), now)), Code::NoVersion);
    assert_eq!(
        denied(l.checkout(req("nope", "a"), WaiterId(4), now)),
        Code::NoSuchFeature
    );
    let mut big = req("cad", "a");
    big.count = 2;
    assert_eq!(
        denied(l.checkout(big, WaiterId(5), now)),
        Code::CountTooLarge
    );
}

#[test]
fn expired_pools_do_not_serve() {
    let now = Now::current();
    let mut p = pool("cad", "1.0", Count::Seats(5), Share::None, 0);
    p.key.expiry = Expiry::Date(now.today().add_days(-1));
    let mut l = ledger(vec![p]);
    assert_eq!(
        denied(l.checkout(req("cad", "a"), WaiterId(1), now)),
        Code::Expired
    );
}

#[test]
fn soonest_expiring_pool_serves_first() {
    let now = Now::current();
    let mut soon = pool("cad", "1.0", Count::Seats(1), Share::None, 0);
    soon.key.expiry = Expiry::Date(now.today().add_days(3));
    let later = pool("cad", "1.0", Count::Seats(1), Share::None, 0);
    let mut l = ledger(vec![later, soon.clone()]);
    let g = granted(l.checkout(req("cad", "a"), WaiterId(1), now));
    assert_eq!(g.pool, soon.key);
}

#[test]
fn uncounted_pools_never_run_out() {
    let now = Now::current();
    let mut l = ledger(vec![pool(
        "viewer",
        "1.0",
        Count::Uncounted,
        Share::None,
        0,
    )]);
    for i in 0..1000 {
        granted(l.checkout(req("viewer", &format!("u{i}")), WaiterId(i), now));
    }
}

#[test]
fn share_user_takes_one_seat_per_user() {
    let now = Now::current();
    let mut l = ledger(vec![pool("cad", "1.0", Count::Seats(1), Share::User, 0)]);
    let a1 = granted(l.checkout(req("cad", "alice"), WaiterId(1), now));
    let mut other_host = req("cad", "alice");
    other_host.host = "elsewhere".into();
    let a2 = granted(l.checkout(other_host, WaiterId(2), now));
    assert_eq!(
        denied(l.checkout(req("cad", "bob"), WaiterId(3), now)),
        Code::NoSeats
    );
    l.checkin(&a1.handle, now).unwrap();
    assert_eq!(
        denied(l.checkout(req("cad", "bob"), WaiterId(3), now)),
        Code::NoSeats
    );
    l.checkin(&a2.handle, now).unwrap();
    granted(l.checkout(req("cad", "bob"), WaiterId(3), now));
}

#[test]
fn share_host_takes_one_seat_per_host() {
    let now = Now::current();
    let mut l = ledger(vec![pool("cad", "1.0", Count::Seats(1), Share::Host, 0)]);
    let mut a = req("cad", "alice");
    a.host = "ws1".into();
    let mut b = req("cad", "bob");
    b.host = "ws1".into();
    granted(l.checkout(a, WaiterId(1), now));
    granted(l.checkout(b, WaiterId(2), now));
    assert_eq!(
        denied(l.checkout(req("cad", "carol"), WaiterId(3), now)),
        Code::NoSeats
    );
}

#[test]
fn leases_expire_unless_renewed() {
    let t0 = Now::current();
    let mut l = ledger(vec![pool("cad", "1.0", Count::Seats(2), Share::None, 0)]);
    let a = granted(l.checkout(req("cad", "a"), WaiterId(1), t0));
    let b = granted(l.checkout(req("cad", "b"), WaiterId(2), t0));
    l.take_records();
    l.heartbeat(&b.handle, at(t0, 50)).unwrap();
    l.expire_due(at(t0, 61));
    assert!(l.seat(&a.handle).is_none());
    assert!(l.seat(&b.handle).is_some());
    let records = l.take_records();
    assert!(matches!(
        &records[..],
        [Record { event: Event::Release(Return { reason: Reason::Expired, handle, .. }), .. }] if *handle == a.handle
    ));
    l.expire_due(at(t0, 111));
    assert!(l.seat(&b.handle).is_none());
    assert_eq!(
        l.heartbeat(&b.handle, at(t0, 112)).unwrap_err().code,
        Code::UnknownHandle
    );
}

#[test]
fn min_checkout_keeps_a_checked_in_seat_out() {
    let t0 = Now::current();
    let mut l = ledger(vec![pool("cad", "1.0", Count::Seats(1), Share::None, 30)]);
    let a = granted(l.checkout(req("cad", "a"), WaiterId(1), t0));
    match l.checkin(&a.handle, at(t0, 5)).unwrap() {
        CheckinOutcome::HeldFor(left) => assert_eq!(left, Duration::from_secs(25)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        denied(l.checkout(req("cad", "b"), WaiterId(2), at(t0, 10))),
        Code::NoSeats
    );
    l.expire_due(at(t0, 29));
    assert!(l.seat(&a.handle).is_some());
    l.expire_due(at(t0, 30));
    assert!(l.seat(&a.handle).is_none());
    granted(l.checkout(req("cad", "b"), WaiterId(2), at(t0, 31)));
}

#[test]
fn queue_grants_in_fifo_order_and_blocks_overtaking() {
    let now = Now::current();
    let mut l = ledger(vec![pool("cad", "1.0", Count::Seats(1), Share::None, 0)]);
    let a = granted(l.checkout(req("cad", "a"), WaiterId(1), now));
    let mut b = req("cad", "b");
    b.wait = true;
    let mut c = req("cad", "c");
    c.wait = true;
    assert_eq!(
        l.checkout(b, WaiterId(2), now),
        Outcome::Queued { position: 1 }
    );
    assert_eq!(
        l.checkout(c, WaiterId(3), now),
        Outcome::Queued { position: 2 }
    );
    l.checkin(&a.handle, now).unwrap();
    let woken = l.take_woken();
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].waiter, WaiterId(2));
    let b_grant = match &woken[0].outcome {
        Outcome::Granted(g) => g.clone(),
        other => panic!("{other:?}"),
    };
    // A newcomer does not overtake c, who is still waiting.
    assert_eq!(
        denied(l.checkout(req("cad", "d"), WaiterId(4), now)),
        Code::NoSeats
    );
    l.checkin(&b_grant.handle, now).unwrap();
    assert_eq!(l.take_woken()[0].waiter, WaiterId(3));
    assert_eq!(l.queue_len("cad"), 0);
}

#[test]
fn a_cancelled_waiter_is_skipped() {
    let now = Now::current();
    let mut l = ledger(vec![pool("cad", "1.0", Count::Seats(1), Share::None, 0)]);
    let a = granted(l.checkout(req("cad", "a"), WaiterId(1), now));
    let mut b = req("cad", "b");
    b.wait = true;
    l.checkout(b, WaiterId(2), now);
    l.cancel_wait(WaiterId(2));
    l.checkin(&a.handle, now).unwrap();
    assert!(l.take_woken().is_empty());
    assert_eq!(used(&l, "cad"), 0);
}

#[test]
fn reclaim_renews_known_handles_and_regrants_proven_unknown_ones() {
    let now = Now::current();
    let pools = vec![pool("cad", "1.0", Count::Seats(1), Share::None, 0)];
    let mut primary = ledger(pools.clone());
    let r = req("cad", "a");
    let g = granted(primary.checkout(r.clone(), WaiterId(1), now));
    assert_eq!(
        granted(primary.reclaim(&g.handle, &r, now)).handle,
        g.handle
    );

    // A peer with the same key never saw the grant, yet honours it.
    let mut backup = ledger(pools.clone());
    backup.set_gate(Gate::ReclaimOnly(Refusal::new(
        Code::Recovering,
        "recovering",
    )));
    assert_eq!(
        denied(backup.checkout(req("cad", "b"), WaiterId(1), now)),
        Code::Recovering
    );
    assert_eq!(granted(backup.reclaim(&g.handle, &r, now)).handle, g.handle);
    assert_eq!(used(&backup, "cad"), 1);

    // A forged claim (different user) is refused, as is another key.
    let mut forged = r.clone();
    forged.user = "mallory".into();
    let mut fresh = ledger(pools.clone());
    assert_eq!(
        denied(fresh.reclaim(&g.handle, &forged, now)),
        Code::BadHandle
    );
    let mut stranger = Ledger::new(
        pools,
        Duration::from_secs(60),
        HandleKey::from_bytes([2; 32]),
        Box::new(SeededEntropy::new(1)),
    );
    assert_eq!(
        denied(stranger.reclaim(&g.handle, &r, now)),
        Code::BadHandle
    );
}

#[test]
fn reclaim_is_counted() {
    let now = Now::current();
    let pools = vec![pool("cad", "1.0", Count::Seats(1), Share::None, 0)];
    let mut a = ledger(pools.clone());
    let ga = granted(a.checkout(req("cad", "a"), WaiterId(1), now));
    let mut b = ledger(pools);
    granted(b.checkout(req("cad", "b"), WaiterId(1), now));
    assert_eq!(
        denied(b.reclaim(&ga.handle, &req("cad", "a"), now)),
        Code::NoSeats
    );
}

#[test]
fn reread_keeps_seats_of_a_shrunk_pool_and_releases_those_of_a_gone_one() {
    let now = Now::current();
    let mut l = ledger(vec![
        pool("cad", "1.0", Count::Seats(3), Share::None, 0),
        pool("old", "1.0", Count::Seats(1), Share::None, 0),
    ]);
    let a = granted(l.checkout(req("cad", "a"), WaiterId(1), now));
    let b = granted(l.checkout(req("cad", "b"), WaiterId(2), now));
    let o = granted(l.checkout(req("old", "a"), WaiterId(3), now));
    l.take_records();
    l.set_pools(
        vec![pool("cad", "1.0", Count::Seats(1), Share::None, 0)],
        Orphans::Return,
        now,
    );
    assert!(l.seat(&a.handle).is_some() && l.seat(&b.handle).is_some());
    assert!(l.seat(&o.handle).is_none());
    assert!(l.take_records().iter().any(|r| matches!(
        r.event,
        Event::Release(Return {
            reason: Reason::LicenceGone,
            ..
        })
    )));
    assert_eq!(
        denied(l.checkout(req("cad", "c"), WaiterId(4), now)),
        Code::NoSeats
    );
    l.checkin(&a.handle, now).unwrap();
    assert_eq!(
        denied(l.checkout(req("cad", "c"), WaiterId(4), now)),
        Code::NoSeats
    );
    l.checkin(&b.handle, now).unwrap();
    granted(l.checkout(req("cad", "c"), WaiterId(4), now));
}

#[test]
fn a_reread_that_skipped_broken_lines_keeps_the_seats_of_a_gone_pool() {
    let now = Now::current();
    let cad = pool("cad", "1.0", Count::Seats(2), Share::None, 0);
    let old = pool("old", "1.0", Count::Seats(1), Share::None, 0);
    let mut l = ledger(vec![cad.clone(), old.clone()]);
    let o = granted(l.checkout(req("old", "a"), WaiterId(1), now));
    l.take_records();
    l.set_pools(vec![cad.clone()], Orphans::Keep, now);
    // Kept, heartbeats go on, no record; new checkouts are refused.
    assert!(l.seat(&o.handle).is_some());
    assert!(l.heartbeat(&o.handle, now).is_ok());
    assert!(l.take_records().is_empty());
    assert_eq!(
        denied(l.checkout(req("old", "b"), WaiterId(2), now)),
        Code::NoSuchFeature
    );
    // The line is fixed: the seat counts in its pool again.
    l.set_pools(vec![cad, old], Orphans::Return, now);
    assert_eq!(used(&l, "old"), 1);
    assert_eq!(
        denied(l.checkout(req("old", "b"), WaiterId(3), now)),
        Code::NoSeats
    );
    // Or its lease ends as any other.
    l.expire_due(at(now, 61));
    assert!(l.seat(&o.handle).is_none());
}

#[test]
fn snapshot_restore_and_grace() {
    let t0 = Now::current();
    let pools = vec![pool("cad", "1.0", Count::Seats(2), Share::None, 0)];
    let mut l = ledger(pools.clone());
    let a = granted(l.checkout(req("cad", "a"), WaiterId(1), t0));
    let snap = l.snapshot(at(t0, 10));
    assert_eq!(snap.seats[0].lease_left_ms, 50_000);
    let t1 = Now::current();
    let mut restored = ledger(pools);
    restored.restore(&snap, t1);
    assert_eq!(restored.last_seq(), 1);
    assert_eq!(used(&restored, "cad"), 1);
    restored.expire_due(at(t1, 49));
    assert!(restored.seat(&a.handle).is_some());
    restored.grant_grace(at(t1, 49));
    restored.expire_due(at(t1, 100));
    assert!(
        restored.seat(&a.handle).is_some(),
        "grace gives a full lease"
    );
    restored.expire_due(at(t1, 110));
    assert!(restored.seat(&a.handle).is_none());
}

#[test]
fn closed_gate_grants_nothing() {
    let now = Now::current();
    let mut l = ledger(vec![pool("cad", "1.0", Count::Seats(2), Share::None, 0)]);
    let g = granted(l.checkout(req("cad", "a"), WaiterId(1), now));
    l.set_gate(Gate::Closed(Refusal::new(Code::Standby, "standby")));
    assert_eq!(
        denied(l.checkout(req("cad", "b"), WaiterId(2), now)),
        Code::Standby
    );
    // The holder of a known seat can still renew it.
    assert_eq!(
        granted(l.reclaim(&g.handle, &req("cad", "a"), now)).handle,
        g.handle
    );
}
