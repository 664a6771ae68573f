//! A systemd notify socket of a test's own (`NOTIFY_SOCKET`), to read what
//! a server tells systemd: READY=1, WATCHDOG=1, STATUS=, STOPPING=1.

use std::cell::RefCell;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

pub struct NotifySocket {
    _dir: tempfile::TempDir,
    pub path: String,
    socket: UnixDatagram,
    /// The last `STATUS=` text read so far.
    last_status: RefCell<Option<String>>,
}

impl NotifySocket {
    pub fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        NotifySocket {
            path: path.display().to_string(),
            _dir: dir,
            socket,
            last_status: RefCell::new(None),
        }
    }

    /// Messages received until `done` says so over everything so far, or
    /// `within` passes (then it panics).
    pub fn until(
        &self,
        within: Duration,
        what: &str,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !done(&got) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {got:?}"
            );
            if let Ok(n) = self.socket.recv(&mut buf) {
                let message = String::from_utf8_lossy(&buf[..n]).to_string();
                self.note(&message);
                got.push(message);
            }
        }
        got
    }

    /// The last `STATUS=` text sent so far (reads what is waiting first).
    pub fn last_status(&self) -> Option<String> {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            self.note(&String::from_utf8_lossy(&buf[..n]));
        }
        self.socket.set_nonblocking(false).unwrap();
        self.last_status.borrow().clone()
    }

    fn note(&self, message: &str) {
        if let Some(status) = message.lines().find_map(|l| l.strip_prefix("STATUS=")) {
            *self.last_status.borrow_mut() = Some(status.to_string());
        }
    }
}

/// How many messages hold the line `needle`.
pub fn count(msgs: &[String], needle: &str) -> usize {
    msgs.iter()
        .filter(|m| m.lines().any(|l| l == needle))
        .count()
}
