//! The status report: what `STATUS`, `floatctl status --json` and the
//! HTTP `/status.json` show. One type, serialised by the server and read
//! back by the tools, so both sides agree on every field.
//!
//! Anybody may ask for it (STATUS needs no HELLO), so it holds nothing
//! secret: seats appear under their public seat id, never their handle.
//! Fields are documented in docs/OPERATIONS.md; later releases add fields
//! and never rename or remove one.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// This server's name from its licence line.
    pub server: String,
    /// `primary`, `backup` or `standalone`.
    pub role: String,
    /// `active`, `ready`, `syncing`, `recovering` or `inaccessible`.
    pub state: String,
    pub epoch: u64,
    /// Seconds since the server started.
    pub uptime_secs: u64,
    pub lease_secs: u64,
    pub connections: usize,
    /// The last journal sequence number.
    pub seq: u64,
    pub features: Vec<FeatureStatus>,
    /// Both servers of a failover pair (this one first); empty standalone.
    #[serde(default)]
    pub servers: Vec<ServerStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<WitnessStatus>,
    /// Problems an operator should see (licence/option digest mismatch, a
    /// lost backup, a journal failure).
    #[serde(default)]
    pub alerts: Vec<String>,
}

/// One pool of a feature.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureStatus {
    pub name: String,
    pub version: String,
    /// Seats in the pool; `None` when uncounted.
    pub count: Option<u64>,
    pub in_use: u64,
    pub expires: String,
    /// Days of service left, counting today; `None` when permanent.
    #[serde(default)]
    pub days_left: Option<i64>,
    pub share: String,
    /// Checkouts waiting for this feature (shared by its pools).
    pub queue: usize,
    /// The longest-held seats, at most a fixed number (the report's size
    /// is bounded whatever the number of seats out).
    pub holders: Vec<Holder>,
    /// Holders (checkouts) of the pool not listed in `holders`.
    #[serde(default)]
    pub more_holders: u64,
    /// Seats of the pool out roaming (counted in `in_use` too).
    #[serde(default)]
    pub roaming: u64,
}

/// One checkout holding seats of a pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// The seat's public id (`floatctl remove ID`); the handle stays secret.
    pub seat: String,
    pub user: String,
    pub host: String,
    pub client: String,
    pub count: u32,
    /// The version the client asked for (`0.0`: any).
    #[serde(default)]
    pub version: String,
    /// When the seat was granted, Unix time in seconds (by wall clock).
    #[serde(default)]
    pub granted_at: u64,
    /// Seconds since the seat was granted (by wall clock).
    pub age_secs: u64,
    /// Seconds until the seat returns unless renewed.
    pub returns_in_secs: u64,
    /// Set when the seat roams: where to and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roam: Option<RoamStatus>,
}

/// A roaming seat: the machine it roams to and its dates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoamStatus {
    pub hostid: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`: when the roam began and when it ends.
    pub from: String,
    pub until: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Where it listens for clients.
    pub addr: String,
    pub role: String,
    pub state: String,
    pub epoch: u64,
    /// Milliseconds since this server last heard from it; `None` for itself
    /// or when never heard.
    #[serde(default)]
    pub last_contact_ms: Option<u64>,
    /// Journal records it has not acknowledged yet.
    #[serde(default)]
    pub lag: Option<u64>,
    /// Round trip to it over the peer link, in milliseconds.
    #[serde(default)]
    pub rtt_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WitnessStatus {
    pub addr: String,
    /// `reachable` or `inaccessible`.
    pub state: String,
    /// Which server the witness records as active (`primary`, `backup`, or empty).
    pub active: String,
    pub epoch: u64,
    /// The standby's "stale since entry N" record, if any.
    #[serde(default)]
    pub stale_since: Option<u64>,
}
