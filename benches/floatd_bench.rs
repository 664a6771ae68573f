//! `cargo bench --bench floatd_bench` (`make bench`): the figures of
//! DESIGN.md's "Figures we aim for", measured on loopback, printed as one
//! table (also written to target/floatd-bench.md).
//!
//! It starts floatd itself (the binaries cargo built for this bench: the
//! `bench` profile inherits `release`, so they are the optimised, stripped
//! target/release products; checked below), with a temporary licence signed
//! by a throwaway key, and drives it with `floatd-load`, which also reports
//! the server's CPU per request (/proc/PID/stat over the run). Where
//! redis-server and redis-benchmark are installed it runs
//! `redis-benchmark -t incr` at the same client counts in the same run,
//! against a redis without persistence and one with `appendfsync always`
//! (an fsync per write, like floatd's journal), and both clients against a
//! null server, so the floatd/redis ratio measures servers, not clients.
//! Where etcd is installed, its leader-kill gap goes beside floatd's
//! failover gap (floatd_bench/etcd.rs).
//!
//! Bounded: every child has a deadline; about four minutes in all. `FLOATD_BENCH_SECS` sets the seconds per load run (default 4),
//! `FLOATD_BENCH_REPEAT` the runs per row (default 2: the best is kept,
//! floatd and redis taking turns, so a burst of other work on a shared
//! machine does not decide a row). `FLOATD_BENCH_FLOATD=/path/to/floatd`
//! measures another server build with the same table (an A/B of a change,
//! or a branch with features this one lacks).

#[path = "floatd_bench/etcd.rs"]
mod etcd;

use floatd::load::Report;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const FLOATD_BUILT: &str = env!("CARGO_BIN_EXE_floatd");
const FLOATCTL: &str = env!("CARGO_BIN_EXE_floatctl");
const LOAD: &str = env!("CARGO_BIN_EXE_floatd-load");

/// The server measured: this build's, or `FLOATD_BENCH_FLOATD` (to run
/// the same table against another build, e.g. an A/B of a change).
fn floatd_binary() -> String {
    std::env::var("FLOATD_BENCH_FLOATD").unwrap_or_else(|_| FLOATD_BUILT.to_string())
}

