//! The role machine on its own: inputs in, actions out, time passed in.

use super::*;
use crate::config::Role;
use crate::failover::PairStatus;
use crate::ledger::{Merge, Record};
use crate::protocol::peer::PeerMessage;

const PING: Duration = Duration::from_millis(100);
const TAKEOVER: Duration = Duration::from_secs(1);

fn settings(role: Role, witness: bool) -> PairSettings {
    PairSettings {
        role,
        peer: "peer:27001".into(),
        secret: b"0123456789abcdef".to_vec(),
        client_addr: format!("{}:27000", role.as_str()),
        peer_client_addr: None,
        ping_interval: PING,
        takeover_after: TAKEOVER,
        sync_timeout: Duration::from_millis(250),
        lease: Duration::from_secs(4),
        backup_max: Duration::from_secs(3600),
        backup_lost_after: Duration::from_secs(7200),
        witness: witness.then(|| "witness:27100".to_string()),
        fence_after: Duration::from_millis(600),
    }
}

fn start(seq: u64, epoch: u64) -> Start {
    Start {
        last: HistoryMark { seq, epoch },
        epoch,
        digest: "d".into(),
        needs_recovery: false,
        incarnation: 1,
    }
}

/// One machine and its clock, ticked as the watchdog ticks it.
struct Bench {
    m: RoleMachine,
    now: Instant,
    /// Every action, in order.
    log: Vec<Action>,
}

impl Bench {
    fn new(role: Role, witness: bool, start: Start) -> Bench {
        let now = Instant::now();
        Bench {
            m: RoleMachine::new(settings(role, witness), start, now),
            now,
            log: Vec::new(),
        }
    }

    /// A backup (records 5, epoch 1), linked to the active primary (and to
    /// the witness) and hearing it for two seconds: in sync, following.
    fn following(witness: bool) -> Bench {
        let mut b = Bench::new(Role::Backup, witness, start(5, 1));
        b.input(Input::PeerLinkUp);
        if witness {
            b.input(Input::WitnessLinkUp);
        }
        b.run_hearing(Duration::from_secs(2), PeerState::Active, 1, (5, 1));
        b
    }

    fn input(&mut self, input: Input) -> Vec<Action> {
        let actions = self.m.handle(input, self.now);
        self.log.extend(actions.iter().map(copy_action));
        actions
    }

    /// Runs awake for `d`, ticking every 100 ms.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += PING;
            self.input(Input::Tick);
        }
    }

    /// A heartbeat from the other server, as it would send it.
    fn heartbeat(&mut self, state: PeerState, epoch: u64, last: (u64, u64), can_serve: bool) {
        self.input(Input::Peer(PeerMessage::Heartbeat {
            state,
            epoch,
            last: HistoryMark {
                seq: last.0,
                epoch: last.1,
            },
            client_addr: "other:27000".into(),
            digest: "d".into(),
            sent_ms: 1,
            echo_ms: 0,
            held_ms: 0,
            incarnation: 2,
            echo_incarnation: 0,

            standby_in_sync: true,
            can_serve,
        }));
    }

    /// Runs for `d` hearing the other server every ping.
    fn run_hearing(&mut self, d: Duration, state: PeerState, epoch: u64, last: (u64, u64)) {
        let end = self.now + d;
        while self.now < end {
            self.now += PING;
            self.heartbeat(state, epoch, last, true);
            self.input(Input::Tick);
        }
    }

    fn roles_told(&self) -> Vec<PeerState> {
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::ToLoop(FromWatchdog::Role(v)) => Some(v.state),
                _ => None,
            })
            .collect()
    }

    fn sent_to_peer(&self) -> Vec<&PeerMessage> {
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::ToPeer(m) => Some(m),
                _ => None,
            })
            .collect()
    }
}

