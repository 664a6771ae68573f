//! The mio event loop: accepts connections, reads requests, writes replies,
//! fires timers. One thread; it owns the ledger and never blocks.
//!
//! Per iteration: poll, handle each ready socket (read until it would
//! block, answer complete lines, write until it would block), then hand the
//! iteration's journal records to the storage thread and release the
//! replies whose records have become durable.

use super::conn::{Conn, LineResult, ReadOutcome};
use super::core::Core;
use super::http::HttpServer;
use super::output::HIGH_WATER;
use super::release::{Effects, Release, Reply};
use super::status::systemd_status;
use crate::codes::Code;
use crate::ledger::Now;
use crate::protocol::reply;
use crate::sys::notify::Notifier;
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Token of the waker other threads use to wake the loop.
pub const WAKER: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Listener tokens start here; connection tokens after them.
const FIRST_LISTENER: usize = 2;
const MAX_LISTENERS: usize = 64;
const FIRST_CONN: usize = FIRST_LISTENER + MAX_LISTENERS;

/// Connections accepted past the cap for loopback admins.
pub const ADMIN_SLOTS: usize = 8;
/// A started request line must be finished this soon.
const LINE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a shutdown waits for replies to drain.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings the loop itself needs.
pub struct LoopSettings {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

pub struct EventLoop {
    poll: Poll,
    listeners: Vec<TcpListener>,
    conns: Slab<Conn>,
    signals: Signals,
    core: Core,
    settings: LoopSettings,
    /// Connections with output to write at the end of the iteration.
    dirty: Vec<usize>,
    last_sweep: Instant,
    draining_since: Option<Instant>,
    /// An accept failed (out of file descriptors): connections wait in
    /// the backlog, and no new readiness event comes for them.
    accept_stalled: bool,
    /// The status page and metrics port, when configured.
    http: Option<HttpServer>,
    /// systemd: READY, WATCHDOG and STATUS notifications.
    notifier: Notifier,
}

impl EventLoop {
    /// Binds nothing itself: takes listeners already bound by start-up.
    pub fn new(
        poll: Poll,
        mut listeners: Vec<TcpListener>,
        core: Core,
        settings: LoopSettings,
    ) -> io::Result<EventLoop> {
        if listeners.len() > MAX_LISTENERS {
            return Err(io::Error::other("too many listening ports"));
        }
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(l, Token(FIRST_LISTENER + i), Interest::READABLE)?;
        }
        let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        Ok(EventLoop {
            poll,
            listeners,
            conns: Slab::new(),
            signals,
            core,
            settings,
            dirty: Vec::new(),
            last_sweep: Instant::now(),
            draining_since: None,
            accept_stalled: false,
            http: None,
            notifier: Notifier::from_env(),
        })
    }

    /// Serves the status page and metrics on this listener too.
    pub fn serve_http(&mut self, listener: TcpListener) -> io::Result<()> {
        let mut http = HttpServer::new(listener);
        http.register(self.poll.registry())?;
        self.http = Some(http);
        Ok(())
    }

    /// A waker for other threads (storage, watchdog).
    pub fn waker(poll: &Poll) -> io::Result<Arc<Waker>> {
        Ok(Arc::new(Waker::new(poll.registry(), WAKER)?))
    }