/// Seats in the bench licence: enough for 10,000 holders and 1,024 x 16.
const SEATS: u64 = 1_000_000;

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` (make test)
    // runs this binary too, without it: measure nothing there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("floatd bench: not run (use cargo bench --bench floatd_bench)");
        return;
    }
    let began = Instant::now();
    let secs: f64 = std::env::var("FLOATD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let repeat: usize = std::env::var("FLOATD_BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
        .max(1);
    let mut table = Table::default();
    let floatd = floatd_binary();
    eprintln!("floatd bench: binaries {floatd}, {LOAD}");
    eprintln!("floatd bench: load average {}", loadavg());
    if !floatd.contains("/release/") {
        eprintln!("floatd bench: WARNING: {floatd} is not a release build");
    }
    let site = Site::new(1, SEATS);
    table.fsync = fsync_latency(site.dir.path());

    // redis-server, when installed, runs beside: each of its rows right
    // after floatd's at the same client count, so both see the same noise.
    let redis = Redis::start(None);
    if redis.is_none() {
        eprintln!("floatd bench: redis-server/redis-benchmark not installed: no redis column");
    }
    let aof_dir = site.dir.path().join("redis-aof");
    let _ = std::fs::create_dir(&aof_dir);
    let redis_always = redis.as_ref().and_then(|_| Redis::start(Some(&aof_dir)));

    // Throughput and latency: a server with journal fsync (the default) and
    // one with `--durability none`, side by side; for each row floatd
    // fsync, redis and floatd none take turns, so all three see the same
    // machine.
    let fsync_server = Floatd::start(&site, &["--durability", "fsync"], "tput-fsync");
    let none_server = Floatd::start(&site, &["--durability", "none"], "tput-none");
    table.idle_rss = floatd::load::procfs::memory(fsync_server.pid()).map(|m| m.rss_kib);
    let run = |addr: &str, clients: usize, pipeline: usize, what: &str| {
        let r = load(
            addr,
            &[
                "--clients",
                &clients.to_string(),
                "--threads",
                "1",
                "--pipeline",
                &pipeline.to_string(),
                "--duration",
                &secs.to_string(),
            ],
            secs,
        );
        eprintln!(
            "floatd bench: {clients} x {pipeline} {what}: {}",
            summary(&r)
        );
        r
    };
    let mut none_rows = Vec::new();
    for (clients, pipeline) in [(1, 1), (64, 1), (1024, 1), (64, 16)] {
        let (mut fsync, mut none, mut theirs, mut always) = (None, None, None, None);
        for _ in 0..repeat {
            fsync = best_report(fsync, run(&fsync_server.addr, clients, pipeline, "fsync"));
            if let Some(redis) = &redis {
                let b = redis.benchmark(redis.port, clients, pipeline, secs);
                eprintln!("floatd bench: redis-benchmark -c {clients} -P {pipeline}: {b:?}");
                theirs = best_bench(theirs, b);
            }
            if let Some(redis) = &redis_always {
                let b = redis.benchmark(redis.port, clients, pipeline, secs);
                eprintln!(
                    "floatd bench: redis-benchmark -c {clients} -P {pipeline}, appendfsync always: {b:?}"
                );
                always = best_bench(always, b);
            }
            none = best_report(none, run(&none_server.addr, clients, pipeline, "none"));
        }
        table.load_rows.push(LoadRow {
            label: row_label(clients, pipeline, "fsync"),
            pipeline,
            durability: "fsync",
            floatd: fsync,
            redis: theirs.clone(),
            redis_always: always,
        });
        none_rows.push(LoadRow {
            label: row_label(clients, pipeline, "none"),
            pipeline,
            durability: "none",
            floatd: none,
            redis: theirs,
            redis_always: None,
        });
    }
    table.load_rows.extend(none_rows);
    // p99 at half of the best unpipelined throughput, 64 clients.
    for (durability, server) in [("fsync", &fsync_server), ("none", &none_server)] {
        let peak = table
            .load_rows
            .iter()
            .filter(|r| r.durability == durability && r.pipeline == 1)
            .filter_map(|r| r.floatd.as_ref().map(|f| f.ops_per_sec))
            .fold(0.0f64, f64::max);
        if peak <= 0.0 {
            continue;
        }
        let rate = (peak / 2.0).round();
        let r = load(
            &server.addr,
            &[
                "--clients",
                "64",
                "--threads",
                "1",
                "--rate",
                &rate.to_string(),
                "--duration",
                &secs.to_string(),
            ],
            secs,
        );
        eprintln!(
            "floatd bench: half peak ({rate} req/s, {durability}): {}",
            summary(&r)
        );
        table.half_peak.push((durability, rate, r));
    }
    drop(fsync_server);
    drop(none_server);

    // The client check: both clients against servers that do no work.
    if let Some(redis) = &redis {
        table.redis_version = redis.version.clone();
        // Client cost: both clients against servers that do no work.
        let null_lines = NullServer::start(false);
        let null_resp = NullServer::start(true);
        for (clients, pipeline) in [(64, 1), (64, 16)] {
            let (mut ours, mut theirs) = (None, None);
            for _ in 0..repeat {
                let r = null_lines.as_ref().and_then(|n| {
                    load(
                        &n.addr,
                        &[
                            "--clients",
                            &clients.to_string(),
                            "--threads",
                            "1",
                            "--pipeline",
                            &pipeline.to_string(),
                            "--duration",
                            &secs.to_string(),
                            "--feature",
                            "f",
                        ],
                        secs,
                    )
                });
                ours = best_report(ours, r);
                let b = null_resp
                    .as_ref()
                    .and_then(|n| redis.benchmark(n.port, clients, pipeline, secs));
                theirs = best_bench(theirs, b);
            }
            table.client_rows.push((clients, pipeline, ours, theirs));
        }
    }
    drop(redis);
    drop(redis_always);

    // Memory with 10,000 clients holding seats.
    {
        let server = Floatd::start(&site, &[], "hold");
        let pid = server.pid().to_string();
        let r = load(
            &server.addr,
            &[
                "--clients",
                "10000",
                "--threads",
                "2",
                "--mix",
                "hold",
                "--duration",
                "8",
                "--server-pid",
                &pid,
            ],
            8.0,
        );
        eprintln!("floatd bench: 10,000 holders: {}", summary(&r));
        table.holders = r;
    }

    // Start-up with a 1,000-feature licence file.
    {
        let big = Site::new(1000, 10);
        let mut times = Vec::new();
        for i in 0..5 {
            let t = Instant::now();
            let server = Floatd::start(&big, &[], &format!("startup{i}"));
            times.push(t.elapsed());
            drop(server);
        }
        times.sort();
        table.startup = Some((times[times.len() / 2], times[0]));
    }

    table.binary = binary_size(Path::new(&floatd));
    table.failover = Some(failover_gap(&site, secs));
    if let Some(Err(why)) = &table.failover {
        eprintln!("floatd bench: failover gap: {why}");
    }
    let etcd = etcd::leader_kill_gap(site.dir.path(), free_port);
    if let Err(why) = &etcd {
        eprintln!("floatd bench: etcd: {why}");
    }
    table.etcd = Some(etcd);

    let text = table.render(began.elapsed());
    println!("{text}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/floatd-bench.md");
    let _ = std::fs::write(&out, &text);
    eprintln!(
        "floatd bench: done in {:.0} s (table also in {})",
        began.elapsed().as_secs_f64(),
        out.display()
    );
}

/// The better of two runs (more requests answered per second).
fn best_report(a: Option<Report>, b: Option<Report>) -> Option<Report> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.ops_per_sec > a.ops_per_sec { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn best_bench(a: Option<Bench>, b: Option<Bench>) -> Option<Bench> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.rps > a.rps { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// p50 and p99 of `fdatasync` after a 200-byte append, in the directory
/// the servers' journals live in: what every unpipelined grant waits for.
fn fsync_latency(dir: &Path) -> Option<(Duration, Duration)> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let mut times = Vec::new();
    for _ in 0..200 {
        file.write_all(&[b'x'; 200]).ok()?;
        let t = Instant::now();
        file.sync_data().ok()?;
        times.push(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    times.sort();
    Some((times[100], times[198]))
}

fn row_label(clients: usize, pipeline: usize, durability: &str) -> String {
    let base = if pipeline > 1 {
        format!("checkout+checkin, {clients} clients pipelined {pipeline} deep")
    } else if clients == 1 {
        "checkout+checkin, 1 client".to_string()
    } else {
        format!("checkout+checkin, {} clients", thousands(clients as f64))
    };
    if durability == "none" {
        format!("{base}, `--durability none`")
    } else {
        base
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// A throwaway vendor key and a licence signed with it.
struct Site {
    dir: tempfile::TempDir,
    licence: PathBuf,
    vendor_pub: PathBuf,
}

impl Site {
    /// `features` FEATURE lines (f0, f1, ... or just `cad` for one) of `seats` each.
    fn new(features: usize, seats: u64) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        run_ok(Command::new(FLOATCTL).args(["keygen", "--out", keys.to_str().unwrap()]));
        let mut text = String::from(
            "SERVER lic1 hostid=any port=27000\nFAILOVER lic2 hostid=any port=27001\n",
        );
        if features == 1 {
            text.push_str(&format!(
                "FEATURE cad version=2.0 count={seats} expires=permanent\n"
            ));
        } else {
            for i in 0..features {
                text.push_str(&format!(
                    "FEATURE f{i} version=1.0 count={seats} expires=2099-12-31 customer=\"Bench Ltd\"\n"
                ));
            }
        }
        let unsigned = dir.path().join("site.unsigned");
        std::fs::write(&unsigned, text).unwrap();
        let signed = run_ok(Command::new(FLOATCTL).args([
            "sign",
            "--key",
            keys.join("vendor.key").to_str().unwrap(),
            unsigned.to_str().unwrap(),
        ]));
        let licence = dir.path().join("site.lic");
        std::fs::write(&licence, signed).unwrap();
        Site {
            licence,
            vendor_pub: keys.join("vendor.pub"),
            dir,
        }
    }
}

fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A floatd child, killed on drop.
struct Floatd {
    child: Child,
    addr: String,
}

impl Floatd {
    fn start(site: &Site, extra: &[&str], state: &str) -> Floatd {
        let state = site.dir.path().join(format!("state-{state}"));
        let _ = std::fs::remove_dir_all(&state);
        let mut cmd = Command::new(floatd_binary());
        cmd.args(["--license", site.licence.to_str().unwrap()])
            .args(["--vendor-key", site.vendor_pub.to_str().unwrap()])
            .args(["--state-dir", state.to_str().unwrap()])
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(extra);
        Floatd::spawn(cmd, Duration::from_secs(20)).expect("floatd starts")
    }

    fn spawn(mut cmd: Command, within: Duration) -> Result<Floatd, String> {
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
        let addr = wait_for_line(&mut child, "floatd listening on ", within);
        match addr {
            Some(addr) => Ok(Floatd { child, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("{cmd:?} did not start listening"))
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Floatd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's stdout until a line starting with `prefix`; returns
/// the rest of it. Keeps draining stdout afterwards in the background.
fn wait_for_line(child: &mut Child, prefix: &str, within: Duration) -> Option<String> {
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Some(rest.trim().to_string());
                }
            }
            Err(_) => return None,
        }
    }
}

/// Runs floatd-load with `--json` against `addr`; `None` when it failed.
fn load(addr: &str, args: &[&str], secs: f64) -> Option<Report> {
    let mut cmd = Command::new(LOAD);
    cmd.args(["--server", addr, "--json", "--quiet"]).args(args);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let out = wait_output(child, Duration::from_secs_f64(secs + 30.0))?;
    match serde_json::from_slice::<Report>(&out) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("floatd bench: floatd-load {args:?}: {e}");
            None
        }
    }
}

/// The child's stdout, or `None` (child killed) past `within`.
fn wait_output(mut child: Child, within: Duration) -> Option<Vec<u8>> {
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return reader.join().ok();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("floatd bench: a child ran past its deadline and was killed");
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn summary(r: &Option<Report>) -> String {
    match r {
        Some(r) => format!(
            "{:.0} req/s, p50 {} p99 {}, errors {}, seats held {}",
            r.ops_per_sec,
            ms(r.latency_us.p50),
            ms(r.latency_us.p99),
            r.errors_total,
            r.seats_held
        ),
        None => "failed".into(),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A redis-server on a free loopback port: without persistence, or with
/// its append-only file fsynced before every reply (`appendfsync always`,
/// in `aof_dir`), the durability floatd's journal gives.
struct Redis {
    child: Child,
    port: u16,
    version: String,
    fsync_always: bool,
}

impl Redis {
    fn start(aof_dir: Option<&Path>) -> Option<Redis> {
        let version = Command::new("redis-server")
            .arg("--version")
            .output()
            .ok()?;
        Command::new("redis-benchmark")
            .arg("--version")
            .output()
            .ok()?;
        let version = String::from_utf8_lossy(&version.stdout)
            .split_whitespace()
            .find_map(|w| w.strip_prefix("v=").map(str::to_string))
            .unwrap_or_default();
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--maxclients", "10000"]);
        match aof_dir {
            None => cmd.args(["--appendonly", "no"]),
            Some(dir) => cmd
                .args(["--appendonly", "yes", "--appendfsync", "always"])
                .arg("--dir")
                .arg(dir),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let redis = Redis {
            child,
            port,
            version,
            fsync_always: aof_dir.is_some(),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    /// `redis-benchmark -t incr` against `port`: requests per second and
    /// latency (ms): p50, p99.
    fn benchmark(&self, port: u16, clients: usize, pipeline: usize, secs: f64) -> Option<Bench> {
        // redis-benchmark counts requests, not time: size -n to the row
        // (an fsync per write is slower: a few thousand a second alone).
        let per_sec = match (clients, pipeline, self.fsync_always) {
            (1, 1, true) => 3_000.0,
            (_, 1, true) => 25_000.0,
            (_, _, true) => 150_000.0,
            (1, 1, false) => 25_000.0,
            (_, 1, false) => 60_000.0,
            _ => 400_000.0,
        };
        let n = ((per_sec * secs) as u64).max(10_000);
        let child = Command::new("redis-benchmark")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "incr",
                "--csv",
            ])
            .args(["-c", &clients.to_string(), "-P", &pipeline.to_string()])
            .args(["-n", &n.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let out = wait_output(child, Duration::from_secs_f64(secs * 4.0 + 20.0))?;
        let text = String::from_utf8_lossy(&out);
        let line = text.lines().find(|l| l.starts_with("\"INCR\""))?;
        let cols: Vec<f64> = line
            .split(',')
            .skip(1)
            .filter_map(|c| c.trim_matches('"').parse().ok())
            .collect();
        // "test","rps","avg","min","p50","p95","p99","max"
        Some(Bench {
            rps: *cols.first()?,
            p50_ms: *cols.get(3)?,
            p99_ms: *cols.get(5)?,
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Debug)]
struct Bench {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `floatd-load --null-server` on a free port.
struct NullServer {
    child: Child,
    addr: String,
    port: u16,
}

impl NullServer {
    fn start(resp: bool) -> Option<NullServer> {
        let mut cmd = Command::new(LOAD);
        cmd.args(["--null-server", "127.0.0.1:0", "--duration", "120"]);
        if resp {
            cmd.arg("--resp");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let addr = wait_for_line(
            &mut child,
            "null server listening on ",
            Duration::from_secs(5),
        )?;
        let port = addr.rsplit_once(':')?.1.parse().ok()?;
        Some(NullServer { child, addr, port })
    }
}

impl Drop for NullServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Size of the binary, and whether it is stripped (no `.symtab`).
fn binary_size(path: &Path) -> Option<(u64, bool)> {
    let bytes = std::fs::read(path).ok()?;
    let stripped = !bytes.windows(7).any(|w| w == b".symtab");
    Some((bytes.len() as u64, stripped))
}

/// FAILOVER GAP: primary + backup with default timings, 64 clients
/// holding seats (both servers listed), the primary killed with SIGKILL two
/// seconds in; floatd-load reports the gap the worst client saw, seats
/// reclaimed, lost and over-granted. `Err` says why not: the pair did not
/// start, or this build has no failover (its backup then greets as an
/// active server of its own, so there is nothing to measure).
fn failover_gap(site: &Site, secs: f64) -> Result<Report, String> {
    let secret = site.dir.path().join("peer.secret");
    std::fs::write(&secret, "bench-peer-secret-0123456789abcdef\n").map_err(|e| e.to_string())?;
    let (p_client, p_peer, b_client, b_peer) = (free_port(), free_port(), free_port(), free_port());
    let start = |role: &str, client: u16, peer_listen: u16, peer: u16, state: &str| {
        let state = site.dir.path().join(state);
        let mut cmd = Command::new(floatd_binary());
        cmd.args(["--license", site.licence.to_str().unwrap()])
            .args(["--vendor-key", site.vendor_pub.to_str().unwrap()])
            .args(["--state-dir", state.to_str().unwrap()])
            .args(["--bind", "127.0.0.1", "--port", &client.to_string()])
            .args(["--role", role])
            .args(["--peer", &format!("127.0.0.1:{peer}")])
            .args(["--peer-listen", &format!("127.0.0.1:{peer_listen}")])
            .args(["--peer-secret-file", secret.to_str().unwrap()]);
        Floatd::spawn(cmd, Duration::from_secs(10))
    };
    let primary = start("primary", p_client, p_peer, b_peer, "fo-primary")
        .map_err(|e| format!("the primary did not start: {e}"))?;
    let backup = start("backup", b_client, b_peer, p_peer, "fo-backup")
        .map_err(|e| format!("the backup did not start: {e}"))?;
    // Give the pair a moment to find each other, then look at the backup.
    std::thread::sleep(Duration::from_secs(2));
    let greeting = greeting_of(&backup.addr).ok_or("the backup did not greet")?;
    if greeting.contains(" state=active") {
        return Err("failover not built".into());
    }
    let pid = primary.pid().to_string();
    let duration = (secs * 2.0).max(10.0);
    load(
        &format!("{},{}", primary.addr, backup.addr),
        &[
            "--clients",
            "64",
            "--threads",
            "1",
            "--mix",
            "hold",
            "--heartbeat-every",
            "1s",
            "--duration",
            &duration.to_string(),
            "--kill-primary-after",
            "2",
            "--primary-pid",
            &pid,
        ],
        duration,
    )
    .ok_or_else(|| "floatd-load failed".to_string())
}

/// The greeting line a server sends on connect.
fn greeting_of(addr: &str) -> Option<String> {
    let stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line.trim_end().to_string())
}

#[derive(Default)]
struct Table {
    load_rows: Vec<LoadRow>,
    half_peak: Vec<(&'static str, f64, Option<Report>)>,
    client_rows: Vec<(usize, usize, Option<Report>, Option<Bench>)>,
    redis_version: String,
    idle_rss: Option<u64>,
    holders: Option<Report>,
    startup: Option<(Duration, Duration)>,
    binary: Option<(u64, bool)>,
    failover: Option<Result<Report, String>>,
    etcd: Option<Result<etcd::Gap, String>>,
    fsync: Option<(Duration, Duration)>,
}

struct LoadRow {
    label: String,
    pipeline: usize,
    durability: &'static str,
    floatd: Option<Report>,
    redis: Option<Bench>,
    redis_always: Option<Bench>,
}

fn thousands(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl Table {
    fn render(&self, took: Duration) -> String {
        let mut s = String::new();
        // Rows name as many columns as they fill; the rest are "-".
        let mut row = |cols: &[&str]| {
            let mut all: Vec<&str> = cols.to_vec();
            all.resize(7, "-");
            s.push_str(&format!("| {} |\n", all.join(" | ")));
        };
        row(&[
            "figure",
            "floatd",
            "target",
            "redis, no persistence",
            "redis, `appendfsync always`",
            "floatd / redis none",
            "floatd / redis always",
        ]);
        row(&["---"; 7]);
        let redis_cell = |b: &Option<Bench>| match b {
            Some(b) => format!(
                "{} INCR/s; p50 {:.2} ms, p99 {:.2} ms",
                thousands(b.rps),
                b.p50_ms,
                b.p99_ms
            ),
            None => "-".into(),
        };
        let ratio = |f: &Option<Report>, b: &Option<Bench>| match (f, b) {
            (Some(f), Some(b)) => format!("{:.2}", f.ops_per_sec / b.rps),
            _ => "-".into(),
        };
        for r in &self.load_rows {
            let ours = match &r.floatd {
                Some(f) => format!(
                    "{} req/s; p50 {}, p99 {}, p99.9 {}{}{}",
                    thousands(f.ops_per_sec),
                    ms(f.latency_us.p50),
                    ms(f.latency_us.p99),
                    ms(f.latency_us.p999),
                    f.server_cpu_us_per_op.map_or(String::new(), |us| format!(
                        "; server CPU {:.1} µs per checkout+checkin",
                        us * 2.0
                    )),
                    if f.errors_total > 0 {
                        format!("; {} errors", f.errors_total)
                    } else {
                        String::new()
                    }
                ),
                None => "failed".into(),
            };
            let target = match (r.durability, r.pipeline) {
                ("fsync", 1) => ">= redis `appendfsync always`; 64 clients: >= 1x redis none",
                ("fsync", _) => ">= 0.5x redis none; >= redis `appendfsync always`",
                ("none", 16) => "CPU <= 3 µs per pair",
                _ => "(shows the cost of fsync)",
            };
            row(&[
                &r.label,
                &ours,
                target,
                &redis_cell(&r.redis),
                &redis_cell(&r.redis_always),
                &ratio(&r.floatd, &r.redis),
                &ratio(&r.floatd, &r.redis_always),
            ]);
        }
        for (durability, rate, r) in &self.half_peak {
            let ours = match r {
                Some(f) => format!(
                    "p99 {} at {} req/s (asked {})",
                    ms(f.latency_us.p99),
                    thousands(f.ops_per_sec),
                    thousands(*rate)
                ),
                None => "failed".into(),
            };
            let label = format!(
                "p99 latency at half of peak throughput (64 clients{})",
                if *durability == "none" {
                    ", `--durability none`"
                } else {
                    ", fsync"
                }
            );
            row(&[&label, &ours, "<= 1 ms"]);
        }
        for (clients, pipeline, ours, theirs) in &self.client_rows {
            let label = format!(
                "client check: null server, {clients} clients{}",
                if *pipeline > 1 {
                    format!(" pipelined {pipeline}")
                } else {
                    String::new()
                }
            );
            let ours = ours.as_ref().map_or("failed".into(), |f| {
                format!("floatd-load: {} req/s", thousands(f.ops_per_sec))
            });
            let theirs = theirs.as_ref().map_or("failed".into(), |b| {
                format!("redis-benchmark: {} req/s", thousands(b.rps))
            });
            row(&[&label, &ours, "client >= redis-benchmark", &theirs]);
        }
        let idle = self.idle_rss.map_or("n/a".into(), mib);
        row(&["server RSS, idle", &idle, "<= 4 MiB"]);
        let holders = match &self.holders {
            Some(r) => match r.server_memory {
                Some(m) => format!(
                    "{} RSS ({} peak); {} seats held, {} errors",
                    mib(m.rss_kib),
                    mib(m.hwm_kib),
                    thousands(r.seats_held as f64),
                    r.errors_total
                ),
                None => "memory not readable".into(),
            },
            None => "failed".into(),
        };
        row(&[
            "server RSS, 10,000 clients holding seats",
            &holders,
            "<= 32 MiB",
        ]);
        let startup = self.startup.map_or("failed".into(), |(median, best)| {
            format!(
                "{:.1} ms median of 5 (best {:.1} ms)",
                median.as_secs_f64() * 1e3,
                best.as_secs_f64() * 1e3
            )
        });
        row(&[
            "start to serving, 1,000-feature licence (spawn to `listening`)",
            &startup,
            "<= 50 ms",
        ]);
        let fsync = self.fsync.map_or("n/a".into(), |(p50, p99)| {
            format!(
                "p50 {:.0} µs, p99 {:.0} µs",
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6
            )
        });
        row(&[
            "context: fdatasync of a 200-byte append on this disk",
            &fsync,
        ]);
        let binary = self.binary.map_or("n/a".into(), |(size, stripped)| {
            format!(
                "{:.2} MiB ({} bytes{})",
                size as f64 / 1048576.0,
                size,
                if stripped {
                    ", stripped"
                } else {
                    ", NOT stripped"
                }
            )
        });
        row(&["release binary, floatd", &binary, "<= 2 MiB"]);
        let failover = match &self.failover {
            None => "n/a".to_string(),
            Some(Err(why)) => format!("n/a ({why})"),
            Some(Ok(r)) => match &r.failover {
                Some(f) => format!(
                    "gap {} worst client (median {}); {} seats held, {} reclaimed, {} lost, {} over-granted",
                    f.gap_ms
                        .map_or("not recovered".into(), |g| format!("{:.2} s", g / 1000.0)),
                    f.gap_p50_ms
                        .map_or("-".into(), |g| format!("{:.2} s", g / 1000.0)),
                    f.seats_held_at_kill,
                    f.seats_reclaimed,
                    f.seats_lost,
                    f.seats_over_granted
                        .map_or("?".to_string(), |n| n.to_string())
                ),
                None => "failed".into(),
            },
        };
        row(&[
            "failover gap, defaults, primary killed",
            &failover,
            "<= 1.5 s median and below etcd's, 0 seats lost",
        ]);
        let etcd = match &self.etcd {
            None => "n/a".to_string(),
            Some(Err(why)) => format!("n/a ({why})"),
            Some(Ok(g)) => format!(
                "etcd {}: gap {:.2} s worst client (median {:.2} s)",
                g.version, g.worst_secs, g.median_secs
            ),
        };
        row(&[
            "failover gap, etcd: 3 members, 16 clients writing, leader killed",
            &etcd,
            "(for comparison)",
        ]);
        s.push_str(&format!(
            "\nloopback, {} cores, load average at the end {}; best of {} runs of {} s per load row; redis {}; bench took {:.0} s\n",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            loadavg(),
            std::env::var("FLOATD_BENCH_REPEAT").unwrap_or_else(|_| "2".into()),
            std::env::var("FLOATD_BENCH_SECS").unwrap_or_else(|_| "4".into()),
            if self.redis_version.is_empty() {
                "not installed"
            } else {
                &self.redis_version
            },
            took.as_secs_f64()
        ));
        s
    }
}
