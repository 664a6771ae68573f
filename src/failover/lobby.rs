//! The peer port's lobby: where accepted connections wait until their
//! first frame proves the shared secret.
//!
//! Anybody can connect to the peer port, so a connection that has not
//! proved the secret must cost almost nothing and never keep the other
//! server out. Here it costs a socket and a buffer of at most one small
//! first frame ([`MAX_FIRST_FRAME_BYTES`]), on one thread for all of them
//! (a mio poll), for at most [`PROOF_TIMEOUT`]. At most [`MAX_WAITING`]
//! wait at once; a newcomer beyond that pushes one out, chosen by
//! [`crate::net::oldest_of_busiest`], so squatters only ever push each other out while a
//! real peer, which proves itself within a round trip, gets through. A
//! connection that proves the secret gets a reader thread of its own and
//! is handed to the owner of the link (`link::adopt_proven`).

use super::link::{self, LinkEvent};
use crate::protocol::peer::{
    new_challenge, FrameAuth, PeerMessage, CHALLENGE_LEN, MAX_FIRST_FRAME_BYTES,
};
use crossbeam_channel::Sender;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long an accepted connection may take to prove the secret. The
/// other server sends its first frame as soon as it has read the
/// challenge, one round trip after connecting.
pub const PROOF_TIMEOUT: Duration = Duration::from_secs(2);
/// Most connections waiting to prove the secret at once.
pub const MAX_WAITING: usize = 32;
/// How often a failing accept (out of file descriptors) is retried.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// At most one warning about strangers per this interval (the rest are
/// counted), so a flood cannot fill the log.
const WARN_EVERY: Duration = Duration::from_secs(10);

const LISTENER: Token = Token(usize::MAX);

/// A connection that proved the secret, ready for a reader thread.
pub struct Proven {
    pub stream: std::net::TcpStream,
    pub peer: String,
    pub challenge: [u8; CHALLENGE_LEN],
    /// The frame checker, past the first frame.
    pub reader: FrameAuth,
    pub first: PeerMessage,
    /// Bytes read after the first frame.
    pub leftover: Vec<u8>,
}

struct Waiting {
    stream: TcpStream,
    peer: SocketAddr,
    since: Instant,
    /// Arrival order, for choosing whom a newcomer pushes out.
    arrival: u64,
    challenge: [u8; CHALLENGE_LEN],
    auth: FrameAuth,
    buf: Vec<u8>,
}

/// Rate-limits a warning: says how many were held back since the last.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    fn warn(&mut self, now: Instant, message: impl FnOnce() -> String) {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            self.held += 1;
            return;
        }
        let held = std::mem::take(&mut self.held);
        let more = if held > 0 {
            format!(" ({held} more like it not logged)")
        } else {
            String::new()
        };
        log::warn!("{}{more}", message());
        self.last = Some(now);
    }
}

struct Lobby {
    poll: Poll,
    listener: TcpListener,
    waiting: Slab<Waiting>,
    secret: Vec<u8>,
    events: Sender<LinkEvent>,
    accept_failing: bool,
    /// Connections accepted so far (their arrival numbers).
    arrivals: u64,
    rejected: Throttle,
    crowded: Throttle,
}

/// Starts the lobby's thread on `listener`.
pub fn spawn(
    listener: std::net::TcpListener,
    secret: Vec<u8>,
    events: Sender<LinkEvent>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut lobby = Lobby {
        poll,
        listener,
        waiting: Slab::new(),
        secret,
        events,
        accept_failing: false,
        arrivals: 0,
        rejected: Throttle::default(),
        crowded: Throttle::default(),
    };
    std::thread::Builder::new()
        .name("floatd-peer-accept".into())
        .spawn(move || lobby.run())?;
    Ok(())
}

