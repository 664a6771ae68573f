//! The backup at run time, through real processes: a primary told by a
//! reread of its config file that its backup moved dials the new address
//! (no restart), and `floatctl backup forget` makes a primary stop
//! advertising a lost backup until it is heard from again.

mod common;

use common::*;

const CAD: &str = "FEATURE cad version=1.0 count=3 expires=permanent";

fn run_ok(args: &[&str]) -> String {
    let out = floatctl(args);
    assert!(
        out.status.success(),
        "floatctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs floatctl expecting a refusal (exit 1); returns its stderr.
fn run_refused(args: &[&str]) -> String {
    let out = floatctl(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "floatctl {args:?}: {stderr}");
    stderr
}

fn wait_state(addr: &str, state: &str, logs: &dyn Fn() -> String) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while server_state(addr) != state {
        if std::time::Instant::now() > deadline {
            panic!(
                "{addr} never became {state} (it is {}):\n{}",
                server_state(addr),
                logs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// A backup serving `site` from `state`, its peer port on `peer_listen`,
/// dialling the primary at `primary_peer`.
fn start_backup(site: &Site, state: &str, peer_listen: &str, primary_peer: &str) -> Floatd {
    let mut args = site.server_args(state);
    args.extend(
        [
            "--role",
            "backup",
            "--peer",
            primary_peer,
            "--peer-listen",
            peer_listen,
            "--peer-secret-file",
            site.path("secret").to_str().unwrap(),
        ]
        .iter()
        .chain(FAST)
        .map(|s| s.to_string()),
    );
    Floatd::start(&args, &site.path(&format!("{state}.log")))
}

#[test]
fn a_reread_moves_the_backup_to_a_new_address_without_restarting_the_primary() {
    let site = Site::new(CAD);
    std::fs::write(site.path("secret"), "test-secret-0123456789abcdef\n").unwrap();
    let old_peer = dead_addr();
    let config = site.path("primary.toml");
    std::fs::write(&config, format!("peer = \"{old_peer}\"\n")).unwrap();
    let mut args = site.server_args("state-primary");
    args.extend(
        [
            "--role",
            "primary",
            "--config",
            config.to_str().unwrap(),
            "--peer-listen",
            "127.0.0.1:0",
            "--peer-secret-file",
            site.path("secret").to_str().unwrap(),
        ]
        .iter()
        .chain(FAST)
        .map(|s| s.to_string()),
    );
    let primary = Floatd::start(&args, &site.path("primary.log"));
    let primary_peer = primary.peer_addr.clone().unwrap();
    let old = start_backup(&site, "state-old", &old_peer, &primary_peer);
    let logs = || {
        ["primary.log", "state-old.log", "state-new.log"]
            .iter()
            .map(|f| std::fs::read_to_string(site.path(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    wait_state(&primary.addr, "active", &logs);
    wait_state(&old.addr, "ready", &logs);
    let mut alice = LineClient::hello(&primary.addr, "alice", "ws1");
    let seat = alice.checkout("cad").unwrap();

    // The old backup's host goes away; the new one gets another port.
    drop(old);
    let new_peer = dead_addr();
    // A mistyped address fails the whole reread and changes nothing.
    std::fs::write(&config, "peer = \"lic3-27001\"\n").unwrap();
    let refused = run_refused(&["--server", &primary.addr, "reread"]);
    assert!(refused.contains("HOST:PORT"), "{refused}");
    // SIGHUP (systemctl reload) rereads it as floatctl does.
    let hup_peer = dead_addr();
    std::fs::write(&config, format!("peer = \"{hup_peer}\"\n")).unwrap();
    primary.signal("HUP");
    wait_until(PATIENCE, "SIGHUP to move the other server", || {
        primary.log_text().contains(&format!(
            "peer port moves from {old_peer} to {hup_peer}: dialling it there"
        ))
    });
    std::fs::write(&config, format!("peer = \"{new_peer}\"\n")).unwrap();
    let said = run_ok(&["--server", &primary.addr, "reread"]);
    assert!(
        said.contains(&format!("the other server's peer port is now {new_peer}")),
        "{said}"
    );
    let new = start_backup(&site, "state-new", &new_peer, &primary_peer);
    // Only a primary that dials the new address makes it ready (a backup
    // that never hears the primary would take over alone instead).
    wait_state(&new.addr, "ready", &logs);
    assert_eq!(server_state(&primary.addr), "active");
    let listed = LineClient::connect(&new.addr).status()["features"].to_string();
    assert!(listed.contains(&seat_of(&seat)), "{listed}");
    wait_until(PATIENCE, "the greeting to name the new backup", || {
        LineClient::connect(&primary.addr)
            .greeting
            .contains(&format!("peer={}", new.addr))
    });
    let log = primary.log_text();
    assert!(
        log.contains(&format!(
            "peer port moves from {hup_peer} to {new_peer}: dialling it there"
        )),
        "{log}"
    );
    // The moved pair fails over as any pair: the seat stays held.
    drop(primary);
    wait_state(&new.addr, "active", &logs);
    let mut alice = LineClient::hello(&new.addr, "alice", "ws1");
    assert!(alice
        .ask(&format!("HEARTBEAT {seat}"))
        .starts_with("OK lease_ms="));
}

#[test]
fn backup_forget_stops_advertising_a_lost_backup_until_it_is_heard_from_again() {
    let mut pair = Pair::start(CAD, FAST);
    let (primary, backup) = (pair.primary_addr(), pair.backup_addr());
    let names_backup = || {
        LineClient::connect(&primary)
            .greeting
            .contains(&format!("peer={backup}"))
    };
    let alerts = || status_json(&primary)["alerts"].to_string();
    assert!(names_backup());
    // A backup that is heard from is not forgotten, and a backup has no
    // backup to forget.
    let alive = run_refused(&["--server", &primary, "backup", "forget"]);
    assert!(alive.contains("BACKUP_ALIVE"), "{alive}");
    let not_primary = run_refused(&["--server", &backup, "backup", "forget"]);
    assert!(not_primary.contains("NO_BACKUP"), "{not_primary}");

    // The backup's host dies: the primary still tells clients about it
    // (for backup_lost_after, 7 days) until told to forget it.
    drop(pair.backup.take());
    wait_until(PATIENCE, "the primary to lose the backup", || {
        status_json(&primary)["servers"][1]["state"] == "inaccessible"
    });
    assert!(names_backup());
    let said = run_ok(&["--server", &primary, "backup", "forget"]);
    assert!(
        said.contains(&format!("forgot its backup {backup}")),
        "{said}"
    );
    wait_until(PATIENCE, "the greeting to stop naming the backup", || {
        !names_backup()
    });
    wait_until(PATIENCE, "status to say the backup was forgotten", || {
        alerts().contains("was forgotten")
    });
    // It stays forgotten while it is silent.
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(!names_backup());
    assert!(pair
        .primary
        .as_ref()
        .unwrap()
        .log_text()
        .contains("is forgotten, as the operator asked"));

    // Heard from again: advertised again, the alert gone.
    pair.start_backup();
    pair.wait_states("active", "ready");
    wait_until(PATIENCE, "the greeting to name the backup again", || {
        names_backup()
    });
    assert!(!alerts().contains("was forgotten"), "{}", alerts());
}

#[test]
fn a_standalone_server_has_no_backup_to_forget() {
    let (_site, server) = serve(CAD, &[]);
    let said = run_refused(&["--server", &server.addr, "backup", "forget"]);
    assert!(said.contains("NO_BACKUP"), "{said}");
    let usage = floatctl(&["--server", &server.addr, "backup"]);
    assert_eq!(usage.status.code(), Some(2));
}
