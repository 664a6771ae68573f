//! Seat accounting of one pool, including `share=user|host`, where
//! several checkouts by the same user (host) take one set of seats.

use crate::licence::{Pool, Share};
use std::collections::HashMap;

/// A pool and the seats charged against it.
#[derive(Debug)]
pub(super) struct PoolState {
    pub pool: Pool,
    /// Seats charged (never more than the sum of live checkouts' counts).
    pub used: u64,
    /// For shared pools: the checkouts of each share key, as (handle, count).
    /// The key is charged the largest count among them.
    shared: HashMap<String, Vec<(String, u32)>>,
}

impl PoolState {
    pub fn new(pool: Pool) -> PoolState {
        PoolState {
            pool,
            used: 0,
            shared: HashMap::new(),
        }
    }

    /// Seats still free; `u64::MAX` when uncounted. Zero, never negative,
    /// when a reread shrank the pool below its use.
    pub fn free(&self) -> u64 {
        match self.pool.limit() {
            Some(limit) => limit.saturating_sub(self.used),
            None => u64::MAX,
        }
    }

    /// The share key a checkout by `user` on `host` falls under, if any.
    pub fn share_key(&self, user: &str, host: &str) -> Option<String> {
        match self.pool.key.share {
            Share::None => None,
            Share::User => Some(user.to_string()),
            Share::Host => Some(host.to_string()),
        }
    }

    /// New seats a checkout of `count` would take.
    pub fn needed(&self, count: u32, share_key: Option<&str>) -> u64 {
        let already = share_key
            .and_then(|k| self.shared.get(k))
            .map(|list| max_count(list))
            .unwrap_or(0);
        (count as u64).saturating_sub(already as u64)
    }

    /// Charges a checkout to the pool.
    pub fn charge(&mut self, handle: &str, count: u32, share_key: Option<String>) {
        match share_key {
            None => self.used += count as u64,
            Some(key) => {
                let list = self.shared.entry(key).or_default();
                let before = max_count(list);
                list.push((handle.to_string(), count));
                self.used += (max_count(list) - before) as u64;
            }
        }
    }

    /// Returns a checkout's seats to the pool.
    pub fn discharge(&mut self, handle: &str, count: u32, share_key: Option<&str>) {
        match share_key {
            None => self.used = self.used.saturating_sub(count as u64),
            Some(key) => {
                let Some(list) = self.shared.get_mut(key) else {
                    return;
                };
                let before = max_count(list);
                list.retain(|(h, _)| h != handle);
                let after = max_count(list);
                if list.is_empty() {
                    self.shared.remove(key);
                }
                self.used = self.used.saturating_sub((before - after) as u64);
            }
        }
    }
}

fn max_count(list: &[(String, u32)]) -> u32 {
    list.iter().map(|(_, c)| *c).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licence::{Count, Expiry, PoolKey, Version};

    fn pool(share: Share, seats: u32) -> PoolState {
        PoolState::new(Pool {
            key: PoolKey {
                feature: "cad".into(),
                version: Version::parse("1").unwrap(),
                expiry: Expiry::Permanent,
                share,
            },
            count: Count::Seats(seats),
            min_checkout_secs: 0,
            roam: Vec::new(),
        })
    }

    #[test]
    fn shared_checkouts_take_the_largest_count_once() {
        let mut p = pool(Share::User, 5);
        let key = p.share_key("alice", "ws1");
        assert_eq!(p.needed(1, key.as_deref()), 1);
        p.charge("h1", 1, key.clone());
        assert_eq!(p.needed(1, key.as_deref()), 0);
        assert_eq!(p.needed(3, key.as_deref()), 2);
        p.charge("h2", 3, key.clone());
        assert_eq!(p.used, 3);
        p.discharge("h2", 3, key.as_deref());
        assert_eq!(p.used, 1);
        p.discharge("h1", 1, key.as_deref());
        assert_eq!(p.used, 0);
        assert_eq!(p.free(), 5);
    }

    #[test]
    fn unshared_checkouts_add() {
        let mut p = pool(Share::None, 2);
        p.charge("h1", 1, None);
        p.charge("h2", 1, None);
        assert_eq!(p.free(), 0);
        p.discharge("h1", 1, None);
        assert_eq!(p.free(), 1);
    }
}
