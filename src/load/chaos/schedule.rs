//! The fault schedule: a pure function of the seed, the mode, the run's
//! length and the failover timings, printed before the run so a failing
//! run can be replayed exactly (`make chaos SEED=N DURATION=S MODE=M`).
//!
//! Faults are drawn from a shuffled deck of every kind, so even a short
//! run covers different kinds, and a long one covers them all. Now and
//! then a fault starts while the previous one still runs (on another
//! target): overlapping faults.

use super::rng::Rng;
use std::fmt;
use std::time::Duration;

/// Witness mode (primary, backup, witness) or two-server mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Witness,
    TwoServer,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, String> {
        match text {
            "witness" => Ok(Mode::Witness),
            "two-server" | "two_server" | "pair" => Ok(Mode::TwoServer),
            other => Err(format!("mode {other:?}: expected witness or two-server")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Witness => "witness",
            Mode::TwoServer => "two-server",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Primary,
    Backup,
    Witness,
}

impl Node {
    pub const ALL: [Node; 3] = [Node::Primary, Node::Backup, Node::Witness];

    pub fn as_str(self) -> &'static str {
        match self {
            Node::Primary => "primary",
            Node::Backup => "backup",
            Node::Witness => "witness",
        }
    }
}

/// A network link between two namespaces (the clients' namespace is one end
/// of the last two).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Link {
    PrimaryBackup,
    PrimaryWitness,
    BackupWitness,
    ClientsPrimary,
    ClientsBackup,
}

impl Link {
    pub const ALL: [Link; 5] = [
        Link::PrimaryBackup,
        Link::PrimaryWitness,
        Link::BackupWitness,
        Link::ClientsPrimary,
        Link::ClientsBackup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Link::PrimaryBackup => "primary-backup",
            Link::PrimaryWitness => "primary-witness",
            Link::BackupWitness => "backup-witness",
            Link::ClientsPrimary => "clients-primary",
            Link::ClientsBackup => "clients-backup",
        }
    }

    fn touches_witness(self) -> bool {
        matches!(self, Link::PrimaryWitness | Link::BackupWitness)
    }
}

/// What one fault does, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL, started again (same state directory) after `down`.
    Kill { node: Node, down: Duration },
    /// SIGSTOP, SIGCONT after `time`.
    Freeze { node: Node, time: Duration },
    /// SIGTERM (a clean stop), started again at once.
    Restart { node: Node },
    /// Every packet on the link dropped, both ways, for `time`.
    Cut { link: Link, time: Duration },
    /// Every packet delayed by `delay` (± `jitter`) for `time`.
    Delay {
        link: Link,
        delay: Duration,
        jitter: Duration,
        time: Duration,
    },
    /// `percent` of packets dropped, each way, for `time`.
    Loss {
        link: Link,
        percent: u8,
        time: Duration,
    },
}

/// What a fault acts on; two faults never act on one target at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Node(Node),
    Link(Link),
}

impl Action {
    pub fn target(&self) -> Target {
        match self {
            Action::Kill { node, .. } | Action::Freeze { node, .. } | Action::Restart { node } => {
                Target::Node(*node)
            }
            Action::Cut { link, .. } | Action::Delay { link, .. } | Action::Loss { link, .. } => {
                Target::Link(*link)
            }
        }
    }

    /// How long the fault lasts (a restart: about an instant).
    pub fn time(&self) -> Duration {
        match self {
            Action::Kill { down, .. } => *down,
            Action::Freeze { time, .. }
            | Action::Cut { time, .. }
            | Action::Delay { time, .. }
            | Action::Loss { time, .. } => *time,
            Action::Restart { .. } => Duration::ZERO,
        }
    }

