//! A floatd pair on loopback with default timings: the failover gap (the
//! primary killed under load), durable replicated throughput (a backup in
//! sync, journal fsync on both), and the wake-ups and memory of an idle
//! primary, backup and witness.

use crate::floatd_binary;
use crate::servers::{free_port, greeting_of, load, Floatd, Site};
use floatd::load::{procfs, Report};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A primary and a backup, and in witness mode a witness, with default
/// timings; each killed on drop.
pub struct Pair {
    pub primary: Floatd,
    pub backup: Floatd,
    pub witness: Option<Floatd>,
    /// The primary's warnings: they say when its standby fell out of sync.
    primary_log: PathBuf,
}

impl Pair {
    /// Starts the witness (`with_witness`), the primary, then the backup;
    /// `name` keeps their state directories and logs apart from other pairs'.
    pub fn start(site: &Site, with_witness: bool, name: &str) -> Result<Pair, String> {
        let dir = site.dir.path();
        let secret = dir.join("peer.secret");
        std::fs::write(&secret, "bench-peer-secret-0123456789abcdef\n")
            .map_err(|e| e.to_string())?;
        let secret = secret.to_string_lossy().into_owned();
        let within = Duration::from_secs(20);
        let witness = if with_witness {
            let mut cmd = Command::new(floatd_binary());
            cmd.args(["--role", "witness", "--peer-listen", "127.0.0.1:0"])
                .args(["--peer-secret-file", &secret]);
            let log = dir.join(format!("{name}-witness.log"));
            let w = Floatd::spawn(cmd, "floatd witness on ", Some(&log), within)
                .map_err(|e| format!("the witness did not start: {e}"))?;
            Some(w)
        } else {
            None
        };
        let (p_peer, b_peer) = (free_port(), free_port());
        let start = |role: &str, peer_listen: u16, peer: u16| {
            let state = dir.join(format!("{name}-{role}"));
            let _ = std::fs::remove_dir_all(&state);
            let mut cmd = Command::new(floatd_binary());
            cmd.arg("--license")
                .arg(&site.licence)
                .arg("--vendor-key")
                .arg(&site.vendor_pub)
                .arg("--state-dir")
                .arg(&state)
                .args(["--bind", "127.0.0.1", "--port", "0", "--role", role])
                .args(["--peer", &format!("127.0.0.1:{peer}")])
                .args(["--peer-listen", &format!("127.0.0.1:{peer_listen}")])
                .args(["--peer-secret-file", &secret]);
            if let Some(w) = &witness {
                cmd.args(["--witness", &w.addr]);
            }
            let log = dir.join(format!("{name}-{role}.log"));
            Floatd::spawn(cmd, "floatd listening on ", Some(&log), within)
                .map_err(|e| format!("the {role} did not start: {e}"))
        };
        let primary = start("primary", p_peer, b_peer)?;
        let backup = start("backup", b_peer, p_peer)?;
        Ok(Pair {
            primary,
            backup,
            witness,
            primary_log: dir.join(format!("{name}-primary.log")),
        })
    }

    /// Both client addresses, primary first: the clients' server list.
    pub fn servers(&self) -> String {
        format!("{},{}", self.primary.addr, self.backup.addr)
    }

