//! Failover through real processes: a primary and a backup on loopback,
//! their peer links through proxies the tests control.

mod common;

use common::history::History;
use common::*;
use floatd::client::{Client, ClientError, Seat};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CAD4: &str = "FEATURE cad version=1.0 count=4 expires=permanent";

/// A client that holds one seat (heartbeating) for the whole test.
fn holder(servers: &str, user: &str, history: &History) -> (Client, Seat) {
    let c = library_client(servers, user);
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
            let c = library_client(servers, &format!("churn{i}"));
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
                        Err(ClientError::Denied { .. }) => {
                            std::thread::sleep(Duration::from_millis(10))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        })
        .collect()
}

fn held_handles(addr: &str) -> ListedSeats {
    ListedSeats(
        status_json(addr)["features"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["holders"].as_array().unwrap().clone())
            .map(|h| h["seat"].as_str().unwrap().to_string())
            .collect(),
    )
}

#[test]
fn primary_killed_under_load_the_backup_takes_over_with_every_seat() {
    let mut pair = Pair::start(CAD4, &fast_with(&["--lease", "10s"]));
    let servers = pair.servers();
    let history = Arc::new(History::new());
    let holders: Vec<(Client, Seat)> = (0..2)
        .map(|i| holder(&servers, &format!("holder{i}"), &history))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let workers = churn(&servers, 3, &history, &stop);
    wait_until(PATIENCE, "some load on the primary", || {
        history.grants() >= 20
    });

    let killed = Instant::now();
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    let took = killed.elapsed();
    // takeover_after is 1 s here; generous slack for a loaded machine.
    assert!(took < Duration::from_secs(11), "takeover took {took:?}");

    let before = history.grants();
    wait_until(PATIENCE, "service on the backup", || {
        history.grants() >= before + 20
    });
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let held = held_handles(&backup);
    for (_, seat) in &holders {
        assert!(
            held.contains(&seat.handle),
            "seat {} lost in the failover",
            seat.handle
        );
    }
    history.assert_never_over("cad", 4);
    for (c, _) in holders {
        c.stop_heartbeats();
    }
}

#[test]
fn a_restarted_primary_takes_back_and_clients_follow() {
    let mut pair = Pair::start(CAD4, &fast_with(&["--lease", "10s"]));
    let servers = pair.servers();
    let history = History::new();
    let (c, seat) = holder(&servers, "alice", &history);
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    // A checkout on the backup while the primary is away.
    let other = library_client(&servers, "bob");
    let bob = other.checkout("cad", &v1(), 1).expect("the backup grants");

    pair.start_primary();
    pair.wait_states("active", "ready");
    // Every seat, granted by either server, is held by the primary.
    let held = held_handles(&pair.primary_addr());
    assert!(
        held.contains(&seat.handle) && held.contains(&bob.handle),
        "{held:?}"
    );
    // Clients move back by themselves.
    other
        .heartbeat(&bob.handle)
        .expect("heartbeat after failback");
    assert_eq!(
        other.current_server().as_deref(),
        Some(pair.primary_addr().as_str())
    );
    c.heartbeat(&seat.handle).expect("heartbeat after failback");
    assert_eq!(
        c.current_server().as_deref(),
        Some(pair.primary_addr().as_str())
    );
    // The backup's report log records what it served; the primary's has it too.
    let primary_log = std::fs::read_to_string(pair.site.path("state-primary/report.log")).unwrap();
    assert!(
        primary_log.contains(&bob.handle),
        "the primary's report log lacks the backup's grant"
    );
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
        c.greeting
            .contains(&format!("active={}", pair.primary_addr())),
        "{}",
        c.greeting
    );
    let reply = c.ask("CHECKOUT cad");
    assert!(reply.starts_with("ERR STANDBY"), "{reply}");
    assert!(
        reply.contains(&format!("active={}", pair.primary_addr())),
        "{reply}"
    );
    // The primary's greeting names the backup, so a client given the
    // primary alone finds it.
    let p = LineClient::connect(&pair.primary_addr());
    assert!(
        p.greeting.contains(&format!("peer={}", pair.backup_addr())),
        "{}",
        p.greeting
    );
}

fn log_of(server: &Option<Floatd>) -> String {
    server.as_ref().map(|s| s.log_text()).unwrap_or_default()
}

