//! The simulated world: two servers, a witness, clients, the network
//! between them, one clock, and faults, all from one seed. Events run in
//! time order (ties in the order they were made), so a seed replays
//! exactly; every event is checked against the invariants as it happens.

mod checks;
mod clients;
mod faults;
mod net;
mod servers;
mod witness;

use super::client::{Act, Client};
use super::rng::Rng;
use super::server::{clock, Live, Server, SimConn, TAKEOVER};
use super::Time;
use floatd::config::Role;
use floatd::failover::role::{Action, Input};
use floatd::failover::witness::Witness;
use floatd::ledger::{Gate, Now};
use floatd::protocol::peer::{PeerMessage, PeerState};
use floatd::server::conn::ClientState;
use floatd::server::release::{Effects, Release};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::SocketAddr;
use std::time::Instant;

/// An end of a network link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum End {
    Server(usize),
    Witness,
    Client(usize),
}

/// A link that can be cut or slowed. Clients count as one end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wire {
    Pair,
    Witness(usize),
    Clients(usize),
}

fn wire(a: End, b: End) -> Wire {
    match (a, b) {
        (End::Server(_), End::Server(_)) => Wire::Pair,
        (End::Server(s), End::Witness) | (End::Witness, End::Server(s)) => Wire::Witness(s),
        (End::Server(s), End::Client(_)) | (End::Client(_), End::Server(s)) => Wire::Clients(s),
        _ => Wire::Pair,
    }
}

#[derive(Clone, Debug)]
pub enum Fault {
    Kill(usize, Time),
    Freeze(usize, Time),
    KillWitness(Time),
    FreezeWitness(Time),
    Cut(Wire, Time),
    /// A firewall on server `s`'s host rejects (RST) everything between it
    /// and the other server and the witness: connections reset at both
    /// ends, dials refused, while the process lives.
    Firewall(usize, Time),
    Slow(Wire, Time, Time),
    DiskFails(usize),
}

#[derive(Debug)]
enum Event {
    WatchdogTick(usize),
    LoopTick(usize),
    LoopRun(usize),
    Sync(usize),
    WitnessTick,
    /// To a server's watchdog, on link `gen` of `from`.
    ToServer {
        to: usize,
        link: (End, End),
        gen: u64,
        msg: PeerMessage,
    },
    ToWitness {
        from: usize,
        gen: u64,
        msg: PeerMessage,
    },
    Dialled {
        from: usize,
        to: End,
    },
    LinkDown {
        server: usize,
        to: End,
    },
    /// The witness sees server `s`'s connection close.
    WitnessSawClose(usize),
    Connected {
        client: usize,
        server: usize,
        conn: u64,
    },
    Request {
        server: usize,
        conn: u64,
        line: String,
    },
    Reply {
        client: usize,
        conn: u64,
        line: String,
    },
    Reset {
        client: usize,
        conn: u64,
    },
    ClientWake(usize),
    Fault(Fault),
    Thaw(usize),
    Restart(usize),
    ThawWitness,
    RestartWitness,
    Heal(Wire),
    Unslow(Wire),
}

struct Queued {
    at: Time,
    seq: u64,
    ev: Box<Event>,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// What one run found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub violations: Vec<String>,
    pub trace: Vec<String>,
    pub max_held: usize,
    pub grants: u64,
    pub longest_unserved: Time,
    pub events: u64,
}

pub struct Config {
    pub witness: bool,
    pub count: u32,
    pub clients: usize,
    /// Faults happen in `0..duration`; then everything heals.
    pub duration: Time,
    pub quiesce: Time,
    pub faults: Vec<(Time, Fault)>,
}

pub struct World {
    now: Time,
    seq: u64,
    queue: BinaryHeap<Reverse<Queued>>,
    rng: Rng,
    cfg: Config,
    base: Instant,
    unix0: u64,
    servers: [Server; 2],
    witness: Option<Witness>,
    witness_frozen: bool,
    witness_deferred: Vec<Event>,
    clients: Vec<Client>,
    /// Link generations: (dialler, target) -> current connection (0: none).
    links: BTreeMap<(End, End), u64>,
    next_gen: u64,
    next_conn: u64,
    /// Connection id -> (client, server).
    conns: BTreeMap<u64, (usize, usize)>,
    cut: BTreeSet<Wire>,
    /// Cut wires whose far end answers with a reset (a firewall rejecting).
    rejecting: BTreeSet<Wire>,
    slow: BTreeMap<Wire, Time>,
    /// Messages sent while a wire was cut (TCP retransmits them after),
    /// with their direction.
    held: Vec<(Wire, (End, End), Event)>,
    /// Last delivery per direction, so each connection stays in order.
    fifo: BTreeMap<(End, End), Time>,
    deferred: [Vec<Event>; 2],
    /// When each client next wakes.
    wakes: Vec<Time>,
    tracing: bool,
    /// The last time a fault began or ended: the checks that hold only in
    /// calm weather look at what happened since.
    disturbed: Time,
    /// The last time something could have silenced each server to the
    /// other (it froze, died, restarted or thawed; the pair link was cut,
    /// slowed or healed).
    silenced: [Time; 2],
    out: Outcome,
    quiescing: bool,
}