/// Actions hold no handles, so a test can keep a copy of each.
fn copy_action(a: &Action) -> Action {
    match a {
        Action::ToPeer(m) => Action::ToPeer(m.clone()),
        Action::ToWitness(m) => Action::ToWitness(m.clone()),
        Action::DialPeer(addr) => Action::DialPeer(addr.clone()),
        Action::ClosePeerLink => Action::ClosePeerLink,
        Action::DialWitness => Action::DialWitness,
        Action::ToLoop(m) => Action::ToLoop(match m {
            FromWatchdog::Role(v) => FromWatchdog::Role(v.clone()),
            FromWatchdog::StepDown { active } => FromWatchdog::StepDown {
                active: active.clone(),
            },
            FromWatchdog::MergeDone => FromWatchdog::MergeDone,
            FromWatchdog::Reset(s) => FromWatchdog::Reset(s.clone()),
            FromWatchdog::Merge { id, merge } => FromWatchdog::Merge {
                id: *id,
                merge: merge.clone(),
            },
            FromWatchdog::SendSnapshot => FromWatchdog::SendSnapshot,
            // Others are not inspected by these tests.
            other => FromWatchdog::Status(PairStatus {
                alerts: vec![format!("{other:?}")],
                ..PairStatus::default()
            }),
        }),
    }
}

#[test]
fn a_lone_primary_serves_after_listening_for_takeover_after_with_a_recovery_period() {
    let mut b = Bench::new(Role::Primary, false, start(0, 0));
    b.run(TAKEOVER - PING * 2);
    assert_eq!(b.m.state(), PeerState::Starting);
    b.run(PING * 3);
    assert_eq!(b.m.state(), PeerState::Recovering);
    assert_eq!(b.m.epoch(), 1);
    b.run(Duration::from_secs(5));
    assert_eq!(b.m.state(), PeerState::Active);
    assert_eq!(
        b.roles_told(),
        [
            PeerState::Starting,
            PeerState::Recovering,
            PeerState::Active
        ]
    );
}

#[test]
fn the_primary_leads_a_pair_that_meets_and_the_backup_follows() {
    let mut p = Bench::new(Role::Primary, false, start(5, 1));
    p.input(Input::PeerLinkUp);
    p.heartbeat(PeerState::Starting, 0, (5, 1), true);
    assert_eq!(p.m.state(), PeerState::Active, "same history: no recovery");
    assert_eq!(p.m.epoch(), 3);

    let mut b = Bench::new(Role::Backup, false, start(5, 1));
    b.input(Input::PeerLinkUp);
    b.heartbeat(PeerState::Starting, 1, (5, 1), true);
    assert_eq!(b.m.state(), PeerState::Starting, "the backup waits");
    b.heartbeat(PeerState::Active, 3, (5, 1), true);
    assert_eq!(b.m.state(), PeerState::Syncing);
    b.run(PING);
    assert!(b
        .sent_to_peer()
        .iter()
        .any(|m| matches!(m, PeerMessage::SyncFrom { .. })));
}

#[test]
fn a_standby_takes_over_after_takeover_after_of_silence_and_not_before() {
    let mut b = Bench::following(false);
    assert_eq!(b.m.state(), PeerState::Ready);
    b.run(TAKEOVER - PING * 2);
    assert_eq!(b.m.state(), PeerState::Ready);
    b.run(PING * 3);
    assert_eq!(b.m.state(), PeerState::Active, "in sync: no recovery");
    assert_eq!(b.m.epoch(), 2);
}

#[test]
fn a_standby_woken_from_a_pause_does_not_take_silence_for_death() {
    let mut b = Bench::following(false);
    // Frozen ten seconds: the first thing it sees on waking is a tick.
    b.now += Duration::from_secs(10);
    b.input(Input::Tick);
    assert_eq!(
        b.m.state(),
        PeerState::Ready,
        "took over right after a pause"
    );
    // The active server's heartbeats, queued meanwhile, arrive now.
    b.run_hearing(Duration::from_secs(2), PeerState::Active, 1, (5, 1));
    assert_eq!(b.m.state(), PeerState::Ready);
}

