//! The client library through real servers: failing fast when nobody
//! listens, saying which server a slow call is trying, cancelling, closing,
//! seat states and events across expiry and failover.

mod common;

use common::*;
use floatd::client::{
    Client, ClientConfig, ClientError, ClientEvent, Identity, SeatState, NOTICE_AFTER,
};
use floatd::licence::Version;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CAD3: &str = "FEATURE cad version=1.0 count=3 expires=permanent";

fn config(servers: &[String]) -> ClientConfig {
    let mut config = ClientConfig::new(
        servers.to_vec(),
        Identity {
            client: "t-client".into(),
            user: "alice".into(),
            host: "ws1".into(),
        },
    );
    config.io_timeout = Duration::from_secs(60);
    config.failover_timeout = Duration::from_secs(120);
    config
}

fn any_version() -> Version {
    Version::parse("0").unwrap()
}

/// A loopback address nobody listens on.
fn refused_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Every event the client reports, on a channel.
fn events(client: &Client) -> mpsc::Receiver<ClientEvent> {
    let (tx, rx) = mpsc::channel();
    client.on_event(move |e| {
        let _ = tx.send(e.clone());
    });
    rx
}

/// Waits for an event matching `wanted`; returns it and those before it.
fn wait_event(
    rx: &mpsc::Receiver<ClientEvent>,
    what: &str,
    wanted: impl Fn(&ClientEvent) -> bool,
) -> Vec<ClientEvent> {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) => {
                let done = wanted(&e);
                seen.push(e);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("no {what} event; saw {seen:?}"),
        }
    }
}

#[test]
fn every_server_refusing_or_unresolvable_fails_at_once() {
    let servers = vec![
        refused_addr(),
        "no-such-host.invalid:27000".to_string(),
        refused_addr(),
    ];
    let client = Client::new(config(&servers));
    let began = Instant::now();
    let err = client.checkout("cad", &any_version(), 1).unwrap_err();
    // The walk would go on for failover_timeout (120 s) if anybody listened.
    assert!(
        began.elapsed() < PATIENCE,
        "took {:?}: {err}",
        began.elapsed()
    );
    match &err {
        ClientError::Unreachable(why) => assert!(!why.is_empty()),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(matches!(client.status(), Err(ClientError::Unreachable(_))));
}

#[test]
fn a_silent_server_is_named_after_a_while_and_cancel_ends_the_wait() {
    let (_site, server) = serve(CAD3, &[]);
    let proxy = proxy::Proxy::new();
    proxy.set_target(&server.addr);
    proxy.blackhole();
    let client = Client::new(config(std::slice::from_ref(&proxy.addr)));
    let (tx, rx) = mpsc::channel();
    let inner = client.clone();
    client.on_event(move |e| {
        // A blocking call from the sink is refused, not a deadlock.
        let _ = tx.send((e.clone(), inner.status().map(|_| ())));
    });
    let began = Instant::now();
    let caller = {
        let client = client.clone();
        std::thread::spawn(move || client.checkout("cad", &any_version(), 1))
    };
    let (event, reentered) = rx.recv_timeout(PATIENCE).expect("a Trying event");
    assert_eq!(
        event,
        ClientEvent::Trying {
            server: proxy.addr.clone()
        }
    );
    assert!(began.elapsed() >= NOTICE_AFTER, "said too early");
    assert_eq!(reentered, Err(ClientError::Reentrant));

    client.cancel();
    let cancelled_at = Instant::now();
    let outcome = caller.join().unwrap();
    assert_eq!(outcome, Err(ClientError::Cancelled));
    // io_timeout is 60 s: only the cancel ends the wait this soon.
    assert!(cancelled_at.elapsed() < PATIENCE);

    // Later calls are not cancelled: through a healed link they succeed.
    proxy.heal();
    let seat = client.checkout("cad", &any_version(), 1).expect("checkout");
    assert_eq!(client.seat_state(&seat.handle), Some(SeatState::Held));
}

#[test]
fn stopping_heartbeats_interrupts_a_stuck_heartbeat() {
    let (_site, server) = serve(CAD3, &["--lease", "3s"]);
    let proxy = proxy::Proxy::new();
    proxy.set_target(&server.addr);
    let client = Client::new(config(std::slice::from_ref(&proxy.addr)));
    let rx = events(&client);
    client.checkout("cad", &any_version(), 1).expect("checkout");
    client.start_heartbeats();
    proxy.blackhole();
    // The next heartbeat (a second later) hangs; after 2 s it says so.
    wait_event(&rx, "Trying", |e| matches!(e, ClientEvent::Trying { .. }));
    let stopping = Instant::now();
    client.stop_heartbeats();
    assert!(stopping.elapsed() < PATIENCE, "io_timeout is 60 s");
}

#[test]
fn close_returns_every_seat() {
    let (_site, server) = serve(CAD3, &[]);
    let client = Client::new(config(std::slice::from_ref(&server.addr)));
    client.start_heartbeats();
    let a = client.checkout("cad", &any_version(), 1).unwrap();
    let b = client.checkout("cad", &any_version(), 1).unwrap();
    assert_eq!(in_use(&server.addr, "cad"), 2);
    client.close().expect("close");
    assert_eq!(in_use(&server.addr, "cad"), 0);
    for seat in [&a, &b] {
        assert_eq!(client.seat_state(&seat.handle), Some(SeatState::Returned));
    }
    assert!(client.held().is_empty());
}

#[test]
fn a_seat_left_to_expire_is_expired_then_lost() {
    let (_site, server) = serve(CAD3, &["--lease", "1s"]);
    let client = Client::new(config(std::slice::from_ref(&server.addr)));
    let rx = events(&client);
    let seat = client.checkout("cad", &any_version(), 1).unwrap();
    assert_eq!(client.seat_state(&seat.handle), Some(SeatState::Held));
    // No heartbeats: the server takes the seat back when the lease ends.
    wait_until(PATIENCE, "the server to expire the seat", || {
        in_use(&server.addr, "cad") == 0
    });
    assert_eq!(client.seat_state(&seat.handle), Some(SeatState::Expired));
    client.heartbeat_all().expect("the server answered");
    let seen = wait_event(&rx, "Lost", |e| matches!(e, ClientEvent::Lost { .. }));
    assert!(
        matches!(seen.last(), Some(ClientEvent::Lost { handle, .. }) if *handle == seat.handle),
        "{seen:?}"
    );
    assert_eq!(client.seat_state(&seat.handle), Some(SeatState::Lost));
    assert!(client.held().is_empty());
    client.forget(&seat.handle);
    assert_eq!(client.seat_state(&seat.handle), None);
}

#[test]
fn a_failover_is_reported_and_the_seat_stays_held() {
    let mut pair = Pair::start(CAD3, FAST);
    let (primary, backup) = (pair.primary_addr(), pair.backup_addr());
    let mut config = config(&[primary.clone(), backup.clone()]);
    config.io_timeout = Duration::from_secs(2);
    config.failover_timeout = Duration::from_secs(20);
    let client = Client::new(config);
    let rx = events(&client);
    let seat = client.checkout("cad", &any_version(), 1).unwrap();
    client.start_heartbeats();
    wait_event(&rx, "first Moved", |e| {
        matches!(e, ClientEvent::Moved { from: None, .. })
    });

    pair.primary.as_mut().unwrap().kill9();
    let seen = wait_event(
        &rx,
        "Reclaimed",
        |e| matches!(e, ClientEvent::Reclaimed { server, .. } if *server == backup),
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, ClientEvent::Disconnected { server, .. } if *server == primary)),
        "{seen:?}"
    );
    assert!(
        seen.contains(&ClientEvent::Moved {
            from: Some(primary.clone()),
            to: backup.clone()
        }),
        "{seen:?}"
    );
    assert_eq!(client.seat_state(&seat.handle), Some(SeatState::Held));
    assert_eq!(in_use(&backup, "cad"), 1);
    client.close().expect("close on the backup");
    assert_eq!(in_use(&backup, "cad"), 0);
}

