//! Every combination of the gate's inputs, checked against the rules as
//! docs/ARCHITECTURE.md states them, plus rows spelled out by hand.

use super::*;
use crate::protocol::peer::PeerState;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum When {
    None,
    Past,
    Future,
}

impl When {
    const ALL: [When; 3] = [When::None, When::Past, When::Future];

    fn at(self, now: Instant) -> Option<Instant> {
        match self {
            When::None => None,
            When::Past => Some(now - Duration::from_secs(1)),
            When::Future => Some(now + Duration::from_secs(1)),
        }
    }
}

/// Every role a server can be in: standalone, or each pair state.
fn roles() -> Vec<Option<PeerState>> {
    let mut all = vec![None];
    for s in [
        PeerState::Starting,
        PeerState::Syncing,
        PeerState::Ready,
        PeerState::Active,
        PeerState::Recovering,
    ] {
        all.push(Some(s));
    }
    all
}

struct Row {
    inputs: GateInputs,
    now: Instant,
}

/// Every combination of every input (each boolean both ways, each
/// deadline absent, past and to come).
fn every_row() -> Vec<Row> {
    let now = Instant::now() + Duration::from_secs(10);
    let mut rows = Vec::new();
    for role in roles() {
        for fenced in [false, true] {
            for lease in When::ALL {
                for paused in [false, true] {
                    for recovery in When::ALL {
                        for journal_failed in [false, true] {
                            for shutting_down in [false, true] {
                                for handing_over in [false, true] {
                                    for backup_expired in [false, true] {
                                        let pair = role.map(|state| RoleView {
                                            state,
                                            epoch: 3,
                                            active: Some("other:27000".into()),
                                            recovery_until: recovery.at(now),
                                            backup_expired,
                                        });
                                        if pair.is_none() && backup_expired {
                                            continue; // only a backup can expire
                                        }
                                        rows.push(Row {
                                            now,
                                            inputs: GateInputs {
                                                recovery_until: if pair.is_none() {
                                                    recovery.at(now)
                                                } else {
                                                    None
                                                },
                                                pair,
                                                fenced,
                                                grant_lease: lease.at(now),
                                                paused,
                                                journal_failed,
                                                shutting_down,
                                                handing_over,
                                            },
                                        });
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    rows
}

/// Reclaims past the count: only where a gate grants, in two-server mode
/// or during a recovery period.
fn expected_past_count(i: &GateInputs, now: Instant, gate: &Gate) -> bool {
    let recovering = i
        .pair
        .as_ref()
        .map_or(i.recovery_until, |p| p.recovery_until)
        .is_some_and(|u| u > now);
    match gate {
        Gate::Closed(_) => false,
        Gate::ReclaimOnly(r) if r.code == Code::Recovering => recovering,
        _ => i.pair.is_some() && !i.fenced,
    }
}

/// The rules, written out apart from the code under test.
fn expected(i: &GateInputs, now: Instant) -> (Result<(), Code>, Option<Code>, bool) {
    let serving_role = match &i.pair {
        None => true,
        Some(p) => matches!(p.state, PeerState::Active | PeerState::Recovering),
    };
    let lease_ok = !i.fenced || i.grant_lease.is_some_and(|u| u > now);
    let recovering = i
        .pair
        .as_ref()
        .map_or(i.recovery_until, |p| p.recovery_until)
        .is_some_and(|u| u > now);
    let backup_expired = i.pair.as_ref().is_some_and(|p| p.backup_expired);
    // (closed with this code | not closed), reclaim-only code, expire
    if i.shutting_down {
        return (Err(Code::ShuttingDown), None, false);
    }
    if !serving_role || i.handing_over {
        let code = if i.pair.as_ref().is_some_and(|p| p.active.is_some()) && !i.handing_over {
            Code::Standby
        } else {
            Code::NotActive
        };
        return (Err(code), None, false);
    }
    if i.paused || !lease_ok {
        return (Err(Code::NotActive), None, false);
    }
    if i.journal_failed {
        return (Err(Code::JournalFailed), None, true);
    }
    if recovering {
        return (Ok(()), Some(Code::Recovering), true);
    }
    if backup_expired {
        return (Ok(()), Some(Code::BackupExpired), true);
    }
    (Ok(()), None, true)
}

#[test]
fn every_combination_follows_the_rules() {
    let rows = every_row();
    assert!(rows.len() > 3_000, "{} rows", rows.len());
    for row in &rows {
        let got = decide(&row.inputs, row.now);
        let (closed, reclaim_only, expire) = expected(&row.inputs, row.now);
        let what = format!("{:?}", row.inputs);
        assert_eq!(got.expire, expire, "expire for {what}");
        assert_eq!(
            got.reclaims_past_count,
            expected_past_count(&row.inputs, row.now, &got.gate),
            "reclaims past the count for {what}"
        );
        match (&got.gate, closed, reclaim_only) {
            (Gate::Closed(r), Err(code), _) => assert_eq!(r.code, code, "{what}"),
            (Gate::ReclaimOnly(r), Ok(()), Some(code)) => assert_eq!(r.code, code, "{what}"),
            (Gate::Open, Ok(()), None) => {}
            (gate, closed, reclaim) => {
                panic!("{what}: got {gate:?}, expected {closed:?} / {reclaim:?}")
            }
        }
    }
}

#[test]
fn grants_open_only_when_nothing_stands_in_the_way() {
    let now = Instant::now();
    let open = every_row()
        .into_iter()
        .filter(|r| decide(&r.inputs, r.now).gate == Gate::Open)
        .count();
    assert!(open > 0);
    // Spelled out: a standalone server serves; an active member of a pair
    // in witness mode serves only under a grant lease.
    assert_eq!(decide(&GateInputs::default(), now).gate, Gate::Open);
    let active = RoleView {
        state: PeerState::Active,
        epoch: 1,
        active: None,
        recovery_until: None,
        backup_expired: false,
    };
    let mut witness_mode = GateInputs {
        pair: Some(active),
        fenced: true,
        ..GateInputs::default()
    };
    assert!(matches!(decide(&witness_mode, now).gate, Gate::Closed(_)));
    witness_mode.grant_lease = Some(now + Duration::from_millis(1));
    assert_eq!(decide(&witness_mode, now).gate, Gate::Open);
    assert!(matches!(
        decide(&witness_mode, now + Duration::from_millis(1)).gate,
        Gate::Closed(_)
    ));
}

#[test]
fn a_journal_failure_closes_the_gate_whatever_the_role_says() {
    let now = Instant::now();
    let failed = GateInputs {
        journal_failed: true,
        ..GateInputs::default()
    };
    let d = decide(&failed, now);
    assert!(matches!(&d.gate, Gate::Closed(r) if r.code == Code::JournalFailed));
    assert!(d.expire, "leases still run out, so seats come back");
}

#[test]
fn an_active_server_that_cannot_confirm_it_shows_fenced() {
    let now = Instant::now();
    let active = RoleView {
        state: PeerState::Active,
        epoch: 1,
        active: None,
        recovery_until: None,
        backup_expired: false,
    };
    let mut inputs = GateInputs {
        pair: Some(active),
        fenced: true,
        grant_lease: Some(now + Duration::from_secs(1)),
        ..GateInputs::default()
    };
    assert_eq!(shown_state("active", &decide(&inputs, now)), "active");
    inputs.paused = true;
    assert_eq!(shown_state("active", &decide(&inputs, now)), "fenced");
    inputs.paused = false;
    inputs.grant_lease = Some(now);
    assert_eq!(shown_state("active", &decide(&inputs, now)), "fenced");
    // Other refusals leave the state as it is.
    inputs.grant_lease = Some(now + Duration::from_secs(1));
    inputs.journal_failed = true;
    assert_eq!(shown_state("active", &decide(&inputs, now)), "active");
    assert_eq!(shown_state("ready", &decide(&inputs, now)), "ready");
}

#[test]
fn only_an_active_server_without_a_grant_lease_refuses_renewals() {
    let now = Instant::now();
    let mut inputs = GateInputs {
        fenced: true,
        grant_lease: Some(now + Duration::from_secs(1)),
        ..GateInputs::default()
    };
    assert!(unleased(&inputs, now).is_none());
    inputs.paused = true;
    assert!(
        unleased(&inputs, now).is_none(),
        "a pause alone stops grants, not renewals"
    );
    inputs.grant_lease = Some(now);
    assert_eq!(
        unleased(&inputs, now).map(|r| r.code),
        Some(Code::NotActive)
    );
    inputs.fenced = false;
    inputs.grant_lease = None;
    assert!(
        unleased(&inputs, now).is_none(),
        "two-server mode has no grant lease"
    );
}
