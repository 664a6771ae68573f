//! The witness: a licence-less tie-breaker on a third host.
//!
//! Both servers of a pair ping the witness every ping interval; it answers
//! each ping with what it records: which server is active, at which epoch,
//! and whether that server's standby is stale. Nobody becomes active
//! without its consent ([`Witness::claim`]). It keeps everything in memory:
//! after a restart it spends one `takeover_after` learning from the pings
//! before it consents to anything, so it needs no disk.

use super::link::{self, LinkEvent, LinkWriter};
use crate::config::{Config, Role};
use crate::protocol::peer::{HistoryMark, PeerMessage, PeerState};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the witness knows of one server.
#[derive(Default, Clone)]
struct Seen {
    last_heard: Option<Instant>,
    state: Option<PeerState>,
    epoch: u64,
    last: HistoryMark,
}

/// The witness's decisions, without sockets (tested on its own).
pub struct Witness {
    takeover_after: Duration,
    started: Instant,
    primary: Seen,
    backup: Seen,
    /// Who is active, at which epoch.
    active: Option<(Role, u64)>,
    /// The active server's standby is stale since this entry.
    stale_since: Option<u64>,
}

impl Witness {
    pub fn new(takeover_after: Duration, now: Instant) -> Witness {
        Witness {
            takeover_after,
            started: now,
            primary: Seen::default(),
            backup: Seen::default(),
            active: None,
            stale_since: None,
        }
    }

    fn learning(&self, now: Instant) -> bool {
        now.duration_since(self.started) < self.takeover_after
    }

    fn seen(&mut self, role: Role) -> &mut Seen {
        if role == Role::Primary {
            &mut self.primary
        } else {
            &mut self.backup
        }
    }

    fn alive(&self, seen: &Seen, now: Instant) -> bool {
        seen.last_heard
            .is_some_and(|t| now.duration_since(t) < self.takeover_after)
    }

    /// A ping from `role`: records it, returns the answer.
    pub fn ping(
        &mut self,
        role: Role,
        state: PeerState,
        epoch: u64,
        last: HistoryMark,
        stale_since: Option<u64>,
        now: Instant,
    ) -> (String, u64, Option<u64>, bool) {
        let learning = self.learning(now);
        let s = self.seen(role);
        s.last_heard = Some(now);
        s.state = Some(state);
        s.epoch = epoch;
        s.last = last;
        match self.active {
            Some((r, e)) if r == role && state.is_serving() && epoch >= e => {
                self.active = Some((role, epoch));
                if stale_since != self.stale_since {
                    match stale_since {
                        Some(n) => log::warn!("{role} records its standby stale since entry {n}"),
                        None => log::info!("{role}'s standby is in sync again"),
                    }
                    self.stale_since = stale_since;
                }
            }
            None if learning && state.is_serving() => {
                // Relearning after a restart: whoever says it serves.
                self.active = Some((role, epoch));
                self.stale_since = stale_since;
            }
            _ => {}
        }
        let (active, epoch) = match self.active {
            Some((r, e)) => (r.as_str().to_string(), e),
            None => (String::new(), 0),
        };
        (active, epoch, self.stale_since, learning)
    }

    /// May `role` become active at `epoch`? Returns (granted, recovery, why).
    pub fn claim(
        &mut self,
        role: Role,
        epoch: u64,
        last: HistoryMark,
        now: Instant,
    ) -> (bool, bool, String) {
        if self.learning(now) {
            return (
                false,
                false,
                "the witness just started and is still learning who is active".into(),
            );
        }
        {
            let s = self.seen(role);
            s.last_heard = Some(now);
            s.last = last;
        }
        let other_role = if role == Role::Primary {
            Role::Backup
        } else {
            Role::Primary
        };
        let other = if role == Role::Primary {
            self.backup.clone()
        } else {
            self.primary.clone()
        };
        let other_alive = self.alive(&other, now);
        let other_serving = other_alive && other.state.is_some_and(|s| s.is_serving());
        if other_serving {
            return (
                false,
                false,
                format!(
                    "the {other_role} is active (epoch {}) and the witness hears it",
                    other.epoch
                ),
            );
        }
        let behind = (last.epoch, last.seq) < (other.last.epoch, other.last.seq);
        // The other server stopped serving (handed back) and said so with
        // its last record: a claimant holding that much misses nothing.
        let has_final_history =
            other_alive && other.state.is_some_and(|s| !s.is_serving()) && !behind;
        let recovery = match self.active {
            Some((r, _)) if r == role => false,
            Some(_) if has_final_history => false,
            Some(_) => self.stale_since.is_some() || behind,
            // Nothing recorded (a fresh witness): only a server known to be
            // at least as far as the other may skip the recovery period.
            None => other.last_heard.is_none() || behind,
        };
        if let Some((current, e)) = self.active {
            if epoch <= e && current != role {
                return (
                    false,
                    false,
                    format!("epoch {epoch} is not above the recorded {e}"),
                );
            }
        }
        self.active = Some((role, epoch));
        self.stale_since = None;
        log::warn!(
            "{role} becomes active at epoch {epoch}{}",
            if recovery {
                " after a recovery period"
            } else {
                ""
            }
        );
        (true, recovery, String::new())
    }
}

