//! Test harness: real `floatd` and `floatctl` processes on loopback.
//!
//! Every server is started on port 0 (the kernel picks a free port, which
//! the server prints), killed when its guard drops, and logs to a file in
//! the test's own temporary directory.
#![allow(dead_code)]

pub mod history;
pub mod notify;
pub mod proxy;
pub mod sdk;

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
    /// The vendor's secret key, for [`Site::resign`].
    pub vendor_key: PathBuf,
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
        let site = Site {
            licence: dir.path().join("site.lic"),
            vendor_pub: keys.join("vendor.pub"),
            vendor_key: keys.join("vendor.key"),
            dir,
        };
        site.resign(features);
        site
    }

    /// Rewrites the licence file with these FEATURE lines, signed again
    /// with the site's key (for rereads). The file is replaced atomically,
    /// so a server rereading meanwhile sees the old or the new one.
    pub fn resign(&self, features: &str) {
        let unsigned = self.path("site.unsigned");
        std::fs::write(
            &unsigned,
            format!("SERVER lic1 hostid=any port=27000\nFAILOVER lic2 hostid=any port=27001\n{features}\n"),
        )
        .unwrap();
        let out = floatctl(&[
            "sign",
            "--key",
            self.vendor_key.to_str().unwrap(),
            unsigned.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tmp = self.path("site.lic.tmp");
        std::fs::write(&tmp, &out.stdout).unwrap();
        std::fs::rename(&tmp, &self.licence).unwrap();
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
    /// Where it listens for the other server of its pair, if it has one.
    pub peer_addr: Option<String>,
    /// Where it serves the status page and metrics (`--http`), if it does.
    pub http_addr: Option<String>,
    pub log: PathBuf,
    stdout: mpsc::Receiver<String>,
}

impl Floatd {
    /// Starts `floatd` with `args` and waits until it listens.
    pub fn start(args: &[String], log: &Path) -> Floatd {
        let mut command = Command::new(FLOATD);
        command.args(args);
        Floatd::start_command(command, log)
    }

    /// Starts `floatd` with `args` and extra environment variables.
    pub fn start_with_env(args: &[String], log: &Path, env: &[(&str, &str)]) -> Floatd {
        let mut command = Command::new(FLOATD);
        command.args(args);
        for (k, v) in env {
            command.env(k, v);
        }
        Floatd::start_command(command, log)
    }

    /// Starts `floatd` with its open-file limit lowered to `nofile` (through
    /// `sh -c 'ulimit -n N; exec floatd ...'`, so the pid is floatd's).
    pub fn start_with_nofile(args: &[String], log: &Path, nofile: u32) -> Floatd {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(FLOATD)
            .args(args);
        Floatd::start_command(command, log)
    }

    /// Starts `floatd` with its file-size limit lowered to `kib` KiB and
    /// SIGXFSZ ignored, so a write past it fails (EFBIG) as on a full disk.
    pub fn start_with_file_limit(args: &[String], log: &Path, kib: u32) -> Floatd {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {kib} && exec \"$0\" \"$@\""
            ))
            .arg(FLOATD)
            .args(args);
        Floatd::start_command(command, log)
    }

    fn start_command(mut command: Command, log: &Path) -> Floatd {
        let log_file = std::fs::File::create(log).expect("log file");
        let mut child = command
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn floatd");
        let rx = lines_of(child.stdout.take().unwrap());
        let mut server = Floatd {
            child,
            addr: String::new(),
            peer_addr: None,
            http_addr: None,
            log: log.to_path_buf(),
            stdout: rx,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            match server.stdout.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("floatd peer link on ") {
                        server.peer_addr = Some(addr.trim().to_string());
                    }
                    if let Some(addr) = line.strip_prefix("floatd http on ") {
                        server.http_addr = Some(addr.trim().to_string());
                    }
                    let ready = line
                        .strip_prefix("floatd listening on ")
                        .or_else(|| line.strip_prefix("floatd witness on "));
                    if let Some(addr) = ready {
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

    /// Starts `floatd` expecting it to fail; returns its exit code and what
    /// it wrote on stderr (also kept in `log`).
    pub fn start_failing(args: &[String], log: &Path) -> (i32, String) {
        let out = Command::new(FLOATD)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn floatd");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let _ = std::fs::write(log, &stderr);
        (out.status.code().unwrap_or(-1), stderr)
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
        wait_exit(&mut self.child, within)
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
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A standalone server for a site with these FEATURE lines and extra flags.
pub fn serve(features: &str, extra: &[&str]) -> (Site, Floatd) {
    let site = Site::new(features);
    let mut args = site.server_args("state");
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Floatd::start(&args, &site.path("floatd.log"));
    (site, server)
}

/// A child's stdout, line by line, read on a thread of its own.
fn lines_of(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a child to exit, at most `within`; returns its exit code.
fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The public seat id status shows for a seat held under `handle`.
pub fn seat_of(handle: &str) -> String {
    floatd::ledger::seat_id(handle)
}

/// Seat ids a status report listed, asked about by handle.
#[derive(Debug)]
pub struct ListedSeats(pub std::collections::HashSet<String>);

impl ListedSeats {
    pub fn contains(&self, handle: &str) -> bool {
        self.0.contains(&seat_of(handle))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
    /// Connects and reads the greeting; `None` if the server is not there
    /// or closes at once.
    pub fn try_connect(addr: &str) -> Option<LineClient> {
        let stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(PATIENCE)).ok()?;
        let reader = BufReader::new(stream.try_clone().ok()?);
        let mut c = LineClient {
            stream,
            reader,
            greeting: String::new(),
        };
        c.greeting = c.read_line()?;
        Some(c)
    }

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

    /// Wraps a connected socket whose greeting is still unread.
    pub fn adopt(stream: TcpStream) -> LineClient {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        LineClient {
            stream,
            reader,
            greeting: String::new(),
        }
    }

    /// Connects and says HELLO as floatctl does by default (the same
    /// client id, user and host), so it may renew and return the seats a
    /// `floatctl checkout` of this test took.
    pub fn hello_as_floatctl(addr: &str) -> LineClient {
        let id = floatd::ctl::common::default_identity();
        let mut c = LineClient::connect(addr);
        let hello = floatd::protocol::Request::Hello {
            proto: 1,
            client: id.client,
            user: id.user,
            host: id.host,
        };
        let reply = c.ask(hello.to_line().trim_end());
        assert!(reply.starts_with("OK"), "HELLO: {reply}");
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

    /// Like `ask`, but `None` when the connection is gone.
    pub fn try_ask(&mut self, line: &str) -> Option<String> {
        use std::io::Write as _;
        self.stream.write_all(format!("{line}\n").as_bytes()).ok()?;
        self.read_line()
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

/// The body of `GET path` from a server's HTTP port (`--http`).
pub fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    match text.split_once("\r\n\r\n") {
        Some((_, body)) => body.to_string(),
        None => panic!("no complete response to GET {path}: {text:?}"),
    }
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
    feature_sum(addr, feature, "in_use")
}

/// A number of the server's status summed over the pools of `feature`
/// (`in_use`, `roaming`, ...).
pub fn feature_sum(addr: &str, feature: &str, key: &str) -> u64 {
    status_json(addr)["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == feature)
        .map(|f| f[key].as_u64().unwrap())
        .sum()
}

impl Floatd {
    /// The next line the server prints on stdout (after the "listening"
    /// line), if one comes within `within`.
    pub fn stdout_line(&self, within: Duration) -> Option<String> {
        self.stdout.recv_timeout(within).ok()
    }

    /// The state directory given with `--state-dir` in `args`.
    pub fn state_dir_of(args: &[String]) -> PathBuf {
        let i = args
            .iter()
            .position(|a| a == "--state-dir")
            .expect("--state-dir in args");
        PathBuf::from(&args[i + 1])
    }
}

/// The report log of a state directory (empty until written).
pub fn report_log(state_dir: &Path) -> String {
    std::fs::read_to_string(state_dir.join("report.log")).unwrap_or_default()
}

/// A loopback address nothing listens on (bound, then released).
pub fn dead_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

/// Raises this process's soft limit on open files to at least `want`
/// (up to the hard limit) with `prlimit`, since std has no setrlimit and
/// the tests use no unsafe code. Servers started afterwards inherit it.
/// Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    fn limits() -> (u64, u64) {
        let text = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
        let line = text
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("open files limit");
        let nums: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok().or((w == "unlimited").then_some(u64::MAX)))
            .collect();
        (nums[0], nums[1])
    }
    let (soft, hard) = limits();
    if soft >= want {
        return soft;
    }
    let target = want.min(hard);
    let _ = Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={target}:{hard}"),
        ])
        .status();
    limits().0
}

impl LineClient {
    /// The status report on this connection.
    pub fn status(&mut self) -> serde_json::Value {
        let reply = self.ask("STATUS");
        let json = reply
            .strip_prefix("STATUS ")
            .unwrap_or_else(|| panic!("STATUS reply: {reply}"));
        serde_json::from_str(json).expect("status JSON")
    }

    /// Reads lines until the server closes the connection (end of file or
    /// reset) or `within` passes. Returns the lines read, and whether the
    /// connection was closed.
    pub fn read_until_closed(&mut self, within: Duration) -> (Vec<String>, bool) {
        let deadline = Instant::now() + within;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (lines, false);
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return (lines, true),
                Ok(_) => lines.push(line.trim_end().to_string()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return (lines, false)
                }
                // Reset by the server: closed too.
                Err(_) => return (lines, true),
            }
        }
    }
}

/// Seats of `feature` in use, from a status report.
pub fn used(status: &serde_json::Value, feature: &str) -> u64 {
    feature_status(status, feature)
        .map(|f| f["in_use"].as_u64().unwrap())
        .unwrap_or(0)
}

/// A feature's entry in a status report (its first pool).
pub fn feature_status<'a>(
    status: &'a serde_json::Value,
    feature: &str,
) -> Option<&'a serde_json::Value> {
    status["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == feature)
}

/// A well-behaved client in a thread of its own: checkout, heartbeat,
/// checkin round trips against `feature`, over one connection, until
/// stopped. Robustness tests run one while they misbehave elsewhere and
/// check that it was served throughout.
pub struct GoodClient {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    rounds: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Total and worst round-trip time so far, in microseconds.
    latency_us: std::sync::Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
    thread: Option<std::thread::JoinHandle<Result<u64, String>>>,
}

impl GoodClient {
    /// Most rounds and longest run, so a forgotten client cannot spin forever.
    const MAX_ROUNDS: u64 = 1_000_000;
    const MAX_RUN: Duration = Duration::from_secs(180);

    pub fn start(addr: &str, feature: &str) -> GoodClient {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let mut client = LineClient::hello(addr, "good", "goodhost");
        let feature = feature.to_string();
        let latency_us = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let (stop2, rounds2, latency2) = (stop.clone(), rounds.clone(), latency_us.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut n = 0;
            while !stop2.load(Ordering::SeqCst)
                && n < Self::MAX_ROUNDS
                && started.elapsed() < Self::MAX_RUN
            {
                let round = Instant::now();
                let out = client.ask(&format!("CHECKOUT {feature}"));
                let handle =
                    field(&out, "handle").ok_or_else(|| format!("round {n}: checkout: {out}"))?;
                let hb = client.ask(&format!("HEARTBEAT {handle}"));
                if !hb.starts_with("OK lease_ms=") {
                    return Err(format!("round {n}: heartbeat: {hb}"));
                }
                let back = client.ask(&format!("CHECKIN {handle}"));
                if back != "OK" {
                    return Err(format!("round {n}: checkin: {back}"));
                }
                let us = round.elapsed().as_micros() as u64;
                latency2.0.fetch_add(us, Ordering::SeqCst);
                latency2.1.fetch_max(us, Ordering::SeqCst);
                n += 1;
                rounds2.store(n, Ordering::SeqCst);
            }
            Ok(n)
        });
        GoodClient {
            stop,
            rounds,
            latency_us,
            thread: Some(thread),
        }
    }

    /// Its round trips so far and their mean and worst latency, for test
    /// output (never asserted: timings are no pass/fail criterion).
    pub fn latency(&self) -> String {
        use std::sync::atomic::Ordering;
        let n = self.rounds().max(1);
        let total = self.latency_us.0.load(Ordering::SeqCst);
        let worst = self.latency_us.1.load(Ordering::SeqCst);
        format!(
            "good client: {} round trips (checkout, heartbeat, checkin), mean {:.2} ms, worst {:.2} ms",
            self.rounds(),
            total as f64 / n as f64 / 1000.0,
            worst as f64 / 1000.0
        )
    }

    /// Round trips completed so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until `more` further round trips have completed: proof that
    /// the client is being served now.
    pub fn wait_served(&self, more: u64, what: &str) {
        let from = self.rounds();
        wait_until(
            PATIENCE,
            &format!("the good client to be served {what}"),
            || {
                let finished = self.thread.as_ref().is_some_and(|t| t.is_finished());
                assert!(!finished, "the good client stopped {what}");
                self.rounds() >= from + more
            },
        );
    }

    /// Stops the client; panics unless every round trip succeeded.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let result = self
            .thread
            .take()
            .unwrap()
            .join()
            .expect("good client panicked");
        match result {
            Ok(n) => {
                assert!(n > 0, "the good client completed no round trip");
                n
            }
            Err(e) => panic!("the good client was not served: {e}"),
        }
    }
}

