//! Issue 4: the report log (docs/REPORT-LOG.md) has a line for every
//! event, with the right reasons, and rotates without losing a line.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The seat-hours one-liner of docs/REPORT-LOG.md, verbatim.
const SEAT_HOURS_AWK: &str = r#"$2=="return"{match($0,/ user=("([^"\\]|\\.)*"|[^ ]*)/);u=substr($0,RSTART+6,RLENGTH-6);match($0,/ count=[0-9]+/);c=substr($0,RSTART+7,RLENGTH-7);match($0,/ held_secs=[0-9]+/);s=substr($0,RSTART+11,RLENGTH-11);h[u]+=c*s/3600} END{for(u in h) printf "%s %.3f\n",u,h[u]}"#;

/// A report line: its word and its fields.
struct Line {
    text: String,
    word: String,
}

impl Line {
    fn get(&self, key: &str) -> Option<String> {
        field(&self.text, key)
    }
}

fn read_report(path: &Path) -> Vec<Line> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| Line {
            text: l.to_string(),
            word: l.split_whitespace().nth(1).unwrap_or("").to_string(),
        })
        .collect()
}

fn seqs(lines: &[Line]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| l.get("seq").and_then(|s| s.parse().ok()).expect("seq"))
        .collect()
}

/// Signs `features` with the site's vendor key, as the site's licence text.
fn signed_licence(site: &Site, features: &str) -> String {
    let unsigned = site.path("next.unsigned");
    std::fs::write(
        &unsigned,
        format!(
            "SERVER lic1 hostid=any port=27000\nFAILOVER lic2 hostid=any port=27001\n{features}\n"
        ),
    )
    .unwrap();
    let key = site.path("keys").join("vendor.key");
    let out = floatctl(&[
        "sign",
        "--key",
        key.to_str().unwrap(),
        unsigned.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "floatctl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn every_event_of_a_scripted_run_is_on_record_with_the_right_reason() {
    let site = Site::new(
        "FEATURE cad version=1.0 count=5 expires=permanent\n\
         FEATURE gone version=1.0 count=5 expires=permanent",
    );
    std::fs::write(site.path("floatd.opt"), "EXCLUDE cad user mallory\n").unwrap();
    let without_gone = signed_licence(&site, "FEATURE cad version=1.0 count=5 expires=permanent");
    let mut args = site.server_args("state");
    args.extend(["--lease".to_string(), "4s".to_string()]);
    let mut server = Floatd::start(&args, &site.path("floatd.log"));
    let addr = server.addr.clone();
    let report = site.path("state").join("report.log");
    let mut ann = LineClient::hello(&addr, "ann", "ws1");

    // checkout and checkin
    let h1 = ann.checkout("cad").unwrap();
    assert_eq!(ann.ask(&format!("CHECKIN {h1}")), "OK");
    // denials, one by an options rule
    assert!(ann.checkout("nosuch").is_err());
    let mut mallory = LineClient::hello(&addr, "mallory", "ws2");
    assert!(mallory
        .checkout("cad")
        .unwrap_err()
        .contains("rule=floatd.opt:1"));
    // a user name that needs quotes
    let mut ada = LineClient::connect(&addr);
    assert!(ada
        .ask("HELLO proto=1 client=ada-1 user=\"Ada Lovelace\" host=lab1")
        .starts_with("OK"));
    let h0 = ada.checkout("cad").unwrap();
    assert_eq!(ada.ask(&format!("CHECKIN {h0}")), "OK");
    // a lease that runs out
    let h2 = ann.checkout("cad").unwrap();
    wait_until(PATIENCE, "the lease of h2 to run out", || {
        read_report(&report)
            .iter()
            .any(|l| l.word == "return" && l.get("handle").as_ref() == Some(&h2))
    });
    // removal by an operator
    let h3 = ann.checkout("cad").unwrap();
    ok(floatctl(&["remove", &h3, "--server", &addr]));
    // the licence goes away on reread
    let h4 = ann.checkout("gone").unwrap();
    std::fs::write(site.path("next.lic"), &without_gone).unwrap();
    std::fs::rename(site.path("next.lic"), &site.licence).unwrap();
    assert!(ok(floatctl(&["reread", "--server", &addr])).contains("serving 1 pool(s)"));
    // a decommissioning stop returns what is out
    let h5 = ann.checkout("cad").unwrap();
    ok(floatctl(&["down", "--release", "--server", &addr]));
    assert_eq!(server.wait_exit(PATIENCE), Some(0), "{}", server.log_text());

    let lines = read_report(&report);
    let all = lines
        .iter()
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        lines.first().map(|l| l.word.as_str()),
        Some("start"),
        "{all}"
    );
    assert_eq!(lines.last().map(|l| l.word.as_str()), Some("stop"), "{all}");
    let expected: Vec<u64> = (1..=lines.len() as u64).collect();
    assert_eq!(seqs(&lines), expected, "one line per record:\n{all}");
    for (handle, feature, reason) in [
        (&h1, "cad", "checkin"),
        (&h2, "cad", "expired"),
        (&h3, "cad", "removed"),
        (&h4, "gone", "licence_gone"),
        (&h5, "cad", "shutdown"),
    ] {
        let mine: Vec<&Line> = lines
            .iter()
            .filter(|l| l.get("handle").as_ref() == Some(handle))
            .collect();
        let words: Vec<&str> = mine.iter().map(|l| l.word.as_str()).collect();
        assert_eq!(words, ["checkout", "return"], "{handle}:\n{all}");
        for l in &mine {
            assert_eq!(l.get("feature").as_deref(), Some(feature), "{}", l.text);
            assert_eq!(l.get("user").as_deref(), Some("ann"), "{}", l.text);
            assert_eq!(l.get("host").as_deref(), Some("ws1"), "{}", l.text);
            assert_eq!(l.get("count").as_deref(), Some("1"), "{}", l.text);
        }
        assert_eq!(
            mine[1].get("reason").as_deref(),
            Some(reason),
            "{}",
            mine[1].text
        );
        assert!(mine[1].get("held_secs").is_some(), "{}", mine[1].text);
    }
    let denied: Vec<&Line> = lines.iter().filter(|l| l.word == "denied").collect();
    assert_eq!(denied.len(), 2, "{all}");
    assert_eq!(denied[0].get("code").as_deref(), Some("NO_SUCH_FEATURE"));
    assert_eq!(denied[0].get("feature").as_deref(), Some("nosuch"));
    assert_eq!(denied[1].get("code").as_deref(), Some("EXCLUDED"));
    assert_eq!(denied[1].get("rule").as_deref(), Some("floatd.opt:1"));
    assert_eq!(denied[1].get("user").as_deref(), Some("mallory"));
    let reread: Vec<&Line> = lines.iter().filter(|l| l.word == "reread").collect();
    assert_eq!(reread.len(), 1, "{all}");
    assert_eq!(reread[0].get("pools").as_deref(), Some("1"));
    // Every line: a UTC timestamp first, epoch and seq last.
    for l in &lines {
        let stamp = l.text.split_whitespace().next().unwrap();
        assert!(stamp.len() == 20 && stamp.ends_with('Z'), "{}", l.text);
        assert!(l.get("epoch").is_some(), "{}", l.text);
    }

    // The documented seat-hours one-liner works on this log.
    if let Ok(out) = Command::new("awk")
        .arg(SEAT_HOURS_AWK)
        .arg(&report)
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let rows: Vec<(&str, f64)> = text
            .lines()
            .map(|l| {
                let (u, h) = l.rsplit_once(' ').expect("user hours");
                (u, h.parse().expect("hours"))
            })
            .collect();
        let mut users: Vec<&str> = rows.iter().map(|(u, _)| *u).collect();
        users.sort_unstable();
        assert_eq!(
            users,
            ["\"Ada Lovelace\"", "ann"],
            "who returned seats: {text}"
        );
        assert!(rows.iter().all(|(_, h)| (0.0..1.0).contains(h)), "{text}");
    }
}

