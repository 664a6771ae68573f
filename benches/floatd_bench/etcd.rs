//! A 3-member etcd cluster on loopback (Debian's `etcd-server`, its
//! defaults: 100 ms heartbeat, 1 s election timeout), and its leader-kill
//! gap beside floatd's failover gap: 16 clients writing their key through
//! the JSON gateway (`/v3/kv/put`), each moving to the next member after an
//! error or 500 ms without an answer, as etcd's own client does with
//! several endpoints. The leader is killed (SIGKILL) after 2 s; a client's
//! gap is the longest time between two of its successful writes. Its
//! throughput with a lease and a transaction per seat: etcd_seats.rs.

use crate::etcd_http::{b64, post_once};
use crate::servers::free_port;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// Median and worst client gap, in seconds, and etcd's version.
pub struct Gap {
    pub median_secs: f64,
    pub worst_secs: f64,
    pub version: String,
}

/// The cluster's members, killed on drop.
pub struct Cluster {
    members: Vec<Child>,
    pub client_ports: Vec<u16>,
    pub version: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}

impl Cluster {
    /// Starts three members, data and logs under `dir` named after `name`,
    /// and waits until the cluster takes a write; or says why not (etcd
    /// not installed...).
    pub fn start(dir: &Path, name: &str) -> Result<Cluster, String> {
        let version = Command::new("etcd")
            .arg("--version")
            .output()
            .map_err(|_| "etcd not installed (apt-get install etcd-server)".to_string())?;
        let version = String::from_utf8_lossy(&version.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("etcd Version: ").map(str::to_string))
            .unwrap_or_default();
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let peer_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let initial: Vec<String> = (0..3)
            .map(|i| format!("e{i}=http://127.0.0.1:{}", peer_ports[i]))
            .collect();
        let mut cluster = Cluster {
            members: Vec::new(),
            client_ports: client_ports.clone(),
            version,
        };
        for i in 0..3 {
            let client = format!("http://127.0.0.1:{}", client_ports[i]);
            let peer = format!("http://127.0.0.1:{}", peer_ports[i]);
            let log = std::fs::File::create(dir.join(format!("{name}-{i}.log")))
                .map_err(|e| e.to_string())?;
            let child = Command::new("etcd")
                .args(["--name", &format!("e{i}")])
                .arg("--data-dir")
                .arg(dir.join(format!("{name}-{i}")))
                .args(["--listen-client-urls", &client])
                .args(["--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer])
                .args(["--initial-advertise-peer-urls", &peer])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("etcd: {e}"))?;
            cluster.members.push(child);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while put(client_ports[0], "ready").is_err() {
            if Instant::now() > deadline {
                return Err("the etcd cluster did not serve within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(cluster)
    }

    /// The members' process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(Child::id).collect()
    }

    /// The member that is the leader, by `/v3/maintenance/status`.
    fn leader(&self) -> Option<usize> {
        self.client_ports.iter().position(|&port| {
            let reply = post_once(port, "/v3/maintenance/status", "{}", REQUEST_TIMEOUT).ok();
            let status: Option<serde_json::Value> =
                reply.and_then(|r| serde_json::from_str(&r).ok());
            status.is_some_and(|s| {
                let me = s["header"]["member_id"].as_str();
                me.is_some() && me == s["leader"].as_str()
            })
        })
    }
}

/// Runs the measurement on a cluster of its own, or says why it could not.
pub fn leader_kill_gap(dir: &Path) -> Result<Gap, String> {
    let mut cluster = Cluster::start(dir, "etcd-gap")?;
    let leader = cluster.leader().ok_or("no etcd leader found")?;
    let start = Instant::now();
    let stop = start + Duration::from_secs(8);
    let ports = Arc::new(cluster.client_ports.clone());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let ports = Arc::clone(&ports);
            std::thread::spawn(move || client(n, &ports, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let _ = cluster.members[leader].kill();
    let mut gaps: Vec<f64> = clients
        .into_iter()
        .filter_map(|c| c.join().ok())
        .map(|g| g.as_secs_f64())
        .collect();
    if gaps.len() != CLIENTS {
        return Err("an etcd client thread failed".into());
    }
    gaps.sort_by(f64::total_cmp);
    Ok(Gap {
        median_secs: gaps[gaps.len() / 2],
        worst_secs: gaps[gaps.len() - 1],
        version: cluster.version.clone(),
    })
}

/// One client: writes its key until `stop`; returns the longest time
/// between two successful writes.
fn client(n: usize, ports: &[u16], stop: Instant) -> Duration {
    let mut member = n % ports.len();
    let mut last_ok: Option<Instant> = None;
    let mut worst = Duration::ZERO;
    let key = format!("seat/{n}");
    while Instant::now() < stop {
        if put(ports[member], &key).is_ok() {
            let now = Instant::now();
            if let Some(last) = last_ok {
                worst = worst.max(now - last);
            }
            last_ok = Some(now);
        } else {
            member = (member + 1) % ports.len();
        }
    }
    worst
}

/// One write of `key` on a connection of its own.
fn put(port: u16, key: &str) -> Result<String, String> {
    let body = format!("{{\"key\":\"{}\",\"value\":\"{}\"}}", b64(key), b64("held"));
    post_once(port, "/v3/kv/put", &body, REQUEST_TIMEOUT)
}
