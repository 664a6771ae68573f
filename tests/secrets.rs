//! Handles are bearer secrets, through the real binaries: nobody but the
//! holder ever sees one (STATUS, /status.json, the page and `floatctl
//! status` show a public seat id), a second connection cannot renew or
//! return another's seat and learns nothing from trying, an operator
//! removes by seat id or by user and host, and what one status report
//! costs stays bounded however many seats are out.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;

const FEATURES: &str = "\
FEATURE cad version=2.0 count=5 expires=permanent
FEATURE viewer version=1.0 count=uncounted expires=permanent";

fn server(site: &Site) -> Floatd {
    let mut args = site.server_args("state");
    args.extend(["--http".to_string(), "127.0.0.1:0".to_string()]);
    Floatd::start(&args, &site.path("floatd.log"))
}

/// GET `path` from the HTTP port; the whole response.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn hello(addr: &str, client: &str, user: &str, host: &str) -> LineClient {
    let mut c = LineClient::connect(addr);
    let reply = c.ask(&format!(
        "HELLO proto=1 client={client} user={user} host={host}"
    ));
    assert!(reply.starts_with("OK"), "{reply}");
    c
}

#[test]
fn nobody_but_the_holder_sees_renews_or_returns_a_seat() {
    let site = Site::new(FEATURES);
    let server = server(&site);
    let addr = server.addr.as_str();
    let http = server.http_addr.clone().unwrap();
    let mut alice = hello(addr, "app-1", "alice", "ws1");
    let handle = alice.checkout("cad").unwrap();
    let seat = seat_of(&handle);
    // The random part of a handle alone must not show either.
    let id_part = handle.split('.').next().unwrap().to_string();

    // What strangers can read: STATUS without HELLO, the JSON, the page,
    // floatctl status. The seat id is there; the handle is not.
    let mut stranger = LineClient::connect(addr);
    let status = stranger.ask("STATUS");
    let json = http_get(&http, "/status.json");
    let page = http_get(&http, "/");
    let table = floatctl(&["--server", addr, "status"]);
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    let as_json = floatctl(&["--server", addr, "status", "--json"]);
    let as_json = String::from_utf8_lossy(&as_json.stdout).to_string();
    for (what, text) in [
        ("STATUS", &status),
        ("/status.json", &json),
        ("the page", &page),
        ("floatctl status", &table),
        ("floatctl status --json", &as_json),
    ] {
        assert!(text.contains(&seat), "{what} lists the seat id:\n{text}");
        assert!(!text.contains(&id_part), "{what} shows the handle:\n{text}");
        assert!(!text.contains("\"handle\""), "{what} has a handle field");
    }

    // Another client, even with the same user and host, gets exactly the
    // answer a made-up handle gets: existence does not leak.
    let made_up = format!("{}.AAAAAAAAAAAAAAAAAAAAAA", "B".repeat(16));
    for (client, user, host) in [
        ("app-2", "alice", "ws1"),
        ("app-1", "mallory", "ws1"),
        ("app-1", "alice", "ws9"),
    ] {
        let mut other = hello(addr, client, user, host);
        for verb in ["HEARTBEAT", "CHECKIN"] {
            let theirs = other.ask(&format!("{verb} {handle}"));
            let unknown = other.ask(&format!("{verb} {made_up}"));
            assert!(theirs.starts_with("ERR UNKNOWN_HANDLE "), "{theirs}");
            assert_eq!(theirs, unknown, "{verb} as {client}/{user}/{host}");
        }
        // A reclaim of a seat held here answers as for a forged handle.
        let theirs = other.ask(&format!("RECLAIM {handle} feature=cad version=0 count=1"));
        let forged = other.ask(&format!("RECLAIM {made_up} feature=cad version=0 count=1"));
        assert!(theirs.starts_with("ERR BAD_HANDLE "), "{theirs}");
        assert_eq!(theirs, forged);
    }
    assert_eq!(in_use(addr, "cad"), 1, "the seat is still out");

    // The holder reconnecting (same client id, user and host) still can.
    drop(alice);
    let mut again = hello(addr, "app-1", "alice", "ws1");
    assert!(again
        .ask(&format!("HEARTBEAT {handle}"))
        .starts_with("OK lease_ms="));
    assert_eq!(again.ask(&format!("CHECKIN {handle}")), "OK");
    assert_eq!(in_use(addr, "cad"), 0);
}

