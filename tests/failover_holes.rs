//! The failover holes found by running the binaries under faults, each
//! through the real binaries: a journal that fails in a pair, a journal
//! damaged in the middle, a standby whose replicated leases run out, seats
//! checked in during a failover, a frozen backup waking, and a split
//! healing while clients hold seats on both sides. The deterministic
//! simulation (tests/simulation.rs) covers the same rules under many more
//! interleavings; these prove the wiring.

mod common;

use common::*;
use floatd::client::ClientEvent;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CAD3: &str = "FEATURE cad version=1.0 count=3 expires=permanent";
const CAD2: &str = "FEATURE cad version=1.0 count=2 expires=permanent";

/// Seats of `feature` a server counts.
fn counted(addr: &str, feature: &str) -> u64 {
    in_use(addr, feature)
}

/// Hole 1 and 2: in a pair, a primary whose journal write fails (here a
/// file-size limit, as on a full disk) answers every request, takes back
/// the grants it could not record, and hands over to its in-sync backup,
/// which counts exactly the seats clients were told they hold.
#[test]
fn a_primary_whose_disk_fills_answers_everything_and_hands_over() {
    let mut pair = Pair::build(CAD3, FAST);
    pair.primary_file_limit_kib = Some(24);
    pair.start_primary();
    pair.start_backup();
    pair.wait_states("active", "ready");
    let primary = pair.primary_addr();
    let backup = pair.backup_addr();
    let mut c = LineClient::hello(&primary, "alice", "ws1");
    let mut held: Vec<String> = Vec::new();
    let mut failed_with = None;
    // Check seats out and in until the journal can take no more; every
    // request must be answered (the line client waits at most PATIENCE).
    for i in 0..5_000 {
        let reply = c.ask("CHECKOUT cad");
        match field(&reply, "handle") {
            Some(h) if reply.starts_with("OK") => {
                if i % 3 == 0 {
                    held.push(h); // keep some
                    if held.len() == 3 {
                        let back = held.remove(0);
                        let r = c.ask(&format!("CHECKIN {back}"));
                        if !r.starts_with("OK") {
                            held.insert(0, back);
                            failed_with = Some(r);
                            break;
                        }
                    }
                } else {
                    let r = c.ask(&format!("CHECKIN {h}"));
                    if !r.starts_with("OK") {
                        held.push(h);
                        failed_with = Some(r);
                        break;
                    }
                }
            }
            _ => {
                failed_with = Some(reply);
                break;
            }
        }
    }
    let failed_with = failed_with.expect("the journal never filled");
    assert!(
        ["JOURNAL_FAILED", "STANDBY", "NOT_ACTIVE"]
            .iter()
            .any(|code| failed_with.contains(code)),
        "{failed_with}"
    );
    // Later requests on the same connection are answered too.
    let pong = c.ask("PING");
    assert_eq!(pong, "PONG");
    // The backup takes over, and counts what the client holds: no seat
    // locked for a client that never got its handle.
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    wait_until(PATIENCE, "the backup to count the held seats", || {
        counted(&backup, "cad") == held.len() as u64
    });
    // The primary itself says so (asked directly: it no longer serves).
    let status = LineClient::connect(&primary).status();
    let alerts = status["alerts"].to_string();
    assert!(alerts.contains("journal"), "{status}");

    let log = pair.primary.as_ref().unwrap().log_text();
    assert_eq!(log.matches("journal failed (").count(), 1, "{log}");
}

