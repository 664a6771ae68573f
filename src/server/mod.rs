//! The licence server: start-up, then the mio event loop.
//!
//! - [`event_loop`]: sockets, readiness, timers; owns the connections.
//! - [`conn`] and [`output`]: one connection's buffers and session.
//! - [`core`]: requests to replies; owns the ledger and storage.
//! - [`licences`]: where licences come from (files or the demo).
//! - [`status`], [`admin`]: the status report and admin access.
//! - [`roam`]: roam requests and the pair's roam key.
//! - [`http`], [`metrics`]: the status page and Prometheus metrics port.
//! - [`state_dir`]: the state directory: where, locked, private.

pub mod admin;
pub mod conn;
pub mod core;
pub mod event_loop;
pub mod gate;
pub mod history;
pub mod http;
pub mod http_guard;
pub mod licences;
pub mod metrics;
pub mod options;
pub mod output;
pub mod pairing;
pub mod peer_setting;
pub mod release;
mod requests;
pub mod roam;
pub mod state_dir;
pub mod status;

use crate::config::{Config, Role};
use crate::failover::role::Start;
use crate::failover::{watchdog, PairSettings};
use crate::journal;
use crate::ledger::{Event, HandleKey, Ledger, Now};
use crate::licence::Side;
use crate::sys::read_secret;
use core::Core;
use event_loop::{EventLoop, LoopSettings};
use licences::LicenceSource;
use mio::net::TcpListener;
use mio::Poll;
use options::OptionsSource;
use pairing::{PairLink, Presence};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

/// The client port when neither `--port` nor the licence names one.
pub const DEFAULT_PORT: u16 = 27000;

pub use crate::sys::{listen_error, RunError, EXIT_CONFIG};