/// Runs the witness until SIGTERM or SIGINT (SIGHUP: nothing to reread).
pub fn run(config: &Config) -> Result<(), crate::server::RunError> {
    use crate::server::RunError;
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use std::sync::{atomic::AtomicBool, atomic::Ordering::SeqCst, Arc};
    let config_error = |e: &str| RunError::Config(e.to_string());
    let listen = config
        .peer_listen
        .as_ref()
        .ok_or_else(|| config_error("--role witness needs --peer-listen ADDR:PORT"))?;
    let secret_path = config
        .peer_secret_file
        .as_ref()
        .ok_or_else(|| config_error("--role witness needs --peer-secret-file FILE"))?;
    let secret = crate::server::read_secret(secret_path).map_err(RunError::Config)?;
    let (stop, reread) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    for (signal, flag) in [(SIGTERM, &stop), (SIGINT, &stop), (SIGHUP, &reread)] {
        signal_hook::flag::register(signal, flag.clone())
            .map_err(|e| RunError::Other(format!("signal handler: {e}")))?;
    }
    let listener = crate::net::resolve(listen)
        .and_then(|addrs| std::net::TcpListener::bind(addrs.as_slice()))
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let (events_tx, events) = crossbeam_channel::unbounded();
    let (accepted_tx, accepted) = crossbeam_channel::unbounded::<LinkWriter>();
    link::serve(listener, secret, events_tx, accepted_tx).map_err(|e| e.to_string())?;
    log::info!("witness listening on {local}");
    println!("floatd witness on {local}");
    let mut witness = Witness::new(config.takeover_after, Instant::now());
    let mut links: HashMap<u64, (LinkWriter, Option<Role>)> = HashMap::new();
    // systemd: ready once listening; the loop below pings the watchdog.
    let mut notifier = crate::server::notify::Notifier::from_env();
    notifier.ready(format!("witness on {local}"));
    // Wake often enough for the watchdog and to notice a signal promptly.
    let signal_check = Duration::from_millis(250);
    let wait = notifier
        .ping_every()
        .unwrap_or(signal_check)
        .min(signal_check);
    loop {
        if stop.load(SeqCst) {
            log::info!("witness stopping (SIGTERM or SIGINT)");
            notifier.stopping();
            break;
        }
        if reread.swap(false, SeqCst) {
            log::info!(
                "SIGHUP: nothing to reread (a witness has no licences or options); carrying on"
            );
        }
        let event = match events.recv_timeout(wait) {
            Ok(event) => Some(event),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        notifier.tick(Instant::now(), || {
            format!("witness on {local}: {} server link(s)", links.len())
        });
        let Some(event) = event else { continue };
        for w in accepted.try_iter() {
            links.insert(w.id, (w, None));
        }
        let (link, message) = match event {
            LinkEvent::Closed { link, .. } => {
                links.remove(&link);
                continue;
            }
            LinkEvent::Message { link, message } => (link, message),
        };
        let Some((writer, role)) = links.get_mut(&link) else {
            continue;
        };
        let now = Instant::now();
        let answer = match message {
            PeerMessage::Hello { role: r, .. } => {
                *role = Role::parse(&r)
                    .ok()
                    .filter(|r| matches!(r, Role::Primary | Role::Backup));
                None
            }
            PeerMessage::WitnessPing {
                id,
                role: r,
                state,
                epoch,
                last,
                stale_since,
            } => Role::parse(&r).ok().map(|r| {
                let (active, epoch, stale_since, learning) =
                    witness.ping(r, state, epoch, last, stale_since, now);
                PeerMessage::WitnessView {
                    id,
                    active,
                    epoch,
                    stale_since,
                    learning,
                }
            }),
            PeerMessage::Claim {
                id,
                role: r,
                epoch,
                last,
            } => Role::parse(&r).ok().map(|r| {
                let (granted, recovery, why) = witness.claim(r, epoch, last, now);
                if !granted {
                    log::info!("refused {r} becoming active at epoch {epoch}: {why}");
                }
                PeerMessage::ClaimResult {
                    id,
                    granted,
                    recovery,
                    why,
                }
            }),
            _ => None,
        };
        if let Some(answer) = answer {
            if writer.send(&answer).is_err() {
                links.remove(&link);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(seq: u64, epoch: u64) -> HistoryMark {
        HistoryMark { seq, epoch }
    }

    const T: Duration = Duration::from_secs(3);

    #[test]
    fn consents_to_nothing_while_learning() {
        let t0 = Instant::now();
        let mut w = Witness::new(T, t0);
        assert!(!w.claim(Role::Primary, 1, mark(0, 0), t0).0);
    }

    #[test]
    fn the_backup_takes_over_only_when_the_witness_lost_the_primary_too() {
        let t0 = Instant::now();
        let mut w = Witness::new(T, t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        w.ping(Role::Backup, PeerState::Ready, 0, mark(5, 1), None, at(3));
        assert!(w.claim(Role::Primary, 1, mark(5, 1), at(3)).0);
        w.ping(Role::Primary, PeerState::Active, 1, mark(9, 1), None, at(4));
        // The primary is alive here: no takeover.
        let (granted, _, why) = w.claim(Role::Backup, 2, mark(9, 1), at(5));
        assert!(!granted, "{why}");
        // Silent for takeover_after: consent, in sync.
        let (granted, recovery, _) = w.claim(Role::Backup, 2, mark(9, 1), at(8));
        assert!(granted && !recovery);
        // A primary coming back cannot serve beside the active backup.
        w.ping(Role::Backup, PeerState::Active, 2, mark(12, 2), None, at(9));
        assert!(!w.claim(Role::Primary, 3, mark(9, 1), at(9)).0);
    }

    #[test]
    fn a_stale_standby_takes_over_with_a_recovery_period() {
        let t0 = Instant::now();
        let mut w = Witness::new(T, t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        w.ping(Role::Backup, PeerState::Ready, 0, mark(1, 1), None, at(3));
        assert!(w.claim(Role::Primary, 1, mark(1, 1), at(3)).0);
        let (_, _, stale, _) = w.ping(
            Role::Primary,
            PeerState::Active,
            1,
            mark(20, 1),
            Some(4),
            at(4),
        );
        assert_eq!(stale, Some(4));
        let (granted, recovery, _) = w.claim(Role::Backup, 2, mark(4, 1), at(8));
        assert!(granted && recovery);
    }

    #[test]
    fn a_primary_taking_back_from_a_backup_that_stopped_needs_no_recovery() {
        let t0 = Instant::now();
        let mut w = Witness::new(T, t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        w.ping(
            Role::Backup,
            PeerState::Active,
            2,
            mark(30, 2),
            Some(10),
            at(3),
        );
        assert!(
            !w.claim(Role::Primary, 3, mark(30, 2), at(4)).0,
            "the backup still serves"
        );
        w.ping(
            Role::Backup,
            PeerState::Syncing,
            2,
            mark(31, 2),
            None,
            at(5),
        );
        let (granted, recovery, _) = w.claim(Role::Primary, 3, mark(31, 2), at(5));
        assert!(granted && !recovery);
    }

    #[test]
    fn a_restarted_witness_relearns_the_active_server() {
        let t0 = Instant::now();
        let mut w = Witness::new(T, t0);
        let (active, epoch, _, learning) =
            w.ping(Role::Backup, PeerState::Active, 4, mark(7, 4), None, t0);
        assert!(learning);
        assert_eq!((active.as_str(), epoch), ("backup", 4));
        // After learning, the primary still cannot serve beside it.
        w.ping(
            Role::Backup,
            PeerState::Active,
            4,
            mark(7, 4),
            None,
            t0 + Duration::from_secs(3),
        );
        assert!(
            !w.claim(Role::Primary, 5, mark(3, 1), t0 + Duration::from_secs(4))
                .0
        );
    }
}
