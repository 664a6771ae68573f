use super::*;

fn mark(seq: u64, epoch: u64) -> HistoryMark {
    HistoryMark { seq, epoch }
}

const T: Duration = Duration::from_secs(3);

/// A witness and a clock that ticks it every 100 ms, as its thread does.
struct Run {
    w: Witness,
    t0: Instant,
    now: Instant,
}

impl Run {
    fn new() -> Run {
        let t0 = Instant::now();
        Run {
            w: Witness::new(T, t0),
            t0,
            now: t0,
        }
    }

    /// Runs (awake) until `secs` after the start.
    fn at(&mut self, secs: f64) -> Instant {
        let to = self.t0 + Duration::from_secs_f64(secs);
        while self.now + TICK <= to {
            self.now += TICK;
            self.w.tick(self.now);
        }
        self.now = to;
        to
    }

    fn ping(
        &mut self,
        secs: f64,
        role: Role,
        state: PeerState,
        epoch: u64,
        last: HistoryMark,
        stale: Option<u64>,
    ) -> View {
        let now = self.at(secs);
        let ping = Ping {
            role,
            state,
            epoch,
            last,
            stale_since: stale,
            incarnation: 1,
            granted_claim: u64::MAX,
        };
        self.w.ping(&ping, now)
    }

    fn claim(&mut self, secs: f64, role: Role, epoch: u64, last: HistoryMark) -> Verdict {
        let now = self.at(secs);
        self.w.claim(&request(role, epoch, last), now)
    }
}

fn request(role: Role, epoch: u64, last: HistoryMark) -> ClaimRequest {
    ClaimRequest {
        id: epoch,
        role,
        epoch,
        last,
        incarnation: 1,
    }
}

#[test]
fn consents_to_nothing_while_learning() {
    let mut r = Run::new();
    assert!(!r.claim(0.0, Role::Primary, 1, mark(0, 0)).granted);
}

#[test]
fn the_backup_takes_over_only_when_the_witness_lost_the_primary_too() {
    let mut r = Run::new();
    r.ping(3.0, Role::Backup, PeerState::Ready, 0, mark(5, 1), None);
    assert!(r.claim(3.0, Role::Primary, 1, mark(5, 1)).granted);
    r.ping(4.0, Role::Primary, PeerState::Active, 1, mark(9, 1), None);
    // The primary is alive here: no takeover.
    let v = r.claim(5.0, Role::Backup, 2, mark(9, 1));
    assert!(!v.granted, "{}", v.why);
    // Silent for takeover_after: consent, in sync.
    let v = r.claim(8.0, Role::Backup, 2, mark(9, 1));
    assert!(v.granted && !v.recovery);
    // A primary coming back cannot serve beside the active backup.
    r.ping(9.0, Role::Backup, PeerState::Active, 2, mark(12, 2), None);
    assert!(!r.claim(9.0, Role::Primary, 3, mark(9, 1)).granted);
}

#[test]
fn a_closed_connection_lets_the_other_take_over_at_once_until_it_speaks_again() {
    let mut r = Run::new();
    r.ping(3.0, Role::Backup, PeerState::Ready, 0, mark(5, 1), None);
    assert!(r.claim(3.0, Role::Primary, 1, mark(5, 1)).granted);
    r.ping(4.0, Role::Primary, PeerState::Active, 1, mark(9, 1), None);
    // The primary's connection closes: its process is gone.
    let now = r.at(4.1);
    r.w.link_closed(Role::Primary, now);
    let v = r.claim(4.2, Role::Backup, 2, mark(9, 1));
    assert!(v.granted && !v.recovery, "{v:?}");
    // It was alive after all (a new connection): it cannot serve beside
    // the backup, and a close followed by speech is no proof any more.
    r.ping(4.3, Role::Backup, PeerState::Active, 2, mark(9, 2), None);
    r.ping(4.3, Role::Primary, PeerState::Active, 1, mark(9, 1), None);
    let now = r.at(4.4);
    r.w.link_closed(Role::Backup, now);
    r.ping(4.5, Role::Backup, PeerState::Active, 2, mark(10, 2), None);
    let v = r.claim(4.6, Role::Primary, 3, mark(9, 1));
    assert!(!v.granted, "the backup spoke after its connection closed");
}

#[test]
fn a_claim_read_right_after_a_pause_waits_for_the_servers_to_be_heard() {
    let mut r = Run::new();
    r.ping(3.0, Role::Backup, PeerState::Ready, 0, mark(5, 1), None);
    assert!(r.claim(3.0, Role::Primary, 1, mark(5, 1)).granted);
    r.ping(3.5, Role::Primary, PeerState::Active, 1, mark(9, 1), None);
    // Awake and hearing nothing from the primary for 0.9 s, then
    // frozen; a claim the backup made meanwhile is read first.
    r.at(4.4);
    let woke = r.t0 + Duration::from_secs(9);
    r.now = woke;
    let v = r.w.claim(&request(Role::Backup, 2, mark(9, 1)), woke);
    assert!(!v.granted, "consented on silence it slept through: {v:?}");
}