impl Drop for GoodClient {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A child process (e.g. `floatctl checkout --hold`) killed on drop, with
/// its stdout lines on a channel.
pub struct Spawned {
    pub child: Child,
    stdout: mpsc::Receiver<String>,
}

impl Spawned {
    /// Starts `floatctl` with `args`, stdout piped, stderr to `stderr_file`.
    pub fn floatctl(args: &[&str], stderr_file: &Path) -> Spawned {
        let mut child = Command::new(FLOATCTL)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr_file).expect("stderr file"))
            .spawn()
            .expect("spawn floatctl");
        let rx = lines_of(child.stdout.take().unwrap());
        Spawned { child, stdout: rx }
    }

    /// The next stdout line, waiting at most `within`.
    pub fn line(&self, within: Duration) -> Option<String> {
        self.stdout.recv_timeout(within).ok()
    }

    /// Waits for the exit code, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        wait_exit(&mut self.child, within)
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A primary and a backup serving one site, their peer links each through
/// a proxy the test controls. Servers can be killed and restarted on the
/// same ports and state directories.
pub struct Pair {
    pub site: Site,
    pub primary: Option<Floatd>,
    pub backup: Option<Floatd>,
    /// The backup's link to the primary's peer port.
    pub to_primary: proxy::Proxy,
    /// The primary's link to the backup's peer port.
    pub to_backup: proxy::Proxy,
    /// Extra flags for both servers (timings).
    pub flags: Vec<String>,
    /// Extra environment for one role's server: (role, name, value).
    pub env: Vec<(String, String, String)>,
    /// Witness mode: the witness and each server's link to it.
    pub witness: Option<Floatd>,
    pub primary_to_witness: Option<proxy::Proxy>,
    pub backup_to_witness: Option<proxy::Proxy>,
    witness_port: Option<String>,
    primary_ports: Option<(String, String)>,
    backup_ports: Option<(String, String)>,
    /// The backup dials the primary's peer port itself, not through
    /// `to_primary`: a dead primary's port then refuses, as on a network.
    pub backup_dials_primary_directly: bool,
    starts: usize,
    /// The primary's file-size limit in KiB, if lowered (a disk that fills).
    pub primary_file_limit_kib: Option<u32>,
}

