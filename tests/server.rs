//! The seat rules as clients see them, through a real `floatd` process
//! and real sockets: counts, leases, heartbeats, sharing, min_checkout,
//! the queue and reclaim.
//!
//! Every server comes from the harness (port 0, its own state directory,
//! killed on drop); every wait polls with a deadline.
#![cfg(not(feature = "embedded-keys-only"))]

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Starts a server for a site with these FEATURE lines and extra flags.
fn serve(features: &str, extra: &[&str]) -> (Site, Floatd) {
    let site = Site::new(features);
    let mut args = site.server_args("state");
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Floatd::start(&args, &site.path("floatd.log"));
    (site, server)
}

fn code(reply: &str) -> &str {
    reply
        .strip_prefix("ERR ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("expected an error reply, got {reply:?}"))
}

#[test]
fn checkout_up_to_the_count_then_denied_and_checkin_frees_a_seat() {
    let (_site, server) = serve("FEATURE cad version=2.0 count=3 expires=permanent", &[]);
    let mut alice = LineClient::hello(&server.addr, "alice", "ws1");
    let mut handles = Vec::new();
    for i in 0..3 {
        let reply = alice.ask("CHECKOUT cad version=2.0");
        assert!(reply.starts_with("OK handle="), "checkout {i}: {reply}");
        assert_eq!(field(&reply, "feature").as_deref(), Some("cad"));
        assert_eq!(field(&reply, "count").as_deref(), Some("1"));
        assert_eq!(field(&reply, "expires").as_deref(), Some("permanent"));
        handles.push(field(&reply, "handle").unwrap());
    }
    let mut distinct = handles.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "handles must differ: {handles:?}");

    // One more is denied, on the wire and through floatctl.
    let mut bob = LineClient::hello(&server.addr, "bob", "ws2");
    let denied = bob.ask("CHECKOUT cad");
    assert_eq!(code(&denied), "NO_SEATS", "{denied}");
    assert!(
        field(&denied, "msg").is_some() || denied.contains("msg="),
        "{denied}"
    );
    let out = floatctl(&["--server", &server.addr, "checkout", "cad"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "floatctl checkout on a full feature"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("NO_SEATS"));
    assert!(out.stdout.is_empty(), "a denied checkout prints no handle");
    // Two seats at once cannot come out of a full pool either, and more
    // than the pool holds is a different error.
    assert_eq!(code(&bob.ask("CHECKOUT cad count=2")), "NO_SEATS");
    assert_eq!(code(&bob.ask("CHECKOUT cad count=4")), "COUNT_TOO_LARGE");

    let status = bob.status();
    assert_eq!(used(&status, "cad"), 3);
    let cad = feature_status(&status, "cad").unwrap();
    assert_eq!(cad["count"], 3);
    let mut listed: Vec<String> = cad["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["seat"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut seats: Vec<String> = distinct.iter().map(|h| seat_of(h)).collect();
    seats.sort();
    assert_eq!(listed, seats, "status lists seat ids, never handles");

    // Checkin frees exactly one seat; a second checkin of it is refused.
    assert_eq!(alice.ask(&format!("CHECKIN {}", handles[0])), "OK");
    assert_eq!(
        code(&alice.ask(&format!("CHECKIN {}", handles[0]))),
        "UNKNOWN_HANDLE"
    );
    assert_eq!(
        code(&alice.ask(&format!("HEARTBEAT {}", handles[0]))),
        "UNKNOWN_HANDLE"
    );
    let reply = bob.ask("CHECKOUT cad");
    assert!(reply.starts_with("OK handle="), "after a checkin: {reply}");
    assert_eq!(code(&bob.ask("CHECKOUT cad")), "NO_SEATS");
    assert_eq!(used(&bob.status(), "cad"), 3);
}

#[test]
fn requests_the_server_cannot_serve_get_stable_codes() {
    let (_site, server) = serve(
        "FEATURE cad version=2.0 count=3 expires=permanent\n\
         FEATURE old version=1.0 count=3 expires=2001-01-01",
        &[],
    );
    let mut c = LineClient::connect(&server.addr);
    assert!(c.greeting.starts_with("FLOATD proto=1 "), "{}", c.greeting);
    assert_eq!(field(&c.greeting, "role").as_deref(), Some("standalone"));
    assert_eq!(field(&c.greeting, "state").as_deref(), Some("active"));
    assert_eq!(field(&c.greeting, "server").as_deref(), Some("lic1"));
    // Seat requests before HELLO.
    assert_eq!(code(&c.ask("CHECKOUT cad")), "NOT_GREETED");
    assert_eq!(c.ask("PING"), "PONG");
    assert_eq!(
        code(&c.ask("HELLO proto=2 client=x user=u host=h")),
        "PROTOCOL_VERSION"
    );
    let hello = c.ask("HELLO proto=1 client=x user=u host=h");
    assert!(hello.starts_with("OK proto=1 lease_ms="), "{hello}");
    assert_eq!(code(&c.ask("CHECKOUT nosuch")), "NO_SUCH_FEATURE");
    assert_eq!(code(&c.ask("CHECKOUT cad version=3.0")), "NO_VERSION");
    // A licence already expired at start is not served at all (EXPIRED is
    // for one that runs out while the server runs).
    assert_eq!(code(&c.ask("CHECKOUT old")), "NO_SUCH_FEATURE");
    assert_eq!(code(&c.ask("CHECKOUT cad colour=red")), "BAD_REQUEST");
    assert_eq!(code(&c.ask("FROBNICATE")), "BAD_REQUEST");
    // Request words are case-insensitive.
    assert!(c.ask("checkout cad").starts_with("OK handle="));
    assert_eq!(c.ask("QUIT"), "OK bye=yes");
    let (_, closed) = c.read_until_closed(PATIENCE);
    assert!(closed, "QUIT closes the connection");
}

#[test]
fn lease_expiry_frees_the_seat_of_a_killed_client() {
    let (site, server) = serve(
        "FEATURE cad version=2.0 count=1 expires=permanent",
        &["--lease", "2s"],
    );
    let mut watcher = LineClient::connect(&server.addr);
    let mut holder = Spawned::floatctl(
        &[
            "--server",
            &server.addr,
            "--user",
            "victim",
            "checkout",
            "cad",
            "--hold",
            "60",
        ],
        &site.path("holder.err"),
    );
    let handle = holder
        .line(PATIENCE)
        .expect("floatctl checkout --hold prints the handle");
    assert_eq!(used(&watcher.status(), "cad"), 1);
    holder.kill9();
    let killed = Instant::now();
    // The server must not free the seat because the client went away:
    // only the lease does.
    let status = watcher.status();
    assert_eq!(
        used(&status, "cad"),
        1,
        "seat dropped before its lease ran out"
    );
    let mut other = LineClient::hello(&server.addr, "bob", "ws2");
    assert_eq!(code(&other.ask("CHECKOUT cad")), "NO_SEATS");
    // Lease (2 s) plus generous slack for a loaded machine.
    wait_until(
        Duration::from_secs(12),
        "the lease to free the seat",
        || used(&watcher.status(), "cad") == 0,
    );
    assert!(killed.elapsed() < Duration::from_secs(12));
    assert!(other.ask("CHECKOUT cad").starts_with("OK handle="));
    let state = site.path("state");
    wait_until(PATIENCE, "the expiry in the report log", || {
        report_log(&state)
            .lines()
            .any(|l| l.contains(&format!("handle={handle}")) && l.contains("reason=expired"))
    });
}

#[test]
fn heartbeats_keep_a_seat_past_its_lease() {
    let lease = Duration::from_secs(2);
    let (site, server) = serve(
        "FEATURE cad version=2.0 count=1 expires=permanent",
        &["--lease", "2s"],
    );
    let mut watcher = LineClient::connect(&server.addr);
    let mut holder = Spawned::floatctl(
        &["--server", &server.addr, "checkout", "cad", "--hold", "6"],
        &site.path("holder.err"),
    );
    let handle = holder.line(PATIENCE).expect("handle on stdout");
    let granted = Instant::now();
    let mut held_longest = Duration::ZERO;
    // Sample until the holder exits: the seat must be out every time.
    let deadline = Instant::now() + Duration::from_secs(6) + PATIENCE;
    while holder.running() {
        assert!(
            Instant::now() < deadline,
            "floatctl --hold 6 did not finish"
        );
        let status = watcher.status();
        let running = holder.running();
        if running {
            assert_eq!(
                used(&status, "cad"),
                1,
                "the seat was lost {:?} after checkout, while heartbeating",
                granted.elapsed()
            );
            held_longest = granted.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        holder.wait_exit(PATIENCE),
        Some(0),
        "floatctl --hold exit code"
    );
    assert!(
        held_longest >= 2 * lease,
        "the seat was seen held only {held_longest:?}, not past two leases"
    );
    // It checked the seat in at the end.
    assert_eq!(used(&watcher.status(), "cad"), 0);
    let state = site.path("state");
    wait_until(PATIENCE, "the checkin in the report log", || {
        report_log(&state)
            .lines()
            .any(|l| l.contains(&format!("handle={handle}")) && l.contains("reason=checkin"))
    });
}

#[test]
fn share_user_and_share_host_count_one_seat_per_user_or_host() {
    let (_site, server) = serve(
        "FEATURE peruser version=1.0 count=1 expires=permanent share=user\n\
         FEATURE perhost version=1.0 count=1 expires=permanent share=host",
        &[],
    );
    // share=user: alice on two hosts takes one seat; bob is denied.
    let mut alice1 = LineClient::hello(&server.addr, "alice", "ws1");
    let mut alice2 = LineClient::hello(&server.addr, "alice", "ws2");
    let mut bob = LineClient::hello(&server.addr, "bob", "ws1");
    let a1 = alice1.checkout("peruser").expect("alice on ws1");
    let a2 = alice2
        .checkout("peruser")
        .expect("alice on ws2 shares her seat");
    assert_ne!(a1, a2);
    let status = bob.status();
    assert_eq!(used(&status, "peruser"), 1);
    assert_eq!(
        feature_status(&status, "peruser").unwrap()["holders"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(code(&bob.ask("CHECKOUT peruser")), "NO_SEATS");
    // The seat returns only when the last of alice's checkouts does.
    assert_eq!(alice1.ask(&format!("CHECKIN {a1}")), "OK");
    assert_eq!(code(&bob.ask("CHECKOUT peruser")), "NO_SEATS");
    assert_eq!(alice2.ask(&format!("CHECKIN {a2}")), "OK");
    assert!(bob.checkout("peruser").is_ok());

    // share=host: alice and bob on ws1 take one seat; carol on ws2 is denied.
    let mut carol = LineClient::hello(&server.addr, "carol", "ws2");
    let h1 = alice1.checkout("perhost").expect("alice on ws1");
    let h2 = bob
        .checkout("perhost")
        .expect("bob on ws1 shares the host's seat");
    assert_eq!(used(&carol.status(), "perhost"), 1);
    assert_eq!(code(&carol.ask("CHECKOUT perhost")), "NO_SEATS");
    assert_eq!(alice1.ask(&format!("CHECKIN {h1}")), "OK");
    assert_eq!(code(&carol.ask("CHECKOUT perhost")), "NO_SEATS");
    assert_eq!(bob.ask(&format!("CHECKIN {h2}")), "OK");
    assert!(carol.checkout("perhost").is_ok());
}

#[test]
fn min_checkout_keeps_a_checked_in_seat_out_then_it_returns() {
    let (site, server) = serve(
        "FEATURE cad version=1.0 count=1 expires=permanent min_checkout=3",
        &[],
    );
    let mut alice = LineClient::hello(&server.addr, "alice", "ws1");
    let mut bob = LineClient::hello(&server.addr, "bob", "ws2");
    let handle = alice.checkout("cad").unwrap();
    let reply = alice.ask(&format!("CHECKIN {handle}"));
    let held_ms: u64 = field(&reply, "held_ms")
        .unwrap_or_else(|| panic!("checkin under min_checkout: {reply}"))
        .parse()
        .unwrap();
    assert!(reply.starts_with("OK held_ms="), "{reply}");
    assert!(held_ms > 0 && held_ms <= 3000, "{reply}");
    // Still out: nobody gets it, and it cannot be checked in twice or
    // heartbeated back to life.
    assert_eq!(code(&bob.ask("CHECKOUT cad")), "NO_SEATS");
    assert_eq!(used(&bob.status(), "cad"), 1);
    assert_eq!(
        code(&alice.ask(&format!("CHECKIN {handle}"))),
        "UNKNOWN_HANDLE"
    );
    assert_eq!(
        code(&alice.ask(&format!("HEARTBEAT {handle}"))),
        "UNKNOWN_HANDLE"
    );
    // Then it returns by itself (3 s, with slack).
    wait_until(Duration::from_secs(15), "the held seat to return", || {
        used(&bob.status(), "cad") == 0
    });
    let again = bob.checkout("cad").expect("the seat is back");
    let state = site.path("state");
    wait_until(PATIENCE, "the held checkin in the report log", || {
        report_log(&state)
            .lines()
            .any(|l| l.contains(&format!("handle={handle}")) && l.contains("reason=checkin"))
    });
    // An operator's REMOVE does not wait for min_checkout.
    assert!(bob
        .ask(&format!("REMOVE {again}"))
        .starts_with("OK removed=1 feature=cad user=bob host=ws2 "));
    assert_eq!(used(&bob.status(), "cad"), 0);
}

/// Reads the next line of a waiting client, expecting a `* GRANTED` push
/// for `id`; returns the handle.
fn expect_granted(c: &mut LineClient, id: &str, who: &str) -> String {
    let line = c
        .read_line()
        .unwrap_or_else(|| panic!("{who}: connection closed while queued"));
    assert!(line.starts_with("* GRANTED id="), "{who}: {line}");
    assert_eq!(field(&line, "id").as_deref(), Some(id), "{who}: {line}");
    field(&line, "handle").unwrap()
}

fn holders(status: &serde_json::Value, feature: &str) -> Vec<String> {
    let mut users: Vec<String> = feature_status(status, feature).unwrap()["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["user"].as_str().unwrap().to_string())
        .collect();
    users.sort();
    users
}

fn queue_len(status: &serde_json::Value, feature: &str) -> u64 {
    feature_status(status, feature).unwrap()["queue"]
        .as_u64()
        .unwrap()
}

#[test]
fn waiters_are_served_in_order_and_nobody_overtakes_them() {
    let (_site, server) = serve("FEATURE cad version=1.0 count=2 expires=permanent", &[]);
    let mut admin = LineClient::connect(&server.addr);
    let mut first = LineClient::hello(&server.addr, "first", "ws0");
    let h1 = first.checkout("cad").unwrap();
    let h2 = first.checkout("cad").unwrap();

    // Each waiter needs the whole pool, so the grants come one at a time.
    let mut waiters = Vec::new();
    for (i, name) in ["w1", "w2", "w3", "leaver"].iter().enumerate() {
        let mut c = LineClient::hello(&server.addr, name, name);
        let reply = c.ask("CHECKOUT cad count=2 wait=yes");
        assert!(reply.starts_with("QUEUED id="), "{name}: {reply}");
        assert_eq!(
            field(&reply, "position"),
            Some((i + 1).to_string()),
            "{name}: {reply}"
        );
        waiters.push((c, field(&reply, "id").unwrap()));
    }
    assert_eq!(queue_len(&admin.status(), "cad"), 4);

    // A waiter whose connection closes leaves the queue.
    let (leaver, _) = waiters.pop().unwrap();
    drop(leaver);
    wait_until(PATIENCE, "the closed waiter to leave the queue", || {
        queue_len(&admin.status(), "cad") == 3
    });

    // One seat frees: not enough for w1, and a newcomer without wait may
    // not take it past the queue.
    assert_eq!(first.ask(&format!("CHECKIN {h1}")), "OK");
    let mut newcomer = LineClient::hello(&server.addr, "newcomer", "ws9");
    let denied = newcomer.ask("CHECKOUT cad");
    assert_eq!(
        code(&denied),
        "NO_SEATS",
        "the newcomer overtook the queue: {denied}"
    );
    let status = admin.status();
    assert_eq!(used(&status, "cad"), 1);
    assert_eq!(queue_len(&status, "cad"), 3);

    // Seats free one grant at a time: w1, then w2, then w3.
    assert_eq!(first.ask(&format!("CHECKIN {h2}")), "OK");
    let mut it = waiters.into_iter();
    let (mut w1, id1) = it.next().unwrap();
    let (mut w2, id2) = it.next().unwrap();
    let (mut w3, id3) = it.next().unwrap();
    let g1 = expect_granted(&mut w1, &id1, "w1");
    let status = admin.status();
    assert_eq!(holders(&status, "cad"), ["w1"]);
    assert_eq!(queue_len(&status, "cad"), 2);

    assert_eq!(w1.ask(&format!("CHECKIN {g1}")), "OK");
    let g2 = expect_granted(&mut w2, &id2, "w2");
    let status = admin.status();
    assert_eq!(holders(&status, "cad"), ["w2"]);
    assert_eq!(queue_len(&status, "cad"), 1);

    assert_eq!(w2.ask(&format!("CHECKIN {g2}")), "OK");
    let g3 = expect_granted(&mut w3, &id3, "w3");
    let status = admin.status();
    assert_eq!(holders(&status, "cad"), ["w3"]);
    assert_eq!(queue_len(&status, "cad"), 0);
    // The granted seat is a real one: it heartbeats and checks in.
    assert!(w3
        .ask(&format!("HEARTBEAT {g3}"))
        .starts_with("OK lease_ms="));
    assert_eq!(w3.ask(&format!("CHECKIN {g3}")), "OK");
    assert!(newcomer.checkout("cad").is_ok());
}

#[test]
fn a_seat_is_reclaimed_after_reconnecting_but_not_by_someone_else() {
    let (_site, server) = serve("FEATURE cad version=1.0 count=1 expires=permanent", &[]);
    let hello = "HELLO proto=1 client=app-42 user=alice host=ws1";
    let mut c = LineClient::connect(&server.addr);
    assert!(c.ask(hello).starts_with("OK"));
    let grant = c.ask("CHECKOUT cad version=1.0");
    let handle = field(&grant, "handle").expect("granted");
    drop(c);

    // Another user with the stolen handle is refused, and so is the same
    // user from another client process.
    for thief in [
        "HELLO proto=1 client=app-42 user=mallory host=ws1",
        "HELLO proto=1 client=app-43 user=alice host=ws1",
        "HELLO proto=1 client=app-42 user=alice host=ws666",
    ] {
        let mut m = LineClient::connect(&server.addr);
        assert!(m.ask(thief).starts_with("OK"));
        let reply = m.ask(&format!("RECLAIM {handle} feature=cad version=1.0 count=1"));
        assert_eq!(code(&reply), "BAD_HANDLE", "{thief}: {reply}");
    }
    // A reclaim that does not match the grant is refused too.
    let mut c = LineClient::connect(&server.addr);
    assert!(c.ask(hello).starts_with("OK"));
    let reply = c.ask(&format!("RECLAIM {handle} feature=cad version=1.0 count=2"));
    assert_eq!(code(&reply), "BAD_HANDLE", "{reply}");

    // The same identity on a new connection keeps its seat.
    let reply = c.ask(&format!("RECLAIM {handle} feature=cad version=1.0 count=1"));
    assert!(reply.starts_with("OK handle="), "{reply}");
    assert_eq!(field(&reply, "handle").as_deref(), Some(handle.as_str()));
    assert!(c
        .ask(&format!("HEARTBEAT {handle}"))
        .starts_with("OK lease_ms="));
    let status = c.status();
    assert_eq!(used(&status, "cad"), 1);
    assert_eq!(holders(&status, "cad"), ["alice"]);
    assert_eq!(c.ask(&format!("CHECKIN {handle}")), "OK");
    // A handle the server no longer holds is granted again when it proves
    // its grant (what a failover needs), and then counts against the pool.
    let reply = c.ask(&format!("RECLAIM {handle} feature=cad version=1.0 count=1"));
    assert!(reply.starts_with("OK handle="), "{reply}");
    let mut bob = LineClient::hello(&server.addr, "bob", "ws2");
    assert_eq!(code(&bob.ask("CHECKOUT cad")), "NO_SEATS");
    assert_eq!(used(&bob.status(), "cad"), 1);
}
