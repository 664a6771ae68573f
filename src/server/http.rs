//! The read-only HTTP port (`--http ADDR:PORT`): the status page, its
//! JSON, and Prometheus metrics, served on the event loop's own thread.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /` | one self-contained HTML page (inline CSS and JS) that refreshes itself |
//! | `GET /status.json` | the status report that `STATUS` and `floatctl status --json` show |
//! | `GET /history.json` | seats in use per feature over 24 h and 7 d ([`super::history`]) |
//! | `GET /metrics` | Prometheus text format ([`super::metrics`]) |
//!
//! One request per connection (`Connection: close`). The port gets the
//! same care as the licence port: the request head is limited to
//! [`MAX_HEAD`] bytes (431), malformed requests get 400, other methods 405,
//! other paths 404, a client that has not sent its head within
//! [`HEAD_TIMEOUT`] or read its answer within [`CONN_TIMEOUT`] is closed,
//! and at most [`MAX_CONNS`] HTTP connections are open at once,
//! [`MAX_CONNS_PER_ADDR`] from one address: a newcomer past either pushes
//! out the oldest connection of the busiest address ([`make_room`]), so
//! slow clients cannot keep others out. Nothing here changes the server's
//! state.

use super::core::Core;
use super::event_loop::accept_next;
pub use super::http_guard::{make_room, read_head, Head, MAX_CONNS, MAX_CONNS_PER_ADDR, MAX_HEAD};
use crate::ledger::Now;
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// Token of the HTTP listener. HTTP connection tokens follow it; client
/// connection tokens never come near (they are bounded by the slab).
pub const LISTENER: Token = Token(usize::MAX / 2);
const FIRST_CONN: usize = usize::MAX / 2 + 1;

/// The request head must be complete this soon after the connection opened.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed this long after it opened, answered or not.
pub const CONN_TIMEOUT: Duration = Duration::from_secs(15);
/// After the answer went out: how long to wait for the client to close.
const LINGER: Duration = Duration::from_secs(2);
const PAGE_CSS: &str = include_str!("status_page.css");
const PAGE_JS: &str = include_str!("status_page.js");

pub struct HttpServer {
    listener: TcpListener,
    conns: Slab<HttpConn>,
    /// The Content-Security-Policy of the page: its one style and one
    /// script, by hash; nothing else may load.
    csp: String,
    /// An accept failed (out of file descriptors): retry each sweep.
    accept_stalled: bool,
    /// Connections accepted so far (their arrival numbers).
    arrivals: u64,
}

struct HttpConn {
    socket: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    output: Vec<u8>,
    sent: usize,
    opened: Instant,
    /// Arrival order, for choosing whom a newcomer pushes out.
    arrival: u64,
    /// Set once the answer is queued: read nothing more but discard.
    answered: Option<Instant>,
    /// Our side has sent FIN (the answer is out).
    shut: bool,
}

enum Step {
    Keep,
    Close,
}