#[test]
fn a_frozen_primary_is_replaced_and_takes_back_without_doubling_a_seat() {
    let pair = Pair::start(CAD4, &fast_with(&["--lease", "10s"]));
    let servers = pair.servers();
    let history = Arc::new(History::new());
    let (alice, seat) = holder(&servers, "alice", &history);
    pair.primary.as_ref().unwrap().signal("STOP");
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    let stop = Arc::new(AtomicBool::new(false));
    let workers = churn(&servers, 2, &history, &stop);
    wait_until(PATIENCE, "service on the backup", || history.grants() >= 10);

    pair.primary.as_ref().unwrap().signal("CONT");
    wait_until(PATIENCE, "the primary to take back", || {
        server_state(&pair.primary_addr()) == "active" && server_state(&backup) == "ready"
    });
    let before = history.grants();
    wait_until(PATIENCE, "service after failback", || {
        history.grants() >= before + 10
    });
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        held_handles(&pair.primary_addr()).contains(&seat.handle),
        "alice's seat was lost:\n{}",
        pair.logs()
    );
    history.assert_never_over("cad", 4);
    alice.stop_heartbeats();
    let log = log_of(&pair.primary);
    assert!(
        log.contains("was paused"),
        "the primary noticed its pause:\n{log}"
    );
}

#[test]
fn a_restarted_backup_catches_up() {
    let mut pair = Pair::start(CAD4, FAST);
    let primary = pair.primary_addr();
    let mut c = LineClient::hello(&primary, "alice", "ws1");
    let first = c.checkout("cad").unwrap();
    pair.backup.as_mut().unwrap().kill9();
    // The primary carries on alone.
    let second = c.checkout("cad").unwrap();
    let third = c.checkout("cad").unwrap();
    assert!(c.ask(&format!("CHECKIN {second}")).starts_with("OK"));
    pair.start_backup();
    pair.wait_states("active", "ready");
    // The backup's own ledger holds exactly what the primary holds.
    let mut b = LineClient::connect(&pair.backup_addr());
    let status = b.ask("STATUS");
    let json: serde_json::Value =
        serde_json::from_str(status.strip_prefix("STATUS ").unwrap()).unwrap();
    let held: Vec<&str> = json["features"][0]["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["seat"].as_str().unwrap())
        .collect();
    assert!(
        held.contains(&seat_of(&first).as_str()) && held.contains(&seat_of(&third).as_str()),
        "{held:?}"
    );
    assert!(!held.contains(&seat_of(&second).as_str()), "{held:?}");
    wait_until(PATIENCE, "replication lag back to zero", || {
        status_json(&primary)["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["role"] == "backup" && s["lag"] == 0 && s["state"] == "ready")
    });
}

/// Seats granted through one server alone (a client that knows only it).
fn grab(addr: &str, user: &str, n: usize) -> Vec<String> {
    let mut c = LineClient::hello(addr, user, "ws");
    (0..n).filter_map(|_| c.checkout("cad").ok()).collect()
}

#[test]
fn a_cut_peer_link_over_grants_within_the_bound_and_the_pair_converges() {
    let pair = Pair::start("FEATURE cad version=1.0 count=2 expires=permanent", FAST);
    let (primary, backup) = (pair.primary_addr(), pair.backup_addr());
    let before = grab(&primary, "early", 1);
    pair.to_primary.blackhole();
    pair.to_backup.blackhole();
    wait_until(PATIENCE, "both servers active", || {
        server_state(&backup) == "active" && server_state(&primary) == "active"
    });
    // Clients that reach only one server each: together they may get the
    // pool twice over (the documented bound for two-server mode), no more.
    let on_primary = grab(&primary, "p-users", 3);
    let on_backup = grab(&backup, "b-users", 3);
    assert!(
        on_primary.len() <= 1,
        "the primary had 1 free seat: {on_primary:?}"
    );
    assert!(
        on_backup.len() <= 1,
        "the backup had 1 free seat: {on_backup:?}"
    );
    let total = before.len() + on_primary.len() + on_backup.len();
    assert!(
        total <= 2 * 2,
        "over-grant beyond the documented bound: {total}"
    );

    pair.to_primary.heal();
    pair.to_backup.heal();
    wait_until(PATIENCE, "one active server again", || {
        let (p, b) = (server_state(&primary), server_state(&backup));
        (p == "active") != (b == "active") && (p == "ready" || b == "ready")
    });
    // Every seat granted on either side is accounted for on the active one.
    let active = if server_state(&primary) == "active" {
        &primary
    } else {
        &backup
    };
    let held = held_handles(active);
    for h in before.iter().chain(&on_primary).chain(&on_backup) {
        assert!(
            held.contains(h),
            "seat {h} lost when the pair converged:\n{}",
            pair.logs()
        );
    }
    // And the pool takes no new checkout until use is back under the count.
    if total >= 2 {
        assert!(grab(active, "late", 1).is_empty());
    }
}

#[test]
fn a_backup_not_in_sync_runs_a_recovery_period_of_one_lease() {
    let mut pair = Pair::build(CAD4, &fast_with(&["--lease", "4s"]));
    pair.start_primary();
    // Alone, the primary serves after takeover_after and one lease of
    // recovery (it cannot know what a backup may have granted).
    let primary = pair.primary_addr();
    wait_until(PATIENCE, "the lone primary to serve", || {
        server_state(&primary) == "active"
    });
    // The backup will never hear the primary: it cannot be in sync.
    pair.to_backup.blackhole();
    let history = History::new();
    let (alice, seat) = holder(&pair.primary_addr(), "alice", &history);
    pair.start_backup();
    let servers = pair.servers();
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over in recovery", || {
        server_state(&backup) == "recovering"
    });
    let started = Instant::now();
    // New seats are refused during the recovery period...
    let mut c = LineClient::hello(&backup, "bob", "ws2");
    let reply = c.ask("CHECKOUT cad");
    assert!(reply.starts_with("ERR RECOVERING"), "{reply}");
    // ...while a seat granted by the old primary, which the backup never
    // saw, is reclaimed by its proven handle.
    let moved = library_client(&servers, "alice");
    moved.adopt(seat.clone());
    alice.stop_heartbeats();
    moved
        .heartbeat(&seat.handle)
        .expect("reclaim on the recovering backup");
    assert!(held_handles(&backup).contains(&seat.handle));
    wait_until(PATIENCE, "the recovery period to end", || {
        server_state(&backup) == "active"
    });
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "recovery ended too soon: {:?}",
        started.elapsed()
    );
    assert!(c.checkout("cad").is_ok());
}

