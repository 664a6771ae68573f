//! redis-server beside floatd: one without persistence, one with
//! `appendfsync always`, driven by `redis-benchmark -t incr`; and
//! `floatd-load --null-server`, the check that neither client is the limit.

use crate::servers::{free_port, wait_for_line, wait_output};
use crate::LOAD;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server on a free loopback port: without persistence, or with
/// its append-only file fsynced before every reply (`appendfsync always`,
/// in `aof_dir`), the durability floatd's journal gives.
pub struct Redis {
    child: Child,
    pub port: u16,
    pub version: String,
    fsync_always: bool,
}

impl Redis {
    pub fn start(aof_dir: Option<&Path>) -> Option<Redis> {
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
    pub fn benchmark(
        &self,
        port: u16,
        clients: usize,
        pipeline: usize,
        secs: f64,
    ) -> Option<Bench> {
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
pub struct Bench {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `floatd-load --null-server` on a free port.
pub struct NullServer {
    child: Child,
    pub addr: String,
    pub port: u16,
}

impl NullServer {
    pub fn start(resp: bool) -> Option<NullServer> {
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

/// The better of two runs (more requests per second).
pub fn best_bench(a: Option<Bench>, b: Option<Bench>) -> Option<Bench> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.rps > a.rps { b } else { a }),
        (a, b) => a.or(b),
    }
}
