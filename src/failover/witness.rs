//! The witness: a licence-less tie-breaker on a third host.
//!
//! Both servers of a pair ping the witness every ping interval; it answers
//! each ping with what it records: which server is active, at which epoch,
//! and whether that server's standby is stale. Nobody becomes active
//! without its consent ([`Witness::claim`]). It keeps everything in memory:
//! after a restart it spends one `takeover_after` learning from the pings
//! before it consents to anything, so it needs no disk.

use super::awake::{max_step_for, AwakeClock};
use super::link::{self, LinkEvent, LinkWriter};
use crate::config::{Config, Role};
use crate::protocol::peer::{HistoryMark, PeerMessage, PeerState};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often the witness looks at the time when no message comes. Its
/// awake clock counts a gap over three ticks (750 ms) as a pause, well
/// below the fence_after and takeover_after it judges silence against.
const TICK: Duration = Duration::from_millis(250);

/// What the witness knows of one server.
#[derive(Default, Clone)]
struct Seen {
    /// Awake time of its last message.
    heard_awake: Option<Duration>,
    state: Option<PeerState>,
    epoch: u64,
    last: HistoryMark,
    incarnation: u64,
    /// A claim granted to this process, until it says it heard of it: it
    /// counts as serving meanwhile, whatever its older pings say.
    consent: Option<u64>,
    /// Its connection to the witness closed and it has said nothing
    /// since: its process is gone, or it has seen the close too and
    /// stopped granting (docs/FAILOVER.md, "Early takeover").
    gone: bool,
}

/// A server's ping, as the witness reads it.
#[derive(Clone, Debug)]
pub struct Ping {
    pub role: Role,
    pub state: PeerState,
    pub epoch: u64,
    pub last: HistoryMark,
    pub stale_since: Option<u64>,
    pub incarnation: u64,
    pub granted_claim: u64,
}

/// A server's claim to become active.
#[derive(Clone, Debug)]
pub struct ClaimRequest {
    pub id: u64,
    pub role: Role,
    pub epoch: u64,
    pub last: HistoryMark,
    pub incarnation: u64,
}

/// The witness's answer to a ping: what it records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// The server recorded as active, if any.
    pub active: Option<Role>,
    pub epoch: u64,
    /// The active server's standby is stale since this entry.
    pub stale_since: Option<u64>,
    /// Just started: consents to nothing yet.
    pub learning: bool,
}

/// The witness's answer to a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub granted: bool,
    /// The claimant must run a recovery period first.
    pub recovery: bool,
    /// Why it was refused (empty when granted).
    pub why: String,
}

impl Verdict {
    fn refused(why: String) -> Verdict {
        Verdict {
            granted: false,
            recovery: false,
            why,
        }
    }
}

/// The witness's decisions, without sockets (tested on its own). Silence
/// is judged in awake time ([`AwakeClock`]), so a witness woken from a
/// pause does not take the servers' silence for their death.
pub struct Witness {
    takeover_after: Duration,
    clock: AwakeClock,
    primary: Seen,
    backup: Seen,
    /// Who is active, at which epoch.
    active: Option<(Role, u64)>,
    /// The recorded active server has served (pinged as serving) since it
    /// was recorded.
    active_served: bool,
    /// The active server's standby is stale since this entry.
    stale_since: Option<u64>,
}

impl Witness {
    pub fn new(takeover_after: Duration, now: Instant) -> Witness {
        Witness {
            takeover_after,
            clock: AwakeClock::new(now, max_step_for(TICK)),
            primary: Seen::default(),
            backup: Seen::default(),
            active: None,
            active_served: false,
            stale_since: None,
        }
    }

    /// Time passed (called every [`TICK`] and with every message).
    pub fn tick(&mut self, now: Instant) {
        if let Some(pause) = self.clock.observe(now) {
            log::warn!(
                "the witness was not running for {pause:?}: the servers' silence is counted only from now"
            );
            // What they said meanwhile waits unread: judge them afresh.
            let awake = self.clock.now();
            for seen in [&mut self.primary, &mut self.backup] {
                if seen.heard_awake.is_some() {
                    seen.heard_awake = Some(awake);
                }
            }
        }
    }

    fn learning(&self) -> bool {
        self.clock.now() < self.takeover_after
    }

