//! Admin access: the token that lets a remote operator make admin
//! requests, and what the server says about seats an operator removed.

use crate::ledger::{seat_id, Grant};
use crate::protocol::reply;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

/// Logs a removal and answers it: `OK removed=SEATS feature=F user=U
/// host=H` (one feature, user and host: a removal names one seat, or one
/// holder's seats of one feature), with `seat=ID` when it was one seat.
pub fn removed(grants: &[std::sync::Arc<Grant>], operator: SocketAddr) -> String {
    let first = grants.first().expect("a removal removes at least one seat");
    let seats: u64 = grants.iter().map(|g| u64::from(g.count)).sum();
    let ids: Vec<String> = grants.iter().map(|g| seat_id(&g.handle)).collect();
    log::info!(
        "operator at {operator} removed {seats} seat(s) of {} from {}@{} (seat {})",
        first.feature,
        first.user,
        first.host,
        ids.join(", ")
    );
    reply::ok()
        .field("removed", seats)
        .field("feature", &first.feature)
        .field("user", &first.user)
        .field("host", &first.host)
        .field_opt("seat", (grants.len() == 1).then(|| &ids[0]))
        .finish()
}

/// Compares a presented token with the expected one in constant time
/// (over digests, so the length does not leak either).
pub fn token_matches(expected: &str, presented: &str) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Reads the admin token file: its first line, trimmed. An empty token is
/// refused, since it would let anybody in.
pub fn read_token(path: &Path) -> Result<String, String> {
    let text = crate::files::read_regular_text(path, crate::files::SMALL_FILE_BYTES)
        .map_err(|e| format!("admin token file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.len() < 8 {
        return Err(format!(
            "admin token file {}: the token must be at least 8 characters",
            path.display()
        ));
    }
    Ok(token)
}

/// Wrong tokens one address (an IPv6 /64) may present per window.
pub const AUTH_FAILURES_PER_ADDR: u32 = 5;
/// Wrong tokens all addresses but loopback together may present per window.
pub const AUTH_FAILURES_TOTAL: u32 = 100;
/// The window, and how long AUTH is refused once a limit is reached.
pub const AUTH_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once (oldest forgotten first).
const AUTH_TRACKED: usize = 4096;

/// Limits guessing of the admin token: each address may present
/// [`AUTH_FAILURES_PER_ADDR`] wrong tokens a window and then gets no
/// answer for the rest of it; and remote addresses together
/// [`AUTH_FAILURES_TOTAL`], so many addresses cannot guess together.
/// Loopback is counted per address only, so a flood from elsewhere never
/// locks out an operator on the server itself. Memory is bounded.
#[derive(Default)]
pub struct AuthLimiter {
    by_addr: HashMap<IpAddr, Window>,
    total: Window,
}

#[derive(Clone, Copy, Default)]
struct Window {
    since: Option<Instant>,
    failures: u32,
}

impl Window {
    fn current(&mut self, now: Instant) -> &mut Window {
        if self
            .since
            .is_none_or(|t| now.duration_since(t) >= AUTH_WINDOW)
        {
            *self = Window {
                since: Some(now),
                failures: 0,
            };
        }
        self
    }

    /// How long until the window ends, if `limit` is reached in it.
    fn blocked(&self, limit: u32, now: Instant) -> Option<Duration> {
        let since = self.since?;
        let left = AUTH_WINDOW.saturating_sub(now.duration_since(since));
        (self.failures >= limit && !left.is_zero()).then_some(left)
    }
}

impl AuthLimiter {
    /// `Err(wait)` when AUTH from `addr` is refused without looking at the
    /// token, for `wait` more.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let net = crate::net::network_of(addr);
        if let Some(wait) = self
            .by_addr
            .get(&net)
            .and_then(|w| w.blocked(AUTH_FAILURES_PER_ADDR, now))
        {
            return Err(wait);
        }
        if !addr.is_loopback() {
            if let Some(wait) = self.total.blocked(AUTH_FAILURES_TOTAL, now) {
                return Err(wait);
            }
        }
        Ok(())
    }

    /// A wrong token from `addr`. Returns true when this reached a limit
    /// (worth one log line).
    pub fn failed(&mut self, addr: IpAddr, now: Instant) -> bool {
        let net = crate::net::network_of(addr);
        if !self.by_addr.contains_key(&net) && self.by_addr.len() >= AUTH_TRACKED {
            self.by_addr
                .retain(|_, w| w.since.is_some_and(|t| now.duration_since(t) < AUTH_WINDOW));
            if self.by_addr.len() >= AUTH_TRACKED {
                let oldest = self
                    .by_addr
                    .iter()
                    .min_by_key(|(_, w)| w.since)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.by_addr.remove(&k);
                }
            }
        }
        let w = self.by_addr.entry(net).or_default().current(now);
        w.failures += 1;
        let mut reached = w.failures == AUTH_FAILURES_PER_ADDR;
        if !addr.is_loopback() {
            let t = self.total.current(now);
            t.failures += 1;
            reached |= t.failures == AUTH_FAILURES_TOTAL;
        }
        reached
    }

    /// The right token from `addr`: its count starts again.
    pub fn succeeded(&mut self, addr: IpAddr) {
        self.by_addr.remove(&crate::net::network_of(addr));
    }
}

