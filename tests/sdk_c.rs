//! The C SDK through real servers: the vendor's example (examples/c),
//! built with its Makefile and the pkg-config file, held through a
//! failover and run under valgrind; the rest of the C API (codes,
//! re-entrant calls, threads, freeing a client that holds seats) through
//! sdk/tests/api_test.c.

mod common;

use common::sdk::{compile, repo, run_ok, sdk_dir, valgrind, Program, VALGRIND_ARGS};
use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const LICENCE: &str = "FEATURE cad version=1.0 count=1 expires=permanent\n\
                       FEATURE solver version=1.0 count=3 expires=permanent";

/// Builds the example with its own Makefile (once per test run).
fn example(target: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        run_ok(
            Command::new("make")
                .arg("--always-make")
                .arg("-C")
                .arg(repo().join("examples/c"))
                .arg(format!("SDK_DIR={}", sdk_dir().display()))
                .args(["checkout", "checkout-static"]),
            "make -C examples/c",
        );
    });
    repo().join("examples/c").join(target)
}

fn api_test() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = repo().join("target/sdk-test/api_test");
            let flags = [
                "-std=c99",
                "-pedantic",
                "-D_POSIX_C_SOURCE=200809L",
                "-pthread",
            ];
            compile("cc", &flags, &[repo().join("sdk/tests/api_test.c")], &out);
            out
        })
        .clone()
}

/// The example working against `servers` until stopped (or `seconds`).
fn run_example(
    binary: &str,
    servers: &str,
    seconds: Option<&str>,
    under_valgrind: bool,
) -> Program {
    let example = example(binary);
    let mut command = match valgrind().filter(|_| under_valgrind) {
        Some(v) => {
            let mut c = Command::new(v);
            c.args(VALGRIND_ARGS).arg(&example);
            c
        }
        None => Command::new(&example),
    };
    command.arg("cad").arg("1.0");
    if let Some(s) = seconds {
        command.arg(s);
    }
    command.env("FLOATD_SERVERS", servers);
    Program::start(command)
}

fn run_api_test(args: &[&str], under_valgrind: bool) -> Program {
    let mut command = match valgrind().filter(|_| under_valgrind) {
        Some(v) => {
            let mut c = Command::new(v);
            c.args(VALGRIND_ARGS).arg(api_test());
            c
        }
        None => Command::new(api_test()),
    };
    command.args(args);
    Program::start(command)
}

#[test]
fn the_example_holds_its_seat_through_a_failover_and_checks_it_in() {
    let mut pair = Pair::start(LICENCE, &[FAST, &["--lease", "3s"]].concat());
    let backup = pair.backup_addr();
    let mut app = run_example("checkout", &pair.servers(), None, false);
    app.wait_line("checked out cad (licence version 1.0, expires permanent");
    assert_eq!(in_use(&pair.primary_addr(), "cad"), 1);

    pair.primary.as_mut().unwrap().kill9();
    let reconnecting = app.wait_line("licence event reconnecting");
    assert!(
        reconnecting.contains(&pair.primary_addr()),
        "{reconnecting}"
    );
    let failed_over = app.wait_line("licence event failed_over");
    assert!(failed_over.contains(&backup), "{failed_over}");
    let recovered = app.wait_line("licence event recovered");
    assert!(recovered.contains(&backup), "{recovered}");
    assert_eq!(in_use(&backup, "cad"), 1, "one seat, not two");
    assert!(
        !app.seen.iter().any(|l| l.contains("seat is lost")),
        "{:#?}",
        app.seen
    );

    app.signal("TERM");
    assert_eq!(app.finish(PATIENCE), Some(0), "{:#?}", app.seen);
    assert!(
        app.seen.iter().any(|l| l == "checked in: success"),
        "{:#?}",
        app.seen
    );
    assert_eq!(in_use(&backup, "cad"), 0);
}

#[test]
fn the_example_runs_clean_under_valgrind() {
    let (_site, server) = serve(LICENCE, &[]);
    let mut app = run_example("checkout", &server.addr, Some("1"), true);
    app.wait_line("checked out cad");
    assert_eq!(
        app.finish(PATIENCE * 4),
        Some(0),
        "valgrind: {:#?}",
        app.seen
    );
    assert!(app.seen.iter().any(|l| l == "checked in: success"));
    assert_eq!(in_use(&server.addr, "cad"), 0);
}

#[test]
fn the_example_links_statically_and_says_why_it_got_no_seat() {
    let (_site, server) = serve(LICENCE, &[]);
    let mut holder = LineClient::hello(&server.addr, "other", "elsewhere");
    holder.checkout("cad").expect("the only cad seat");
    let mut app = run_example("checkout-static", &server.addr, Some("0.2"), false);
    assert_eq!(app.finish(PATIENCE), Some(1), "{:#?}", app.seen);
    let nobody = run_example("checkout-static", &refused(), Some("0.2"), false).finish(PATIENCE);
    assert_eq!(nobody, Some(1));
}

