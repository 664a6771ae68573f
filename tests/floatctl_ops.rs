//! The operator's view, through the real `floatd` and `floatctl`: exit
//! codes, status, rereads (floatctl and SIGHUP), shutdown and restart,
//! admin access and the token, and how the server starts (defaults,
//! config file, demo, bad flags, untrusted licences).
#![cfg(not(feature = "embedded-keys-only"))]

mod common;

use common::*;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn serve(features: &str, extra: &[&str]) -> (Site, Floatd) {
    let site = Site::new(features);
    let mut args = site.server_args("state");
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Floatd::start(&args, &site.path("floatd.log"));
    (site, server)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs floatctl against `addr` and checks its exit code.
fn ctl(addr: &str, args: &[&str], code: i32) -> Output {
    let mut all = vec!["--server", addr];
    all.extend_from_slice(args);
    let out = floatctl(&all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "floatctl {args:?}\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// `floatctl checkout` that must succeed; returns the handle.
fn checkout(addr: &str, args: &[&str]) -> String {
    let mut all = vec!["checkout"];
    all.extend_from_slice(args);
    let out = ctl(addr, &all, 0);
    let stdout = text(&out.stdout);
    let handle = stdout.trim_end_matches('\n');
    assert_eq!(stdout, format!("{handle}\n"), "the handle alone on stdout");
    assert!(
        !handle.is_empty() && handle.len() <= 64 && !handle.contains(char::is_whitespace),
        "{handle:?}"
    );
    handle.to_string()
}

/// The seat ids status lists for a feature, sorted.
fn holders(status: &serde_json::Value, feature: &str) -> Vec<String> {
    let mut handles: Vec<String> = feature_status(status, feature)
        .map(|f| {
            f["holders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["seat"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    handles.sort();
    handles
}

fn count_of(status: &serde_json::Value, feature: &str) -> Option<u64> {
    feature_status(status, feature).and_then(|f| f["count"].as_u64())
}

#[test]
fn floatctl_checkout_exit_codes_and_output() {
    let (site, server) = serve("FEATURE cad version=2.0 count=1 expires=permanent", &[]);
    let addr = server.addr.as_str();
    let handle = checkout(addr, &["cad", "--version", "2.0"]);
    assert_eq!(holders(&status_json(addr), "cad"), [seat_of(&handle)]);

    // Denied: exit 1, the code on stderr, nothing on stdout.
    for args in [
        &["checkout", "cad"][..],
        &["checkout", "cad", "--version", "9"],
    ] {
        let out = ctl(addr, args, 1);
        assert!(out.stdout.is_empty(), "{args:?}");
        let expected = if args.len() == 2 {
            "NO_SEATS"
        } else {
            "NO_VERSION"
        };
        assert!(
            text(&out.stderr).contains(expected),
            "{}",
            text(&out.stderr)
        );
    }

    // Bad arguments: exit 2 before any server is asked.
    let dead = dead_addr();
    for args in [
        &["checkout"][..],
        &["checkout", "cad", "--count", "0"],
        &["checkout", "cad", "--hold", "soon"],
        &["checkout", "cad", "--bogus"],
        &["checkout", "cad", "viewer"],
        &["checkin"],
        &["status", "--yaml"],
        &["frobnicate"],
    ] {
        let out = ctl(&dead, args, 2);
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: says why");
    }
    // Unreachable server: exit 2.
    let out = ctl(&dead, &["--timeout", "1", "checkout", "cad"], 2);
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no server reachable"),
        "{}",
        text(&out.stderr)
    );
    ctl(&dead, &["--timeout", "1", "status"], 2);

    // Checkin: 0, then 1 for a handle no longer held.
    ctl(addr, &["checkin", &handle], 0);
    let out = ctl(addr, &["checkin", &handle], 1);
    assert!(text(&out.stderr).contains("UNKNOWN_HANDLE"));

    // FLOATD_SERVERS instead of --server.
    let out = Command::new(FLOATCTL)
        .args(["checkout", "cad"])
        .env("FLOATD_SERVERS", format!("{dead},{addr}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second = text(&out.stdout).trim().to_string();

    // --wait: queued until the seat comes back, then the handle.
    let mut waiter = Spawned::floatctl(
        &[
            "--server", addr, "--user", "patient", "checkout", "cad", "--wait",
        ],
        &site.path("waiter.err"),
    );
    wait_until(PATIENCE, "the waiter to queue", || {
        feature_status(&status_json(addr), "cad").unwrap()["queue"] == 1
    });
    ctl(addr, &["checkin", &second], 0);
    let waited = waiter.line(PATIENCE).expect("the waiter's handle");
    assert_eq!(waiter.wait_exit(PATIENCE), Some(0));
    assert_eq!(holders(&status_json(addr), "cad"), [seat_of(&waited)]);
}

#[test]
fn status_json_has_the_documented_shape() {
    let (_site, server) = serve(
        "FEATURE cad version=2.0 count=4 expires=permanent\n\
         FEATURE viewer version=1.0 count=uncounted expires=permanent",
        &[],
    );
    let addr = server.addr.as_str();
    let handle = checkout(
        addr,
        &["--user", "alice", "--host", "ws17", "cad", "--count", "2"],
    );
    let status = status_json(addr);
    assert_eq!(status["role"], "standalone");
    assert_eq!(status["state"], "active");
    let features = status["features"].as_array().expect("features");
    assert_eq!(features.len(), 2);
    let cad = feature_status(&status, "cad").unwrap();
    assert_eq!(cad["name"], "cad");
    assert_eq!(cad["version"], "2.0");
    assert_eq!(cad["count"], 4);
    assert_eq!(cad["in_use"], 2);
    let holders = cad["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 1);
    assert_eq!(holders[0]["seat"], seat_of(&handle).as_str());
    assert!(
        holders[0].get("handle").is_none(),
        "status never shows a handle"
    );
    assert_eq!(holders[0]["version"], "0.0");
    assert!(holders[0]["granted_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(cad["more_holders"], 0);
    assert_eq!(holders[0]["user"], "alice");
    assert_eq!(holders[0]["host"], "ws17");
    assert_eq!(holders[0]["count"], 2);
    let viewer = feature_status(&status, "viewer").unwrap();
    assert!(viewer["count"].is_null(), "uncounted: {viewer}");
    assert_eq!(viewer["in_use"], 0);
    assert_eq!(viewer["holders"].as_array().unwrap().len(), 0);

    // The table for people says the same.
    let out = ctl(addr, &["status"], 0);
    let table = text(&out.stdout);
    assert!(table.contains("standalone"), "{table}");
    let seat = seat_of(&handle);
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with(&seat))
        .unwrap_or_else(|| panic!("no line for seat {seat}:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        [seat.as_str(), "alice", "ws17", "2", "any"],
        "{row}"
    );
    assert!(
        !table.contains(&handle),
        "the handle stays secret:\n{table}"
    );
    assert!(
        table.contains("\ncad 2.0: 4 issued, 2 in use, permanent\n"),
        "{table}"
    );
    assert!(
        table.contains("\nviewer 1.0: uncounted, 0 in use, permanent\n"),
        "{table}"
    );
    // A feature filter shows that feature alone; an unknown one exits 1.
    let only = text(&ctl(addr, &["status", "viewer"], 0).stdout);
    assert!(
        only.contains("viewer 1.0") && !only.contains("cad 2.0"),
        "{only}"
    );
    let out = ctl(addr, &["status", "nosuch"], 1);
    assert!(
        text(&out.stderr).contains("\"nosuch\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn reread_with_a_shrunk_pool_keeps_seats_out() {
    let (site, server) = serve("FEATURE cad version=1.0 count=3 expires=permanent", &[]);
    let addr = server.addr.as_str();
    let handles: Vec<String> = (0..3).map(|_| checkout(addr, &["cad"])).collect();
    site.resign("FEATURE cad version=1.0 count=1 expires=permanent");
    let out = ctl(addr, &["reread"], 0);
    assert_eq!(
        text(&out.stdout).trim(),
        format!("server at {addr} reread its licences: serving 1 pool(s)")
    );

    let status = status_json(addr);
    assert_eq!(count_of(&status, "cad"), Some(1));
    assert_eq!(used(&status, "cad"), 3, "seats out must stay out");
    for h in &handles {
        let mut c = LineClient::hello_as_floatctl(addr);
        assert!(c.ask(&format!("HEARTBEAT {h}")).starts_with("OK lease_ms="));
    }
    // New checkouts wait until use is below the new count.
    ctl(addr, &["checkout", "cad"], 1);
    ctl(addr, &["checkin", &handles[0]], 0);
    ctl(addr, &["checkout", "cad"], 1);
    ctl(addr, &["checkin", &handles[1]], 0);
    ctl(addr, &["checkout", "cad"], 1);
    ctl(addr, &["checkin", &handles[2]], 0);
    checkout(addr, &["cad"]);
    ctl(addr, &["checkout", "cad"], 1);

    // Growing the pool again lets more out at once.
    site.resign("FEATURE cad version=1.0 count=2 expires=permanent");
    ctl(addr, &["reread"], 0);
    checkout(addr, &["cad"]);
}

#[test]
fn sighup_rereads_with_a_shrunk_pool_and_keeps_seats_out() {
    let (site, server) = serve("FEATURE cad version=1.0 count=3 expires=permanent", &[]);
    let addr = server.addr.as_str();
    let handles: Vec<String> = (0..3).map(|_| checkout(addr, &["cad"])).collect();
    site.resign("FEATURE cad version=1.0 count=1 expires=permanent");
    server.signal("HUP");
    wait_until(PATIENCE, "SIGHUP to reread the licence", || {
        count_of(&status_json(addr), "cad") == Some(1)
    });
    let status = status_json(addr);
    assert_eq!(used(&status, "cad"), 3);
    let mut sorted: Vec<String> = handles.iter().map(|h| seat_of(h)).collect();
    sorted.sort();
    assert_eq!(holders(&status, "cad"), sorted);
    ctl(addr, &["checkout", "cad"], 1);
    ctl(addr, &["checkin", &handles[0]], 0);
    ctl(addr, &["checkin", &handles[1]], 0);
    ctl(addr, &["checkout", "cad"], 1);
    ctl(addr, &["checkin", &handles[2]], 0);
    checkout(addr, &["cad"]);
    // A broken licence on SIGHUP keeps the previous one served.
    std::fs::write(&site.licence, "this is not a licence\n").unwrap();
    server.signal("HUP");
    wait_until(PATIENCE, "the failed reread in the log", || {
        server.log_text().contains("reread failed")
    });
    assert_eq!(count_of(&status_json(addr), "cad"), Some(1));
    ctl(addr, &["checkout", "cad"], 1);
    // And floatctl reread reports the failure.
    let out = ctl(addr, &["reread"], 1);
    assert!(
        text(&out.stderr).contains("INTERNAL"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn seats_of_a_feature_gone_on_reread_come_back_as_licence_gone() {
    let (site, server) = serve(
        "FEATURE cad version=1.0 count=2 expires=permanent\n\
         FEATURE cam version=1.0 count=2 expires=permanent",
        &[],
    );
    let addr = server.addr.as_str();
    let mut c = LineClient::hello(addr, "alice", "ws1");
    let cam = c.checkout("cam").unwrap();
    let cad = c.checkout("cad").unwrap();
    site.resign("FEATURE cad version=1.0 count=2 expires=permanent");
    assert_eq!(c.ask("REREAD"), "OK pools=1");
    // The seat returned at the reread: the server no longer knows its
    // handle (the reason is in the report log), and the feature is gone.
    assert_eq!(
        c.ask(&format!("HEARTBEAT {cam}")).split_whitespace().nth(1),
        Some("UNKNOWN_HANDLE")
    );
    let status = c.status();
    assert!(feature_status(&status, "cam").is_none());
    assert_eq!(used(&status, "cad"), 1);
    assert!(c.ask(&format!("HEARTBEAT {cad}")).starts_with("OK"));
    assert!(c.ask("CHECKOUT cam").starts_with("ERR NO_SUCH_FEATURE"));
    let state = site.path("state");
    wait_until(PATIENCE, "licence_gone in the report log", || {
        report_log(&state)
            .lines()
            .any(|l| l.contains(&format!("handle={cam}")) && l.contains("reason=licence_gone"))
    });
}

#[test]
fn sigterm_exits_0_and_seats_survive_a_restart() {
    let site = Site::new("FEATURE cad version=1.0 count=2 expires=permanent");
    let args = site.server_args("state");
    let mut server = Floatd::start(&args, &site.path("floatd-1.log"));
    let a = checkout(&server.addr, &["cad"]);
    let b = checkout(&server.addr, &["--user", "bob", "cad"]);
    let mut waiter = LineClient::hello(&server.addr, "carol", "ws3");
    let queued = waiter.ask("CHECKOUT cad wait=yes");
    assert!(queued.starts_with("QUEUED id="), "{queued}");
    server.signal("TERM");
    assert_eq!(server.wait_exit(PATIENCE), Some(0), "{}", server.log_text());
    // The waiter is told, then its connection closed.
    let (lines, closed) = waiter.read_until_closed(PATIENCE);
    assert!(closed, "connections are closed at shutdown");
    let id = field(&queued, "id").unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("* DENIED id={id} code=SHUTTING_DOWN")),
        "{lines:?}"
    );

    let server = Floatd::start(&args, &site.path("floatd-2.log"));
    let mut expected = vec![seat_of(&a), seat_of(&b)];
    expected.sort();
    let status = status_json(&server.addr);
    assert_eq!(holders(&status, "cad"), expected);
    assert_eq!(used(&status, "cad"), 2);
    // The handles still work: a heartbeat renews, a checkin returns.
    let mut c = LineClient::hello_as_floatctl(&server.addr);
    assert!(c.ask(&format!("HEARTBEAT {a}")).starts_with("OK lease_ms="));
    // A checkin as somebody else is refused; as bob it returns the seat.
    ctl(&server.addr, &["checkin", &b], 1);
    ctl(&server.addr, &["--user", "bob", "checkin", &b], 0);
    assert_eq!(used(&status_json(&server.addr), "cad"), 1);
}

#[test]
fn floatctl_down_exits_0_and_down_release_returns_every_seat() {
    let site = Site::new("FEATURE cad version=1.0 count=3 expires=permanent");
    let args = site.server_args("state");
    let mut server = Floatd::start(&args, &site.path("floatd-1.log"));
    let a = checkout(&server.addr, &["cad"]);
    ctl(&server.addr, &["down"], 0);
    assert_eq!(server.wait_exit(PATIENCE), Some(0), "{}", server.log_text());

    let mut server = Floatd::start(&args, &site.path("floatd-2.log"));
    assert_eq!(holders(&status_json(&server.addr), "cad"), [seat_of(&a)]);
    ctl(&server.addr, &["down", "--release"], 0);
    assert_eq!(server.wait_exit(PATIENCE), Some(0), "{}", server.log_text());

    let server = Floatd::start(&args, &site.path("floatd-3.log"));
    assert_eq!(used(&status_json(&server.addr), "cad"), 0);
}

#[test]
fn admin_requests_from_loopback_need_no_token() {
    let (_site, mut server) = serve("FEATURE cad version=1.0 count=2 expires=permanent", &[]);
    let addr = server.addr.clone();
    let h1 = checkout(&addr, &["cad"]);
    let h2 = checkout(&addr, &["cad"]);
    let mut op = LineClient::connect(&addr);
    let removed = op.ask(&format!("REMOVE {h1}"));
    assert!(
        removed.starts_with("OK removed=1 feature=cad "),
        "{removed}"
    );
    assert_eq!(field(&removed, "seat"), Some(seat_of(&h1)));
    assert!(op
        .ask(&format!("REMOVE {h1}"))
        .starts_with("ERR UNKNOWN_HANDLE"));
    // By seat id, as status shows it.
    let out = ctl(&addr, &["remove", &seat_of(&h2)], 0);
    let id = floatd::ctl::common::default_identity();
    assert_eq!(
        text(&out.stdout),
        format!("removed 1 seat of cad from {}@{}\n", id.user, id.host)
    );
    let out = ctl(&addr, &["remove", &seat_of(&h2)], 1);
    assert!(text(&out.stderr).contains("UNKNOWN_HANDLE"));
    assert_eq!(used(&status_json(&addr), "cad"), 0);
    assert_eq!(op.ask("REREAD"), "OK pools=1");
    assert_eq!(op.ask("DOWN"), "OK");
    assert_eq!(server.wait_exit(PATIENCE), Some(0));
}

/// Peers off loopback always need the token. These tests are loopback
/// only, and every 127.0.0.0/8 address is loopback, so no test can be a
/// remote peer: `--admin-token-always` makes loopback take the same path
/// (`Core::admin_by_default` is false for both), which is what it is for.
#[test]
fn admin_token_always_refuses_admin_requests_until_auth() {
    let site = Site::new("FEATURE cad version=1.0 count=2 expires=permanent");
    let token_file = site.path("admin.token");
    std::fs::write(&token_file, "correct-horse-battery\n").unwrap();
    let wrong_file = site.path("wrong.token");
    std::fs::write(&wrong_file, "incorrect-horse\n").unwrap();
    let mut args = site.server_args("state");
    args.extend([
        "--admin-token-always".to_string(),
        "--admin-token-file".to_string(),
        token_file.display().to_string(),
    ]);
    let mut server = Floatd::start(&args, &site.path("floatd.log"));
    let addr = server.addr.clone();
    let handle = checkout(&addr, &["cad"]);

    let mut op = LineClient::connect(&addr);
    for request in [
        format!("REMOVE {handle}"),
        "REREAD".into(),
        "DOWN".into(),
        "ROTATE-LOG".into(),
    ] {
        let reply = op.ask(&request);
        assert!(
            reply.starts_with("ERR ADMIN_REQUIRED"),
            "{request}: {reply}"
        );
    }
    // Status is not an admin request.
    assert!(op.ask("STATUS").starts_with("STATUS {"));
    let reply = op.ask("AUTH incorrect-horse");
    assert!(reply.starts_with("ERR ADMIN_REQUIRED"), "{reply}");
    assert!(op.ask("REREAD").starts_with("ERR ADMIN_REQUIRED"));
    // floatctl without a token, or with the wrong one: denied, exit 1.
    let out = ctl(&addr, &["remove", &handle], 1);
    assert!(
        text(&out.stderr).contains("ADMIN_REQUIRED"),
        "{}",
        text(&out.stderr)
    );
    let wrong = wrong_file.display().to_string();
    ctl(&addr, &["--admin-token-file", &wrong, "remove", &handle], 1);
    ctl(&addr, &["--admin-token-file", &wrong, "down"], 1);
    assert_eq!(used(&status_json(&addr), "cad"), 1);

    assert_eq!(op.ask("AUTH correct-horse-battery"), "OK admin=yes");
    assert_eq!(op.ask("REREAD"), "OK pools=1");
    // floatctl with the token file.
    let right = token_file.display().to_string();
    ctl(&addr, &["--admin-token-file", &right, "remove", &handle], 0);
    assert_eq!(used(&status_json(&addr), "cad"), 0);
    ctl(&addr, &["--admin-token-file", &right, "down"], 0);
    assert_eq!(server.wait_exit(PATIENCE), Some(0));
}

#[test]
fn floatd_starts_with_defaults_or_a_config_file() {
    let site = Site::new("FEATURE cad version=1.0 count=2 expires=permanent");
    // --license and --vendor-key alone (plus isolation: port 0, own state
    // directory, loopback).
    let state = site.path("state-defaults");
    let args: Vec<String> = [
        "--license",
        site.licence.to_str().unwrap(),
        "--vendor-key",
        site.vendor_pub.to_str().unwrap(),
        "--port",
        "0",
        "--state-dir",
        state.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let server = Floatd::start(&args, &site.path("defaults.log"));
    let mut c = LineClient::connect(&server.addr);
    assert_eq!(
        c.ask("HELLO proto=1 client=c user=u host=h"),
        "OK proto=1 lease_ms=60000"
    );
    assert!(c.checkout("cad").is_ok());
    assert_eq!(c.status()["lease_secs"], 60);
    assert!(
        state.join("handle.key").exists(),
        "state in the given directory"
    );

    // A second server on the same state directory refuses to start.
    let (code, stderr) = Floatd::start_failing(&args, &site.path("second.log"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("in use by another floatd"), "{stderr}");
    drop(server);

    // The same from a config file; a flag wins over the file.
    let config = site.path("floatd.toml");
    std::fs::write(
        &config,
        format!(
            "license = {:?}\nvendor_key = [{:?}]\nstate_dir = {:?}\nbind = \"127.0.0.1\"\nport = 0\nlease = \"5s\"\nmax_connections = 100\n",
            site.licence.display().to_string(),
            site.vendor_pub.display().to_string(),
            site.path("state-config").display().to_string(),
        ),
    )
    .unwrap();
    let cfg = config.display().to_string();
    let server = Floatd::start(
        &["--config".to_string(), cfg.clone()],
        &site.path("config.log"),
    );
    let mut c = LineClient::connect(&server.addr);
    assert_eq!(
        c.ask("HELLO proto=1 client=c user=u host=h"),
        "OK proto=1 lease_ms=5000"
    );
    drop(server);
    let server = Floatd::start(
        &["--config".to_string(), cfg, "--lease".into(), "7".into()],
        &site.path("config2.log"),
    );
    let mut c = LineClient::connect(&server.addr);
    assert_eq!(
        c.ask("HELLO proto=1 client=c user=u host=h"),
        "OK proto=1 lease_ms=7000"
    );
}

#[test]
fn floatd_demo_serves_and_says_how_to_try_it() {
    let args: Vec<String> = ["--demo", "--bind", "127.0.0.1", "--port", "0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut server = Floatd::start(&args, log.path());
    let mut printed = String::new();
    while let Some(line) = server.stdout_line(Duration::from_secs(2)) {
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Stop with") {
            break;
        }
    }
    let hint = format!("floatctl --server {} checkout cad", server.addr);
    assert!(printed.contains(&hint), "{printed}");
    let handle = checkout(&server.addr, &["cad"]);
    let status = status_json(&server.addr);
    assert_eq!(holders(&status, "cad"), [seat_of(&handle)]);
    assert_eq!(count_of(&status, "cad"), Some(5));
    // The demo's temporary state directory goes away with it.
    let state = std::env::temp_dir().join(format!("floatd-demo-{}", server.pid()));
    assert!(state.is_dir(), "{}", state.display());
    server.signal("TERM");
    assert_eq!(server.wait_exit(PATIENCE), Some(0));
    assert!(!state.exists(), "{} left behind", state.display());
}

#[test]
fn bad_flags_and_config_exit_2_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "colour = \"red\"\n").unwrap();
    let bad_value = dir.path().join("value.toml");
    std::fs::write(&bad_value, "lease = \"soon\"\n").unwrap();
    let missing = dir.path().join("missing.toml");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--bogus".into()], "--bogus"),
        (vec!["--lease".into(), "0".into()], "lease"),
        (vec!["--lease".into(), "soon".into()], "soon"),
        (vec!["--port".into(), "99999".into()], "99999"),
        (
            vec!["--max-connections".into(), "0".into()],
            "max_connections",
        ),
        (vec!["--role".into(), "primary".into()], "--peer"),
        (vec!["--role".into(), "boss".into()], "boss"),
        (vec!["stray".into()], "stray"),
        (
            vec!["--config".into(), bad_toml.display().to_string()],
            "colour",
        ),
        (
            vec!["--config".into(), bad_value.display().to_string()],
            "lease",
        ),
        (
            vec!["--config".into(), missing.display().to_string()],
            "missing.toml",
        ),
    ];
    for (args, mention) in cases {
        let (code, stderr) = Floatd::start_failing(&args, &dir.path().join("x.log"));
        assert_eq!(code, 78, "{args:?}: a configuration error: {stderr}");
        assert!(stderr.starts_with("floatd: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(mention),
            "{args:?} should mention {mention}: {stderr}"
        );
    }
    let out = Command::new(FLOATD).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--license PATH"));
}

#[test]
fn floatd_refuses_licences_it_cannot_trust_and_says_why() {
    let site = Site::new("FEATURE cad version=1.0 count=2 expires=permanent");
    let other = Site::new("FEATURE cad version=1.0 count=2 expires=permanent");
    let key_id = std::fs::read_to_string(&site.licence)
        .unwrap()
        .split("sig=ed25519:")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    // Signed by a key the server was not given.
    let mut args = site.server_args("state");
    let key = args.iter().position(|a| a == "--vendor-key").unwrap() + 1;
    args[key] = other.vendor_pub.display().to_string();
    let (code, stderr) = Floatd::start_failing(&args, &site.path("x.log"));
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("no licence can be served"), "{stderr}");
    assert!(stderr.contains("not trusted"), "{stderr}");
    assert!(stderr.contains(&key_id), "names the key: {stderr}");
    assert!(stderr.contains("site.lic:3"), "names the line: {stderr}");

    // No key at all.
    let mut args = site.server_args("state");
    let key = args.iter().position(|a| a == "--vendor-key").unwrap();
    args.drain(key..key + 2);
    let (code, stderr) = Floatd::start_failing(&args, &site.path("x.log"));
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("--vendor-key"), "{stderr}");

    // A tampered line is skipped; the rest of the file still serves.
    let signed = std::fs::read_to_string(&site.licence).unwrap();
    site.resign(
        "FEATURE cad version=1.0 count=2 expires=permanent\n\
         FEATURE cam version=1.0 count=2 expires=permanent",
    );
    let resigned = std::fs::read_to_string(&site.licence).unwrap();
    assert_ne!(signed, resigned);
    let tampered = resigned.replace(
        "FEATURE cam version=1.0 count=2",
        "FEATURE cam version=1.0 count=200",
    );
    std::fs::write(&site.licence, tampered).unwrap();
    let server = Floatd::start(&site.server_args("state"), &site.path("tampered.log"));
    let status = status_json(&server.addr);
    assert!(feature_status(&status, "cad").is_some());
    assert!(
        feature_status(&status, "cam").is_none(),
        "a tampered line was served"
    );
    assert!(
        server.log_text().contains("cam"),
        "the skipped line is logged"
    );
}
