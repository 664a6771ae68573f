//! floatctl when servers do not answer, through the real binaries: it
//! fails at once when every listed server refused or has no address, says
//! which server it is still trying after 2 s, and SIGTERM stops it at once
//! (`checkout --hold` returns its seat first when a server is there).

mod common;

use common::*;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

/// Generous for a loaded machine; the old behaviour took 31 s.
const PROMPT: Duration = Duration::from_secs(10);

fn term(child: &std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

#[test]
fn refused_or_unresolvable_servers_fail_at_once() {
    let dead = dead_addr();
    for servers in [dead.clone(), format!("no-such-host.invalid:27000,{dead}")] {
        for command in [&["status"][..], &["checkout", "cad"]] {
            let started = Instant::now();
            let mut args = vec!["--server", servers.as_str()];
            args.extend_from_slice(command);
            let out = floatctl(&args);
            let took = started.elapsed();
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert!(took < PROMPT, "{args:?} took {took:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("no server reachable"), "{stderr}");
        }
    }
}

#[test]
fn a_server_that_does_not_answer_is_named_and_sigterm_stops_the_wait() {
    // Accepts connections (the kernel's backlog) but never greets.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("status.err");
    let mut waiting = Spawned::floatctl(&["--server", &addr, "status"], &err);
    wait_until(PATIENCE, "floatctl to say what it is trying", || {
        std::fs::read_to_string(&err)
            .unwrap_or_default()
            .contains(&format!("trying {addr}..."))
    });
    let signalled = Instant::now();
    term(&waiting.child);
    let code = waiting.wait_exit(PROMPT);
    assert!(
        code.is_some(),
        "still waiting {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert_ne!(code, Some(0));
}

#[test]
fn sigterm_ends_checkout_hold_at_once_returning_the_seat_if_it_can() {
    let site = Site::new("FEATURE cad version=1.0 count=2 expires=permanent");
    let mut server = Floatd::start(&site.server_args("state"), &site.path("floatd.log"));
    let addr = server.addr.clone();

    // A server to return the seat to: returned, exit 0.
    let mut holder = Spawned::floatctl(
        &["--server", &addr, "checkout", "cad", "--hold", "600"],
        &site.path("hold-1.err"),
    );
    holder.line(PATIENCE).expect("the handle");
    assert_eq!(in_use(&addr, "cad"), 1);
    term(&holder.child);
    assert_eq!(holder.wait_exit(PROMPT), Some(0), "exits at once");
    assert_eq!(in_use(&addr, "cad"), 0, "the seat was returned");

    // The server gone: exit at once, saying the seat was not returned.
    let mut holder = Spawned::floatctl(
        &["--server", &addr, "checkout", "cad", "--hold", "600"],
        &site.path("hold-2.err"),
    );
    holder.line(PATIENCE).expect("the handle");
    server.kill9();
    let signalled = Instant::now();
    term(&holder.child);
    let code = holder.wait_exit(PROMPT);
    assert!(
        code.is_some(),
        "still running {:?} after SIGTERM",
        signalled.elapsed()
    );
    assert_eq!(code, Some(2));
    let stderr = std::fs::read_to_string(site.path("hold-2.err")).unwrap();
    assert!(stderr.contains("not returned"), "{stderr}");
}
