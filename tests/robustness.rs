//! Misbehaving clients against a real `floatd`: garbage, overlong lines,
//! trickling and silent clients, connection floods, pipelining and the
//! connection cap. Each runs while a well-behaved client ([`GoodClient`])
//! does checkout/heartbeat/checkin round trips, which must all succeed.
#![cfg(not(feature = "embedded-keys-only"))]

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FEATURES: &str = "FEATURE cad version=1.0 count=1000 expires=permanent\n\
                        FEATURE good version=1.0 count=10 expires=permanent";

fn serve(extra: &[&str]) -> (Site, Floatd) {
    let site = Site::new(FEATURES);
    let mut args = site.server_args("state");
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Floatd::start(&args, &site.path("floatd.log"));
    (site, server)
}

/// Deterministic bytes (xorshift), so a failure can be replayed.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn garbage_and_invalid_utf8_get_bad_request_and_the_connection_stays_usable() {
    let (_site, server) = serve(&[]);
    let good = GoodClient::start(&server.addr, "good");
    good.wait_served(3, "before the garbage");

    let mut bad = LineClient::connect(&server.addr);
    for line in [
        &b"\xc3\x28 not utf-8 \xff\xfe"[..],
        b"PING\x00",
        b"\x1b[31mHELLO\x1b[0m",
        b"",
        b"\r",
        b"CHECKOUT \"unterminated",
        b"HELLO proto=1 client=\xe2\x82 user=x host=y",
    ] {
        bad.stream.write_all(line).unwrap();
        bad.stream.write_all(b"\n").unwrap();
        let reply = bad.read_line().expect("a reply to garbage");
        assert!(
            reply.starts_with("ERR BAD_REQUEST msg="),
            "{:?}: {reply}",
            String::from_utf8_lossy(line)
        );
    }
    assert_eq!(bad.ask("PING"), "PONG");

    // 256 KiB of binary noise with a newline at least every 1000 bytes: one
    // BAD_REQUEST a line, then the connection still works.
    let mut blob = noise(256 * 1024, 0x9e37_79b9_7f4a_7c15);
    for i in (999..blob.len()).step_by(1000) {
        blob[i] = b'\n';
    }
    *blob.last_mut().unwrap() = b'\n';
    let lines = blob.iter().filter(|&&b| b == b'\n').count();
    let writer = {
        let mut stream = bad.stream.try_clone().unwrap();
        std::thread::spawn(move || stream.write_all(&blob))
    };
    for i in 0..lines {
        let reply = bad
            .read_line()
            .unwrap_or_else(|| panic!("closed after {i} of {lines} garbage lines"));
        assert!(reply.starts_with("ERR BAD_REQUEST"), "line {i}: {reply}");
        if i == lines / 2 {
            good.wait_served(3, "while garbage arrives");
        }
    }
    writer.join().unwrap().expect("garbage written");
    assert_eq!(bad.ask("PING"), "PONG");
    let hello = bad.ask("HELLO proto=1 client=b user=bad host=h");
    assert!(hello.starts_with("OK"), "{hello}");
    assert!(bad.checkout("cad").is_ok());
    good.wait_served(3, "after the garbage");
    good.finish();
}

#[test]
fn overlong_lines_are_refused_and_closed() {
    let (_site, server) = serve(&[]);
    let good = GoodClient::start(&server.addr, "good");
    good.wait_served(3, "before");

    // The longest line allowed is 4096 bytes with its newline.
    let mut c = LineClient::connect(&server.addr);
    let longest = format!("PING{}", " ".repeat(4095 - 4));
    assert_eq!(c.ask(&longest), "PONG");
    let too_long = format!("PING{}", " ".repeat(4096 - 4));
    c.send(&too_long);
    let (lines, closed) = c.read_until_closed(PATIENCE);
    assert!(closed, "a 4097-byte line must close the connection");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("ERR LINE_TOO_LONG msg="), "{lines:?}");

    // A 1 MB line, written by a thread of its own (the server stops
    // reading it long before the end).
    let mut c = LineClient::connect(&server.addr);
    let mut stream = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut line = vec![b'x'; 1 << 20];
        line.push(b'\n');
        let _ = stream.write_all(&line); // fails once the server closes
    });
    let (lines, closed) = c.read_until_closed(PATIENCE);
    assert!(closed, "a 1 MB line must close the connection");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("ERR LINE_TOO_LONG msg="), "{lines:?}");
    writer.join().unwrap();
    good.wait_served(3, "after the 1 MB line");
    good.finish();
}