impl HttpServer {
    pub fn new(listener: TcpListener) -> HttpServer {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let hash = |text: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
        };
        let csp = format!(
            "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash(PAGE_CSS),
            hash(PAGE_JS)
        );
        HttpServer {
            listener,
            conns: Slab::new(),
            csp,
            accept_stalled: false,
            arrivals: 0,
        }
    }

    pub fn register(&mut self, registry: &Registry) -> io::Result<()> {
        registry.register(&mut self.listener, LISTENER, Interest::READABLE)
    }

    /// True for tokens of the HTTP listener and its connections.
    pub fn owns(token: Token) -> bool {
        token.0 >= LISTENER.0
    }

    pub fn on_event(&mut self, registry: &Registry, event: &Event, core: &Core, now: Now) {
        if event.token() == LISTENER {
            self.accept(registry, now.mono);
            return;
        }
        let key = event.token().0 - FIRST_CONN;
        self.progress(registry, key, core, now);
    }

    fn accept(&mut self, registry: &Registry, now: Instant) {
        while let Some((mut socket, peer)) =
            accept_next(&self.listener, &mut self.accept_stalled, "http: ")
        {
            // A full port (or address) pushes out its oldest connection
            // from the busiest address: a slowloris holding slots only
            // ever pushes out itself, and a newcomer is always heard.
            let open: Vec<(usize, (std::net::IpAddr, u64))> = self
                .conns
                .iter()
                .map(|(k, c)| (k, (c.peer.ip(), c.arrival)))
                .collect();
            let list: Vec<(std::net::IpAddr, u64)> = open.iter().map(|(_, v)| *v).collect();
            if let Some(i) = make_room(&list, peer.ip()) {
                let key = open[i].0;
                log::debug!("http: {} pushed out for {peer}", open[i].1 .0);
                self.close(registry, key);
            }
            self.arrivals += 1;
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = registry.register(
                &mut socket,
                Token(FIRST_CONN + key),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                log::debug!("http: cannot register {peer}: {e}");
                continue;
            }
            entry.insert(HttpConn {
                socket,
                peer,
                input: Vec::new(),
                output: Vec::new(),
                sent: 0,
                opened: now,
                arrival: self.arrivals,
                answered: None,
                shut: false,
            });
        }
    }

    /// Reads, answers and writes what a connection allows now.
    fn progress(&mut self, registry: &Registry, key: usize, core: &Core, now: Now) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let step = match conn.read(now.mono) {
            Err(_) => Step::Close,
            Ok(eof) => {
                if conn.answered.is_none() {
                    if let Some(answer) = conn.parse(&self.csp, core, now) {
                        conn.answer(answer, now.mono);
                    } else if eof {
                        conn.answered = Some(now.mono);
                    }
                }
                match conn.write() {
                    Err(_) => Step::Close,
                    // Answered and the client closed: done.
                    Ok(()) if eof && conn.answered.is_some() && conn.shut => Step::Close,
                    Ok(()) if eof && conn.output.is_empty() => Step::Close,
                    Ok(()) => Step::Keep,
                }
            }
        };
        if let Step::Close = step {
            self.close(registry, key);
        }
    }

    /// Closes connections past their deadlines; retries a stalled accept.
    pub fn sweep(&mut self, registry: &Registry, now: Instant) {
        if self.accept_stalled {
            self.accept(registry, now);
        }
        let mut doomed = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            let age = now.saturating_duration_since(conn.opened);
            match conn.answered {
                None if age >= HEAD_TIMEOUT => {
                    log::debug!("http: {} sent no complete request in time", conn.peer);
                    conn.answer(
                        response(
                            408,
                            "text/plain; charset=utf-8",
                            &[],
                            b"request not received in time\n",
                            false,
                        ),
                        now,
                    );
                    if conn.write().is_err() {
                        doomed.push(key);
                    }
                }
                Some(at) if now.saturating_duration_since(at) >= LINGER && conn.shut => {
                    doomed.push(key)
                }
                _ => {}
            }
            if age >= CONN_TIMEOUT {
                doomed.push(key);
            }
        }
        doomed.sort_unstable();
        doomed.dedup();
        for key in doomed {
            self.close(registry, key);
        }
    }

    /// Closes every connection and stops accepting (shutdown).
    pub fn stop(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.listener);
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(registry, key);
        }
    }

    fn close(&mut self, registry: &Registry, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = registry.deregister(&mut conn.socket);
        }
    }
}

