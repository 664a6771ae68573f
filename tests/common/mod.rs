//! Test harness: real `floatd` and `floatctl` processes on loopback.
//!
//! Every server is started on port 0 (the kernel picks a free port, which
//! the server prints), killed when its guard drops, and logs to a file in
//! the test's own temporary directory.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const FLOATD: &str = env!("CARGO_BIN_EXE_floatd");
pub const FLOATCTL: &str = env!("CARGO_BIN_EXE_floatctl");

/// Generous bound for anything a loaded 2-core machine must manage.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `condition` until it holds or `within` passes.
pub fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A vendor key pair and a licence signed with it, in a temp directory.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub licence: PathBuf,
    pub vendor_pub: PathBuf,
}

impl Site {
    /// Signs a licence with `hostid=any` SERVER (and FAILOVER) lines and
    /// the given FEATURE lines (without signatures).
    pub fn new(features: &str) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let out = floatctl(&["keygen", "--out", keys.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let unsigned = dir.path().join("site.unsigned");
        std::fs::write(
            &unsigned,
            format!("SERVER lic1 hostid=any port=27000\nFAILOVER lic2 hostid=any port=27001\n{features}\n"),
        )
        .unwrap();
        let out = floatctl(&[
            "sign",
            "--key",
            keys.join("vendor.key").to_str().unwrap(),
            unsigned.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let licence = dir.path().join("site.lic");
        std::fs::write(&licence, &out.stdout).unwrap();
        Site {
            licence,
            vendor_pub: keys.join("vendor.pub"),
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The arguments that make a server serve this site from `state`.
    pub fn server_args(&self, state: &str) -> Vec<String> {
        vec![
            "--license".into(),
            self.licence.display().to_string(),
            "--vendor-key".into(),
            self.vendor_pub.display().to_string(),
            "--state-dir".into(),
            self.path(state).display().to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            "0".into(),
        ]
    }
}

/// A running `floatd`, killed on drop.
pub struct Floatd {
    pub child: Child,
    /// Where it listens for clients.
    pub addr: String,
    pub log: PathBuf,
    stdout: mpsc::Receiver<String>,
}

impl Floatd {
    /// Starts `floatd` with `args` and waits until it listens.
    pub fn start(args: &[String], log: &Path) -> Floatd {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(FLOATD)
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn floatd");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Floatd {
            child,
            addr: String::new(),
            log: log.to_path_buf(),
            stdout: rx,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            match server.stdout.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("floatd listening on ") {
                        server.addr = addr.trim().to_string();
                        return server;
                    }
                }
                Err(_) => {
                    if let Ok(Some(status)) = server.child.try_wait() {
                        panic!(
                            "floatd exited ({status}) before listening:\n{}",
                            server.log_text()
                        );
                    }
                    if Instant::now() > deadline {
                        panic!("floatd did not start listening:\n{}", server.log_text());
                    }
                }
            }
        }
    }

    /// Starts `floatd` expecting it to fail; returns its exit code and log.
    pub fn start_failing(args: &[String], log: &Path) -> (i32, String) {
        let out = Command::new(FLOATD)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn floatd");
        let _ = log;
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Floatd {
    fn drop(&mut self) {
        // A frozen process cannot die until it is thawed.
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `floatctl` to completion.
pub fn floatctl(args: &[&str]) -> Output {
    Command::new(FLOATCTL)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run floatctl")
}

/// A hand-driven protocol connection, for tests that speak the wire format.
pub struct LineClient {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    pub greeting: String,
}

impl LineClient {
    pub fn connect(addr: &str) -> LineClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = LineClient {
            stream,
            reader,
            greeting: String::new(),
        };
        c.greeting = c.read_line().expect("greeting");
        c
    }

    /// Connects and says HELLO as `user` on `host`.
    pub fn hello(addr: &str, user: &str, host: &str) -> LineClient {
        let mut c = LineClient::connect(addr);
        let reply = c.ask(&format!(
            "HELLO proto=1 client={user}-client user={user} host={host}"
        ));
        assert!(reply.starts_with("OK"), "HELLO: {reply}");
        c
    }

    pub fn send(&mut self, line: &str) {
        self.stream.write_all(line.as_bytes()).unwrap();
        self.stream.write_all(b"\n").unwrap();
    }

    /// Reads one line; `None` when the server closed the connection.
    pub fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_string()),
        }
    }

    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.read_line()
            .unwrap_or_else(|| panic!("connection closed after {line:?}"))
    }

    /// Checks out one seat; returns the handle, or the error line.
    pub fn checkout(&mut self, feature: &str) -> Result<String, String> {
        let reply = self.ask(&format!("CHECKOUT {feature}"));
        field(&reply, "handle").ok_or(reply)
    }

    /// True once the server has closed this connection.
    pub fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// The value of `key=` in a reply line (unquoted values only).
pub fn field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|t| t.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"').to_string())
}

/// The status report as JSON, from `floatctl status --json`.
pub fn status_json(addr: &str) -> serde_json::Value {
    let out = floatctl(&["status", "--json", "--server", addr]);
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// Seats of `feature` in use, by the server's status.
pub fn in_use(addr: &str, feature: &str) -> u64 {
    status_json(addr)["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == feature)
        .map(|f| f["in_use"].as_u64().unwrap())
        .sum()
}
