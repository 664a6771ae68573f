//! Time a process was awake to hear.
//!
//! A server judges the other server dead after `takeover_after` of silence.
//! Silence must be counted only while this process could have heard:
//! a server frozen by SIGSTOP or a paused VM hears nothing, and on waking
//! the monotonic clock has run on, so the other server would look silent
//! for the whole pause although it spoke all along (its words wait unread
//! in the socket). [`AwakeClock`] advances with the monotonic clock, except
//! that one step between two observations counts at most `max_step`: a
//! running watchdog observes the time every tick, so a longer gap means
//! the process was not running.

use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct AwakeClock {
    last: Instant,
    awake: Duration,
    max_step: Duration,
}

impl AwakeClock {
    /// A clock that starts at zero now; a gap longer than `max_step`
    /// between two observations counts as `max_step`.
    pub fn new(now: Instant, max_step: Duration) -> AwakeClock {
        AwakeClock {
            last: now,
            awake: Duration::ZERO,
            max_step,
        }
    }

    /// Advances to `now`. Returns the length of the pause, when the gap
    /// since the last observation was too long for a running process.
    pub fn observe(&mut self, now: Instant) -> Option<Duration> {
        let gap = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        if gap <= self.max_step {
            self.awake += gap;
            return None;
        }
        // Not running for most of it: count one tick's worth.
        self.awake += self.max_step / 3;
        Some(gap)
    }

    /// Awake time since the clock started.
    pub fn now(&self) -> Duration {
        self.awake
    }

    /// Awake time since the awake instant `then` (zero if in the future).
    pub fn since(&self, then: Duration) -> Duration {
        self.awake.saturating_sub(then)
    }
}

/// The longest step an awake clock counts for a thread that observes the
/// time every `tick`: a few ticks, so a thread that is merely slow (a busy
/// machine) still counts most of the time, and a frozen one does not.
pub fn max_step_for(tick: Duration) -> Duration {
    (tick * 3).max(Duration::from_millis(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_steps_and_caps_a_pause() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = AwakeClock::new(t0, ms(300));
        assert_eq!(c.observe(t0 + ms(100)), None);
        assert_eq!(c.observe(t0 + ms(200)), None);
        assert_eq!(c.now(), ms(200));
        // Frozen for ten seconds: counts as one tick.
        assert_eq!(c.observe(t0 + ms(10_200)), Some(ms(10_000)));
        assert_eq!(c.now(), ms(300));
        assert_eq!(c.since(ms(200)), ms(100));
        // Time never runs backwards.
        assert_eq!(c.observe(t0), None);
        assert_eq!(c.now(), ms(300));
    }

    #[test]
    fn max_step_has_a_floor() {
        assert_eq!(
            max_step_for(Duration::from_millis(10)),
            Duration::from_millis(300)
        );
        assert_eq!(max_step_for(Duration::from_secs(1)), Duration::from_secs(3));
    }
}
