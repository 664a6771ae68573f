//! One client connection: its socket, buffers and deadlines
//! ([`Conn`]), and the state its requests change ([`ClientState`]), kept
//! apart so requests can be handled (and tested) without a socket.

use super::output::Output;
use crate::ledger::{CheckoutRequest, Name, SeatHolder};
use crate::licence::Version;
use crate::protocol::MAX_LINE;
use mio::net::TcpStream;
use mio::Interest;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Most bytes buffered from a client before its lines are processed.
const MAX_INPUT: usize = 64 * 1024;

/// Who is on the other end, from HELLO.
#[derive(Clone, Debug)]
pub struct Session {
    pub client: Name,
    pub user: Name,
    pub host: Name,
}

impl Session {
    /// A checkout (or reclaim) by this session's client.
    pub fn request(
        &self,
        feature: String,
        version: Version,
        count: u32,
        wait: bool,
    ) -> CheckoutRequest {
        CheckoutRequest {
            feature,
            version,
            count,
            user: Arc::clone(&self.user),
            host: Arc::clone(&self.host),
            client: Arc::clone(&self.client),
            wait,
        }
    }

    /// This session as the holder of seats (heartbeat, checkin).
    pub fn holder(&self) -> SeatHolder<'_> {
        SeatHolder {
            client: &self.client,
            user: &self.user,
            host: &self.host,
        }
    }
}

/// What the socket said when read.
pub enum ReadOutcome {
    /// Read this many bytes; the socket may have more.
    Data(usize),
    /// Nothing more now.
    WouldBlock,
    /// The client closed its side.
    Eof,
}

/// A line taken from the input, or why none could be.
pub enum LineResult {
    Line(String),
    TooLong,
    NotUtf8,
}

/// What a connection's requests change: who it is and what it may do.
#[derive(Clone, Debug)]
pub struct ClientState {
    pub peer: SocketAddr,
    pub session: Option<Session>,
    /// May make admin requests (loopback, or presented the admin token).
    pub admin: bool,
    /// Accepted past the connection cap into a slot kept for loopback
    /// admins: only status and admin requests are served.
    pub admin_slot: bool,
    /// Close once the output is flushed; read nothing more.
    pub closing: bool,
    /// Queued checkouts of this connection, by waiter id.
    pub waiters: Vec<u64>,
}

impl ClientState {
    pub fn new(peer: SocketAddr, admin: bool) -> ClientState {
        ClientState {
            peer,
            session: None,
            admin,
            admin_slot: false,
            closing: false,
            waiters: Vec::new(),
        }
    }
}

pub struct Conn {
    pub socket: TcpStream,
    input: Vec<u8>,
    /// Bytes at the front of `input` already consumed as lines.
    consumed: usize,
    /// Where to resume looking for a newline.
    scanned: usize,
    pub output: Output,
    pub client: ClientState,
    pub last_input: Instant,
    /// Since when a started line has been waiting for its newline.
    pub partial_since: Option<Instant>,
    /// The socket may hold unread bytes (edge-triggered readiness).
    pub readable: bool,
    pub interest: Interest,
}

impl Conn {
    pub fn new(socket: TcpStream, peer: SocketAddr, admin: bool, now: Instant) -> Conn {
        Conn {
            socket,
            input: Vec::new(),
            consumed: 0,
            scanned: 0,
            output: Output::default(),
            client: ClientState::new(peer, admin),
            last_input: now,
            partial_since: None,
            readable: true,
            interest: Interest::READABLE,
        }
    }

    /// Reads what the socket has, up to the input cap.
    pub fn fill(&mut self, now: Instant) -> io::Result<ReadOutcome> {
        self.compact();
        let mut total = 0;
        let mut chunk = [0u8; 8192];
        while self.input.len() < MAX_INPUT {
            match self.socket.read(&mut chunk) {
                Ok(0) => {
                    // Data and the end of the stream in one go: report the
                    // data now, and the end on the next call (a closed
                    // socket reads 0 again; no new readiness event comes).
                    self.readable = total > 0;
                    return Ok(if total > 0 {
                        ReadOutcome::Data(total)
                    } else {
                        ReadOutcome::Eof
                    });
                }
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    total += n;
                    self.last_input = now;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(if total > 0 {
            ReadOutcome::Data(total)
        } else {
            ReadOutcome::WouldBlock
        })
    }

    /// Takes the next complete request line, if there is one.
    pub fn take_line(&mut self, now: Instant) -> Option<LineResult> {
        let start = self.consumed;
        let from = self.scanned.max(start);
        match self.input[from..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = from + i;
                self.consumed = end + 1;
                self.scanned = self.consumed;
                self.partial_since = None;
                if end - start >= MAX_LINE {
                    return Some(LineResult::TooLong);
                }
                let mut line = &self.input[start..end];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                Some(match std::str::from_utf8(line) {
                    Ok(text) => LineResult::Line(text.to_string()),
                    Err(_) => LineResult::NotUtf8,
                })
            }
            None => {
                self.scanned = self.input.len();
                let partial = self.input.len() - start;
                if partial >= MAX_LINE {
                    return Some(LineResult::TooLong);
                }
                if partial > 0 && self.partial_since.is_none() {
                    self.partial_since = Some(now);
                }
                None
            }
        }
    }

    fn compact(&mut self) {
        if self.consumed > 0 {
            self.input.drain(..self.consumed);
            self.scanned -= self.consumed.min(self.scanned);
            self.consumed = 0;
        }
    }

    /// The readiness this connection needs from the poller.
    pub fn wanted_interest(&self) -> Interest {
        if self.output.has_sendable() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }
}
