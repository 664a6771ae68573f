//! Self-certifying seat handles.
//!
//! A handle is `<random id>.<tag>`, where the tag is an HMAC-SHA256 (keyed
//! with the handle key) over the id and the grant it names: feature,
//! version, count, user, host and client id. A server holding the same key,
//! such as the other server of a failover pair, can therefore honour a
//! reclaim of a handle it never saw, without trusting the client: the
//! client cannot forge a tag for a grant it was not given.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of randomness in a handle's id (96 bits: collisions never happen).
const ID_BYTES: usize = 12;
/// Bytes of the HMAC kept in the handle (128 bits).
const TAG_BYTES: usize = 16;
/// Longest handle accepted from the wire.
pub const MAX_HANDLE_LEN: usize = 64;

/// The fields a handle's tag covers.
#[derive(Clone, Copy, Debug)]
pub struct HandleClaim<'a> {
    pub feature: &'a str,
    pub version: &'a str,
    pub count: u32,
    pub user: &'a str,
    pub host: &'a str,
    pub client: &'a str,
}

/// Handle ids drawn from the OS per `getrandom` call (one syscall per
/// this many grants instead of one per grant).
const IDS_PER_FILL: usize = 32;

/// The secret key that makes handles self-certifying.
pub struct HandleKey {
    key: [u8; 32],
    /// The HMAC keyed once (its inner and outer pads hashed), cloned for
    /// every tag instead of re-keyed.
    keyed: Hmac<Sha256>,
    /// OS randomness fetched in bulk for handle ids; `used` bytes are spent.
    random: [u8; ID_BYTES * IDS_PER_FILL],
    used: usize,
}

/// A clone starts with no random bytes of its own: two copies must never
/// hand out the same ids.
impl Clone for HandleKey {
    fn clone(&self) -> HandleKey {
        HandleKey::from_bytes(self.key)
    }
}

impl HandleKey {
    pub fn from_bytes(bytes: [u8; 32]) -> HandleKey {
        HandleKey {
            key: bytes,
            keyed: <Hmac<Sha256> as KeyInit>::new_from_slice(&bytes).expect("any key length"),
            random: [0; ID_BYTES * IDS_PER_FILL],
            used: ID_BYTES * IDS_PER_FILL,
        }
    }

    /// A fresh random key.
    pub fn random() -> std::io::Result<HandleKey> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(std::io::Error::other)?;
        Ok(HandleKey::from_bytes(key))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// Issues a new handle for a grant.
    pub fn issue(&mut self, claim: &HandleClaim) -> std::io::Result<String> {
        if self.used == self.random.len() {
            getrandom::fill(&mut self.random).map_err(std::io::Error::other)?;
            self.used = 0;
        }
        let id = &self.random[self.used..self.used + ID_BYTES];
        self.used += ID_BYTES;
        let id = URL_SAFE_NO_PAD.encode(id);
        let tag = URL_SAFE_NO_PAD.encode(self.tag(&id, claim));
        Ok(format!("{id}.{tag}"))
    }

    /// True when `handle` was issued under this key for exactly `claim`.
    /// Compared in constant time.
    pub fn verify(&self, handle: &str, claim: &HandleClaim) -> bool {
        let Some((id, tag)) = handle.split_once('.') else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        if tag.len() != TAG_BYTES {
            return false;
        }
        let mac = self.mac(id, claim);
        mac.verify_truncated_left(&tag).is_ok()
    }

    fn mac(&self, id: &str, claim: &HandleClaim) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        let count = claim.count.to_string();
        for part in [
            "floatd-handle-v1",
            id,
            claim.feature,
            claim.version,
            &count,
            claim.user,
            claim.host,
            claim.client,
        ] {
            // Length-prefixed so no two different claims hash alike.
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    fn tag(&self, id: &str, claim: &HandleClaim) -> [u8; TAG_BYTES] {
        let full = self.mac(id, claim).finalize().into_bytes();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> HandleClaim<'static> {
        HandleClaim {
            feature: "cad",
            version: "2.0",
            count: 1,
            user: "alice",
            host: "ws1",
            client: "c1",
        }
    }

    #[test]
    fn a_handle_verifies_only_for_its_own_grant_and_key() {
        let mut key = HandleKey::from_bytes([7; 32]);
        let handle = key.issue(&claim()).unwrap();
        assert!(handle.len() <= MAX_HANDLE_LEN);
        assert!(key.verify(&handle, &claim()));
        assert!(!HandleKey::from_bytes([8; 32]).verify(&handle, &claim()));
        let other_user = HandleClaim {
            user: "mallory",
            ..claim()
        };
        assert!(!key.verify(&handle, &other_user));
        let more = HandleClaim {
            count: 2,
            ..claim()
        };
        assert!(!key.verify(&handle, &more));
        assert!(!key.verify("garbage", &claim()));
        assert!(!key.verify("a.b", &claim()));
        let mut tampered = handle.clone();
        tampered.replace_range(0..1, if handle.starts_with('A') { "B" } else { "A" });
        assert!(!key.verify(&tampered, &claim()));
    }

    #[test]
    fn ids_stay_distinct_across_refills_of_the_random_pool() {
        let mut key = HandleKey::from_bytes([9; 32]);
        let ids: std::collections::HashSet<String> = (0..IDS_PER_FILL * 3 + 1)
            .map(|_| key.issue(&claim()).unwrap())
            .collect();
        assert_eq!(ids.len(), IDS_PER_FILL * 3 + 1);
        assert!(ids.iter().all(|h| key.verify(h, &claim())));
        let mut copy = key.clone();
        assert_ne!(copy.issue(&claim()).unwrap(), key.issue(&claim()).unwrap());
    }
}
