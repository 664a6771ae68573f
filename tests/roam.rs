//! Roaming through real servers (docs/ROAMING.md): seats taken away for
//! days, counted while away, checked offline by the client, returned,
//! extended and ended by the calendar. `--roam-day` shortens the day where
//! a test must see a roam end.

mod common;

use common::*;
use floatd::client::RoamStore;
use floatd::licence::{HostId, HostIds, Version};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FEATURES: &str = "FEATURE cad version=2.0 count=3 expires=permanent roam=5\n\
                        FEATURE viewer version=1.0 count=2 expires=permanent";

/// A standalone server and a user's roam store.
struct Roaming {
    site: Site,
    server: Option<Floatd>,
    args: Vec<String>,
    store: PathBuf,
}

impl Roaming {
    fn start(features: &str, extra: &[&str]) -> Roaming {
        Roaming::with_options(features, extra, None)
    }

    /// With an options file holding `options`, if given.
    fn with_options(features: &str, extra: &[&str], options: Option<&str>) -> Roaming {
        let site = Site::new(features);
        let mut args = site.server_args("state");
        args.extend(extra.iter().map(|s| s.to_string()));
        if let Some(text) = options {
            let path = site.path("floatd.opt");
            std::fs::write(&path, text).unwrap();
            args.extend(["--options".to_string(), path.display().to_string()]);
        }
        let store = site.path("roams");
        let mut r = Roaming {
            site,
            server: None,
            args,
            store,
        };
        r.restart();
        r
    }

    fn restart(&mut self) {
        self.server = None;
        self.server = Some(Floatd::start(&self.args, &self.site.path("floatd.log")));
    }

    fn addr(&self) -> String {
        self.server.as_ref().expect("running").addr.clone()
    }

    /// `floatctl` as the user `user` on this machine, with this store.
    fn ctl_as(&self, user: &str, args: &[&str]) -> Output {
        let addr = self.addr();
        let store = self.store.display().to_string();
        let mut all = vec!["--server", &addr, "--user", user, "--host", "ws1"];
        all.extend_from_slice(args);
        if args.first() == Some(&"roam") {
            all.extend(["--roam-dir", &store]);
        }
        floatctl(&all)
    }

    fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_as("ann", args)
    }

    /// Offline: the store alone, no server named.
    fn ctl_offline(&self, args: &[&str]) -> Output {
        let store = self.store.display().to_string();
        let mut all = vec!["--roam-dir", store.as_str()];
        all.extend_from_slice(args);
        floatctl(&all)
    }

    /// The report log, once it holds every one of `wanted` (its lines
    /// are written just after their records are durable, so a moment
    /// after the reply).
    fn report_with(&self, wanted: &[&str]) -> String {
        let dir = self.site.path("state");
        wait_until(PATIENCE, &format!("{wanted:?} in the report log"), || {
            let report = report_log(&dir);
            wanted.iter().all(|w| report.contains(w))
        });
        report_log(&dir)
    }

    fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.signal("TERM");
            assert_eq!(server.wait_exit(PATIENCE), Some(0), "clean stop");
        }
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "floatctl failed ({:?}): {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Asserts a refusal (exit 1) and returns what it said on stderr.
fn refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "expected a refusal: {stderr}");
    stderr
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn this_host() -> HostIds {
    HostIds::detect()
}

