//! The HTTP status port (`--http`): the page in a real headless Chromium,
//! /status.json against STATUS, /metrics through a Prometheus parser, and
//! bad input (oversized heads, garbage, other methods, slow clients, a
//! flood of connections) while good clients keep being served.

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FEATURES: &str = "\
FEATURE cad version=2.0 count=5 expires=permanent
FEATURE plotter version=1.0 count=3 expires=2031-06-30
FEATURE viewer version=1.0 count=uncounted expires=permanent";

/// A standalone server with the HTTP port on.
fn server(site: &Site) -> Floatd {
    let mut args = site.server_args("state");
    args.extend(["--http".to_string(), "127.0.0.1:0".to_string()]);
    let server = Floatd::start(&args, &site.path("floatd.log"));
    assert!(server.http_addr.is_some(), "no `floatd http on` line");
    server
}

/// Sends `request` as is and reads until the server closes (or `within`).
fn raw(addr: &str, request: &[u8], within: Duration) -> String {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(within)).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

/// GET `path`; returns (status code, headers, body).
fn get(addr: &str, path: &str) -> (u16, String, String) {
    let text = raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
        PATIENCE,
    );
    split_response(&text)
}

fn split_response(text: &str) -> (u16, String, String) {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {text:?}"));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    (code, head.to_string(), body.to_string())
}

fn status_code(text: &str) -> u16 {
    split_response(text).0
}

/// Holds seats: alice and bob on cad, carol on plotter. Returns the clients
/// (seats stay out while they live).
fn hold_seats(addr: &str) -> Vec<LineClient> {
    let mut out = Vec::new();
    for (user, host, feature) in [
        ("alice", "ws-alice", "cad"),
        ("bob", "ws-bob", "cad"),
        ("carol", "ws-carol", "plotter"),
    ] {
        let mut c = LineClient::hello(addr, user, host);
        c.checkout(feature).expect("checkout");
        out.push(c);
    }
    out
}

#[test]
fn status_json_is_the_status_report() {
    let site = Site::new(FEATURES);
    let server = server(&site);
    let http = server.http_addr.clone().unwrap();
    let mut clients = hold_seats(&server.addr);
    let via_status = clients[0].status();
    let (code, head, body) = get(&http, "/status.json");
    assert_eq!(code, 200, "{head}");
    assert!(head.contains("Content-Type: application/json"), "{head}");
    let via_http: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    for key in ["server", "role", "state", "epoch", "lease_secs", "seq"] {
        assert_eq!(via_http[key], via_status[key], "{key}");
    }
    assert_eq!(via_http["connections"], 3);
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        for f in v["features"].as_array_mut().unwrap() {
            for h in f["holders"].as_array_mut().unwrap() {
                let h = h.as_object_mut().unwrap();
                h.remove("age_secs");
                h.remove("returns_in_secs");
            }
        }
        v["features"].clone()
    };
    assert_eq!(strip(&via_http), strip(&via_status));
    assert_eq!(used(&via_http, "cad"), 2);
    assert_eq!(used(&via_http, "plotter"), 1);
    let cad = feature_status(&via_http, "cad").unwrap();
    let users: HashSet<&str> = cad["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, HashSet::from(["alice", "bob"]));
}

/// One sample of the text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses the Prometheus text format strictly: HELP and TYPE once per
/// family and before its samples, valid names and labels, numeric values,
/// no series twice. Returns the samples.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps = HashSet::new();
    let mut series = HashSet::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "the text must end with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name), "{line}");
            assert!(!help.is_empty(), "{line}");
            assert!(helps.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series_part, value) = line.rsplit_once(' ').expect("sample value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value in {line:?}"));
        let (name, labels) = match series_part.split_once('{') {
            None => (series_part.to_string(), Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let mut labels = Vec::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
                    assert!(valid_name(&key), "label name in {line}");
                    assert_eq!(chars.next(), Some('"'), "{line}");
                    let mut value = String::new();
                    loop {
                        match chars
                            .next()
                            .unwrap_or_else(|| panic!("unterminated {line}"))
                        {
                            '\\' => value.push(chars.next().unwrap()),
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.push((key, value));
                    match chars.next() {
                        None => break,
                        Some(',') => {}
                        Some(c) => panic!("{c:?} after a label in {line}"),
                    }
                }
                (name.to_string(), labels)
            }
        };
        assert!(valid_name(&name), "{line}");
        let family = ["_sum", "_count", "_bucket"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(&name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        assert!(helps.contains(family), "sample without HELP: {line}");
        if types[family] == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} should end in _total"
            );
        } else {
            assert!(!name.ends_with("_total"), "{name} is not a counter");
        }
        assert!(
            series.insert(series_part.to_string()),
            "series twice: {line}"
        );
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.value)
}

