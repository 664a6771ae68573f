//! Peer-link connections: blocking sockets with timeouts, one reader
//! thread per proven connection that checks every frame and hands the
//! messages to the watchdog over a channel. Writing happens on the
//! watchdog thread.
//!
//! Accepted connections wait in the [`lobby`](super::lobby) until their
//! first frame proves the secret; only then do they get a reader thread
//! and reach the owner of the link, as [`LinkEvent::Accepted`].

use super::lobby;
use crate::protocol::peer::{FrameAuth, FrameError, PeerMessage, CHALLENGE_LEN};
use crossbeam_channel::Sender;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a write to the peer may block before the link counts as broken.
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

/// What the link threads report, in order per connection.
#[derive(Debug)]
pub enum LinkEvent {
    /// A connection dialled to us proved the secret: its writer. Its first
    /// message follows as a [`LinkEvent::Message`].
    Accepted(LinkWriter),
    Message {
        link: u64,
        message: PeerMessage,
    },
    /// The connection ended or sent something that failed authentication.
    Closed {
        link: u64,
        why: String,
    },
}

/// The sending half of a connection.
pub struct LinkWriter {
    pub id: u64,
    pub peer: String,
    stream: TcpStream,
    auth: FrameAuth,
}

impl std::fmt::Debug for LinkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkWriter")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish()
    }
}

impl LinkWriter {
    pub fn send(&mut self, message: &PeerMessage) -> io::Result<()> {
        let frame = self.auth.seal(message);
        self.stream.write_all(&frame)
    }
}

impl Drop for LinkWriter {
    fn drop(&mut self) {
        // Ends the reader thread too (it shares the socket).
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Dials `addr`, reads its challenge and sends `hello`. Messages the other
/// side sends back arrive on `events`.
pub fn dial(
    addr: &str,
    secret: &[u8],
    hello: &PeerMessage,
    timeout: Duration,
    events: Sender<LinkEvent>,
) -> io::Result<LinkWriter> {
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{addr} resolves to nothing"),
    );
    let mut stream = None;
    // Refused only when every address refused: nothing listens there.
    let mut refused = true;
    for sa in crate::net::resolve(addr)? {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => {
                refused &= e.kind() == io::ErrorKind::ConnectionRefused;
                last = e;
            }
        }
    }
    if !refused && last.kind() == io::ErrorKind::ConnectionRefused {
        last = io::Error::other(last.to_string());
    }
    let mut stream = stream.ok_or(last)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut challenge = [0u8; CHALLENGE_LEN];
    stream.read_exact(&mut challenge)?;
    stream.set_read_timeout(None)?;
    let id = next_id();
    let mut writer = LinkWriter {
        id,
        peer: addr.to_string(),
        stream: stream.try_clone()?,
        auth: FrameAuth::new(secret, challenge, true),
    };
    writer.send(hello)?;
    // Until the other side's first frame proves the secret, its frames
    // are held to the small first-frame limit (FrameAuth does that).
    let reader = FrameAuth::new(secret, challenge, true);
    spawn_reader(id, addr.to_string(), stream, reader, Vec::new(), events)?;
    Ok(writer)
}

/// Accepts connections on `listener` for ever, on a thread of its own.
/// Each sits in the lobby until it proves the secret; then its writer
/// arrives on `events` as [`LinkEvent::Accepted`], followed by its
/// messages.
pub fn serve(listener: TcpListener, secret: Vec<u8>, events: Sender<LinkEvent>) -> io::Result<()> {
    lobby::spawn(listener, secret, events)
}

fn next_id() -> u64 {
    NEXT_LINK.fetch_add(1, Ordering::Relaxed)
}

/// Takes over an accepted connection that proved the secret with its first
/// frame: announces its writer, then its first message, then reads the
/// rest. Fails with `BrokenPipe` when the link's owner is gone.
pub(super) fn adopt_proven(
    proven: lobby::Proven,
    secret: &[u8],
    events: &Sender<LinkEvent>,
) -> io::Result<()> {
    let lobby::Proven {
        stream,
        peer,
        challenge,
        reader,
        first,
        leftover,
    } = proven;
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let id = next_id();
    let writer = LinkWriter {
        id,
        peer: peer.clone(),
        stream: stream.try_clone()?,
        auth: FrameAuth::new(secret, challenge, false),
    };
    let first = LinkEvent::Message {
        link: id,
        message: first,
    };
    if events.send(LinkEvent::Accepted(writer)).is_err() || events.send(first).is_err() {
        return Err(io::ErrorKind::BrokenPipe.into());
    }
    spawn_reader(id, peer, stream, reader, leftover, events.clone())
}

/// Reads frames until the connection ends or a frame fails its checks
/// (then the connection is closed: the peer is not trusted further).
fn spawn_reader(
    id: u64,
    peer: String,
    mut stream: TcpStream,
    mut auth: FrameAuth,
    leftover: Vec<u8>,
    events: Sender<LinkEvent>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("floatd-peer-read".into())
        .spawn(move || {
            let mut buf: Vec<u8> = leftover;
            let mut chunk = vec![0u8; 64 * 1024];
            let why = loop {
                match auth.open(&buf) {
                    Ok((message, used)) => {
                        buf.drain(..used);
                        if events
                            .send(LinkEvent::Message { link: id, message })
                            .is_err()
                        {
                            return;
                        }
                        continue;
                    }
                    Err(FrameError::Incomplete) => {}
                    Err(e) => {
                        log::warn!(
                            "peer link from {peer}: message rejected: {e}; closing the link"
                        );
                        break format!("rejected: {e}");
                    }
                }
                match stream.read(&mut chunk) {
                    Ok(0) => break "closed".to_string(),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break e.to_string(),
                }
            };
            let _ = stream.shutdown(Shutdown::Both);
            let _ = events.send(LinkEvent::Closed { link: id, why });
        })
        .map(|_| ())
}