#[test]
fn a_primary_whose_journal_failed_hands_over_and_the_backup_leads() {
    let mut p = Bench::new(Role::Primary, false, start(5, 1));
    p.input(Input::PeerLinkUp);
    p.heartbeat(PeerState::Starting, 0, (5, 1), true);
    assert!(p.m.state().is_serving());
    p.input(Input::Loop(ToWatchdog::JournalFailed));
    assert_eq!(p.m.state(), PeerState::Syncing);
    p.run(Duration::from_secs(3));
    assert_eq!(p.m.state(), PeerState::Syncing, "it never serves again");
    let last_heartbeat = p.sent_to_peer().into_iter().rev().find_map(|m| match m {
        PeerMessage::Heartbeat { can_serve, .. } => Some(*can_serve),
        _ => None,
    });
    assert_eq!(last_heartbeat, Some(false));

    let mut b = Bench::new(Role::Backup, false, start(5, 1));
    b.input(Input::PeerLinkUp);
    b.run_hearing(Duration::from_secs(1), PeerState::Active, 3, (5, 1));
    assert_eq!(b.m.state(), PeerState::Ready);
    b.heartbeat(PeerState::Syncing, 3, (5, 1), false);
    assert_eq!(
        b.m.state(),
        PeerState::Active,
        "took over at once, in sync, from a primary that cannot serve"
    );
}

#[test]
fn the_loser_of_a_split_hands_over_and_waits_for_the_merge() {
    let mut p = Bench::new(Role::Primary, false, start(9, 1));
    p.input(Input::PeerLinkUp);
    p.heartbeat(PeerState::Starting, 0, (9, 1), true);
    assert_eq!(p.m.epoch(), 3);
    // The backup took over at a higher epoch while the link was cut.
    p.heartbeat(PeerState::Active, 4, (12, 4), true);
    assert!(p
        .log
        .iter()
        .any(|a| matches!(a, Action::ToLoop(FromWatchdog::StepDown { .. }))));
    let merge = Merge::default();
    p.input(Input::Loop(ToWatchdog::Handover(merge)));
    assert_eq!(p.m.state(), PeerState::Syncing);
    let id = p
        .sent_to_peer()
        .iter()
        .find_map(|m| match m {
            PeerMessage::Merge { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a merge was sent");
    assert!(p
        .log
        .iter()
        .any(|a| matches!(a, Action::ToLoop(FromWatchdog::Reset(s)) if s.seq == 0)));
    // Clients are sent over only once the winner merged.
    assert!(!p
        .log
        .iter()
        .any(|a| matches!(a, Action::ToLoop(FromWatchdog::MergeDone))));
    p.input(Input::Peer(PeerMessage::MergeDone { id }));
    assert!(p
        .log
        .iter()
        .any(|a| matches!(a, Action::ToLoop(FromWatchdog::MergeDone))));
}

#[test]
fn the_winner_merges_and_confirms() {
    let mut b = Bench::new(Role::Backup, false, start(9, 1));
    b.input(Input::PeerLinkUp);
    b.run(TAKEOVER + PING * 2);
    assert!(b.m.state().is_serving());
    b.input(Input::Peer(PeerMessage::Merge {
        id: 7,
        seats: Vec::new(),
        returned: Vec::new(),
    }));
    assert!(b
        .log
        .iter()
        .any(|a| matches!(a, Action::ToLoop(FromWatchdog::Merge { id: 7, .. }))));
    let actions = b.input(Input::Loop(ToWatchdog::Merged(7)));
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::ToPeer(PeerMessage::MergeDone { id: 7 }))));
}

#[test]
fn records_lost_to_a_journal_cut_mean_a_recovery_period_even_when_leading() {
    let mut p = Bench::new(
        Role::Primary,
        false,
        Start {
            needs_recovery: true,
            ..start(5, 1)
        },
    );
    p.input(Input::PeerLinkUp);
    p.heartbeat(PeerState::Starting, 0, (3, 1), true);
    assert_eq!(p.m.state(), PeerState::Recovering);
}