#[test]
fn forged_replayed_and_cut_peer_messages_are_refused() {
    use floatd::protocol::peer::{FrameAuth, PeerMessage, CHALLENGE_LEN};
    use std::io::{Read, Write};
    let pair = Pair::start(CAD4, FAST);
    let target = pair.backup.as_ref().unwrap().peer_addr.clone().unwrap();
    let hello = PeerMessage::Hello {
        role: "primary".into(),
        format: 1,
    };
    let connect = || {
        let mut s = std::net::TcpStream::connect(&target).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut challenge = [0u8; CHALLENGE_LEN];
        s.read_exact(&mut challenge).unwrap();
        (s, challenge)
    };
    let closed = |mut s: std::net::TcpStream| {
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(0) | Err(_))
    };
    // Wrong secret.
    let (mut s, challenge) = connect();
    s.write_all(&FrameAuth::new(b"not-the-secret-at-all", challenge, true).seal(&hello))
        .unwrap();
    assert!(closed(s), "a frame with a wrong secret closes the link");
    // Replayed from another connection (another challenge).
    let secret = std::fs::read_to_string(pair.site.path("secret")).unwrap();
    let secret = secret.trim().as_bytes().to_vec();
    let (_, old_challenge) = connect();
    let old_frame = FrameAuth::new(&secret, old_challenge, true).seal(&hello);
    let (mut s, _) = connect();
    s.write_all(&old_frame).unwrap();
    assert!(closed(s), "a frame from another connection closes the link");
    // Replayed within one connection.
    let (mut s, challenge) = connect();
    let frame = FrameAuth::new(&secret, challenge, true).seal(&hello);
    s.write_all(&frame).unwrap();
    s.write_all(&frame).unwrap();
    assert!(closed(s), "a replayed frame closes the link");
    // Cut short, then garbage.
    let (mut s, challenge) = connect();
    let frame = FrameAuth::new(&secret, challenge, true).seal(&hello);
    s.write_all(&frame[..frame.len() / 2]).unwrap();
    drop(s);
    let (mut s, _) = connect();
    s.write_all(&[0xff; 200]).unwrap();
    assert!(closed(s), "garbage closes the link");

    let log = pair.backup.as_ref().unwrap().log_text();
    assert!(log.contains("authentication failed"), "{log}");
    assert!(log.contains("replayed or reordered"), "{log}");
    // No role changed: the real link still carries the pair.
    std::thread::sleep(Duration::from_millis(1500)); // longer than takeover_after
    pair.wait_states("active", "ready");
    assert!(!log.contains("taking over"), "{log}");
}

