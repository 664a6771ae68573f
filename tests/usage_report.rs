//! `floatctl report` on the report logs of a real server: the current log
//! and a rotated, compressed one, in any order, a copy counted once.

mod common;

use common::*;
use std::process::Command;

#[test]
fn floatctl_report_sums_usage_across_rotated_and_compressed_logs() {
    let site = Site::new(
        "FEATURE cad version=2.0 count=3 expires=permanent\n\
         FEATURE viewer version=1.0 count=uncounted expires=permanent",
    );
    let args = site.server_args("state");
    let mut server = Floatd::start(&args, &site.path("floatd.log"));
    let addr = server.addr.clone();
    let mut ann = LineClient::hello(&addr, "ann", "ws1");
    let mut bob = LineClient::hello(&addr, "bob", "ws2");
    let a1 = ann.ask("CHECKOUT cad count=2");
    assert!(a1.starts_with("OK"), "{a1}");
    let b1 = bob.checkout("cad").unwrap();
    assert!(bob.ask("CHECKOUT cad").starts_with("ERR NO_SEATS"));
    let out = floatctl(&["--server", &addr, "rotate-log"]);
    assert!(out.status.success());
    let rotated = String::from_utf8_lossy(&out.stdout)
        .trim()
        .rsplit_once(" to ")
        .unwrap()
        .1
        .to_string();
    assert_eq!(bob.ask(&format!("CHECKIN {b1}")), "OK");
    bob.checkout("viewer").unwrap();
    assert!(bob
        .ask("CHECKOUT nosuch")
        .starts_with("ERR NO_SUCH_FEATURE"));
    server.signal("TERM");
    assert_eq!(server.wait_exit(PATIENCE), Some(0));

    // The rotated log compressed, as cron would; a stray copy of it too.
    let state = site.path("state");
    std::fs::copy(&rotated, state.join("copy-of-rotated.log")).unwrap();
    assert!(Command::new("gzip")
        .arg(&rotated)
        .status()
        .unwrap()
        .success());
    let logs = [
        state.join("report.log").display().to_string(),
        format!("{rotated}.gz"),
        state.join("copy-of-rotated.log").display().to_string(),
    ];
    let run = |extra: &[&str]| {
        let mut all = vec!["report"];
        all.extend_from_slice(extra);
        all.extend(logs.iter().map(String::as_str));
        let out = floatctl(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    let rows = json.as_array().unwrap();
    let cad = rows.iter().find(|r| r["feature"] == "cad").unwrap();
    assert_eq!(cad["checkouts"], 2, "{json}");
    assert_eq!(cad["peak_seats"], 3, "{json}");
    assert_eq!(cad["denials"]["NO_SEATS"], 1, "counted once: {json}");
    assert!(cad["seat_hours"].as_f64().unwrap() >= 0.0);
    let users: Vec<&str> = cad["top_users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[0].as_str().unwrap())
        .collect();
    assert!(users.contains(&"ann") && users.contains(&"bob"), "{json}");
    let viewer = rows.iter().find(|r| r["feature"] == "viewer").unwrap();
    assert_eq!(viewer["checkouts"], 1);
    let nosuch = rows.iter().find(|r| r["feature"] == "nosuch").unwrap();
    assert_eq!(nosuch["denials"]["NO_SUCH_FEATURE"], 1);

    let csv = run(&["--csv", "--feature", "cad"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "day,feature,peak_seats,seat_hours,checkouts,denials,top_users"
    );
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].contains(",cad,3,") && lines[1].contains(",2,NO_SEATS=1,"),
        "{csv}"
    );

    let table = run(&[]);
    assert!(table.starts_with("DAY "), "{table}");
    assert!(table.contains("NO_SEATS=1"), "{table}");

    // A period with no usage: exit 1; a bad date: exit 2.
    let out = floatctl(&["report", "--to", "2000-01-01", &logs[0]]);
    assert_eq!(out.status.code(), Some(1));
    let out = floatctl(&["report", "--from", "yesterday", &logs[0]]);
    assert_eq!(out.status.code(), Some(2));
}
