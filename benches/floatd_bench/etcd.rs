//! etcd's leader-kill gap, beside floatd's failover gap: a 3-member etcd
//! cluster on loopback (defaults: 100 ms heartbeat, 1 s election timeout),
//! 16 clients writing their key through the JSON gateway (`/v3/kv/put`),
//! each moving to the next member after an error or 500 ms without an
//! answer, as etcd's own client does with several endpoints. The leader is
//! killed (SIGKILL) after 2 s; a client's gap is the longest time between
//! two of its successful writes. Only the gap: etcd's throughput with a
//! lease and a transaction per seat is not measured here.

use base64::Engine;
use std::io::{Read, Write};
use std::net::TcpStream;
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
struct Cluster {
    members: Vec<Child>,
    client_ports: Vec<u16>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
            let _ = m.wait();
        }
    }
}

/// Runs the measurement, or says why it could not (etcd not installed...).
pub fn leader_kill_gap(dir: &Path, free_port: fn() -> u16) -> Result<Gap, String> {
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
    };
    for i in 0..3 {
        let client = format!("http://127.0.0.1:{}", client_ports[i]);
        let peer = format!("http://127.0.0.1:{}", peer_ports[i]);
        let log =
            std::fs::File::create(dir.join(format!("etcd-{i}.log"))).map_err(|e| e.to_string())?;
        let child = Command::new("etcd")
            .args(["--name", &format!("e{i}")])
            .arg("--data-dir")
            .arg(dir.join(format!("etcd-{i}")))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "floatd-bench"])
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
    let leader = leader(&cluster).ok_or("no etcd leader found")?;

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
        version,
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

/// The member that is the leader, by `/v3/maintenance/status`.
fn leader(cluster: &Cluster) -> Option<usize> {
    cluster.client_ports.iter().position(|&port| {
        let reply = post(port, "/v3/maintenance/status", "{}").ok();
        let status: Option<serde_json::Value> = reply.and_then(|r| serde_json::from_str(&r).ok());
        status.is_some_and(|s| {
            let me = s["header"]["member_id"].as_str();
            me.is_some() && me == s["leader"].as_str()
        })
    })
}

fn put(port: u16, key: &str) -> Result<String, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = format!(
        "{{\"key\":\"{}\",\"value\":\"{}\"}}",
        b64.encode(key),
        b64.encode("held")
    );
    post(port, "/v3/kv/put", &body)
}

/// One HTTP/1.0 POST with a deadline; the body of a 200 reply.
fn post(port: u16, path: &str, body: &str) -> Result<String, String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|_| s.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    if !reply.starts_with("HTTP/1.0 200") && !reply.starts_with("HTTP/1.1 200") {
        return Err(reply.lines().next().unwrap_or("no reply").to_string());
    }
    Ok(reply
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string()))
}