/// Starts the server and serves until it is shut down.
pub fn run(config: Config) -> Result<(), RunError> {
    if config.role == Role::Witness {
        return crate::failover::witness::run(&config);
    }
    let side = if config.role == Role::Backup {
        Side::Backup
    } else {
        Side::Primary
    };
    let licences = LicenceSource::from_config(&config, side).map_err(RunError::Config)?;
    let served = licences.load().map_err(RunError::Config)?;
    let mut options = OptionsSource::from_config(&config);
    let policy = options.load(&served).map_err(RunError::Config)?;
    let now = Now::current();

    // Held to the end: the lock, and (demo) the removal of its directory.
    let state = state_dir::open(&config)?;
    let state_dir = state.path.clone();
    // A pair shares its handle key (derived from the peer secret), so each
    // server can verify the other's handles; a lone server keeps its own.
    let handle_key = match (&config.role, &config.peer_secret_file) {
        (Role::Primary | Role::Backup, Some(path)) => {
            pair_handle_key(&read_secret(path).map_err(RunError::Config)?)
        }
        _ => load_or_create_handle_key(&state_dir)?,
    };
    let recovered = journal::recover(&state_dir).map_err(|e| e.to_string())?;
    // A torn tail held nothing any client was told of; a cut anywhere
    // else may have lost records of seats that are out.
    let lost_records = recovered
        .cut
        .as_ref()
        .is_some_and(|c| c.may_have_lost_records());
    if let Some(cut) = &recovered.cut {
        if lost_records {
            log::error!(
                "journal: {cut}; seats given out may have been lost with it: reclaims only for one lease before new grants"
            );
        } else {
            log::warn!("journal: {cut}");
        }
    }
    match crate::report::catch_up(&state_dir, &recovered.records) {
        Ok(0) => {}
        Ok(n) => log::info!("report log: wrote {n} line(s) a crash had kept from it"),
        Err(e) => log::error!("report log: catching up after a crash failed: {e}"),
    }
    let mut ledger = Ledger::new(
        served.pools.clone(),
        config.lease,
        handle_key,
        Box::new(crate::sys::OsEntropy::new()),
    );
    ledger.set_options(policy);
    ledger.set_client_limit(Some(config.max_checkouts_per_client).filter(|&n| n > 0));
    ledger.set_roam_day(config.roam_day.as_secs());
    ledger.replay(recovered.snapshot.as_ref(), &recovered.records, now);
    if ledger.seat_count() > 0 {
        log::info!(
            "restored {} seat(s) from {} (journal at {})",
            ledger.seat_count(),
            state_dir.display(),
            ledger.last_seq()
        );
    }

    let port = config.port.or(served.port).unwrap_or(DEFAULT_PORT);
    let mut listeners = vec![bind(&config.bind, port)?];
    let local = listeners[0]
        .local_addr()
        .map_err(|e| format!("listening socket: {e}"))?;
    for extra in &served.extra_ports {
        match bind(&config.bind, *extra) {
            Ok(l) => {
                log::info!("also listening on port {extra} (named by a later licence file)");
                listeners.push(l);
            }
            Err(e) => log::warn!("port {extra} from a later licence file: {e}"),
        }
    }

    let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let waker = EventLoop::waker(&poll).map_err(|e| format!("waker: {e}"))?;
    let waker_for_watchdog = waker.clone();
    let journal = journal::Journal::start(
        &state_dir,
        recovered.last_seq(),
        config.durability,
        Box::new(move || {
            let _ = waker.wake();
        }),
    )
    .map_err(|e| format!("journal in {}: {e}", state_dir.display()))?;
    let server_name = served
        .files
        .first()
        .map(|f| match side {
            Side::Primary => f.server.name.clone(),
            Side::Backup => f
                .failover
                .as_ref()
                .map_or_else(|| f.server.name.clone(), |l| l.name.clone()),
        })
        .unwrap_or_default();
    // The other server's client address from the licence, until it says.
    let peer_client_addr = served.files.first().and_then(|f| {
        let line = match side {
            Side::Primary => f.failover.as_ref()?,
            Side::Backup => &f.server,
        };
        line.port.map(|port| format!("{}:{port}", line.name))
    });
    let presence = Presence {
        role: config.role.as_str().to_string(),
        state: "active".into(),
        epoch: ledger.epoch(),
        server: server_name,
        peer_addr: None,
        active_addr: None,
    };
    let start_mark = crate::protocol::peer::HistoryMark {
        seq: ledger.last_seq(),
        epoch: ledger.last_epoch(),
    };
    let start_epoch = ledger.last_epoch();
    let mut core = Core::new(
        ledger,
        Box::new(journal),
        state_dir.clone(),
        licences,
        served,
        presence,
    );
    if let Some(path) = &config.admin_token_file {
        core.admin_token = Some(admin::read_token(path).map_err(RunError::Config)?);
    }
    core.admin_token_always = config.admin_token_always;
    core.options = options;
    let roam_wrapping = match (&config.role, &config.peer_secret_file) {
        (Role::Primary | Role::Backup, Some(path)) => {
            Some(crate::roam::key::wrapping_key(&read_secret(path)?))
        }
        _ => None,
    };
    core.roam = roam::RoamDesk::load(&state_dir, roam_wrapping)?;
    if matches!(config.role, Role::Primary | Role::Backup) {
        let (mut settings, listener) = pair_settings(&config, &local)?;
        settings.peer_client_addr = peer_client_addr;
        let peer_addr = listener
            .local_addr()
            .map_err(|e| format!("peer port: {e}"))?;
        let (to_watchdog, from_loop) = crossbeam_channel::unbounded();
        let (to_loop, from_watchdog) = crossbeam_channel::unbounded();
        core.presence.peer_addr = settings.peer_client_addr.clone();
        core.peer_setting = peer_setting::PeerSetting::from_config(&config);
        core.join_pair(
            PairLink::new(to_watchdog, from_watchdog),
            config.witness.is_some(),
            config.takeover_after,
        );
        watchdog::spawn(
            settings,
            listener,
            Start {
                last: start_mark,
                epoch: start_epoch,
                digest: core.digest(),
                needs_recovery: lost_records,
                incarnation: crate::sys::random_key()
                    .map(|k| u64::from_le_bytes(k[..8].try_into().expect("8 bytes")))
                    .map_err(|e| format!("randomness: {e}"))?,
            },
            watchdog::LoopPort {
                to_loop,
                from_loop,
                waker: waker_for_watchdog,
            },
        )
        .map_err(|e| format!("watchdog thread: {e}"))?;
        println!("floatd peer link on {peer_addr}");
    } else {
        if lost_records {
            core.recover_until(now.mono + config.lease);
        }
        core.ledger.commit(Event::Started { at: now.unix }, now);
    }

    let http = match &config.http {
        Some(addr) => Some(bind_http(addr)?),
        None => None,
    };
    let mut event_loop = EventLoop::new(
        poll,
        listeners,
        core,
        LoopSettings {
            max_connections: connection_cap(config.max_connections),
            idle_timeout: config.idle_timeout,
        },
    )
    .map_err(|e| format!("event loop: {e}"))?;
    if let Some((listener, addr)) = http {
        event_loop
            .serve_http(listener)
            .map_err(|e| format!("http port: {e}"))?;
        log::info!("status page on http://{addr}/ (and /status.json, /metrics)");
        println!("floatd http on {addr}");
    }
    announce(local, &state_dir, config.demo);
    event_loop.run()?;
    drop(state);
    Ok(())
}

/// The pair's settings and the bound peer listener.
fn pair_settings(
    config: &Config,
    local: &SocketAddr,
) -> Result<(PairSettings, std::net::TcpListener), RunError> {
    let config_error = |e: &str| RunError::Config(e.to_string());
    let secret_path = config
        .peer_secret_file
        .as_ref()
        .ok_or_else(|| config_error("a failover pair needs --peer-secret-file"))?;
    let secret = read_secret(secret_path).map_err(RunError::Config)?;
    let peer = config
        .peer
        .clone()
        .ok_or_else(|| config_error("a failover pair needs --peer HOST:PORT"))?;
    let listen = match &config.peer_listen {
        Some(addr) => addr.clone(),
        None => format!("{}:{}", config.bind, local.port().wrapping_add(1)),
    };
    let listener = crate::net::resolve(&listen)
        .and_then(|addrs| std::net::TcpListener::bind(addrs.as_slice()))
        .map_err(|e| listen_error("for the other server", &listen, &e, "--peer-listen"))?;
    Ok((
        PairSettings {
            role: config.role,
            peer,
            secret,
            client_addr: advertised_addr(config, local),
            peer_client_addr: None,
            ping_interval: config.ping_interval,
            takeover_after: config.takeover_after,
            sync_timeout: config.sync_timeout,
            lease: config.lease,
            backup_max: config.backup_max,
            backup_lost_after: config.backup_lost_after,
            witness: config.witness.clone(),
            fence_after: config.fence_after,
        },
        listener,
    ))
}