/// Timings that keep failover tests short: takeover in 1 s.
pub const FAST: &[&str] = &[
    "--ping-interval",
    "100ms",
    "--takeover-after",
    "1s",
    "--sync-timeout",
    "250ms",
];

/// [`FAST`] for witness mode: grant lease 600 ms, seat lease 4 s.
pub const WITNESS_FAST: &[&str] = &[
    "--ping-interval",
    "100ms",
    "--takeover-after",
    "1s",
    "--sync-timeout",
    "250ms",
    "--fence-after",
    "600ms",
    "--lease",
    "4s",
];

/// [`FAST`] and `extra`.
pub fn fast_with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut f = FAST.to_vec();
    f.extend_from_slice(extra);
    f
}

/// A client library instance for `user` (client id, host named after
/// the user) with timeouts that fit the failover tests.
pub fn library_client(servers: &str, user: &str) -> floatd::client::Client {
    use floatd::client::{parse_server_list, Client, ClientConfig, Identity};
    let mut config = ClientConfig::new(
        parse_server_list(servers),
        Identity {
            client: format!("{user}-client"),
            user: user.to_string(),
            host: format!("{user}-host"),
        },
    );
    config.io_timeout = Duration::from_secs(2);
    config.failover_timeout = Duration::from_secs(20);
    Client::new(config)
}

