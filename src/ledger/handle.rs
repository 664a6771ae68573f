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

/// Bytes of randomness in a handle's id.
pub const HANDLE_ID_BYTES: usize = ID_BYTES;

/// Where handle ids come from. The ledger does no I/O: the server hands it
/// the operating system's randomness (`crate::sys::OsEntropy`); tests and
/// the simulation hand it a seeded generator ([`SeededEntropy`]).
pub trait Entropy: Send {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String>;
}

/// A deterministic generator (SplitMix64) for tests and the simulation:
/// the same seed gives the same handles.
pub struct SeededEntropy(u64);

impl SeededEntropy {
    pub fn new(seed: u64) -> SeededEntropy {
        SeededEntropy(seed)
    }
}

impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        for chunk in buf.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

/// The secret key that makes handles self-certifying.
#[derive(Clone)]
pub struct HandleKey {
    key: [u8; 32],
    /// The HMAC keyed once (its inner and outer pads hashed), cloned for
    /// every tag instead of re-keyed.
    keyed: Hmac<Sha256>,
}

impl HandleKey {
    pub fn from_bytes(bytes: [u8; 32]) -> HandleKey {
        HandleKey {
            key: bytes,
            keyed: <Hmac<Sha256> as KeyInit>::new_from_slice(&bytes).expect("any key length"),
        }
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The handle for a grant, with the random id `id`.
    pub fn issue(&self, id: [u8; ID_BYTES], claim: &HandleClaim) -> String {
        let id = URL_SAFE_NO_PAD.encode(id);
        let tag = URL_SAFE_NO_PAD.encode(self.tag(&id, claim));
        format!("{id}.{tag}")
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
        let key = HandleKey::from_bytes([7; 32]);
        let handle = key.issue([3; ID_BYTES], &claim());
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
    fn seeded_ids_are_distinct_and_repeatable() {
        let key = HandleKey::from_bytes([9; 32]);
        let draw = |seed| {
            let mut e = SeededEntropy::new(seed);
            (0..100)
                .map(|_| {
                    let mut id = [0u8; ID_BYTES];
                    e.fill(&mut id).unwrap();
                    key.issue(id, &claim())
                })
                .collect::<Vec<_>>()
        };
        let ids: std::collections::HashSet<String> = draw(1).into_iter().collect();
        assert_eq!(ids.len(), 100);
        assert!(ids.iter().all(|h| key.verify(h, &claim())));
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