#[test]
fn witness_mode_activates_only_with_the_witness_consent() {
    let mut b = Bench::following(true);
    b.run(TAKEOVER + PING * 2);
    assert!(!b.m.state().is_serving(), "no consent yet");
    let claim = b.log.iter().rev().find_map(|a| match a {
        Action::ToWitness(PeerMessage::Claim { id, epoch, .. }) => Some((*id, *epoch)),
        _ => None,
    });
    let (id, epoch) = claim.expect("a claim was sent");
    b.input(Input::Witness(PeerMessage::ClaimResult {
        id,
        granted: false,
        recovery: false,
        why: "the primary is active".into(),
    }));
    assert!(!b.m.state().is_serving());
    b.run(PING * 6);
    let again = b.log.iter().rev().find_map(|a| match a {
        Action::ToWitness(PeerMessage::Claim { id, .. }) => Some(*id),
        _ => None,
    });
    let again = again.expect("asked again");
    assert_ne!(again, id);
    b.input(Input::Witness(PeerMessage::ClaimResult {
        id: again,
        granted: true,
        recovery: true,
        why: String::new(),
    }));
    assert_eq!(b.m.state(), PeerState::Recovering);
    assert!(b.m.epoch() >= epoch);
}

#[test]
fn the_active_server_forwards_its_records_once_the_standby_asked() {
    let mut p = Bench::new(Role::Primary, false, start(0, 0));
    p.input(Input::PeerLinkUp);
    p.heartbeat(PeerState::Starting, 0, (0, 0), true);
    p.input(Input::Peer(PeerMessage::SyncFrom {
        from: HistoryMark::default(),
    }));
    let record = |seq| Record {
        seq,
        epoch: 1,
        event: crate::ledger::Event::Started { at: 1 },
    };
    let actions = p.input(Input::Loop(ToWatchdog::Records(vec![record(1), record(2)])));
    assert!(actions.iter().any(
        |a| matches!(a, Action::ToPeer(PeerMessage::Records { records }) if records.len() == 2)
    ));
    let actions = p.input(Input::Peer(PeerMessage::Ack { seq: 2 }));
    assert!(p.m.follower.in_sync);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::ToLoop(FromWatchdog::Standby {
            wait_for_acks: true,
            acked: 2
        })
    )));
}

#[test]
fn only_an_echo_of_this_process_renews_the_grant_lease() {
    let mut p = Bench::new(Role::Primary, true, start(5, 1));
    p.input(Input::PeerLinkUp);
    p.run(Duration::from_millis(500));
    let echo = |incarnation, echo_ms| {
        Input::Peer(PeerMessage::Heartbeat {
            state: PeerState::Ready,
            epoch: 1,
            last: HistoryMark { seq: 5, epoch: 1 },
            client_addr: "other:27000".into(),
            digest: "d".into(),
            sent_ms: 1,
            echo_ms,
            held_ms: 0,
            incarnation: 2,
            echo_incarnation: incarnation,
            standby_in_sync: false,
            can_serve: true,
        })
    };
    let renews = |actions: &[Action]| {
        actions
            .iter()
            .any(|a| matches!(a, Action::ToLoop(FromWatchdog::GrantLease(_))))
    };
    // A previous process of this server (another incarnation), or a time
    // this process has not reached: neither proves anything.
    assert!(!renews(&p.input(echo(7, 100))));
    assert!(!renews(&p.input(echo(1, 60_000))));
    assert!(renews(&p.input(echo(1, 100))));
}

#[test]
fn what_arrived_during_a_pause_is_old_news() {
    let mut p = Bench::new(Role::Primary, false, start(5, 1));
    p.input(Input::PeerLinkUp);
    p.run(Duration::from_millis(300));
    // Frozen for five seconds; the first thing read on waking is the
    // backup saying, long ago, that it stood by.
    p.now += Duration::from_secs(5);
    p.heartbeat(PeerState::Ready, 1, (5, 1), true);
    assert_eq!(p.m.state(), PeerState::Starting, "led on old news");
    // Since then the backup took over: the primary follows it.
    p.run_hearing(Duration::from_millis(300), PeerState::Active, 2, (6, 2));
    assert!(matches!(p.m.state(), PeerState::Syncing | PeerState::Ready));
}

