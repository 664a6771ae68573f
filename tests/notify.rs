//! systemd notifications through a real NOTIFY_SOCKET: READY=1 once the
//! port is bound, WATCHDOG=1 from the event loop every WatchdogSec/2,
//! STATUS= with role, state and seats in use, STOPPING=1 on SIGTERM; the
//! witness too. And host names resolved by floatd's own resolver.

mod common;

use common::notify::{count, NotifySocket};
use common::*;
use std::time::{Duration, Instant};

#[test]
fn ready_watchdog_status_and_stopping() {
    let site = Site::new("FEATURE cad version=2.0 count=5 expires=permanent");
    let notify = NotifySocket::new();
    let mut server = Floatd::start_with_env(
        &site.server_args("state"),
        &site.path("floatd.log"),
        &[
            ("NOTIFY_SOCKET", notify.path.as_str()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let first = notify.until(PATIENCE, "READY=1", |m| count(m, "READY=1") > 0);
    let ready = first.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(
        ready.contains("STATUS=standalone active, epoch 1: 0 of 5 seats in use"),
        "{ready}"
    );
    // Ready means serving: the port answers.
    let mut c = LineClient::hello(&server.addr, "alice", "ws1");
    // Pings every 200 ms from the loop, whether or not clients talk.
    let started = Instant::now();
    notify.until(PATIENCE, "five watchdog pings", |m| {
        count(m, "WATCHDOG=1") >= 5
    });
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "5 pings took {took:?}");
    c.checkout("cad").unwrap();
    notify.until(PATIENCE, "the status with the seat", |m| {
        m.iter()
            .any(|s| s.contains("STATUS=standalone active, epoch 1: 1 of 5 seats in use"))
    });
    server.signal("TERM");
    notify.until(PATIENCE, "STOPPING=1", |m| count(m, "STOPPING=1") > 0);
    assert_eq!(server.wait_exit(PATIENCE), Some(0));
}

#[test]
fn without_notify_socket_nothing_is_sent_and_nothing_breaks() {
    let site = Site::new("FEATURE cad version=2.0 count=5 expires=permanent");
    // WATCHDOG_USEC alone (no socket) must not matter.
    let server = Floatd::start_with_env(
        &site.server_args("state"),
        &site.path("floatd.log"),
        &[("WATCHDOG_USEC", "1000")],
    );
    let mut c = LineClient::hello(&server.addr, "alice", "ws1");
    c.checkout("cad").unwrap();
}

#[test]
fn the_witness_says_ready_and_pings() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "test-secret-0123456789abcdef\n").unwrap();
    let notify = NotifySocket::new();
    let args: Vec<String> = [
        "--role",
        "witness",
        "--peer-listen",
        "127.0.0.1:0",
        "--peer-secret-file",
        secret.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let _witness = Floatd::start_with_env(
        &args,
        &dir.path().join("witness.log"),
        &[
            ("NOTIFY_SOCKET", notify.path.as_str()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let msgs = notify.until(PATIENCE, "READY=1 and pings", |m| {
        count(m, "READY=1") > 0 && count(m, "WATCHDOG=1") >= 3
    });
    assert!(
        msgs.iter()
            .any(|m| m.contains("STATUS=witness on 127.0.0.1:")),
        "{msgs:?}"
    );
}

#[test]
fn clients_and_servers_resolve_localhost_and_bind_by_name() {
    let site = Site::new("FEATURE cad version=2.0 count=5 expires=permanent");
    let mut args = site.server_args("state");
    let at = args.iter().position(|a| a == "--bind").unwrap();
    args[at + 1] = "localhost".into();
    args.extend(["--http".into(), "localhost:0".into()]);
    let server = Floatd::start(&args, &site.path("floatd.log"));
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    assert!(server
        .http_addr
        .as_deref()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let port = server.addr.rsplit_once(':').unwrap().1;
    let by_name = format!("localhost:{port}");
    let out = floatctl(&["--server", &by_name, "checkout", "cad"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(in_use(&by_name, "cad"), 1);
    let out = floatctl(&[
        "--server",
        "no-such-host.invalid:27000",
        "--timeout",
        "1",
        "status",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-host.invalid"), "{err}");
}
