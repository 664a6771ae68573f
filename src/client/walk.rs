//! When a blocking call walks the server list again, and when it gives up.
//!
//! A call tries every server it knows in a round. When no round reached an
//! active server it backs off (100 ms doubling to 2 s) until its deadline,
//! because a standby may be about to take over. But when every server of a
//! round refused the connection or had a name that did not resolve, nobody
//! is listening anywhere: the call gives up at once instead of waiting out
//! the deadline. (A standby answers, so a failover in progress never looks
//! like that.)

use std::time::{Duration, Instant};

/// The first pause between rounds.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between rounds.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What one round of the server list found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Servers tried.
    pub tried: usize,
    /// Of those, servers that refused the connection or whose name did not
    /// resolve.
    pub nobody_there: usize,
    /// A server named another as active: try again at once.
    pub redirected: bool,
}

/// What to do after a round that reached no active server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    RetryAfter(Duration),
    GiveUp,
}

/// The retry state of one call.
#[derive(Clone, Debug)]
pub struct Walk {
    deadline: Instant,
    backoff: Duration,
}

impl Walk {
    pub fn new(now: Instant, timeout: Duration) -> Walk {
        Walk {
            deadline: now + timeout,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Decides after a failed round, at `now`.
    pub fn next(&mut self, round: Round, now: Instant) -> Next {
        if round.nobody_there == round.tried || now >= self.deadline {
            return Next::GiveUp;
        }
        if round.redirected {
            return Next::RetryAfter(Duration::ZERO);
        }
        let pause = self.backoff.min(self.deadline - now);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Next::RetryAfter(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(tried: usize, nobody_there: usize) -> Round {
        Round {
            tried,
            nobody_there,
            redirected: false,
        }
    }

    #[test]
    fn everybody_refusing_gives_up_at_once() {
        let now = Instant::now();
        let mut walk = Walk::new(now, Duration::from_secs(30));
        assert_eq!(walk.next(round(2, 2), now), Next::GiveUp);
        assert_eq!(walk.next(round(1, 1), now), Next::GiveUp);
        assert_eq!(walk.next(round(0, 0), now), Next::GiveUp, "no server known");
    }

    #[test]
    fn a_server_that_answers_keeps_the_walk_going_until_the_deadline() {
        let now = Instant::now();
        let mut walk = Walk::new(now, Duration::from_secs(5));
        let mut at = now;
        let mut pauses = Vec::new();
        while let Next::RetryAfter(pause) = walk.next(round(2, 1), at) {
            pauses.push(pause);
            at += pause;
        }
        assert!(at >= now + Duration::from_secs(5));
        assert_eq!(pauses[0], FIRST_BACKOFF);
        assert_eq!(pauses[1], FIRST_BACKOFF * 2);
        assert!(pauses.iter().all(|p| *p <= MAX_BACKOFF && !p.is_zero()));
        assert_eq!(pauses.iter().sum::<Duration>(), Duration::from_secs(5));
    }

    #[test]
    fn a_redirect_is_followed_at_once() {
        let now = Instant::now();
        let mut walk = Walk::new(now, Duration::from_secs(5));
        let redirected = Round {
            redirected: true,
            ..round(1, 0)
        };
        assert_eq!(walk.next(redirected, now), Next::RetryAfter(Duration::ZERO));
        assert_eq!(
            walk.next(redirected, now + Duration::from_secs(5)),
            Next::GiveUp
        );
    }
}
