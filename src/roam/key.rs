//! The pair's roam key on its way to the other server.
//!
//! Both servers of a pair must sign roam tokens with one key, so the
//! active server records its key in the journal (`Event::RoamKey`), which
//! the standby receives over the peer link like every record. The record
//! holds the key's 32-byte seed wrapped under a key derived from the peer
//! secret: XOR with an HMAC-SHA256 keystream over a fresh random nonce.
//! Both servers hold the peer secret, so both unwrap it; the journal file
//! and the link never hold the seed in the clear. Unwrapping checks the
//! result against the recorded key id, so a wrong secret is told apart
//! from a key.

use crate::licence::keys::key_id;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of the nonce in front of a wrapped key.
const NONCE_LEN: usize = 16;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The key that wraps the roam key, from the pair's peer secret.
pub fn wrapping_key(peer_secret: &[u8]) -> [u8; 32] {
    hmac(peer_secret, &[b"floatd-roam-key-wrap-v1"])
}

fn keystream(wrapping: &[u8; 32], nonce: &[u8]) -> [u8; 32] {
    hmac(wrapping, &[b"floatd-roam-key-stream", nonce])
}

/// The key's seed wrapped for the journal: base64 of nonce and masked seed.
pub fn wrap(key: &SigningKey, wrapping: &[u8; 32], nonce: [u8; NONCE_LEN]) -> String {
    let stream = keystream(wrapping, &nonce);
    let mut bytes = nonce.to_vec();
    bytes.extend(key.to_bytes().iter().zip(stream).map(|(a, b)| a ^ b));
    STANDARD.encode(bytes)
}

/// The key a [`wrap`] made, if it is the key with id `expected_id`.
pub fn unwrap(wrapped: &str, wrapping: &[u8; 32], expected_id: &str) -> Result<SigningKey, String> {
    let bytes = STANDARD
        .decode(wrapped)
        .map_err(|_| "the wrapped key is not base64".to_string())?;
    if bytes.len() != NONCE_LEN + 32 {
        return Err(format!("the wrapped key is {} bytes, not 48", bytes.len()));
    }
    let (nonce, masked) = bytes.split_at(NONCE_LEN);
    let stream = keystream(wrapping, nonce);
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = masked[i] ^ stream[i];
    }
    let key = SigningKey::from_bytes(&seed);
    let found = key_id(&key.verifying_key());
    if found != expected_id {
        return Err(format!(
            "it unwraps to key {found}, not {expected_id}: the servers' peer secrets differ"
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_unwraps_with_the_same_secret_only() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let id = key_id(&key.verifying_key());
        let ours = wrapping_key(b"test-secret-0123456789abcdef");
        let wrapped = wrap(&key, &ours, [1; NONCE_LEN]);
        assert_eq!(
            unwrap(&wrapped, &ours, &id).unwrap().to_bytes(),
            key.to_bytes()
        );
        // The seed is not in it, and a fresh nonce gives other bytes.
        let raw = STANDARD.decode(&wrapped).unwrap();
        assert!(!raw.windows(32).any(|w| w == key.to_bytes()));
        assert_ne!(wrap(&key, &ours, [2; NONCE_LEN]), wrapped);
        let theirs = wrapping_key(b"another-secret-0123456789abc");
        let e = unwrap(&wrapped, &theirs, &id).unwrap_err();
        assert!(e.contains("peer secrets differ"), "{e}");
        assert!(unwrap("AAAA", &ours, &id).is_err());
        assert!(unwrap("not base64!", &ours, &id).is_err());
    }
}
