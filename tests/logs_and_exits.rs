//! How floatd talks to its supervisor, through the real binary: log lines
//! carry sd-daemon priorities when stderr is the journal and a time
//! otherwise, each message once; configuration errors exit 78 (the units
//! do not restart on it); the witness survives SIGHUP and stops cleanly on
//! SIGTERM; `--version` on every binary.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A licence line that ends in 5 days (warned about at start).
fn soon() -> String {
    let (y, m, d) = floatd::civil::Date::today().add_days(5).ymd();
    format!("FEATURE cad version=1.0 count=2 expires={y:04}-{m:02}-{d:02}")
}

#[test]
fn under_journald_lines_carry_priorities_and_each_message_comes_once() {
    let site = Site::new(&soon());
    let args = site.server_args("state");
    let log = site.path("journal.log");
    // The log file plays the journal stream: JOURNAL_STREAM names it.
    std::fs::write(&log, "").unwrap();
    let meta = std::fs::metadata(&log).unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let mut command = Command::new(FLOATD);
    command
        .args(&args)
        .env("JOURNAL_STREAM", &stream)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap());
    let mut child = command.spawn().unwrap();
    wait_until(PATIENCE, "the server to say it serves", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("serving on")
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&log).unwrap();
    for line in text.lines() {
        assert!(
            line.starts_with("<6>[INFO ")
                || line.starts_with("<4>[WARN ")
                || line.starts_with("<3>[ERROR "),
            "every line starts with its priority: {line:?}\n{text}"
        );
    }
    let expiring: Vec<&str> = text.lines().filter(|l| l.contains("expires on")).collect();
    assert_eq!(expiring.len(), 1, "the licence warning once:\n{text}");
    assert!(expiring[0].starts_with("<4>"), "{text}");
    assert!(
        !text.contains(" expires in "),
        "no second warning for the same licence:\n{text}"
    );
}

#[test]
fn elsewhere_lines_start_with_the_time_and_a_fatal_error_is_said_once() {
    let site = Site::new("FEATURE cad version=1.0 count=2 expires=permanent");
    let args = site.server_args("state");
    let first = Floatd::start(&args, &site.path("first.log"));
    let text = first.log_text();
    let line = text.lines().next().expect("a log line");
    let stamp = line.split(' ').next().unwrap();
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
        "a UTC time first: {line:?}"
    );
    // A second server on the same state directory: exit 1 (not a
    // configuration error), the reason said exactly once.
    let (code, stderr) = Floatd::start_failing(&args, &site.path("second.log"));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.matches("in use by another floatd").count(),
        1,
        "{stderr}"
    );
    drop(first);
}

#[test]
fn configuration_errors_exit_78() {
    let site = Site::new("FEATURE cad version=1.0 count=2 expires=permanent");
    let mut no_licence = site.server_args("state");
    let at = no_licence.iter().position(|a| a == "--license").unwrap();
    no_licence[at + 1] = site.path("nowhere").display().to_string();
    let mut bad_options = site.server_args("state");
    std::fs::write(site.path("bad.opt"), "FROB cad\n").unwrap();
    bad_options.extend([
        "--options".into(),
        site.path("bad.opt").display().to_string(),
    ]);
    let mut bad_flag = site.server_args("state");
    bad_flag.push("--frobnicate".into());
    let witness_without_listen: Vec<String> = ["--role", "witness"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (what, args) in [
        ("no licence", no_licence),
        ("bad options file", bad_options),
        ("unknown flag", bad_flag),
        ("witness without --peer-listen", witness_without_listen),
    ] {
        let (code, stderr) = Floatd::start_failing(&args, &site.path("x.log"));
        assert_eq!(code, 78, "{what}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{what}: says why");
    }
}

#[test]
fn the_witness_survives_sighup_and_stops_cleanly_on_sigterm() {
    let mut pair = Pair::build("FEATURE cad version=1.0 count=2 expires=permanent", FAST);
    pair.start_witness();
    let witness = pair.witness.as_mut().unwrap();
    witness.signal("HUP");
    wait_until(PATIENCE, "the witness to log the SIGHUP", || {
        witness.log_text().contains("nothing") && witness.log_text().contains("SIGHUP")
    });
    assert!(
        std::net::TcpStream::connect(&witness.addr).is_ok(),
        "still listening after SIGHUP"
    );
    witness.signal("TERM");
    assert_eq!(
        witness.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        witness.log_text()
    );
    assert!(witness.log_text().contains("witness stopping"));
}

#[test]
fn every_binary_says_its_version() {
    let load = env!("CARGO_BIN_EXE_floatd-load");
    for bin in [FLOATD, FLOATCTL, load] {
        let out = Command::new(bin).arg("--version").output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{bin}");
        let text = String::from_utf8_lossy(&out.stdout);
        let name = std::path::Path::new(bin)
            .file_name()
            .unwrap()
            .to_string_lossy();
        assert!(
            text.starts_with(&format!("{name} {} (", env!("CARGO_PKG_VERSION")))
                && text.contains("protocol 1)"),
            "{text}"
        );
    }
    // Help for one command, never sent to a server (none runs here).
    for args in [
        &["checkin", "--help"][..],
        &["help", "remove"],
        &["status", "-h"],
    ] {
        let out = floatctl(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("usage: floatctl "), "{args:?}: {text}");
    }
}