impl HttpConn {
    /// Reads what the socket has. Returns true when the client closed its
    /// side. Past the head limit (or once answered) input is discarded.
    fn read(&mut self, _now: Instant) -> io::Result<bool> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.socket.read(&mut chunk) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    if self.answered.is_none() && self.input.len() <= MAX_HEAD {
                        let room = MAX_HEAD + 1 - self.input.len();
                        self.input.extend_from_slice(&chunk[..n.min(room)]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The answer to the request read so far, once one can be given.
    fn parse(&mut self, csp: &str, core: &Core, now: Now) -> Option<Vec<u8>> {
        match read_head(&self.input) {
            Head::Partial => None,
            Head::Refuse { code, body } => {
                let allow: &[(&str, &str)] = if code == 405 {
                    &[("Allow", "GET, HEAD")]
                } else {
                    &[]
                };
                Some(response(
                    code,
                    "text/plain; charset=utf-8",
                    allow,
                    body.as_bytes(),
                    false,
                ))
            }
            Head::Get { path, head } => Some(route(&path, head, csp, core, now)),
        }
    }

    fn answer(&mut self, bytes: Vec<u8>, now: Instant) {
        self.output = bytes;
        self.sent = 0;
        self.answered = Some(now);
        self.input = Vec::new();
    }

    /// Writes the answer until the socket would block; sends FIN after it.
    fn write(&mut self) -> io::Result<()> {
        while self.sent < self.output.len() {
            match self.socket.write(&self.output[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.answered.is_some() && !self.shut {
            self.shut = true;
            self.output = Vec::new();
            self.sent = 0;
            // Closing at once could reset the connection under a client
            // still sending, and lose the answer: half-close, then wait.
            let _ = self.socket.shutdown(Shutdown::Write);
        }
        Ok(())
    }
}

fn route(path: &str, head: bool, csp: &str, core: &Core, now: Now) -> Vec<u8> {
    match path {
        "/" | "/index.html" => {
            let report = super::status::build(core, now);
            let page = page(&report);
            response(
                200,
                "text/html; charset=utf-8",
                &[
                    ("Content-Security-Policy", csp),
                    ("X-Frame-Options", "DENY"),
                ],
                page.as_bytes(),
                head,
            )
        }
        "/status.json" => {
            let report = super::status::build(core, now);
            let mut json = serde_json::to_vec_pretty(&report).expect("status serialises");
            json.push(b'\n');
            response(200, "application/json", &[], &json, head)
        }
        "/history.json" => {
            let charts = core.history.charts(now.unix);
            let mut json = serde_json::to_vec(&charts).expect("history serialises");
            json.push(b'\n');
            response(200, "application/json", &[], &json, head)
        }
        "/metrics" => {
            let text = super::metrics::render(core, now);
            response(
                200,
                super::metrics::CONTENT_TYPE,
                &[],
                text.as_bytes(),
                head,
            )
        }
        "/favicon.ico" => response(204, "image/x-icon", &[], b"", head),
        _ => response(
            404,
            "text/plain; charset=utf-8",
            &[],
            b"not found: try /, /status.json, /history.json or /metrics\n",
            head,
        ),
    }
}

/// The status page: the report is embedded as JSON (inert data, not a
/// script) and drawn by the page's script, which then refreshes it from
/// `/status.json` every few seconds.
fn page(report: &crate::protocol::status::StatusReport) -> String {
    let json = serde_json::to_string(report).expect("status serialises");
    // Inside a <script> element only "</" could end it early; escaping
    // <, > and & keeps the JSON valid and the element closed.
    let json = json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let title = html_escape(&format!("floatd {}", report.server));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n\
         <noscript><p class=\"noscript\">This page draws the status with JavaScript. \
         The same data is at <a href=\"/status.json\">/status.json</a>.</p></noscript>\n\
         <div id=\"app\"></div>\n\
         <script type=\"application/json\" id=\"initial\">{json}</script>\n\
         <script>{PAGE_JS}</script>\n</body>\n</html>\n"
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A whole HTTP/1.1 response; `head` leaves the body out.
fn response(
    code: u16,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    head: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Server: floatd\r\n",
        reason(code),
        body.len()
    );
    for (k, v) in extra {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head {
        bytes.extend_from_slice(body);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_carry_length_and_close() {
        let r = String::from_utf8(response(404, "text/plain", &[], b"nope\n", false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
        assert!(r.contains("Content-Length: 5\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        assert!(r.ends_with("\r\n\r\nnope\n"));
        let h = String::from_utf8(response(200, "text/plain", &[], b"body", true)).unwrap();
        assert!(h.contains("Content-Length: 4\r\n") && h.ends_with("\r\n\r\n"));
    }

    #[test]
    fn the_page_embeds_the_report_inertly() {
        let report = crate::protocol::status::StatusReport {
            server: "</script><b>x".into(),
            ..Default::default()
        };
        let p = page(&report);
        assert_eq!(p.matches("</script>").count(), 2, "{p}");
        assert!(p.contains("\\u003c/script\\u003e"));
        assert!(p.contains("<title>floatd &lt;/script&gt;&lt;b&gt;x</title>"));
    }
}
