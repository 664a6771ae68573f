//! The roam token: one word of text the server hands a client that roams,
//! and that the client keeps to run offline.
//!
//! ```text
//! floatd-roam-1.<base64url of the body>.<base64url of the signature>
//! ```
//!
//! The body is one protocol-style line naming the roam:
//!
//! ```text
//! ROAM id=H feature=cad version=2.0 pool=2.0 count=1 user=ann host=ws17
//!      hostid=machine:3f2a9c01d4e5b6a7 from=2026-11-23T10:12:00Z
//!      until=2026-12-01T00:00:00Z pair=machine:...+mac:... key=1f3a9c2e
//! ```
//!
//! and the signature is Ed25519, by the server pair's roam key, over the
//! tag `floatd-roam-token-v1` and a newline, then the body's bytes. One
//! word (no spaces, no quotes) so it passes through shells, files and
//! protocol lines unchanged; base64 so no byte of it needs escaping.
//!
//! `id` is the roam's handle (a bearer secret: it returns and extends the
//! roam); `pool` the version of the licence it was granted from, so an
//! application of that version or older may run; `pair` names the server
//! pair by its licence's host ids, and `key` the roam key's id.

use crate::civil::{format_timestamp, parse_timestamp};
use crate::ledger::Grant;
use crate::licence::keys::key_id;
use crate::licence::{HostId, HostIds, Version};
use crate::protocol::line::{self, LineBuilder};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;

/// The first part of every token (and its format version).
pub const TOKEN_PREFIX: &str = "floatd-roam-1";
/// What the signature covers before the body, so a roam key's signature
/// means nothing anywhere else.
const DOMAIN_TAG: &[u8] = b"floatd-roam-token-v1\n";
/// A token is far shorter (names are at most 128 bytes each).
pub const MAX_TOKEN_LEN: usize = 4096;
/// How far the client's clock may run behind the server's before a token
/// looks as if its roam had not begun.
pub const CLOCK_SLACK_SECS: u64 = 86_400;

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoamToken {
    /// The roam's handle: it returns and extends the roam.
    pub id: String,
    pub feature: String,
    /// The version asked for.
    pub version: Version,
    /// The version of the licence pool it was granted from.
    pub pool: Version,
    pub count: u32,
    pub user: String,
    pub host: String,
    /// The machine the token is good on.
    pub hostid: String,
    /// Unix seconds: when the roam began and when it ends.
    pub from: u64,
    pub until: u64,
    /// The server pair, by its licence's SERVER (and FAILOVER) host ids.
    pub pair: String,
    /// The id of the roam key that signs it.
    pub key_id: String,
}

impl RoamToken {
    /// The token for a roam's grant (`None` when the grant is no roam).
    pub fn from_grant(grant: &Grant, pair: &str, key: &VerifyingKey) -> Option<RoamToken> {
        let roam = grant.roam.as_ref()?;
        Some(RoamToken {
            id: grant.handle.to_string(),
            feature: grant.feature.to_string(),
            version: grant.version,
            pool: grant.pool.version,
            count: grant.count,
            user: grant.user.to_string(),
            host: grant.host.to_string(),
            hostid: roam.hostid.clone(),
            from: roam.from,
            until: roam.until,
            pair: pair.to_string(),
            key_id: key_id(key),
        })
    }

    fn body(&self) -> String {
        let mut body = LineBuilder::new("ROAM")
            .field("id", &self.id)
            .field("feature", &self.feature)
            .field("version", self.version)
            .field("pool", self.pool)
            .field("count", self.count)
            .field("user", &self.user)
            .field("host", &self.host)
            .field("hostid", &self.hostid)
            .field("from", format_timestamp(self.from))
            .field("until", format_timestamp(self.until))
            .field("pair", &self.pair)
            .field("key", &self.key_id)
            .finish();
        body.pop(); // the newline
        body
    }

    /// The token's text, signed with the pair's roam key.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body();
        let signature = key.sign(&signed_bytes(&body));
        format!(
            "{TOKEN_PREFIX}.{}.{}",
            URL_SAFE_NO_PAD.encode(body.as_bytes()),
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

fn signed_bytes(body: &str) -> Vec<u8> {
    let mut bytes = DOMAIN_TAG.to_vec();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// Why a text is not a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenError(pub String);

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a roam token: {}", self.0)
    }
}

impl std::error::Error for TokenError {}

/// A parsed token with its signature (not yet checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedToken {
    pub token: RoamToken,
    /// The token's text, as given.
    pub text: String,
    body: String,
    signature: Signature,
}

