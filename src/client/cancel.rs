//! Interrupting a client's blocking calls from another thread, and noticing
//! calls that take long.
//!
//! Every wait of a blocking call (connecting, waiting for a reply, backing
//! off between rounds of the server list) goes through a [`Watch`]: it
//! returns early when the client is cancelled, or when the thread the call
//! belongs to is told to stop, and it names the server being tried once the
//! call has waited [`NOTICE_AFTER`].

use super::ClientError;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long a call waits before it says which server it is still trying.
pub const NOTICE_AFTER: Duration = Duration::from_secs(2);

/// The cancellation state of one client: a generation that every
/// [`Client::cancel`](super::Client::cancel) bumps, and the wakers of the
/// connections open now, so a call blocked on a socket wakes at once.
#[derive(Default)]
pub(crate) struct Cancel {
    generation: Mutex<u64>,
    changed: Condvar,
    wakers: Mutex<Vec<Weak<mio::Waker>>>,
}

impl Cancel {
    pub fn generation(&self) -> u64 {
        *lock(&self.generation)
    }

    /// Makes every call that began before now return `Cancelled`.
    pub fn cancel(&self) {
        *lock(&self.generation) += 1;
        self.wake();
    }

    /// Wakes every waiting call so it looks at its stop flag again.
    pub fn wake(&self) {
        // Taking the lock orders this after a sleeper's check of its flags.
        drop(lock(&self.generation));
        self.changed.notify_all();
        for waker in lock(&self.wakers).iter().filter_map(Weak::upgrade) {
            let _ = waker.wake();
        }
    }

    /// Lets `wake` reach a connection's poll while the connection lives.
    pub fn register(&self, waker: &Arc<mio::Waker>) {
        let mut wakers = lock(&self.wakers);
        wakers.retain(|w| w.strong_count() > 0);
        wakers.push(Arc::downgrade(waker));
    }

    /// Sleeps `pause`, or less when `watch` is cancelled meanwhile.
    pub fn sleep(&self, pause: Duration, watch: &Watch<'_>) -> Result<(), ClientError> {
        let until = Instant::now() + pause;
        let mut generation = lock(&self.generation);
        loop {
            if watch.cancelled_at(*generation) {
                return Err(ClientError::Cancelled);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            generation = self
                .changed
                .wait_timeout(generation, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one blocking call watches while it waits. Made when the call
/// begins, so a cancel that comes while the call still queues for the
/// client's connection cancels it too.
pub(crate) struct Watch<'a> {
    pub cancel: &'a Cancel,
    generation: u64,
    /// The heartbeat thread's own stop flag.
    stop: Option<&'a AtomicBool>,
    started: Instant,
    /// Told the server a slow call is trying.
    notice: &'a dyn Fn(&str),
    noticed: RefCell<Option<String>>,
}

impl<'a> Watch<'a> {
    pub fn new(
        cancel: &'a Cancel,
        stop: Option<&'a AtomicBool>,
        notice: &'a dyn Fn(&str),
    ) -> Watch<'a> {
        Watch {
            cancel,
            generation: cancel.generation(),
            stop,
            started: Instant::now(),
            notice,
            noticed: RefCell::new(None),
        }
    }

    fn cancelled_at(&self, generation: u64) -> bool {
        generation != self.generation || self.stop.is_some_and(|s| s.load(Ordering::SeqCst))
    }

    /// `Err(Cancelled)` once the call should stop.
    pub fn check(&self) -> Result<(), ClientError> {
        if self.cancelled_at(self.cancel.generation()) {
            Err(ClientError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// When the call should next wake to say it is trying `server`, if it
    /// has not said so yet.
    pub fn notice_at(&self, server: &str) -> Option<Instant> {
        match self.noticed.borrow().as_deref() {
            Some(s) if s == server => None,
            _ => Some(self.started + NOTICE_AFTER),
        }
    }

    /// Says the call is trying `server`, once the call has waited long
    /// enough, once per server.
    pub fn trying(&self, server: &str, now: Instant) {
        if self.notice_at(server).is_some_and(|at| now >= at) {
            *self.noticed.borrow_mut() = Some(server.to_string());
            (self.notice)(server);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_cancel_stops_calls_begun_before_it_only() {
        let cancel = Cancel::default();
        let quiet = |_: &str| {};
        let before = Watch::new(&cancel, None, &quiet);
        assert!(before.check().is_ok());
        cancel.cancel();
        assert_eq!(before.check(), Err(ClientError::Cancelled));
        let after = Watch::new(&cancel, None, &quiet);
        assert!(after.check().is_ok());
    }

    #[test]
    fn a_stop_flag_stops_its_own_calls() {
        let cancel = Cancel::default();
        let stop = AtomicBool::new(false);
        let quiet = |_: &str| {};
        let watch = Watch::new(&cancel, Some(&stop), &quiet);
        let other = Watch::new(&cancel, None, &quiet);
        stop.store(true, Ordering::SeqCst);
        assert_eq!(watch.check(), Err(ClientError::Cancelled));
        assert!(other.check().is_ok());
    }

    #[test]
    fn a_sleep_ends_early_when_cancelled_from_another_thread() {
        let cancel = Arc::new(Cancel::default());
        let quiet = |_: &str| {};
        let watch = Watch::new(&cancel, None, &quiet);
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                cancel.cancel();
            })
        };
        let began = Instant::now();
        let slept = cancel.sleep(Duration::from_secs(60), &watch);
        canceller.join().unwrap();
        assert_eq!(slept, Err(ClientError::Cancelled));
        assert!(began.elapsed() < Duration::from_secs(30));
        // A sleep that is not cancelled runs its course.
        let fresh = Watch::new(&cancel, None, &quiet);
        assert_eq!(cancel.sleep(Duration::from_millis(1), &fresh), Ok(()));
    }

    #[test]
    fn the_notice_comes_after_the_delay_once_per_server() {
        let cancel = Cancel::default();
        let said = AtomicUsize::new(0);
        let count = |_: &str| {
            said.fetch_add(1, Ordering::SeqCst);
        };
        let watch = Watch::new(&cancel, None, &count);
        let start = watch.started;
        watch.trying("a:1", start + Duration::from_millis(100));
        assert_eq!(said.load(Ordering::SeqCst), 0, "too early");
        assert_eq!(watch.notice_at("a:1"), Some(start + NOTICE_AFTER));
        watch.trying("a:1", start + NOTICE_AFTER);
        watch.trying("a:1", start + NOTICE_AFTER * 2);
        assert_eq!(said.load(Ordering::SeqCst), 1, "once for a:1");
        assert_eq!(watch.notice_at("a:1"), None);
        watch.trying("b:2", start + NOTICE_AFTER * 2);
        assert_eq!(said.load(Ordering::SeqCst), 2, "again for b:2");
    }
}