/// Runs `promtool check metrics` on `text` when promtool is installed
/// (CI installs it; then it must be there).
fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool is not installed, and CI must run it (apt-get install prometheus)"
            );
            eprintln!("SKIPPED promtool check: promtool is not installed (apt-get install prometheus); the Rust parser checked the text");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn metrics_count_seats_checkouts_and_denials() {
    let site = Site::new(FEATURES);
    let server = server(&site);
    let http = server.http_addr.clone().unwrap();
    let _held = hold_seats(&server.addr);
    let mut c = LineClient::hello(&server.addr, "dave", "ws-dave");
    // plotter has 3 seats: 2 more fit, the third is denied.
    c.checkout("plotter").unwrap();
    c.checkout("plotter").unwrap();
    let denied = c.checkout("plotter").unwrap_err();
    assert!(denied.contains("NO_SEATS"), "{denied}");
    let denied = c.checkout("nosuch").unwrap_err();
    assert!(denied.contains("NO_SUCH_FEATURE"), "{denied}");

    let (code, head, body) = get(&http, "/metrics");
    assert_eq!(code, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let samples = parse_metrics(&body);
    promtool_check(&body);
    let v = |name: &str, labels: &[(&str, &str)]| {
        value(&samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{body}"))
    };
    let cad = [("feature", "cad"), ("version", "2.0")];
    let plotter = [("feature", "plotter"), ("version", "1.0")];
    assert_eq!(v("floatd_seats_in_use", &cad), 2.0);
    assert_eq!(v("floatd_seats_licensed", &cad), 5.0);
    assert_eq!(v("floatd_seats_in_use", &plotter), 3.0);
    assert_eq!(v("floatd_seats_licensed", &plotter), 3.0);
    assert_eq!(v("floatd_seats_in_use", &[("feature", "viewer")]), 0.0);
    assert!(
        value(&samples, "floatd_seats_licensed", &[("feature", "viewer")]).is_none(),
        "uncounted pools have no licensed count"
    );
    assert_eq!(v("floatd_checkouts_total", &[]), 5.0);
    // Expiry as a Unix time (base units): the end of 2031-06-30, UTC.
    assert_eq!(
        v("floatd_licence_expiry_timestamp_seconds", &plotter),
        1_940_630_400.0
    );
    assert!(
        value(&samples, "floatd_licence_expiry_timestamp_seconds", &cad).is_none(),
        "permanent pools have no expiry"
    );
    assert_eq!(v("floatd_denials_total", &[("code", "NO_SEATS")]), 1.0);
    assert_eq!(
        v("floatd_denials_total", &[("code", "NO_SUCH_FEATURE")]),
        1.0
    );
    assert_eq!(v("floatd_connections", &[]), 4.0);
    assert_eq!(v("floatd_role", &[("role", "standalone")]), 1.0);
    assert_eq!(v("floatd_role", &[("role", "primary")]), 0.0);
    assert_eq!(v("floatd_state", &[("state", "active")]), 1.0);
    assert!(v("floatd_journal_fsync_seconds_count", &[]) >= 1.0);
    assert!(
        v("floatd_journal_fsync_max_seconds", &[]) >= v("floatd_journal_fsync_last_seconds", &[])
    );
    assert!(v("floatd_uptime_seconds", &[]) >= 0.0);
    assert_eq!(v("floatd_journal_failed", &[]), 0.0);
    // A standalone server has no peer.
    assert!(value(&samples, "floatd_peer_up", &[]).is_none());
    // HEAD: the headers alone.
    let text = raw(
        &http,
        b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
        PATIENCE,
    );
    let (code, head, body) = split_response(&text);
    assert_eq!(code, 200);
    assert!(
        head.contains("Content-Length: ") && body.is_empty(),
        "{text}"
    );
}

#[test]
fn a_pair_shows_its_peer_and_replication() {
    let pair = Pair::start(
        "FEATURE cad version=2.0 count=5 expires=permanent",
        &["--http", "127.0.0.1:0"],
    );
    let primary = pair.primary.as_ref().unwrap();
    let http = primary.http_addr.clone().unwrap();
    let mut c = LineClient::hello(&primary.addr, "erin", "ws-erin");
    c.checkout("cad").unwrap();
    let mut body = String::new();
    wait_until(PATIENCE, "the backup to be ready with the grant", || {
        body = get(&http, "/metrics").2;
        let s = parse_metrics(&body);
        value(&s, "floatd_replication_lag_records", &[]) == Some(0.0)
            && value(&s, "floatd_seats_in_use", &[("feature", "cad")]) == Some(1.0)
            && value(&s, "floatd_peer_state", &[("state", "ready")]) == Some(1.0)
    });
    promtool_check(&body);
    let s = parse_metrics(&body);
    assert_eq!(value(&s, "floatd_role", &[("role", "primary")]), Some(1.0));
    assert_eq!(value(&s, "floatd_state", &[("state", "active")]), Some(1.0));
    assert_eq!(value(&s, "floatd_peer_up", &[]), Some(1.0), "{body}");
    assert_eq!(
        value(&s, "floatd_peer_state", &[("state", "ready")]),
        Some(1.0),
        "{body}"
    );
    assert!(value(&s, "floatd_peer_last_contact_seconds", &[]).is_some());
    let backup_http = pair.backup.as_ref().unwrap().http_addr.clone().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&get(&backup_http, "/status.json").2).unwrap();
    assert_eq!(json["state"], "ready");
    assert_eq!(json["servers"][1]["state"], "active");
    // The page of the pair, for a look (and its failover table).
    if let Some(dom) = chromium_dom(&http, "status-page-pair.png") {
        assert!(dom.contains("Failover"), "{dom}");
        assert!(dom.contains("data-role=\"backup\""), "{dom}");
    }
}

#[test]
fn bad_input_gets_the_right_answer_and_good_clients_are_served() {
    let site = Site::new(FEATURES);
    let server = server(&site);
    let http = server.http_addr.clone().unwrap();
    let good = GoodClient::start(&server.addr, "cad");
    let t = PATIENCE;

    // Oversized head: one huge header, and too many headers.
    let mut big = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 9000));
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_code(&raw(&http, &big, t)), 431);
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for i in 0..40 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(status_code(&raw(&http, many.as_bytes(), t)), 431);
    // A head that never ends, sent all at once.
    assert_eq!(
        status_code(&raw(&http, &vec![b'G'; 20_000], t)),
        431,
        "an endless request line"
    );
    // Garbage and the licence protocol.
    assert_eq!(
        status_code(&raw(&http, b"\x00\x01\x02 hello\r\n\r\n", t)),
        400
    );
    assert_eq!(status_code(&raw(&http, b"DOWN\r\n\r\n", t)), 400);
    assert_eq!(
        status_code(&raw(&http, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", t)),
        400
    );
    // Read-only: other methods.
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let text = raw(
            &http,
            format!("{method} / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\ndown").as_bytes(),
            t,
        );
        let (code, head, _) = split_response(&text);
        assert_eq!(code, 405, "{method}: {text}");
        assert!(head.contains("Allow: GET, HEAD"), "{head}");
    }
    // Unknown paths; query strings are ignored.
    assert_eq!(get(&http, "/admin").0, 404);
    assert_eq!(get(&http, "/../etc/passwd").0, 404);
    assert_eq!(get(&http, "/metrics?x=1").0, 200);
    good.wait_served(20, "after bad HTTP requests");

    // A slow client: half a request line, then nothing. It is answered 408
    // and closed after the head timeout; meanwhile others are served.
    let started = Instant::now();
    let mut slow = TcpStream::connect(&http).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(get(&http, "/status.json").0, 200);
    good.wait_served(20, "while a slow HTTP client waits");
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "closed after {took:?}"
    );

    // A flood of idle connections from one address: past 8 from it, each
    // newcomer pushes out its oldest, so the port serves on.
    let mut idle: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(&http).unwrap())
        .collect();
    let text = raw(&http, b"GET /metrics HTTP/1.1\r\n\r\n", t);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    good.wait_served(20, "while the HTTP port is flooded");
    // The oldest were closed without an answer.
    idle[0].set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(idle[0].read(&mut buf), Ok(0) | Err(_)));
    drop(idle);
    good.finish();
    assert!(server.log_text().contains("status page on http://"));
}

