//! Issue 4: the options file through real checkouts (docs/OPTIONS.md).

mod common;

use common::*;

const FEATURES: &str = "\
FEATURE cad version=1.0 count=10 expires=permanent
FEATURE viewer version=1.0 count=10 expires=permanent
FEATURE plotter version=1.0 count=10 expires=permanent
FEATURE solver version=1.0 count=2 expires=permanent";

/// Checks out one seat of `feature` as `user` on `host`: the handle, or
/// the error's code and `rule=`.
fn try_checkout(
    addr: &str,
    user: &str,
    host: &str,
    feature: &str,
) -> Result<String, (String, String)> {
    let mut c = LineClient::hello(addr, user, host);
    c.checkout(feature).map_err(|line| {
        let code = line.split_whitespace().nth(1).unwrap_or("").to_string();
        (code, field(&line, "rule").unwrap_or_default())
    })
}

fn granted(addr: &str, user: &str, host: &str, feature: &str) -> String {
    try_checkout(addr, user, host, feature)
        .unwrap_or_else(|e| panic!("{user}@{host} {feature}: denied {e:?}"))
}

fn denied(addr: &str, user: &str, host: &str, feature: &str) -> (String, String) {
    match try_checkout(addr, user, host, feature) {
        Ok(h) => panic!("{user}@{host} {feature}: granted {h}"),
        Err(e) => e,
    }
}

fn d(code: &str, rule: &str) -> (String, String) {
    (code.to_string(), rule.to_string())
}

#[test]
fn every_rule_allows_and_denies_as_written_from_floatd_opt_beside_the_licence() {
    let site = Site::new(FEATURES);
    // Found by its default name beside the licence file.
    std::fs::write(
        site.path("floatd.opt"),
        "# test policy\n\
         GROUP eng alice bob\n\
         HOST_GROUP lab ws1 ws2\n\
         EXCLUDE cad user mallory\n\
         exclude cad HOST_GROUP lab\n\
         INCLUDE viewer group eng\n\
         INCLUDE viewer host kiosk\n\
         MAX 1 plotter user carol\n\
         MAX 2 plotter group eng\n\
         RESERVE 1 solver group eng\n\
         Max 1 cad host ws9\n\
         EXCLUDE cad group temps   # a group defined further down\n\
         GROUP temps tim\n\
         EXCLUDE viewer user bob\n",
    )
    .unwrap();
    let server = Floatd::start(&site.server_args("state"), &site.path("floatd.log"));
    let a = server.addr.as_str();
    assert!(
        server.log_text().contains("floatd.opt: 10 rule(s)"),
        "{}",
        server.log_text()
    );

    // EXCLUDE: by user, by host group, by group; others pass.
    assert_eq!(
        denied(a, "mallory", "h1", "cad"),
        d("EXCLUDED", "floatd.opt:4")
    );
    assert_eq!(
        denied(a, "dave", "ws2", "cad"),
        d("EXCLUDED", "floatd.opt:5")
    );
    assert_eq!(
        denied(a, "tim", "h1", "cad"),
        d("EXCLUDED", "floatd.opt:12")
    );
    granted(a, "dave", "h1", "cad");
    granted(a, "mallory", "h1", "plotter");

    // MAX on a host: every user on it counts.
    granted(a, "erin", "ws9", "cad");
    assert_eq!(
        denied(a, "frank", "ws9", "cad"),
        d("MAX_REACHED", "floatd.opt:11")
    );

    // INCLUDE: a group member and a listed host pass; nobody else does;
    // EXCLUDE beats INCLUDE.
    granted(a, "alice", "h1", "viewer");
    granted(a, "zed", "kiosk", "viewer");
    assert_eq!(
        denied(a, "eve", "h1", "viewer"),
        d("NOT_INCLUDED", "floatd.opt:6")
    );
    assert_eq!(
        denied(a, "bob", "h1", "viewer"),
        d("EXCLUDED", "floatd.opt:14")
    );

    // MAX on a user, and on a group counted together.
    granted(a, "carol", "h1", "plotter");
    assert_eq!(
        denied(a, "carol", "h2", "plotter"),
        d("MAX_REACHED", "floatd.opt:8")
    );
    granted(a, "alice", "h1", "plotter");
    granted(a, "bob", "h2", "plotter");
    assert_eq!(
        denied(a, "bob", "h1", "plotter"),
        d("MAX_REACHED", "floatd.opt:9")
    );
    assert_eq!(
        denied(a, "alice", "h3", "plotter"),
        d("MAX_REACHED", "floatd.opt:9")
    );
    for _ in 0..3 {
        granted(a, "dave", "h1", "plotter");
    }

    // RESERVE: of 2 solver seats, 1 is kept for eng.
    granted(a, "dave", "h1", "solver");
    assert_eq!(
        denied(a, "erin", "h1", "solver"),
        d("RESERVED", "floatd.opt:10")
    );
    // erin waits for the last seat; eng's reservation still gives it to alice.
    let mut erin = LineClient::hello(a, "erin", "h1");
    let queued = erin.ask("CHECKOUT solver wait=yes");
    assert!(queued.starts_with("QUEUED "), "{queued}");
    granted(a, "alice", "h1", "solver");
    assert_eq!(denied(a, "bob", "h1", "solver"), d("NO_SEATS", ""));
    drop(erin);

    // Denials are on record with their rule.
    let report = std::fs::read_to_string(site.path("state").join("report.log")).unwrap();
    let excluded = report
        .lines()
        .find(|l| l.contains(" denied ") && l.contains("user=mallory"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        excluded.contains("code=EXCLUDED rule=floatd.opt:4"),
        "{excluded}"
    );
}

#[test]
fn a_bad_options_file_stops_the_start_naming_file_line_and_column() {
    let site = Site::new(FEATURES);
    let opt = site.path("site.opt");
    std::fs::write(&opt, "GROUP eng alice\nMAX 2 cad grp eng\n").unwrap();
    let mut args = site.server_args("state");
    args.extend(["--options".to_string(), opt.display().to_string()]);
    let (code, stderr) = Floatd::start_failing(&args, &site.path("floatd.log"));
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2:11: expected user, host, group or host_group",
            opt.display()
        )),
        "{stderr}"
    );

    // A named options file that does not exist is an error too.
    std::fs::remove_file(&opt).unwrap();
    let (code, stderr) = Floatd::start_failing(&args, &site.path("floatd.log"));
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains(&opt.display().to_string()), "{stderr}");
}