/// The address clients should use for this server.
fn advertised_addr(config: &Config, local: &SocketAddr) -> String {
    if let Some(a) = &config.advertise {
        return a.clone();
    }
    if local.ip().is_unspecified() {
        let host = crate::client::Identity::from_environment().host;
        return format!("{host}:{}", local.port());
    }
    local.to_string()
}

/// File descriptors kept for everything but client connections: std
/// streams, poll, waker, signals, listeners, journal, snapshot, report log,
/// lock, peer link, and the one that refuses a connection past the cap.
const RESERVED_FDS: usize = 64;

/// The connection cap that fits this process's open-file limit. Past the
/// limit, accept fails and clients wait with no answer; under the cap they
/// get `ERR BUSY` at once.
fn connection_cap(configured: usize) -> usize {
    let Some(limit) = open_file_limit() else {
        return configured;
    };
    let room = limit
        .saturating_sub(RESERVED_FDS + event_loop::ADMIN_SLOTS)
        .max(1);
    if configured <= room {
        return configured;
    }
    log::warn!(
        "max_connections {configured} does not fit the open-file limit {limit}: \
         serving at most {room} connections; raise the limit (LimitNOFILE= in the \
         systemd unit, ulimit -n) to serve more"
    );
    room
}

/// The soft limit on open files (RLIMIT_NOFILE), where /proc tells it.
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Tells the operator (and scripts and tests, on stdout) where we listen.
fn announce(local: SocketAddr, state_dir: &Path, demo: bool) {
    log::info!("serving on {local}, state in {}", state_dir.display());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "floatd listening on {local}");
    if demo {
        let server = if local.ip().is_unspecified() {
            format!("127.0.0.1:{}", local.port())
        } else {
            local.to_string()
        };
        let _ = writeln!(
            out,
            "\nDemo licence served (features cad, viewer, solver, plotter). In another terminal try:\n\
             \n  floatctl --server {server} checkout cad --hold 30\n  floatctl --server {server} status\n\
             \nor by hand: nc {} {}  then type  HELLO proto=1 client=c1 user=me host=here  and  CHECKOUT cad\n\
             Stop with Ctrl-C.",
            server.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h),
            local.port()
        );
    }
    let _ = out.flush();
}

fn bind(addr: &str, port: u16) -> Result<TcpListener, String> {
    let sockaddr = crate::net::resolve_host(addr, port)
        .map_err(|e| format!("bind address {addr}: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("bind address {addr} resolves to nothing"))?;
    listen(sockaddr, LISTEN_BACKLOG)
        .map_err(|e| listen_error("for clients", &sockaddr.to_string(), &e, "--port"))
}

/// Binds the status page and metrics port (`--http ADDR:PORT`).
fn bind_http(addr: &str) -> Result<(TcpListener, SocketAddr), String> {
    let sockaddr = crate::net::resolve(addr)
        .map_err(|e| format!("--http {addr}: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| format!("--http {addr} resolves to nothing"))?;
    let listener =
        listen(sockaddr, 128).map_err(|e| listen_error("for http", addr, &e, "--http"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("http port: {e}"))?;
    Ok((listener, local))
}

/// Connections the kernel may hold completed for us before we accept them.
/// std and mio use 128: a burst of reconnects (every client of a failed
/// server at once) overflows that, and each dropped SYN costs its client a
/// retransmit of 1 s, then 3 s, 7 s... The kernel caps it at somaxconn.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listener like `TcpListener::bind` (address reuse on), but
/// with our backlog.
fn listen(sockaddr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(sockaddr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&sockaddr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// The key that makes handles self-certifying, kept in the state directory
/// so handles stay valid across restarts.
fn load_or_create_handle_key(dir: &Path) -> Result<HandleKey, String> {
    let path = dir.join("handle.key");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("{}: expected 32 bytes", path.display()))?;
            Ok(HandleKey::from_bytes(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = HandleKey::from_bytes(
                crate::sys::random_key().map_err(|e| format!("randomness: {e}"))?,
            );
            write_private(&path, key.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The handle key of a pair: an HMAC of a fixed label under the peer
/// secret, so both servers hold it and it never travels.
fn pair_handle_key(secret: &[u8]) -> HandleKey {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    mac.update(b"floatd-handle-key-v1");
    HandleKey::from_bytes(mac.finalize().into_bytes().into())
}

/// Writes a file readable by its owner only, atomically.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