/// Version 1.0, the version of the test licences' features.
pub fn v1() -> floatd::licence::Version {
    floatd::licence::Version::parse("1.0").unwrap()
}

impl Pair {
    /// Starts both servers (primary first) and waits until the backup is
    /// in sync.
    pub fn start(features: &str, flags: &[&str]) -> Pair {
        let mut pair = Pair::build(features, flags);
        pair.start_primary();
        pair.start_backup();
        pair.wait_states("active", "ready");
        pair
    }

    /// The pair's site, secret and proxies, no server started yet.
    pub fn build(features: &str, flags: &[&str]) -> Pair {
        let site = Site::new(features);
        std::fs::write(site.path("secret"), "test-secret-0123456789abcdef\n").unwrap();
        Pair {
            site,
            primary: None,
            backup: None,
            to_primary: proxy::Proxy::new(),
            to_backup: proxy::Proxy::new(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            witness: None,
            primary_to_witness: None,
            backup_to_witness: None,
            witness_port: None,
            primary_ports: None,
            backup_ports: None,
            backup_dials_primary_directly: false,
            starts: 0,
            primary_file_limit_kib: None,
        }
    }

    fn args(&self, role: &str, ports: &Option<(String, String)>, peer_proxy: &str) -> Vec<String> {
        let mut args = self.site.server_args(&format!("state-{role}"));
        let (client, peer) = ports
            .clone()
            .unwrap_or_else(|| ("0".to_string(), "127.0.0.1:0".to_string()));
        let at = args.iter().position(|a| a == "--port").unwrap();
        args[at + 1] = client;
        args.extend(
            [
                "--role",
                role,
                "--peer",
                peer_proxy,
                "--peer-listen",
                &peer,
                "--peer-secret-file",
                self.site.path("secret").to_str().unwrap(),
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        let witness_link = match role {
            "primary" => &self.primary_to_witness,
            _ => &self.backup_to_witness,
        };
        if let Some(w) = witness_link {
            args.extend(["--witness".to_string(), w.addr.clone()]);
        }
        args.extend(self.flags.iter().cloned());
        args
    }

    /// Starts the witness (on the same port when restarted), and puts a
    /// proxy on each server's link to it.
    pub fn start_witness(&mut self) {
        self.starts += 1;
        let listen = format!("127.0.0.1:{}", self.witness_port.as_deref().unwrap_or("0"));
        let mut args: Vec<String> = [
            "--role",
            "witness",
            "--peer-listen",
            &listen,
            "--peer-secret-file",
            self.site.path("secret").to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.flags.iter().cloned());
        let log = self.site.path(&format!("witness-{}.log", self.starts));
        let witness = Floatd::start(&args, &log);
        self.witness_port = Some(witness.addr.rsplit_once(':').unwrap().1.to_string());
        for link in [&mut self.primary_to_witness, &mut self.backup_to_witness] {
            link.get_or_insert_with(proxy::Proxy::new)
                .set_target(&witness.addr);
        }
        self.witness = Some(witness);
    }

    /// Witness mode: the witness, then the primary and the backup.
    pub fn start_with_witness(features: &str, flags: &[&str]) -> Pair {
        let mut pair = Pair::build(features, flags);
        pair.start_witness();
        pair.start_primary();
        pair.start_backup();
        pair.wait_states("active", "ready");
        pair
    }

    fn start_role(&mut self, role: &str) -> Floatd {
        self.starts += 1;
        let (ports, proxy) = match (role, &self.primary_ports) {
            ("primary", _) => (&self.primary_ports, self.to_backup.addr.clone()),
            (_, Some((_, peer))) if self.backup_dials_primary_directly => {
                (&self.backup_ports, peer.clone())
            }
            _ => (&self.backup_ports, self.to_primary.addr.clone()),
        };
        let args = self.args(role, ports, &proxy);
        let log = self.site.path(&format!("{role}-{}.log", self.starts));
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .filter(|(r, ..)| r == role)
            .map(|(_, k, v)| (k.as_str(), v.as_str()))
            .collect();
        let server = match (role, self.primary_file_limit_kib) {
            ("primary", Some(kib)) => Floatd::start_with_file_limit(&args, &log, kib),
            _ => Floatd::start_with_env(&args, &log, &env),
        };
        let peer = server
            .peer_addr
            .clone()
            .expect("a pair member prints its peer port");
        let port = server.addr.rsplit_once(':').unwrap().1.to_string();
        match role {
            "primary" => {
                self.to_primary.set_target(&peer);
                self.primary_ports = Some((port, peer));
            }
            _ => {
                self.to_backup.set_target(&peer);
                self.backup_ports = Some((port, peer));
            }
        }
        server
    }

    /// All server logs so far, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for i in 1..=self.starts {
            for role in ["primary", "backup", "witness"] {
                if let Ok(text) =
                    std::fs::read_to_string(self.site.path(&format!("{role}-{i}.log")))
                {
                    out.push_str(&format!("--- {role}-{i}.log\n{text}"));
                }
            }
        }
        out
    }

    pub fn start_primary(&mut self) {
        let p = self.start_role("primary");
        self.primary = Some(p);
    }

    pub fn start_backup(&mut self) {
        let b = self.start_role("backup");
        self.backup = Some(b);
    }

    pub fn primary_addr(&self) -> String {
        format!("127.0.0.1:{}", self.primary_ports.as_ref().unwrap().0)
    }

    pub fn backup_addr(&self) -> String {
        format!("127.0.0.1:{}", self.backup_ports.as_ref().unwrap().0)
    }

    /// Both client addresses, primary first (a client's server list).
    pub fn servers(&self) -> String {
        format!("{},{}", self.primary_addr(), self.backup_addr())
    }

    /// The state a server reports of itself ("inaccessible" if it does not answer).
    pub fn state_of(&self, addr: &str) -> String {
        server_state(addr)
    }

    /// Waits until the primary and the backup report these states.
    pub fn wait_states(&self, primary: &str, backup: &str) {
        let (p, b) = (self.primary_addr(), self.backup_addr());
        let deadline = Instant::now() + PATIENCE;
        while !(server_state(&p) == primary && server_state(&b) == backup) {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for primary {primary} and backup {backup} (they are {} and {}):\n{}",
                    server_state(&p),
                    server_state(&b),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// A server's own state from its greeting, or "inaccessible".
pub fn server_state(addr: &str) -> String {
    let Ok(stream) = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(500))
    else {
        return "inaccessible".into();
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut line = String::new();
    if BufReader::new(stream).read_line(&mut line).is_err() {
        return "inaccessible".into();
    }
    field(&line, "state").unwrap_or_else(|| "inaccessible".into())
}