impl SignedToken {
    /// Parses a token's text (surrounding spaces ignored).
    pub fn parse(text: &str) -> Result<SignedToken, TokenError> {
        let text = text.trim();
        let bad = |why: &str| TokenError(why.to_string());
        if text.len() > MAX_TOKEN_LEN {
            return Err(bad("too long"));
        }
        let mut parts = text.split('.');
        let (Some(prefix), Some(body64), Some(sig64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected three parts joined by '.'"));
        };
        if prefix != TOKEN_PREFIX {
            return Err(TokenError(format!(
                "expected it to begin with {TOKEN_PREFIX}, found {prefix:?}"
            )));
        }
        let body = URL_SAFE_NO_PAD
            .decode(body64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad("its body is not base64 of UTF-8 text"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(sig64)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| bad("its signature is not base64 of 64 bytes"))?;
        let token = parse_body(&body).map_err(|e| TokenError(format!("its body: {e}")))?;
        Ok(SignedToken {
            token,
            text: text.to_string(),
            body,
            signature,
        })
    }

    /// Whether `key` made the signature (`verify_strict`: no malleable
    /// signatures, no weak keys).
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        key.verify_strict(&signed_bytes(&self.body), &self.signature)
            .is_ok()
    }
}

fn parse_body(body: &str) -> Result<RoamToken, String> {
    let l = line::parse(body)?;
    if l.word != "ROAM" || !l.args.is_empty() {
        return Err("expected ROAM and fields".into());
    }
    let get = |k: &str| l.get(k).ok_or_else(|| format!("no {k}="));
    let text = |k: &str| get(k).map(str::to_string);
    let time = |k: &str| {
        get(k).and_then(|v| parse_timestamp(v).ok_or_else(|| format!("{k}={v:?} is not a time")))
    };
    Ok(RoamToken {
        id: text("id")?,
        feature: text("feature")?,
        version: Version::parse(get("version")?)?,
        pool: Version::parse(get("pool")?)?,
        count: get("count")?
            .parse()
            .map_err(|_| "count= is not a number".to_string())?,
        user: text("user")?,
        host: text("host")?,
        hostid: text("hostid")?,
        from: time("from")?,
        until: time("until")?,
        pair: text("pair")?,
        key_id: text("key")?,
    })
}

/// Why a token may not be used offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfflineRefusal {
    /// Not a token, or damaged beyond parsing.
    Malformed(TokenError),
    /// Signed by another key than the one pinned for its server pair, or
    /// its bytes were changed after signing.
    BadSignature { key_id: String },
    /// Made for another machine.
    OtherHost { hostid: String },
    /// By this machine's clock its roam has not begun.
    NotYet { from: u64 },
    /// Its roam has ended.
    Ended { until: u64 },
}

impl fmt::Display for OfflineRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfflineRefusal::Malformed(e) => e.fmt(f),
            OfflineRefusal::BadSignature { key_id } => write!(
                f,
                "the token's signature does not verify with the roam key pinned for its \
                 server pair (it names key {key_id}): it was altered, or signed elsewhere"
            ),
            OfflineRefusal::OtherHost { hostid } => {
                write!(f, "the token is for the machine {hostid}, not this one")
            }
            OfflineRefusal::NotYet { from } => write!(
                f,
                "the roam begins at {}; this machine's clock says it has not",
                format_timestamp(*from)
            ),
            OfflineRefusal::Ended { until } => {
                write!(f, "the roam ended at {}", format_timestamp(*until))
            }
        }
    }
}

impl std::error::Error for OfflineRefusal {}

