//! One connection to one server: greeting, HELLO, request and reply.
//!
//! The socket is non-blocking and every wait goes through a small mio poll
//! of its own, with a waker, so that a wait ends at once when the client
//! is cancelled and wakes at the moment a slow call should say which server
//! it is still trying ([`Watch`]).

use super::cancel::Watch;
use super::{ClientError, Identity};
use crate::protocol::{Greeting, Reply, Request, MAX_LINE, PROTOCOL_VERSION};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);
/// Longest reply line read (STATUS replies may be long).
const MAX_REPLY: usize = MAX_LINE * 64;

/// A reply line kept as text (replies borrow from their line).
#[derive(Clone, Debug)]
pub struct ReplyLine(pub String);

impl ReplyLine {
    pub fn parse(&self) -> Result<Reply<'_>, ClientError> {
        Reply::parse(&self.0).map_err(|e| ClientError::Protocol(format!("{e}: {:?}", self.0)))
    }
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub struct OpenError {
    pub error: ClientError,
    /// Every address of the server refused the connection, or its name did
    /// not resolve: nobody listens there.
    pub nobody_there: bool,
}

impl From<ClientError> for OpenError {
    fn from(error: ClientError) -> OpenError {
        OpenError {
            error,
            nobody_there: false,
        }
    }
}

/// The socket's poll and the waker that interrupts it.
struct Waiter {
    poll: Poll,
    events: Events,
    _waker: Arc<Waker>,
}

impl Waiter {
    fn new(watch: &Watch<'_>) -> Result<Waiter, ClientError> {
        let poll = Poll::new().map_err(|e| ClientError::Unreachable(format!("poll: {e}")))?;
        let waker = Arc::new(
            Waker::new(poll.registry(), WAKE)
                .map_err(|e| ClientError::Unreachable(format!("waker: {e}")))?,
        );
        watch.cancel.register(&waker);
        Ok(Waiter {
            poll,
            events: Events::with_capacity(4),
            _waker: waker,
        })
    }

    /// Waits for an event on the socket until `deadline`; `notice` says
    /// whether a long wait here counts as still trying `addr`.
    fn wait(
        &mut self,
        deadline: Instant,
        watch: &Watch<'_>,
        addr: &str,
        notice: bool,
    ) -> Result<(), ClientError> {
        loop {
            watch.check()?;
            let now = Instant::now();
            if notice {
                watch.trying(addr, now);
            }
            if now >= deadline {
                return Err(ClientError::Timeout);
            }
            let mut until = deadline;
            if let Some(at) = watch.notice_at(addr).filter(|_| notice) {
                until = until.min(at);
            }
            match self.poll.poll(&mut self.events, Some(until - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(ClientError::Unreachable(format!("{addr}: poll: {e}"))),
            }
            if self.events.iter().any(|e| e.token() == SOCKET) {
                return Ok(());
            }
        }
    }
}

pub struct Connection {
    pub addr: String,
    pub greeting: Greeting,
    stream: TcpStream,
    waiter: Waiter,
    timeout: Duration,
    /// Bytes received and not yet a whole line.
    input: Vec<u8>,
    /// Lines pushed by the server (`* ...`) while waiting for a reply.
    pub pushed: Vec<String>,
}

impl Connection {
    /// Connects, reads the greeting and says HELLO. `timeout` bounds the
    /// connect and each reply.
    pub fn open(
        addr: &str,
        identity: &Identity,
        timeout: Duration,
        watch: &Watch<'_>,
    ) -> Result<Connection, OpenError> {
        watch.check()?;
        watch.trying(addr, Instant::now());
        let sockaddrs = crate::net::resolve(addr).map_err(|e| OpenError {
            error: ClientError::Unreachable(format!("{addr}: {e}")),
            nobody_there: true,
        })?;
        let mut waiter = Waiter::new(watch)?;
        let mut refused = 0;
        let mut last = String::from("no address");
        let mut stream = None;
        for sa in &sockaddrs {
            match connect(*sa, &mut waiter, timeout, watch, addr) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(Attempt::Cancelled) => return Err(ClientError::Cancelled.into()),
                Err(Attempt::Failed(e)) => {
                    if e.kind() == ErrorKind::ConnectionRefused {
                        refused += 1;
                    }
                    last = e.to_string();
                }
            }
        }
        let Some(stream) = stream else {
            return Err(OpenError {
                error: ClientError::Unreachable(format!("{addr}: {last}")),
                nobody_there: refused == sockaddrs.len(),
            });
        };
        stream.set_nodelay(true).ok();
        let mut conn = Connection {
            addr: addr.to_string(),
            greeting: Greeting {
                proto: 0,
                role: String::new(),
                state: String::new(),
                epoch: 0,
                server: String::new(),
                peer: None,
                active: None,
            },
            stream,
            waiter,
            timeout,
            input: Vec::new(),
            pushed: Vec::new(),
        };
        let deadline = Instant::now() + timeout;
        let first = conn.read_line(deadline, watch, true)?;
        conn.greeting = match Greeting::parse(&first) {
            Ok(g) => g,
            Err(_) => {
                // A server at its cap (or shutting down) refuses with ERR.
                if let Ok(Reply::Err {
                    code_text, message, ..
                }) = Reply::parse(&first)
                {
                    return Err(ClientError::Unreachable(format!(
                        "{addr}: {code_text}: {message}"
                    ))
                    .into());
                }
                return Err(ClientError::Protocol(format!(
                    "{addr}: not a floatd server: {first:?}"
                ))
                .into());
            }
        };
        let hello = Request::Hello {
            proto: PROTOCOL_VERSION,
            client: identity.client.clone(),
            user: identity.user.clone(),
            host: identity.host.clone(),
        };
        match conn.request(&hello, watch)?.parse()? {
            Reply::Ok(_) => Ok(conn),
            Reply::Err {
                code_text, message, ..
            } => Err(ClientError::Protocol(format!(
                "{addr} refused HELLO: {code_text}: {message}"
            ))
            .into()),
            other => Err(ClientError::Protocol(format!(
                "{addr}: unexpected reply to HELLO: {other:?}"
            ))
            .into()),
        }
    }

