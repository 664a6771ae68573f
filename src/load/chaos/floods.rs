//! Floods while serving: strangers at every port of both servers (licence,
//! peer and HTTP) during a chaos run, some opening connections and leaving
//! them idle, some sending a request a byte a second, while one
//! well-behaved client (the client library, on an uncounted feature) keeps
//! checking out, heartbeating and checking in. Its latency is reported,
//! not asserted.

use super::fleet::Recorder;
use super::net::Net;
use super::schedule::Node;
use super::site::{CLIENT_PORT, FREE_FEATURE, HTTP_PORT, PEER_PORT};
use crate::client::{Client, ClientConfig, Identity};
use crate::licence::Version;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Idle connections kept open at each port.
const IDLE_PER_PORT: usize = 300;
/// Byte-a-second senders at each port.
const SLOW_PER_PORT: usize = 20;
/// New connections per port per second, at most.
const OPEN_PER_ROUND: usize = 100;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FloodReport {
    pub ports: Vec<String>,
    pub seconds: f64,
    pub connections_opened: u64,
    pub connect_failures: u64,
    /// Connections the servers closed (idle or slow strangers reaped).
    pub closed_by_server: u64,
    pub good_rounds: u64,
    pub good_errors: u64,
    pub good_latency_ms: Option<[f64; 4]>,
}

impl FloodReport {
    pub fn render(&self) -> String {
        let lat = self.good_latency_ms.map_or("-".into(), |l| {
            format!(
                "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                l[0], l[1], l[2], l[3]
            )
        });
        format!(
            "floods for {:.0}s at {}: {} connections opened ({} refused or timed out), {} closed by the servers\n\
             well-behaved client meanwhile: {} checkout/heartbeat/checkin rounds, {} errors; per request {lat}\n",
            self.seconds,
            self.ports.join(" "),
            self.connections_opened,
            self.connect_failures,
            self.closed_by_server,
            self.good_rounds,
            self.good_errors,
        )
    }
}

/// The good client's rounds, errors and latency (p50, p90, p99, max in ms).
type GoodOutcome = (u64, u64, Option<[f64; 4]>);

pub struct Floods {
    stop: Arc<AtomicBool>,
    started: Instant,
    ports: Vec<String>,
    flood: Option<JoinHandle<(u64, u64, u64)>>,
    good: Option<JoinHandle<GoodOutcome>>,
}

impl Floods {
    /// Starts the floods and the good client; both end by `within`.
    pub fn start(net: &Net, within: Duration, _rec: Arc<Recorder>) -> Floods {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + within;
        let mut ports = Vec::new();
        for node in [Node::Primary, Node::Backup] {
            for port in [CLIENT_PORT, PEER_PORT, HTTP_PORT] {
                ports.push(format!("{}:{port}", net.addr(node, None)));
            }
        }
        let servers: Vec<String> = [Node::Primary, Node::Backup]
            .iter()
            .map(|n| format!("{}:{CLIENT_PORT}", net.addr(*n, None)))
            .collect();
        let (s1, s2) = (stop.clone(), stop.clone());
        let targets = ports.clone();
        let flood = std::thread::spawn(move || flood(&targets, &s1, deadline));
        let good = std::thread::spawn(move || good_client(servers, &s2, deadline));
        Floods {
            stop,
            started: Instant::now(),
            ports,
            flood: Some(flood),
            good: Some(good),
        }
    }

    pub fn finish(mut self) -> FloodReport {
        self.stop.store(true, Ordering::SeqCst);
        let (opened, failed, closed) = self
            .flood
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let (rounds, errors, latency) = self
            .good
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        FloodReport {
            ports: self.ports.clone(),
            seconds: self.started.elapsed().as_secs_f64(),
            connections_opened: opened,
            connect_failures: failed,
            closed_by_server: closed,
            good_rounds: rounds,
            good_errors: errors,
            good_latency_ms: latency,
        }
    }
}