#[test]
fn the_backup_refuses_new_seats_after_backup_max_and_the_primary_stops_advertising_a_lost_backup() {
    let mut pair = Pair::start(
        CAD4,
        &fast_with(&["--backup-max-days", "2s", "--backup-lost-after-days", "3s"]),
    );
    let mut c = LineClient::hello(&pair.primary_addr(), "alice", "ws1");
    let held = c.checkout("cad").unwrap();
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    let mut b = LineClient::hello(&backup, "bob", "ws2");
    wait_until(PATIENCE, "backup_max to pass", || {
        b.ask("CHECKOUT cad").starts_with("ERR BACKUP_EXPIRED")
    });
    // Seats already out carry on.
    let mut a = LineClient::hello(&backup, "alice", "ws1");
    assert!(a
        .ask(&format!("RECLAIM {held} feature=cad version=0 count=1"))
        .starts_with("OK"));
    assert!(pair
        .backup
        .as_ref()
        .unwrap()
        .log_text()
        .contains("backup_max_days"));

    // The primary returns, takes back; then the backup disappears for good.
    pair.start_primary();
    pair.wait_states("active", "ready");
    pair.backup.as_mut().unwrap().kill9();
    let primary = pair.primary_addr();
    wait_until(
        PATIENCE,
        "the primary to stop advertising the backup",
        || !LineClient::connect(&primary).greeting.contains("peer="),
    );
    let alerts = status_json(&primary)["alerts"].to_string();
    assert!(alerts.contains("not been seen"), "{alerts}");
}

#[test]
fn floatctl_hold_given_only_the_primary_survives_a_failover_and_says_so() {
    let mut pair = Pair::start(CAD4, &fast_with(&["--lease", "3s"]));
    let err = pair.site.path("hold.err");
    // Only the primary is named: the backup is learnt from its greeting.
    let primary = pair.primary_addr();
    let hold = Spawned::floatctl(
        &[
            "--server", &primary, "--user", "alice", "checkout", "cad", "--hold", "60",
        ],
        &err,
    );
    let handle = hold.line(PATIENCE).expect("the handle on stdout");
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    wait_until(PATIENCE, "floatctl to say it moved", || {
        std::fs::read_to_string(&err)
            .unwrap_or_default()
            .contains("kept on")
    });
    let said = std::fs::read_to_string(&err).unwrap();
    assert!(said.contains(&backup), "{said}");
    // Well past the 3 s lease: heartbeats on the backup keep the seat.
    std::thread::sleep(Duration::from_secs(4));
    assert!(held_handles(&backup).contains(&handle), "{said}");
}

#[test]
fn servers_serving_different_licences_raise_an_alert_until_fixed() {
    let pair = Pair::start(CAD4, FAST);
    let backup = pair.backup_addr();
    let alerted = |addr: &str| {
        status_json(addr)["alerts"]
            .to_string()
            .contains("different licences")
    };
    assert!(!alerted(&pair.primary_addr()));
    // The backup rereads a licence with another count; the primary does not.
    pair.site
        .resign("FEATURE cad version=1.0 count=9 expires=permanent");
    let reread = floatctl(&["--server", &backup, "reread"]);
    assert!(
        reread.status.success(),
        "{}",
        String::from_utf8_lossy(&reread.stderr)
    );
    wait_until(PATIENCE, "the mismatch alert", || {
        alerted(&pair.primary_addr())
    });
    assert!(pair
        .backup
        .as_ref()
        .unwrap()
        .log_text()
        .contains("serves different licences"));
    // The primary rereads too: the files agree again.
    let reread = floatctl(&["--server", &pair.primary_addr(), "reread"]);
    assert!(reread.status.success());
    wait_until(PATIENCE, "the alert to clear", || {
        !alerted(&pair.primary_addr())
    });
}