impl World {
    pub fn new(seed: u64, cfg: Config, tracing: bool) -> World {
        let mut rng = Rng::new(seed);
        let rate = |rng: &mut Rng| 1.0 + (rng.below(2001) as f64 - 1000.0) * 1e-6;
        let servers = [
            Server::new(Role::Primary, rate(&mut rng)),
            Server::new(Role::Backup, rate(&mut rng)),
        ];
        let clients = (0..cfg.clients).map(|i| Client::new(i, 0)).collect();
        let mut w = World {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            rng,
            base: Instant::now(),
            unix0: 1_800_000_000,
            servers,
            witness: None,
            witness_frozen: false,
            witness_deferred: Vec::new(),
            clients,
            links: BTreeMap::new(),
            next_gen: 1,
            next_conn: 1,
            conns: BTreeMap::new(),
            cut: BTreeSet::new(),
            rejecting: BTreeSet::new(),
            slow: BTreeMap::new(),
            held: Vec::new(),
            fifo: BTreeMap::new(),
            deferred: [Vec::new(), Vec::new()],
            wakes: vec![Time::MAX; cfg.clients],
            tracing,
            disturbed: 0,
            silenced: [0; 2],
            out: Outcome::default(),
            quiescing: false,
            cfg,
        };
        if w.cfg.witness {
            w.witness = Some(Witness::new(TAKEOVER, w.base));
            w.at(0, Event::WitnessTick);
        }
        for s in 0..2 {
            w.start_server(s);
        }
        for c in 0..w.cfg.clients {
            let after = w.rng.between(0, 500_000);
            w.wake_client(c, after);
        }
        let faults = std::mem::take(&mut w.cfg.faults);
        for (at, f) in faults {
            w.at(at, Event::Fault(f));
        }
        w
    }