impl Drop for Floods {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A stranger's connection: idle, or sending `slow` a byte at a time.
struct Stranger {
    stream: TcpStream,
    slow: Option<(&'static [u8], usize)>,
}

/// True when the server has closed the connection.
fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

fn flood(targets: &[String], stop: &AtomicBool, deadline: Instant) -> (u64, u64, u64) {
    let (mut opened, mut failed, mut closed_n) = (0u64, 0u64, 0u64);
    let mut conns: Vec<Vec<Stranger>> = targets.iter().map(|_| Vec::new()).collect();
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let round = Instant::now();
        for (i, target) in targets.iter().enumerate() {
            let Ok(addr) = target.parse::<SocketAddr>() else {
                continue;
            };
            let before = conns[i].len();
            conns[i].retain_mut(|c| !closed(&mut c.stream));
            closed_n += (before - conns[i].len()) as u64;
            let slow_line: &'static [u8] = if target.ends_with(&format!(":{HTTP_PORT}")) {
                b"GET /status.json HTTP/1.1\r\nHost: flood\r\n\r\n"
            } else {
                b"HELLO proto=1 client=slow user=slow host=slow\n"
            };
            let slow_now = conns[i].iter().filter(|c| c.slow.is_some()).count();
            let want = IDLE_PER_PORT + SLOW_PER_PORT;
            for n in 0..OPEN_PER_ROUND.min(want.saturating_sub(conns[i].len())) {
                if stop.load(Ordering::SeqCst) || round.elapsed() > Duration::from_millis(800) {
                    break;
                }
                match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                    Ok(stream) => {
                        let _ = stream.set_nonblocking(true);
                        opened += 1;
                        let slow = (slow_now + n < SLOW_PER_PORT).then_some((slow_line, 0));
                        conns[i].push(Stranger { stream, slow });
                    }
                    Err(_) => failed += 1,
                }
            }
            for c in conns[i].iter_mut() {
                if let Some((line, sent)) = &mut c.slow {
                    if *sent < line.len() && c.stream.write(&line[*sent..*sent + 1]).is_ok() {
                        *sent += 1;
                    }
                }
            }
        }
        let next = round + Duration::from_secs(1);
        while Instant::now() < next && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (opened, failed, closed_n)
}

/// Checkout, heartbeat, checkin on an uncounted feature, timing each request.
fn good_client(servers: Vec<String>, stop: &AtomicBool, deadline: Instant) -> GoodOutcome {
    let mut config = ClientConfig::new(
        servers,
        Identity {
            client: "good-client".into(),
            user: "good".into(),
            host: "good-host".into(),
        },
    );
    config.io_timeout = Duration::from_secs(2);
    config.failover_timeout = Duration::from_secs(6);
    let client = Client::new(config);
    let version = Version::parse("1.0").expect("a version");
    let mut latency = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    let (mut rounds, mut errors) = (0u64, 0u64);
    let mut timed = |f: &mut dyn FnMut() -> bool| {
        let t = Instant::now();
        let ok = f();
        let _ = latency.record(t.elapsed().as_micros() as u64);
        ok
    };
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && rounds < 10_000_000 {
        let mut handle = None;
        let ok = timed(&mut || match client.checkout(FREE_FEATURE, &version, 1) {
            Ok(s) => {
                handle = Some(s.handle);
                true
            }
            Err(_) => false,
        });
        let Some(h) = handle.filter(|_| ok) else {
            errors += 1;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        if !timed(&mut || client.heartbeat(&h).is_ok()) {
            errors += 1;
        }
        if !timed(&mut || client.checkin(&h).is_ok()) {
            errors += 1;
        }
        rounds += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let figures =
        (!latency.is_empty()).then(|| [ms(0.5), ms(0.9), ms(0.99), latency.max() as f64 / 1000.0]);
    (rounds, errors, figures)
}