#[test]
fn a_claim_never_answered_is_given_up_on_and_its_late_consent_declined() {
    let mut b = Bench::following(true);
    b.run(TAKEOVER + PING * 2);
    let claim = b.log.iter().rev().find_map(|a| match a {
        Action::ToWitness(PeerMessage::Claim { id, .. }) => Some(*id),
        _ => None,
    });
    let id = claim.expect("a claim was sent");
    let settled = |b: &Bench| {
        b.log.iter().rev().find_map(|a| match a {
            Action::ToWitness(PeerMessage::WitnessPing { granted_claim, .. }) => {
                Some(*granted_claim)
            }
            _ => None,
        })
    };
    assert!(
        settled(&b).unwrap_or(0) < id,
        "still waiting for the answer"
    );
    // The answer is lost; the primary is heard again, so no new claim.
    b.run_hearing(Duration::from_millis(700), PeerState::Active, 1, (5, 1));
    assert_eq!(settled(&b), Some(id), "the witness is told it was given up");
    b.input(Input::Witness(PeerMessage::ClaimResult {
        id,
        granted: true,
        recovery: false,
        why: String::new(),
    }));
    assert!(
        !b.m.state().is_serving(),
        "a consent given up on is declined"
    );
}

#[test]
fn a_moved_peer_is_dialled_at_its_new_address_and_the_old_link_closed() {
    let mut p = Bench::new(Role::Primary, false, start(5, 1));
    p.input(Input::PeerLinkUp);
    p.heartbeat(PeerState::Starting, 0, (5, 1), true);
    assert!(p.m.state().is_serving());
    let same = p.input(Input::Loop(ToWatchdog::PeerAddress("peer:27001".into())));
    assert!(
        !same
            .iter()
            .any(|a| matches!(a, Action::ClosePeerLink | Action::DialPeer(_))),
        "the same address changes nothing"
    );
    let moved = p.input(Input::Loop(ToWatchdog::PeerAddress("lic3:27001".into())));
    let close = moved
        .iter()
        .position(|a| matches!(a, Action::ClosePeerLink));
    let dial = moved
        .iter()
        .position(|a| matches!(a, Action::DialPeer(addr) if addr == "lic3:27001"));
    assert!(
        matches!((close, dial), (Some(c), Some(d)) if c < d),
        "{moved:?}"
    );
    // Until the new link is up nothing is sent, and every dial goes to
    // the new address.
    let from = p.log.len();
    p.run(PING * 5);
    let after: Vec<&Action> = p.log[from..].iter().collect();
    assert!(!after.iter().any(|a| matches!(a, Action::ToPeer(_))));
    let dials: Vec<&String> = after
        .iter()
        .filter_map(|a| match a {
            Action::DialPeer(addr) => Some(addr),
            _ => None,
        })
        .collect();
    assert!(!dials.is_empty() && dials.iter().all(|a| *a == "lic3:27001"));
    assert_eq!(p.m.settings().peer, "lic3:27001");
    p.input(Input::PeerLinkUp);
    let from = p.log.len();
    p.run(PING);
    assert!(p.log[from..]
        .iter()
        .any(|a| matches!(a, Action::ToPeer(PeerMessage::Heartbeat { .. }))));
}