/// Writes `bytes` one a second until done, stopped, or the socket fails.
fn trickle(mut stream: TcpStream, bytes: &'static [u8], stop: Arc<AtomicBool>) {
    for b in bytes {
        if stop.load(Ordering::SeqCst) || stream.write_all(&[*b]).is_err() {
            return;
        }
        // Pacing, not waiting for a condition: one byte a second.
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_client_sending_a_byte_a_second_is_closed_after_the_line_timeout() {
    let (_site, server) = serve(&[]);
    let good = GoodClient::start(&server.addr, "good");
    good.wait_served(3, "before");
    let stop = Arc::new(AtomicBool::new(false));

    // Never finishes its line within the 10 s line timeout.
    let mut slow = LineClient::connect(&server.addr);
    let started = Instant::now();
    let t1 = {
        let (s, stop) = (slow.stream.try_clone().unwrap(), stop.clone());
        std::thread::spawn(move || {
            trickle(
                s,
                b"HELLO proto=1 client=slow user=slow host=slow-host-name\n",
                stop,
            )
        })
    };
    // Slow too, but finishes its line well within the timeout.
    let mut slowish = LineClient::connect(&server.addr);
    let t2 = {
        let (s, stop) = (slowish.stream.try_clone().unwrap(), stop.clone());
        std::thread::spawn(move || trickle(s, b"PING\n", stop))
    };
    assert_eq!(slowish.read_line().as_deref(), Some("PONG"));
    good.wait_served(3, "while the slow clients trickle");

    let (lines, closed) = slow.read_until_closed(Duration::from_secs(40));
    stop.store(true, Ordering::SeqCst);
    assert!(closed, "the trickling client was not closed: {lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("ERR BAD_REQUEST"), "{lines:?}");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "closed only after {:?}",
        started.elapsed()
    );
    // The one that finished its line in time is still served.
    assert_eq!(slowish.ask("PING"), "PONG");
    t1.join().unwrap();
    t2.join().unwrap();
    good.wait_served(3, "after");
    good.finish();
}

#[test]
fn silent_clients_do_not_disturb_the_server_and_idle_ones_are_closed() {
    let (_site, server) = serve(&["--idle-timeout", "5s"]);
    let good = GoodClient::start(&server.addr, "good");
    let mut watcher = LineClient::connect(&server.addr);
    // Connect and never send a byte (nor read the greeting).
    let silent: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(&server.addr).expect("connect"))
        .collect();
    wait_until(
        PATIENCE,
        "the server to count the silent connections",
        || watcher.status()["connections"].as_u64().unwrap() >= 52,
    );
    good.wait_served(3, "beside 50 silent connections");
    // Past the idle timeout the server closes them; the busy client stays.
    for s in silent {
        let mut c = LineClient::adopt(s);
        let (lines, closed) = c.read_until_closed(PATIENCE);
        assert!(closed, "an idle connection was not closed");
        assert!(lines[0].starts_with("FLOATD "), "{lines:?}");
    }
    good.wait_served(3, "after the idle connections closed");
    good.finish();
}

#[test]
fn a_client_that_half_closes_after_its_requests_gets_every_reply() {
    // What `printf '...' | nc` does: write, shut the sending side, read.
    let (_site, server) = serve(&[]);
    let mut c = LineClient::connect(&server.addr);
    c.stream
        .write_all(b"HELLO proto=1 client=nc user=u host=h\nCHECKOUT cad\nPING\n")
        .unwrap();
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (lines, closed) = c.read_until_closed(PATIENCE);
    assert!(closed, "{lines:?}");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("OK proto=1"), "{lines:?}");
    assert!(lines[1].starts_with("OK handle="), "{lines:?}");
    assert_eq!(lines[2], "PONG");
    // The seat stays out: closing a connection does not return it.
    assert_eq!(used(&LineClient::connect(&server.addr).status(), "cad"), 1);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_site, server) = serve(&[]);
    let mut c = LineClient::connect(&server.addr);
    let mut batch = String::from("HELLO proto=1 client=pipe user=pipe host=h\n");
    for i in 0..33 {
        batch.push_str("CHECKOUT cad\n");
        batch.push_str(&format!("HEARTBEAT no-such-handle-{i}\n"));
        batch.push_str("PING\n");
    }
    assert_eq!(batch.lines().count(), 100);
    c.stream.write_all(batch.as_bytes()).unwrap();
    assert!(c.read_line().unwrap().starts_with("OK proto=1"));
    let mut handles = Vec::new();
    for i in 0..33 {
        let grant = c.read_line().unwrap();
        assert!(grant.starts_with("OK handle="), "{i}: {grant}");
        handles.push(field(&grant, "handle").unwrap());
        let hb = c.read_line().unwrap();
        assert!(hb.starts_with("ERR UNKNOWN_HANDLE"), "{i}: {hb}");
        assert_eq!(c.read_line().unwrap(), "PONG", "{i}");
    }
    // Second batch: heartbeat and check in each seat, with a PING between.
    let mut batch = String::new();
    for h in &handles {
        batch.push_str(&format!("HEARTBEAT {h}\nCHECKIN {h}\nPING\n"));
    }
    batch.push_str("STATUS\n");
    c.stream.write_all(batch.as_bytes()).unwrap();
    for (i, _) in handles.iter().enumerate() {
        assert!(c.read_line().unwrap().starts_with("OK lease_ms="), "{i}");
        assert_eq!(c.read_line().unwrap(), "OK", "{i}");
        assert_eq!(c.read_line().unwrap(), "PONG", "{i}");
    }
    let status = c.read_line().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(status.strip_prefix("STATUS ").unwrap()).unwrap();
    assert_eq!(used(&json, "cad"), 0);
}