/// Hole 3: a journal damaged in the middle (records may be lost) means a
/// recovery period of one lease before any new grant: the holders of the
/// forgotten seats reclaim them first.
#[test]
fn a_journal_cut_in_the_middle_runs_a_recovery_period() {
    let site = Site::new(CAD2);
    let mut args = site.server_args("state");
    args.extend(["--lease".to_string(), "3s".to_string()]);
    let mut server = Floatd::start(&args, &site.path("floatd-1.log"));
    let mut a = LineClient::hello(&server.addr, "alice", "ws1");
    let mut seat = || {
        let reply = a.ask("CHECKOUT cad version=1.0");
        field(&reply, "handle").unwrap_or_else(|| panic!("{reply}"))
    };
    let (h1, h2) = (seat(), seat());

    // Records after the seats, so the damage is not at the tail.
    let mut b = LineClient::hello(&server.addr, "bob", "ws2");
    for _ in 0..5 {
        let reply = b.ask("CHECKOUT cad");
        assert!(reply.contains("NO_SEATS"), "{reply}");
    }
    server.kill9();
    drop((a, b));
    let journal = Floatd::state_dir_of(&args).join("journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = find(&bytes, h1.as_bytes()).expect("the first grant is in the journal");
    bytes[at] ^= 0x20;
    std::fs::write(&journal, &bytes).unwrap();

    let server = Floatd::start(&args, &site.path("floatd-2.log"));
    assert!(
        server.log_text().contains("journal"),
        "{}",
        server.log_text()
    );
    let mut c = LineClient::hello(&server.addr, "carol", "ws3");
    let reply = c.ask("CHECKOUT cad");
    assert!(reply.contains("RECOVERING"), "granted at once: {reply}");
    let mut a = LineClient::hello(&server.addr, "alice", "ws1");
    for h in [&h1, &h2] {
        let reply = a.ask(&format!("RECLAIM {h} feature=cad version=1.0 count=1"));
        assert!(reply.starts_with("OK"), "{reply}");
    }
    // After one lease the recovery period ends; both seats are still
    // held (their holder heartbeats), so none is free.
    let mut reply = String::new();
    wait_until(PATIENCE, "the recovery period to end", || {
        for h in [&h1, &h2] {
            let beat = a.ask(&format!("HEARTBEAT {h}"));
            assert!(beat.starts_with("OK"), "{beat}");
        }
        reply = c.ask("CHECKOUT cad");
        !reply.contains("RECOVERING")
    });
    assert!(reply.contains("NO_SEATS"), "{reply}");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// CPU seconds a process has used (user + system).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    ticks / hz
}

/// Hole 4: once a replicated seat's lease has run out, neither server
/// spins (a standby leaves expiry to the active server, so its loop must
/// not wait for that deadline).
#[test]
fn no_server_spins_once_a_replicated_lease_runs_out() {
    let pair = Pair::start(CAD3, &fast_with(&["--lease", "1s"]));
    let mut c = LineClient::hello(&pair.primary_addr(), "alice", "ws1");
    c.checkout("cad").expect("a seat");
    drop(c); // no heartbeats: the lease runs out in a second
    std::thread::sleep(Duration::from_secs(2));
    for (name, server) in [("primary", &pair.primary), ("backup", &pair.backup)] {
        let pid = server.as_ref().unwrap().pid();
        let before = cpu_secs(pid);
        let started = Instant::now();
        std::thread::sleep(Duration::from_secs(3));
        let share = (cpu_secs(pid) - before) / started.elapsed().as_secs_f64();
        println!("{name}: {:.1}% of a core while idle", share * 100.0);
        // A spinning loop takes most of a core; an idle one next to nothing.
        assert!(
            share < 0.3,
            "the {name} spins: {:.0}% of a core",
            share * 100.0
        );
    }
}

/// Hole 5: seats checked in at the backup while the primary was frozen do
/// not come back when the primary wakes and steps down (witness mode).
#[test]
fn seats_checked_in_during_a_failover_stay_checked_in() {
    let pair = Pair::start_with_witness(CAD3, WITNESS_FAST);
    let (primary, backup) = (pair.primary_addr(), pair.backup_addr());
    let servers = format!("{primary},{backup}");
    let c = library_client(&servers, "alice");
    let seats: Vec<_> = (0..3)
        .map(|_| c.checkout("cad", &v1(), 1).expect("seat"))
        .collect();
    c.start_heartbeats();
    pair.primary.as_ref().unwrap().signal("STOP");
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&backup) == "active"
    });
    for s in &seats {
        c.checkin(&s.handle).expect("checkin at the backup");
    }
    assert_eq!(counted(&backup, "cad"), 0);
    pair.primary.as_ref().unwrap().signal("CONT");
    // Whichever server serves from now on counts no ghost.
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        for addr in [&primary, &backup] {
            if server_state(addr) == "active" {
                let n = counted(addr, "cad");
                assert_eq!(
                    n,
                    0,
                    "{addr} counts {n} checked-in seat(s):\n{}",
                    pair.logs()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let d = library_client(&servers, "bob");
    for _ in 0..3 {
        d.checkout("cad", &v1(), 1).expect("every seat is free");
    }
}

/// Hole 6: a backup frozen longer than takeover_after does not take over
/// when it wakes (two-server mode): it was not awake to hear the primary.
#[test]
fn a_frozen_backup_does_not_take_over_when_it_wakes() {
    let pair = Pair::start(CAD3, FAST);
    let backup = pair.backup.as_ref().unwrap();
    backup.signal("STOP");
    std::thread::sleep(Duration::from_secs(3));
    backup.signal("CONT");
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        let state = server_state(&pair.backup_addr());
        assert!(
            state != "active" && state != "recovering",
            "the backup took over on waking:\n{}",
            pair.logs()
        );
        assert_eq!(server_state(&pair.primary_addr()), "active");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !backup.log_text().contains("taking over"),
        "{}",
        pair.logs()
    );
}

/// Hole 7: as a split heals (two-server mode), a client holding a seat
/// the losing server granted is sent to the winner only once the winner
/// has its seat: it never loses it.
#[test]
fn a_seat_granted_during_a_split_is_kept_as_it_heals() {
    let pair = Pair::start(CAD2, FAST);
    let (primary, backup) = (pair.primary_addr(), pair.backup_addr());
    pair.to_primary.blackhole();
    pair.to_backup.blackhole();
    wait_until(PATIENCE, "both servers to serve (a split)", || {
        server_state(&backup) == "active"
    });
    assert_eq!(server_state(&primary), "active");
    // A client of the primary holds a seat the backup never saw ...
    let a = library_client(&format!("{primary},{backup}"), "alice");
    let lost = Arc::new(Mutex::new(Vec::new()));
    let seen = lost.clone();
    a.on_event(move |e| {
        if let ClientEvent::Lost { handle, reason } = e {
            seen.lock().unwrap().push(format!("{handle}: {reason}"));
        }
    });
    let seat = a.checkout("cad", &v1(), 1).expect("a seat on the primary");
    a.start_heartbeats();
    // ... while the backup gives out its whole count to others.
    let mut others = LineClient::hello(&backup, "bob", "ws2");
    others.checkout("cad").expect("first of the backup");
    others.checkout("cad").expect("second of the backup");
    pair.to_primary.heal();
    pair.to_backup.heal();
    // The backup took over later (higher epoch): the primary steps down
    // and hands its seats over; the client follows and keeps its seat.
    wait_until(PATIENCE, "the pair to converge", || {
        let p = server_state(&primary);
        let b = server_state(&backup);
        (p == "active") != (b == "active")
    });
    let deadline = Instant::now() + Duration::from_secs(6);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            lost.lock().unwrap().is_empty(),
            "{:?}",
            lost.lock().unwrap()
        );
    }
    let active = if server_state(&primary) == "active" {
        primary
    } else {
        backup
    };
    a.heartbeat(&seat.handle).expect("still held");
    let status = status_json(&active);
    let listed = status.to_string();
    let id = floatd::ledger::seat_id(&seat.handle);
    assert!(listed.contains(&id), "{status}");
}
