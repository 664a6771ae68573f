//! `floatd-load`: the load generator.
//!
//! N client connections over M threads, each thread with its own mio
//! `Poll` ([`worker`]), loop a mix of requests against floatd for a bounded
//! time; the main thread prints a progress line each second, kills the
//! primary in failover mode, samples the server's memory, and prints the
//! report ([`Report`]) as text or one JSON object.
//!
//! - [`options`]: the command line.
//! - [`worker`]: one client thread and its connections' state machines.
//! - [`wire`]: allocation-free reply scanning and request writing.
//! - [`stats`]: counters and latency histograms.
//! - [`status`]: a blocking STATUS request with a deadline.
//! - [`procfs`]: the server's RSS, the pid listening on a port.
//! - [`null_server`]: a server that answers at once, to measure the client.
//! - [`chaos`]: `floatd-load chaos`, the reliability run in network
//!   namespaces (scripts/chaos.sh, docs/RELIABILITY.md).

pub mod chaos;
pub mod null_server;
pub mod options;
pub mod procfs;
pub mod stats;
pub mod status;
pub mod wire;
pub mod worker;

use options::Options;
use procfs::Memory;
use serde::{Deserialize, Serialize};
use stats::{Counts, FailoverCounts, Percentiles};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::{Msg, Shared, WorkerSpec};

/// The outcome of a run; `--json` prints it as it is.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Requests answered OK per second (a checkout and its checkin are two).
    pub ops_per_sec: f64,
    pub ops: u64,
    pub duration_secs: f64,
    pub mix: String,
    pub feature: String,
    pub clients: usize,
    pub threads: usize,
    pub pipeline: usize,
    /// The request rate asked for, if limited.
    pub rate: Option<f64>,
    pub servers: Vec<String>,
    /// Latency of OK replies, request written to reply read.
    pub latency_us: Percentiles,
    /// Error replies and connection failures, by code.
    pub errors: BTreeMap<String, u64>,
    pub errors_total: u64,
    /// Seats the clients held when the duration ran out.
    pub seats_held: u64,
    /// Seats of the feature in use by the server's own STATUS, just before the end.
    pub server_seats_in_use: Option<u64>,
    /// Seats licensed for the feature (STATUS at the start); `None` uncounted.
    pub licensed: Option<u64>,
    /// Connections past HELLO when the duration ran out.
    pub connected: u64,
    /// Established connections that broke during the run.
    pub disconnects: u64,
    /// Redirects followed (greeting `active=`, `ERR STANDBY active=`, `* MOVED`).
    pub redirects: u64,
    pub server_pid: Option<u32>,
    /// The server's memory just before the end (clients still connected).
    pub server_memory: Option<Memory>,
    /// The server's CPU time (user and system, every thread) over the run,
    /// divided by the requests answered OK: µs per request. For the
    /// checkout-checkin mix a pair costs twice this.
    pub server_cpu_us_per_op: Option<f64>,
    pub failover: Option<FailoverReport>,
}

/// What clients saw when the primary was killed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FailoverReport {
    pub killed_pid: Option<u32>,
    /// The kill was sent (and the process gone afterwards, when a pid was given).
    pub killed: bool,
    pub killed_at_secs: f64,
    /// Exit code of `--failover-cmd`, when given.
    pub failover_cmd_status: Option<i32>,
    /// Worst client's gap, first failed request to the next success, in
    /// ms; `null` when some client never got served again.
    pub gap_ms: Option<f64>,
    pub gap_p50_ms: Option<f64>,
    /// Failures followed by a success.
    pub recoveries: u64,
    /// Clients still failing at the end.
    pub unrecovered_clients: u64,
    pub first_failure_secs: Option<f64>,
    pub last_recovery_secs: Option<f64>,
    /// Seats the clients held when the kill was sent.
    pub seats_held_at_kill: u64,
    pub seats_reclaimed: u64,
    /// Held seats whose reclaim was refused or never succeeded.
    pub seats_lost: u64,
    /// Most seats the clients held at once, beyond the licensed count
    /// (`null` when the count is unknown or uncounted).
    pub seats_over_granted: Option<u64>,
    pub peak_seats_held: u64,
    pub redirects: u64,
}