#[test]
fn a_roam_is_counted_checked_offline_survives_restarts_and_ends_by_itself() {
    // A 15-second roam day: a one-day roam ends 15 to 30 s after it began.
    let mut r = Roaming::start(FEATURES, &["--roam-day", "15s"]);
    let said = ok(&r.ctl(&["roam", "cad", "--days", "1"]));
    assert!(said.contains("token kept in"), "{said}");
    let store = RoamStore::open(&r.store);
    let kept = store.find(Some("cad")).unwrap();
    assert_eq!(kept.len(), 1);
    let token = kept[0].token().clone();
    assert!(said.contains(&kept[0].path.display().to_string()), "{said}");
    assert_eq!(token.count, 1);
    assert!(token.until > unix_now() + 10, "the day is 15 s long");

    // Counted while roamed: two seats left of three.
    assert_eq!(in_use(&r.addr(), "cad"), 1);
    assert_eq!(feature_sum(&r.addr(), "cad", "roaming"), 1);
    ok(&r.ctl_as("bob", &["checkout", "cad", "--count", "2"]));
    let denied = refused(&r.ctl_as("cy", &["checkout", "cad"]));
    assert!(denied.contains("NO_SEATS"), "{denied}");

    // A crash and a restart keep it: it is in the journal like any seat.
    r.server.as_mut().unwrap().kill9();
    r.restart();
    assert_eq!(feature_sum(&r.addr(), "cad", "roaming"), 1);

    // Both servers down (this is a lone one): the token alone lets the
    // application run, on this machine, in a new client process.
    r.stop();
    let said = ok(&r.ctl_offline(&["roam", "--check", "cad", "--version", "2"]));
    assert!(said.contains("may run here"), "{said}");
    let now = unix_now();
    let v2 = Version::parse("2").unwrap();
    assert!(store.check("cad", &v2, 1, &this_host(), now).is_ok());
    let elsewhere = HostIds::from_ids([HostId::parse("machine:fedcba9876543210").unwrap()]);
    assert!(store.check("cad", &v2, 1, &elsewhere, now).is_err());
    assert!(store
        .check("cad", &v2, 1, &this_host(), token.until)
        .is_err());
    assert!(store.check("cad", &v2, 2, &this_host(), now).is_err());
    // A token whose bytes were changed is refused, and the original is not.
    let path = &kept[0].path;
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.len() / 2;
    let flipped = if text.as_bytes()[at] == b'A' {
        "B"
    } else {
        "A"
    };
    let mut changed = text.clone();
    changed.replace_range(at..at + 1, flipped);
    std::fs::write(path, &changed).unwrap();
    refused(&r.ctl_offline(&["roam", "--check", "cad"]));
    std::fs::write(path, &text).unwrap();
    ok(&r.ctl_offline(&["roam", "--check", "cad"]));

    // Back up, the roam ends by itself at its end: nobody returns it.
    r.restart();
    wait_until(
        Duration::from_secs(token.until.saturating_sub(unix_now())) + PATIENCE,
        "the roam to end",
        || feature_sum(&r.addr(), "cad", "roaming") == 0,
    );
    assert_eq!(in_use(&r.addr(), "cad"), 2, "bob's seats stay");
    r.report_with(&[" roam feature=cad ", "reason=roam_end"]);
    let why = refused(&r.ctl_offline(&["roam", "--check", "cad"]));
    assert!(why.contains("ended"), "{why}");
}

#[test]
fn a_roam_that_ends_while_the_server_is_down_returns_at_its_start() {
    let mut r = Roaming::start(FEATURES, &["--roam-day", "2s"]);
    ok(&r.ctl(&["roam", "cad", "--days", "1"]));
    let until = RoamStore::open(&r.store).tokens().unwrap()[0].token().until;
    r.stop();
    wait_until(PATIENCE, "the roam's end to pass", || unix_now() >= until);
    r.restart();
    wait_until(PATIENCE, "the roam to come back", || {
        in_use(&r.addr(), "cad") == 0
    });
    r.report_with(&["reason=roam_end"]);
}

#[test]
fn every_limit_refuses_with_its_own_code() {
    let r = Roaming::with_options(
        FEATURES,
        &[],
        Some(
            "EXCLUDE_ROAM cad user eve\n\
             ROAM_MAX_DAYS 4 cad\n\
             ROAM_MAX_COUNT 2 cad\n",
        ),
    );
    for (user, args, code) in [
        (
            "ann",
            &["roam", "viewer", "--days", "1"][..],
            "NOT_ROAMABLE",
        ),
        ("ann", &["roam", "cad", "--days", "6"][..], "ROAM_TOO_LONG"),
        ("ann", &["roam", "cad", "--days", "5"][..], "ROAM_TOO_LONG"),
        ("eve", &["roam", "cad", "--days", "1"][..], "ROAM_EXCLUDED"),
        (
            "ann",
            &["roam", "cad", "--days", "1", "--count", "3"][..],
            "TOO_MANY_ROAMING",
        ),
        (
            "ann",
            &["roam", "nothing", "--days", "1"][..],
            "NO_SUCH_FEATURE",
        ),
    ] {
        let why = refused(&r.ctl_as(user, args));
        assert!(why.contains(code), "{user} {args:?}: {why}");
    }
    ok(&r.ctl(&["roam", "cad", "--days", "4", "--count", "2"]));
    let why = refused(&r.ctl_as("bob", &["roam", "cad", "--days", "1"]));
    assert!(why.contains("TOO_MANY_ROAMING"), "{why}");
    assert!(why.contains("floatd.opt:3"), "cites the rule: {why}");
    // The last seat still serves checkouts.
    ok(&r.ctl_as("bob", &["checkout", "cad"]));
    assert_eq!(in_use(&r.addr(), "cad"), 3);
    r.report_with(&[
        "code=NOT_ROAMABLE",
        "code=ROAM_TOO_LONG",
        "code=ROAM_EXCLUDED",
        "code=TOO_MANY_ROAMING",
    ]);
}

