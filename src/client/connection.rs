//! One blocking connection to one server: greeting, HELLO, request/reply.

use super::{ClientError, Identity};
use crate::protocol::{Greeting, Reply, Request, MAX_LINE, PROTOCOL_VERSION};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A reply line kept as text (replies borrow from their line).
#[derive(Clone, Debug)]
pub struct ReplyLine(pub String);

impl ReplyLine {
    pub fn parse(&self) -> Result<Reply<'_>, ClientError> {
        Reply::parse(&self.0).map_err(|e| ClientError::Protocol(format!("{e}: {:?}", self.0)))
    }
}

pub struct Connection {
    pub addr: String,
    pub greeting: Greeting,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Lines pushed by the server (`* ...`) while waiting for a reply.
    pub pushed: Vec<String>,
}

impl Connection {
    /// Connects, reads the greeting and says HELLO.
    pub fn open(
        addr: &str,
        identity: &Identity,
        timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let unreachable = |e: String| ClientError::Unreachable(format!("{addr}: {e}"));
        let sockaddrs = crate::net::resolve(addr).map_err(|e| unreachable(e.to_string()))?;
        let mut last = String::from("no address");
        let mut stream = None;
        for sa in sockaddrs {
            match TcpStream::connect_timeout(&sa, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let stream = stream.ok_or_else(|| unreachable(last))?;
        stream.set_nodelay(true).ok();
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| unreachable(e.to_string()))?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| unreachable(e.to_string()))?;
        let writer = stream.try_clone().map_err(|e| unreachable(e.to_string()))?;
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
            reader: BufReader::new(stream),
            writer,
            pushed: Vec::new(),
        };
        let first = conn.read_line()?;
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
                    )));
                }
                return Err(ClientError::Protocol(format!(
                    "{addr}: not a floatd server: {first:?}"
                )));
            }
        };
        let hello = Request::Hello {
            proto: PROTOCOL_VERSION,
            client: identity.client.clone(),
            user: identity.user.clone(),
            host: identity.host.clone(),
        };
        match conn.request(&hello)?.parse()? {
            Reply::Ok(_) => Ok(conn),
            Reply::Err {
                code_text, message, ..
            } => Err(ClientError::Protocol(format!(
                "{addr} refused HELLO: {code_text}: {message}"
            ))),
            other => Err(ClientError::Protocol(format!(
                "{addr}: unexpected reply to HELLO: {other:?}"
            ))),
        }
    }

    /// Sends a request and returns its reply; pushed lines that arrive
    /// first are kept in `pushed`.
    pub fn request(&mut self, request: &Request) -> Result<ReplyLine, ClientError> {
        self.send(request)?;
        self.next_reply()
    }

    pub fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        self.writer
            .write_all(request.to_line().as_bytes())
            .map_err(|e| ClientError::Unreachable(format!("{}: {e}", self.addr)))
    }

    /// Reads lines until one that answers a request.
    pub fn next_reply(&mut self) -> Result<ReplyLine, ClientError> {
        loop {
            let line = self.read_line()?;
            if line.starts_with("* ") {
                self.pushed.push(line);
                continue;
            }
            return Ok(ReplyLine(line));
        }
    }

    /// Waits for a pushed line (a queued checkout's outcome) until `deadline`.
    pub fn next_push(&mut self, deadline: Instant) -> Result<String, ClientError> {
        if !self.pushed.is_empty() {
            return Ok(self.pushed.remove(0));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(left.min(Duration::from_secs(1))))
                .ok();
            match self.read_line() {
                Ok(line) if line.starts_with("* ") => return Ok(line),
                Ok(line) => {
                    return Err(ClientError::Protocol(format!(
                        "{}: unexpected line while waiting: {line:?}",
                        self.addr
                    )))
                }
                Err(ClientError::Timeout) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn read_line(&mut self) -> Result<String, ClientError> {
        let mut buf = Vec::new();
        let limit = (MAX_LINE * 64) as u64; // STATUS replies may be long
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    ClientError::Timeout
                }
                _ => ClientError::Unreachable(format!("{}: {e}", self.addr)),
            })?;
        if n == 0 {
            return Err(ClientError::Unreachable(format!(
                "{}: connection closed",
                self.addr
            )));
        }
        if buf.last() != Some(&b'\n') {
            return Err(ClientError::Protocol(format!(
                "{}: reply line too long or cut",
                self.addr
            )));
        }
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        String::from_utf8(buf)
            .map_err(|_| ClientError::Protocol(format!("{}: reply is not UTF-8", self.addr)))
    }
}

use std::io::Read as _;
