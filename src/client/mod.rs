//! The blocking client library that applications (and `floatctl`) use.
//!
//! A [`Client`] holds a list of servers and talks to one at a time. When a
//! connection is lost, or a server says it is the standby (or has moved),
//! the client walks the list with back-off, goes to the active server and
//! reclaims every seat it holds there, so a failover is invisible to the
//! application. The primary's greeting names its peer, so a client given
//! the primary alone still finds the backup. A background thread sends the
//! heartbeats of held seats.
//!
//! [`roam`]: seats taken away for days, their tokens kept in the user's
//! roam store, and the offline check.

mod connection;
pub mod roam;

use crate::codes::Code;
use crate::licence::Version;
use crate::protocol::{line, Reply, Request, StatusReport};
use connection::Connection;
pub use roam::{RoamError, RoamStore, StoredToken};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable with the server list (`host:port,host:port`).
pub const SERVERS_ENV: &str = "FLOATD_SERVERS";

/// Who the client says it is (HELLO). Handles are bound to it: a reclaim
/// must come from the same identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub client: String,
    pub user: String,
    pub host: String,
}

impl Identity {
    /// The login user, this host's name and a client id unique to this
    /// process.
    pub fn from_environment() -> Identity {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let mut random = [0u8; 6];
        let _ = getrandom::fill(&mut random);
        let tag: String = random.iter().map(|b| format!("{b:02x}")).collect();
        Identity {
            client: format!("{}-{}", std::process::id(), tag),
            user,
            host,
        }
    }
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Servers to try, in order (`host:port`).
    pub servers: Vec<String>,
    pub identity: Identity,
    /// Connect and read timeout for one server.
    pub io_timeout: Duration,
    /// How long an operation keeps walking the server list before it gives up.
    pub failover_timeout: Duration,
}

impl ClientConfig {
    pub fn new(servers: Vec<String>, identity: Identity) -> ClientConfig {
        ClientConfig {
            servers,
            identity,
            io_timeout: Duration::from_secs(5),
            failover_timeout: Duration::from_secs(30),
        }
    }
}

/// Parses `host:port[,host:port]...`.
pub fn parse_server_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The server refused (a stable code and a human message).
    Denied {
        code: Option<Code>,
        code_text: String,
        message: String,
    },
    /// No server could be reached (or none was active) in time.
    Unreachable(String),
    /// A server said something this client does not understand.
    Protocol(String),
    Timeout,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Denied {
                code_text, message, ..
            } => write!(f, "{code_text}: {message}"),
            ClientError::Unreachable(why) => write!(f, "no server reachable: {why}"),
            ClientError::Protocol(why) => write!(f, "protocol error: {why}"),
            ClientError::Timeout => f.write_str("timed out"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A seat this client holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat {
    pub handle: String,
    pub feature: String,
    pub version: Version,
    pub count: u32,
    pub lease: Duration,
}

/// Something the application may want to tell its user about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// Now talking to another server (after a failure or a redirect).
    Moved { from: Option<String>, to: String },
    /// A held seat was reclaimed on a server.
    Reclaimed { handle: String, server: String },
    /// A held seat could not be kept.
    Lost { handle: String, reason: String },
}

type EventSink = Box<dyn Fn(&ClientEvent) + Send>;

/// The heartbeat thread and the flag that stops it.
type HeartbeatThread = (Arc<AtomicBool>, JoinHandle<()>);

struct Inner {
    config: ClientConfig,
    /// Configured servers, then those learned from greetings.
    servers: Vec<String>,
    conn: Option<Connection>,
    /// The server to try first next time (named as active by a server).
    prefer: Option<String>,
    /// The last server connected to, to tell a move from a reconnect.
    last_addr: Option<String>,
    held: BTreeMap<String, Seat>,
    on_event: Option<EventSink>,
}

