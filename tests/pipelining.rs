//! A client that pipelines thousands of requests without waiting gets
//! every reply, in order, for each kind of request; a well-behaved client
//! on another connection is served meanwhile.
#![cfg(not(feature = "embedded-keys-only"))]

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Instant;

const FEATURES: &str = "FEATURE viewer version=1.0 count=uncounted expires=permanent\n\
                        FEATURE good version=1.0 count=10 expires=permanent";

/// Requests of one kind sent back to back.
const N: usize = 3000;

/// Sends `requests` on a fresh connection from a thread of its own while
/// this thread reads the replies; returns the replies (after the greeting).
fn pipeline(addr: &str, requests: Vec<String>) -> Vec<String> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("FLOATD "), "{greeting}");
    let expected = requests.len();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut batch = String::new();
        for r in requests {
            batch.push_str(&r);
            batch.push('\n');
        }
        writer.write_all(batch.as_bytes()).unwrap();
    });
    let mut replies = Vec::with_capacity(expected);
    while replies.len() < expected {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => panic!("closed after {} of {expected} replies", replies.len()),
            Ok(_) => replies.push(line.trim_end().to_string()),
            Err(e) => panic!(
                "no reply after {} of {expected} replies: {e}",
                replies.len()
            ),
        }
    }
    sender.join().unwrap();
    replies
}

fn hello() -> String {
    "HELLO proto=1 client=pipe user=pipe host=h".to_string()
}

#[test]
fn thousands_of_pipelined_requests_of_each_kind_get_every_reply() {
    let site = Site::new(FEATURES);
    let mut args = site.server_args("state");
    args.extend(["--max-checkouts-per-client".into(), "0".into()]);
    let server = Floatd::start(&args, &site.path("floatd.log"));
    let good = GoodClient::start(&server.addr, "good");
    let addr = server.addr.clone();
    let timed = |what: &str, requests: Vec<String>| {
        let started = Instant::now();
        let replies = pipeline(&addr, requests);
        println!(
            "{what}: {} replies in {:?}; {}",
            replies.len(),
            started.elapsed(),
            good.latency()
        );
        replies
    };

    let replies = timed("PING", vec!["PING".to_string(); N]);
    assert!(replies.iter().all(|r| r == "PONG"));

    let replies = timed("STATUS", vec!["STATUS".to_string(); N]);
    assert!(replies.iter().all(|r| r.starts_with("STATUS {")));

    let replies = timed("HELLO", vec![hello(); N]);
    assert!(replies.iter().all(|r| r.starts_with("OK proto=1")));

    let mut checkouts = vec![hello()];
    checkouts.extend(std::iter::repeat_n("CHECKOUT viewer".to_string(), N));
    let replies = timed("CHECKOUT", checkouts);
    let handles: Vec<String> = replies[1..]
        .iter()
        .map(|r| field(r, "handle").unwrap_or_else(|| panic!("checkout: {r}")))
        .collect();
    assert_eq!(handles.len(), N);
    assert_eq!(
        used(&LineClient::connect(&server.addr).status(), "viewer"),
        N as u64
    );

    let mut heartbeats = vec![hello()];
    heartbeats.extend(handles.iter().map(|h| format!("HEARTBEAT {h}")));
    let replies = timed("HEARTBEAT", heartbeats);
    assert!(replies[1..].iter().all(|r| r.starts_with("OK lease_ms=")));

    let mut reclaims = vec![hello()];
    reclaims.extend(
        handles
            .iter()
            .map(|h| format!("RECLAIM {h} feature=viewer version=0.0 count=1")),
    );
    let replies = timed("RECLAIM", reclaims);
    assert!(
        replies[1..].iter().all(|r| r.starts_with("OK handle=")),
        "{:?}",
        replies[1..].iter().find(|r| !r.starts_with("OK handle="))
    );

    let mut checkins = vec![hello()];
    checkins.extend(handles.iter().map(|h| format!("CHECKIN {h}")));
    let replies = timed("CHECKIN", checkins);
    assert!(replies[1..].iter().all(|r| r == "OK"));
    assert_eq!(
        used(&LineClient::connect(&server.addr).status(), "viewer"),
        0
    );

    // A mix, with errors among them, in order.
    let mut mixed = vec![hello()];
    for i in 0..N / 3 {
        mixed.push("CHECKOUT viewer".into());
        mixed.push(format!("CHECKIN no-such-handle-{i}"));
        mixed.push("PING".into());
    }
    let replies = timed("mixed", mixed);
    for chunk in replies[1..].chunks(3) {
        assert!(chunk[0].starts_with("OK handle="), "{}", chunk[0]);
        assert!(chunk[1].starts_with("ERR UNKNOWN_HANDLE"), "{}", chunk[1]);
        assert_eq!(chunk[2], "PONG");
    }
    good.wait_served(1, "after the pipelining clients");
    println!("{}", good.latency());
    good.finish();
}
