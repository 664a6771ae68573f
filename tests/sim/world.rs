//! The simulated world: two servers, a witness, clients, the network
//! between them, one clock, and faults, all from one seed. Events run in
//! time order (ties in the order they were made), so a seed replays
//! exactly; every event is checked against the invariants as it happens.

use super::client::{Act, Client};
use super::rng::Rng;
use super::server::{clock, Live, Server, SimConn, TAKEOVER};
use super::Time;
use floatd::config::Role;
use floatd::failover::role::{Action, Input};
use floatd::failover::witness::{ClaimRequest, Ping, Witness};
use floatd::ledger::{Gate, Now};
use floatd::protocol::peer::{PeerMessage, PeerState};
use floatd::server::conn::ClientState;
use floatd::server::core::{Effects, Release};
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
        if matches!(ev, Event::WitnessTick | Event::ToWitness { .. }) {
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

    // ----- network ------------------------------------------------------

    fn reachable(&self, a: End, b: End) -> bool {
        !self.cut.contains(&wire(a, b))
    }

    fn up(&self, e: End) -> bool {
        match e {
            End::Server(s) => self.servers[s].live.is_some(),
            End::Witness => self.witness.is_some(),
            End::Client(_) => true,
        }
    }

    /// When a message sent now from `a` to `b` arrives (in order with the
    /// others on that direction).
    fn arrival(&mut self, a: End, b: End) -> Time {
        let w = wire(a, b);
        let mut delay = self.rng.between(100, 1_500);
        if let Some(extra) = self.slow.get(&w) {
            delay += self.rng.between(extra / 2, *extra);
        }
        let at = self.now + delay;
        let last = self.fifo.entry((a, b)).or_insert(0);
        let at = at.max(*last);
        *last = at;
        at
    }

    fn send(&mut self, a: End, b: End, ev: Event) {
        let w = wire(a, b);
        if self.cut.contains(&w) || self.held.iter().any(|(_, d, _)| *d == (a, b)) {
            // Behind what waits on that connection, in order.
            self.held.push((w, (a, b), ev));
            return;
        }
        let at = self.arrival(a, b);
        self.at(at, ev);
    }

    fn link_gen(&self, from: End, to: End) -> u64 {
        self.links.get(&(from, to)).copied().unwrap_or(0)
    }

    /// Closes a connection; the server that dialled it hears so (when it
    /// runs: a frozen one on waking, as its reader thread would report).
    fn break_link(&mut self, from: End, to: End) {
        if self.links.remove(&(from, to)).is_none() {
            return;
        }
        self.trace(|| format!("link {from:?} -> {to:?} down"));
        if let End::Server(server) = from {
            self.at(self.now, Event::LinkDown { server, to });
        }
    }

    fn dialled(&mut self, from: usize, to: End) {
        let me = End::Server(from);
        let ok = self.reachable(me, to)
            && self.up(to)
            && match to {
                End::Server(o) => !self.servers[o].frozen,
                End::Witness => !self.witness_frozen,
                End::Client(_) => false,
            };
        if !ok || self.link_gen(me, to) != 0 {
            return;
        }
        let gen = self.next_gen;
        self.next_gen += 1;
        self.links.insert((me, to), gen);
        self.trace(|| format!("link s{from} -> {to:?} up"));
        let input = if to == End::Witness {
            Input::WitnessLinkUp
        } else {
            Input::PeerLinkUp
        };
        self.machine(from, input);
    }

    // ----- servers --------------------------------------------------------

    fn start_server(&mut self, s: usize) {
        self.disturbed = self.now;
        self.silenced[s] = self.now;
        let srv = &mut self.servers[s];
        srv.starts += 1;
        srv.started_at = self.now;

        let seed = (s as u64 + 1) * 1_000_003 + srv.starts * 7919 + self.seq;
        let now = clock(self.base, srv.rate, self.now);
        let unix = self.unix0 + self.now / 1_000_000;
        let live = Live::start(
            srv.role,
            self.cfg.witness,
            self.cfg.count,
            &srv.journal,
            seed,
            now,
            unix,
        );
        srv.live = Some(live);
        srv.frozen = false;
        self.trace(|| format!("s{s} started"));
        self.at(self.now, Event::WatchdogTick(s));
        self.at(self.now, Event::LoopTick(s));
    }

    fn machine(&mut self, s: usize, input: Input) {
        let now = clock(self.base, self.servers[s].rate, self.now);
        let Some(live) = &mut self.servers[s].live else {
            return;
        };
        let was_serving = live.machine.state().is_serving();
        let actions = live.machine.handle(input, now);
        if !was_serving && live.machine.state().is_serving() {
            self.check_takeover(s);
        }

        for a in actions {
            self.act(s, a);
        }
    }

    fn act(&mut self, s: usize, a: Action) {
        let me = End::Server(s);
        match a {
            Action::ToPeer(msg) => {
                let to = End::Server(1 - s);
                let gen = self.link_gen(me, to);
                if gen != 0 {
                    let ev = Event::ToServer {
                        to: 1 - s,
                        link: (me, to),
                        gen,
                        msg,
                    };
                    self.send(me, to, ev);
                }
            }
            Action::ToWitness(msg) => {
                let gen = self.link_gen(me, End::Witness);
                if gen != 0 {
                    self.send(me, End::Witness, Event::ToWitness { from: s, gen, msg });
                }
            }
            Action::ToLoop(msg) => {
                // The status report waits for the next loop tick; the rest
                // wakes the loop, as the watchdog's waker does.
                let wake = !matches!(msg, floatd::failover::FromWatchdog::Status(_));
                if let Some(live) = &self.servers[s].live {
                    let _ = live.to_loop.send(msg);
                }
                if wake {
                    self.loop_soon(s);
                }
            }
            Action::ClosePeerLink => {
                // The machine knows: no LinkDown follows.
                self.links.remove(&(me, End::Server(1 - s)));
            }
            Action::DialPeer(_) => {
                let at = self.now + self.rng.between(200, 3_000);
                self.at(
                    at,
                    Event::Dialled {
                        from: s,
                        to: End::Server(1 - s),
                    },
                );
            }
            Action::DialWitness => {
                if self.cfg.witness {
                    let at = self.now + self.rng.between(200, 3_000);
                    self.at(
                        at,
                        Event::Dialled {
                            from: s,
                            to: End::Witness,
                        },
                    );
                }
            }
        }
    }

    fn loop_soon(&mut self, s: usize) {
        if !self.servers[s].loop_due {
            self.servers[s].loop_due = true;
            self.at(self.now, Event::LoopRun(s));
        }
    }

    /// One iteration of the server's event loop.
    fn run_loop(&mut self, s: usize) {
        let now = self.server_now(s);
        let Some(live) = &mut self.servers[s].live else {
            return;
        };
        live.core.on_wake(now);
        let mut replies = Vec::new();
        for (&id, conn) in live.conns.iter_mut() {
            while live.core.accepting_requests() {
                let Some(line) = conn.inbox.pop_front() else {
                    break;
                };
                let key = id as usize;
                if let Some(reply) = live.core.handle_line(&mut conn.state, key, &line, now) {
                    if reply.grant.is_some() {
                        self.out.grants += 1;
                    }
                    conn.output
                        .push(reply.text.as_bytes(), reply.wait_for, reply.grant);
                }
            }
        }
        let mut effects = Effects::default();
        live.core.after_requests(now, &mut effects);
        // A deadline already past after the loop's work would make the
        // real loop poll without waiting, for ever (a spinning server).
        if let Some(due) = live.core.next_deadline(now.mono) {
            if due <= now.mono {
                let role = live.machine.state().as_str();
                self.out.violations.push(format!(
                    "{:>9.3}s VIOLATION: s{s} ({role}) would spin: its next deadline has passed",
                    self.now as f64 / 1e6
                ));
            }
        }

        for (key, reply) in effects.pushes {
            if let Some(conn) = live.conns.get_mut(&(key as u64)) {
                conn.output
                    .push(reply.text.as_bytes(), reply.wait_for, reply.grant);
            }
        }
        if let Some(line) = &effects.broadcast {
            for conn in live.conns.values_mut() {
                conn.output.push(line.as_bytes(), None, None);
            }
        }
        let release = live.core.release();
        for conn in live.conns.values_mut() {
            match release {
                Release::Upto(seq) => conn.output.release(seq),
                Release::Settle {
                    release,
                    fail_after,
                } => {
                    let core = &mut live.core;
                    conn.output
                        .settle(release, fail_after, |h| core.take_back(h, now));
                }
            }
            let mut bytes = Vec::new();
            let _ = conn.output.flush_to(&mut bytes);
            for line in String::from_utf8_lossy(&bytes).lines() {
                replies.push((conn.client, line.to_string()));
            }
        }
        live.core.after_release(now);
        let to_watchdog: Vec<_> = live.from_loop.try_iter().collect();
        let journal_pending = live.core.journal.failure().is_none()
            && live.core.journal.durable_seq() < live.core.ledger.last_seq();
        let conn_of: BTreeMap<usize, u64> =
            live.conns.iter().map(|(id, c)| (c.client, *id)).collect();
        if effects.resume_requests {
            self.loop_soon(s);
        }
        for (client, line) in replies {
            let conn = conn_of[&client];
            self.send(
                End::Server(s),
                End::Client(client),
                Event::Reply { client, conn, line },
            );
        }
        for msg in to_watchdog {
            self.machine(s, Input::Loop(msg));
        }
        if journal_pending && !self.servers[s].sync_due {
            self.servers[s].sync_due = true;
            let at = self.now + self.rng.between(200, 4_000);
            self.at(at, Event::Sync(s));
        }
    }

    fn connected(&mut self, client: usize, server: usize, conn: u64) {
        if self.clients[client].conn != Some(conn) {
            return;
        }
        let Some(live) = &mut self.servers[server].live else {
            return;
        };
        let peer: SocketAddr = format!("10.0.0.{}:5000", client + 1).parse().expect("addr");
        let mut c = SimConn {
            client,
            state: ClientState::new(peer, false),
            output: Default::default(),
            inbox: Default::default(),
        };
        c.output.push(live.core.greeting().as_bytes(), None, None);
        // One connection per client at a time on a server.
        live.conns.retain(|_, old| old.client != client);
        live.conns.insert(conn, c);
        self.conns.insert(conn, (client, server));
        self.loop_soon(server);
    }

    // ----- witness -----------------------------------------------------

    fn at_witness(&mut self, from: usize, gen: u64, msg: PeerMessage) {
        let link = (End::Server(from), End::Witness);
        if self.links.get(&link) != Some(&gen) {
            return;
        }
        let now = clock(self.base, 1.0, self.now);
        let Some(w) = &mut self.witness else { return };
        let answer = match msg {
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
                    role: Role::parse(&role).expect("role"),
                    state,
                    epoch,
                    last,
                    stale_since,
                    incarnation,
                    granted_claim,
                };
                let v = w.ping(&ping, now);
                Some(PeerMessage::WitnessView {
                    id,
                    active: v.active.map(|r| r.as_str().to_string()).unwrap_or_default(),
                    epoch: v.epoch,
                    stale_since: v.stale_since,
                    learning: v.learning,
                })
            }
            PeerMessage::Claim {
                id,
                role,
                epoch,
                last,
                incarnation,
            } => {
                let request = ClaimRequest {
                    id,
                    role: Role::parse(&role).expect("role"),
                    epoch,
                    last,
                    incarnation,
                };
                let v = w.claim(&request, now);
                self.trace(|| format!("witness: claim of s{from} at epoch {epoch}: {v:?}"));
                Some(PeerMessage::ClaimResult {
                    id,
                    granted: v.granted,
                    recovery: v.recovery,
                    why: v.why,
                })
            }
            _ => None,
        };
        if let Some(msg) = answer {
            let ev = Event::ToServer {
                to: from,
                link,
                gen,
                msg,
            };
            self.send(End::Witness, End::Server(from), ev);
        }
    }

    // ----- clients ------------------------------------------------------

    /// Wakes client `c` at `now + after`, unless it wakes sooner anyway
    /// (one wake-up pending per client).
    fn wake_client(&mut self, c: usize, after: Time) {
        let at = self.now + after;
        let pending = self.wakes[c];
        if pending > self.now && pending <= at {
            return;
        }
        self.wakes[c] = at;
        self.at(at, Event::ClientWake(c));
    }

    fn client_step(&mut self, c: usize) {
        if self.wakes[c] != self.now {
            return; // superseded by an earlier wake-up
        }
        let now = self.now;
        let act = self.clients[c].step(now, &mut self.rng);
        if let Some(sent) = self.clients[c].timed_out.take() {
            // Every request gets an answer: a server that ran, reachable,
            // all along must have answered within the client's timeout.
            if self.calm() && self.disturbed + 1_000_000 < sent {
                let server = self.clients[c].server;
                self.violation(format!(
                    "c{c}: a request to s{server} sent at {:.3}s got no answer while nothing failed",
                    sent as f64 / 1e6
                ));
            }
        }
        if let Some(act) = act {
            self.client_act(c, act);
        }
        let cl = &mut self.clients[c];
        if cl.conn.is_some() && cl.greeted || cl.conn.is_none() {
            let unserved = now.saturating_sub(cl.last_served);
            if !cl.held.is_empty() || !cl.stopping {
                cl.longest_unserved = cl.longest_unserved.max(unserved);
            }
        }
        let next = self.clients[c].next_due(now).max(now + 1_000);
        self.wake_client(c, next - now);
    }

    fn client_act(&mut self, c: usize, act: Act) {
        self.trace(|| format!("c{c}: {act:?}"));
        match act {
            Act::Connect(s) => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.clients[c].conn = Some(conn);
                self.clients[c].greeted = false;
                let (me, to) = (End::Client(c), End::Server(s));
                if !self.up(to) || !self.reachable(me, to) {
                    // Refused, or the SYN vanishes: the client gives up later.
                    if !self.up(to) && self.reachable(me, to) {
                        let at = self.now + 500;
                        self.at(at, Event::Reset { client: c, conn });
                    } else {
                        self.clients[c].pending = Some((super::client::Asked::Hello, self.now));
                    }
                    return;
                }
                let at = self.arrival(me, to);
                self.at(
                    at,
                    Event::Connected {
                        client: c,
                        server: s,
                        conn,
                    },
                );
            }
            Act::Send(line) => {
                let Some(conn) = self.clients[c].conn else {
                    return;
                };
                let Some(&(_, s)) = self.conns.get(&conn) else {
                    return; // not connected yet: the request waits for a timeout
                };
                self.send(
                    End::Client(c),
                    End::Server(s),
                    Event::Request {
                        server: s,
                        conn,
                        line,
                    },
                );
            }
            Act::Drop => {}
        }
    }

    fn client_line(&mut self, c: usize, conn: u64, line: &str) {
        if self.clients[c].conn != Some(conn) {
            return;
        }
        self.trace(|| format!("c{c} <- {line}"));
        let now = self.now;
        let (act, lost) = self.clients[c].on_line(line, now, &mut self.rng);
        if let Some(lost) = lost {
            self.violation(format!(
                "c{c} lost seat {} it still held: {}",
                lost.handle, lost.reply
            ));
        }
        if let Some(act) = act {
            self.client_act(c, act);
        }
        self.wake_client(c, 0);
    }

    // ----- faults -------------------------------------------------------

    fn fault(&mut self, f: Fault) {
        if self.quiescing {
            return;
        }
        self.disturbed = self.now;
        match &f {
            Fault::Kill(s, _) | Fault::Freeze(s, _) | Fault::DiskFails(s) => {
                self.silenced[*s] = self.now
            }
            Fault::Cut(Wire::Pair, _) | Fault::Slow(Wire::Pair, ..) => {
                self.silenced = [self.now; 2]
            }
            _ => {}
        }
        self.trace(|| format!("FAULT {f:?}"));
        match f {
            Fault::Kill(s, down) => {
                if self.servers[s].live.is_some() {
                    self.kill(s);
                    let at = self.now + down;
                    self.at(at, Event::Restart(s));
                }
            }
            Fault::Freeze(s, len) => {
                if self.servers[s].running() {
                    self.servers[s].frozen = true;
                    let at = self.now + len;
                    self.at(at, Event::Thaw(s));
                }
            }
            Fault::KillWitness(down) => {
                if self.witness.is_some() {
                    self.witness = None;
                    self.witness_frozen = false;
                    self.witness_deferred.clear();
                    for s in 0..2 {
                        self.break_link(End::Server(s), End::Witness);
                    }
                    let at = self.now + down;
                    self.at(at, Event::RestartWitness);
                }
            }
            Fault::FreezeWitness(len) => {
                if self.witness.is_some() && !self.witness_frozen {
                    self.witness_frozen = true;
                    let at = self.now + len;
                    self.at(at, Event::ThawWitness);
                }
            }
            Fault::Cut(w, len) => {
                if self.cut.insert(w) {
                    let at = self.now + len;
                    self.at(at, Event::Heal(w));
                }
            }
            Fault::Slow(w, extra, len) => {
                self.slow.insert(w, extra);
                let at = self.now + len;
                self.at(at, Event::Unslow(w));
            }
            Fault::DiskFails(s) => self.servers[s].journal.fail("simulated disk failure"),
        }
    }

    fn kill(&mut self, s: usize) {
        self.servers[s].live = None;
        self.servers[s].frozen = false;
        self.servers[s].loop_due = false;
        self.servers[s].sync_due = false;
        self.deferred[s].clear();
        self.servers[s].journal.crash();
        let me = End::Server(s);
        for to in [End::Server(1 - s), End::Witness] {
            self.links.remove(&(me, to));
        }
        // Its peers see the connections close, where a RST gets through.
        let other = End::Server(1 - s);
        if self.reachable(other, me) {
            self.break_link(other, me);
        }
        self.reset_clients_of(s);
    }

    /// Every client connection of server `s` is reset (where the RST gets
    /// through; elsewhere the client times out).
    fn reset_clients_of(&mut self, s: usize) {
        let me = End::Server(s);
        let dropped: Vec<(u64, usize)> = self
            .conns
            .iter()
            .filter(|(_, (_, srv))| *srv == s)
            .map(|(id, (c, _))| (*id, *c))
            .collect();
        for (conn, client) in dropped {
            self.conns.remove(&conn);
            if let Some(live) = &mut self.servers[s].live {
                if let Some(c) = live.conns.remove(&conn) {
                    live.core.connection_closed(&c.state);
                }
            }
            if self.reachable(End::Client(client), me) {
                let at = self.now + 500;
                self.at(at, Event::Reset { client, conn });
            }
        }
    }

    fn thaw(&mut self, s: usize) {
        self.disturbed = self.now;
        self.silenced[s] = self.now;
        if !self.servers[s].frozen {
            return;
        }
        self.servers[s].frozen = false;
        self.trace(|| format!("s{s} thawed"));
        let mut ticks = 0;
        for ev in std::mem::take(&mut self.deferred[s]) {
            // Timers fired while frozen collapse into one each.
            if matches!(ev, Event::WatchdogTick(_) | Event::LoopTick(_)) {
                ticks += 1;
                if ticks > 2 {
                    continue;
                }
            }
            self.at(self.now, ev);
        }
        self.at(self.now, Event::WatchdogTick(s));
        self.at(self.now, Event::LoopTick(s));
    }

    fn heal(&mut self, w: Wire) {
        self.disturbed = self.now;
        if w == Wire::Pair {
            self.silenced = [self.now; 2];
        }
        if !self.cut.remove(&w) {
            return;
        }
        self.trace(|| format!("{w:?} healed"));
        // What was sent meanwhile arrives now (TCP retransmits), unless the
        // connection was reset.
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(x, _, _)| *x == w);
        self.held = rest;
        let reset = self.rng.chance(0.3);
        if reset {
            let pairs: Vec<(End, End)> = self
                .links
                .keys()
                .copied()
                .filter(|(a, b)| wire(*a, *b) == w)
                .collect();
            for (a, b) in pairs {
                self.break_link(a, b);
            }
            if let Wire::Clients(server) = w {
                self.reset_clients_of(server);
            }
        }
        let backoff = self.rng.between(1_000, 400_000);
        for (i, (_, dir, ev)) in mine.into_iter().enumerate() {
            let at = self.now + backoff + i as Time;
            // Later sends on the same direction come after these.
            let last = self.fifo.entry(dir).or_insert(0);
            *last = (*last).max(at);
            self.at(at, ev);
        }
    }

    /// Everything heals; clients return their seats and stop.
    fn quiesce(&mut self) {
        self.quiescing = true;
        self.trace(|| "QUIESCE: every fault heals, clients return their seats".into());
        let wires: Vec<Wire> = self.cut.iter().copied().collect();
        for w in wires {
            self.heal(w);
        }
        self.slow.clear();
        for s in 0..2 {
            if self.servers[s].frozen {
                self.thaw(s);
            }
            if self.servers[s].journal.lock().failure.is_some() {
                // The operator replaces the disk and restarts the server.
                self.kill(s);
            }
            if self.servers[s].live.is_none() {
                self.start_server(s);
            }
        }
        if self.cfg.witness {
            if self.witness_frozen {
                self.at(self.now, Event::ThawWitness);
            }
            if self.witness.is_none() {
                self.at(self.now, Event::RestartWitness);
            }
        }
        for c in 0..self.clients.len() {
            self.clients[c].stopping = true;
            self.wake_client(c, 0);
        }
    }

    // ----- invariants -----------------------------------------------------

    fn check(&mut self) {
        let now = self.now;
        let held: usize = self.clients.iter().map(|c| c.holding(now)).sum();
        self.out.max_held = self.out.max_held.max(held);
        let count = self.cfg.count as usize;
        let limit = if self.cfg.witness { count } else { 2 * count };
        if held > limit {
            self.violation(format!(
                "{held} seats held at once on a count of {count} (limit {limit})"
            ));
        }
        if self.cfg.witness {
            let granting: Vec<usize> = (0..2)
                .filter(|&s| {
                    let srv = &self.servers[s];
                    let Some(live) = &srv.live else { return false };
                    if srv.frozen {
                        return false;
                    }
                    let at = clock(self.base, srv.rate, now);
                    !matches!(live.core.decision(at).gate, Gate::Closed(_))
                })
                .collect();
            if granting.len() > 1 {
                let gates: Vec<String> = (0..2)
                    .map(|s| {
                        let srv = &self.servers[s];
                        let live = srv.live.as_ref().expect("granting");
                        let at = clock(self.base, srv.rate, now);
                        format!(
                            "s{s} {:?} (role {}, epoch {}, lease ends in {:?})",
                            live.core.decision(at).gate,
                            live.machine.state().as_str(),
                            live.machine.epoch(),
                            live.core
                                .gate_inputs()
                                .grant_lease
                                .map(|u| u.checked_duration_since(at))
                        )
                    })
                    .collect();
                self.violation(format!(
                    "both servers may grant at once (witness mode): {gates:?}"
                ));
            }
        }
    }

    /// A server took over: in calm weather the other one must have been
    /// gone (a takeover beside a running, reachable active server is the
    /// false takeover a pause or a slow loop could cause).
    fn check_takeover(&mut self, s: usize) {
        let other = &self.servers[1 - s];
        let other_serving = other.running()
            && other
                .live
                .as_ref()
                .is_some_and(|l| l.machine.state().is_serving());
        // The taker's own pause is no excuse: that is what it must not
        // take for the other's silence.
        let heard_for = self.now.saturating_sub(self.silenced[1 - s]);
        let up_for = self.now.saturating_sub(self.servers[s].started_at);
        let long = 2 * TAKEOVER.as_micros() as Time;
        if other_serving && up_for > long && !self.cut.contains(&Wire::Pair) && heard_for > long {
            self.violation(format!(
                "s{s} took over while s{} served, and nothing had silenced it for {:.1}s",
                1 - s,
                heard_for as f64 / 1e6
            ));
        }
    }

    /// No fault is under way.
    fn calm(&self) -> bool {
        self.cut.is_empty()
            && self.slow.is_empty()
            && self.servers.iter().all(|s| s.running())
            && (!self.cfg.witness || (self.witness.is_some() && !self.witness_frozen))
    }

    fn final_check(&mut self) {
        let serving: Vec<usize> = (0..2)
            .filter(|&s| {
                self.servers[s]
                    .live
                    .as_ref()
                    .is_some_and(|l| l.machine.state() == PeerState::Active)
            })
            .collect();
        if serving.len() != 1 {
            let states: Vec<String> = (0..2)
                .map(|s| {
                    self.servers[s]
                        .live
                        .as_ref()
                        .map_or("down".into(), |l| l.machine.state().as_str().to_string())
                })
                .collect();
            self.violation(format!(
                "after everything healed, {} server(s) are active: {states:?}",
                serving.len()
            ));
            return;
        }
        let held: usize = self.clients.iter().map(|c| c.held.len()).sum();
        for s in 0..2 {
            let live = self.servers[s].live.as_ref().expect("serving");
            let seats = live.core.ledger.seat_count();
            if seats != 0 || held != 0 {
                let handles: Vec<String> = live
                    .core
                    .ledger
                    .seats()
                    .map(|x| x.grant.handle.to_string())
                    .collect();
                self.violation(format!(
                    "after every client returned its seats and {}s passed, s{s} still counts {seats} seat(s) {handles:?} (clients hold {held})",
                    self.cfg.quiesce / 1_000_000
                ));
            }
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