#[test]
fn a_paused_witness_does_not_take_silence_for_death() {
    let mut r = Run::new();
    r.ping(3.0, Role::Backup, PeerState::Ready, 0, mark(5, 1), None);
    assert!(r.claim(3.0, Role::Primary, 1, mark(5, 1)).granted);
    r.ping(4.0, Role::Primary, PeerState::Active, 1, mark(9, 1), None);
    // Frozen for ten seconds: no tick. The backup's claim is the first
    // thing it reads on waking; the primary's pings wait unread.
    let woke = r.t0 + Duration::from_secs(14);
    r.now = woke;
    let v = r.w.claim(&request(Role::Backup, 2, mark(9, 1)), woke);
    assert!(!v.granted, "consented right after a pause: {v:?}");
    // Silence it was awake to hear does count.
    let v = r.claim(17.5, Role::Backup, 2, mark(9, 1));
    assert!(v.granted);
}

#[test]
fn a_server_granted_a_claim_serves_until_it_says_otherwise_having_heard() {
    let mut r = Run::new();
    r.ping(3.0, Role::Primary, PeerState::Ready, 1, mark(5, 1), None);
    r.ping(3.0, Role::Backup, PeerState::Ready, 1, mark(5, 1), None);
    assert!(r.claim(3.1, Role::Backup, 2, mark(5, 1)).granted);
    // A ping the backup sent before the answer reached it.
    let now = r.at(3.2);
    let stale = Ping {
        role: Role::Backup,
        state: PeerState::Ready,
        epoch: 1,
        last: mark(5, 1),
        stale_since: None,
        incarnation: 1,
        granted_claim: 0,
    };
    r.w.ping(&stale, now);
    let v = r.claim(3.3, Role::Primary, 3, mark(5, 1));
    assert!(!v.granted, "two servers given consent: {v:?}");
    // Once it heard (and says it stopped serving), the primary may.
    let now = r.at(3.4);
    r.w.ping(
        &Ping {
            granted_claim: 2,
            ..stale.clone()
        },
        now,
    );
    assert!(r.claim(3.5, Role::Primary, 3, mark(5, 1)).granted);
    // The primary, granted but not yet told, restarts: a new
    // incarnation is what it says, whatever was granted to the old.
    let now = r.at(3.6);
    r.w.ping(
        &Ping {
            role: Role::Primary,
            incarnation: 2,
            state: PeerState::Starting,
            ..stale
        },
        now,
    );
    assert!(r.claim(3.7, Role::Backup, 4, mark(5, 1)).granted);
}

#[test]
fn a_claimant_that_never_served_its_consent_still_owes_a_recovery_period() {
    let mut r = Run::new();
    r.ping(3.0, Role::Backup, PeerState::Ready, 1, mark(5, 1), None);
    assert!(r.claim(3.0, Role::Primary, 1, mark(5, 1)).granted);
    r.ping(
        3.1,
        Role::Primary,
        PeerState::Active,
        1,
        mark(9, 1),
        Some(5),
    );
    // The primary falls silent; the backup is consented to (with a
    // recovery period: it is stale) but declines, never serving ...
    r.ping(6.0, Role::Backup, PeerState::Syncing, 1, mark(5, 1), None);
    let v = r.claim(6.5, Role::Backup, 2, mark(5, 1));
    assert!(v.granted && v.recovery, "{v:?}");
    r.ping(6.6, Role::Backup, PeerState::Syncing, 1, mark(5, 1), None);
    // ... so when it claims again it still owes one.
    let v = r.claim(7.0, Role::Backup, 4, mark(5, 1));
    assert!(v.granted && v.recovery, "{v:?}");
    // Having served, a server that restarts needs none.
    r.ping(7.1, Role::Backup, PeerState::Active, 4, mark(6, 4), None);
    let v = r.claim(8.0, Role::Backup, 6, mark(6, 4));
    assert!(v.granted && !v.recovery, "{v:?}");
}

#[test]
fn a_stale_standby_takes_over_with_a_recovery_period() {
    let mut r = Run::new();
    r.ping(3.0, Role::Backup, PeerState::Ready, 0, mark(1, 1), None);
    assert!(r.claim(3.0, Role::Primary, 1, mark(1, 1)).granted);
    let v = r.ping(
        4.0,
        Role::Primary,
        PeerState::Active,
        1,
        mark(20, 1),
        Some(4),
    );
    assert_eq!(v.stale_since, Some(4));
    let v = r.claim(8.0, Role::Backup, 2, mark(4, 1));
    assert!(v.granted && v.recovery);
}

#[test]
fn a_primary_taking_back_from_a_backup_that_stopped_needs_no_recovery() {
    let mut r = Run::new();
    r.ping(
        3.0,
        Role::Backup,
        PeerState::Active,
        2,
        mark(30, 2),
        Some(10),
    );
    assert!(
        !r.claim(4.0, Role::Primary, 3, mark(30, 2)).granted,
        "the backup still serves"
    );
    r.ping(5.0, Role::Backup, PeerState::Syncing, 2, mark(31, 2), None);
    let v = r.claim(5.0, Role::Primary, 3, mark(31, 2));
    assert!(v.granted && !v.recovery);
}

#[test]
fn a_restarted_witness_relearns_the_active_server() {
    let mut r = Run::new();
    let v = r.ping(0.0, Role::Backup, PeerState::Active, 4, mark(7, 4), None);
    assert!(v.learning);
    assert_eq!((v.active, v.epoch), (Some(Role::Backup), 4));
    // After learning, the primary still cannot serve beside it.
    r.ping(3.0, Role::Backup, PeerState::Active, 4, mark(7, 4), None);
    assert!(!r.claim(4.0, Role::Primary, 5, mark(3, 1)).granted);
}
