//! Seats on etcd, built the way an infrastructure team would build a
//! licence server on it, and what a checkout+checkin pair costs there:
//!
//! - checkout: a lease (`/v3/lease/grant`, TTL 60 s: the client would
//!   keep it alive while it holds the seat), then one transaction
//!   (`/v3/kv/txn`) that creates the seat's key with that lease only if the
//!   key does not exist yet;
//! - checkin: the lease revoked (`/v3/lease/revoke`), which deletes the key
//!   with it and leaves no lease behind.
//!
//! How the transaction keeps the holders at or below the count: the
//! feature's `count` seats are `count` slot keys under a prefix,
//! `floatd-bench/seats/cad/0` to `.../{count - 1}`. A checkout picks a slot
//! and its transaction puts the slot's key only when `create_revision` of
//! that key is 0 (the key does not exist): the compare etcd's own lock and
//! election recipes (clientv3/concurrency) use to create a key at most
//! once. A slot has at most one holder and there are `count` slots, so the
//! holders never exceed the count, whatever the concurrency; a holder that
//! dies stops renewing its lease, and etcd deletes the key when the lease
//! runs out, freeing the slot. (A counter key that the transaction compares
//! and increments would need a read before each transaction and a retry on
//! every concurrent change, and nothing would decrement it when a holder's
//! lease ran out: a crashed client would keep its seat for ever.) A failed
//! compare, the slot taken, is retried on another slot with the same lease.
//! A client facing a nearly full pool would first list the taken slots (a
//! range read); the bench's pool is nearly empty (1,000,000 seats, at most
//! one held per client), like floatd's in the rows beside it, so the first
//! slot tried is free.
//!
//! Every request is a raft write, fsynced to the write-ahead log of a
//! majority of the members before it is answered: the durability floatd
//! gives with journal fsync and a backup in sync. Each client is a thread
//! with one keep-alive connection, to member `n % 3`, as etcd's client
//! spreads its connections over the endpoints.

use crate::etcd::Cluster;
use crate::etcd_http::{b64, Conn};
use floatd::load::procfs;
use std::time::{Duration, Instant};

/// Seats in the etcd pool, as in floatd's bench licence.
const COUNT: u64 = crate::SEATS;
const LEASE_TTL_SECS: u64 = 60;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Checkout+checkin pairs by `clients` clients over one run.
#[derive(Clone, Debug)]
pub struct Run {
    pub pairs_per_sec: f64,
    /// Latency of a whole pair (grant, txn, revoke), ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Requests that failed (the pair is not counted).
    pub errors: u64,
    /// Transactions that found their slot taken and tried another.
    pub retries: u64,
    /// CPU time of the three members over the run, per pair.
    pub cpu_us_per_pair: Option<f64>,
}

/// What one client thread did.
#[derive(Default)]
struct Tally {
    pair_us: Vec<u64>,
    errors: u64,
    retries: u64,
}

/// `clients` clients check seats out and in for `secs`.
pub fn run(cluster: &Cluster, clients: usize, secs: f64) -> Run {
    let cpu = || -> Option<f64> { cluster.pids().into_iter().map(procfs::cpu_secs).sum() };
    let cpu_before = cpu();
    let began = Instant::now();
    let stop = began + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..clients)
        .map(|n| {
            let port = cluster.client_ports[n % cluster.client_ports.len()];
            std::thread::spawn(move || client(n, port, stop))
        })
        .collect();
    let mut all = Tally::default();
    for t in threads {
        let tally = t.join().unwrap_or_else(|_| Tally {
            errors: 1,
            ..Tally::default()
        });
        all.pair_us.extend(tally.pair_us);
        all.errors += tally.errors;
        all.retries += tally.retries;
    }
    let pairs = all.pair_us.len() as f64;
    all.pair_us.sort_unstable();
    let pct = |p: f64| {
        let i = ((all.pair_us.len() as f64 * p) as usize).min(all.pair_us.len().saturating_sub(1));
        all.pair_us.get(i).map_or(0.0, |&us| us as f64 / 1000.0)
    };
    Run {
        pairs_per_sec: pairs / secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors: all.errors,
        retries: all.retries,
        cpu_us_per_pair: match (cpu_before, cpu()) {
            (Some(a), Some(b)) if pairs > 0.0 => Some((b - a) * 1e6 / pairs),
            _ => None,
        },
    }
}

/// One client: pairs until `stop`; a pair that fails is counted as an
/// error and the connection opened again.
fn client(n: usize, port: u16, stop: Instant) -> Tally {
    let mut tally = Tally::default();
    // xorshift64, a different sequence per client: which slot to try.
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((n as u64 + 1) << 17);
    let mut next_slot = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % COUNT
    };
    let mut conn = None;
    while Instant::now() < stop {
        let c = match conn.take().map_or_else(|| Conn::open(port, TIMEOUT), Ok) {
            Ok(c) => conn.insert(c),
            Err(_) => {
                tally.errors += 1;
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let t = Instant::now();
        match pair(c, &format!("bench-{n}"), &mut next_slot, &mut tally.retries) {
            Ok(()) if Instant::now() <= stop => tally.pair_us.push(t.elapsed().as_micros() as u64),
            Ok(()) => {}
            Err(why) => {
                if tally.errors == 0 {
                    eprintln!("floatd bench: etcd client {n}: {why}");
                }
                tally.errors += 1;
                conn = None;
            }
        }
    }
    tally
}

/// One checkout (lease, then the slot's key created with it) and its
/// checkin (the lease revoked).
fn pair(
    conn: &mut Conn,
    holder: &str,
    next_slot: &mut impl FnMut() -> u64,
    retries: &mut u64,
) -> Result<(), String> {
    let grant = conn.post(
        "/v3/lease/grant",
        &format!("{{\"TTL\":\"{LEASE_TTL_SECS}\"}}"),
    )?;
    let lease = json(&grant)?["ID"]
        .as_str()
        .ok_or_else(|| format!("no lease ID in {grant}"))?
        .to_string();
    let mut granted = false;
    for _ in 0..8 {
        let key = b64(&format!("floatd-bench/seats/cad/{}", next_slot()));
        let txn = format!(
            "{{\"compare\":[{{\"key\":\"{key}\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"}}],\
             \"success\":[{{\"request_put\":{{\"key\":\"{key}\",\"value\":\"{}\",\"lease\":\"{lease}\"}}}}]}}",
            b64(holder)
        );
        if json(&conn.post("/v3/kv/txn", &txn)?)?["succeeded"] == true {
            granted = true;
            break;
        }
        *retries += 1;
    }
    conn.post("/v3/lease/revoke", &format!("{{\"ID\":\"{lease}\"}}"))?;
    if granted {
        Ok(())
    } else {
        Err("eight slots in a row were taken".into())
    }
}

fn json(body: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(body).map_err(|e| format!("{e}: {body}"))
}
