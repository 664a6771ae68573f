//! The dependency rules of docs/ARCHITECTURE.md, kept by reading the
//! sources: the failover code imports nothing from the server; the ledger
//! does no I/O; the decisions (the role machine, the serving gate) read no
//! clock and touch no socket, thread or channel; codecs touch no socket.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, tests of the module excluded (tests may
/// read the clock to build their inputs).
fn sources(dir: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)];
    while let Some(d) = stack.pop() {
        if d.is_file() {
            out.push(d);
            continue;
        }
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "tests" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Lines of `files` containing any of `forbidden`, outside `#[cfg(test)]`
/// modules at the end of a file.
fn offending(files: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or("");
            for bad in forbidden {
                if line.contains(bad) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    found
}

fn assert_none(what: &str, found: Vec<String>) {
    assert!(found.is_empty(), "{what}:\n{}", found.join("\n"));
}

#[test]
fn the_failover_code_imports_nothing_from_the_server() {
    assert_none(
        "src/failover uses src/server",
        offending(
            &sources("src/failover"),
            &["crate::server", "super::super::server"],
        ),
    );
}

#[test]
fn the_ledger_does_no_io() {
    let io = [
        "std::fs",
        "std::net",
        "std::thread",
        "std::process",
        "getrandom",
        "mio::",
        "crossbeam",
        "crate::server",
        "crate::failover",
        "crate::journal",
    ];
    assert_none(
        "src/ledger does I/O",
        offending(&sources("src/ledger"), &io),
    );
}

#[test]
fn the_decisions_read_no_clock_and_touch_no_socket_or_thread() {
    let mut files = sources("src/failover/role");
    files.extend(sources("src/server/gate.rs"));
    files.extend(sources("src/failover/awake.rs"));
    let impure = [
        "Instant::now",
        "SystemTime",
        "std::net",
        "std::thread",
        "crossbeam",
        "mio::",
        "std::fs",
    ];
    assert_none("a decision module is impure", offending(&files, &impure));
}

#[test]
fn codecs_touch_no_socket() {
    assert_none(
        "src/protocol touches sockets",
        offending(
            &sources("src/protocol"),
            &["TcpStream", "TcpListener", "mio::", "std::thread"],
        ),
    );
}
