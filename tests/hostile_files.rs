//! Files that could hang or swamp the server: a FIFO or `/dev/zero` as the
//! licence or options file gets a clear error, at start-up and at a reread,
//! and the loop keeps serving; a licence named with `--license` that
//! cannot be read stops the start.
#![cfg(not(feature = "embedded-keys-only"))]

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FEATURES: &str = "FEATURE cad version=1.0 count=10 expires=permanent\n\
                        FEATURE good version=1.0 count=10 expires=permanent";

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Runs floatd expecting it to fail soon; kills it (and fails) if it
/// hangs. Returns its exit code and stderr.
fn start_expecting_failure(args: &[String], cwd: &Path) -> (i32, String) {
    let err = cwd.join("failed-start.log");
    let mut child = Command::new(FLOATD)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("spawn floatd");
    let deadline = std::time::Instant::now() + PATIENCE;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "floatd {args:?} hung instead of failing:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    (code, std::fs::read_to_string(&err).unwrap_or_default())
}

#[test]
fn a_fifo_or_dev_zero_at_start_up_is_refused_without_hanging() {
    let site = Site::new(FEATURES);
    let fifo = site.path("site-fifo.lic");
    mkfifo(&fifo);
    let mut args = site.server_args("state");
    let at = args.iter().position(|a| a == "--license").unwrap();
    args[at + 1] = fifo.display().to_string();
    let (code, stderr) = start_expecting_failure(&args, site.dir.path());
    assert_ne!(code, 0);
    assert!(
        stderr.contains("site-fifo.lic: is a FIFO (named pipe), not a regular file; refused"),
        "{stderr}"
    );

    for options in ["/dev/zero", fifo.to_str().unwrap()] {
        let mut args = site.server_args("state");
        args.extend(["--options".into(), options.into()]);
        let (code, stderr) = start_expecting_failure(&args, site.dir.path());
        assert_ne!(code, 0);
        assert!(stderr.contains("not a regular file; refused"), "{stderr}");
        assert!(
            stderr.contains(&format!("options file {options}")),
            "{stderr}"
        );
    }
}

#[test]
fn a_fifo_or_dev_zero_at_a_reread_gets_a_clear_error_and_the_loop_keeps_serving() {
    let site = Site::new(FEATURES);
    let options = site.path("floatd.opt");
    std::fs::write(&options, "# no rules\n").unwrap();
    let mut args = site.server_args("state");
    args.extend(["--options".into(), options.display().to_string()]);
    let server = Floatd::start(&args, &site.path("floatd.log"));
    let good = GoodClient::start(&server.addr, "good");
    let mut admin = LineClient::connect(&server.addr);

    // The options file becomes /dev/zero (through a link), then a FIFO.
    std::fs::remove_file(&options).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &options).unwrap();
    let reply = admin.ask("REREAD");
    assert!(reply.starts_with("ERR INTERNAL"), "{reply}");
    assert!(reply.contains("is a character device"), "{reply}");
    good.wait_served(3, "after a reread met /dev/zero");
    println!("options at /dev/zero: {}", good.latency());

    mkfifo(&options);
    let reply = admin.ask("REREAD");
    assert!(reply.starts_with("ERR INTERNAL"), "{reply}");
    assert!(reply.contains("is a FIFO"), "{reply}");
    good.wait_served(3, "after a reread met a FIFO options file");
    println!("options a FIFO: {}", good.latency());

    // The licence named with --license becomes a FIFO: SIGHUP and REREAD.
    std::fs::remove_file(&options).unwrap();
    std::fs::write(&options, "# no rules\n").unwrap();
    std::fs::rename(&site.licence, site.path("site.lic.real")).unwrap();
    mkfifo(&site.licence);
    server.signal("HUP");
    wait_until(PATIENCE, "the failed reread in the log", || {
        server.log_text().contains("reread failed")
    });
    let reply = admin.ask("REREAD");
    assert!(reply.starts_with("ERR INTERNAL"), "{reply}");
    assert!(reply.contains("is a FIFO"), "{reply}");
    good.wait_served(3, "after a reread met a FIFO licence");
    println!("licence a FIFO: {}", good.latency());

    // Still serving the licences it had.
    let mut c = LineClient::hello(&server.addr, "alice", "ws1");
    assert!(c.checkout("cad").is_ok());
    good.finish();
}

#[test]
fn a_licence_named_with_license_that_is_missing_stops_the_start() {
    let site = Site::new(FEATURES);
    // A valid licence in the working directory must not be served instead.
    let cwd = site.path("cwd");
    std::fs::create_dir(&cwd).unwrap();
    std::fs::copy(&site.licence, cwd.join("other.lic")).unwrap();
    let mut args = site.server_args("state");
    let at = args.iter().position(|a| a == "--license").unwrap();
    args[at + 1] = site.path("typo.lic").display().to_string();
    let (code, stderr) = start_expecting_failure(&args, &cwd);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("typo.lic: cannot read: No such file or directory"),
        "{stderr}"
    );
    assert!(stderr.contains("named by --license"), "{stderr}");

    // One that cannot be read (a path through a file: "not a directory"),
    // beside one that can.
    let mut args = site.server_args("state");
    let at = args.iter().position(|a| a == "--license").unwrap();
    args[at + 1] = format!(
        "{}:{}/inner.lic",
        site.licence.display(),
        site.licence.display()
    );
    let (code, stderr) = start_expecting_failure(&args, &cwd);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("inner.lic: cannot read: Not a directory"),
        "{stderr}"
    );
}

#[test]
fn licence_directory_entries_that_are_skipped_are_logged() {
    let site = Site::new(FEATURES);
    let dir = site.path("licences");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&site.licence, dir.join("site.lic")).unwrap();
    std::fs::write(dir.join("site.lic.bak"), "old").unwrap();
    mkfifo(&dir.join("pipe.lic"));
    let mut args = site.server_args("state");
    let at = args.iter().position(|a| a == "--license").unwrap();
    args[at + 1] = dir.display().to_string();
    let server = Floatd::start(&args, &site.path("floatd.log"));
    let log = server.log_text();
    assert!(
        log.contains("site.lic.bak: skipped: not a *.lic file"),
        "{log}"
    );
    assert!(
        log.contains("pipe.lic: skipped: named *.lic but a FIFO (named pipe)"),
        "{log}"
    );
    let mut c = LineClient::hello(&server.addr, "alice", "ws1");
    assert!(c.checkout("cad").is_ok());
}