/// The `floatd-load` program; returns its exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    if args.first().is_some_and(|a| a == "chaos") {
        return chaos::main(args[1..].to_vec());
    }
    let opts = match Options::parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{}", options::USAGE);
            return 0;
        }
        Err(e) => {
            eprintln!("floatd-load: {e}");
            return 2;
        }
    };
    if let Some(addr) = &opts.null_server {
        let until = opts.duration_given.then(|| Instant::now() + opts.duration);
        return match null_server::serve(addr, opts.resp, until) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("floatd-load: {e}");
                1
            }
        };
    }
    let json = opts.json;
    let report = run(opts);
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("report serialises")
        );
    } else {
        print!("{}", render(&report));
    }
    0
}

/// Runs the load described by `opts` and returns its report.
pub fn run(opts: Options) -> Report {
    let quiet = opts.quiet;
    let say = |text: String| {
        if !quiet {
            eprintln!("{text}");
        }
    };
    // What the server serves, before starting.
    let mut first_status = None;
    for s in &opts.servers {
        match status::fetch(s, Duration::from_secs(2)) {
            Ok(r) if r.state == "active" || r.state.is_empty() => {
                first_status = Some(r);
                break;
            }
            Ok(r) => {
                first_status.get_or_insert(r);
            }
            Err(e) => say(format!("floatd-load: status of {s}: {e}")),
        }
    }
    let feature = opts
        .feature
        .clone()
        .or_else(|| first_status.as_ref().and_then(status::default_feature))
        .unwrap_or_else(|| "cad".to_string());
    let licensed = first_status
        .as_ref()
        .and_then(|r| status::licensed(r, &feature));
    let server_pid = opts
        .server_pid
        .or_else(|| procfs::listener_pid(&opts.servers[0]));

    let cpu_before = server_pid.and_then(procfs::cpu_secs);
    let opts = Arc::new(opts);
    let shared = Arc::new(Shared::default());
    let (tx, rx) = crossbeam_channel::unbounded();
    let start = Instant::now();
    let deadline = start + opts.duration;
    let mut handles = Vec::new();
    let per = opts.clients / opts.threads;
    let extra = opts.clients % opts.threads;
    let mut first = 0;
    for t in 0..opts.threads {
        let n = per + usize::from(t < extra);
        let spec = WorkerSpec {
            first_client: first,
            clients: n,
            opts: Arc::clone(&opts),
            feature: feature.clone(),
            start,
            deadline,
            shared: Arc::clone(&shared),
            tx: tx.clone(),
        };
        first += n;
        let h = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || worker::run(spec))
            .expect("spawn worker");
        handles.push(h);
    }
    drop(tx);

    let mut total = Counts::default();
    let mut interval = Counts::default();
    let mut failover = FailoverCounts::default();
    let mut held_at_end = 0;
    let mut connected = 0;
    let mut done = 0;
    // Workers send their counts each whole second; print a moment later.
    let progress_lag = Duration::from_millis(150);
    let mut next_progress = start + Duration::from_secs(1) + progress_lag;
    let sample_at = deadline
        .checked_sub(Duration::from_millis(300))
        .unwrap_or(deadline)
        .max(start);
    let mut sampled = false;
    let mut memory = None;
    let mut server_in_use = None;
    let mut kill: Option<FailoverReport> = None;
    let kill_at = opts.kill_primary_after.map(|d| start + d);
    let hard_stop = deadline + worker::DRAIN_TIME + Duration::from_secs(3);
    while done < opts.threads {
        let now = Instant::now();
        if now >= hard_stop {
            eprintln!(
                "floatd-load: {} worker(s) did not finish; reporting without them",
                opts.threads - done
            );
            break;
        }
        if let Some(at) = kill_at {
            if kill.is_none() && now >= at {
                kill = Some(kill_primary(&opts, start, &shared));
                say(format!(
                    "[{:5.1}s] killed the primary ({})",
                    now.duration_since(start).as_secs_f64(),
                    opts.primary_pid
                        .map_or_else(|| "by --failover-cmd".to_string(), |p| format!("pid {p}"))
                ));
            }
        }
        if !sampled && now >= sample_at {
            sampled = true;
            memory = server_pid.and_then(procfs::memory);
            if !opts.failover_mode() {
                server_in_use = status::fetch(&opts.servers[0], Duration::from_millis(1500))
                    .ok()
                    .map(|r| status::in_use(&r, &feature));
            }
        }
        if now >= next_progress && now < deadline + progress_lag * 2 {
            let secs = next_progress
                .duration_since(start)
                .saturating_sub(progress_lag)
                .as_secs_f64();
            let p99 = if interval.latency.is_empty() {
                "-".to_string()
            } else {
                format_us(interval.latency.value_at_quantile(0.99) as f64 / 1000.0)
            };
            say(format!(
                "[{secs:5.1}s] {:>9.0} ops/s  errors {:<5} p99 {p99:<9} held {}",
                interval.ops as f64 / 1.0,
                interval.error_total(),
                shared.held.load(Ordering::Relaxed)
            ));
            interval.reset();
            next_progress += Duration::from_secs(1);
        }
        let mut wake = next_progress.min(hard_stop);
        if !sampled {
            wake = wake.min(sample_at);
        }
        if let (Some(at), None) = (kill_at, &kill) {
            wake = wake.min(at);
        }
        match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(Msg::Interval(c)) => {
                interval.ops += c.ops;
                for (code, n) in &c.errors {
                    *interval.errors.entry(code.clone()).or_default() += n;
                }
                let _ = interval.latency.add(&c.latency);
            }
            Ok(Msg::Done(result)) => {
                done += 1;
                total.merge(&result.counts);
                failover.merge(&result.failover);
                held_at_end += result.held_at_end;
                connected += result.connected_at_end;
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
    }
    if done == opts.threads {
        for h in handles {
            let _ = h.join();
        }
    }
    let elapsed = opts.duration.as_secs_f64().max(1e-9);
    let cpu_used = cpu_before.zip(server_pid.and_then(procfs::cpu_secs));
    let server_cpu_us_per_op = cpu_used
        .filter(|_| total.ops > 0 && !opts.failover_mode())
        .map(|(before, after)| ((after - before) * 1e6 / total.ops as f64 * 100.0).round() / 100.0);
    let failover_report = opts.failover_mode().then(|| {
        let mut f = kill.unwrap_or_default();
        let mut gaps: Vec<f64> = failover
            .gaps
            .iter()
            .map(|g| (g.as_secs_f64() * 1e4).round() / 10.0)
            .collect();
        gaps.sort_by(f64::total_cmp);
        f.recoveries = gaps.len() as u64;
        f.unrecovered_clients = failover.unrecovered;
        f.gap_ms = if failover.unrecovered > 0 {
            None
        } else {
            Some(gaps.last().copied().unwrap_or(0.0))
        };
        f.gap_p50_ms = (!gaps.is_empty()).then(|| gaps[gaps.len() / 2]);
        f.first_failure_secs = failover.first_failure.map(|d| d.as_secs_f64());
        f.last_recovery_secs = failover.last_recovery.map(|d| d.as_secs_f64());
        f.seats_reclaimed = failover.reclaimed;
        f.seats_lost = failover.lost;
        let peak = shared.peak_held.load(Ordering::Relaxed).max(0) as u64;
        f.peak_seats_held = peak;
        f.seats_over_granted = licensed.map(|l| peak.saturating_sub(l));
        f.redirects = failover.redirects;
        f
    });
    Report {
        ops_per_sec: (total.ops as f64 / elapsed * 10.0).round() / 10.0,
        ops: total.ops,
        duration_secs: elapsed,
        mix: opts.mix.as_str().to_string(),
        feature,
        clients: opts.clients,
        threads: opts.threads,
        pipeline: opts.pipeline,
        rate: opts.rate,
        servers: opts.servers.clone(),
        latency_us: Percentiles::of(&total.latency),
        errors_total: total.error_total(),
        errors: total.errors,
        seats_held: held_at_end,
        server_seats_in_use: server_in_use,
        licensed,
        connected,
        disconnects: failover.disconnects,
        redirects: failover.redirects,
        server_pid,
        server_memory: memory,
        server_cpu_us_per_op,
        failover: failover_report,
    }
}