/// A blocking client. Cheap to share between threads (`Arc` inside).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Mutex<Inner>>,
    heartbeats: Arc<Mutex<Option<HeartbeatThread>>>,
}

impl Client {
    /// A client for the given servers. Connects lazily, on first use.
    pub fn new(config: ClientConfig) -> Client {
        Client {
            inner: Arc::new(Mutex::new(Inner::new(config))),
            heartbeats: Arc::new(Mutex::new(None)),
        }
    }

    /// Calls `sink` for failovers, reclaims and lost seats.
    pub fn on_event(&self, sink: impl Fn(&ClientEvent) + Send + 'static) {
        self.lock().on_event = Some(Box::new(sink));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server currently talked to, if connected.
    pub fn current_server(&self) -> Option<String> {
        self.lock().conn.as_ref().map(|c| c.addr.clone())
    }

    /// Every server the client knows, configured and learned.
    pub fn known_servers(&self) -> Vec<String> {
        self.lock().servers.clone()
    }

    /// Checks out `count` seats of `feature` at `version` or newer.
    pub fn checkout(
        &self,
        feature: &str,
        version: &Version,
        count: u32,
    ) -> Result<Seat, ClientError> {
        let request = Request::Checkout {
            feature: feature.to_string(),
            version: version.clone(),
            count,
            wait: false,
        };
        let mut inner = self.lock();
        let line = inner.call(&request)?;
        let seat = seat_from_reply(&line.0, feature, version, count)?;
        inner.held.insert(seat.handle.clone(), seat.clone());
        Ok(seat)
    }

    /// Like [`Client::checkout`], but waits in the server's queue (up to
    /// `timeout`) when no seat is free. Uses a connection of its own so
    /// heartbeats go on meanwhile.
    pub fn checkout_wait(
        &self,
        feature: &str,
        version: &Version,
        count: u32,
        timeout: Duration,
    ) -> Result<Seat, ClientError> {
        let deadline = Instant::now() + timeout;
        let request = Request::Checkout {
            feature: feature.to_string(),
            version: version.clone(),
            count,
            wait: true,
        };
        let mut probe = {
            let inner = self.lock();
            let mut probe = Inner::new(inner.config.clone());
            probe.servers = inner.servers.clone();
            probe
        };
        let first = probe.call(&request)?;
        let id = match first.parse()? {
            Reply::Queued { id, .. } => id,
            Reply::Ok(_) => {
                let seat = seat_from_reply(&first.0, feature, version, count)?;
                self.lock().held.insert(seat.handle.clone(), seat.clone());
                return Ok(seat);
            }
            _ => unreachable!("call returns OK or QUEUED replies only"),
        };
        let conn = probe.conn.as_mut().expect("call connected");
        loop {
            let pushed = conn.next_push(deadline)?;
            let parsed = line::parse(&pushed).map_err(ClientError::Protocol)?;
            if parsed.get("id").and_then(|v| v.parse::<u64>().ok()) != Some(id) {
                continue;
            }
            return match parsed.arg(0) {
                Some("GRANTED") => {
                    let seat = seat_from_fields(&parsed, feature, version, count)?;
                    self.lock().held.insert(seat.handle.clone(), seat.clone());
                    Ok(seat)
                }
                _ => {
                    let code_text = parsed.get("code").unwrap_or("").to_string();
                    Err(ClientError::Denied {
                        code: Code::parse(&code_text),
                        code_text,
                        message: parsed.get("msg").unwrap_or("").to_string(),
                    })
                }
            };
        }
    }

    /// Renews a held seat's lease now.
    pub fn heartbeat(&self, handle: &str) -> Result<(), ClientError> {
        self.lock()
            .call(&Request::Heartbeat {
                handle: handle.to_string(),
            })
            .map(|_| ())
    }

    /// Returns a seat (held by this client or, given its handle, by anybody).
    pub fn checkin(&self, handle: &str) -> Result<(), ClientError> {
        let mut inner = self.lock();
        let result = inner.call(&Request::Checkin {
            handle: handle.to_string(),
        });
        inner.held.remove(handle);
        result.map(|_| ())
    }

    /// Seats this client holds.
    pub fn held(&self) -> Vec<Seat> {
        self.lock().held.values().cloned().collect()
    }

    /// Takes a seat held elsewhere into this client's care (heartbeats, reclaim).
    pub fn adopt(&self, seat: Seat) {
        self.lock().held.insert(seat.handle.clone(), seat);
    }

    /// The status report of the active server.
    pub fn status(&self) -> Result<StatusReport, ClientError> {
        let line = self.lock().call(&Request::Status)?;
        match line.parse()? {
            Reply::Status(json) => serde_json::from_str(json)
                .map_err(|e| ClientError::Protocol(format!("status JSON: {e}"))),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply to STATUS: {other:?}"
            ))),
        }
    }

    /// The status report of one particular server, active or not.
    pub fn status_of(&self, server: &str) -> Result<StatusReport, ClientError> {
        let config = self.lock().config.clone();
        let mut conn = Connection::open(server, &config.identity, config.io_timeout)?;
        let line = conn.request(&Request::Status)?;
        match line.parse()? {
            Reply::Status(json) => serde_json::from_str(json)
                .map_err(|e| ClientError::Protocol(format!("status JSON: {e}"))),
            other => Err(ClientError::Protocol(format!(
                "unexpected reply to STATUS: {other:?}"
            ))),
        }
    }

    /// An admin request to one particular server (reread, down and
    /// rotate-log concern the server named, active or not), after
    /// presenting `token` if given. Returns the OK line.
    pub fn admin_at(
        &self,
        server: &str,
        request: &Request,
        token: Option<&str>,
    ) -> Result<String, ClientError> {
        let config = self.lock().config.clone();
        let mut conn = Connection::open(server, &config.identity, config.io_timeout)?;
        if let Some(token) = token {
            let line = conn.request(&Request::Auth {
                token: token.to_string(),
            })?;
            if let Verdict::Denied(e) = classify(&line)? {
                return Err(e);
            }
        }
        let line = conn.request(request)?;
        match classify(&line)? {
            Verdict::Denied(e) => Err(e),
            Verdict::Elsewhere(_) | Verdict::Answer => Ok(line.0),
        }
    }

    /// An admin request about seats (remove) to the active server, after
    /// presenting `token` if given. Returns the OK line.
    pub fn admin(&self, request: &Request, token: Option<&str>) -> Result<String, ClientError> {
        let mut inner = self.lock();
        if let Some(token) = token {
            inner.call(&Request::Auth {
                token: token.to_string(),
            })?;
        }
        inner.call(request).map(|l| l.0)
    }

    /// Starts the background thread that heartbeats every held seat at a
    /// third of its lease (and fails over when its server goes away).
    pub fn start_heartbeats(&self) {
        let mut slot = self.heartbeats.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let client = self.clone();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("floatd-heartbeat".into())
            .spawn(move || client.heartbeat_loop(&flag))
            .expect("spawn heartbeat thread");
        *slot = Some((stop, thread));
    }

    /// Stops the heartbeat thread (seats stay held until their leases end).
    pub fn stop_heartbeats(&self) {
        let taken = self
            .heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((stop, thread)) = taken {
            stop.store(true, Ordering::SeqCst);
            let _ = thread.join();
        }
    }

    fn heartbeat_loop(&self, stop: &AtomicBool) {
        let mut next = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            if Instant::now() >= next {
                let interval = self.heartbeat_round();
                next = Instant::now() + interval;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Heartbeats every held seat once; returns when to do it again.
    fn heartbeat_round(&self) -> Duration {
        let mut inner = self.lock();
        let seats: Vec<Seat> = inner.held.values().cloned().collect();
        let mut interval = Duration::from_secs(20);
        for seat in seats {
            interval = interval.min(seat.lease / 3);
            let result = inner.call(&Request::Heartbeat {
                handle: seat.handle.clone(),
            });
            match result {
                Ok(_) => {}
                Err(ClientError::Denied { code, message, .. }) => {
                    // A reconnect inside `call` already tried to reclaim; a
                    // seat the server does not know is gone.
                    if matches!(code, Some(Code::UnknownHandle) | Some(Code::LicenceGone)) {
                        inner.lose(&seat.handle, &message);
                    }
                }
                Err(e) => {
                    log::debug!("heartbeat of {}: {e}", seat.handle);
                    interval = Duration::from_millis(500);
                }
            }
        }
        interval.max(Duration::from_millis(200))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.conn {
            let _ = conn.send(&Request::Quit);
        }
    }
}

impl Inner {
    fn new(config: ClientConfig) -> Inner {
        Inner {
            servers: config.servers.clone(),
            config,
            conn: None,
            prefer: None,
            last_addr: None,
            held: BTreeMap::new(),
            on_event: None,
        }
    }

    fn emit(&self, event: ClientEvent) {
        if let Some(sink) = &self.on_event {
            sink(&event);
        }
    }

    fn lose(&mut self, handle: &str, reason: &str) {
        if self.held.remove(handle).is_some() {
            self.emit(ClientEvent::Lost {
                handle: handle.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// Sends a request to the active server, failing over as needed.
    /// Returns an `OK`, `QUEUED` or `STATUS` line; an `ERR` becomes
    /// `ClientError::Denied`.
    fn call(&mut self, request: &Request) -> Result<connection::ReplyLine, ClientError> {
        let deadline = Instant::now() + self.config.failover_timeout;
        let mut backoff = Duration::from_millis(100);
        let mut last_error = ClientError::Unreachable("no server configured".into());
        loop {
            if self.conn.is_none() {
                if let Err(e) = self.connect_active() {
                    last_error = e;
                }
            }
            let redirected = if let Some(conn) = &mut self.conn {
                match conn.request(request) {
                    Ok(line) => {
                        let moved = take_moved(&mut conn.pushed);
                        match classify(&line)? {
                            Verdict::Answer => {
                                if moved.is_some() {
                                    // Answered, but the server is handing over:
                                    // the next request goes to the new one.
                                    self.conn = None;
                                    self.prefer = moved;
                                }
                                return Ok(line);
                            }
                            Verdict::Denied(e) => return Err(e),
                            Verdict::Elsewhere(active) => {
                                last_error = ClientError::Unreachable(format!(
                                    "{} is not active",
                                    conn.addr
                                ));
                                self.conn = None;
                                self.prefer = active.or(moved);
                                self.prefer.is_some()
                            }
                        }
                    }
                    Err(e) => {
                        log::debug!("{}: {e}", conn.addr);
                        last_error = e;
                        self.conn = None;
                        false
                    }
                }
            } else {
                false
            };
            if Instant::now() >= deadline {
                return Err(last_error);
            }
            if !redirected {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }

    /// Connects to the active server: the one last named as active first,
    /// then the list in order, following a standby's pointer to the active
    /// server. Learns peers from greetings and reclaims held seats.
    fn connect_active(&mut self) -> Result<(), ClientError> {
        let mut candidates: std::collections::VecDeque<String> =
            self.prefer.take().into_iter().collect();
        candidates.extend(self.servers.iter().cloned());
        let mut tried: Vec<String> = Vec::new();
        let mut last = ClientError::Unreachable("no server configured".into());
        while let Some(addr) = candidates.pop_front() {
            if tried.contains(&addr) {
                continue;
            }
            tried.push(addr.clone());
            let conn = match Connection::open(&addr, &self.config.identity, self.config.io_timeout)
            {
                Ok(c) => c,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            for learned in [conn.greeting.peer.clone(), conn.greeting.active.clone()]
                .into_iter()
                .flatten()
            {
                if !self.servers.contains(&learned) {
                    self.servers.push(learned.clone());
                    candidates.push_back(learned);
                }
            }
            if conn.greeting.state != "active" && conn.greeting.state != "recovering" {
                last = ClientError::Unreachable(format!(
                    "{addr} is {} ({})",
                    conn.greeting.state, conn.greeting.role
                ));
                if let Some(active) = conn.greeting.active.clone() {
                    candidates.push_front(active);
                }
                continue;
            }
            if self.last_addr.as_deref() != Some(addr.as_str()) {
                self.emit(ClientEvent::Moved {
                    from: self.last_addr.clone(),
                    to: addr.clone(),
                });
                self.last_addr = Some(addr.clone());
            }
            self.conn = Some(conn);
            self.reclaim_all();
            if self.conn.is_some() {
                return Ok(());
            }
        }
        Err(last)
    }

    /// Reclaims every held seat on the current server.
    fn reclaim_all(&mut self) {
        let seats: Vec<Seat> = self.held.values().cloned().collect();
        for seat in seats {
            let Some(conn) = &mut self.conn else { return };
            let request = Request::Reclaim {
                handle: seat.handle.clone(),
                feature: seat.feature.clone(),
                version: seat.version.clone(),
                count: seat.count,
            };
            let addr = conn.addr.clone();
            match conn.request(&request) {
                Ok(line) => match line.parse() {
                    Ok(Reply::Ok(_)) => self.emit(ClientEvent::Reclaimed {
                        handle: seat.handle.clone(),
                        server: addr,
                    }),
                    Ok(Reply::Err { code, message, .. }) => match code {
                        Some(Code::Standby) | Some(Code::NotActive) | Some(Code::ShuttingDown) => {
                            // Not the server to reclaim on; the next call moves on.
                            self.conn = None;
                            return;
                        }
                        _ => self.lose(&seat.handle, &message),
                    },
                    _ => {}
                },
                Err(_) => {
                    self.conn = None;
                    return;
                }
            }
        }
    }
}

/// What a reply means for the caller of `call`.
enum Verdict {
    Answer,
    Denied(ClientError),
    /// Ask another server (the one named, if any).
    Elsewhere(Option<String>),
}

fn classify(line: &connection::ReplyLine) -> Result<Verdict, ClientError> {
    Ok(match line.parse()? {
        Reply::Err {
            code,
            code_text,
            message,
            line,
        } => match code {
            Some(Code::Standby) | Some(Code::NotActive) | Some(Code::ShuttingDown) => {
                Verdict::Elsewhere(line.get("active").map(str::to_string))
            }
            _ => Verdict::Denied(ClientError::Denied {
                code,
                code_text,
                message,
            }),
        },
        _ => Verdict::Answer,
    })
}

/// Takes a `* MOVED active=ADDR` line out of the pushed lines, if any.
fn take_moved(pushed: &mut Vec<String>) -> Option<String> {
    let i = pushed.iter().position(|l| l.starts_with("* MOVED"))?;
    let line = pushed.remove(i);
    line::parse(&line).ok()?.get("active").map(str::to_string)
}

fn seat_from_reply(
    text: &str,
    feature: &str,
    version: &Version,
    count: u32,
) -> Result<Seat, ClientError> {
    let parsed = line::parse(text).map_err(ClientError::Protocol)?;
    seat_from_fields(&parsed, feature, version, count)
}

fn seat_from_fields(
    parsed: &line::Line,
    feature: &str,
    version: &Version,
    count: u32,
) -> Result<Seat, ClientError> {
    let handle = parsed
        .get("handle")
        .ok_or_else(|| ClientError::Protocol("grant without a handle".into()))?;
    let lease_ms: u64 = parsed
        .get("lease_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    Ok(Seat {
        handle: handle.to_string(),
        feature: feature.to_string(),
        version: version.clone(),
        count,
        lease: Duration::from_millis(lease_ms),
    })
}