    /// Waits until the primary greets as active and the backup as ready
    /// (in sync). A backup that greets as active is a build without
    /// failover: nothing to measure.
    pub fn settle(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        loop {
            let p = greeting_of(&self.primary.addr).unwrap_or_default();
            let b = greeting_of(&self.backup.addr).unwrap_or_default();
            if p.contains(" state=active") && b.contains(" state=ready") {
                return Ok(());
            }
            if b.contains(" state=active") {
                return Err("failover not built (the backup greets as active)".into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the pair did not settle within {} s (primary: {p:?}; backup: {b:?})",
                    within.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Warnings the primary has logged so far about its standby not being
    /// in sync (declared stale, recorded stale at the witness).
    fn sync_warnings(&self) -> usize {
        std::fs::read_to_string(&self.primary_log)
            .map(|log| {
                log.lines()
                    .filter(|l| l.contains("standby") && l.contains("in sync"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Checkout+checkin by `clients` floatd-load clients (one thread, the
    /// primary first in their server list) for `secs`.
    pub fn replicated_run(&self, clients: usize, secs: f64) -> Option<Replicated> {
        let warnings = self.sync_warnings();
        let backup_cpu = procfs::cpu_secs(self.backup.pid());
        let args = [
            "--clients",
            &clients.to_string(),
            "--threads",
            "1",
            "--duration",
            &secs.to_string(),
        ];
        let report = load(&self.servers(), &args, secs)?;
        let pairs = report.ops as f64 / 2.0;
        let backup_cpu_us_per_pair = match (backup_cpu, procfs::cpu_secs(self.backup.pid())) {
            (Some(a), Some(b)) if pairs > 0.0 => Some((b - a) * 1e6 / pairs),
            _ => None,
        };
        let backup_ready_after = greeting_of(&self.backup.addr)
            .is_some_and(|g| g.contains(" state=ready"))
            && self.sync_warnings() == warnings;
        Some(Replicated {
            pairs_per_sec: report.ops_per_sec / 2.0,
            report,
            backup_cpu_us_per_pair,
            in_sync_throughout: backup_ready_after,
        })
    }

    /// Wake-ups, CPU and memory of each process over `window`, nothing
    /// connected.
    pub fn idle(&self, window: Duration) -> Idle {
        let mut roles = vec![("primary", &self.primary), ("backup", &self.backup)];
        if let Some(w) = &self.witness {
            roles.push(("witness", w));
        }
        let before: Vec<_> = roles
            .iter()
            .map(|(_, p)| (switches_by_thread(p.pid()), procfs::cpu_secs(p.pid())))
            .collect();
        let began = Instant::now();
        std::thread::sleep(window);
        let secs = began.elapsed().as_secs_f64();
        let processes = roles
            .iter()
            .zip(before)
            .map(|((role, p), (switches, cpu))| {
                let now = switches_by_thread(p.pid());
                let mut by_name: Vec<(String, u64)> = Vec::new();
                for (tid, (name, n)) in &now {
                    let then = switches.get(tid).map_or(0, |(_, n)| *n);
                    by_name.push((name.clone(), n.saturating_sub(then)));
                }
                let total: u64 = by_name.iter().map(|(_, n)| n).sum();
                by_name.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
                let threads: Vec<String> = by_name
                    .iter()
                    .map(|(name, n)| format!("{name} {:.1}", *n as f64 / secs))
                    .collect();
                eprintln!(
                    "floatd bench: idle {role}: {:.1} wake-ups/s; by thread: {}",
                    total as f64 / secs,
                    threads.join(", ")
                );
                IdleProcess {
                    role,
                    wakeups_per_sec: total as f64 / secs,
                    cpu_percent: cpu
                        .zip(procfs::cpu_secs(p.pid()))
                        .map(|(a, b)| (b - a) * 100.0 / secs),
                    rss_kib: procfs::memory(p.pid()).map(|m| m.rss_kib),
                    threads: now.len(),
                }
            })
            .collect();
        Idle { secs, processes }
    }
}

/// One durable replicated run.
pub struct Replicated {
    pub pairs_per_sec: f64,
    /// floatd-load's report (its CPU figure is the primary's).
    pub report: Report,
    pub backup_cpu_us_per_pair: Option<f64>,
    /// The backup still greets as ready after the run, and the primary
    /// logged no warning that it fell out of sync during it.
    pub in_sync_throughout: bool,
}

/// An idle pair over one window.
pub struct Idle {
    pub secs: f64,
    pub processes: Vec<IdleProcess>,
}

pub struct IdleProcess {
    pub role: &'static str,
    pub wakeups_per_sec: f64,
    pub cpu_percent: Option<f64>,
    pub rss_kib: Option<u64>,
    pub threads: usize,
}

/// Context switches so far of each thread of `pid`, by thread id, with
/// the thread's name. Voluntary ones are the times a thread went to sleep
/// (each followed by a wake-up); involuntary ones, the times it was
/// preempted. An idle process's sum over a window is its wake-ups.
fn switches_by_thread(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
        };
        let count = |key| field(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let switches = count("voluntary_ctxt_switches:") + count("nonvoluntary_ctxt_switches:");
        let name = field("Name:").unwrap_or("?").to_string();
        out.insert(tid, (name, switches));
    }
    out
}

/// FAILOVER GAP: primary, backup and witness (witness mode) with default timings,
/// 64 clients holding seats (both servers listed), the primary killed with
/// SIGKILL two seconds in; floatd-load reports the gap the worst client
/// saw, seats reclaimed, lost and over-granted. `Err` says why not: the
/// pair did not start, or this build has no failover.
pub fn failover_gap(site: &Site, secs: f64) -> Result<Report, String> {
    let pair = Pair::start(site, true, "fo")?;
    pair.settle(Duration::from_secs(20))?;
    let pid = pair.primary.pid().to_string();
    let duration = (secs * 2.0).max(10.0);
    load(
        &pair.servers(),
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
