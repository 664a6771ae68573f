//! The blocking client library that applications (and `floatctl`) use.
//!
//! A [`Client`] holds a list of servers and talks to one at a time. When a
//! connection is lost, or a server says it is the standby (or has moved),
//! the client walks the list with back-off, goes to the active server and
//! reclaims every seat it holds there, so a failover is invisible to the
//! application. The primary's greeting names its peer, so a client given
//! the primary alone still finds the backup. A background thread
//! ([`Client::start_heartbeats`]) renews held seats; applications that want
//! no thread call [`Client::heartbeat_all`] themselves.
//!
//! What a blocking call does when servers do not answer:
//! - It walks the server list for at most [`ClientConfig::failover_timeout`],
//!   since a standby may be about to take over. But when every server it
//!   knows refused the connection or had a name that did not resolve,
//!   nobody is listening: it fails at once with [`ClientError::Unreachable`].
//! - Once it has waited [`NOTICE_AFTER`] (2 s), it reports
//!   [`ClientEvent::Trying`] with the server it is trying, and again for
//!   each further server it tries.
//! - [`Client::cancel`], from any thread, makes every call in progress on
//!   the client (the heartbeat thread's included) return
//!   [`ClientError::Cancelled`] within milliseconds. Calls made afterwards
//!   work as usual, so a program stopping on SIGTERM cancels, then returns
//!   its seats with [`Client::close`] (which fails fast if no server
//!   listens).
//!
//! Events go to the sink given to [`Client::on_event`], on the thread whose
//! call caused them (the heartbeat thread's, or the caller's), one at a
//! time. A sink must not call back into the client's blocking methods: such
//! a call returns [`ClientError::Reentrant`] instead of deadlocking.
//! [`Client::seat_state`] and [`Client::cancel`] may be called from a sink.
//!
//! [`roam`]: seats taken away for days, their tokens kept in the user's
//! roam store, and the offline check.

mod admin;
mod cancel;
mod config;
mod connection;
mod heartbeat;
mod queue;
pub mod roam;
mod seats;
mod session;
mod walk;

pub use cancel::NOTICE_AFTER;
pub use config::{account_name, parse_server_list, ClientConfig, Identity, SERVERS_ENV};
pub use seats::SeatState;

use crate::codes::Code;
use crate::licence::Version;
use crate::protocol::{line, Request};
use cancel::{Cancel, Watch};
pub use roam::{RoamError, RoamStore, StoredToken};
use seats::SeatTable;
use session::Session;
use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The server refused (a stable code and a human message).
    Denied {
        code: Option<Code>,
        code_text: String,
        message: String,
    },
    /// No server could be reached (or none was active) in time, or every
    /// server refused the connection.
    Unreachable(String),
    /// A server said something this client does not understand.
    Protocol(String),
    Timeout,
    /// [`Client::cancel`] interrupted the call.
    Cancelled,
    /// A blocking call made from inside the event sink (it would deadlock).
    Reentrant,
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
            ClientError::Cancelled => f.write_str("cancelled"),
            ClientError::Reentrant => {
                f.write_str("called from an event callback, where blocking calls would deadlock")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// A seat this client holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seat {
    pub handle: String,
    pub feature: String,
    /// The version asked for.
    pub version: Version,
    pub count: u32,
    pub lease: Duration,
    /// The version of the pool that granted it.
    pub pool: String,
    /// When that pool's licence expires (`YYYY-MM-DD` or `permanent`).
    pub expires: String,
}

/// Something the application may want to tell its user about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A call has waited [`NOTICE_AFTER`] and is still trying `server`.
    Trying { server: String },
    /// The connection to `server` was lost (or it stopped being active)
    /// while seats were held; the client is looking for the active server
    /// to reclaim them.
    Disconnected { server: String, reason: String },
    /// Now talking to another server (`from` is `None` at the first
    /// connection).
    Moved { from: Option<String>, to: String },
    /// A seat that waited to be reclaimed is held again, on `server`.
    Reclaimed { handle: String, server: String },
    /// A seat's lease ran out before the client could renew it.
    Expired { handle: String },
    /// A held seat could not be kept.
    Lost { handle: String, reason: String },
}

type EventSink = Box<dyn Fn(&ClientEvent) + Send>;

