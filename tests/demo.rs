//! `make demo` (scripts/demo.sh) end to end: a pair on loopback, the
//! primary killed, failback; it shows seat rows under column headers and
//! the servers' log lines in time order, needs no python3, bc or timeout,
//! and returns at once when it ends.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn make_demo_runs_through_and_returns_at_once() {
    let root = env!("CARGO_MANIFEST_DIR");
    for script in ["scripts/demo.sh", "scripts/demo-lib.sh"] {
        let text = std::fs::read_to_string(format!("{root}/{script}")).unwrap();
        let code = text.lines().filter(|l| !l.trim_start().starts_with('#'));
        for line in code {
            for tool in ["python3", " bc", "timeout "] {
                assert!(!line.contains(tool), "{script} uses {tool}: {line}");
            }
        }
    }
    let mut child = Command::new("bash")
        .arg("scripts/demo.sh")
        .current_dir(root)
        .env_remove("FLOATD_SERVERS")
        .env(
            "FLOATD_DEMO_BIN",
            std::path::Path::new(FLOATD).parent().unwrap(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines.push((Instant::now(), line));
        }
        lines
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not finish in 240 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let exited = Instant::now();
    let lines = reader.join().unwrap();
    let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
    assert!(status.success(), "{text}\n{stderr}");
    assert!(text.contains("the backup took over after"), "{text}");
    let header = text
        .lines()
        .find(|l| l.trim_start().starts_with("SEAT "))
        .unwrap_or_else(|| panic!("no column headers over the seats:\n{text}"));
    for column in ["USER", "HOST", "SEATS", "SINCE", "LEASE ENDS"] {
        assert!(header.contains(column), "{header}");
    }
    // The servers' lines, merged in time order (each starts with its time).
    let logged: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("what the servers logged"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(logged.len() >= 2, "{text}");
    let mut sorted = logged.clone();
    sorted.sort();
    assert_eq!(logged, sorted, "in time order");
    // It returns at once: no client left waiting for a server that is gone.
    let (last, _) = lines.last().unwrap();
    let tail = exited.duration_since(*last);
    assert!(
        tail < Duration::from_secs(10),
        "returned {tail:?} after its last line"
    );
}
