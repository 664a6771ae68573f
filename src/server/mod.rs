//! The licence server: start-up, then the mio event loop.
//!
//! - [`event_loop`]: sockets, readiness, timers; owns the connections.
//! - [`conn`] and [`output`]: one connection's buffers and session.
//! - [`core`]: requests to replies; owns the ledger and storage.
//! - [`licences`]: where licences come from (files or the demo).
//! - [`status`], [`admin`]: the status report and admin access.

pub mod admin;
pub mod conn;
pub mod core;
pub mod event_loop;
pub mod licences;
pub mod output;
pub mod status;

use crate::config::{Config, Role};
use crate::journal;
use crate::ledger::{Event, HandleKey, Ledger, Now};
use crate::licence::Side;
use core::{Core, Presence};
use event_loop::{EventLoop, LoopSettings};
use licences::LicenceSource;
use mio::net::TcpListener;
use mio::Poll;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// The client port when neither `--port` nor the licence names one.
pub const DEFAULT_PORT: u16 = 27000;

/// Starts the server and serves until it is shut down.
pub fn run(config: Config) -> Result<(), String> {
    let side = if config.role == Role::Backup {
        Side::Backup
    } else {
        Side::Primary
    };
    let licences = LicenceSource::from_config(&config, side)?;
    let served = licences.load()?;
    let now = Now::current();

    let (state_dir, _lock) = open_state_dir(&config)?;
    let handle_key = load_or_create_handle_key(&state_dir)?;
    let recovered = journal::recover(&state_dir).map_err(|e| e.to_string())?;
    if let Some(cut) = &recovered.cut {
        log::warn!("journal: {cut}");
    }
    let mut ledger = Ledger::new(served.pools.clone(), config.lease, handle_key);
    if let Some(snapshot) = &recovered.snapshot {
        ledger.restore(snapshot, now);
    }
    for record in &recovered.records {
        ledger.apply(record, now);
    }
    // Clients could not heartbeat while the server was down.
    ledger.grant_grace(now);
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
    let presence = Presence {
        role: config.role.as_str().to_string(),
        state: "active".into(),
        server: server_name,
        peer_addr: None,
        active_addr: None,
    };
    let mut core = Core::new(
        ledger,
        journal,
        state_dir.clone(),
        licences,
        served,
        presence,
    );
    if let Some(path) = &config.admin_token_file {
        core.admin_token = Some(admin::read_token(path)?);
    }
    core.admin_token_always = config.admin_token_always;
    core.ledger.commit(Event::Started { at: now.unix }, now);

    let event_loop = EventLoop::new(
        poll,
        listeners,
        core,
        LoopSettings {
            max_connections: config.max_connections,
            idle_timeout: config.idle_timeout,
        },
    )
    .map_err(|e| format!("event loop: {e}"))?;
    announce(local, &state_dir, config.demo);
    event_loop.run()?;
    if config.demo && config.state_dir.is_none() {
        // The demo's seats were never meant to outlive it.
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    Ok(())
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
    let sockaddr = (addr, port)
        .to_socket_addrs()
        .map_err(|e| format!("bind address {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("bind address {addr} resolves to nothing"))?;
    listen(sockaddr).map_err(|e| format!("cannot listen on {sockaddr}: {e}"))
}

/// Connections the kernel queues for `accept` (it caps this at
/// `net.core.somaxconn`, 4096 by default). std and mio listen with 128,
/// which a reconnect storm overflows: 10,000 clients coming back after a
/// failover or restart. Dropped SYNs are retried by the clients' kernels
/// only after 1 s, then 3 s, then 7 s: seconds added to the gap they see.
const LISTEN_BACKLOG: i32 = 4096;

/// `TcpListener::bind` with a deep backlog (see [`LISTEN_BACKLOG`]).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// The state directory in use, and the lock that keeps a second server
/// off it while this one runs.
fn open_state_dir(config: &Config) -> Result<(PathBuf, std::fs::File), String> {
    let dir = match (&config.state_dir, config.demo) {
        (Some(dir), _) => dir.clone(),
        (None, true) => {
            let dir = std::env::temp_dir().join(format!("floatd-demo-{}", std::process::id()));
            log::info!("demo: state in {}", dir.display());
            dir
        }
        (None, false) => default_state_dir(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("state directory {}: {e}", dir.display()))?;
    let lock_path = dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.try_lock().map_err(|_| {
        format!(
            "state directory {} is in use by another floatd (lock held on {})",
            dir.display(),
            lock_path.display()
        )
    })?;
    Ok((dir, lock))
}

/// `$STATE_DIRECTORY` (systemd), else /var/lib/floatd when it can be used,
/// else ./floatd-state.
fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several, ':'-separated; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    let system = PathBuf::from("/var/lib/floatd");
    if std::fs::create_dir_all(&system).is_ok()
        && std::fs::metadata(&system).is_ok_and(|m| !m.permissions().readonly())
        && tempfile_probe(&system)
    {
        return system;
    }
    let local = PathBuf::from("floatd-state");
    log::warn!(
        "no --state-dir and /var/lib/floatd is not writable: using {}",
        local.display()
    );
    local
}

fn tempfile_probe(dir: &Path) -> bool {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
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
            let key = HandleKey::random().map_err(|e| format!("randomness: {e}"))?;
            write_private(&path, key.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes a file readable by its owner only, atomically.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
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