#[test]
fn early_return_frees_the_seats_at_once_and_extension_moves_the_end() {
    let r = Roaming::start(FEATURES, &[]);
    ok(&r.ctl(&["roam", "cad", "--days", "1", "--count", "2"]));
    let store = RoamStore::open(&r.store);
    let first = store.tokens().unwrap()[0].token().clone();
    assert_eq!(in_use(&r.addr(), "cad"), 2);

    let said = ok(&r.ctl(&["roam", "--extend", "cad", "--days", "5"]));
    assert!(said.contains("extended 2 seat(s) of cad"), "{said}");
    let longer = store.tokens().unwrap()[0].token().clone();
    assert_eq!(longer.id, first.id);
    assert_eq!(longer.until, first.until + 4 * 86_400);
    let holders = &status_json(&r.addr())["features"][0]["holders"];
    let shown = holders[0]["roam"]["until"].as_str().unwrap().to_string();
    assert!(shown.ends_with("T00:00:00Z"), "a UTC midnight: {shown}");
    let why = refused(&r.ctl(&["roam", "--extend", "cad", "--days", "6"]));
    assert!(why.contains("ROAM_TOO_LONG"), "{why}");

    let said = ok(&r.ctl(&["roam", "--return", "cad"]));
    assert!(said.contains("returned 2 seat(s) of cad"), "{said}");
    assert_eq!(in_use(&r.addr(), "cad"), 0);
    assert!(store.tokens().unwrap().is_empty(), "the token is forgotten");
    r.report_with(&["reason=roam_return", " roam_extend feature=cad "]);
    let why = refused(&r.ctl(&["roam", "--return", "cad"]));
    assert!(why.contains("no roam token"), "{why}");
}

#[test]
fn roams_show_in_status_metrics_and_the_report_log() {
    let r = Roaming::start(FEATURES, &["--http", "127.0.0.1:0"]);
    ok(&r.ctl(&["roam", "cad", "--days", "3"]));
    let token = RoamStore::open(&r.store).tokens().unwrap()[0]
        .token()
        .clone();
    let status = status_json(&r.addr());
    let cad = &status["features"][0];
    assert_eq!(
        (cad["in_use"].as_u64(), cad["roaming"].as_u64()),
        (Some(1), Some(1))
    );
    let roam = &cad["holders"][0]["roam"];
    assert_eq!(roam["hostid"].as_str(), Some(token.hostid.as_str()));
    assert_eq!(cad["holders"][0]["user"].as_str(), Some("ann"));
    let text = String::from_utf8_lossy(&r.ctl(&["status"]).stdout).to_string();
    assert!(
        text.contains(&format!("roaming to {}", token.hostid)),
        "{text}"
    );

    let http = r.server.as_ref().unwrap().http_addr.clone().unwrap();
    let metrics = http_get(&http, "/metrics");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("floatd_seats_roaming{") && l.contains("feature=\"cad\""))
        .unwrap_or_else(|| panic!("no roaming gauge:\n{metrics}"));
    assert!(line.ends_with(" 1"), "{line}");

    let report = r.report_with(&[" roam "]);
    let roam_line = report
        .lines()
        .find(|l| l.contains(" roam "))
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(field(roam_line, "hostid"), Some(token.hostid.clone()));
    assert_eq!(field(roam_line, "days").as_deref(), Some("3"));
    assert_eq!(field(roam_line, "user").as_deref(), Some("ann"));
}

#[test]
fn a_token_signed_by_another_key_than_the_pinned_one_is_handed_back() {
    // Two servers that both call themselves `any+any` but hold different
    // roam keys: the second looks like a forger to the store.
    let a = Roaming::start(FEATURES, &[]);
    ok(&a.ctl(&["roam", "cad", "--days", "1"]));
    let mut b = Roaming::start(FEATURES, &[]);
    b.store = a.store.clone();
    let why = refused(&b.ctl(&["roam", "cad", "--days", "1"]));
    assert!(why.contains("pinned"), "{why}");
    assert_eq!(in_use(&b.addr(), "cad"), 0, "the roam was handed back");
    assert_eq!(RoamStore::open(&a.store).tokens().unwrap().len(), 1);
    b.report_with(&["reason=roam_return"]);
}

/// GET `path` over HTTP/1.1 and return the body.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out)
}