/// Checks a token as an application does offline: signed by `pinned` (the
/// roam key pinned for its server pair), for a machine whose ids are
/// `host`, and within its dates at `now` (Unix seconds, this machine's
/// clock; the start allows [`CLOCK_SLACK_SECS`] for a clock behind).
pub fn check_offline(
    text: &str,
    pinned: &VerifyingKey,
    host: &HostIds,
    now: u64,
) -> Result<RoamToken, OfflineRefusal> {
    let signed = SignedToken::parse(text).map_err(OfflineRefusal::Malformed)?;
    let token = signed.token.clone();
    if !signed.verify(pinned) {
        return Err(OfflineRefusal::BadSignature {
            key_id: token.key_id,
        });
    }
    let here = HostId::parse(&token.hostid)
        .ok()
        .filter(|id| *id != HostId::Any && id.matches(host));
    if here.is_none() {
        return Err(OfflineRefusal::OtherHost {
            hostid: token.hostid,
        });
    }
    if now.saturating_add(CLOCK_SLACK_SECS) < token.from {
        return Err(OfflineRefusal::NotYet { from: token.from });
    }
    if now >= token.until {
        return Err(OfflineRefusal::Ended { until: token.until });
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> RoamToken {
        RoamToken {
            id: "Hk2mRt9sLw3Zb.3fJk9QmXv0aBcD1eF2gH3w".into(),
            feature: "cad".into(),
            version: Version::parse("2").unwrap(),
            pool: Version::parse("2.1").unwrap(),
            count: 2,
            user: "Ada Lovelace".into(),
            host: "ws-17".into(),
            hostid: "machine:0123456789abcdef".into(),
            from: 1_800_000_000,
            until: 1_800_316_800,
            pair: "any+any".into(),
            key_id: key_id(&key().verifying_key()),
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    fn here() -> HostIds {
        HostIds::from_ids([
            HostId::parse("host:ws-17").unwrap(),
            HostId::parse("machine:0123456789abcdef").unwrap(),
        ])
    }

    const DURING: u64 = 1_800_100_000;

    #[test]
    fn a_token_is_one_word_that_parses_back_to_what_was_signed() {
        let text = token().sign(&key());
        assert!(text.starts_with("floatd-roam-1."));
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        let signed = SignedToken::parse(&format!("  {text}\n")).unwrap();
        assert_eq!(signed.token, token());
        assert!(signed.verify(&key().verifying_key()));
        assert!(!signed.verify(&SigningKey::from_bytes(&[8; 32]).verifying_key()));
        // Deterministic: the same roam signs to the same text.
        assert_eq!(token().sign(&key()), text);
    }

    #[test]
    fn the_offline_check_passes_on_the_named_host_within_the_dates() {
        let text = token().sign(&key());
        let pinned = key().verifying_key();
        assert_eq!(check_offline(&text, &pinned, &here(), DURING), Ok(token()));
        // A client clock a few hours behind the server's still passes.
        assert!(check_offline(&text, &pinned, &here(), 1_800_000_000 - 3600).is_ok());
        assert!(check_offline(&text, &pinned, &here(), 1_800_316_799).is_ok());
    }

    #[test]
    fn the_offline_check_fails_elsewhere_afterwards_or_with_another_key() {
        let text = token().sign(&key());
        let pinned = key().verifying_key();
        let elsewhere = HostIds::from_ids([HostId::parse("machine:fedcba9876543210").unwrap()]);
        assert_eq!(
            check_offline(&text, &pinned, &elsewhere, DURING),
            Err(OfflineRefusal::OtherHost {
                hostid: "machine:0123456789abcdef".into()
            })
        );
        assert_eq!(
            check_offline(&text, &pinned, &here(), 1_800_316_800),
            Err(OfflineRefusal::Ended {
                until: 1_800_316_800
            })
        );
        assert!(matches!(
            check_offline(&text, &pinned, &here(), 1_700_000_000),
            Err(OfflineRefusal::NotYet { .. })
        ));
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            check_offline(&text, &other, &here(), DURING),
            Err(OfflineRefusal::BadSignature { .. })
        ));
        // A token naming `any` host is good nowhere.
        let mut any = token();
        any.hostid = "any".into();
        assert!(matches!(
            check_offline(&any.sign(&key()), &pinned, &here(), DURING),
            Err(OfflineRefusal::OtherHost { .. })
        ));
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let text = token().sign(&key());
        let pinned = key().verifying_key();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
        for i in 0..text.len() {
            for &c in &alphabet[..3] {
                let mut bytes = text.clone().into_bytes();
                if bytes[i] == c {
                    continue;
                }
                bytes[i] = c;
                let changed = String::from_utf8(bytes).unwrap();
                assert!(
                    check_offline(&changed, &pinned, &here(), DURING).is_err(),
                    "changing byte {i} to {} went unnoticed",
                    c as char
                );
            }
        }
    }

    #[test]
    fn a_forged_body_with_a_real_signature_is_refused() {
        let text = token().sign(&key());
        let parts: Vec<&str> = text.split('.').collect();
        let mut longer = token();
        longer.until += 30 * 86_400;
        let forged_body = longer.sign(&SigningKey::from_bytes(&[8; 32]));
        let forged_body = forged_body.split('.').nth(1).unwrap();
        let forged = format!("{}.{forged_body}.{}", parts[0], parts[2]);
        assert!(matches!(
            check_offline(&forged, &key().verifying_key(), &here(), DURING),
            Err(OfflineRefusal::BadSignature { .. })
        ));
    }

    #[test]
    fn garbage_is_told_apart_from_tokens() {
        for bad in [
            "",
            "floatd-roam-1",
            "floatd-roam-1.a.b.c",
            "floatd-roam-2.AAAA.AAAA",
            "floatd-roam-1.!!!!.AAAA",
            "floatd-roam-1.QUJD.AAAA",
        ] {
            assert!(SignedToken::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SignedToken::parse(&"x".repeat(MAX_TOKEN_LEN + 1)).is_err());
    }
}