    /// Runs until shut down (SIGTERM, SIGINT or an admin DOWN).
    pub fn run(mut self) -> Result<(), String> {
        let mut events = Events::with_capacity(1024);
        // Licences are loaded and every port is bound: tell systemd.
        self.notifier
            .ready(systemd_status(&self.core, std::time::Instant::now()));
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll failed: {e}"));
            }
            let now = Now::current();
            self.core.on_wake(now);
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    SIGNALS => self.on_signals(now),
                    Token(t) if (FIRST_LISTENER..FIRST_CONN).contains(&t) => {
                        self.accept(t - FIRST_LISTENER, now)
                    }
                    t if HttpServer::owns(t) => {
                        if let Some(http) = &mut self.http {
                            http.on_event(self.poll.registry(), event, &self.core, now);
                        }
                    }
                    Token(t) => self.on_conn_event(t - FIRST_CONN, event, now),
                }
            }
            self.end_of_iteration(now);
            if self.draining_since.is_some() && self.drained(now) {
                break;
            }
        }
        self.core.finish_shutdown()
    }

    fn poll_timeout(&self) -> Duration {
        if !self.dirty.is_empty() {
            return Duration::ZERO; // output made while flushing waits for it
        }
        let now = Instant::now();
        let mut timeout = self.core.wake_every();
        if let Some(at) = self.core.next_deadline(now) {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        if let Some(at) = self.notifier.next_deadline() {
            timeout = timeout.min(at.saturating_duration_since(now));
        }
        timeout
    }

    fn on_signals(&mut self, now: Now) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            match signal {
                SIGHUP => {
                    log::info!("SIGHUP: rereading licences and options (and a pair's peer)");
                    if let Err(e) = self.core.reread(now) {
                        log::error!(
                            "reread failed, still serving the previous licences and options: {e}"
                        );
                    }
                }
                _ => {
                    log::info!("signal {signal}: shutting down");
                    self.core.request_shutdown(false);
                }
            }
        }
    }

    fn accept(&mut self, listener: usize, now: Now) {
        while let Some((socket, peer)) =
            accept_next(&self.listeners[listener], &mut self.accept_stalled, "")
        {
            self.admit(socket, peer, now);
        }
    }

    fn admit(&mut self, mut socket: TcpStream, peer: SocketAddr, now: Now) {
        let loopback = peer.ip().is_loopback();
        let open = self.conns.len();
        let cap = self.settings.max_connections;
        let admin_slot = open >= cap;
        if self.draining_since.is_some() || (admin_slot && (!loopback || open >= cap + ADMIN_SLOTS))
        {
            let line = if self.draining_since.is_some() {
                reply::err(Code::ShuttingDown, "the server is shutting down").finish()
            } else {
                reply::err(
                    Code::Busy,
                    &format!("the server is at its connection cap ({cap}); try again later"),
                )
                .finish()
            };
            // Best effort: a fresh socket has room for one short line.
            let _ = io::Write::write(&mut socket, line.as_bytes());
            return;
        }
        let _ = socket.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut conn = Conn::new(socket, peer, self.core.admin_by_default(loopback), now.mono);
        conn.client.admin_slot = admin_slot;
        if let Err(e) = self.poll.registry().register(
            &mut conn.socket,
            Token(FIRST_CONN + key),
            Interest::READABLE,
        ) {
            log::warn!("cannot register connection from {peer}: {e}");
            return;
        }
        conn.output
            .push(self.core.greeting().as_bytes(), None, None);
        entry.insert(conn);
        self.core.connections = self.conns.len();
        self.dirty.push(key);
        self.service(key, now);
    }

    fn on_conn_event(&mut self, key: usize, event: &Event, now: Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return; // a stale event for a connection closed this iteration
        };
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            conn.readable = true;
        }
        if event.is_writable() {
            self.dirty.push(key);
        }
        self.service(key, now);
    }

    /// Answers the complete lines a connection has sent, reading more while
    /// its output is below the high-water mark.
    fn service(&mut self, key: usize, now: Now) {
        let mut produced = false;
        loop {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            if conn.client.closing
                || conn.output.pending() >= HIGH_WATER
                || !self.core.accepting_requests()
            {
                break;
            }
            match conn.take_line(now.mono) {
                Some(LineResult::Line(line)) => {
                    if let Some(reply) = self.core.handle_line(&mut conn.client, key, &line, now) {
                        push(conn, reply);
                    }
                    produced = true;
                    continue;
                }
                Some(LineResult::TooLong) => {
                    let text = reply::err(
                        Code::LineTooLong,
                        &format!(
                            "request lines are limited to {} bytes; closing",
                            crate::protocol::MAX_LINE
                        ),
                    )
                    .finish();
                    conn.output.push(text.as_bytes(), None, None);
                    conn.client.closing = true;
                    produced = true;
                    break;
                }
                Some(LineResult::NotUtf8) => {
                    let text = reply::err(Code::BadRequest, "request line is not UTF-8").finish();
                    conn.output.push(text.as_bytes(), None, None);
                    produced = true;
                    continue;
                }
                None => {}
            }
            if !conn.readable {
                break;
            }
            match conn.fill(now.mono) {
                Ok(ReadOutcome::Data(_)) => continue,
                Ok(ReadOutcome::WouldBlock) => break,
                Ok(ReadOutcome::Eof) => {
                    conn.client.closing = true;
                    break;
                }
                Err(e) => {
                    log::debug!("read from {} failed: {e}", conn.client.peer);
                    self.close(key);
                    return;
                }
            }
        }
        if produced || self.conns.get(key).is_some_and(|c| c.client.closing) {
            self.dirty.push(key);
        }
    }

    fn end_of_iteration(&mut self, now: Now) {
        if self.accept_stalled && self.draining_since.is_none() {
            for listener in 0..self.listeners.len() {
                self.accept(listener, now);
            }
        }
        let mut effects = Effects::default();
        self.core.after_requests(now, &mut effects);
        for (key, reply) in effects.pushes {
            if let Some(conn) = self.conns.get_mut(key) {
                push(conn, reply);
                self.dirty.push(key);
            }
        }
        if let Some(line) = effects.broadcast {
            for (key, conn) in self.conns.iter_mut() {
                conn.output.push(line.as_bytes(), None, None);
                self.dirty.push(key);
            }
        }
        let release = self.core.release();
        for (key, conn) in self.conns.iter_mut() {
            if !conn.output.is_holding() {
                continue;
            }
            match release {
                Release::Upto(seq) => conn.output.release(seq),
                Release::Settle {
                    release,
                    fail_after,
                } => {
                    let core = &mut self.core;
                    conn.output
                        .settle(release, fail_after, |handle| core.take_back(handle, now));
                }
            }
            self.dirty.push(key);
        }
        self.core.after_release(now);
        if effects.resume_requests {
            // Requests that arrived during a handover were left unread.
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            self.dirty.extend(keys);
        }
        if self.core.shutdown_requested() && self.draining_since.is_none() {
            self.begin_drain(now);
        }
        self.flush_dirty(now);
        if now.mono.duration_since(self.last_sweep) >= self.core.wake_every() {
            self.last_sweep = now.mono;
            self.sweep(now);
            if let Some(http) = &mut self.http {
                http.sweep(self.poll.registry(), now.mono);
            }
        }
        let core = &self.core;
        self.notifier
            .tick(now.mono, || systemd_status(core, now.mono));
    }

    /// Flushes every connection marked dirty. Output made meanwhile (a
    /// flush that drained below the mark serves more requests) marks its
    /// connection again, for the next iteration, which then polls without
    /// waiting.
    fn flush_dirty(&mut self, now: Now) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for key in dirty {
            self.flush(key, now);
        }
    }

    /// Writes what a connection may send, then closes it or updates its
    /// poller interest.
    fn flush(&mut self, key: usize, now: Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Err(e) = conn.output.flush_to(&mut conn.socket) {
            log::debug!("write to {} failed: {e}", conn.client.peer);
            self.close(key);
            return;
        }
        if conn.client.closing && conn.output.pending() == 0 {
            self.close(key);
            return;
        }
        let wanted = conn.wanted_interest();
        if wanted != conn.interest {
            conn.interest = wanted;
            if let Err(e) =
                self.poll
                    .registry()
                    .reregister(&mut conn.socket, Token(FIRST_CONN + key), wanted)
            {
                log::debug!("reregister failed: {e}");
                self.close(key);
                return;
            }
        }
        // Output drained below the mark: go back to requests left unread,
        // in the input buffer or still in the socket.
        if conn.output.pending() < HIGH_WATER && !conn.client.closing {
            self.service(key, now);
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            self.core.connections = self.conns.len();
            let _ = deregister(self.poll.registry(), &mut conn.socket);
            self.core.connection_closed(&conn.client);
        }
    }

    /// Closes idle and stalled connections.
    fn sweep(&mut self, _now: Now) {
        let now = Instant::now();
        let idle = self.settings.idle_timeout;
        let mut doomed = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            if conn.output.is_holding() {
                continue;
            }
            if conn
                .partial_since
                .is_some_and(|t| now.duration_since(t) > LINE_TIMEOUT)
            {
                let text = reply::err(
                    Code::BadRequest,
                    "request line not finished in time; closing",
                )
                .finish();
                conn.output.push(text.as_bytes(), None, None);
                conn.client.closing = true;
                self.dirty.push(key);
            } else if now.duration_since(conn.last_input) > idle && conn.client.waiters.is_empty() {
                doomed.push(key);
            }
        }
        for key in doomed {
            self.close(key);
        }
    }

    fn begin_drain(&mut self, now: Now) {
        self.draining_since = Some(now.mono);
        self.notifier.stopping();
        if let Some(http) = &mut self.http {
            http.stop(self.poll.registry());
        }
        for listener in &mut self.listeners {
            let _ = deregister(self.poll.registry(), listener);
        }
        for (key, conn) in self.conns.iter_mut() {
            conn.client.closing = true;
            self.dirty.push(key);
        }
    }

    /// True once every reply went out (or the drain timed out).
    fn drained(&mut self, now: Now) -> bool {
        let since = self.draining_since.expect("draining");
        let timed_out = now.mono.duration_since(since) > DRAIN_TIMEOUT;
        if timed_out && !self.conns.is_empty() {
            log::warn!(
                "shutdown: {} connection(s) did not drain in {:?}",
                self.conns.len(),
                DRAIN_TIMEOUT
            );
        }
        self.conns.is_empty() || timed_out
    }
}

/// Accepts the next pending connection, or `None` when there is none or
/// accept failed. A failure (EMFILE and friends) sets `stalled`: the caller
/// tries again every iteration, since readiness is edge-triggered and no
/// new event would come for the connections still waiting; it is logged
/// once per stall.
pub fn accept_next(
    listener: &TcpListener,
    stalled: &mut bool,
    what: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        match listener.accept() {
            Ok(pair) => return Some(pair),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *stalled = false;
                return None;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if !*stalled {
                    log::warn!("{what}accept failed: {e}; retrying as connections close");
                }
                *stalled = true;
                return None;
            }
        }
    }
}

/// Queues a reply on a connection, held as the reply says.
fn push(conn: &mut Conn, reply: Reply) {
    conn.output
        .push(reply.text.as_bytes(), reply.wait_for, reply.grant);
}

fn deregister(registry: &Registry, source: &mut impl mio::event::Source) -> io::Result<()> {
    registry.deregister(source)
}
