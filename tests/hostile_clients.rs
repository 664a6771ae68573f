//! Hostile clients against a real `floatd`: a client that takes seat
//! after seat, a token guesser, and a slowloris on the HTTP port. A
//! well-behaved client is served during each.
#![cfg(not(feature = "embedded-keys-only"))]

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FEATURES: &str = "FEATURE viewer version=1.0 count=uncounted expires=permanent\n\
                        FEATURE good version=1.0 count=10 expires=permanent";

fn serve(extra: &[&str]) -> (Site, Floatd) {
    let site = Site::new(FEATURES);
    let mut args = site.server_args("state");
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Floatd::start(&args, &site.path("floatd.log"));
    (site, server)
}

#[test]
fn one_client_cannot_take_more_checkouts_than_the_limit() {
    let (_site, server) = serve(&["--max-checkouts-per-client", "50"]);
    let good = GoodClient::start(&server.addr, "good");
    let mut greedy = LineClient::hello(&server.addr, "greedy", "ws1");
    let mut batch = String::new();
    for _ in 0..200 {
        batch.push_str("CHECKOUT viewer\n");
    }
    greedy.stream.write_all(batch.as_bytes()).unwrap();
    let replies: Vec<String> = (0..200).map(|_| greedy.read_line().unwrap()).collect();
    let granted: Vec<String> = replies.iter().filter_map(|r| field(r, "handle")).collect();
    assert_eq!(granted.len(), 50);
    let refused = &replies[50];
    assert!(refused.starts_with("ERR CLIENT_LIMIT"), "{refused}");
    assert!(refused.contains("max_checkouts_per_client"), "{refused}");
    assert!(replies[50..]
        .iter()
        .all(|r| r.starts_with("ERR CLIENT_LIMIT")));
    // Queued checkouts count too: nothing more by waiting.
    assert!(greedy
        .ask("CHECKOUT good wait=yes")
        .starts_with("ERR CLIENT_LIMIT"));
    println!("after 200 greedy checkouts: {}", good.latency());

    // Checking one in makes room for one.
    assert_eq!(greedy.ask(&format!("CHECKIN {}", granted[0])), "OK");
    assert!(greedy.checkout("viewer").is_ok());
    assert!(greedy
        .ask("CHECKOUT viewer")
        .starts_with("ERR CLIENT_LIMIT"));

    // Other clients are not affected, and refusals are not written to
    // the report log (a runaway client would fill it).
    let mut other = LineClient::hello(&server.addr, "other", "ws2");
    assert!(other.checkout("viewer").is_ok());
    let status = other.status();
    assert_eq!(used(&status, "viewer"), 51);
    good.wait_served(3, "while a greedy client hit its limit");
    let log = std::fs::read_to_string(
        Floatd::state_dir_of(&_site.server_args("state")).join("report.log"),
    )
    .unwrap();
    assert!(!log.contains("CLIENT_LIMIT"), "{log}");
    println!("{}", good.latency());
    good.finish();
}

#[test]
fn the_default_limit_is_a_thousand_checkouts() {
    let (_site, server) = serve(&[]);
    let mut greedy = LineClient::hello(&server.addr, "greedy", "ws1");
    let mut batch = String::new();
    for _ in 0..1001 {
        batch.push_str("CHECKOUT viewer\n");
    }
    greedy.stream.write_all(batch.as_bytes()).unwrap();
    let replies: Vec<String> = (0..1001).map(|_| greedy.read_line().unwrap()).collect();
    assert!(replies[..1000].iter().all(|r| r.starts_with("OK handle=")));
    assert!(
        replies[1000].starts_with("ERR CLIENT_LIMIT"),
        "{}",
        replies[1000]
    );
}