/// The chromium binary, if one is installed.
fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|b| b.to_string())
}

/// Loads `http://ADDR/` in headless Chromium after its script has run,
/// saves a screenshot as target/NAME, and returns the DOM. `None` (with a
/// message) when Chromium is not installed, outside CI only.
fn chromium_dom(addr: &str, screenshot: &str) -> Option<String> {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed, and CI must test the page (apt-get install chromium)"
        );
        eprintln!("SKIPPED the status page in a browser: chromium is not installed (apt-get install chromium)");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/");
    let common = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdin(Stdio::null());
    };
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(screenshot);
    let mut cmd = Command::new(&browser);
    common(&mut cmd);
    let out = run_bounded(
        cmd.arg(format!("--screenshot={}", shot.display()))
            .arg("--window-size=1200,900")
            .arg(&url),
    );
    assert!(shot.exists(), "no screenshot: {out}");
    let mut cmd = Command::new(&browser);
    common(&mut cmd);
    let dom = run_bounded(cmd.arg("--dump-dom").arg(&url));
    Some(dom)
}

/// Runs a command with a deadline; returns its stdout.
fn run_bounded(cmd: &mut Command) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

#[test]
fn the_page_shows_seats_holders_and_role_in_a_browser() {
    let site = Site::new(FEATURES);
    let server = server(&site);
    let http = server.http_addr.clone().unwrap();
    let mut held = hold_seats(&server.addr);
    held[0].checkout("viewer").expect("an uncounted seat");
    // A refusal for the chart: 4 more of cad's 5 seats do not fit.
    let refused = held[1].ask("CHECKOUT cad count=4");
    assert!(refused.starts_with("ERR NO_SEATS"), "{refused}");
    // The chart's data: cad's level, its licensed count, the refusal.
    let (code, _, body) = get(&http, "/history.json");
    assert_eq!(code, 200);
    let history: serde_json::Value = serde_json::from_str(&body).unwrap();
    let cad = history["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "cad")
        .expect("cad is charted");
    assert_eq!(cad["licensed"], 5);
    for (range, buckets) in [(0, 288), (1, 168)] {
        let series = &cad["ranges"][range];
        let peak = series["peak"].as_array().unwrap();
        assert_eq!(peak.len(), buckets);
        assert_eq!(peak.last().unwrap(), 2, "{series}");
        let denials: u64 = series["denials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .sum();
        assert_eq!(denials, 1, "{series}");
    }
    // The page is one self-contained document: no external assets.
    let (code, head, page) = get(&http, "/");
    assert_eq!(code, 200);
    assert!(head.contains("Content-Type: text/html"), "{head}");
    assert!(
        head.contains("Content-Security-Policy: default-src 'none'"),
        "{head}"
    );
    for external in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!page.contains(external), "external asset {external}");
    }
    let Some(dom) = chromium_dom(&http, "status-page.png") else {
        return;
    };
    let shown = |class: &str, feature: &str, version: &str, n: u64| {
        let needle =
            format!("class=\"{class}\" data-feature=\"{feature}\" data-version=\"{version}\">{n}<");
        assert!(dom.contains(&needle), "{needle} not in the page:\n{dom}");
    };
    shown("in-use", "cad", "2.0", 2);
    shown("count", "cad", "2.0", 5);
    shown("in-use", "plotter", "1.0", 1);
    shown("count", "plotter", "1.0", 3);
    shown("in-use", "viewer", "1.0", 1);
    for (user, host) in [
        ("alice", "ws-alice"),
        ("bob", "ws-bob"),
        ("carol", "ws-carol"),
    ] {
        assert!(
            dom.contains(&format!(
                "<td class=\"user\">{user}</td><td class=\"host\">{host}</td>"
            )),
            "holder {user}@{host} not shown:\n{dom}"
        );
    }
    assert!(
        dom.contains("id=\"role\" class=\"badge neutral\">standalone<"),
        "{dom}"
    );
    assert!(
        dom.contains("id=\"state\" class=\"badge active\">active<"),
        "{dom}"
    );
    assert!(dom.contains("id=\"epoch\">1<"), "{dom}");
    // The chart: per feature and range, the peak, the licensed line, the
    // refusal marked.
    for range in ["24h", "7d"] {
        let needle =
            format!("class=\"chart\" data-feature=\"cad\" data-range=\"{range}\" data-peak=\"2\"");
        assert!(dom.contains(&needle), "{needle} not in the page:\n{dom}");
    }
    assert!(dom.contains("class=\"licensed\" data-count=\"5\""), "{dom}");
    assert!(dom.contains("class=\"denial\" data-count=\"1\""), "{dom}");
    assert!(
        dom.contains("data-feature=\"plotter\" data-range=\"7d\" data-peak=\"1\""),
        "{dom}"
    );
    // Counted seats of the counted total (5 + 3); the uncounted one apart.
    assert!(
        dom.contains("id=\"seats-used\">3<small> of 8 \u{b7} 1 uncounted</small>"),
        "{dom}"
    );
}