impl super::core::Core {
    /// `AUTH TOKEN`: admin rights for this connection if the token is
    /// right, within the [`AuthLimiter`]'s limits.
    pub(super) fn auth(
        &mut self,
        client: &mut super::conn::ClientState,
        token: &str,
        now: crate::ledger::Now,
    ) -> String {
        use crate::codes::Code;
        use crate::protocol::reply;
        let addr = client.peer.ip();
        if let Err(wait) = self.auth_limiter.check(addr, now.mono) {
            return reply::err(
                Code::AuthLimit,
                &format!(
                    "too many wrong admin tokens; AUTH from here is refused for {}s more",
                    wait.as_secs().max(1)
                ),
            )
            .finish();
        }
        match &self.admin_token {
            Some(expected) if token_matches(expected, token) => {
                self.auth_limiter.succeeded(addr);
                client.admin = true;
                reply::ok().field("admin", "yes").finish()
            }
            _ => {
                log::warn!("wrong admin token from {}", client.peer);
                if self.auth_limiter.failed(addr, now.mono) {
                    log::warn!(
                        "too many wrong admin tokens (from {} or in all): AUTH refused for {}s",
                        client.peer,
                        AUTH_WINDOW.as_secs()
                    );
                }
                reply::err(Code::AdminRequired, "wrong admin token").finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly() {
        assert!(token_matches("s3cret-token", "s3cret-token"));
        assert!(!token_matches("s3cret-token", "s3cret-tokem"));
        assert!(!token_matches("s3cret-token", "s3cret"));
        assert!(!token_matches("s3cret-token", ""));
    }

    #[test]
    fn each_address_gets_a_few_wrong_tokens_a_window() {
        let mut l = AuthLimiter::default();
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 1..=AUTH_FAILURES_PER_ADDR {
            assert!(l.check(a, t).is_ok());
            assert_eq!(l.failed(a, t), i == AUTH_FAILURES_PER_ADDR);
        }
        assert_eq!(l.check(a, t), Err(AUTH_WINDOW));
        let later = t + Duration::from_secs(20);
        assert_eq!(l.check(a, later), Err(Duration::from_secs(40)));
        assert!(l.check(b, later).is_ok(), "others are not affected");
        assert!(l.check(a, t + AUTH_WINDOW).is_ok(), "a new window");
        // The right token wipes the count.
        l.failed(b, t);
        l.succeeded(b);
        assert!(l.by_addr.is_empty() || !l.by_addr.contains_key(&b));
    }

    #[test]
    fn many_addresses_together_are_limited_but_loopback_is_not_locked_out() {
        let mut l = AuthLimiter::default();
        let t = Instant::now();
        for i in 0..AUTH_FAILURES_TOTAL {
            let addr = IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8]);
            l.failed(addr, t);
        }
        let fresh: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(l.check(fresh, t).is_err());
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(l.check(local, t).is_ok());
        // An IPv6 /64 counts as one address.
        let mut l = AuthLimiter::default();
        for i in 0..AUTH_FAILURES_PER_ADDR {
            let addr: IpAddr = format!("2001:db8::{}", i + 1).parse().unwrap();
            l.failed(addr, t);
        }
        assert!(l.check("2001:db8::ffff".parse().unwrap(), t).is_err());
        assert!(l.check("2001:db8:0:1::1".parse().unwrap(), t).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let mut l = AuthLimiter::default();
        let t = Instant::now();
        for i in 0..(AUTH_TRACKED as u32 + 50) {
            l.failed(IpAddr::from(i.to_be_bytes()), t);
        }
        assert!(l.by_addr.len() <= AUTH_TRACKED);
    }
}
