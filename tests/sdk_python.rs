//! The Python package (sdk/python) through real servers: held through a
//! failover, exceptions for refusals, callbacks that re-enter, threads,
//! close returning seats; its own unit tests; and `pip install` from the
//! repository into a fresh virtual environment, with the library inside
//! the package.

mod common;

use common::sdk::{installed, repo, run_ok, sdk_dir, Program};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const LICENCE: &str = "FEATURE cad version=1.0 count=1 expires=permanent\n\
                       FEATURE solver version=1.0 count=3 expires=permanent";

/// `python3`, if installed (under CI it must be).
fn python() -> Option<&'static str> {
    installed("python3", "python3 python3-venv").then_some("python3")
}

fn library() -> PathBuf {
    sdk_dir().join("libfloatd_client.so")
}

/// The package from the source tree, against the test SDK's library.
fn in_tree(python: &str, args: &[&str]) -> Command {
    let mut command = Command::new(python);
    command
        .args(args)
        .current_dir(repo().join("sdk/python"))
        .env("PYTHONPATH", repo().join("sdk/python"))
        .env("FLOATD_CLIENT_LIBRARY", library())
        .env("PYTHONUNBUFFERED", "1");
    command
}

fn scenario(python: &str, args: &[&str]) -> Program {
    let mut all = vec!["tests/scenario.py"];
    all.extend_from_slice(args);
    Program::start(in_tree(python, &all))
}

#[test]
fn the_package_unit_tests_pass() {
    let Some(python) = python() else { return };
    let out = in_tree(
        python,
        &[
            "-m",
            "unittest",
            "discover",
            "-s",
            "tests",
            "-p",
            "test_*.py",
        ],
    )
    .output()
    .expect("run python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_seat_in_a_with_block_survives_a_failover() {
    let Some(python) = python() else { return };
    let mut pair = Pair::start(LICENCE, &[FAST, &["--lease", "3s"]].concat());
    let backup = pair.backup_addr();
    let mut app = scenario(python, &["failover", &pair.servers()]);
    app.wait_line("held cad 1.0 permanent held");
    pair.primary.as_mut().unwrap().kill9();
    app.wait_line(&format!("event reconnecting {}", pair.primary_addr()));
    app.wait_line(&format!("event failed_over {backup}"));
    app.wait_line(&format!("event recovered {backup} - seat=cad"));
    assert_eq!(in_use(&backup, "cad"), 1, "one seat, not two");
    app.send("stop");
    app.wait_line("state held");
    app.wait_line("checked in returned");
    assert_eq!(app.finish(PATIENCE), Some(0), "{:#?}", app.seen);
    assert_eq!(in_use(&backup, "cad"), 0);
}

#[test]
fn refusals_raise_their_exceptions() {
    let Some(python) = python() else { return };
    let (_site, server) = serve(LICENCE, &[]);
    let mut app = scenario(python, &["errors", &server.addr]);
    app.wait_line("errors: ok");
    assert_eq!(app.finish(PATIENCE), Some(0), "{:#?}", app.seen);
    assert_eq!(in_use(&server.addr, "cad"), 0);
}

#[test]
fn blocking_calls_from_the_callback_raise_would_block() {
    let Some(python) = python() else { return };
    let (_site, server) = serve(LICENCE, &["--lease", "2s"]);
    let mut app = scenario(python, &["reentry", &server.addr]);
    app.wait_line("expired here");
    wait_until(PATIENCE, "the server to expire the seat", || {
        in_use(&server.addr, "solver") == 0
    });
    app.send("go");
    app.wait_line("reentry: ok");
    assert_eq!(app.finish(PATIENCE), Some(0), "{:#?}", app.seen);
}

#[test]
fn roaming_from_python() {
    let Some(python) = python() else { return };
    let (site, server) = serve(
        "FEATURE cad version=1.0 count=1 expires=permanent\n\
         FEATURE solver version=1.0 count=3 expires=permanent roam=5",
        &[],
    );
    let store = site.path("roams").display().to_string();
    let mut app = scenario(python, &["roam", &server.addr, &store]);
    app.wait_line("roam: roaming");
    assert_eq!(feature_sum(&server.addr, "solver", "roaming"), 2);
    app.send("go");
    app.wait_line("roam: ok");
    assert_eq!(app.finish(PATIENCE), Some(0), "{:#?}", app.seen);
    assert_eq!(in_use(&server.addr, "solver"), 0);
}

#[test]
fn threads_sharing_a_client_keep_the_count() {
    let Some(python) = python() else { return };
    let (_site, server) = serve(LICENCE, &[]);
    let mut app = scenario(python, &["threads", &server.addr, "8", "30", "3"]);
    app.wait_line("threads: ok");
    assert_eq!(app.finish(PATIENCE), Some(0), "{:#?}", app.seen);
    assert_eq!(in_use(&server.addr, "solver"), 0);
}

#[test]
fn close_returns_the_seats_held() {
    let Some(python) = python() else { return };
    let (_site, server) = serve(LICENCE, &[]);
    let mut app = scenario(python, &["close-held", &server.addr]);
    app.wait_line("holding 3");
    assert_eq!(in_use(&server.addr, "solver"), 3);
    app.send("go");
    app.wait_line("close-held: closed");
    assert_eq!(in_use(&server.addr, "solver"), 0);
    app.send("go");
    app.wait_line("close-held: ok");
    assert_eq!(app.finish(PATIENCE), Some(0), "{:#?}", app.seen);
}

#[test]
fn pip_installs_the_package_with_the_library_inside() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    run_ok(
        Command::new(python).args(["-m", "venv"]).arg(&venv),
        "python3 -m venv (apt-get install python3-venv)",
    );
    let bin = |name: &str| venv.join("bin").join(name);
    // The library built for these tests, instead of a release build.
    run_ok(
        Command::new(bin("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(repo().join("sdk/python"))
            .env("FLOATD_CLIENT_LIB", library()),
        "pip install sdk/python",
    );
    let (_site, server) = serve(LICENCE, &[]);
    // Outside the source tree, with no hint where the library is.
    let mut app = Program::start({
        let mut c = Command::new(bin("python"));
        c.arg(repo().join("sdk/python/tests/scenario.py"))
            .args(["close-held", &server.addr])
            .current_dir(dir.path())
            .env_remove("PYTHONPATH")
            .env_remove("FLOATD_CLIENT_LIBRARY")
            .env("PYTHONUNBUFFERED", "1");
        c
    });
    app.wait_line("holding 3");
    app.send("go");
    app.wait_line("close-held: closed");
    app.send("go");
    let loaded = app.wait_line("library:");
    assert_eq!(app.finish(PATIENCE), Some(0), "{:#?}", app.seen);
    let loaded = Path::new(loaded.trim_start_matches("library: "));
    assert!(
        loaded.starts_with(&venv),
        "loaded {loaded:?}, not the installed copy"
    );
    assert_eq!(in_use(&server.addr, "solver"), 0);
}