    fn at(&mut self, at: Time, ev: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at: at.max(self.now),
            seq: self.seq,
            ev: Box::new(ev),
        }));
    }

    fn trace(&mut self, text: impl FnOnce() -> String) {
        if self.tracing {
            let line = format!("{:>9.3}s {}", self.now as f64 / 1e6, text());
            self.out.trace.push(line);
        }
    }

    fn violation(&mut self, what: String) {
        let line = format!("{:>9.3}s VIOLATION: {what}", self.now as f64 / 1e6);
        if self.tracing {
            self.out.trace.push(line.clone());
        }
        self.out.violations.push(line);
    }

    fn server_now(&self, s: usize) -> Now {
        Now {
            mono: clock(self.base, self.servers[s].rate, self.now),
            unix: self.unix0 + self.now / 1_000_000,
        }
    }

    /// Runs the world to the end and checks what is left.
    pub fn run(mut self) -> Outcome {
        let end = self.cfg.duration + self.cfg.quiesce;
        while let Some(Reverse(q)) = self.queue.pop() {
            if q.at > end || !self.out.violations.is_empty() {
                break;
            }
            self.now = q.at;
            self.out.events += 1;
            if !self.quiescing && self.now >= self.cfg.duration {
                self.quiesce();
            }
            self.handle(*q.ev);
            self.check();
        }
        self.now = end;
        if self.out.violations.is_empty() {
            self.final_check();
        }
        for c in &self.clients {
            self.out.longest_unserved = self.out.longest_unserved.max(c.longest_unserved);
        }
        self.out
    }

    // ----- events -------------------------------------------------------

    fn handle(&mut self, ev: Event) {
        if let Some(s) = self.target_server(&ev) {
            if self.servers[s].live.is_none() {
                return; // crashed: its timers and messages are gone
            }
            if self.servers[s].frozen {
                self.deferred[s].push(ev);
                return;
            }
        }
        if matches!(
            ev,
            Event::WitnessTick | Event::ToWitness { .. } | Event::WitnessSawClose(_)
        ) {
            if self.witness.is_none() {
                return;
            }
            if self.witness_frozen {
                self.witness_deferred.push(ev);
                return;
            }
        }
        match ev {
            Event::WatchdogTick(s) => {
                self.machine(s, Input::Tick);
                let next = self.now + 100_000;
                self.at(next, Event::WatchdogTick(s));
            }
            Event::LoopTick(s) => {
                self.run_loop(s);
                let next = self.now + 250_000;
                self.at(next, Event::LoopTick(s));
            }
            Event::LoopRun(s) => {
                self.servers[s].loop_due = false;
                self.run_loop(s);
            }
            Event::Sync(s) => {
                self.servers[s].sync_due = false;
                self.servers[s].journal.sync();
                self.run_loop(s);
            }
            Event::WitnessTick => {
                let now = clock(self.base, 1.0, self.now);
                if let Some(w) = &mut self.witness {
                    w.tick(now);
                }
                let next = self.now + 100_000;
                self.at(next, Event::WitnessTick);
            }
            Event::ToServer { to, link, gen, msg } => {
                if self.links.get(&link) != Some(&gen) {
                    return; // that connection is gone
                }
                self.trace(|| format!("s{to} <- {:?}: {}", link.0, brief(&msg)));
                let input = if link.1 == End::Witness || link.0 == End::Witness {
                    Input::Witness(msg)
                } else {
                    Input::Peer(msg)
                };
                self.machine(to, input);
            }
            Event::ToWitness { from, gen, msg } => self.at_witness(from, gen, msg),
            Event::WitnessSawClose(s) => {
                let (role, now) = (self.servers[s].role, clock(self.base, 1.0, self.now));
                self.trace(|| format!("witness: s{s}'s connection closed"));
                if let Some(w) = &mut self.witness {
                    w.link_closed(role, now);
                }
            }
            Event::Dialled { from, to } => self.dialled(from, to),
            Event::LinkDown { server, to } => {
                let input = if to == End::Witness {
                    Input::WitnessLinkDown
                } else {
                    Input::PeerLinkDown
                };
                self.machine(server, input);
            }
            Event::Connected {
                client,
                server,
                conn,
            } => self.connected(client, server, conn),
            Event::Request { server, conn, line } => {
                let Some(live) = &mut self.servers[server].live else {
                    return;
                };
                if let Some(c) = live.conns.get_mut(&conn) {
                    c.inbox.push_back(line);
                    self.loop_soon(server);
                }
            }
            Event::Reply { client, conn, line } => self.client_line(client, conn, &line),
            Event::Reset { client, conn } => {
                if self.clients[client].conn == Some(conn) {
                    self.trace(|| format!("c{client}: connection reset"));
                    self.clients[client].disconnected(self.now);
                    self.wake_client(client, 0);
                }
            }
            Event::ClientWake(c) => self.client_step(c),
            Event::Fault(f) => self.fault(f),
            Event::Thaw(s) => self.thaw(s),
            Event::Restart(s) => {
                if self.servers[s].live.is_none() {
                    self.start_server(s);
                }
            }
            Event::ThawWitness => {
                self.disturbed = self.now;
                self.witness_frozen = false;
                self.trace(|| "witness thawed".into());
                for ev in std::mem::take(&mut self.witness_deferred) {
                    self.at(self.now, ev);
                }
            }
            Event::RestartWitness => {
                self.disturbed = self.now;
                if self.witness.is_none() {
                    self.trace(|| "witness restarted".into());
                    self.witness = Some(Witness::new(TAKEOVER, clock(self.base, 1.0, self.now)));
                    self.at(self.now, Event::WitnessTick);
                }
            }
            Event::Heal(wire) => self.heal(wire),
            Event::Unslow(wire) => {
                self.disturbed = self.now;
                if wire == Wire::Pair {
                    self.silenced = [self.now; 2];
                }
                self.slow.remove(&wire);
            }
        }
    }

    fn target_server(&self, ev: &Event) -> Option<usize> {
        match ev {
            Event::WatchdogTick(s)
            | Event::LoopTick(s)
            | Event::LoopRun(s)
            | Event::Sync(s)
            | Event::ToServer { to: s, .. }
            | Event::Request { server: s, .. }
            | Event::Connected { server: s, .. } => Some(*s),
            Event::Dialled { from, .. } | Event::LinkDown { server: from, .. } => Some(*from),
            _ => None,
        }
    }
}

/// A peer message, short, for the trace.
fn brief(m: &PeerMessage) -> String {
    match m {
        PeerMessage::Records { records } => format!(
            "Records {}..{}",
            records.first().map_or(0, |r| r.seq),
            records.last().map_or(0, |r| r.seq)
        ),
        PeerMessage::Snapshot { snapshot } => format!(
            "Snapshot seq {} with {} seat(s)",
            snapshot.seq,
            snapshot.seats.len()
        ),
        PeerMessage::Merge {
            id,
            seats,
            returned,
        } => format!(
            "Merge {id}: {} seat(s), {} returned",
            seats.len(),
            returned.len()
        ),
        PeerMessage::Heartbeat {
            state,
            epoch,
            last,
            can_serve,
            ..
        } => format!(
            "Heartbeat {} epoch {epoch} last {}/{}{}",
            state.as_str(),
            last.epoch,
            last.seq,
            if *can_serve { "" } else { " cannot serve" }
        ),
        other => format!("{other:?}"),
    }
}