#[test]
fn rotate_log_moves_the_log_aside_without_losing_or_repeating_a_line() {
    let site = Site::new("FEATURE cad version=1.0 count=50 expires=permanent");
    let mut server = Floatd::start(&site.server_args("state"), &site.path("floatd.log"));
    let report = site.path("state").join("report.log");
    let stop = Arc::new(AtomicBool::new(false));
    // Load while the log rotates: pipelined checkout + checkin pairs.
    let load = {
        let addr = server.addr.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = LineClient::hello(&addr, "ann", "ws1");
            for _ in 0..5_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let h = c.checkout("cad").expect("checkout");
                c.send(&format!("CHECKIN {h}"));
                c.send("CHECKOUT cad");
                assert_eq!(c.read_line().as_deref(), Some("OK"));
                let h = field(&c.read_line().unwrap(), "handle").expect("handle");
                assert_eq!(c.ask(&format!("CHECKIN {h}")), "OK");
            }
        })
    };
    wait_until(PATIENCE, "report lines before the rotation", || {
        read_report(&report).len() >= 20
    });
    let out = ok(floatctl(&["rotate-log", "--server", &server.addr]));
    let rotated = out
        .trim()
        .rsplit_once(" rotated its report log to ")
        .expect("floatctl says where the log went")
        .1
        .to_string();
    let rotated = Path::new(&rotated).to_path_buf();
    assert!(rotated.starts_with(site.path("state")), "{out}");
    wait_until(PATIENCE, "report lines after the rotation", || {
        read_report(&report).len() >= 20
    });
    stop.store(true, Ordering::SeqCst);
    load.join().expect("load thread");
    server.signal("TERM");
    assert_eq!(server.wait_exit(PATIENCE), Some(0), "{}", server.log_text());

    let before = seqs(&read_report(&rotated));
    let after = seqs(&read_report(&report));
    assert!(!before.is_empty() && !after.is_empty());
    assert!(
        before.last() < after.first(),
        "the rotated log holds the earlier lines"
    );
    let mut all = before.clone();
    all.extend(&after);
    let expected: Vec<u64> = (1..=all.len() as u64).collect();
    assert_eq!(all, expected, "every record in exactly one of the two logs");
    assert_eq!(read_report(&report).last().unwrap().word, "stop");
}
