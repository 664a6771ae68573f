//! The one table `make bench` prints: a row per figure, floatd beside
//! its peers and DESIGN.md's target.

use crate::pair::{Idle, Replicated};
use crate::redis::Bench;
use crate::{etcd, etcd_seats, loadavg};
use floatd::load::Report;
use std::time::Duration;

#[derive(Default)]
pub struct Table {
    pub load_rows: Vec<LoadRow>,
    pub half_peak: Vec<(&'static str, f64, Option<Report>)>,
    pub client_rows: Vec<(usize, usize, Option<Report>, Option<Bench>)>,
    pub redis_version: String,
    pub idle_rss: Option<u64>,
    pub holders: Option<Report>,
    pub startup: Option<(Duration, Duration)>,
    pub binary: Option<(u64, bool)>,
    pub failover: Option<Result<Report, String>>,
    pub etcd: Option<Result<etcd::Gap, String>>,
    pub fsync: Option<(Duration, Duration)>,
    /// Durable replicated pairs, floatd beside etcd, per client count.
    pub replicated: Vec<ReplicatedRow>,
    /// Why there are no replicated rows (the pair did not start...).
    pub replicated_missing: Option<String>,
    /// Why etcd has no seat figures (not installed...).
    pub etcd_seats_missing: Option<String>,
    pub etcd_version: String,
    /// An idle witness-mode pair.
    pub idle: Option<Result<Idle, String>>,
}

pub struct LoadRow {
    pub label: String,
    pub pipeline: usize,
    pub durability: &'static str,
    pub floatd: Option<Report>,
    pub redis: Option<Bench>,
    pub redis_always: Option<Bench>,
}

pub struct ReplicatedRow {
    pub clients: usize,
    pub floatd: Option<Replicated>,
    pub etcd: Option<etcd_seats::Run>,
}

pub fn thousands(x: f64) -> String {
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

pub fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl Table {
    pub fn render(&self, took: Duration) -> String {
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
        for cols in self.replicated_rows() {
            row(&cols.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let idle = self.idle_rss.map_or("n/a".into(), mib);
        row(&["server RSS, idle", &idle, "<= 4 MiB"]);
        for cols in self.idle_rows() {
            row(&cols.iter().map(String::as_str).collect::<Vec<_>>());
        }
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
            "failover gap, witness mode, defaults, primary killed",
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
            "\nloopback, {} cores, load average at the end {}; best of {} runs of {} s per load row; redis {}; etcd {}; bench took {:.0} s\n",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            loadavg(),
            std::env::var("FLOATD_BENCH_REPEAT").unwrap_or_else(|_| "2".into()),
            std::env::var("FLOATD_BENCH_SECS").unwrap_or_else(|_| "4".into()),
            if self.redis_version.is_empty() {
                "not installed"
            } else {
                &self.redis_version
            },
            if self.etcd_version.is_empty() {
                "not installed"
            } else {
                &self.etcd_version
            },
            took.as_secs_f64()
        ));
        s
    }
}

impl Table {
    /// Durable replicated checkout+checkin pairs, floatd's pair then etcd,
    /// a row each per client count.
    fn replicated_rows(&self) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        if let Some(why) = &self.replicated_missing {
            rows.push(vec![
                "durable replicated checkout+checkin pairs, witness-mode pair".into(),
                format!("n/a ({why})"),
                ">= 10x etcd at 16 clients".into(),
            ]);
        }
        for r in &self.replicated {
            let ratio = match (&r.floatd, &r.etcd) {
                (Some(f), Some(e)) if e.pairs_per_sec > 0.0 => {
                    format!("; {:.1}x etcd", f.pairs_per_sec / e.pairs_per_sec)
                }
                _ => String::new(),
            };
            let ours = match &r.floatd {
                Some(f) => format!(
                    "{} pairs/s ({} req/s; p50 {}, p99 {} a request); server CPU per pair: primary {}, backup {}{}{}{}",
                    thousands(f.pairs_per_sec),
                    thousands(f.report.ops_per_sec),
                    ms(f.report.latency_us.p50),
                    ms(f.report.latency_us.p99),
                    f.report
                        .server_cpu_us_per_op
                        .map_or("?".into(), |us| format!("{:.1} µs", us * 2.0)),
                    f.backup_cpu_us_per_pair
                        .map_or("?".into(), |us| format!("{us:.1} µs")),
                    if f.in_sync_throughout {
                        "; backup in sync throughout"
                    } else {
                        "; the backup fell out of sync"
                    },
                    if f.report.errors_total > 0 {
                        format!("; {} errors", f.report.errors_total)
                    } else {
                        String::new()
                    },
                    ratio
                ),
                None => "failed".into(),
            };
            let target = if r.clients == 16 {
                ">= 10x etcd"
            } else {
                "(more clients)"
            };
            rows.push(vec![
                format!(
                    "durable replicated checkout+checkin pairs, {} clients: primary + backup in sync, journal fsync on both (witness mode)",
                    r.clients
                ),
                ours,
                target.into(),
            ]);
            let etcd = match (&r.etcd, &self.etcd_seats_missing) {
                (Some(e), _) => format!(
                    "etcd {}: {} pairs/s; p50 {:.2} ms, p99 {:.2} ms a pair (3 requests); CPU {} per pair (3 members); {} slots retried, {} errors",
                    self.etcd_version,
                    thousands(e.pairs_per_sec),
                    e.p50_ms,
                    e.p99_ms,
                    e.cpu_us_per_pair
                        .map_or("?".into(), |us| format!("{us:.0} µs")),
                    e.retries,
                    e.errors
                ),
                (None, Some(why)) => format!("n/a ({why})"),
                (None, None) => "failed".into(),
            };
            rows.push(vec![
                format!(
                    "same on etcd, 3 members, {} clients: lease + txn per checkout, lease revoked at checkin",
                    r.clients
                ),
                etcd,
                "(for comparison)".into(),
            ]);
        }
        rows
    }

    /// Wake-ups and memory of an idle witness-mode pair.
    fn idle_rows(&self) -> Vec<Vec<String>> {
        let label = "idle wake-ups a second (context switches, every thread), witness-mode pair, defaults, nothing connected";
        let idle = match &self.idle {
            None => return Vec::new(),
            Some(Err(why)) => return vec![vec![label.into(), format!("n/a ({why})")]],
            Some(Ok(idle)) => idle,
        };
        let each = |cell: &dyn Fn(&crate::pair::IdleProcess) -> String| {
            idle.processes
                .iter()
                .map(|p| format!("{} {}", p.role, cell(p)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let wakeups = format!(
            "{} (over {:.0} s; CPU {})",
            each(&|p| format!("{:.1}", p.wakeups_per_sec)),
            idle.secs,
            each(&|p| p.cpu_percent.map_or("?".into(), |c| format!("{c:.2}%")))
        );
        let rss = format!(
            "{} ({})",
            each(&|p| p.rss_kib.map_or("?".into(), mib)),
            each(&|p| format!("{} threads", p.threads))
        );
        vec![
            vec![
                label.into(),
                wakeups,
                "<= 20 each, never a busy loop".into(),
            ],
            vec![
                "server RSS, idle, witness-mode pair".into(),
                rss,
                "<= 4 MiB".into(),
            ],
        ]
    }
}
