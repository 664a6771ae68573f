use super::*;

fn s(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

fn obs(client: usize, op: Op, handle: &str, sent: f64, got: f64, outcome: Outcome) -> Obs {
    Obs {
        client,
        op,
        handle: Some(handle.to_string()),
        sent: s(sent),
        got: s(got),
        outcome,
    }
}

fn setup(mode: Mode) -> Setup {
    Setup {
        mode,
        count: 1,
        lease: Duration::from_secs(10),
        settle: Duration::from_secs(3),
    }
}

fn refused(code: &str) -> Outcome {
    Outcome::Refused(code.to_string())
}

#[test]
fn one_seat_passed_from_client_to_client_is_no_over_grant() {
    let history = vec![
        obs(0, Op::Checkout, "a", 1.0, 1.1, Outcome::Ok),
        obs(0, Op::Heartbeat, "a", 4.0, 4.1, Outcome::Ok),
        obs(0, Op::Checkin, "a", 5.0, 5.1, Outcome::Ok),
        // Granted while the checkin was in flight: the server had it back.
        obs(1, Op::Checkout, "b", 5.0, 5.05, Outcome::Ok),
        // Client 1 stops heartbeating; its lease runs out at 15.0 and then
        // another client gets the seat.
        obs(2, Op::Checkout, "c", 15.0, 15.2, Outcome::Ok),
    ];
    let f = check(&setup(Mode::Witness), &history, &[], &[]);
    assert_eq!(f.peak, 1);
    assert_eq!(f.failures(), 0, "{f:?}");
    assert_eq!(f.grants, 3);
}

#[test]
fn two_holders_of_one_seat_are_an_over_grant_in_witness_mode_only() {
    let history = vec![
        obs(0, Op::Checkout, "a", 1.0, 1.1, Outcome::Ok),
        obs(1, Op::Checkout, "b", 2.0, 2.1, Outcome::Ok),
        obs(1, Op::Checkin, "b", 3.0, 3.1, Outcome::Ok),
    ];
    let windows = vec![Window {
        kind: "cut primary-backup > takeover".into(),
        text: "cut primary-backup for 6.0s".into(),
        start: s(0.5),
        end: s(6.5),
    }];
    let f = check(&setup(Mode::Witness), &history, &[], &windows);
    assert_eq!(f.peak, 2);
    assert_eq!(f.over_grants.len(), 1, "{f:?}");
    assert!(f.over_grants[0].contains("t=2.10s"), "{}", f.over_grants[0]);
    assert!(f.over_grants[0].contains("cut primary-backup"));
    // Two-server mode allows the pool twice over during a split.
    let f = check(&setup(Mode::TwoServer), &history, &[], &windows);
    assert_eq!((f.peak, f.bound, f.failures()), (2, 2, 0));
}

#[test]
fn a_seat_refused_while_its_lease_runs_is_lost_and_after_it_is_not() {
    let history = vec![
        obs(0, Op::Checkout, "a", 1.0, 1.1, Outcome::Ok),
        obs(0, Op::Heartbeat, "a", 2.0, 2.1, Outcome::Ok),
        obs(0, Op::Heartbeat, "a", 5.0, 5.1, refused("UNKNOWN_HANDLE")),
        obs(1, Op::Checkout, "b", 1.0, 1.1, Outcome::Ok),
        // No renewal answered for longer than the lease: refused legitimately.
        obs(
            1,
            Op::Heartbeat,
            "b",
            2.0,
            12.5,
            Outcome::NoAnswer("timeout".into()),
        ),
        obs(1, Op::Heartbeat, "b", 12.5, 12.6, refused("UNKNOWN_HANDLE")),
        obs(2, Op::Checkout, "c", 1.0, 1.1, Outcome::Ok),
        obs(2, Op::Lost, "c", 3.0, 3.0, refused("NO_SEATS")),
    ];
    let mut setup = setup(Mode::TwoServer);
    setup.count = 3;
    let f = check(&setup, &history, &[], &[]);
    assert_eq!(f.lost.len(), 2, "{f:?}");
    assert!(f.lost[0].contains("client 0") && f.lost[0].contains("UNKNOWN_HANDLE"));
    assert!(f.lost[1].contains("client 2") && f.lost[1].contains("NO_SEATS"));
    assert!(f.lost[0].contains("6.9s before"), "{}", f.lost[0]);
}

#[test]
fn a_checked_in_seat_listed_again_is_a_ghost() {
    let history = vec![
        obs(0, Op::Checkout, "a", 1.0, 1.1, Outcome::Ok),
        obs(0, Op::Checkin, "a", 2.0, 2.1, Outcome::Ok),
    ];
    let sample = |at: f64, state: &str| Sample {
        server: "backup".into(),
        sent: s(at),
        state: state.into(),
        holders: vec![(crate::ledger::seat_id("a"), 9)],
    };
    // Listed before the checkin was confirmed (or within a second): fine.
    let f = check(
        &setup(Mode::Witness),
        &history,
        &[sample(2.0, "active"), sample(2.5, "active")],
        &[],
    );
    assert_eq!(f.failures(), 0, "{f:?}");
    // Listed by a recovering server: it grants nothing new until its
    // recovery ends, by when the seat has expired.
    let f = check(
        &setup(Mode::Witness),
        &history,
        &[sample(8.0, "recovering")],
        &[],
    );
    assert_eq!(f.failures(), 0, "{f:?}");
    let f = check(
        &setup(Mode::Witness),
        &history,
        &[sample(8.0, "active")],
        &[],
    );
    assert_eq!(f.ghosts.len(), 1, "{f:?}");
    assert!(f.ghosts[0].contains("backup lists seat a"));
    // Two-server mode: a split may keep it on the other side until it heals.
    let windows = vec![Window {
        kind: "cut primary-backup > takeover".into(),
        text: "cut".into(),
        start: s(1.5),
        end: s(6.0),
    }];
    let two = setup(Mode::TwoServer);
    assert_eq!(
        check(&two, &history, &[sample(8.0, "active")], &windows).failures(),
        0
    );
    assert_eq!(
        check(&two, &history, &[sample(9.5, "active")], &windows)
            .ghosts
            .len(),
        1
    );
}