/// Kills the primary (SIGKILL to `--primary-pid`, and/or `--failover-cmd`).
fn kill_primary(opts: &Options, start: Instant, shared: &Shared) -> FailoverReport {
    let mut f = FailoverReport {
        killed_pid: opts.primary_pid,
        killed_at_secs: start.elapsed().as_secs_f64(),
        seats_held_at_kill: shared.held.load(Ordering::Relaxed).max(0) as u64,
        ..FailoverReport::default()
    };
    let mut killed = true;
    if let Some(pid) = opts.primary_pid {
        let ok = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("floatd-load: could not kill pid {pid}");
        }
        killed &= ok;
    }
    if let Some(cmd) = &opts.failover_cmd {
        let status = std::process::Command::new("sh")
            .args(["-c", cmd])
            .stdin(std::process::Stdio::null())
            .status();
        f.failover_cmd_status = status.as_ref().ok().and_then(|s| s.code());
        killed &= status.is_ok_and(|s| s.success());
    }
    f.killed = killed;
    f
}

fn format_us(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn format_kib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The report as text.
pub fn render(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "floatd-load: {} client(s) on {} thread(s), mix {}, pipeline {}, {:.1} s against {} (feature {})",
        r.clients,
        r.threads,
        r.mix,
        r.pipeline,
        r.duration_secs,
        r.servers.join(","),
        r.feature
    );
    let _ = writeln!(
        s,
        "throughput  {:.0} requests/s ({} answered OK{})",
        r.ops_per_sec,
        r.ops,
        if r.mix == "checkout-checkin" {
            "; a checkout and its checkin count as two"
        } else {
            ""
        }
    );
    let l = &r.latency_us;
    let _ = writeln!(
        s,
        "latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        format_us(l.p50),
        format_us(l.p90),
        format_us(l.p99),
        format_us(l.p999),
        format_us(l.max)
    );
    if r.errors.is_empty() {
        let _ = writeln!(s, "errors      none");
    } else {
        let list: Vec<String> = r.errors.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let _ = writeln!(s, "errors      {} ({})", r.errors_total, list.join(", "));
    }
    let _ = writeln!(
        s,
        "seats held  {} at the end by the clients{}{}; {} connection(s) up, {} broke",
        r.seats_held,
        r.server_seats_in_use
            .map_or(String::new(), |n| format!(", {n} in use by the server")),
        r.licensed
            .map_or(String::new(), |n| format!(", {n} licensed")),
        r.connected,
        r.disconnects
    );
    if let Some(pid) = r.server_pid {
        match r.server_memory {
            Some(m) => {
                let _ = writeln!(
                    s,
                    "server      pid {pid}: RSS {} (peak {})",
                    format_kib(m.rss_kib),
                    format_kib(m.hwm_kib)
                );
            }
            None => {
                let _ = writeln!(s, "server      pid {pid}: memory not readable");
            }
        }
        if let Some(us) = r.server_cpu_us_per_op {
            let pair = if r.mix == "checkout-checkin" {
                format!(" ({:.2} µs per checkout+checkin pair)", us * 2.0)
            } else {
                String::new()
            };
            let _ = writeln!(s, "            CPU {us:.2} µs per request{pair}");
        }
    }
    if let Some(f) = &r.failover {
        let gap = match f.gap_ms {
            Some(ms) => format!("gap {:.2} s worst client", ms / 1000.0),
            None => format!(
                "gap: {} client(s) never served again",
                f.unrecovered_clients
            ),
        };
        let _ = writeln!(
            s,
            "failover    killed {} at {:.1} s{}; {gap}{}; {} recoveries, {} redirects",
            f.killed_pid
                .map_or_else(|| "the primary".to_string(), |p| format!("pid {p}")),
            f.killed_at_secs,
            if f.killed { "" } else { " (kill FAILED)" },
            f.gap_p50_ms
                .map_or(String::new(), |m| format!(" (median {:.2} s)", m / 1000.0)),
            f.recoveries,
            f.redirects
        );
        let _ = writeln!(
            s,
            "            seats: {} held at the kill, {} reclaimed, {} lost, {} over-granted (peak {} held)",
            f.seats_held_at_kill,
            f.seats_reclaimed,
            f.seats_lost,
            f.seats_over_granted
                .map_or_else(|| "? (count unknown)".to_string(), |n| n.to_string()),
            f.peak_seats_held
        );
    }
    s
}