    fn seen(&mut self, role: Role) -> &mut Seen {
        if role == Role::Primary {
            &mut self.primary
        } else {
            &mut self.backup
        }
    }

    fn alive(&self, seen: &Seen) -> bool {
        !seen.gone
            && seen
                .heard_awake
                .is_some_and(|t| self.clock.since(t) < self.takeover_after)
    }

    /// The connection a server last spoke on closed.
    pub fn link_closed(&mut self, role: Role, now: Instant) {
        self.tick(now);
        let s = self.seen(role);
        if s.heard_awake.is_some() && !s.gone {
            s.gone = true;
            log::info!("the {role}'s connection closed");
        }
    }

    /// A ping: records it, returns the answer.
    pub fn ping(&mut self, p: &Ping, now: Instant) -> View {
        self.tick(now);
        let learning = self.learning();
        let heard = self.clock.now();
        let s = self.seen(p.role);
        if s.incarnation != p.incarnation {
            s.consent = None; // a restarted process: what it says is all
            s.incarnation = p.incarnation;
        }
        if s.consent.is_some_and(|k| p.granted_claim >= k) {
            s.consent = None;
        }
        s.heard_awake = Some(heard);
        s.gone = false;
        if s.consent.is_none() {
            s.state = Some(p.state);
        }
        s.epoch = s.epoch.max(p.epoch);
        s.last = p.last;
        match self.active {
            Some((r, e)) if r == p.role && p.state.is_serving() && p.epoch >= e => {
                self.active = Some((p.role, p.epoch));
                self.active_served = true;

                if p.stale_since != self.stale_since {
                    match p.stale_since {
                        Some(n) => {
                            log::warn!("{} records its standby stale since entry {n}", p.role)
                        }
                        None => log::info!("{}'s standby is in sync again", p.role),
                    }
                    self.stale_since = p.stale_since;
                }
            }
            None if learning && p.state.is_serving() => {
                // Relearning after a restart: whoever says it serves.
                self.active = Some((p.role, p.epoch));
                self.active_served = true;
                self.stale_since = p.stale_since;
            }
            _ => {}
        }
        View {
            active: self.active.map(|(r, _)| r),
            epoch: self.active.map_or(0, |(_, e)| e),
            stale_since: self.stale_since,
            learning,
        }
    }

    /// May the claimant become active at its epoch?
    pub fn claim(&mut self, c: &ClaimRequest, now: Instant) -> Verdict {
        let (role, epoch, last) = (c.role, c.epoch, c.last);
        self.tick(now);
        if self.learning() {
            return Verdict::refused(
                "the witness just started and is still learning who is active".into(),
            );
        }
        let heard = self.clock.now();
        {
            let s = self.seen(role);
            s.heard_awake = Some(heard);
            s.gone = false;
            s.last = last;
            if s.incarnation != c.incarnation {
                s.consent = None;
                s.incarnation = c.incarnation;
            }
        }
        let other_role = role.other();
        let other = if role == Role::Primary {
            self.backup.clone()
        } else {
            self.primary.clone()
        };
        let other_alive = self.alive(&other);
        let other_serving = other_alive && other.state.is_some_and(|s| s.is_serving());
        if other_serving {
            return Verdict::refused(format!(
                "the {other_role} is active (epoch {}) and the witness hears it",
                other.epoch
            ));
        }
        let behind = (last.epoch, last.seq) < (other.last.epoch, other.last.seq);
        // The other server stopped serving (handed back) and said so with
        // its last record: a claimant holding that much misses nothing.
        let has_final_history =
            other_alive && other.state.is_some_and(|s| !s.is_serving()) && !behind;
        let recovery = match self.active {
            // It served under the record and comes back with its history.
            Some((r, _)) if r == role && self.active_served => false,
            _ if has_final_history => false,
            // Consented to before but never served (it declined, or the
            // answer never reached it): the other may have granted since.
            Some((r, _)) if r == role => true,
            Some(_) => self.stale_since.is_some() || behind,
            // Nothing recorded (a fresh witness): only a server known to be
            // at least as far as the other may skip the recovery period.
            None => other.heard_awake.is_none() || behind,
        };
        if let Some((current, e)) = self.active {
            if epoch <= e && current != role {
                return Verdict::refused(format!("epoch {epoch} is not above the recorded {e}"));
            }
        }
        self.active = Some((role, epoch));
        self.active_served = false;
        self.stale_since = None;
        // It serves from now on, as far as the witness knows: pings it
        // sent before it heard of this consent do not say otherwise.
        let s = self.seen(role);
        s.state = Some(PeerState::Active);
        s.epoch = epoch;
        s.consent = Some(c.id);
        log::warn!(
            "{role} becomes active at epoch {epoch}{}",
            if recovery {
                " after a recovery period"
            } else {
                ""
            }
        );
        Verdict {
            granted: true,
            recovery,
            why: String::new(),
        }
    }
}

