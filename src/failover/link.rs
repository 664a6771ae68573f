//! Peer-link connections: blocking sockets with timeouts, one reader
//! thread per connection that checks every frame and hands the messages to
//! the watchdog over a channel. Writing happens on the watchdog thread.

use crate::protocol::peer::{new_challenge, FrameAuth, FrameError, PeerMessage, CHALLENGE_LEN};
use crossbeam_channel::Sender;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// How long a write to the peer may block before the link counts as broken.
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// Most peer connections read at once: the other server needs one or two
/// (and the witness one); the cap keeps strangers from costing threads.
const MAX_READERS: usize = 16;

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);
static READERS: AtomicUsize = AtomicUsize::new(0);

/// What reader threads report.
#[derive(Debug)]
pub enum LinkEvent {
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
    pub opened: std::time::Instant,
    stream: TcpStream,
    auth: FrameAuth,
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
    for sa in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or(last)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut challenge = [0u8; CHALLENGE_LEN];
    stream.read_exact(&mut challenge)?;
    stream.set_read_timeout(None)?;
    let id = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
    let mut writer = LinkWriter {
        id,
        peer: addr.to_string(),
        opened: std::time::Instant::now(),
        stream: stream.try_clone()?,
        auth: FrameAuth::new(secret, challenge, true),
    };
    writer.send(hello)?;
    let reader = FrameAuth::new(secret, challenge, true);
    spawn_reader(id, addr.to_string(), stream, reader, events)?;
    Ok(writer)
}

/// Accepts connections on `listener` for ever (on its own thread): sends
/// each a challenge, passes its writer to `accepted` and reads its frames.
pub fn serve(
    listener: TcpListener,
    secret: Vec<u8>,
    events: Sender<LinkEvent>,
    accepted: Sender<LinkWriter>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("floatd-peer-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        log::warn!("peer link: accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                let peer = stream
                    .peer_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|_| "?".into());
                if READERS.load(Ordering::SeqCst) >= MAX_READERS {
                    log::warn!("peer link: refusing {peer}: {MAX_READERS} peer connections are open already");
                    let _ = stream.shutdown(Shutdown::Both);
                    continue;
                }
                match accept_one(stream, &peer, &secret, events.clone()) {
                    Ok(writer) => {
                        if accepted.send(writer).is_err() {
                            return; // the watchdog is gone
                        }
                    }
                    Err(e) => log::debug!("peer link from {peer}: {e}"),
                }
            }
        })?;
    Ok(())
}

fn accept_one(
    mut stream: TcpStream,
    peer: &str,
    secret: &[u8],
    events: Sender<LinkEvent>,
) -> io::Result<LinkWriter> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let challenge = new_challenge()?;
    stream.write_all(&challenge)?;
    let id = NEXT_LINK.fetch_add(1, Ordering::Relaxed);
    let writer = LinkWriter {
        id,
        peer: peer.to_string(),
        opened: std::time::Instant::now(),
        stream: stream.try_clone()?,
        auth: FrameAuth::new(secret, challenge, false),
    };
    spawn_reader(
        id,
        peer.to_string(),
        stream,
        FrameAuth::new(secret, challenge, false),
        events,
    )?;
    Ok(writer)
}

/// Reads frames until the connection ends or a frame fails its checks
/// (then the connection is closed: the peer is not trusted further).
fn spawn_reader(
    id: u64,
    peer: String,
    mut stream: TcpStream,
    mut auth: FrameAuth,
    events: Sender<LinkEvent>,
) -> io::Result<()> {
    READERS.fetch_add(1, Ordering::SeqCst);
    let spawned = std::thread::Builder::new()
        .name("floatd-peer-read".into())
        .spawn(move || {
            let _count = ReaderCount;
            let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
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
        });
    if spawned.is_err() {
        READERS.fetch_sub(1, Ordering::SeqCst);
    }
    spawned.map(|_| ())
}

/// Counts a live reader thread for as long as it runs.
struct ReaderCount;

impl Drop for ReaderCount {
    fn drop(&mut self) {
        READERS.fetch_sub(1, Ordering::SeqCst);
    }
}
