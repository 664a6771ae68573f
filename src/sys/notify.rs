//! systemd notifications from the event loop: `READY=1` once licences are
//! loaded and the ports bound, `WATCHDOG=1` from the loop itself every half
//! `WatchdogSec=` (so a hung loop gets the service restarted), and
//! `STATUS=` lines with role, state and seats in use, sent when they
//! change and at most once a second. Without `NOTIFY_SOCKET` (not run by
//! systemd) every call is a no-op.

use sd_notify::NotifyState;
use std::time::{Duration, Instant};

/// STATUS= is recomputed (and sent if it changed) at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);

pub struct Notifier {
    enabled: bool,
    /// Half the watchdog timeout, when systemd asked for pings.
    ping_every: Option<Duration>,
    last_ping: Instant,
    last_status: String,
    last_status_check: Instant,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` (and `WATCHDOG_PID`).
    pub fn from_env() -> Notifier {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        let ping_every = if enabled {
            sd_notify::watchdog_enabled().map(|t| (t / 2).max(Duration::from_millis(1)))
        } else {
            None
        };
        let now = Instant::now();
        Notifier {
            enabled,
            ping_every,
            last_ping: now,
            last_status: String::new(),
            last_status_check: now,
        }
    }

    /// The watchdog ping interval, if systemd asked for pings.
    pub fn ping_every(&self) -> Option<Duration> {
        self.ping_every
    }

    /// Start-up is finished: the service is ready.
    pub fn ready(&mut self, status: String) {
        if !self.enabled {
            return;
        }
        let mut states = vec![NotifyState::Ready, NotifyState::Status(&status)];
        if self.ping_every.is_some() {
            states.push(NotifyState::Watchdog);
        }
        send(&states);
        self.last_ping = Instant::now();
        self.last_status_check = self.last_ping;
        self.last_status = status;
    }

    /// Called every loop iteration: pings the watchdog when due, and sends
    /// the status when it changed (checked at most once a second).
    pub fn tick(&mut self, now: Instant, status: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        if let Some(every) = self.ping_every {
            if now.saturating_duration_since(self.last_ping) >= every {
                self.last_ping = now;
                send(&[NotifyState::Watchdog]);
            }
        }
        if now.saturating_duration_since(self.last_status_check) >= STATUS_EVERY {
            self.last_status_check = now;
            let text = status();
            if text != self.last_status {
                send(&[NotifyState::Status(&text)]);
                self.last_status = text;
            }
        }
    }

    /// When the loop must wake next for a watchdog ping.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.ping_every.map(|every| self.last_ping + every)
    }

    /// The service is stopping (sent once a shutdown begins).
    pub fn stopping(&mut self) {
        if self.enabled {
            send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
        }
    }

    /// A reread (SIGHUP) began; the status shows it until the next update.
    pub fn status_now(&mut self, text: String) {
        if self.enabled && text != self.last_status {
            send(&[NotifyState::Status(&text)]);
            self.last_status = text;
        }
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::debug!("sd_notify: {e}");
    }
}
