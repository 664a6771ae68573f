//! `floatd-load` against a real server: the report parses and counts what
//! happened. Figures are printed, never asserted (DESIGN.md).

mod common;

use common::*;
use floatd::load::Report;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const LOAD: &str = env!("CARGO_BIN_EXE_floatd-load");

fn site() -> Site {
    Site::new("FEATURE cad version=2.0 count=100 expires=permanent")
}

/// Runs floatd-load to the end with `--json`; returns its report.
fn run_load(addr: &str, args: &[&str]) -> Report {
    let out = Command::new(LOAD)
        .args(["--server", addr, "--json", "--quiet"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run floatd-load");
    assert!(
        out.status.success(),
        "floatd-load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 report");
    println!("{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report JSON ({e}): {text}"))
}

#[test]
fn checkout_checkin_reports_ops_latency_and_no_errors() {
    let site = site();
    let server = Floatd::start(&site.server_args("state"), &site.path("floatd.log"));
    let r = run_load(
        &server.addr,
        &["--clients", "4", "--threads", "2", "--duration", "2"],
    );
    assert!(r.ops > 0, "{r:?}");
    assert!(r.ops_per_sec > 0.0);
    assert_eq!(r.errors_total, 0, "errors: {:?}", r.errors);
    assert_eq!(r.latency_us.samples, r.ops);
    assert!(r.latency_us.p50 > 0.0 && r.latency_us.p50 <= r.latency_us.max);
    assert_eq!(
        (r.clients, r.threads, r.mix.as_str()),
        (4, 2, "checkout-checkin")
    );
    assert_eq!(r.feature, "cad");
    assert_eq!(r.licensed, Some(100));
    assert_eq!(r.connected, 4);
    // The server is local: its memory is found from its port.
    assert_eq!(r.server_pid, Some(server.pid()));
    assert!(r.server_memory.is_some_and(|m| m.rss_kib > 0));
    // Seats still out at the end were checked in before exiting.
    assert_eq!(in_use(&server.addr, "cad"), 0);
}

#[test]
fn hold_mix_holds_one_seat_per_client_while_running() {
    let site = site();
    let server = Floatd::start(&site.server_args("state"), &site.path("floatd.log"));
    let mut child = Command::new(LOAD)
        .args(["--server", &server.addr, "--json", "--quiet"])
        .args([
            "--clients",
            "5",
            "--threads",
            "2",
            "--mix",
            "hold",
            "--duration",
            "6",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn floatd-load");
    wait_until(Duration::from_secs(5), "5 seats held", || {
        in_use(&server.addr, "cad") == 5
    });
    let status = status_json(&server.addr);
    let holders: Vec<String> = status["features"][0]["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["user"].as_str().unwrap().to_string())
        .collect();
    let mut users = holders.clone();
    users.sort();
    users.dedup();
    assert_eq!(users.len(), 5, "each client has its own user: {holders:?}");
    let mut text = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut text)
        .unwrap();
    assert!(child.wait().unwrap().success());
    println!("{text}");
    let r: Report = serde_json::from_str(&text).expect("report JSON");
    assert_eq!(r.seats_held, 5);
    assert_eq!(r.server_seats_in_use, Some(5));
    assert_eq!(r.errors_total, 0, "{:?}", r.errors);
    assert_eq!(in_use(&server.addr, "cad"), 0, "checked in at the end");
}

#[test]
fn failover_mode_kills_the_primary_and_reports_the_gap() {
    let site = site();
    let mut server = Floatd::start(&site.server_args("state"), &site.path("floatd.log"));
    let pid = server.pid().to_string();
    let out = Command::new(LOAD)
        .args(["--server", &server.addr, "--json", "--quiet"])
        .args([
            "--clients",
            "3",
            "--threads",
            "1",
            "--mix",
            "hold",
            "--duration",
            "3",
        ])
        .args(["--kill-primary-after", "1", "--primary-pid", &pid])
        .stdin(Stdio::null())
        .output()
        .expect("run floatd-load");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    println!("{text}");
    // The pid was killed with SIGKILL.
    let mut killed_by = None;
    wait_until(PATIENCE, "the server to die", || {
        match server.child.try_wait().unwrap() {
            Some(status) => {
                killed_by = status.signal();
                true
            }
            None => false,
        }
    });
    assert_eq!(killed_by, Some(9));
    let json: serde_json::Value = serde_json::from_str(&text).expect("report JSON");
    let f = &json["failover"];
    assert!(f.get("gap_ms").is_some(), "a gap field: {f}");
    // One server only: nobody is served again, so every held seat is lost.
    assert!(f["gap_ms"].is_null());
    assert_eq!(f["killed"], true);
    assert_eq!(f["seats_held_at_kill"], 3);
    assert_eq!(f["seats_lost"], 3);
    assert_eq!(f["unrecovered_clients"], 3);
    assert_eq!(f["seats_over_granted"], 0);
}

#[test]
fn null_server_answers_the_load_generator() {
    let mut null = Command::new(LOAD)
        .args(["--null-server", "127.0.0.1:0", "--duration", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn null server");
    let mut line = String::new();
    BufReader::new(null.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("null server listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    let r = run_load(
        &addr,
        &[
            "--clients",
            "2",
            "--pipeline",
            "4",
            "--duration",
            "1",
            "--feature",
            "f",
        ],
    );
    let _ = null.kill();
    let _ = null.wait();
    assert!(r.ops > 0);
    assert_eq!(r.errors_total, 0, "{:?}", r.errors);
}

#[test]
fn failover_mode_walks_the_server_list_and_reclaims_held_seats() {
    // Two standalone servers sharing a handle key stand in for a failover
    // pair: the second honours reclaims of the first's handles.
    let site = site();
    let mut first = Floatd::start(&site.server_args("a"), &site.path("a.log"));
    std::fs::create_dir_all(site.path("b")).unwrap();
    std::fs::copy(
        site.path("a").join("handle.key"),
        site.path("b").join("handle.key"),
    )
    .unwrap();
    let second = Floatd::start(&site.server_args("b"), &site.path("b.log"));
    let pid = first.pid().to_string();
    let servers = format!("{},{}", first.addr, second.addr);
    let r = run_load(
        &servers,
        &[
            "--clients",
            "6",
            "--threads",
            "2",
            "--mix",
            "hold",
            "--heartbeat-every",
            "200ms",
            "--duration",
            "4",
            "--kill-primary-after",
            "1",
            "--primary-pid",
            &pid,
            "--no-checkin",
        ],
    );
    let _ = first.wait_exit(PATIENCE);
    let f = r.failover.expect("failover section");
    assert!(f.killed);
    assert_eq!(f.seats_held_at_kill, 6);
    assert_eq!(f.seats_reclaimed, 6, "{f:?}");
    assert_eq!(f.seats_lost, 0);
    assert_eq!(f.unrecovered_clients, 0);
    assert!(f.gap_ms.is_some());
    assert_eq!(f.seats_over_granted, Some(0));
    assert_eq!(r.seats_held, 6);
    assert_eq!(in_use(&second.addr, "cad"), 6, "held on the second server");
}

#[test]
fn clients_follow_a_standby_greeting_to_the_active_server() {
    let site = site();
    let server = Floatd::start(&site.server_args("state"), &site.path("floatd.log"));
    // A stand-in standby: greets as a ready backup naming the active server.
    let standby = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let standby_addr = standby.local_addr().unwrap().to_string();
    let greeting = format!(
        "FLOATD proto=1 role=backup state=ready epoch=1 server=lic2 active={}\n",
        server.addr
    );
    std::thread::spawn(move || {
        use std::io::Write;
        for mut conn in standby.incoming().flatten() {
            let _ = conn.write_all(greeting.as_bytes());
        }
    });
    let r = run_load(
        &standby_addr,
        &["--clients", "3", "--threads", "1", "--duration", "2"],
    );
    assert!(r.ops > 0, "{r:?}");
    assert!(r.redirects >= 3, "{r:?}");
    assert_eq!(r.licensed, Some(100), "STATUS followed the greeting too");
    assert_eq!(r.errors_total, 0, "{:?}", r.errors);
}
