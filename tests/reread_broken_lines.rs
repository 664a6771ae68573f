//! A reread that meets a broken licence line (edited without re-signing)
//! keeps the seats already out, refuses new ones, fails `floatctl reread`
//! listing each skipped line and why, and raises an alert in status and
//! metrics until the file is fixed.
#![cfg(not(feature = "embedded-keys-only"))]

mod common;

use common::*;
use std::io::{Read, Write};

const FEATURES: &str = "FEATURE cad version=1.0 count=2 expires=permanent\n\
                        FEATURE cam version=1.0 count=2 expires=permanent";

fn metrics(http: &str) -> String {
    let mut s = std::net::TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn alerts(addr: &str) -> Vec<String> {
    LineClient::connect(addr).status()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_broken_line_keeps_held_seats_refuses_new_ones_and_alerts_until_fixed() {
    let site = Site::new(FEATURES);
    let http = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut args = site.server_args("state");
    args.extend(["--http".to_string(), http]);
    let server = Floatd::start(&args, &site.path("floatd.log"));
    let http = server.http_addr.clone().unwrap();
    let addr = server.addr.as_str();
    let mut alice = LineClient::hello(addr, "alice", "ws1");
    let cam = alice.checkout("cam").unwrap();
    assert_eq!(
        metric(&metrics(&http), "floatd_licence_lines_skipped"),
        Some(0)
    );

    // The operator raises cam's count by hand, without re-signing.
    let signed = std::fs::read_to_string(&site.licence).unwrap();
    let edited = signed.replace(
        "FEATURE cam version=1.0 count=2",
        "FEATURE cam version=1.0 count=20",
    );
    assert_ne!(signed, edited);
    std::fs::write(&site.licence, &edited).unwrap();
    let line = edited
        .lines()
        .position(|l| l.starts_with("FEATURE cam"))
        .unwrap()
        + 1;

    let out = floatctl(&["--server", addr, "reread"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("site.lic:{line}: FEATURE cam: bad signature")),
        "{stderr}"
    );
    assert!(stderr.contains("skipped 1 broken licence line"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("serving 1 pool(s)"), "{stdout}");

    // The seat already out stays out and can be renewed; no new ones.
    assert!(alice
        .ask(&format!("HEARTBEAT {cam}"))
        .starts_with("OK lease_ms="));
    let mut bob = LineClient::hello(addr, "bob", "ws2");
    assert!(bob.ask("CHECKOUT cam").starts_with("ERR NO_SUCH_FEATURE"));
    assert!(bob.checkout("cad").is_ok(), "other features are served");
    let report = report_log(&site.path("state"));
    assert!(!report.contains("licence_gone"), "{report}");

    // An alert in status and metrics until it is fixed.
    let shown = alerts(addr);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].contains("FEATURE cam: bad signature"), "{shown:?}");
    let m = metrics(&http);
    assert_eq!(metric(&m, "floatd_alerts"), Some(1), "{m}");
    assert_eq!(metric(&m, "floatd_licence_lines_skipped"), Some(1), "{m}");
    // SIGHUP finds the same.
    server.signal("HUP");
    wait_until(PATIENCE, "the SIGHUP reread", || {
        server
            .log_text()
            .matches("FEATURE cam: bad signature")
            .count()
            >= 3
    });
    assert_eq!(alerts(addr).len(), 1);

    // Fixed: signed again. The seat counts in its pool, the alert goes.
    std::fs::write(&site.licence, &signed).unwrap();
    let out = floatctl(&["--server", addr, "reread"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("serving 2 pool(s)"), "{stdout}");
    assert!(alerts(addr).is_empty());
    assert_eq!(
        metric(&metrics(&http), "floatd_licence_lines_skipped"),
        Some(0)
    );
    assert_eq!(used(&LineClient::connect(addr).status(), "cam"), 1);
    assert!(bob.checkout("cam").is_ok());
    assert!(bob.ask("CHECKOUT cam").starts_with("ERR NO_SEATS"));
}
