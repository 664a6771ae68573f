//! Witness mode through real processes: a primary, a backup and a witness
//! on loopback, every link through a proxy the tests control. In every
//! case no seat is granted twice and no granted seat is lost; each test
//! prints how long service was unavailable.

mod common;

use common::history::History;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CAD3: &str = "FEATURE cad version=1.0 count=3 expires=permanent";

/// Clients that keep checking seats out and in, some reaching only the
/// primary, some only the backup (so a split pair would double-grant).
struct Load {
    history: Arc<History>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(pair: &Pair) -> Load {
        let history = Arc::new(History::new());
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for (i, addr) in [
            pair.primary_addr(),
            pair.backup_addr(),
            pair.primary_addr(),
            pair.backup_addr(),
        ]
        .into_iter()
        .enumerate()
        {
            let (history, stop) = (history.clone(), stop.clone());
            workers.push(std::thread::spawn(move || {
                churn_on(&addr, &format!("u{i}"), &history, &stop)
            }));
        }
        Load {
            history,
            stop,
            workers,
        }
    }

    fn finish(self) -> Arc<History> {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers {
            w.join().unwrap();
        }
        self.history
    }
}

/// Checks out and in on one server only, reconnecting when it goes away.
fn churn_on(addr: &str, user: &str, history: &History, stop: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut conn: Option<LineClient> = None;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let c = match &mut conn {
            Some(c) => c,
            None => match LineClient::try_connect(addr) {
                Some(mut c) => {
                    let hello = format!("HELLO proto=1 client={user}-c user={user} host={user}-h");
                    if c.try_ask(&hello).is_none_or(|r| !r.starts_with("OK")) {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    conn.insert(c)
                }
                None => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let Some(reply) = c.try_ask("CHECKOUT cad") else {
            conn = None;
            continue;
        };
        let Some(handle) = field(&reply, "handle") else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        history.granted("cad", 1, &handle);
        std::thread::sleep(Duration::from_millis(10));
        history.returning(&handle);
        if c.try_ask(&format!("CHECKIN {handle}")).is_none() {
            conn = None;
        }
    }
}

/// A client of both servers holding one seat, heartbeating.
fn holding_client(pair: &Pair) -> floatd::client::Client {
    use floatd::client::{parse_server_list, Client, ClientConfig, Identity};
    let mut config = ClientConfig::new(
        parse_server_list(&pair.servers()),
        Identity {
            client: "holder-c".into(),
            user: "holder".into(),
            host: "holder-h".into(),
        },
    );
    config.io_timeout = Duration::from_secs(2);
    let c = Client::new(config);
    c.checkout("cad", &floatd::licence::Version::parse("1").unwrap(), 1)
        .expect("holder checkout");
    c.start_heartbeats();
    c
}

fn report(case: &str, history: &History, fault: Instant) {
    eprintln!(
        "witness mode, {case}: service unavailable for at most {:.1} s; {} grants; peak {} of 3",
        history.longest_gap_since(fault).as_secs_f64(),
        history.grants(),
        history.peak("cad")
    );
}

fn wait_for_grants(history: &History, more: usize, what: &str) {
    let before = history.grants();
    wait_until(PATIENCE, what, || history.grants() >= before + more);
}

#[test]
fn cutting_any_one_link_grants_no_seat_twice() {
    let pair = Pair::start_with_witness(CAD3, WITNESS_FAST);
    let load = Load::start(&pair);
    wait_for_grants(&load.history, 20, "load");

    // 1. The link between the servers: the backup cannot take over while
    //    the witness hears the primary; the primary records its standby
    //    stale at the witness and serves on.
    let fault = Instant::now();
    pair.to_primary.blackhole();
    pair.to_backup.blackhole();
    std::thread::sleep(Duration::from_secs(3)); // three takeover periods
    assert_eq!(
        server_state(&pair.backup_addr()),
        "syncing",
        "{}",
        pair.logs()
    );
    assert_eq!(server_state(&pair.primary_addr()), "active");
    wait_for_grants(&load.history, 10, "service during the cut");
    report("server-server link cut", &load.history, fault);
    pair.to_primary.heal();
    pair.to_backup.heal();
    pair.wait_states("active", "ready");

    // 2. Primary to witness: the standby renews the primary's grant lease.
    let fault = Instant::now();
    pair.primary_to_witness.as_ref().unwrap().blackhole();
    std::thread::sleep(Duration::from_secs(3));
    wait_for_grants(&load.history, 10, "service without the witness link");
    pair.wait_states("active", "ready");
    report("primary-witness link cut", &load.history, fault);
    pair.primary_to_witness.as_ref().unwrap().heal();

    // 3. Backup to witness: nothing changes.
    let fault = Instant::now();
    pair.backup_to_witness.as_ref().unwrap().blackhole();
    std::thread::sleep(Duration::from_secs(3));
    wait_for_grants(&load.history, 10, "service");
    pair.wait_states("active", "ready");
    report("backup-witness link cut", &load.history, fault);
    pair.backup_to_witness.as_ref().unwrap().heal();

    let history = load.finish();
    history.assert_never_over("cad", 3);
}

#[test]
fn a_frozen_primary_grants_nothing_when_it_wakes() {
    let pair = Pair::start_with_witness(CAD3, WITNESS_FAST);
    let load = Load::start(&pair);
    wait_for_grants(&load.history, 20, "load");
    let fault = Instant::now();
    pair.primary.as_ref().unwrap().signal("STOP");
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    wait_for_grants(&load.history, 10, "service on the backup");
    report("primary frozen", &load.history, fault);
    let thawed = Instant::now();
    pair.primary.as_ref().unwrap().signal("CONT");
    pair.wait_states("active", "ready");
    wait_for_grants(&load.history, 10, "service after failback");
    report("primary thawed, failback", &load.history, thawed);
    let history = load.finish();
    history.assert_never_over("cad", 3);
    let log = pair.primary.as_ref().unwrap().log_text();
    assert!(log.contains("steps down") || log.contains("step"), "{log}");
}

#[test]
fn a_thawed_primary_never_shows_a_seat_returned_meanwhile_as_active() {
    let pair = Pair::start_with_witness(CAD3, WITNESS_FAST);
    let primary = pair.primary_addr();
    let mut alice = LineClient::hello(&primary, "alice", "ws1");
    let handle = alice.checkout("cad").unwrap();
    let seat = seat_of(&handle);
    // A status request waits in the socket while the primary is frozen:
    // it is the first thing the primary reads when it wakes.
    let mut watcher = LineClient::connect(&primary);
    pair.primary.as_ref().unwrap().signal("STOP");
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    let mut at_backup = LineClient::hello(&backup, "alice", "ws1");
    let reply = at_backup.ask(&format!("CHECKIN {handle}"));
    assert!(reply.starts_with("OK"), "{reply}");
    watcher.send("STATUS");
    pair.primary.as_ref().unwrap().signal("CONT");
    let line = watcher.read_line().expect("a status reply");
    let status: serde_json::Value =
        serde_json::from_str(line.strip_prefix("STATUS ").unwrap()).unwrap();
    assert!(
        status["state"] != "active" || !status.to_string().contains(&seat),
        "the thawed primary showed itself active with a seat returned meanwhile: {status}"
    );
    pair.wait_states("active", "ready");
    let shown = status_json(&pair.primary_addr()).to_string();
    assert!(!shown.contains(&seat), "the seat came back: {shown}");
}

#[test]
fn a_killed_primary_is_replaced_with_the_witness_consent() {
    let mut pair = Pair::start_with_witness(CAD3, WITNESS_FAST);
    let holder = holding_client(&pair);
    let held = holder.held()[0].handle.clone();
    let load = Load::start(&pair);
    wait_for_grants(&load.history, 20, "load");
    let fault = Instant::now();
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    wait_for_grants(&load.history, 10, "service on the backup");
    report("primary killed", &load.history, fault);
    let history = load.finish();
    history.assert_never_over("cad", 3);
    let status = status_json(&backup);
    assert!(
        status.to_string().contains(&seat_of(&held)),
        "the held seat was lost:\n{}",
        pair.logs()
    );
    let witness = &status["witness"];
    assert_eq!(witness["active"], "backup", "{status}");
    assert_eq!(witness["state"], "reachable");
    assert!(witness["epoch"].as_u64().unwrap() >= 2);
    assert!(pair
        .witness
        .as_ref()
        .unwrap()
        .log_text()
        .contains("backup becomes active"));
    holder.stop_heartbeats();
}

#[test]
fn a_killed_primary_is_replaced_long_before_takeover_after() {
    // Silence alone would take 10 s here; a killed process is seen at
    // once: its connections close and its peer port refuses.
    let flags = [
        "--ping-interval",
        "100ms",
        "--takeover-after",
        "10s",
        "--sync-timeout",
        "250ms",
        "--fence-after",
        "600ms",
    ];
    let mut pair = Pair::build(CAD3, &flags);
    pair.backup_dials_primary_directly = true;
    pair.start_witness();
    pair.start_primary();
    pair.start_backup();
    pair.wait_states("active", "ready");
    let holder = holding_client(&pair);
    let held = holder.held()[0].handle.clone();
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    let deadline = Instant::now() + Duration::from_secs(7);
    while server_state(&backup) != "active" {
        assert!(
            Instant::now() < deadline,
            "the backup did not take over within 7 s:\n{}",
            pair.logs()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let status = status_json(&backup);
    assert!(
        status.to_string().contains(&seat_of(&held)),
        "the held seat was lost:\n{}",
        pair.logs()
    );
    assert!(pair.logs().contains("process is gone"), "{}", pair.logs());
    holder.stop_heartbeats();
}

#[test]
fn without_the_witness_a_cut_link_stops_granting_rather_than_risk_it() {
    let mut pair = Pair::start_with_witness(CAD3, WITNESS_FAST);
    let load = Load::start(&pair);
    wait_for_grants(&load.history, 20, "load");
    // The witness dies: the pair carries on (each renews through the other).
    pair.witness.as_mut().unwrap().kill9();
    std::thread::sleep(Duration::from_secs(2));
    wait_for_grants(&load.history, 10, "service without the witness");
    // Then the link between the servers is cut: nobody may grant.
    let fault = Instant::now();
    pair.to_primary.blackhole();
    pair.to_backup.blackhole();
    std::thread::sleep(Duration::from_secs(1)); // the grant lease (600 ms) runs out
    let stopped = load.history.grants();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        load.history.grants() <= stopped + 4,
        "grants went on with neither the standby nor the witness: {} -> {}",
        stopped,
        load.history.grants()
    );
    assert_ne!(server_state(&pair.backup_addr()), "active");
    // A majority can talk again: service resumes.
    pair.to_primary.heal();
    pair.to_backup.heal();
    wait_for_grants(&load.history, 10, "service once the servers talk again");
    report(
        "witness killed, then the server link cut",
        &load.history,
        fault,
    );
    let history = load.finish();
    history.assert_never_over("cad", 3);
}

#[test]
fn a_restarted_primary_cut_off_from_the_active_backup_does_not_serve_beside_it() {
    let mut pair = Pair::start_with_witness(CAD3, WITNESS_FAST);
    let load = Load::start(&pair);
    wait_for_grants(&load.history, 20, "load");
    pair.primary.as_mut().unwrap().kill9();
    let backup = pair.backup_addr();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    pair.to_primary.blackhole();
    pair.to_backup.blackhole();
    let fault = Instant::now();
    pair.start_primary();
    let primary = pair.primary_addr();
    // Three takeover periods: the witness refuses it every time.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let state = server_state(&primary);
        assert!(
            state != "active" && state != "recovering",
            "the primary served beside the backup"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(pair
        .witness
        .as_ref()
        .unwrap()
        .log_text()
        .contains("refused primary"));
    pair.to_primary.heal();
    pair.to_backup.heal();
    pair.wait_states("active", "ready");
    wait_for_grants(&load.history, 10, "service after the failback");
    report("primary restarted while cut off", &load.history, fault);
    let history = load.finish();
    history.assert_never_over("cad", 3);
}