thread_local! {
    /// Set while this thread runs an event sink.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// True while the current thread runs a client's event sink.
pub fn in_event_sink() -> bool {
    IN_SINK.with(Cell::get)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the client's handles and its heartbeat thread share.
pub(crate) struct Shared {
    config: ClientConfig,
    /// The connection; held across network I/O.
    session: Mutex<Session>,
    /// The seats; never held across I/O or while calling the sink.
    seats: Mutex<SeatTable>,
    sink: Mutex<Option<EventSink>>,
    cancel: Cancel,
    heartbeats: Mutex<Option<heartbeat::HeartbeatThread>>,
}

impl Shared {
    fn seats(&self) -> MutexGuard<'_, SeatTable> {
        lock(&self.seats)
    }

    /// Hands an event to the sink, one at a time.
    fn emit(&self, event: ClientEvent) {
        if in_event_sink() {
            return;
        }
        let sink = lock(&self.sink);
        if let Some(sink) = sink.as_ref() {
            IN_SINK.with(|s| s.set(true));
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(&event)));
            IN_SINK.with(|s| s.set(false));
            if outcome.is_err() {
                log::error!("the client's event sink panicked on {event:?}");
            }
        }
    }

    fn lose(&self, handle: &str, reason: &str) {
        if self.seats().lost(handle) {
            self.emit(ClientEvent::Lost {
                handle: handle.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// Runs `work` with the session and a watch for one blocking call.
    fn with_session<T>(
        &self,
        work: impl FnOnce(&mut Session, &Watch<'_>) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        if in_event_sink() {
            return Err(ClientError::Reentrant);
        }
        let notice = |server: &str| {
            self.emit(ClientEvent::Trying {
                server: server.to_string(),
            })
        };
        // The watch begins before the lock: a cancel while queueing counts.
        let watch = Watch::new(&self.cancel, None, &notice);
        let mut session = lock(&self.session);
        work(&mut session, &watch)
    }

    /// One request through the session, walking servers for `timeout`.
    fn call(&self, request: &Request, timeout: Duration) -> Result<String, ClientError> {
        self.with_session(|session, watch| {
            session
                .call(self, request, timeout, watch)
                .map(|line| line.0)
        })
    }
}

/// A blocking client. Cheap to share between threads (`Arc` inside); every
/// method may be called from any thread.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

impl Client {
    /// A client for the given servers. Connects lazily, on first use.
    pub fn new(config: ClientConfig) -> Client {
        Client {
            shared: Arc::new(Shared {
                session: Mutex::new(Session::new(config.servers.clone(), true)),
                config,
                seats: Mutex::new(SeatTable::default()),
                sink: Mutex::new(None),
                cancel: Cancel::default(),
                heartbeats: Mutex::new(None),
            }),
        }
    }

    /// Calls `sink` for every [`ClientEvent`]. Ignored (with a warning in
    /// the log) when called from inside a sink.
    pub fn on_event(&self, sink: impl Fn(&ClientEvent) + Send + 'static) {
        if in_event_sink() {
            log::warn!("on_event called from inside the event sink: ignored");
            return;
        }
        *lock(&self.shared.sink) = Some(Box::new(sink));
    }

    /// The server currently talked to, if connected (`None` as well when
    /// asked from inside the event sink while the connection is busy).
    pub fn current_server(&self) -> Option<String> {
        let session = if in_event_sink() {
            self.shared.session.try_lock().ok()?
        } else {
            lock(&self.shared.session)
        };
        session.conn.as_ref().map(|c| c.addr.clone())
    }

    /// Every server the client knows, configured and learned.
    pub fn known_servers(&self) -> Vec<String> {
        lock(&self.shared.session).servers.clone()
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
            version: *version,
            count,
            wait: false,
        };
        let sh = &self.shared;
        sh.with_session(|session, watch| {
            let line = session.call(sh, &request, sh.config.failover_timeout, watch)?;
            let seat = seat_from_reply(&line.0, feature, version, count)?;
            sh.seats().granted(seat.clone(), Instant::now());
            Ok(seat)
        })
    }

    /// Renews a held seat's lease now. A seat the server refuses is lost.
    pub fn heartbeat(&self, handle: &str) -> Result<(), ClientError> {
        let sent = Instant::now();
        let request = Request::Heartbeat {
            handle: handle.to_string(),
        };
        let line = match self
            .shared
            .call(&request, self.shared.config.failover_timeout)
        {
            Ok(line) => line,
            Err(e) => {
                if let ClientError::Denied { code, message, .. } = &e {
                    if session::ends_seat(*code) {
                        self.shared.lose(handle, message);
                    }
                }
                return Err(e);
            }
        };
        let lease = line::parse(&line).ok().and_then(|l| session::lease_of(&l));
        self.shared.seats().renewed(handle, lease, sent);
        Ok(())
    }

    /// Renews every held seat now (reclaiming them on the active server
    /// after a failover), for applications that run no heartbeat thread:
    /// call it at least every third of the lease. Seats a server refuses
    /// become [`SeatState::Lost`]; the error is the first failure to reach
    /// a server.
    pub fn heartbeat_all(&self) -> Result<(), ClientError> {
        if in_event_sink() {
            return Err(ClientError::Reentrant);
        }
        heartbeat::renew(&self.shared, None, true)
    }

    /// Returns a seat (held by this client or, given its handle, by
    /// anybody). The client forgets the seat whatever the outcome.
    pub fn checkin(&self, handle: &str) -> Result<(), ClientError> {
        let result = self.shared.call(
            &Request::Checkin {
                handle: handle.to_string(),
            },
            self.shared.config.failover_timeout,
        );
        if result != Err(ClientError::Reentrant) {
            self.shared.seats().forget(handle);
        }
        result.map(|_| ())
    }

    /// Seats this client holds.
    pub fn held(&self) -> Vec<Seat> {
        self.shared.seats().held()
    }

    /// The state of a seat this client holds or held: `None` for a handle
    /// it never held, checked in, or forgot. Never blocks on the network.
    pub fn seat_state(&self, handle: &str) -> Option<SeatState> {
        self.shared.seats().state(handle, Instant::now())
    }

    /// Stops caring for a seat: no more heartbeats or reclaims, and its
    /// state is forgotten. The server returns it when its lease runs out.
    pub fn forget(&self, handle: &str) {
        self.shared.seats().forget(handle);
    }

    /// Takes a seat held elsewhere into this client's care (heartbeats, reclaim).
    pub fn adopt(&self, seat: Seat) {
        self.shared.seats().granted(seat, Instant::now());
    }

    /// Starts the background thread that heartbeats every held seat at a
    /// third of its lease, fails over when its server goes away and
    /// reports seats whose lease ran out. It ends with
    /// [`Client::stop_heartbeats`], [`Client::close`], or when the last
    /// handle to the client is dropped.
    pub fn start_heartbeats(&self) {
        let mut slot = lock(&self.shared.heartbeats);
        if slot.is_none() {
            *slot = Some(heartbeat::spawn(&self.shared));
        }
    }

    /// Stops the heartbeat thread promptly, interrupting a heartbeat in
    /// progress (seats stay held until their leases end).
    pub fn stop_heartbeats(&self) {
        let taken = lock(&self.shared.heartbeats).take();
        if let Some(thread) = taken {
            thread.stop(&self.shared.cancel);
        }
    }

    /// Makes every blocking call in progress on this client, in any
    /// thread (the heartbeat thread's included), return
    /// [`ClientError::Cancelled`] promptly. Calls made afterwards work as
    /// usual. Safe to call from the event sink.
    pub fn cancel(&self) {
        self.shared.cancel.cancel();
    }

    /// Stops the heartbeat thread and returns every held seat, walking the
    /// servers for at most the I/O timeout (at once, if none listens), then
    /// hangs up. Seats that could not be returned run out their lease on
    /// the server. Their state becomes [`SeatState::Returned`] either way.
    pub fn close(&self) -> Result<(), ClientError> {
        if in_event_sink() {
            return Err(ClientError::Reentrant);
        }
        self.stop_heartbeats();
        let sh = &self.shared;
        let timeout = sh.config.io_timeout.min(sh.config.failover_timeout);
        let outcome = sh.with_session(|session, watch| {
            let mut outcome = Ok(());
            let held = sh.seats().held();
            for seat in held {
                if outcome.is_ok() {
                    let checkin = Request::Checkin {
                        handle: seat.handle.clone(),
                    };
                    match session.call(sh, &checkin, timeout, watch) {
                        Ok(_) | Err(ClientError::Denied { .. }) => {}
                        Err(e) => outcome = Err(e),
                    }
                }
                sh.seats().returned(&seat.handle);
            }
            session.hang_up();
            outcome
        });
        outcome
    }
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
    Ok(Seat {
        handle: handle.to_string(),
        feature: feature.to_string(),
        version: *version,
        count,
        lease: session::lease_of(parsed).unwrap_or(Duration::from_secs(60)),
        pool: parsed.get("pool").unwrap_or("").to_string(),
        expires: parsed.get("expires").unwrap_or("").to_string(),
    })
}