#[test]
fn reread_keeps_the_old_options_when_the_new_file_is_bad_and_applies_good_ones_to_new_checkouts() {
    let site = Site::new(FEATURES);
    let opt = site.path("policy.opt");
    std::fs::write(&opt, "EXCLUDE cad user bob\n").unwrap();
    let mut args = site.server_args("state");
    args.extend(["--options".to_string(), opt.display().to_string()]);
    let server = Floatd::start(&args, &site.path("floatd.log"));
    let a = server.addr.as_str();
    assert_eq!(denied(a, "bob", "h1", "cad"), d("EXCLUDED", "policy.opt:1"));
    let amy: Vec<String> = (0..2).map(|_| granted(a, "amy", "h1", "cad")).collect();

    // A syntax error: `floatctl reread` fails and says where; the old
    // rules stay in force (bob is still excluded, amy has no MAX).
    std::fs::write(&opt, "# bob may now\nMAX two cad user amy\n").unwrap();
    let out = floatctl(&["reread", "--server", a]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2:5: expected a number of seats",
            opt.display()
        )),
        "{stderr}"
    );
    assert_eq!(denied(a, "bob", "h1", "cad"), d("EXCLUDED", "policy.opt:1"));
    granted(a, "amy", "h1", "cad");

    // The same through SIGHUP: the log says why.
    let failures = |s: &Floatd| s.log_text().matches("reread failed").count();
    assert_eq!(
        failures(&server),
        1,
        "the REREAD request's failure is logged"
    );
    server.signal("HUP");
    wait_until(PATIENCE, "the SIGHUP reread to fail", || {
        failures(&server) == 2
    });
    assert!(
        server
            .log_text()
            .contains(&format!("{}:2:5", opt.display())),
        "{}",
        server.log_text()
    );
    assert_eq!(denied(a, "bob", "h1", "cad"), d("EXCLUDED", "policy.opt:1"));

    // A good file: applied to new checkouts; the seats out stay out.
    std::fs::write(&opt, "# bob may now\nMAX 1 cad user amy\n").unwrap();
    let out = floatctl(&["reread", "--server", a]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("serving 4 pool(s)") && stdout.contains("policy.opt"),
        "{stdout}"
    );
    let held = status_json(a)["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "cad")
        .flat_map(|f| f["holders"].as_array().unwrap().clone())
        .filter(|h| h["user"] == "amy")
        .count();
    assert_eq!(held, 3, "amy keeps the seats she had before the reread");
    for h in &amy {
        let mut c = LineClient::hello(a, "amy", "h1");
        assert!(c.ask(&format!("HEARTBEAT {h}")).starts_with("OK"));
    }
    assert_eq!(
        denied(a, "amy", "h1", "cad"),
        d("MAX_REACHED", "policy.opt:2")
    );
    granted(a, "bob", "h1", "cad");
}

#[test]
fn floatctl_user_and_host_go_through_the_rules_too() {
    let site = Site::new(FEATURES);
    std::fs::write(
        site.path("floatd.opt"),
        "HOST_GROUP lab ws1\nINCLUDE cad host_group lab\n",
    )
    .unwrap();
    let server = Floatd::start(&site.server_args("state"), &site.path("floatd.log"));
    let ok = floatctl(&[
        "checkout",
        "cad",
        "--server",
        &server.addr,
        "--user",
        "u",
        "--host",
        "ws1",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let no = floatctl(&[
        "checkout",
        "cad",
        "--server",
        &server.addr,
        "--user",
        "u",
        "--host",
        "ws2",
    ]);
    let stderr = String::from_utf8_lossy(&no.stderr);
    assert_eq!(no.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("NOT_INCLUDED") && stderr.contains("floatd.opt:2"),
        "{stderr}"
    );
}