    /// Sends a request and returns its reply; pushed lines that arrive
    /// first are kept in `pushed`.
    pub fn request(
        &mut self,
        request: &Request,
        watch: &Watch<'_>,
    ) -> Result<ReplyLine, ClientError> {
        let deadline = Instant::now() + self.timeout;
        self.send(request, deadline, watch)?;
        loop {
            let line = self.read_line(deadline, watch, true)?;
            if line.starts_with("* ") {
                self.pushed.push(line);
                continue;
            }
            return Ok(ReplyLine(line));
        }
    }

    fn send(
        &mut self,
        request: &Request,
        deadline: Instant,
        watch: &Watch<'_>,
    ) -> Result<(), ClientError> {
        let line = request.to_line();
        let mut bytes = line.as_bytes();
        while !bytes.is_empty() {
            match self.stream.write(bytes) {
                Ok(0) => return Err(self.closed()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.waiter.wait(deadline, watch, &self.addr, true)?
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::Unreachable(format!("{}: {e}", self.addr))),
            }
        }
        Ok(())
    }

    /// Says QUIT without waiting for anything (the socket closes next).
    pub fn quit(&mut self) {
        let _ = self.stream.write(Request::Quit.to_line().as_bytes());
    }

    /// Ends the conversation from this side (a half-close) and reads what
    /// the server sent until it closes, at most until `deadline`. Returns
    /// every pushed line, so a grant the server made just before it saw
    /// the end is not missed.
    pub fn close_and_drain(&mut self, deadline: Instant, watch: &Watch<'_>) -> Vec<String> {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        let mut pushed = std::mem::take(&mut self.pushed);
        while let Ok(line) = self.read_line(deadline, watch, false) {
            if line.starts_with("* ") {
                pushed.push(line);
            }
        }
        pushed
    }

    /// Waits for a pushed line (a queued checkout's outcome) until
    /// `deadline`. Waiting in a queue is not "trying" a server.
    pub fn next_push(
        &mut self,
        deadline: Instant,
        watch: &Watch<'_>,
    ) -> Result<String, ClientError> {
        if !self.pushed.is_empty() {
            return Ok(self.pushed.remove(0));
        }
        let line = self.read_line(deadline, watch, false)?;
        if line.starts_with("* ") {
            Ok(line)
        } else {
            Err(ClientError::Protocol(format!(
                "{}: unexpected line while waiting: {line:?}",
                self.addr
            )))
        }
    }

    fn read_line(
        &mut self,
        deadline: Instant,
        watch: &Watch<'_>,
        notice: bool,
    ) -> Result<String, ClientError> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.input.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.input.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return String::from_utf8(line).map_err(|_| {
                    ClientError::Protocol(format!("{}: reply is not UTF-8", self.addr))
                });
            }
            if self.input.len() > MAX_REPLY {
                return Err(ClientError::Protocol(format!(
                    "{}: reply line too long",
                    self.addr
                )));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(self.closed()),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.waiter.wait(deadline, watch, &self.addr, notice)?
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::Unreachable(format!("{}: {e}", self.addr))),
            }
        }
    }

    fn closed(&self) -> ClientError {
        ClientError::Unreachable(format!("{}: connection closed", self.addr))
    }
}

enum Attempt {
    Cancelled,
    Failed(std::io::Error),
}

/// Connects to one address, waiting at most `timeout`.
fn connect(
    sa: SocketAddr,
    waiter: &mut Waiter,
    timeout: Duration,
    watch: &Watch<'_>,
    addr: &str,
) -> Result<TcpStream, Attempt> {
    let mut stream = TcpStream::connect(sa).map_err(Attempt::Failed)?;
    waiter
        .poll
        .registry()
        .register(&mut stream, SOCKET, Interest::READABLE | Interest::WRITABLE)
        .map_err(Attempt::Failed)?;
    let deadline = Instant::now() + timeout;
    loop {
        // mio: a connect is done when the socket has no error and a peer.
        if let Some(e) = stream.take_error().map_err(Attempt::Failed)? {
            return Err(Attempt::Failed(e));
        }
        match stream.peer_addr() {
            Ok(_) => return Ok(stream),
            Err(e) if e.kind() == ErrorKind::NotConnected => {}
            Err(e) => return Err(Attempt::Failed(e)),
        }
        match waiter.wait(deadline, watch, addr, true) {
            Ok(()) => {}
            Err(ClientError::Cancelled) => return Err(Attempt::Cancelled),
            Err(_) => {
                return Err(Attempt::Failed(std::io::Error::new(
                    ErrorKind::TimedOut,
                    format!("no connection within {timeout:?}"),
                )))
            }
        }
    }
}