#[test]
fn a_forgotten_backup_is_not_advertised_until_it_is_heard_from_again() {
    let mut p = Bench::new(Role::Primary, false, start(5, 1));
    p.input(Input::PeerLinkUp);
    p.heartbeat(PeerState::Starting, 0, (5, 1), true);
    p.run_hearing(PING * 3, PeerState::Ready, 3, (5, 1));
    let now = p.now;
    let heard = p.m.report(now);
    assert_eq!(heard.advertise_peer.as_deref(), Some("other:27000"));
    assert!(matches!(
        heard.forget_refusal,
        Some((crate::codes::Code::BackupAlive, _))
    ));
    // Forgetting a backup that is heard from changes nothing.
    p.input(Input::Loop(ToWatchdog::ForgetBackup));
    let now = p.now;
    assert_eq!(
        p.m.report(now).advertise_peer.as_deref(),
        Some("other:27000")
    );

    // The backup falls silent: it may be forgotten now.
    p.run(TAKEOVER + PING * 2);
    let now = p.now;
    let silent = p.m.report(now);
    assert_eq!(silent.forget_refusal, None);
    assert_eq!(silent.advertise_peer.as_deref(), Some("other:27000"));
    let told = p.input(Input::Loop(ToWatchdog::ForgetBackup));
    assert!(
        told.iter().any(|a| matches!(
            a,
            Action::ToLoop(FromWatchdog::Status(s)) if s.advertise_peer.is_none()
        )),
        "the loop hears at once: {told:?}"
    );
    p.run(PING * 3);
    let now = p.now;
    let forgotten = p.m.report(now);
    assert_eq!(forgotten.advertise_peer, None);
    assert!(
        forgotten.alerts.iter().any(|a| a.contains("forgotten")),
        "{:?}",
        forgotten.alerts
    );
    assert!(p.m.state().is_serving(), "forgetting changes no role");

    // Heard from again: advertised again, the alert gone.
    p.heartbeat(PeerState::Starting, 3, (5, 1), true);
    let now = p.now;
    let back = p.m.report(now);
    assert_eq!(back.advertise_peer.as_deref(), Some("other:27000"));
    assert!(!back.alerts.iter().any(|a| a.contains("forgotten")));
}

#[test]
fn only_a_primary_forgets_its_backup() {
    let mut b = Bench::new(Role::Backup, false, start(5, 1));
    b.input(Input::PeerLinkUp);
    b.run(TAKEOVER * 2);
    let now = b.now;
    assert!(matches!(
        b.m.report(now).forget_refusal,
        Some((crate::codes::Code::NoBackup, _))
    ));
    b.input(Input::Loop(ToWatchdog::ForgetBackup));
    let now = b.now;
    assert!(!b
        .m
        .report(now)
        .alerts
        .iter()
        .any(|a| a.contains("forgotten")));
}

/// The epoch last told to the loop, and the one the last heartbeat carried.
fn epochs_shown(b: &Bench) -> (u64, u64) {
    let told = b.log.iter().rev().find_map(|a| match a {
        Action::ToLoop(FromWatchdog::Role(v)) => Some(v.epoch),
        _ => None,
    });
    let sent = b.sent_to_peer().into_iter().rev().find_map(|m| match m {
        PeerMessage::Heartbeat { epoch, .. } => Some(*epoch),
        _ => None,
    });
    (
        told.expect("a role was told"),
        sent.expect("a heartbeat was sent"),
    )
}

#[test]
fn the_loop_and_the_other_server_are_told_one_epoch_in_every_state() {
    let mut b = Bench::new(Role::Backup, false, start(5, 1));
    b.input(Input::PeerLinkUp);
    b.run(PING);
    assert_eq!(b.m.state(), PeerState::Starting);
    assert_eq!(epochs_shown(&b), (1, 1));
    // Following a primary active at epoch 3: its history's epoch once
    // the first record of that epoch arrived.
    b.run_hearing(PING * 2, PeerState::Active, 3, (5, 1));
    assert!(!b.m.state().is_serving());
    assert_eq!(epochs_shown(&b), (1, 1), "no record of epoch 3 yet");
    b.input(Input::Peer(PeerMessage::Records {
        records: vec![Record {
            seq: 6,
            epoch: 3,
            event: crate::ledger::Event::Started { at: 1 },
        }],
    }));
    b.run_hearing(PING * 2, PeerState::Active, 3, (6, 3));
    assert_eq!(b.m.state(), PeerState::Ready);
    assert_eq!(epochs_shown(&b), (3, 3));
    // Taking over: its own, higher epoch.
    b.run(TAKEOVER + PING * 2);
    assert_eq!(b.m.state(), PeerState::Active);
    assert_eq!(b.m.epoch(), 4);
    assert_eq!(epochs_shown(&b), (4, 4));
}