#[test]
fn past_the_cap_loopback_gets_admin_slots_then_busy() {
    let (_site, server) = serve(&["--max-connections", "5"]);
    let mut regular: Vec<LineClient> = (0..5)
        .map(|i| LineClient::hello(&server.addr, &format!("u{i}"), "h"))
        .collect();
    // The 6th: a greeting (a slot kept for operators), status and admin
    // requests, but no seats.
    let mut admin = LineClient::connect(&server.addr);
    assert!(admin.greeting.starts_with("FLOATD "), "{}", admin.greeting);
    assert!(admin
        .ask("HELLO proto=1 client=a user=op host=h")
        .starts_with("OK"));
    assert!(admin.ask("STATUS").starts_with("STATUS {"));
    let busy = admin.ask("CHECKOUT cad");
    assert!(busy.starts_with("ERR BUSY"), "{busy}");
    // The regular ones are still served.
    assert!(regular[0].checkout("cad").is_ok());
    // Up to cap + 8 connections are let in; past that, ERR BUSY and closed.
    let more: Vec<LineClient> = (0..7).map(|_| LineClient::connect(&server.addr)).collect();
    for c in &more {
        assert!(c.greeting.starts_with("FLOATD "), "{}", c.greeting);
    }
    let mut refused = LineClient::connect(&server.addr);
    assert!(
        refused.greeting.starts_with("ERR BUSY msg="),
        "{}",
        refused.greeting
    );
    let (_, closed) = refused.read_until_closed(PATIENCE);
    assert!(closed, "a refused connection is closed");
    // Room again once some close.
    drop(more);
    regular.truncate(2);
    wait_until(PATIENCE, "a regular slot to free", || {
        let mut c = LineClient::connect(&server.addr);
        c.greeting.starts_with("FLOATD ")
            && c.ask("HELLO proto=1 client=z user=z host=h")
                .starts_with("OK")
            && c.checkout("cad").is_ok()
    });
}

