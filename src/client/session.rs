//! A client's conversation with the active server: which servers it knows,
//! the connection it has, and the walk to another server (reclaiming every
//! held seat there) when that connection is lost or the server moves.

use super::cancel::Watch;
use super::connection::{Connection, ReplyLine};
use super::walk::{Next, Round, Walk};
use super::{ClientError, ClientEvent, Seat, Shared};
use crate::codes::Code;
use crate::protocol::{line, Reply, Request};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub(crate) struct Session {
    /// Configured servers, then those learned from greetings.
    pub servers: Vec<String>,
    pub conn: Option<Connection>,
    /// The server to try first next time (named as active by a server).
    prefer: Option<String>,
    /// The last server connected to, to tell a move from a reconnect.
    last_addr: Option<String>,
    /// The client's own session, which reclaims its seats and reports
    /// moves (a queued checkout's extra session does neither).
    main: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(conn) = &mut self.conn {
            conn.quit();
        }
    }
}

impl Session {
    pub fn new(servers: Vec<String>, main: bool) -> Session {
        Session {
            servers,
            conn: None,
            prefer: None,
            last_addr: None,
            main,
        }
    }

    /// Closes the connection (saying QUIT).
    pub fn hang_up(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.quit();
        }
    }

    /// Sends a request to the active server, walking the server list for
    /// at most `timeout` (giving up at once when nobody listens anywhere).
    /// Returns an `OK`, `QUEUED` or `STATUS` line; an `ERR` becomes
    /// `ClientError::Denied`.
    pub fn call(
        &mut self,
        sh: &Shared,
        request: &Request,
        timeout: Duration,
        watch: &Watch<'_>,
    ) -> Result<ReplyLine, ClientError> {
        let mut walk = Walk::new(Instant::now(), timeout);
        loop {
            watch.check()?;
            let mut round = Round {
                tried: 1,
                ..Round::default()
            };
            let mut last_error = ClientError::Unreachable("no server configured".into());
            if self.conn.is_none() {
                let (connected, r) = self.connect_active(sh, watch);
                round = r;
                if let Err(e) = connected {
                    last_error = e;
                }
            }
            if let Some(conn) = &mut self.conn {
                match conn.request(request, watch) {
                    Ok(line) => {
                        let moved = take_moved(&mut conn.pushed);
                        match classify(&line)? {
                            Verdict::Answer => {
                                if moved.is_some() {
                                    // Answered, but the server is handing over:
                                    // the next request goes to the new one.
                                    let from = conn.addr.clone();
                                    self.disconnect(sh, &from, "the server moved");
                                    self.prefer = moved;
                                }
                                return Ok(line);
                            }
                            Verdict::Denied(e) => return Err(e),
                            Verdict::Elsewhere(active) => {
                                let from = conn.addr.clone();
                                last_error =
                                    ClientError::Unreachable(format!("{from} is not active"));
                                self.disconnect(sh, &from, "the server is not active");
                                self.prefer = active.or(moved);
                                round.redirected = self.prefer.is_some();
                            }
                        }
                    }
                    Err(ClientError::Cancelled) => return Err(ClientError::Cancelled),
                    Err(e) => {
                        log::debug!("{}: {e}", conn.addr);
                        let from = conn.addr.clone();
                        self.disconnect(sh, &from, &e.to_string());
                        last_error = e;
                    }
                }
            }
            match walk.next(round, Instant::now()) {
                Next::GiveUp => return Err(last_error),
                Next::RetryAfter(pause) => watch.cancel.sleep(pause, watch)?,
            }
        }
    }

    /// Drops the connection; seats held must be reclaimed on the next one.
    fn disconnect(&mut self, sh: &Shared, from: &str, reason: &str) {
        self.hang_up();
        if self.main && sh.seats().disconnected() {
            sh.emit(ClientEvent::Disconnected {
                server: from.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// Connects to the active server: the one last named as active first,
    /// then the list in order, following a standby's pointer to the active
    /// server. Learns peers from greetings and reclaims held seats. Returns
    /// what the round found, for the caller's retry decision.
    fn connect_active(
        &mut self,
        sh: &Shared,
        watch: &Watch<'_>,
    ) -> (Result<(), ClientError>, Round) {
        let mut candidates: VecDeque<String> = self.prefer.take().into_iter().collect();
        candidates.extend(self.servers.iter().cloned());
        let mut tried: Vec<String> = Vec::new();
        let mut round = Round::default();
        let mut reasons: Vec<String> = Vec::new();
        while let Some(addr) = candidates.pop_front() {
            if tried.contains(&addr) {
                continue;
            }
            tried.push(addr.clone());
            round.tried += 1;
            let config = &sh.config;
            let conn = match Connection::open(&addr, &config.identity, config.io_timeout, watch) {
                Ok(c) => c,
                Err(e) if e.error == ClientError::Cancelled => {
                    return (Err(ClientError::Cancelled), round)
                }
                Err(e) => {
                    log::debug!("{addr}: {}", e.error);
                    round.nobody_there += usize::from(e.nobody_there);
                    reasons.push(match e.error {
                        ClientError::Unreachable(why) => why,
                        other => other.to_string(),
                    });
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
                reasons.push(format!(
                    "{addr} is {} ({})",
                    conn.greeting.state, conn.greeting.role
                ));
                if let Some(active) = conn.greeting.active.clone() {
                    candidates.push_front(active);
                }
                continue;
            }
            if self.main && self.last_addr.as_deref() != Some(addr.as_str()) {
                sh.emit(ClientEvent::Moved {
                    from: self.last_addr.clone(),
                    to: addr.clone(),
                });
            }
            self.last_addr = Some(addr.clone());
            self.conn = Some(conn);
            if self.main {
                if let Err(ClientError::Cancelled) = self.reclaim_all(sh, watch) {
                    return (Err(ClientError::Cancelled), round);
                }
            }
            if self.conn.is_some() {
                return (Ok(()), round);
            }
        }
        if reasons.is_empty() {
            reasons.push("no server configured".into());
        }
        (Err(ClientError::Unreachable(reasons.join("; "))), round)
    }

    /// Reclaims every held seat on the current server.
    fn reclaim_all(&mut self, sh: &Shared, watch: &Watch<'_>) -> Result<(), ClientError> {
        let seats: Vec<Seat> = sh.seats().held();
        for seat in seats {
            let Some(conn) = &mut self.conn else {
                return Ok(());
            };
            let request = Request::Reclaim {
                handle: seat.handle.clone(),
                feature: seat.feature.clone(),
                version: seat.version,
                count: seat.count,
            };
            let addr = conn.addr.clone();
            let line = match conn.request(&request, watch) {
                Ok(line) => line,
                Err(e) => {
                    self.hang_up();
                    return match e {
                        ClientError::Cancelled => Err(e),
                        _ => Ok(()),
                    };
                }
            };
            match line.parse() {
                Ok(Reply::Ok(fields)) => {
                    let lease = lease_of(&fields);
                    if sh.seats().renewed(&seat.handle, lease, Instant::now()) {
                        sh.emit(ClientEvent::Reclaimed {
                            handle: seat.handle.clone(),
                            server: addr,
                        });
                    }
                }
                Ok(Reply::Err { code, message, .. }) => match code {
                    Some(Code::Standby) | Some(Code::NotActive) | Some(Code::ShuttingDown) => {
                        // Not the server to reclaim on; the next call moves on.
                        self.hang_up();
                        return Ok(());
                    }
                    _ if ends_seat(code) => sh.lose(&seat.handle, &message),
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(())
    }
}

/// Whether a server's refusal of a seat (to a reclaim or a heartbeat)
/// means the seat is gone: the server does not hold it and will not grant
/// it again. Refusals about the server's own state (not active, shutting
/// down, failing, recovering) and codes this version does not know are no
/// verdict on the seat: it is tried again later.
pub(crate) fn ends_seat(code: Option<Code>) -> bool {
    matches!(
        code,
        Some(
            Code::UnknownHandle
                | Code::BadHandle
                | Code::LicenceGone
                | Code::NoSuchFeature
                | Code::NoVersion
                | Code::Expired
                | Code::NoSeats
                | Code::Reserved
                | Code::CountTooLarge
                | Code::MaxReached
                | Code::Excluded
                | Code::NotIncluded
        )
    )
}

/// What a reply means for the caller of `call`.
enum Verdict {
    Answer,
    Denied(ClientError),
    /// Ask another server (the one named, if any).
    Elsewhere(Option<String>),
}

fn classify(line: &ReplyLine) -> Result<Verdict, ClientError> {
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

/// The error an `ERR` reply carries, if it is one.
pub(crate) fn denial(line: &ReplyLine) -> Result<Option<ClientError>, ClientError> {
    Ok(match classify(line)? {
        Verdict::Denied(e) => Some(e),
        Verdict::Answer | Verdict::Elsewhere(_) => None,
    })
}

/// The `lease_ms=` of a reply.
pub(crate) fn lease_of(fields: &line::Line<'_>) -> Option<Duration> {
    fields
        .get("lease_ms")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

/// Takes a `* MOVED active=ADDR` line out of the pushed lines, if any.
fn take_moved(pushed: &mut Vec<String>) -> Option<String> {
    let i = pushed.iter().position(|l| l.starts_with("* MOVED"))?;
    let line = pushed.remove(i);
    line::parse(&line).ok()?.get("active").map(str::to_string)
}
