//! Deterministic simulation of a primary, a backup, a witness and clients:
//! the real role machines, request handling, ledgers and witness, with a
//! simulated network, clock and disks, all from one seed. Every event is
//! checked against the promise:
//!
//! - witness mode: never more seats held than the count (a seat counts
//!   from the moment its grant reply arrives until its checkin is sent or
//!   its lease has run out at the client), and never two servers that may
//!   grant at once;
//! - two-server mode: never more than twice the count (docs/FAILOVER.md);
//! - every seat a client was told it holds is honoured by whichever server
//!   is active until it is checked in or its lease ends;
//! - once every fault healed and every client returned its seats, one
//!   server is active and neither counts a seat.
//!
//! `cargo test --test simulation` runs 10,000 seeds (`FLOATD_SIM_SEEDS=N`
//! for more, `FLOATD_SIM_FIRST=K` to start elsewhere); `FLOATD_SIM_SEED=N`
//! replays one seed and prints its whole trace. A failing seed prints its
//! trace and becomes a regression in `REGRESSIONS`.

mod sim;

use sim::rng::Rng;
use sim::world::{Config, Fault, Wire, World};
use sim::Time;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const S: Time = 1_000_000;
const MS: Time = 1_000;

/// Seeds that once broke an invariant, kept so they never do again.
const REGRESSIONS: &[u64] = &[
    7, 37, 40, 48, 54, 282, 1790, 3213, 5911, 9788, 13798, 15528, 18738, 37657, 40275, 47701,
    49370, 67538, 107656, 27958, 846, 13936, 14626, 33061, 60380, 86179,
];

/// The run a seed stands for: the mode, the pool, the clients and the faults.
fn scenario(seed: u64) -> Config {
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9) ^ 0xF10A7D);
    let witness = rng.chance(0.5);
    let count = rng.between(2, 4) as u32;
    let clients = rng.between(count as u64 + 1, count as u64 + 4) as usize;
    let duration = 10 * S;
    let mut faults = Vec::new();
    for _ in 0..rng.between(1, 3) {
        let at = rng.between(S, duration - S);
        let server = rng.below(2) as usize;
        let wires = [
            Wire::Pair,
            Wire::Witness(0),
            Wire::Witness(1),
            Wire::Clients(0),
            Wire::Clients(1),
        ];
        let wire = wires[rng.below(if witness { 5 } else { 1 }) as usize];
        let wire = if !witness && rng.chance(0.4) {
            [Wire::Clients(0), Wire::Clients(1)][rng.below(2) as usize]
        } else {
            wire
        };
        let fault = match rng.below(if witness { 8 } else { 6 }) {
            0 => Fault::Kill(server, rng.between(200 * MS, 4 * S)),
            1 => Fault::Freeze(server, rng.between(200 * MS, 6 * S)),
            2 => Fault::Cut(wire, rng.between(100 * MS, 5 * S)),
            3 => Fault::Firewall(server, rng.between(100 * MS, 5 * S)),
            4 => Fault::Slow(wire, rng.between(50 * MS, 400 * MS), rng.between(S, 4 * S)),
            5 => {
                if rng.chance(0.3) {
                    Fault::DiskFails(server)
                } else {
                    Fault::Freeze(server, rng.between(200 * MS, 3 * S))
                }
            }
            6 => Fault::KillWitness(rng.between(200 * MS, 4 * S)),
            _ => Fault::FreezeWitness(rng.between(200 * MS, 5 * S)),
        };
        faults.push((at, fault));
    }
    Config {
        witness,
        count,
        clients,
        duration,
        quiesce: 10 * S,
        faults,
    }
}

fn describe(seed: u64) -> String {
    let c = scenario(seed);
    format!(
        "seed {seed}: {} mode, count {}, {} clients, faults {:?}",
        if c.witness { "witness" } else { "two-server" },
        c.count,
        c.clients,
        c.faults
    )
}

/// Runs one seed; on a violation, replays it with the trace.
fn check_seed(seed: u64) -> Result<(), String> {
    let out = World::new(seed, scenario(seed), false).run();
    if out.violations.is_empty() {
        return Ok(());
    }
    let traced = World::new(seed, scenario(seed), true).run();
    let tail: Vec<&String> = traced.trace.iter().rev().take(400).rev().collect();
    Err(format!(
        "{}\n{}\n--- last {} events of the trace (replay: FLOATD_SIM_SEED={seed} cargo test --test simulation -- --nocapture) ---\n{}",
        describe(seed),
        out.violations.join("\n"),
        tail.len(),
        tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    ))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 54] {
        let first = World::new(seed, scenario(seed), true).run();
        let again = World::new(seed, scenario(seed), true).run();
        assert!(first.trace.len() > 100, "seed {seed}: a short trace");
        assert_eq!(first.trace, again.trace, "seed {seed} did not replay");
    }
}

#[test]
fn regressions_stay_fixed() {
    for &seed in REGRESSIONS {
        if let Err(e) = check_seed(seed) {
            panic!("{e}");
        }
    }
}

#[test]
fn seeds_keep_every_invariant() {
    if let Some(seed) = env_u64("FLOATD_SIM_SEED") {
        // The servers' own log lines, between the trace's (RUST_LOG=info).
        let _ = env_logger::builder().is_test(true).try_init();
        let out = World::new(seed, scenario(seed), true).run();
        println!("{} ({} events)", describe(seed), out.events);
        for line in &out.trace {
            println!("{line}");
        }
        assert!(out.violations.is_empty(), "{:?}", out.violations);
        return;
    }
    let seeds = env_u64("FLOATD_SIM_SEEDS").unwrap_or(10_000);
    let first = env_u64("FLOATD_SIM_FIRST").unwrap_or(0);
    let next = AtomicU64::new(first);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let done = AtomicU64::new(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= first + seeds || failure.lock().unwrap().is_some() {
                    return;
                }
                if let Err(e) = check_seed(seed) {
                    failure.lock().unwrap().get_or_insert(e);
                    return;
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    if let Some(e) = failure.into_inner().unwrap() {
        panic!("{e}");
    }
    println!(
        "{} seeds from {first} kept every invariant in {:.1}s",
        done.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );
}