#[test]
fn a_queued_checkout_given_up_leaves_no_seat_behind() {
    let (_site, server) = serve("FEATURE cad version=1.0 count=1 expires=permanent", &[]);
    let holder = Client::new(config(std::slice::from_ref(&server.addr)));
    let mut waiter_config = config(std::slice::from_ref(&server.addr));
    waiter_config.identity.user = "bob".into();
    let waiter = Client::new(waiter_config);
    for round in 0..20u64 {
        let seat = holder.checkout("cad", &any_version(), 1).unwrap();
        // The seat frees just as the waiter gives up (by timeout or by
        // cancel), so a grant may race the waiter's leaving.
        let at = Duration::from_millis(100 + 7 * round);
        let (holder2, waiter2) = (holder.clone(), waiter.clone());
        let freeing = std::thread::spawn(move || {
            std::thread::sleep(at);
            if round % 2 == 1 {
                waiter2.cancel();
            }
            holder2.checkin(&seat.handle).unwrap();
        });
        let wait = if round % 2 == 0 { at } else { PATIENCE };
        match waiter.checkout_wait("cad", &any_version(), 1, wait) {
            Ok(won) => waiter.checkin(&won.handle).unwrap(),
            Err(ClientError::Timeout | ClientError::Cancelled) => {}
            Err(e) => panic!("round {round}: {e}"),
        }
        freeing.join().unwrap();
        // Nobody waits and nobody holds: the seat is free at once.
        let next = waiter.checkout("cad", &any_version(), 1);
        let next = next.unwrap_or_else(|e| panic!("round {round}: {e}"));
        waiter.checkin(&next.handle).unwrap();
    }
}