#[test]
fn a_standby_claims_at_once_when_the_active_servers_process_is_gone() {
    let mut b = Bench::following(true);
    // Its link closed and the redial was refused: still within one ping
    // of its last heartbeat, which a live server would send.
    b.input(Input::PeerLinkDown);
    b.input(Input::PeerDialRefused);
    b.input(Input::Tick);
    assert_eq!(claims(&b), 0, "no heartbeat missed yet");
    b.run(PING);
    assert_eq!(claims(&b), 1, "claims well before takeover_after");

    // Two-server mode: nothing would confirm the refusal; silence only.
    let mut b = Bench::following(false);
    b.input(Input::PeerLinkDown);
    b.input(Input::PeerDialRefused);
    b.run(TAKEOVER - PING * 2);
    assert_eq!(b.m.state(), PeerState::Ready);
}

#[test]
fn a_refused_dial_is_no_proof_while_the_other_server_speaks() {
    let mut b = Bench::following(true);
    b.input(Input::PeerLinkDown);
    b.input(Input::PeerDialRefused);
    // Its heartbeats still arrive (on the connection it dialled): a
    // firewall refuses our dial, the process lives.
    b.run_hearing(TAKEOVER / 2, PeerState::Active, 1, (5, 1));
    // With the link still down, only silence for takeover_after counts.
    b.run(TAKEOVER - PING * 2);
    assert_eq!(claims(&b), 0);
    b.run(PING * 3);
    assert_eq!(claims(&b), 1);
}

fn claims(b: &Bench) -> usize {
    b.log
        .iter()
        .filter(|a| matches!(a, Action::ToWitness(PeerMessage::Claim { .. })))
        .count()
}

#[test]
fn a_server_cut_off_from_both_the_other_server_and_the_witness_stops_granting() {
    let mut p = Bench::new(Role::Primary, true, start(5, 1));
    p.input(Input::PeerLinkUp);
    p.input(Input::WitnessLinkUp);
    p.heartbeat(PeerState::Starting, 0, (5, 1), true);
    let claim = p.log.iter().find_map(|a| match a {
        Action::ToWitness(PeerMessage::Claim { id, .. }) => Some(*id),
        _ => None,
    });
    p.input(Input::Witness(PeerMessage::ClaimResult {
        id: claim.expect("the primary claims at start"),
        granted: true,
        recovery: false,
        why: String::new(),
    }));
    assert_eq!(p.m.state(), PeerState::Active);
    let lease = |b: &Bench| b.m.fence.as_ref().and_then(|f| f.lease_until);
    assert!(lease(&p).is_some_and(|u| u > p.now), "a grant lease");
    // One link closing is a blip; both closing is what the other two
    // take for this server's death.
    p.input(Input::PeerLinkDown);
    assert!(lease(&p).is_some_and(|u| u > p.now));
    p.input(Input::WitnessLinkDown);
    assert_eq!(lease(&p), Some(p.now), "the lease ends at once");
    // A late echo of a heartbeat sent before renews nothing.
    let before = p.now;
    p.now += PING;
    p.input(Input::Peer(PeerMessage::Heartbeat {
        state: PeerState::Ready,
        epoch: 2,
        last: HistoryMark { seq: 5, epoch: 1 },
        client_addr: "other:27000".into(),
        digest: "d".into(),
        sent_ms: 1,
        echo_ms: 1,
        held_ms: 0,
        incarnation: 2,
        echo_incarnation: 1,
        standby_in_sync: true,
        can_serve: true,
    }));
    assert_eq!(lease(&p), Some(before));
}
