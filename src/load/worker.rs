//! One client thread: its own mio `Poll` and a share of the connections,
//! each a small state machine (connect, greeting, HELLO, the mix, reclaims
//! after a reconnect), with a deadline on every wait.

use super::options::{Mix, Options};
use super::stats::{Counts, FailoverCounts};
use super::wire::{self, Kind};
use crossbeam_channel::Sender;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a run waits for the replies to its final check-ins.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);
/// A refused checkout (no seats, recovering, ...) is retried after this.
const RETRY_DELAY: Duration = Duration::from_millis(10);
/// Reconnect back-off once every known server has been tried.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(400);
/// A connection that has not finished connect+greeting+HELLO in this long
/// is given up and retried.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 64 * 1024;

/// State shared by all worker threads and the main thread.
#[derive(Default)]
pub struct Shared {
    /// Seats held by all clients, as the clients know it: up on a grant's
    /// reply, down when the check-in is sent (so it never exceeds what the
    /// server holds for us, unless the servers granted more than they had).
    pub held: AtomicI64,
    pub peak_held: AtomicI64,
}

impl Shared {
    fn grant(&self) {
        let now = self.held.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_held.fetch_max(now, Ordering::Relaxed);
    }

    fn release(&self) {
        self.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a worker sends to the main thread.
pub enum Msg {
    /// Counts of the last second (for the progress line).
    Interval(Counts),
    Done(Box<WorkerResult>),
}

pub struct WorkerResult {
    pub counts: Counts,
    pub failover: FailoverCounts,
    /// Seats held when the duration ran out.
    pub held_at_end: u64,
    /// Connections that were up (past HELLO) when the duration ran out.
    pub connected_at_end: u64,
}

pub struct WorkerSpec {
    pub first_client: usize,
    pub clients: usize,
    pub opts: Arc<Options>,
    pub feature: String,
    pub start: Instant,
    pub deadline: Instant,
    pub shared: Arc<Shared>,
    pub tx: Sender<Msg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not connected: waiting in the connect queue or for a back-off timer.
    Waiting,
    Connecting,
    Greeting,
    Hello,
    Running,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    Hello,
    Checkout,
    Checkin,
    Heartbeat,
    Reclaim,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    /// Holds nothing: next is a checkout.
    Free,
    Held,
    /// Held on a server we lost: reclaim it on the next one.
    Reclaim,
}

struct Slot {
    state: SlotState,
    /// A request of this slot is in flight.
    busy: bool,
    /// Waiting for a rate token.
    queued: bool,
    /// Not before this (retry delay, next heartbeat of the hold mix).
    due: Option<Instant>,
    handle: String,
    version: String,
}

struct Conn {
    client_id: String,
    user: String,
    host: String,
    stream: Option<TcpStream>,
    /// Index in `Ctx::servers` of the server connected (or to connect) to.
    server: usize,
    phase: Phase,
    since: Instant,
    partial: Vec<u8>,
    out: Vec<u8>,
    out_sent: usize,
    /// WRITABLE interest is registered (a write would block).
    write_blocked: bool,
    inflight: VecDeque<(u32, Req, Instant)>,
    slots: Vec<Slot>,
    lease: Duration,
    /// First failed request not yet followed by a success.
    failed_at: Option<Instant>,
    /// Connection attempts since the last good HELLO.
    tries: u32,
    retry_at: Option<Instant>,
}

/// Everything a connection may touch besides itself.
struct Ctx {
    opts: Arc<Options>,
    feature: String,
    registry: Registry,
    servers: Vec<(String, Option<SocketAddr>)>,
    counts: Counts,
    interval: Counts,
    failover: FailoverCounts,
    shared: Arc<Shared>,
    start: Instant,
    deadline: Instant,
    draining: bool,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    connect_queue: VecDeque<usize>,
    connecting: usize,
    rate_per_thread: Option<f64>,
    rate_issued: u64,
    rate_wait: VecDeque<(usize, usize)>,
    rng: u64,
}

impl Ctx {
    fn measuring(&self, now: Instant) -> bool {
        !self.draining && now < self.deadline
    }

    fn error(&mut self, now: Instant, code: &str) {
        if self.measuring(now) {
            self.counts.error(code);
            self.interval.error(code);
        }
    }

    fn note_failure(&mut self, now: Instant) {
        let at = now.duration_since(self.start);
        let first = self.failover.first_failure.get_or_insert(at);
        *first = (*first).min(at);
    }

    /// The index of `addr` in the known servers, learning it if new.
    fn server_index(&mut self, addr: &str) -> usize {
        if let Some(i) = self.servers.iter().position(|(a, _)| a == addr) {
            return i;
        }
        let resolved = addr.to_socket_addrs().ok().and_then(|mut a| a.next());
        self.servers.push((addr.to_string(), resolved));
        self.servers.len() - 1
    }

    /// A rate token, when the run is rate-limited.
    fn take_token(&mut self, now: Instant) -> bool {
        let Some(rate) = self.rate_per_thread else {
            return true;
        };
        let allowed = (now.duration_since(self.start).as_secs_f64() * rate) as u64 + 1;
        if self.rate_issued < allowed {
            self.rate_issued += 1;
            true
        } else {
            false
        }
    }

    fn next_token_at(&self) -> Option<Instant> {
        let rate = self.rate_per_thread?;
        Some(self.start + Duration::from_secs_f64(self.rate_issued as f64 / rate))
    }

    fn jitter(&mut self, max: Duration) -> Duration {
        // xorshift: enough to spread reconnects.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        Duration::from_nanos(self.rng % (max.as_nanos() as u64).max(1))
    }

    fn heartbeat_interval(&self, lease: Duration) -> Duration {
        self.opts
            .heartbeat_every
            .unwrap_or(lease / 3)
            .max(Duration::from_millis(1))
    }
}

impl Conn {
    fn new(global: usize, opts: &Options, now: Instant) -> Conn {
        let slots = (0..opts.pipeline)
            .map(|_| Slot {
                state: SlotState::Free,
                busy: false,
                queued: false,
                due: None,
                handle: String::new(),
                version: String::new(),
            })
            .collect();
        Conn {
            client_id: format!("{}-{global}", opts.client_prefix),
            user: format!("{}{global}", opts.user_prefix),
            host: format!("{}{global}", opts.host_prefix),
            stream: None,
            server: 0,
            phase: Phase::Waiting,
            since: now,
            partial: Vec::new(),
            out: Vec::new(),
            out_sent: 0,
            write_blocked: false,
            inflight: VecDeque::with_capacity(opts.pipeline),
            slots,
            lease: Duration::from_secs(60),
            failed_at: None,
            tries: 0,
            retry_at: None,
        }
    }

    fn in_handshake(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connecting | Phase::Greeting | Phase::Hello
        )
    }

    /// Starts connecting to `self.server`.
    fn connect(&mut self, key: usize, ctx: &mut Ctx, now: Instant) {
        self.tries += 1;
        let Some(addr) = ctx.servers[self.server].1 else {
            ctx.error(now, "BAD_ADDRESS");
            self.fail(key, ctx, now, None);
            return;
        };
        match TcpStream::connect(addr) {
            Ok(mut stream) => {
                // Readable only: a refused connect shows as an error event,
                // a good one by its greeting. WRITABLE is added only while
                // a write is blocked, or every ACK would wake us.
                if let Err(e) = ctx
                    .registry
                    .register(&mut stream, Token(key), Interest::READABLE)
                {
                    log::debug!("register: {e}");
                    ctx.error(now, "CONNECT_FAILED");
                    self.fail(key, ctx, now, None);
                    return;
                }
                let _ = stream.set_nodelay(true);
                self.stream = Some(stream);
                self.write_blocked = false;
                self.phase = Phase::Connecting;
                self.since = now;
                ctx.connecting += 1;
                ctx.timers.push(Reverse((now + HANDSHAKE_TIMEOUT, key)));
            }
            Err(_) => {
                ctx.error(now, "CONNECT_FAILED");
                self.fail(key, ctx, now, None);
            }
        }
    }

    /// Drops the connection and plans the next attempt: the next known
    /// server at once, then with back-off once all were tried; or the
    /// server at `redirect` at once.
    fn fail(&mut self, key: usize, ctx: &mut Ctx, now: Instant, redirect: Option<usize>) {
        if self.in_handshake() {
            ctx.connecting -= 1;
        }
        if let Some(mut stream) = self.stream.take() {
            let _ = ctx.registry.deregister(&mut stream);
        }
        if self.phase == Phase::Running && !ctx.draining {
            ctx.failover.disconnects += u64::from(redirect.is_none());
        }
        for (slot, req, _) in self.inflight.drain(..) {
            if let Some(s) = self.slots.get_mut(slot as usize) {
                s.busy = false;
                if matches!(req, Req::Checkout | Req::Checkin) {
                    s.state = SlotState::Free;
                }
            }
        }
        for s in &mut self.slots {
            if s.state == SlotState::Held {
                s.state = SlotState::Reclaim;
            }
        }
        self.partial.clear();
        self.out.clear();
        self.out_sent = 0;
        if ctx.draining {
            self.phase = Phase::Closed;
            return;
        }
        if redirect.is_none() && self.failed_at.is_none() {
            self.failed_at = Some(now);
            ctx.note_failure(now);
        }
        self.phase = Phase::Waiting;
        // Every known server once at once (a redirect may add a hop or two),
        // then back off: servers that redirect to each other, or all down,
        // must not make us spin.
        let n = ctx.servers.len() as u32;
        let at_once = match redirect {
            Some(i) => {
                self.server = i;
                ctx.failover.redirects += 1;
                2 * n + 2
            }
            None => {
                self.server = (self.server + 1) % ctx.servers.len();
                n
            }
        };
        if self.tries < at_once {
            ctx.connect_queue.push_back(key);
        } else {
            let exp = (self.tries - at_once).min(8);
            let wait = (BACKOFF_MIN * 2u32.pow(exp)).min(BACKOFF_MAX);
            let at = now + wait / 2 + ctx.jitter(wait / 2);
            self.retry_at = Some(at);
            ctx.timers.push(Reverse((at, key)));
        }
    }

    fn on_timer(&mut self, key: usize, ctx: &mut Ctx, now: Instant) {
        match self.phase {
            Phase::Waiting => {
                if self.retry_at.is_some_and(|t| t <= now) {
                    self.retry_at = None;
                    ctx.connect_queue.push_back(key);
                }
            }
            Phase::Connecting | Phase::Greeting | Phase::Hello => {
                if now.duration_since(self.since) >= HANDSHAKE_TIMEOUT {
                    ctx.error(now, "HANDSHAKE_TIMEOUT");
                    self.fail(key, ctx, now, None);
                }
            }
            Phase::Running => {
                self.pump_all(key, ctx, now);
                self.flush(key, ctx, now);
            }
            Phase::Closed => {}
        }
    }

    fn on_event(&mut self, key: usize, ctx: &mut Ctx, scratch: &mut [u8]) {
        let now = Instant::now();
        if self.phase == Phase::Connecting {
            let Some(stream) = &self.stream else { return };
            match stream.take_error() {
                Ok(Some(_)) | Err(_) => {
                    ctx.error(now, "CONNECT_FAILED");
                    self.fail(key, ctx, now, None);
                    return;
                }
                Ok(None) => {}
            }
            match stream.peer_addr() {
                Ok(_) => self.phase = Phase::Greeting,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => {
                    ctx.error(now, "CONNECT_FAILED");
                    self.fail(key, ctx, now, None);
                    return;
                }
            }
        }
        // Read until it would block.
        loop {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            match stream.read(scratch) {
                Ok(0) => {
                    if !(ctx.draining && self.inflight.is_empty()) {
                        ctx.error(now, "CONNECTION_LOST");
                    }
                    self.fail(key, ctx, now, None);
                    return;
                }
                Ok(n) => {
                    let now = Instant::now();
                    if !self.take_input(key, ctx, &scratch[..n], now) {
                        return;
                    }
                    // A short read emptied the socket: data arriving after
                    // it raises a new edge, so skip the read that would
                    // only say WouldBlock (one syscall per reply saved).
                    if n < scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    ctx.error(now, "CONNECTION_LOST");
                    self.fail(key, ctx, now, None);
                    return;
                }
            }
        }
        self.flush(key, ctx, now);
    }

    /// Handles received bytes; false once the connection was dropped.
    fn take_input(&mut self, key: usize, ctx: &mut Ctx, data: &[u8], now: Instant) -> bool {
        let mut alive = true;
        if self.partial.is_empty() {
            let used = wire::for_each_line(data, |line| {
                alive = self.on_line(key, ctx, line, now);
                alive
            });
            if alive {
                self.partial.extend_from_slice(&data[used..]);
            }
        } else {
            let mut buf = std::mem::take(&mut self.partial);
            buf.extend_from_slice(data);
            let used = wire::for_each_line(&buf, |line| {
                alive = self.on_line(key, ctx, line, now);
                alive
            });
            if alive {
                buf.drain(..used);
                self.partial = buf;
            }
        }
        if alive && self.partial.len() > 64 * 1024 {
            ctx.error(now, "REPLY_TOO_LONG");
            self.fail(key, ctx, now, None);
            return false;
        }
        alive
    }

    /// One line from the server; false once the connection was dropped.
    fn on_line(&mut self, key: usize, ctx: &mut Ctx, line: &[u8], now: Instant) -> bool {
        let kind = wire::kind(line);
        if self.phase == Phase::Greeting {
            return self.on_greeting(key, ctx, line, kind, now);
        }
        if kind == Kind::Push {
            if wire::second_word(line) == b"MOVED" {
                if let Some(active) = wire::field_str(line, b"active") {
                    let i = ctx.server_index(active);
                    if self.failed_at.is_none() {
                        self.failed_at = Some(now);
                        ctx.note_failure(now);
                    }
                    self.fail(key, ctx, now, Some(i));
                    return false;
                }
            }
            return true;
        }
        let Some((slot, req, sent)) = self.inflight.pop_front() else {
            ctx.error(now, "UNEXPECTED_REPLY");
            return true;
        };
        if req == Req::Hello {
            if kind == Kind::Ok {
                if let Some(ms) = wire::field_u64(line, b"lease_ms") {
                    self.lease = Duration::from_millis(ms.max(1));
                }
                self.phase = Phase::Running;
                ctx.connecting -= 1;
                self.tries = 0;
                self.pump_all(key, ctx, now);
                return true;
            }
            let code = String::from_utf8_lossy(wire::second_word(line)).into_owned();
            ctx.error(now, &code);
            self.fail(key, ctx, now, None);
            return false;
        }
        let s = slot as usize;
        self.slots[s].busy = false;
        match kind {
            Kind::Ok => {
                if ctx.measuring(now) {
                    let ns = now.duration_since(sent).as_nanos() as u64;
                    ctx.counts.ops += 1;
                    ctx.interval.ops += 1;
                    ctx.interval.latency.saturating_record(ns.max(1));
                }
                if let Some(at) = self.failed_at.take() {
                    ctx.failover.gaps.push(now.duration_since(at));
                    let since_start = now.duration_since(ctx.start);
                    ctx.failover.last_recovery = ctx.failover.last_recovery.max(Some(since_start));
                }
                // Only the hold mix waits between heartbeats.
                let hb =
                    (ctx.opts.mix == Mix::Hold).then(|| now + ctx.heartbeat_interval(self.lease));
                let slot = &mut self.slots[s];
                match req {
                    Req::Checkout => match wire::field_str(line, b"handle") {
                        Some(h) => {
                            slot.handle.clear();
                            slot.handle.push_str(h);
                            slot.version.clear();
                            slot.version
                                .push_str(wire::field_str(line, b"version").unwrap_or("0"));
                            slot.state = SlotState::Held;
                            slot.due = hb;
                            ctx.shared.grant();
                        }
                        None => {
                            ctx.error(now, "NO_HANDLE_IN_REPLY");
                            slot.state = SlotState::Free;
                        }
                    },
                    Req::Checkin => slot.state = SlotState::Free,
                    Req::Heartbeat => slot.due = hb,
                    Req::Reclaim => {
                        slot.state = SlotState::Held;
                        slot.due = hb;
                        ctx.failover.reclaimed += 1;
                    }
                    Req::Hello => unreachable!(),
                }
            }
            _ => {
                let code_bytes = if kind == Kind::Err {
                    wire::second_word(line)
                } else {
                    b"UNEXPECTED_REPLY"
                };
                let code = std::str::from_utf8(code_bytes).unwrap_or("ERR");
                ctx.error(now, code);
                let service_lost = matches!(
                    code,
                    "STANDBY" | "NOT_ACTIVE" | "RECOVERING" | "SHUTTING_DOWN" | "INTERNAL"
                );
                if service_lost && self.failed_at.is_none() {
                    self.failed_at = Some(now);
                    ctx.note_failure(now);
                }
                if code == "STANDBY" {
                    // Put the slot back as it was and go where we are sent.
                    let slot = &mut self.slots[s];
                    if req == Req::Checkin {
                        slot.state = SlotState::Free;
                    }
                    let to = wire::field_str(line, b"active").map(|a| ctx.server_index(a));
                    self.fail(key, ctx, now, to);
                    return false;
                }
                let slot = &mut self.slots[s];
                match req {
                    Req::Checkout => {
                        slot.state = SlotState::Free;
                        slot.due = Some(now + RETRY_DELAY);
                        ctx.timers.push(Reverse((now + RETRY_DELAY, key)));
                    }
                    Req::Checkin => slot.state = SlotState::Free,
                    Req::Heartbeat | Req::Reclaim => {
                        if service_lost {
                            // Try again later; the seat may still be ours.
                            slot.due = Some(now + RETRY_DELAY);
                            ctx.timers.push(Reverse((now + RETRY_DELAY, key)));
                        } else {
                            slot.state = SlotState::Free;
                            slot.due = None;
                            ctx.shared.release();
                            if req == Req::Reclaim {
                                ctx.failover.lost += 1;
                            }
                        }
                    }
                    Req::Hello => unreachable!(),
                }
            }
        }
        self.pump(key, s, ctx, now);
        true
    }

    fn on_greeting(
        &mut self,
        key: usize,
        ctx: &mut Ctx,
        line: &[u8],
        kind: Kind,
        now: Instant,
    ) -> bool {
        if kind != Kind::Greeting {
            let code = if kind == Kind::Err {
                String::from_utf8_lossy(wire::second_word(line)).into_owned()
            } else {
                "BAD_GREETING".to_string()
            };
            ctx.error(now, &code);
            self.fail(key, ctx, now, None);
            return false;
        }
        if let Some(peer) = wire::field_str(line, b"peer") {
            ctx.server_index(peer);
        }
        let state = wire::field(line, b"state").unwrap_or(b"active");
        if state != b"active" && state != b"recovering" {
            let to = wire::field_str(line, b"active").map(|a| ctx.server_index(a));
            if to.is_none() {
                ctx.error(now, "STANDBY");
            }
            self.fail(key, ctx, now, to.filter(|&i| i != self.server));
            return false;
        }
        self.phase = Phase::Hello;
        wire::put_hello(&mut self.out, &self.client_id, &self.user, &self.host);
        self.inflight.push_back((u32::MAX, Req::Hello, now));
        true
    }

    fn pump_all(&mut self, key: usize, ctx: &mut Ctx, now: Instant) {
        for s in 0..self.slots.len() {
            self.pump(key, s, ctx, now);
        }
    }

    /// Sends the slot's next request, if it has one due.
    fn pump(&mut self, key: usize, s: usize, ctx: &mut Ctx, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        let slot = &self.slots[s];
        if slot.busy || slot.queued {
            return;
        }
        if ctx.draining {
            if slot.state == SlotState::Held && ctx.opts.checkin_at_end {
                self.send(s, Req::Checkin, ctx, now);
            }
            return;
        }
        if let Some(due) = slot.due {
            if due > now {
                ctx.timers.push(Reverse((due, key)));
                return;
            }
        }
        let req = match (slot.state, ctx.opts.mix) {
            (SlotState::Reclaim, _) => Req::Reclaim,
            (SlotState::Free, _) => Req::Checkout,
            (SlotState::Held, Mix::CheckoutCheckin) => Req::Checkin,
            (SlotState::Held, Mix::Hold | Mix::Heartbeat) => Req::Heartbeat,
        };
        if req != Req::Reclaim && !ctx.take_token(now) {
            self.slots[s].queued = true;
            ctx.rate_wait.push_back((key, s));
            return;
        }
        self.send(s, req, ctx, now);
    }

    fn send(&mut self, s: usize, req: Req, ctx: &mut Ctx, now: Instant) {
        let slot = &mut self.slots[s];
        match req {
            Req::Checkout => {
                wire::put_checkout(&mut self.out, &ctx.feature, ctx.opts.version.as_deref())
            }
            Req::Checkin => {
                wire::put(&mut self.out, b"CHECKIN", slot.handle.as_bytes());
                slot.state = SlotState::Free;
                ctx.shared.release();
            }
            Req::Heartbeat => wire::put(&mut self.out, b"HEARTBEAT", slot.handle.as_bytes()),
            Req::Reclaim => {
                wire::put_reclaim(&mut self.out, &slot.handle, &ctx.feature, &slot.version)
            }
            Req::Hello => unreachable!(),
        }
        slot.busy = true;
        slot.due = None;
        self.inflight.push_back((s as u32, req, now));
    }

    /// Writes what is buffered until the socket would block.
    fn flush(&mut self, key: usize, ctx: &mut Ctx, now: Instant) {
        while self.out_sent < self.out.len() {
            let Some(stream) = self.stream.as_mut() else {
                return;
            };
            match stream.write(&self.out[self.out_sent..]) {
                Ok(0) => break,
                Ok(n) => self.out_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !self.write_blocked {
                        self.write_blocked = true;
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        let _ = ctx.registry.reregister(stream, Token(key), interest);
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    ctx.error(now, "CONNECTION_LOST");
                    self.fail(key, ctx, now, None);
                    return;
                }
            }
        }
        self.out.clear();
        self.out_sent = 0;
        if self.write_blocked {
            self.write_blocked = false;
            if let Some(stream) = self.stream.as_mut() {
                let _ = ctx
                    .registry
                    .reregister(stream, Token(key), Interest::READABLE);
            }
        }
    }
}

/// Runs one worker thread's connections until the deadline, then drains.
pub fn run(spec: WorkerSpec) {
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("floatd-load: poll: {e}");
            let _ = spec.tx.send(Msg::Done(Box::new(WorkerResult {
                counts: Counts::default(),
                failover: FailoverCounts::default(),
                held_at_end: 0,
                connected_at_end: 0,
            })));
            return;
        }
    };
    let registry = poll.registry().try_clone().expect("registry clone");
    let threads = spec.opts.threads as f64;
    let mut ctx = Ctx {
        opts: Arc::clone(&spec.opts),
        feature: spec.feature.clone(),
        registry,
        servers: Vec::new(),
        counts: Counts::default(),
        interval: Counts::default(),
        failover: FailoverCounts::default(),
        shared: Arc::clone(&spec.shared),
        start: spec.start,
        deadline: spec.deadline,
        draining: false,
        timers: BinaryHeap::new(),
        connect_queue: VecDeque::new(),
        connecting: 0,
        rate_per_thread: spec.opts.rate.map(|r| r / threads),
        rate_issued: 0,
        rate_wait: VecDeque::new(),
        rng: 0x9E37_79B9_7F4A_7C15 ^ (spec.first_client as u64 + 1),
    };
    for s in &spec.opts.servers {
        ctx.server_index(s);
    }
    let now = Instant::now();
    let mut conns: Vec<Conn> = (0..spec.clients)
        .map(|i| Conn::new(spec.first_client + i, &spec.opts, now))
        .collect();
    ctx.connect_queue.extend(0..conns.len());
    let mut scratch = vec![0u8; READ_CHUNK];
    let mut events = Events::with_capacity(1024);
    let mut next_tick = spec.start + Duration::from_secs(1);
    let mut held_at_end = 0;
    let mut connected_at_end = 0;
    let drain_deadline = spec.deadline + DRAIN_TIME;
    loop {
        let now = Instant::now();
        // Open connections, a burst at a time.
        while ctx.connecting < ctx.opts.connect_burst && !ctx.draining {
            let Some(key) = ctx.connect_queue.pop_front() else {
                break;
            };
            if conns[key].phase == Phase::Waiting {
                conns[key].connect(key, &mut ctx, now);
            }
        }
        if !ctx.draining && now >= ctx.deadline {
            // Connections a server never greeted (or answered HELLO on) by
            // the end are failures too, though they did not time out yet.
            for c in &conns {
                match c.phase {
                    Phase::Connecting | Phase::Greeting => ctx.counts.error("NO_GREETING"),
                    Phase::Hello => ctx.counts.error("NO_HELLO_REPLY"),
                    _ => {}
                }
            }
            ctx.draining = true;
            for c in &conns {
                held_at_end += c
                    .slots
                    .iter()
                    .filter(|s| s.state != SlotState::Free)
                    .count() as u64;
                connected_at_end += u64::from(c.phase == Phase::Running);
                if c.failed_at.is_some() {
                    ctx.failover.unrecovered += 1;
                }
                ctx.failover.lost += c
                    .slots
                    .iter()
                    .filter(|s| s.state == SlotState::Reclaim)
                    .count() as u64;
            }
            for (key, c) in conns.iter_mut().enumerate() {
                if c.phase == Phase::Running {
                    c.pump_all(key, &mut ctx, now);
                    c.flush(key, &mut ctx, now);
                } else {
                    c.fail(key, &mut ctx, now, None);
                }
            }
            ctx.rate_wait.clear();
        }
        if ctx.draining {
            let busy = conns
                .iter()
                .any(|c| c.phase == Phase::Running && !c.inflight.is_empty());
            if !busy || now >= drain_deadline {
                break;
            }
        }
        if now >= next_tick {
            next_tick += Duration::from_secs(1);
            let interval = std::mem::take(&mut ctx.interval);
            let _ = ctx.counts.latency.add(&interval.latency);
            let _ = spec.tx.send(Msg::Interval(interval));
        }
        // Rate tokens for waiting slots.
        while !ctx.rate_wait.is_empty() && ctx.take_token(now) {
            ctx.rate_issued -= 1; // pump takes it again
            let (key, s) = ctx.rate_wait.pop_front().expect("non-empty");
            conns[key].slots[s].queued = false;
            conns[key].pump(key, s, &mut ctx, now);
            conns[key].flush(key, &mut ctx, now);
        }
        // Timers due.
        while let Some(&Reverse((at, key))) = ctx.timers.peek() {
            if at > now {
                break;
            }
            ctx.timers.pop();
            conns[key].on_timer(key, &mut ctx, now);
        }
        let mut wake = if ctx.draining {
            drain_deadline
        } else {
            ctx.deadline.min(next_tick)
        };
        if let Some(&Reverse((at, _))) = ctx.timers.peek() {
            wake = wake.min(at);
        }
        if !ctx.rate_wait.is_empty() {
            if let Some(at) = ctx.next_token_at() {
                wake = wake.min(at);
            }
        }
        let pending_connects =
            !ctx.connect_queue.is_empty() && ctx.connecting < ctx.opts.connect_burst;
        let timeout = if pending_connects {
            Duration::ZERO
        } else {
            wake.saturating_duration_since(Instant::now())
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("floatd-load: poll: {e}");
                break;
            }
        }
        for event in events.iter() {
            let key = event.token().0;
            if let Some(c) = conns.get_mut(key) {
                if c.stream.is_some() {
                    c.on_event(key, &mut ctx, &mut scratch);
                }
            }
        }
    }
    for (key, c) in conns.iter_mut().enumerate() {
        if c.stream.is_some() {
            ctx.draining = true;
            c.fail(key, &mut ctx, Instant::now(), None);
        }
    }
    let interval = std::mem::take(&mut ctx.interval);
    ctx.counts.latency.add(&interval.latency).ok();
    let _ = spec.tx.send(Msg::Interval(interval));
    let _ = spec.tx.send(Msg::Done(Box::new(WorkerResult {
        counts: ctx.counts,
        failover: ctx.failover,
        held_at_end,
        connected_at_end,
    })));
}