impl Witness {
    /// The answer to a server's message (a ping or a claim; others get
    /// none): the one translation between the wire and the decisions,
    /// used by the witness process and the simulation alike.
    pub fn answer(&mut self, message: PeerMessage, now: Instant) -> Option<PeerMessage> {
        match message {
            PeerMessage::WitnessPing {
                id,
                role,
                state,
                epoch,
                last,
                stale_since,
                incarnation,
                granted_claim,
            } => {
                let ping = Ping {
                    role: Role::parse(&role).ok()?,
                    state,
                    epoch,
                    last,
                    stale_since,
                    incarnation,
                    granted_claim,
                };
                let view = self.ping(&ping, now);
                Some(PeerMessage::WitnessView {
                    id,
                    active: view
                        .active
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_default(),
                    epoch: view.epoch,
                    stale_since: view.stale_since,
                    learning: view.learning,
                })
            }
            PeerMessage::Claim {
                id,
                role,
                epoch,
                last,
                incarnation,
            } => {
                let role = Role::parse(&role).ok()?;
                let request = ClaimRequest {
                    id,
                    role,
                    epoch,
                    last,
                    incarnation,
                };
                let verdict = self.claim(&request, now);
                if !verdict.granted {
                    log::info!(
                        "refused {role} becoming active at epoch {epoch}: {}",
                        verdict.why
                    );
                }
                Some(PeerMessage::ClaimResult {
                    id,
                    granted: verdict.granted,
                    recovery: verdict.recovery,
                    why: verdict.why,
                })
            }
            _ => None,
        }
    }
}

/// Runs the witness until SIGTERM or SIGINT (SIGHUP: nothing to reread).
pub fn run(config: &Config) -> Result<(), crate::sys::RunError> {
    use crate::sys::RunError;
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
    let secret = crate::sys::read_secret(secret_path).map_err(RunError::Config)?;
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
        .map_err(|e| crate::sys::listen_error("for the pair", listen, &e, "--peer-listen"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let (events_tx, events) = crossbeam_channel::unbounded();
    link::serve(listener, secret, events_tx).map_err(|e| e.to_string())?;
    log::info!("witness listening on {local}");
    println!("floatd witness on {local}");
    let mut witness = Witness::new(config.takeover_after, Instant::now());
    let mut links: HashMap<u64, (LinkWriter, Option<Role>)> = HashMap::new();
    // The link each server last said hello on: only its close says the
    // server is gone (an older link may close after a redial).
    let mut latest: HashMap<Role, u64> = HashMap::new();
    // systemd: ready once listening; the loop below pings the watchdog.
    let mut notifier = crate::sys::notify::Notifier::from_env();
    notifier.ready(format!("witness on {local}"));
    let wait = notifier.ping_every().unwrap_or(TICK).min(TICK);
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
        witness.tick(Instant::now());
        let event = match events.recv_timeout(wait) {
            Ok(event) => Some(event),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        notifier.tick(Instant::now(), || {
            format!("witness on {local}: {} server link(s)", links.len())
        });
        let Some(event) = event else { continue };
        let (link, message) = match event {
            LinkEvent::Accepted(w) => {
                links.insert(w.id, (w, None));
                continue;
            }
            LinkEvent::Closed { link, .. } => {
                let role = links.remove(&link).and_then(|(_, role)| role);
                if let Some(role) = role.filter(|r| latest.get(r) == Some(&link)) {
                    witness.link_closed(role, Instant::now());
                }
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
                if let Some(r) = *role {
                    latest.insert(r, link);
                }
                None
            }
            other => witness.answer(other, now),
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
mod tests;