    /// The kind, for availability per kind: "freeze primary > takeover".
    pub fn kind(&self, takeover_after: Duration) -> String {
        let length = |t: &Duration| {
            if *t > takeover_after {
                "> takeover"
            } else {
                "< takeover"
            }
        };
        match self {
            Action::Kill { node, .. } => format!("kill {}", node.as_str()),
            Action::Freeze { node, time } => format!("freeze {} {}", node.as_str(), length(time)),
            Action::Restart { node } => format!("restart {}", node.as_str()),
            Action::Cut { link, time } => format!("cut {} {}", link.as_str(), length(time)),
            Action::Delay { link, .. } => format!("delay {}", link.as_str()),
            Action::Loss { link, .. } => format!("loss {}", link.as_str()),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |d: &Duration| format!("{:.1}s", d.as_secs_f64());
        match self {
            Action::Kill { node, down } => {
                write!(
                    f,
                    "SIGKILL {}, start it again after {}",
                    node.as_str(),
                    s(down)
                )
            }
            Action::Freeze { node, time } => {
                write!(f, "SIGSTOP {}, SIGCONT after {}", node.as_str(), s(time))
            }
            Action::Restart { node } => write!(f, "restart {} (SIGTERM, start)", node.as_str()),
            Action::Cut { link, time } => write!(f, "cut {} for {}", link.as_str(), s(time)),
            Action::Delay {
                link,
                delay,
                jitter,
                time,
            } => write!(
                f,
                "delay {} by {}ms ±{}ms for {}",
                link.as_str(),
                delay.as_millis(),
                jitter.as_millis(),
                s(time)
            ),
            Action::Loss {
                link,
                percent,
                time,
            } => write!(f, "drop {percent}% on {} for {}", link.as_str(), s(time)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// From the start of the run.
    pub at: Duration,
    pub action: Action,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{:6.1}s  {}", self.at.as_secs_f64(), self.action)
    }
}

/// The failover timings the servers run with; faults are sized by them.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    pub ping_interval: Duration,
    pub takeover_after: Duration,
}

/// The families a fault is drawn from, one card each in the deck.
#[derive(Clone, Copy, Debug)]
enum Card {
    Kill(Node),
    FreezeShort(Node),
    FreezeLong(Node),
    Restart(Node),
    CutShort(Link),
    CutLong(Link),
    Delay(Link),
    Loss(Link),
}

fn deck(mode: Mode) -> Vec<Card> {
    let mut cards = Vec::new();
    for node in Node::ALL {
        if mode == Mode::TwoServer && node == Node::Witness {
            continue;
        }
        cards.extend([
            Card::Kill(node),
            Card::FreezeShort(node),
            Card::FreezeLong(node),
            Card::Restart(node),
        ]);
    }
    for link in Link::ALL {
        if mode == Mode::TwoServer && link.touches_witness() {
            continue;
        }
        cards.extend([
            Card::CutShort(link),
            Card::CutLong(link),
            Card::Delay(link),
            Card::Loss(link),
        ]);
    }
    cards
}

/// No fault begins before this: the pair settles and the clients start.
pub const WARM_UP: Duration = Duration::from_secs(4);
/// At most this many faults, however long the run.
const MAX_FAULTS: usize = 10_000;

/// The schedule for a run of `run` (faults end by then).
pub fn generate(seed: u64, mode: Mode, run: Duration, t: Timings) -> Vec<Fault> {
    let mut rng = Rng::derive(seed, 0x5eed);
    let cards = deck(mode);
    let mut pile: Vec<usize> = Vec::new();
    let tk = t.takeover_after;
    let mut faults: Vec<Fault> = Vec::new();
    // Until when each target is taken.
    let mut busy: Vec<(Target, Duration)> = Vec::new();
    let mut at = WARM_UP;
    while faults.len() < MAX_FAULTS {
        if pile.is_empty() {
            pile = rng.shuffled(cards.len());
        }
        let card = cards[pile.pop().expect("refilled above")];
        let action = draw(card, &mut rng, t);
        let settle = tk + rng.between(Duration::from_secs(2), Duration::from_secs(5));
        if at + action.time() + Duration::from_secs(1) > run {
            break;
        }
        let target = action.target();
        if busy.iter().any(|(b, until)| *b == target && *until > at) {
            // Taken: the next card, a moment later.
            at += Duration::from_millis(500);
            continue;
        }
        busy.retain(|(_, until)| *until > at);
        busy.push((target, at + action.time() + settle));
        let time = action.time();
        faults.push(Fault { at, action });
        at += if rng.chance(0.25) {
            // The next fault overlaps this one.
            rng.between(
                Duration::from_millis(300),
                time.max(Duration::from_millis(400)),
            )
        } else {
            time + settle
        };
    }
    faults
}

/// The soak's schedule: repeated failovers and failbacks without
/// restarting any process (so memory, threads and files can be compared
/// before and after): the primary frozen past `takeover_after`, then cut
/// off from everybody (backup, witness and clients) as long.
pub fn soak(run: Duration, t: Timings) -> Vec<Fault> {
    let away = t.takeover_after * 2;
    let settle = t.takeover_after * 3 + Duration::from_secs(10);
    let mut faults = Vec::new();
    let mut at = WARM_UP;
    for round in 0..MAX_FAULTS {
        if at + away + Duration::from_secs(1) > run {
            break;
        }
        if round % 2 == 0 {
            faults.push(Fault {
                at,
                action: Action::Freeze {
                    node: Node::Primary,
                    time: away,
                },
            });
        } else {
            for link in [
                Link::PrimaryBackup,
                Link::PrimaryWitness,
                Link::ClientsPrimary,
            ] {
                faults.push(Fault {
                    at,
                    action: Action::Cut { link, time: away },
                });
            }
        }
        at += away + settle;
    }
    faults
}

fn draw(card: Card, rng: &mut Rng, t: Timings) -> Action {
    let tk = t.takeover_after;
    let short = |rng: &mut Rng| rng.between(tk / 5, tk * 4 / 5);
    let long = |rng: &mut Rng| rng.between(tk * 3 / 2, tk * 3);
    match card {
        Card::Kill(node) => Action::Kill {
            node,
            down: rng.between(Duration::from_millis(500), tk * 3),
        },
        Card::FreezeShort(node) => Action::Freeze {
            node,
            time: short(rng),
        },
        Card::FreezeLong(node) => Action::Freeze {
            node,
            time: long(rng),
        },
        Card::Restart(node) => Action::Restart { node },
        Card::CutShort(link) => Action::Cut {
            link,
            time: short(rng),
        },
        Card::CutLong(link) => Action::Cut {
            link,
            time: long(rng),
        },
        Card::Delay(link) => Action::Delay {
            link,
            delay: rng.between(t.ping_interval / 2, t.ping_interval * 3 / 2),
            jitter: t.ping_interval / 5,
            time: rng.between(Duration::from_secs(3), Duration::from_secs(8)),
        },
        Card::Loss(link) => Action::Loss {
            link,
            percent: 20 + rng.below(50) as u8,
            time: rng.between(Duration::from_secs(2), Duration::from_secs(6)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const T: Timings = Timings {
        ping_interval: Duration::from_millis(500),
        takeover_after: Duration::from_secs(3),
    };

    #[test]
    fn a_seed_gives_one_schedule() {
        let run = Duration::from_secs(120);
        let a = generate(42, Mode::Witness, run, T);
        assert_eq!(a, generate(42, Mode::Witness, run, T));
        assert_ne!(a, generate(43, Mode::Witness, run, T));
        assert!(a.len() >= 5, "{a:?}");
    }

    #[test]
    fn faults_fit_the_run_and_never_share_a_target_at_once() {
        for seed in 0..200 {
            for mode in [Mode::Witness, Mode::TwoServer] {
                let run = Duration::from_secs(30 + seed % 300);
                let faults = generate(seed, mode, run, T);
                for (i, f) in faults.iter().enumerate() {
                    assert!(f.at >= WARM_UP);
                    assert!(f.at + f.action.time() < run, "{f}");
                    if i > 0 {
                        assert!(f.at >= faults[i - 1].at);
                    }
                    for g in &faults[..i] {
                        if g.action.target() == f.action.target() {
                            assert!(g.at + g.action.time() < f.at, "{g} overlaps {f}");
                        }
                    }
                    if mode == Mode::TwoServer {
                        let s = f.action.to_string();
                        assert!(!s.contains("witness"), "{s}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_long_run_covers_every_kind_and_some_overlap() {
        let faults = generate(1, Mode::Witness, Duration::from_secs(1800), T);
        let kinds: BTreeSet<String> = faults
            .iter()
            .map(|f| f.action.kind(T.takeover_after))
            .collect();
        // 3 nodes x (kill, 2 freezes, restart) + 5 links x (2 cuts, delay, loss).
        assert_eq!(kinds.len(), 12 + 20, "{kinds:?}");
        let overlapping = faults
            .windows(2)
            .filter(|w| w[1].at < w[0].at + w[0].action.time())
            .count();
        assert!(overlapping > 0);
        // Short cuts and freezes stay under takeover_after, long ones past it.
        for f in &faults {
            if let Action::Cut { time, .. } | Action::Freeze { time, .. } = f.action {
                assert_ne!(time, T.takeover_after);
            }
        }
    }
}
