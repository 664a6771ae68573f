//! Renewing held seats: the library-owned heartbeat thread, and the round
//! it (or an application without the thread) runs.

use super::cancel::{Cancel, Watch};
use super::{session, ClientError, ClientEvent, SeatState, Shared};
use crate::codes::Code;
use crate::protocol::{line, Request};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest the thread sleeps between looks at the seat table.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// The heartbeat thread and the flag that stops it.
pub(crate) struct HeartbeatThread {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl HeartbeatThread {
    /// Stops the thread, interrupting a round in progress, and waits for it.
    pub fn stop(self, cancel: &Cancel) {
        self.stop.store(true, Ordering::SeqCst);
        cancel.wake();
        if self.thread.thread().id() != std::thread::current().id() {
            let _ = self.thread.join();
        }
    }
}

/// Starts the thread. It holds the client weakly, so it ends when the
/// last handle to the client is dropped.
pub(crate) fn spawn(shared: &Arc<Shared>) -> HeartbeatThread {
    let stop = Arc::new(AtomicBool::new(false));
    let weak = Arc::downgrade(shared);
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("floatd-heartbeat".into())
        .spawn(move || run(&weak, &flag))
        .expect("spawn the heartbeat thread");
    HeartbeatThread { stop, thread }
}

fn run(weak: &Weak<Shared>, stop: &AtomicBool) {
    loop {
        let Some(sh) = weak.upgrade() else { return };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let _ = renew(&sh, Some(stop), false);
        let now = Instant::now();
        let next = sh
            .seats()
            .next_due()
            .map_or(now + MAX_SLEEP, |at| at.min(now + MAX_SLEEP));
        let quiet = |_: &str| {};
        let watch = Watch::new(&sh.cancel, Some(stop), &quiet);
        let _ = sh.cancel.sleep(next.saturating_duration_since(now), &watch);
    }
}

/// Heartbeats the seats that are due (or, with `all`, every held seat),
/// then reports seats whose lease ran out. Returns the first failure to
/// reach a server; seats a server refuses are lost.
pub(crate) fn renew(sh: &Shared, stop: Option<&AtomicBool>, all: bool) -> Result<(), ClientError> {
    let started = Instant::now();
    let seats = if all {
        sh.seats().held()
    } else {
        sh.seats().due(started)
    };
    // A failure to reach any server ends the round; a refusal of one seat
    // does not.
    let mut outcome = Ok(());
    let mut denied = None;
    if !seats.is_empty() {
        let notice = |server: &str| {
            sh.emit(ClientEvent::Trying {
                server: server.to_string(),
            })
        };
        let watch = Watch::new(&sh.cancel, stop, &notice);
        let mut session = super::lock(&sh.session);
        // The thread retries soon anyway: one server walk per round is enough.
        let timeout = sh.config.io_timeout.min(sh.config.failover_timeout);
        for seat in seats {
            if !sh.seats().is_held(&seat.handle) {
                continue; // checked in meanwhile
            }
            if outcome.is_err() {
                sh.seats().heartbeat_failed(&seat.handle, Instant::now());
                continue;
            }
            let sent = Instant::now();
            let request = Request::Heartbeat {
                handle: seat.handle.clone(),
            };
            let mut result = session.call(sh, &request, timeout, &watch);
            let unknown = matches!(
                &result,
                Err(ClientError::Denied {
                    code: Some(Code::UnknownHandle),
                    ..
                })
            );
            let lease_runs = matches!(
                sh.seats().state(&seat.handle, sent),
                Some(SeatState::Held | SeatState::Reconnecting)
            );
            if unknown && lease_runs {
                // The server does not know a seat whose lease still runs (it
                // took over without it): reclaim it before giving it up.

                let reclaim = Request::Reclaim {
                    handle: seat.handle.clone(),
                    feature: seat.feature.clone(),
                    version: seat.version,
                    count: seat.count,
                };
                result = session.call(sh, &reclaim, timeout, &watch);
            }
            match result {
                Ok(reply) => {
                    let lease = line::parse(&reply.0)
                        .ok()
                        .and_then(|l| session::lease_of(&l));
                    sh.seats().renewed(&seat.handle, lease, sent);
                }
                Err(ClientError::Denied { code, message, .. }) if session::ends_seat(code) => {
                    // Reclaimed (on a reconnect inside `call`, or above) and
                    // refused: the seat is gone.
                    sh.lose(&seat.handle, &message);
                }
                Err(e) => {
                    log::debug!("heartbeat of {}: {e}", seat.handle);
                    sh.seats().heartbeat_failed(&seat.handle, Instant::now());
                    match e {
                        ClientError::Cancelled => return Err(e),
                        // Trouble with this seat only (the server's, not ours).
                        ClientError::Denied { .. } => denied = denied.or(Some(e)),
                        _ => outcome = Err(e),
                    }
                }
            }
        }
    }
    let expired = sh.seats().newly_expired(Instant::now());
    for handle in expired {
        sh.emit(ClientEvent::Expired { handle });
    }
    match denied {
        Some(e) if outcome.is_ok() => Err(e),
        _ => outcome,
    }
}