#[test]
fn an_operator_removes_by_seat_id_or_by_user_and_host() {
    let site = Site::new(FEATURES);
    let server = server(&site);
    let addr = server.addr.as_str();
    let mut alice = hello(addr, "a", "alice", "ws1");
    let mut bob = hello(addr, "b", "bob", "ws2");
    let a1 = alice.checkout("cad").unwrap();
    let _a2 = alice.ask("CHECKOUT cad count=2");
    let b1 = bob.checkout("cad").unwrap();
    let ctl = |args: &[&str], code: i32| {
        let mut all = vec!["--server", addr];
        all.extend_from_slice(args);
        let out = floatctl(&all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(
        ctl(&["remove", &seat_of(&b1)], 0),
        "removed 1 seat of cad from bob@ws2\n"
    );
    // Every seat of cad alice holds on ws1: 1 + 2.
    assert_eq!(
        ctl(&["remove", "cad", "--user", "alice", "--host", "ws1"], 0),
        "removed 3 seats of cad from alice@ws1\n"
    );
    assert_eq!(in_use(addr, "cad"), 0);
    ctl(&["remove", "cad", "--user", "alice", "--host", "ws1"], 1);
    ctl(&["remove", &seat_of(&a1)], 1);
    // Half a holder, or no target, is a usage error.
    ctl(&["remove", "cad", "--user", "alice"], 2);
    ctl(&["remove"], 2);
    // The holders' connections learn their seats are gone.
    assert!(alice
        .ask(&format!("HEARTBEAT {a1}"))
        .starts_with("ERR UNKNOWN_HANDLE"));
    let log = server.log_text();
    assert!(
        log.contains("removed 3 seat(s) of cad from alice@ws1"),
        "{log}"
    );
}

#[test]
fn one_status_report_lists_a_bounded_number_of_holders() {
    let site = Site::new(FEATURES);
    let server = server(&site);
    let addr = server.addr.as_str();
    let http = server.http_addr.clone().unwrap();
    let seats = 130;
    let mut c = hello(addr, "greedy", "gus", "ws1");
    let batch: String = (0..seats).map(|_| "CHECKOUT viewer\n").collect();
    c.send(batch.trim_end());
    for _ in 0..seats {
        let reply = c.read_line().expect("a reply per checkout");
        assert!(reply.starts_with("OK handle="), "{reply}");
    }
    let mut stranger = LineClient::connect(addr);
    let status = stranger.status();
    let viewer = feature_status(&status, "viewer").unwrap();
    assert_eq!(viewer["in_use"], seats);
    let listed = viewer["holders"].as_array().unwrap().len() as u64;
    assert_eq!(listed, 50, "holders listed per pool");
    assert_eq!(viewer["more_holders"], seats - listed);
    let json: serde_json::Value = serde_json::from_str(
        http_get(&http, "/status.json")
            .split_once("\r\n\r\n")
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(json["features"][1]["more_holders"], seats - listed);
    let out = floatctl(&["--server", addr, "status", "viewer"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&format!("  ... and {} more\n", seats - listed)),
        "{table}"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains(" gus ")).count() as u64,
        listed
    );
    // An admin (loopback here) may ask for every holder.
    let out = floatctl(&["--server", addr, "status", "viewer", "--all", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        all["features"][0]["holders"].as_array().unwrap().len() as u64,
        seats
    );
    assert_eq!(all["features"][0]["more_holders"], 0);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"handle\""));
}

#[test]
fn both_servers_of_a_pair_show_the_same_seat_id() {
    let pair = Pair::start("FEATURE cad version=2.0 count=5 expires=permanent", FAST);
    let mut c = hello(&pair.primary_addr(), "app", "erin", "ws5");
    let handle = c.checkout("cad").unwrap();
    let seat = seat_of(&handle);
    let seats_of = |addr: &str| -> Vec<String> {
        feature_status(&status_json(addr), "cad").unwrap()["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["seat"].as_str().unwrap().to_string())
            .collect()
    };
    wait_until(PATIENCE, "the backup to hold the seat", || {
        seats_of(&pair.backup_addr()) == [seat.clone()]
    });
    assert_eq!(seats_of(&pair.primary_addr()), [seat]);
}

#[test]
fn without_user_in_the_environment_floatctl_says_the_account_name() {
    let site = Site::new(FEATURES);
    let server = server(&site);
    let out = std::process::Command::new(FLOATCTL)
        .args(["--server", &server.addr, "checkout", "cad"])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = floatd::client::account_name();
    assert_ne!(name, "unknown");
    let cad = feature_status(&status_json(&server.addr), "cad")
        .unwrap()
        .clone();
    assert_eq!(cad["holders"][0]["user"], name.as_str(), "{cad}");
}