impl Lobby {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            if let Err(e) = self.poll.poll(&mut events, self.timeout()) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("peer link: poll failed: {e}; no longer accepting the other server");
                return;
            }
            let now = Instant::now();
            let mut accept = self.accept_failing;
            for event in events.iter() {
                match event.token() {
                    LISTENER => accept = true,
                    Token(key) => {
                        if !self.read(key, now) {
                            return; // the link's owner is gone
                        }
                    }
                }
            }
            if accept {
                self.accept(now);
            }
            self.expire(now);
        }
    }

    /// Until the next deadline (or an accept retry); none when idle.
    fn timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let next = self
            .waiting
            .iter()
            .map(|(_, w)| (w.since + PROOF_TIMEOUT).saturating_duration_since(now))
            .min();
        match (next, self.accept_failing) {
            (Some(d), true) => Some(d.min(ACCEPT_RETRY)),
            (None, true) => Some(ACCEPT_RETRY),
            (d, false) => d,
        }
    }

    fn accept(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    self.accept_failing = false;
                    self.admit(stream, peer, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_failing = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if !self.accept_failing {
                        log::warn!("peer link: accept failed: {e}; retrying");
                    }
                    self.accept_failing = true;
                    return;
                }
            }
        }
    }

    /// Sends the challenge and lets the connection wait, pushing another
    /// out when the lobby is full.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        let _ = stream.set_nodelay(true);
        let Ok(challenge) = new_challenge() else {
            return;
        };
        // A fresh socket's buffer has room for the few bytes of challenge.
        if !matches!(stream.write(&challenge), Ok(n) if n == CHALLENGE_LEN) {
            return;
        }
        if self.waiting.len() >= MAX_WAITING {
            let list: Vec<(usize, (IpAddr, u64))> = self
                .waiting
                .iter()
                .map(|(k, w)| (k, (w.peer.ip(), w.arrival)))
                .collect();
            let brief: Vec<(IpAddr, u64)> = list.iter().map(|(_, v)| *v).collect();
            if let Some(i) = crate::net::oldest_of_busiest(&brief) {
                let key = list[i].0;
                let victim = self.remove(key);
                self.crowded.warn(now, || {
                    format!(
                        "peer link: {MAX_WAITING} connections are waiting to prove the secret; \
                         dropped the oldest from {} to make room for {peer} (is someone flooding \
                         the peer port?)",
                        victim.map_or_else(|| "?".into(), |v| v.peer.to_string())
                    )
                });
            }
        }
        self.arrivals += 1;
        let entry = self.waiting.vacant_entry();
        if self
            .poll
            .registry()
            .register(&mut stream, Token(entry.key()), Interest::READABLE)
            .is_err()
        {
            return;
        }
        log::debug!("peer link: {peer} connected; waiting for it to prove the secret");
        entry.insert(Waiting {
            stream,
            peer,
            since: now,
            arrival: self.arrivals,
            challenge,
            auth: FrameAuth::new(&self.secret, challenge, false),
            buf: Vec::new(),
        });
    }

    /// Reads what a waiting connection sent. Returns false when the owner
    /// of the link is gone (the lobby then ends).
    fn read(&mut self, key: usize, now: Instant) -> bool {
        let Some(w) = self.waiting.get_mut(key) else {
            return true;
        };
        let mut chunk = [0u8; MAX_FIRST_FRAME_BYTES];
        loop {
            // Never more than one first frame's worth.
            let room = MAX_FIRST_FRAME_BYTES - w.buf.len();
            let n = match w.stream.read(&mut chunk[..room.max(1)]) {
                Ok(0) => {
                    self.remove(key);
                    return true;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.remove(key);
                    return true;
                }
            };
            w.buf.extend_from_slice(&chunk[..n]);
            match w.auth.open(&w.buf) {
                Ok((first, used)) => return self.prove(key, first, used),
                Err(crate::protocol::peer::FrameError::Incomplete)
                    if w.buf.len() < MAX_FIRST_FRAME_BYTES => {}
                Err(e) => {
                    let peer = w.peer;
                    self.remove(key);
                    self.rejected.warn(now, || {
                        format!("peer link from {peer}: message rejected: {e}; closing the link")
                    });
                    return true;
                }
            }
        }
    }

    /// Hands a connection that proved the secret to the link's owner.
    fn prove(&mut self, key: usize, first: PeerMessage, used: usize) -> bool {
        let Some(mut w) = self.remove(key) else {
            return true;
        };
        let leftover = w.buf.split_off(used);
        let peer = w.peer.to_string();
        log::debug!("peer link: {peer} proved the secret");
        let proven = Proven {
            stream: w.stream.into(),
            peer,
            challenge: w.challenge,
            reader: w.auth,
            first,
            leftover,
        };
        match link::adopt_proven(proven, &self.secret, &self.events) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => false,
            Err(e) => {
                log::warn!("peer link: cannot start reading a proven connection: {e}");
                true
            }
        }
    }

    /// Drops connections that did not prove the secret in time.
    fn expire(&mut self, now: Instant) {
        let late: Vec<usize> = self
            .waiting
            .iter()
            .filter(|(_, w)| now.duration_since(w.since) >= PROOF_TIMEOUT)
            .map(|(k, _)| k)
            .collect();
        for key in late {
            if let Some(w) = self.remove(key) {
                log::debug!(
                    "peer link: {} did not prove the secret within {PROOF_TIMEOUT:?}; closed",
                    w.peer
                );
            }
        }
    }

    fn remove(&mut self, key: usize) -> Option<Waiting> {
        let mut w = self.waiting.try_remove(key)?;
        let _ = self.poll.registry().deregister(&mut w.stream);
        Some(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_throttled_and_count_what_they_held_back() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let mut said = Vec::new();
        for i in 0..5 {
            t.warn(now + Duration::from_millis(i), || "x".into());
            said.push(t.held);
        }
        assert_eq!(said, [0, 1, 2, 3, 4]);
        t.warn(now + WARN_EVERY, || "x".into());
        assert_eq!(t.held, 0);
        assert_eq!(t.last, Some(now + WARN_EVERY));
    }
}
