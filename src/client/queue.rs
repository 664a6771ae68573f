//! Checking out with a wait in the server's queue: on a connection of its
//! own (so heartbeats go on), and leaving the queue cleanly when the wait
//! is given up.

use super::cancel::Watch;
use super::connection::Connection;
use super::session::Session;
use super::{
    in_event_sink, seat_from_fields, seat_from_reply, Client, ClientError, ClientEvent, Seat,
};
use crate::codes::Code;
use crate::licence::Version;
use crate::protocol::{line, Reply, Request};
use std::time::{Duration, Instant};

impl Client {
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
        if in_event_sink() {
            return Err(ClientError::Reentrant);
        }
        let sh = &self.shared;
        let deadline = Instant::now() + timeout;
        let request = Request::Checkout {
            feature: feature.to_string(),
            version: *version,
            count,
            wait: true,
        };
        let notice = |server: &str| {
            sh.emit(ClientEvent::Trying {
                server: server.to_string(),
            })
        };
        let watch = Watch::new(&sh.cancel, None, &notice);
        let mut probe = Session::new(self.known_servers(), false);
        let first = probe.call(sh, &request, sh.config.failover_timeout, &watch)?;
        let id = match first.parse()? {
            Reply::Queued { id, .. } => id,
            _ => {
                let seat = seat_from_reply(&first.0, feature, version, count)?;
                sh.seats().granted(seat.clone(), Instant::now());
                return Ok(seat);
            }
        };
        let conn = probe
            .conn
            .as_mut()
            .ok_or_else(|| ClientError::Protocol("queued without a connection".into()))?;
        let outcome = wait_for_grant(conn, id, deadline, &watch, feature, version, count);
        match outcome {
            Ok(seat) => {
                sh.seats().granted(seat.clone(), Instant::now());
                Ok(seat)
            }
            Err(e) => {
                // Leaving the queue (timed out, cancelled, lost): the
                // server may have granted just before it saw us go.
                let quiet = |_: &str| {};
                let cleanup = Watch::new(&sh.cancel, None, &quiet);
                let late = conn.close_and_drain(Instant::now() + sh.config.io_timeout, &cleanup);
                for line in late {
                    let Ok(parsed) = line::parse(&line) else {
                        continue;
                    };
                    if parsed.arg(0) == Some("GRANTED") && push_id(&parsed) == Some(id) {
                        if let Some(handle) = parsed.get("handle") {
                            let _ = self.checkin(handle);
                        }
                    }
                }
                Err(e)
            }
        }
    }
}

/// The `id=` of a pushed line.
fn push_id(parsed: &line::Line<'_>) -> Option<u64> {
    parsed.get("id").and_then(|v| v.parse().ok())
}

/// Waits on a queued checkout's connection for the server's decision.
fn wait_for_grant(
    conn: &mut Connection,
    id: u64,
    deadline: Instant,
    watch: &Watch<'_>,
    feature: &str,
    version: &Version,
    count: u32,
) -> Result<Seat, ClientError> {
    loop {
        let pushed = conn.next_push(deadline, watch)?;
        let parsed = line::parse(&pushed).map_err(ClientError::Protocol)?;
        if push_id(&parsed) != Some(id) {
            continue;
        }
        return match parsed.arg(0) {
            Some("GRANTED") => seat_from_fields(&parsed, feature, version, count),
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
