//! A server that does no work: it answers every request at once with a
//! canned reply. Running `floatd-load` against it (and `redis-benchmark`
//! against its RESP mode) measures what the client costs, so the bench can
//! tell whether a figure is the server's or the client's.
//!
//! One thread, one mio `Poll`, like floatd's loop and redis-server.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX);

struct Client {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    sent: usize,
    /// A write would block: WRITABLE interest is registered.
    blocked: bool,
}

/// Serves `addr` until `until` (or for ever). Prints
/// `null server listening on ADDR` on stdout once bound.
pub fn serve(addr: &str, resp: bool, until: Option<Instant>) -> Result<(), String> {
    let sock: SocketAddr = addr
        .parse()
        .map_err(|_| format!("--null-server {addr:?}: expected IP:PORT"))?;
    let mut listener = TcpListener::bind(sock).map_err(|e| format!("bind {sock}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| e.to_string())?;
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "null server listening on {local}");
        let _ = out.flush();
    }
    let mut clients: slab::Slab<Client> = slab::Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let timeout = until.map(|t| t.saturating_duration_since(Instant::now()));
        if timeout == Some(Duration::ZERO) {
            return Ok(());
        }
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let entry = clients.vacant_entry();
                            let key = entry.key();
                            if poll
                                .registry()
                                .register(&mut stream, Token(key), Interest::READABLE)
                                .is_err()
                            {
                                continue;
                            }
                            let mut c = Client {
                                stream,
                                input: Vec::new(),
                                output: Vec::new(),
                                sent: 0,
                                blocked: false,
                            };
                            if !resp {
                                c.output.extend_from_slice(
                                    b"FLOATD proto=1 role=standalone state=active epoch=1 server=null\n",
                                );
                                let _ = flush(&mut c);
                            }
                            entry.insert(c);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(c) = clients.get_mut(key) else {
                continue;
            };
            let mut closed = false;
            loop {
                match c.stream.read(&mut chunk) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        let data = &chunk[..n];
                        if c.input.is_empty() {
                            let used = answer(data, resp, &mut c.output);
                            c.input.extend_from_slice(&data[used..]);
                        } else {
                            c.input.extend_from_slice(data);
                            let used = answer(&c.input, resp, &mut c.output);
                            c.input.drain(..used);
                        }
                        // A short read emptied the socket (see the worker).
                        if n < chunk.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        closed = true;
                        break;
                    }
                }
            }
            let blocked_before = c.blocked;
            if closed || flush(c).is_err() {
                let mut c = clients.remove(key);
                let _ = poll.registry().deregister(&mut c.stream);
            } else if c.blocked != blocked_before {
                let interest = if c.blocked {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                let _ = poll
                    .registry()
                    .reregister(&mut c.stream, Token(key), interest);
            }
        }
    }
}

fn flush(c: &mut Client) -> io::Result<()> {
    while c.sent < c.output.len() {
        match c.stream.write(&c.output[c.sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.blocked = true;
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    c.output.clear();
    c.sent = 0;
    c.blocked = false;
    Ok(())
}

/// Answers every complete request in `input`; returns the bytes used.
fn answer(input: &[u8], resp: bool, out: &mut Vec<u8>) -> usize {
    if resp {
        let mut used = 0;
        while let Some(n) = resp_command_len(&input[used..]) {
            used += n;
            out.extend_from_slice(b":1\r\n");
        }
        return used;
    }
    super::wire::for_each_line(input, |line| {
        let word = line.split(|&b| b == b' ').next().unwrap_or(b"");
        out.extend_from_slice(match word {
            b"CHECKOUT" => {
                &b"OK handle=null.0 feature=f version=0 count=1 pool=0 expires=permanent lease_ms=60000\n"[..]
            }
            b"HELLO" => b"OK proto=1 lease_ms=60000\n",
            b"PING" => b"PONG\n",
            b"STATUS" => b"STATUS {\"server\":\"null\",\"role\":\"standalone\",\"state\":\"active\",\"epoch\":1,\"uptime_secs\":0,\"lease_secs\":60,\"connections\":0,\"seq\":0,\"features\":[]}\n",
            _ => b"OK\n",
        });
        true
    })
}

/// Length of the complete RESP command at the start of `buf` (a `*N`
/// multibulk or an inline line), `None` until it is complete.
fn resp_command_len(buf: &[u8]) -> Option<usize> {
    let line_end = |from: usize| {
        buf[from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| from + i)
    };
    if buf.first() != Some(&b'*') {
        return super::wire::memchr(b'\n', buf).map(|i| i + 1);
    }
    let end = line_end(0)?;
    let n: usize = std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()?;
    let mut at = end + 2;
    for _ in 0..n {
        if buf.get(at) != Some(&b'$') {
            return None;
        }
        let end = line_end(at)?;
        let len: usize = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
        at = end + 2 + len + 2;
        if at > buf.len() {
            return None;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_commands_are_framed() {
        let cmd = b"*2\r\n$4\r\nINCR\r\n$3\r\nkey\r\n";
        assert_eq!(resp_command_len(cmd), Some(cmd.len()));
        assert_eq!(resp_command_len(&cmd[..cmd.len() - 1]), None);
        assert_eq!(resp_command_len(b"PING\r\n"), Some(6));
        let mut out = Vec::new();
        let mut two = cmd.to_vec();
        two.extend_from_slice(cmd);
        two.extend_from_slice(b"*1\r\n$4");
        assert_eq!(answer(&two, true, &mut out), cmd.len() * 2);
        assert_eq!(out, b":1\r\n:1\r\n");
    }

    #[test]
    fn lines_get_canned_replies() {
        let mut out = Vec::new();
        let used = answer(b"HELLO proto=1\nCHECKIN x\nCHECK", false, &mut out);
        assert_eq!(used, 24);
        assert_eq!(out, b"OK proto=1 lease_ms=60000\nOK\n");
    }
}
