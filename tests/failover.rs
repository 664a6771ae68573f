//! Failover through real processes: a primary and a backup on loopback,
//! their peer links through proxies the tests control.

mod common;

use common::history::History;
use common::*;
use floatd::client::{parse_server_list, Client, ClientConfig, ClientError, Identity, Seat};
use floatd::licence::Version;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CAD4: &str = "FEATURE cad version=1.0 count=4 expires=permanent";

fn flags(extra: &[&'static str]) -> Vec<&'static str> {
    let mut f = FAST.to_vec();
    f.extend_from_slice(extra);
    f
}

fn client(servers: &str, user: &str) -> Client {
    let mut config = ClientConfig::new(
        parse_server_list(servers),
        Identity {
            client: format!("{user}-client"),
            user: user.to_string(),
            host: format!("{user}-host"),
        },
    );
    config.io_timeout = Duration::from_secs(2);
    config.failover_timeout = Duration::from_secs(20);
    Client::new(config)
}

fn v1() -> Version {
    Version::parse("1.0").unwrap()
}

/// A client that holds one seat (heartbeating) for the whole test.
fn holder(servers: &str, user: &str, history: &History) -> (Client, Seat) {
    let c = client(servers, user);
    let seat = c.checkout("cad", &v1(), 1).expect("holder checkout");
    history.granted("cad", 1, &seat.handle);
    c.start_heartbeats();
    (c, seat)
}

/// Threads that check seats out and in until `stop`, recording history.
fn churn(
    servers: &str,
    workers: usize,
    history: &Arc<History>,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    (0..workers)
        .map(|i| {
            let c = client(servers, &format!("churn{i}"));
            let (history, stop) = (history.clone(), stop.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    match c.checkout("cad", &v1(), 1) {
                        Ok(seat) => {
                            history.granted("cad", 1, &seat.handle);
                            std::thread::sleep(Duration::from_millis(5));
                            history.returning(&seat.handle);
                            let _ = c.checkin(&seat.handle);
                        }
                        Err(ClientError::Denied { .. }) => std::thread::sleep(Duration::from_millis(10)),
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        })
        .collect()
}

fn held_handles(addr: &str) -> Vec<String> {
    status_json(addr)["features"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["holders"].as_array().unwrap().clone())
        .map(|h| h["handle"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn primary_killed_under_load_the_backup_takes_over_with_every_seat() {
    let mut pair = Pair::start(CAD4, &flags(&["--lease", "10s"]));
    let servers = pair.servers();
    let history = Arc::new(History::new());
    let holders: Vec<(Client, Seat)> = (0..2)
        .map(|i| holder(&servers, &format!("holder{i}"), &history))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let workers = churn(&servers, 3, &history, &stop);
    wait_until(PATIENCE, "some load on the primary", || history.grants() >= 20);

    let killed = Instant::now();
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || server_state(&backup) == "active");
    let took = killed.elapsed();
    // takeover_after is 1 s here; generous slack for a loaded machine.
    assert!(took < Duration::from_secs(11), "takeover took {took:?}");

    let before = history.grants();
    wait_until(PATIENCE, "service on the backup", || history.grants() >= before + 20);
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let held = held_handles(&backup);
    for (_, seat) in &holders {
        assert!(held.contains(&seat.handle), "seat {} lost in the failover", seat.handle);
    }
    history.assert_never_over("cad", 4);
    for (c, _) in holders {
        c.stop_heartbeats();
    }
}

#[test]
fn a_restarted_primary_takes_back_and_clients_follow() {
    let mut pair = Pair::start(CAD4, &flags(&["--lease", "10s"]));
    let servers = pair.servers();
    let history = History::new();
    let (c, seat) = holder(&servers, "alice", &history);
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || server_state(&backup) == "active");
    // A checkout on the backup while the primary is away.
    let other = client(&servers, "bob");
    let bob = other.checkout("cad", &v1(), 1).expect("the backup grants");

    pair.start_primary();
    pair.wait_states("active", "ready");
    // Every seat, granted by either server, is held by the primary.
    let held = held_handles(&pair.primary_addr());
    assert!(held.contains(&seat.handle) && held.contains(&bob.handle), "{held:?}");
    // Clients move back by themselves.
    other.heartbeat(&bob.handle).expect("heartbeat after failback");
    assert_eq!(other.current_server().as_deref(), Some(pair.primary_addr().as_str()));
    c.heartbeat(&seat.handle).expect("heartbeat after failback");
    assert_eq!(c.current_server().as_deref(), Some(pair.primary_addr().as_str()));
    // The backup's report log records what it served; the primary's has it too.
    let primary_log = std::fs::read_to_string(pair.site.path("state-primary/report.log")).unwrap();
    assert!(primary_log.contains(&bob.handle), "the primary's report log lacks the backup's grant");
    let status = status_json(&pair.primary_addr());
    let epoch = status["epoch"].as_u64().unwrap();
    assert!(epoch >= 3, "failback takes a higher epoch, got {epoch}");
    assert_eq!(status["servers"].as_array().unwrap().len(), 2);
    let primary = pair.primary_addr();
    wait_until(PATIENCE, "status to show the backup ready", || {
        status_json(&primary)["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["role"] == "backup" && s["state"] == "ready")
    });
}

#[test]
fn the_standby_answers_checkouts_with_the_active_server() {
    let pair = Pair::start(CAD4, FAST);
    let mut c = LineClient::hello(&pair.backup_addr(), "alice", "ws1");
    assert!(c.greeting.contains("state=ready"), "{}", c.greeting);
    assert!(
        c.greeting.contains(&format!("active={}", pair.primary_addr())),
        "{}",
        c.greeting
    );
    let reply = c.ask("CHECKOUT cad");
    assert!(reply.starts_with("ERR STANDBY"), "{reply}");
    assert!(reply.contains(&format!("active={}", pair.primary_addr())), "{reply}");
    // The primary's greeting names the backup, so a client given the
    // primary alone finds it.
    let p = LineClient::connect(&pair.primary_addr());
    assert!(p.greeting.contains(&format!("peer={}", pair.backup_addr())), "{}", p.greeting);
}