/// A loopback address nobody listens on.
fn refused() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn result_codes_nulls_options_and_cancel() {
    let (_site, server) = serve(LICENCE, &[]);
    let mut t = run_api_test(&["codes", &server.addr], true);
    t.wait_line("codes: ok");
    assert_eq!(t.finish(PATIENCE * 4), Some(0), "{:#?}", t.seen);
}

#[test]
fn blocking_calls_from_the_callback_fail_instead_of_deadlocking() {
    let (_site, server) = serve(LICENCE, &["--lease", "2s"]);
    let mut t = run_api_test(&["reentry", &server.addr], false);
    t.wait_line("expired here");
    wait_until(PATIENCE, "the server to expire the seat", || {
        in_use(&server.addr, "solver") == 0
    });
    t.send("go");
    t.wait_line("reentry: ok");
    assert_eq!(t.finish(PATIENCE), Some(0), "{:#?}", t.seen);
}

#[test]
fn threads_sharing_a_client_never_hold_more_than_the_count() {
    let (_site, server) = serve(LICENCE, &[]);
    let mut t = run_api_test(&["threads", &server.addr, "8", "40", "3"], false);
    let summary = t.wait_line("threads: granted");
    t.wait_line("threads: ok");
    assert_eq!(t.finish(PATIENCE), Some(0), "{summary}");
    assert_eq!(in_use(&server.addr, "solver"), 0);
}

#[test]
fn freeing_a_client_returns_its_seats() {
    let (_site, server) = serve(LICENCE, &[]);
    let mut t = run_api_test(&["free-held", &server.addr], true);
    t.wait_line("holding 3");
    assert_eq!(in_use(&server.addr, "solver"), 3);
    t.send("go");
    t.wait_line("free-held: freed");
    assert_eq!(in_use(&server.addr, "solver"), 0);
    t.send("go");
    t.wait_line("free-held: ok");
    assert_eq!(t.finish(PATIENCE * 4), Some(0), "{:#?}", t.seen);
}

#[test]
fn roaming_through_the_c_api() {
    let (site, server) = serve(
        "FEATURE cad version=1.0 count=1 expires=permanent\n\
         FEATURE solver version=1.0 count=3 expires=permanent roam=5",
        &[],
    );
    let store = site.path("roams").display().to_string();
    let mut t = run_api_test(&["roam", &server.addr, &store], true);
    t.wait_line("roam: roaming");
    assert_eq!(feature_sum(&server.addr, "solver", "roaming"), 2);
    t.send("go");
    t.wait_line("roam: returned");
    assert_eq!(in_use(&server.addr, "solver"), 0);
    t.send("go");
    t.wait_line("roam: ok");
    assert_eq!(t.finish(PATIENCE * 4), Some(0), "{:#?}", t.seen);
}

#[test]
fn the_header_compiles_as_cxx() {
    let dir = repo().join("target/sdk-test");
    let source = dir.join("header_check.cc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        &source,
        "#include <floatd_client.h>\n\
         int main() { floatd_client *c = nullptr;\n\
         return floatd_client_new(\"a:1\", \"colour=blue\", &c) == FLOATD_E_BAD_ARGUMENT ? 0 : 1; }\n",
    )
    .unwrap();
    let out = dir.join("header_check");
    compile("c++", &["-std=c++11"], &[source], &out);
    assert!(Command::new(&out).status().unwrap().success());
}

#[test]
fn the_library_exports_the_api_and_nothing_else() {
    let out = run_ok(
        Command::new("nm")
            .args(["-D", "--defined-only"])
            .arg(sdk_dir().join("libfloatd_client.so")),
        "nm -D (binutils)",
    );
    let exported: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|name| !name.starts_with('_'))
        .map(str::to_string)
        .collect();
    let header = std::fs::read_to_string(repo().join("sdk/floatd_client.h")).unwrap();
    let declared: Vec<&str> = header
        .lines()
        .filter(|l| !l.starts_with("//") && l.contains("floatd_") && l.contains('('))
        .filter_map(|l| l.split('(').next()?.split_whitespace().last())
        .map(|name| name.trim_start_matches('*'))
        .filter(|name| name.starts_with("floatd_"))
        .collect();
    assert!(declared.len() >= 20, "{declared:?}");
    let mut exported_sorted = exported.clone();
    exported_sorted.sort();
    let mut declared_sorted: Vec<String> = declared.iter().map(|s| s.to_string()).collect();
    declared_sorted.sort();
    assert_eq!(exported_sorted, declared_sorted);
}
