//! One simulated server: the real role machine and the real request
//! handling ([`floatd::server::core::Core`]) on an in-memory journal, with
//! an event loop and a watchdog emulated by the world, not threads.

use super::Time;
use crossbeam_channel::{Receiver, Sender};
use floatd::config::Role;
use floatd::failover::role::{RoleMachine, Start};
use floatd::failover::{FromWatchdog, PairSettings, ToWatchdog};
use floatd::journal::MemJournal;
use floatd::ledger::{HandleKey, Ledger, Now, SeededEntropy};
use floatd::licence::{Count, Expiry, Pool, PoolKey, Served, Share, Side, Version};
use floatd::server::conn::ClientState;
use floatd::server::core::Core;
use floatd::server::licences::LicenceSource;
use floatd::server::output::Output;
use floatd::server::pairing::{PairLink, Presence};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The pair's timings in the simulation.
pub const PING: Duration = Duration::from_millis(100);
pub const TAKEOVER: Duration = Duration::from_secs(1);
pub const LEASE: Duration = Duration::from_secs(3);

pub fn settings(role: Role, witness: bool) -> PairSettings {
    let me = if role == Role::Primary { 0 } else { 1 };
    PairSettings {
        role,
        peer: format!("s{}:2", 1 - me),
        secret: b"simulated-peer-secret".to_vec(),
        client_addr: format!("s{me}:1"),
        peer_client_addr: Some(format!("s{}:1", 1 - me)),
        ping_interval: PING,
        takeover_after: TAKEOVER,
        sync_timeout: Duration::from_millis(250),
        lease: LEASE,
        backup_max: Duration::from_secs(86_400),
        backup_lost_after: Duration::from_secs(86_400),
        witness: witness.then(|| "w:2".to_string()),
        fence_after: Duration::from_millis(600),
    }
}

/// The licence the simulated pair serves: `cad`, `count` seats.
pub fn served(count: u32) -> Served {
    Served {
        pools: vec![Pool {
            key: PoolKey {
                feature: "cad".into(),
                version: Version::parse("1.0").expect("version"),
                expiry: Expiry::Permanent,
                share: Share::None,
            },
            count: Count::Seats(count),
            min_checkout_secs: 0,
            roam: Vec::new(),
        }],
        files: Vec::new(),
        port: None,
        extra_ports: Vec::new(),
        expiring: Vec::new(),
        problems: Vec::new(),
        skipped: Default::default(),
    }
}

/// A client connection as the server holds it.
pub struct SimConn {
    pub client: usize,
    pub state: ClientState,
    pub output: Output,
    pub inbox: VecDeque<String>,
}

/// A running server process.
pub struct Live {
    pub machine: RoleMachine,
    pub core: Core,
    /// Core to watchdog.
    pub from_loop: Receiver<ToWatchdog>,
    /// Watchdog to core.
    pub to_loop: Sender<FromWatchdog>,
    pub conns: BTreeMap<u64, SimConn>,
}

impl Live {
    /// Starts a server from what its journal holds.
    pub fn start(
        role: Role,
        witness: bool,
        count: u32,
        journal: &MemJournal,
        entropy_seed: u64,
        now: Instant,
        unix: u64,
    ) -> Live {
        let served = served(count);
        let mut ledger = Ledger::new(
            served.pools.clone(),
            LEASE,
            HandleKey::from_bytes([42; 32]),
            Box::new(SeededEntropy::new(entropy_seed)),
        );
        let (snapshot, records) = journal.recovered();
        let at = Now { mono: now, unix };
        ledger.replay(snapshot.as_ref(), &records, at);
        let presence = Presence {
            role: role.as_str().into(),
            state: "starting".into(),
            epoch: ledger.epoch(),
            server: role.as_str().into(),
            peer_addr: None,
            active_addr: None,
        };
        let start = Start {
            last: floatd::protocol::peer::HistoryMark {
                seq: ledger.last_seq(),
                epoch: ledger.last_epoch(),
            },
            epoch: ledger.last_epoch(),
            digest: String::new(),
            needs_recovery: false,
            incarnation: entropy_seed,
        };
        let side = if role == Role::Primary {
            Side::Primary
        } else {
            Side::Backup
        };
        let licences = LicenceSource::Demo {
            host: floatd::licence::HostIds::default(),
            side,
        };
        let mut core = Core::new(
            ledger,
            Box::new(journal.clone()),
            std::path::PathBuf::from("/nonexistent"),
            licences,
            served,
            presence,
        );
        let (to_wd, from_loop) = crossbeam_channel::unbounded();
        let (to_loop, from_wd) = crossbeam_channel::unbounded();
        core.join_pair(PairLink::new(to_wd, from_wd), witness, TAKEOVER);
        let mut start = start;
        start.digest = core.digest();
        Live {
            machine: RoleMachine::new(settings(role, witness), start, now),
            core,
            from_loop,
            to_loop,
            conns: BTreeMap::new(),
        }
    }
}

/// A server slot: its disk survives crashes, its process may not.
pub struct Server {
    pub role: Role,
    /// Its clock runs at this rate against simulated time.
    pub rate: f64,
    pub journal: MemJournal,
    pub live: Option<Live>,
    pub frozen: bool,
    pub starts: u64,
    /// When its process last started (simulated time).
    pub started_at: Time,
    pub sync_due: bool,
    pub loop_due: bool,
}

impl Server {
    pub fn new(role: Role, rate: f64) -> Server {
        Server {
            role,
            rate,
            journal: MemJournal::new(),
            live: None,
            frozen: false,
            starts: 0,
            started_at: 0,

            sync_due: false,
            loop_due: false,
        }
    }

    /// Whether the process runs (up and not frozen).
    pub fn running(&self) -> bool {
        self.live.is_some() && !self.frozen
    }
}

/// The server's clock at simulated time `t`.
pub fn clock(base: Instant, rate: f64, t: Time) -> Instant {
    base + Duration::from_micros((t as f64 * rate) as u64)
}
