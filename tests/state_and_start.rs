//! The state directory is private (0700, files 0600), checked and fixed
//! at start; start-up failures say what to do ("address already in use"
//! names the port) and a failed `--demo` leaves no temporary directory.
#![cfg(not(feature = "embedded-keys-only"))]

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FEATURES: &str = "FEATURE cad version=1.0 count=10 expires=permanent";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file floatd keeps in a state directory, after a checkout and a
/// clean stop.
const STATE_FILES: &[&str] = &["journal", "snapshot", "report.log", "lock", "handle.key"];

#[test]
fn state_files_are_private_and_an_open_directory_is_closed_at_start() {
    let site = Site::new(FEATURES);
    let args = site.server_args("state");
    let state = site.path("state");
    let mut server = Floatd::start(&args, &site.path("floatd-1.log"));
    let mut c = LineClient::hello(&server.addr, "alice", "ws1");
    c.checkout("cad").unwrap();
    server.signal("TERM");
    assert_eq!(server.wait_exit(PATIENCE), Some(0));
    assert_eq!(mode(&state), 0o700, "state directory");
    for f in STATE_FILES {
        assert_eq!(mode(&state.join(f)), 0o600, "{f}");
    }

    // Opened up by hand (or by an older floatd): closed again at start.
    chmod(&state, 0o755);
    for f in STATE_FILES {
        chmod(&state.join(f), 0o644);
    }
    let server = Floatd::start(&args, &site.path("floatd-2.log"));
    assert_eq!(mode(&state), 0o700);
    for f in STATE_FILES {
        assert_eq!(mode(&state.join(f)), 0o600, "{f}");
    }
    let log = server.log_text();
    assert!(
        log.contains("was mode 755, open to other users; changed to 700"),
        "{log}"
    );
    assert!(
        log.contains("journal was mode 644, open to other users; changed to 600"),
        "{log}"
    );
    // The seat came back from the journal.
    assert_eq!(used(&LineClient::connect(&server.addr).status(), "cad"), 1);
}

#[test]
fn a_shared_state_directory_is_refused() {
    let site = Site::new(FEATURES);
    let shared = site.path("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let mut args = site.server_args("state");
    let at = args.iter().position(|a| a == "--state-dir").unwrap();
    args[at + 1] = shared.display().to_string();
    let (code, stderr) = Floatd::start_failing(&args, &site.path("floatd.log"));
    assert_ne!(code, 0);
    assert!(stderr.contains("is shared (mode 1777, sticky"), "{stderr}");
    assert_eq!(mode(&shared), 0o1777, "left as it was");
}

#[test]
fn address_in_use_names_the_port_and_what_to_do() {
    let site = Site::new(FEATURES);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut args = site.server_args("state");
    let at = args.iter().position(|a| a == "--port").unwrap();
    args[at + 1] = port.clone();
    let (code, stderr) = Floatd::start_failing(&args, &site.path("floatd.log"));
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!("port {port} is already in use")),
        "{stderr}"
    );
    assert!(stderr.contains("another floatd may be running"), "{stderr}");
    assert!(stderr.contains("--port"), "{stderr}");

    // The status page's port too.
    let mut args = site.server_args("state");
    args.extend(["--http".into(), format!("127.0.0.1:{port}")]);
    let (code, stderr) = Floatd::start_failing(&args, &site.path("floatd-http.log"));
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!("port {port} is already in use")) && stderr.contains("--http"),
        "{stderr}"
    );
}

#[test]
fn a_failed_demo_start_removes_its_temporary_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(FLOATD)
        .args(["--demo", "--bind", "127.0.0.1", "--port", &port])
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("port {port} is already in use")),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // A demo that ran and stopped cleans up too.
    drop(taken);
    let mut demo = Command::new(FLOATD)
        .args(["--demo", "--bind", "127.0.0.1", "--port", "0"])
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(demo.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("floatd listening on"), "{first}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    let _ = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + PATIENCE;
    while demo.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the demo did not stop"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
