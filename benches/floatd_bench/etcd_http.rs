//! HTTP/1.1 to etcd's JSON gateway (`POST /v3/...`, JSON bodies, keys and
//! values base64), hand-written: the bench needs a few request kinds, and
//! etcd's own clients are gRPC, which would bring an async runtime. One
//! `Conn` is one keep-alive connection, as a client library holds one per
//! endpoint.

use base64::Engine;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One keep-alive connection to a member's client port.
pub struct Conn {
    stream: TcpStream,
    /// Bytes read past the end of the last reply.
    pending: Vec<u8>,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`; every read and write of the
    /// connection gives up after `timeout`.
    pub fn open(port: u16, timeout: Duration) -> Result<Conn, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|_| stream.set_write_timeout(Some(timeout)))
            .and_then(|_| stream.set_nodelay(true))
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            stream,
            pending: Vec::new(),
        })
    }

    /// POSTs `body` to `path`; the body of a 200 reply, else the status
    /// line and body as the error. The reply is read to its end either
    /// way, so the connection serves the next request.
    pub fn post(&mut self, path: &str, body: &str) -> Result<String, String> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let head_end = loop {
            if let Some(at) = find(&self.pending, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.pending[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .ok_or("a reply without Content-Length")?;
        while self.pending.len() < head_end + length {
            self.fill()?;
        }
        let rest = self.pending.split_off(head_end + length);
        let reply = std::mem::replace(&mut self.pending, rest);
        let body = String::from_utf8_lossy(&reply[head_end..]).into_owned();
        let status = head.lines().next().unwrap_or("");
        if status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200") {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => Err("connection closed".into()),
            Ok(n) => {
                self.pending.extend_from_slice(&buf[..n]);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request on a connection of its own.
pub fn post_once(port: u16, path: &str, body: &str, timeout: Duration) -> Result<String, String> {
    Conn::open(port, timeout)?.post(path, body)
}

/// `text` in base64, as the gateway takes keys and values.
pub fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}