#[test]
fn five_thousand_connections_at_once() {
    const FLOOD: usize = 5000;
    const CAP: usize = 4000;
    const THREADS: usize = 8;
    let limit = raise_nofile(12_000);
    assert!(
        limit as usize > FLOOD + 200,
        "open-file limit {limit} is too low for this test (and for floatd): raise `ulimit -n`"
    );
    let (_site, server) = serve(&["--max-connections", &CAP.to_string()]);
    let good = GoodClient::start(&server.addr, "good");
    good.wait_served(3, "before the flood");

    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    let openers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (addr, barrier) = (server.addr.clone(), barrier.clone());
            std::thread::spawn(move || {
                let sockaddr = addr.parse().unwrap();
                barrier.wait();
                let streams: Vec<TcpStream> = (0..FLOOD / THREADS)
                    .map(|_| {
                        TcpStream::connect_timeout(&sockaddr, PATIENCE).expect("connect in flood")
                    })
                    .collect();
                // The first line of each: a greeting or ERR BUSY.
                let mut firsts = Vec::new();
                for s in &streams {
                    s.set_read_timeout(Some(PATIENCE)).unwrap();
                    let mut line = String::new();
                    let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line);
                    firsts.push(line);
                }
                (streams, firsts)
            })
        })
        .collect();
    let mut streams = Vec::new();
    let (mut greeted, mut busy) = (0, 0);
    for t in openers {
        let (s, firsts) = t.join().expect("opener thread");
        streams.extend(s);
        for line in firsts {
            if line.starts_with("FLOATD ") {
                greeted += 1;
            } else if line.starts_with("ERR BUSY") {
                busy += 1;
            } else {
                panic!("unexpected first line in the flood: {line:?}");
            }
        }
    }
    assert_eq!(greeted + busy, FLOOD);
    // The good client holds one connection; cap + 8 admin slots in all.
    assert!(
        greeted <= CAP + 8,
        "{greeted} connections let in past a cap of {CAP}"
    );
    assert!(busy >= FLOOD - (CAP + 8), "only {busy} refused");
    good.wait_served(5, "with the flood connected");
    let mut late = LineClient::connect(&server.addr);
    assert!(late.greeting.starts_with("ERR BUSY"), "{}", late.greeting);
    let (_, closed) = late.read_until_closed(PATIENCE);
    assert!(closed);

    drop(streams);
    wait_until(PATIENCE, "the flood's connections to be closed", || {
        let mut c = LineClient::connect(&server.addr);
        c.greeting.starts_with("FLOATD ") && c.status()["connections"].as_u64().unwrap() <= 3
    });
    good.wait_served(3, "after the flood");
    good.finish();
}

/// The first line of each connection, which must come (no client is left
/// hanging): a greeting or `ERR BUSY`.
fn first_lines(streams: &[TcpStream]) -> Vec<String> {
    streams
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line)
                .unwrap_or_else(|e| panic!("connection {i} got no first line: {e}"));
            assert!(
                line.starts_with("FLOATD ") || line.starts_with("ERR BUSY"),
                "connection {i}: {line:?}"
            );
            line
        })
        .collect()
}

#[test]
fn a_low_open_file_limit_caps_connections_with_busy_not_silence() {
    // 128 files leave floatd room for 56 connections (64 kept for its own
    // files) plus the 8 admin slots.
    let site = Site::new(FEATURES);
    let server =
        Floatd::start_with_nofile(&site.server_args("state"), &site.path("floatd.log"), 128);
    let good = GoodClient::start(&server.addr, "good");
    good.wait_served(3, "before");
    let streams: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(&server.addr).expect("connect"))
        .collect();
    let firsts = first_lines(&streams);
    let greeted = firsts.iter().filter(|l| l.starts_with("FLOATD")).count();
    assert!(greeted <= 56 + 8, "{greeted} let in");
    assert!(
        firsts.len() - greeted >= 120 - 64,
        "{} refused",
        firsts.len() - greeted
    );
    good.wait_served(3, "at the cap");
    assert!(
        server
            .log_text()
            .contains("does not fit the open-file limit"),
        "the operator is told why the cap is lower"
    );
    drop(streams);
    good.wait_served(3, "after");
    good.finish();
}

#[test]
fn connections_waiting_for_a_free_file_are_accepted_when_some_close() {
    let (_site, server) = serve(&[]);
    let good = GoodClient::start(&server.addr, "good");
    good.wait_served(3, "before");
    // Out of file descriptors after ~50 connections: accept fails and the
    // rest wait in the kernel's backlog.
    let status = Command::new("prlimit")
        .args(["--pid", &server.pid().to_string(), "--nofile=64:64"])
        .status()
        .expect("prlimit");
    assert!(status.success());
    let mut streams: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&server.addr).expect("connect"))
        .collect();
    good.wait_served(3, "while the server is out of files");
    // Closing the first 60 frees files; the last 40 must then be accepted
    // without any new connection arriving to wake the listener.
    let waiting = streams.split_off(60);
    drop(streams);
    let firsts = first_lines(&waiting);
    assert!(
        firsts.iter().all(|l| l.starts_with("FLOATD ")),
        "{firsts:?}"
    );
    good.wait_served(3, "after");
    good.finish();
}