#[test]
fn admin_token_guessing_is_limited_per_address() {
    let site = Site::new(FEATURES);
    let token = site.path("admin.token");
    std::fs::write(&token, "the-right-admin-token\n").unwrap();
    let mut args = site.server_args("state");
    args.extend([
        "--admin-token-file".to_string(),
        token.display().to_string(),
        "--admin-token-always".to_string(),
    ]);
    let server = Floatd::start(&args, &site.path("floatd.log"));
    let good = GoodClient::start(&server.addr, "good");
    let addr: SocketAddr = server.addr.parse().unwrap();
    let from = |ip: &str| {
        let local: SocketAddr = format!("{ip}:0").parse().unwrap();
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&local.into()).unwrap();
        socket.connect(&addr.into()).unwrap();
        LineClient::adopt(socket.into())
    };
    let mut guesser = from("127.0.0.2");
    assert!(guesser.read_line().unwrap().starts_with("FLOATD "));
    let mut replies = Vec::new();
    for i in 0..8 {
        replies.push(guesser.ask(&format!("AUTH guess-{i}")));
    }
    assert!(
        replies[..5]
            .iter()
            .all(|r| r.starts_with("ERR ADMIN_REQUIRED")),
        "{replies:?}"
    );
    assert!(
        replies[5..].iter().all(|r| r.starts_with("ERR AUTH_LIMIT")),
        "{replies:?}"
    );
    // Even the right token is not looked at now, from that address...
    assert!(guesser
        .ask("AUTH the-right-admin-token")
        .starts_with("ERR AUTH_LIMIT"));
    // ...on any of its connections.
    let mut again = from("127.0.0.2");
    again.read_line().unwrap();
    assert!(again
        .ask("AUTH the-right-admin-token")
        .starts_with("ERR AUTH_LIMIT"));
    // Another address is not affected.
    let mut operator = from("127.0.0.3");
    operator.read_line().unwrap();
    assert_eq!(operator.ask("AUTH the-right-admin-token"), "OK admin=yes");
    good.wait_served(3, "while a client guessed tokens");
    println!("{}", good.latency());
    assert!(server.log_text().contains("too many wrong admin tokens"));
    good.finish();
}

/// Opens connections to the HTTP port from `ip` and trickles a request
/// head one byte a second, reopening each when the server closes it.
fn slowloris(
    target: SocketAddr,
    ip: &'static str,
    each: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..each)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\n";
                while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(120) {
                    let local: SocketAddr = format!("{ip}:0").parse().unwrap();
                    let socket =
                        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                            .unwrap();
                    if socket.bind(&local.into()).is_err()
                        || socket
                            .connect_timeout(&target.into(), Duration::from_secs(1))
                            .is_err()
                    {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    let mut s: TcpStream = socket.into();
                    for b in head.iter().cycle() {
                        if stop.load(Ordering::SeqCst) || s.write_all(&[*b]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1000));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect()
}

/// One GET from loopback; the status code, or the error.
fn get(addr: &str, path: &str) -> Result<u16, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {answer:?}"))
}

#[test]
fn a_slowloris_on_the_http_port_does_not_keep_others_out() {
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http_addr = http.local_addr().unwrap().to_string();
    drop(http);
    let (_site, server) = serve(&["--http", &http_addr]);
    let http_addr = server.http_addr.clone().unwrap();
    let target: SocketAddr = http_addr.parse().unwrap();
    let good = GoodClient::start(&server.addr, "good");
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    // Eight addresses with 12 slow connections each: more than the port
    // holds (64) and than one address may hold (8).
    for ip in [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.5",
        "127.0.0.6",
        "127.0.0.7",
        "127.0.0.8",
        "127.0.0.9",
    ] {
        threads.extend(slowloris(target, ip, 12, stop.clone()));
    }
    // The port is full of slow connections by now (they connect at once).
    wait_until(PATIENCE, "the slowloris to connect", || {
        let conns = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let port = format!(":{:04X}", target.port());
        conns
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(&port))
            })
            .count()
            >= 64
    });
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let started = Instant::now();
        let code = get(&http_addr, "/metrics");
        worst = worst.max(started.elapsed());
        assert_eq!(code, Ok(200), "request {i} during the slowloris");
    }
    println!(
        "20 GET /metrics during the slowloris: worst {:?}; {}",
        worst,
        good.latency()
    );
    good.wait_served(3, "during the slowloris");
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    good.finish();
}
