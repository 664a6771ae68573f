//! floatd: a floating-licence server with primary/backup failover.
//!
//! The three binaries (`floatd`, `floatctl`, `floatd-load`) are thin mains
//! over this library. Each module has one concern:
//!
//! - [`licence`]: licence files: parsing, signatures, host ids, search path, pools.
//! - [`ledger`]: the seat ledger, a pure state machine with no I/O.
//! - [`journal`]: durable storage of ledger events: encoding, append, snapshot, replay.
//! - [`report`]: the usage report log.
//! - [`roam`]: roam tokens: format, signing, the offline check.
//! - [`protocol`]: the client line protocol and peer messages: codecs only.
//! - [`server`]: the mio event loop, connections, admin requests.
//! - [`failover`]: the watchdog thread, peer link, role decisions, witness.
//! - [`client`]: the blocking client library.
//! - [`config`]: flags and the TOML config file.
//! - [`net`]: host name resolution that works in the static build.
//! - [`files`]: reading operator-named files without blocking on them.
//! - [`sys`]: the peer secret file and systemd notifications (server and witness).
//! - [`ctl`]: the `floatctl` commands.
//! - [`load`]: the `floatd-load` load generator.
//! - [`build_info`]: what `--version` says.
//! - [`logging`]: log lines for journald (priorities) and terminals (times).
#![forbid(unsafe_code)]

pub mod build_info;
pub mod civil;
pub mod client;
pub mod codes;
pub mod config;
pub mod ctl;
pub mod failover;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod journal;
pub mod ledger;
pub mod licence;
pub mod load;
pub mod logging;
pub mod net;
pub mod protocol;
pub mod report;
pub mod roam;
pub mod server;
pub mod sys;

/// The version of this build of floatd (its library, tools and SDK).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
