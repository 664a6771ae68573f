//! A deterministic simulation of a floatd pair (see tests/simulation.rs).

pub mod client;
pub mod rng;
pub mod server;
pub mod world;

/// Simulated time, in microseconds.
pub type Time = u64;
