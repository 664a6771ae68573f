//! A connection's outgoing bytes, in request order, some held back.
//!
//! A reply that reports a seat change (a grant, a checkin) may only leave
//! once the change is durable (journal fsync) and, with a standby in sync,
//! acknowledged by it. Such a reply is held, naming the journal sequence
//! number it waits for; everything after it waits too, so replies still
//! come back in order. Replies that can never be confirmed (the journal
//! failed, or the server stepped down before its standby acknowledged
//! them) leave through [`Output::settle`]: each new grant among them (whose
//! seat the server takes back) is replaced with the error it gets instead.

use crate::ledger::Name;
use std::collections::VecDeque;
use std::io::{self, Write};

/// Above this many unsent bytes the connection stops reading requests
/// (back-pressure on a client that pipelines without reading replies).
pub const HIGH_WATER: usize = 256 * 1024;

/// A held reply: where it ends in the held bytes, and what it waits for.
struct Mark {
    end: usize,
    wait_for: Option<u64>,
    /// A new grant's handle: taken back if the reply can never leave as is.
    grant: Option<Name>,
}

#[derive(Default)]
pub struct Output {
    /// Bytes that may be sent.
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already written to the socket.
    sent: usize,
    /// Held replies, back to back; `held_from` bytes at the front are out.
    held: Vec<u8>,
    held_from: usize,
    marks: VecDeque<Mark>,
}

impl Output {
    /// Appends a reply. It is held until `wait_for` is released, if given;
    /// `grant` names the handle of a new grant (see [`Output::fail`]).
    pub fn push(&mut self, reply: &[u8], wait_for: Option<u64>, grant: Option<Name>) {
        if self.marks.is_empty() && wait_for.is_none() {
            self.buf.extend_from_slice(reply);
            return;
        }
        self.held.extend_from_slice(reply);
        self.marks.push_back(Mark {
            end: self.held.len(),
            wait_for,
            grant,
        });
    }

    /// Releases every reply waiting for `seq` or less (and those behind).
    pub fn release(&mut self, seq: u64) {
        self.settle(seq, u64::MAX, |_| unreachable!("nothing fails"));
    }

    /// Releases replies waiting for `release` or less; those waiting for a
    /// record past `fail_after` can never be released as they are: each
    /// leaves now, except that a new grant's is replaced with what
    /// `take_back(handle)` returns (the server takes that seat back).
    /// Replies in between keep waiting, and so does everything behind them.
    pub fn settle(
        &mut self,
        release: u64,
        fail_after: u64,
        mut take_back: impl FnMut(&str) -> String,
    ) {
        let mut from = self.held_from;
        while let Some(m) = self.marks.front() {
            let wait = m.wait_for.unwrap_or(0);
            if wait <= release {
                self.buf.extend_from_slice(&self.held[from..m.end]);
            } else if wait > fail_after {
                match &m.grant {
                    Some(handle) => self.buf.extend_from_slice(take_back(handle).as_bytes()),
                    None => self.buf.extend_from_slice(&self.held[from..m.end]),
                }
            } else {
                break;
            }
            from = m.end;
            self.marks.pop_front();
        }
        self.held_from = from;
        if self.marks.is_empty() {
            self.held.clear();
            self.held_from = 0;
        }
    }

    /// True while some reply is held back.
    pub fn is_holding(&self) -> bool {
        !self.marks.is_empty()
    }

    /// Unsent bytes, held or not.
    pub fn pending(&self) -> usize {
        (self.buf.len() - self.sent) + (self.held.len() - self.held_from)
    }

    /// True when bytes are ready to be written now.
    pub fn has_sendable(&self) -> bool {
        self.buf.len() > self.sent
    }

    /// Writes what may be sent until the socket would block. Returns the
    /// bytes written; `WouldBlock` is not an error here.
    pub fn flush_to(&mut self, socket: &mut impl Write) -> io::Result<usize> {
        let mut written = 0;
        while self.sent < self.buf.len() {
            match socket.write(&self.buf[self.sent..]) {
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
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent > 16 * 1024 && self.sent * 2 > self.buf.len() {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
        Ok(written)
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

    fn sock() -> Narrow {
        Narrow {
            got: vec![],
            room: 1000,
        }
    }

    #[test]
    fn held_replies_and_everything_after_wait_for_their_barrier() {
        let mut out = Output::default();
        let mut sock = sock();
        out.push(b"a\n", None, None);
        out.push(b"b\n", Some(5), None);
        out.push(b"c\n", None, None);
        out.push(b"d\n", Some(7), None);
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
    fn a_failed_journal_lets_every_reply_out_and_takes_new_grants_back() {
        let mut out = Output::default();
        let mut sock = sock();
        out.push(b"OK handle=h1\n", Some(3), Some("h1".into()));
        out.push(b"OK lease_ms=5\n", None, None);
        out.push(b"OK\n", Some(4), None);
        let mut taken = Vec::new();
        out.settle(0, 0, |h| {
            taken.push(h.to_string());
            format!("ERR JOURNAL_FAILED {h}\n")
        });
        out.flush_to(&mut sock).unwrap();
        assert_eq!(taken, ["h1"]);
        assert_eq!(sock.got, b"ERR JOURNAL_FAILED h1\nOK lease_ms=5\nOK\n");
        assert!(!out.is_holding());
        out.push(b"e\n", None, None);
        out.flush_to(&mut sock).unwrap();
        assert!(sock.got.ends_with(b"OK\ne\n"));
    }

    #[test]
    fn settling_releases_what_is_confirmed_fails_what_never_can_be_and_waits_between() {
        let mut out = Output::default();
        let mut sock = sock();
        out.push(b"g5\n", Some(5), Some("h5".into()));
        out.push(b"g7\n", Some(7), Some("h7".into()));
        out.push(b"c9\n", Some(9), None);
        out.push(b"g9\n", Some(9), Some("h9".into()));
        // Durable to 6, acknowledged to 8: 7 waits for the disk; 9 never comes.
        out.settle(6, 8, |h| format!("ERR {h}\n"));
        out.flush_to(&mut sock).unwrap();
        assert_eq!(sock.got, b"g5\n");
        out.settle(8, 8, |h| format!("ERR {h}\n"));
        out.flush_to(&mut sock).unwrap();
        assert_eq!(sock.got, b"g5\ng7\nc9\nERR h9\n");
        assert!(!out.is_holding());
    }

    #[test]
    fn partial_writes_keep_the_tail() {
        let mut out = Output::default();
        let mut sock = Narrow {
            got: vec![],
            room: 3,
        };
        out.push(b"hello\n", None, None);
        assert_eq!(out.flush_to(&mut sock).unwrap(), 3);
        assert!(out.has_sendable());
        sock.room = 100;
        out.flush_to(&mut sock).unwrap();
        assert_eq!(sock.got, b"hello\n");
        assert!(!out.has_sendable());
    }
}
