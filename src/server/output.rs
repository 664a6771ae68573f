//! A connection's outgoing bytes, in request order, some held back.
//!
//! A reply that reports a seat change (a grant, a checkin) may only leave
//! once the change is durable (journal fsync) and, with a standby in sync,
//! acknowledged by it. Such a reply is pushed behind a barrier naming the
//! journal sequence number it waits for; everything after it waits too, so
//! replies still come back in order.

use std::collections::VecDeque;
use std::io::{self, Write};

/// Above this many unsent bytes the connection stops reading requests
/// (back-pressure on a client that pipelines without reading replies).
pub const HIGH_WATER: usize = 256 * 1024;

#[derive(Default)]
pub struct Output {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already written to the socket.
    sent: usize,
    /// (sequence number, offset in `buf`) of each held reply, in order.
    held: VecDeque<(u64, usize)>,
}

impl Output {
    /// Appends a reply, held until `wait_for` is released if given.
    pub fn push(&mut self, reply: &[u8], wait_for: Option<u64>) {
        if let Some(seq) = wait_for {
            match self.held.back() {
                // A later barrier that waits for no more than one already
                // queued adds nothing: the earlier one holds this reply too.
                Some(&(last, _)) if last >= seq => {}
                _ => self.held.push_back((seq, self.buf.len())),
            }
        }
        self.buf.extend_from_slice(reply);
    }

    /// Releases every reply waiting for `seq` or less.
    pub fn release(&mut self, seq: u64) {
        while self.held.front().is_some_and(|&(s, _)| s <= seq) {
            self.held.pop_front();
        }
    }

    /// True while some reply is held back.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Unsent bytes, held or not.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// True when bytes are ready to be written now.
    pub fn has_sendable(&self) -> bool {
        self.sendable_end() > self.sent
    }

    fn sendable_end(&self) -> usize {
        self.held.front().map_or(self.buf.len(), |&(_, at)| at)
    }

    /// Writes what may be sent until the socket would block. Returns the
    /// bytes written; `WouldBlock` is not an error here.
    pub fn flush_to(&mut self, socket: &mut impl Write) -> io::Result<usize> {
        let mut written = 0;
        while self.sent < self.sendable_end() {
            match socket.write(&self.buf[self.sent..self.sendable_end()]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    written += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.compact();
        Ok(written)
    }

    /// Drops written bytes from the front once they are worth moving.
    fn compact(&mut self) {
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
            self.held.clear();
        } else if self.sent > 16 * 1024 && self.sent * 2 > self.buf.len() {
            self.buf.drain(..self.sent);
            for h in &mut self.held {
                h.1 -= self.sent;
            }
            self.sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that accepts at most `room` bytes, then would block.
    struct Narrow {
        got: Vec<u8>,
        room: usize,
    }
    impl Write for Narrow {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = b.len().min(self.room);
            self.room -= n;
            self.got.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn held_replies_and_everything_after_wait_for_their_barrier() {
        let mut out = Output::default();
        let mut sock = Narrow {
            got: vec![],
            room: 1000,
        };
        out.push(b"a\n", None);
        out.push(b"b\n", Some(5));
        out.push(b"c\n", None);
        out.push(b"d\n", Some(7));
        out.flush_to(&mut sock).unwrap();
        assert_eq!(sock.got, b"a\n");
        out.release(6);
        out.flush_to(&mut sock).unwrap();
        assert_eq!(sock.got, b"a\nb\nc\n");
        assert!(out.is_holding());
        out.release(7);
        out.flush_to(&mut sock).unwrap();
        assert_eq!(sock.got, b"a\nb\nc\nd\n");
        assert_eq!(out.pending(), 0);
        assert!(!out.is_holding());
    }

    #[test]
    fn partial_writes_keep_the_tail() {
        let mut out = Output::default();
        let mut sock = Narrow {
            got: vec![],
            room: 3,
        };
        out.push(b"hello\n", None);
        assert_eq!(out.flush_to(&mut sock).unwrap(), 3);
        assert!(out.has_sendable());
        sock.room = 100;
        out.flush_to(&mut sock).unwrap();
        assert_eq!(sock.got, b"hello\n");
        assert!(!out.has_sendable());
    }
}
