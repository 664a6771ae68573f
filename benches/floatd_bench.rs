//! `cargo bench --bench floatd_bench` (`make bench`): the figures of
//! DESIGN.md's "Figures we aim for", measured on loopback, printed as one
//! table (also written to target/floatd-bench.md; floatd_bench/table.rs).
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
//! null server, so the floatd/redis ratio measures servers, not clients
//! (floatd_bench/redis.rs). A witness-mode pair gives the idle wake-ups and
//! memory of a primary, backup and witness, then durable replicated
//! checkout+checkin pairs per second; where etcd is installed, a 3-member
//! cluster does the same with a lease and a transaction per seat, taking
//! turns (floatd_bench/pair.rs, etcd_seats.rs), and its leader-kill gap
//! goes beside floatd's failover gap (floatd_bench/etcd.rs).
//!
//! Bounded: every child has a deadline; about five minutes in all.
//! `FLOATD_BENCH_SECS` sets the seconds per load run (default 4),
//! `FLOATD_BENCH_REPEAT` the runs per row (default 2: the best is kept,
//! floatd and its peer taking turns, so a burst of other work on a shared
//! machine does not decide a row). `FLOATD_BENCH_FLOATD=/path/to/floatd`
//! measures another server build with the same table (an A/B of a change,
//! or a branch with features this one lacks).

#[path = "floatd_bench/etcd.rs"]
mod etcd;
#[path = "floatd_bench/etcd_http.rs"]
mod etcd_http;
#[path = "floatd_bench/etcd_seats.rs"]
mod etcd_seats;
#[path = "floatd_bench/pair.rs"]
mod pair;
#[path = "floatd_bench/redis.rs"]
mod redis;
#[path = "floatd_bench/servers.rs"]
mod servers;
#[path = "floatd_bench/table.rs"]
mod table;

use floatd::load::Report;
use redis::{best_bench, NullServer, Redis};
use servers::{load, Floatd, Site};
use std::path::Path;
use std::time::{Duration, Instant};
use table::{ms, thousands, LoadRow, ReplicatedRow, Table};

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

    replicated(&site, secs, repeat, &mut table);

    table.binary = binary_size(Path::new(&floatd));
    table.failover = Some(pair::failover_gap(&site, secs));
    if let Some(Err(why)) = &table.failover {
        eprintln!("floatd bench: failover gap: {why}");
    }
    let etcd = etcd::leader_kill_gap(site.dir.path());
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
/// Size of the binary, and whether it is stripped (no `.symtab`).
fn binary_size(path: &Path) -> Option<(u64, bool)> {
    let bytes = std::fs::read(path).ok()?;
    let stripped = !bytes.windows(7).any(|w| w == b".symtab");
    Some((bytes.len() as u64, stripped))
}

/// The idle window of the wake-up count: long enough for the 500 ms pings
/// to average out.
const IDLE_WINDOW: Duration = Duration::from_secs(10);

/// Client counts of the replicated rows: DESIGN.md's row (16) and the
/// unpipelined floatd rows' (64).
const REPLICATED_CLIENTS: [usize; 2] = [16, 64];

/// A witness-mode pair with defaults: its idle wake-ups and memory first,
/// then durable replicated pairs per second, and etcd's with a lease and
/// a transaction per seat at the same client counts, taking turns.
fn replicated(site: &Site, secs: f64, repeat: usize, table: &mut Table) {
    let pair = pair::Pair::start(site, true, "repl").and_then(|pair| {
        pair.settle(Duration::from_secs(30))?;
        Ok(pair)
    });
    let pair = match pair {
        Ok(pair) => pair,
        Err(why) => {
            eprintln!("floatd bench: witness-mode pair: {why}");
            table.idle = Some(Err(why.clone()));
            table.replicated_missing = Some(why);
            return;
        }
    };
    // The first exchanges after settling (history, roam key) pass first.
    std::thread::sleep(Duration::from_secs(2));
    table.idle = Some(Ok(pair.idle(IDLE_WINDOW)));

    let cluster = etcd::Cluster::start(site.dir.path(), "etcd-seats");
    match &cluster {
        Ok(c) => table.etcd_version = c.version.clone(),
        Err(why) => {
            eprintln!("floatd bench: etcd: {why}");
            table.etcd_seats_missing = Some(why.clone());
        }
    }
    for clients in REPLICATED_CLIENTS {
        let mut row = ReplicatedRow {
            clients,
            floatd: None,
            etcd: None,
        };
        for _ in 0..repeat {
            if let Some(r) = pair.replicated_run(clients, secs) {
                eprintln!(
                    "floatd bench: replicated, {clients} clients: {:.0} pairs/s, in sync: {}; {}",
                    r.pairs_per_sec,
                    r.in_sync_throughout,
                    summary(&Some(r.report.clone()))
                );
                if row
                    .floatd
                    .as_ref()
                    .is_none_or(|b| r.pairs_per_sec > b.pairs_per_sec)
                {
                    row.floatd = Some(r);
                }
            }
            if let Ok(cluster) = &cluster {
                let e = etcd_seats::run(cluster, clients, secs);
                eprintln!("floatd bench: etcd seats, {clients} clients: {e:?}");
                if row
                    .etcd
                    .as_ref()
                    .is_none_or(|b| e.pairs_per_sec > b.pairs_per_sec)
                {
                    row.etcd = Some(e);
                }
            }
        }
        table.replicated.push(row);
    }
}
