//! FEATURE signatures: the `sig=ed25519:<keyid>:<base64>` field, signing
//! a whole file (what `floatctl sign` does), and checking one line against
//! the trusted keys (what the server does, with `verify_strict`).
//!
//! The key id in the field lets a log tell a line signed by a key not
//! trusted here ([`SigCheck::UnknownKey`]) from a tampered line
//! ([`SigCheck::Bad`]) and an unsigned one ([`SigCheck::Missing`]).

use super::canonical::signed_message;
use super::hostid::HostId;
use super::keys::{key_id, TrustedKeys, KEY_ID_DIGITS};
use super::parse::{
    checked_text, feature_from_raw, lex_line, parse_licence_with, split_lines, ExistingSig,
    FeatureLine, LineContext, RecordKind,
};
use super::ParseError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey};
use std::collections::HashMap;
use std::fmt;

/// The only signature scheme so far; the prefix leaves room for others.
pub const SCHEME: &str = "ed25519";

/// A parsed `sig=` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigField {
    /// Fingerprint of the signing key's public half (see [`key_id`]).
    pub key_id: String,
    pub signature: Signature,
}

impl SigField {
    /// Parses `ed25519:<8 hex digits>:<base64 of 64 bytes>`.
    pub fn parse(text: &str) -> Result<SigField, String> {
        let mut parts = text.splitn(3, ':');
        let (Some(scheme), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "expected {SCHEME}:KEYID:BASE64 (as written by floatctl sign), found {text:?}"
            ));
        };
        if scheme != SCHEME {
            return Err(format!(
                "unknown signature scheme {scheme:?}; expected {SCHEME}"
            ));
        }
        if id.len() != KEY_ID_DIGITS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "expected a key id of {KEY_ID_DIGITS} hex digits, found {id:?}"
            ));
        }
        let bytes = STANDARD
            .decode(b64)
            .map_err(|e| format!("signature is not valid base64: {e}"))?;
        let signature = Signature::from_slice(&bytes)
            .map_err(|_| format!("signature is {} bytes; expected 64", bytes.len()))?;
        Ok(SigField {
            key_id: id.to_ascii_lowercase(),
            signature,
        })
    }
}

impl fmt::Display for SigField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME}:{}:{}",
            self.key_id,
            STANDARD.encode(self.signature.to_bytes())
        )
    }
}

/// What checking one FEATURE line's signature found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigCheck {
    /// Signed by the trusted key with this id, and untouched since.
    Valid { key_id: String },
    /// No `sig=` field.
    Missing,
    /// Signed by a key not trusted here.
    UnknownKey { key_id: String },
    /// Claims a trusted key but does not verify: edited, or moved from a
    /// file for another host.
    Bad { key_id: String },
}

impl SigCheck {
    pub fn is_valid(&self) -> bool {
        matches!(self, SigCheck::Valid { .. })
    }
}

impl fmt::Display for SigCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigCheck::Valid { .. } => f.write_str("ok"),
            SigCheck::Missing => f.write_str("missing signature"),
            SigCheck::UnknownKey { key_id } => write!(f, "unknown key {key_id}"),
            SigCheck::Bad { .. } => f.write_str("bad signature"),
        }
    }
}

/// Signs one FEATURE line for a file with these SERVER and FAILOVER host ids.
pub fn sign_feature(
    feature: &FeatureLine,
    server: &HostId,
    failover: Option<&HostId>,
    key: &SigningKey,
) -> SigField {
    let message = signed_message(feature, server, failover);
    SigField {
        key_id: key_id(&key.verifying_key()),
        signature: key.sign(message.as_bytes()),
    }
}

/// Checks one FEATURE line's signature against the trusted keys, with
/// `verify_strict` (which refuses malleable signatures and weak keys).
pub fn check_feature(
    feature: &FeatureLine,
    server: &HostId,
    failover: Option<&HostId>,
    keys: &TrustedKeys,
) -> SigCheck {
    check_message(
        feature.sig.as_ref(),
        signed_message(feature, server, failover).as_bytes(),
        keys,
    )
}

/// Checks a `sig=` field against the canonical message it should cover
/// (for callers that need the message too).
pub fn check_message(sig: Option<&SigField>, message: &[u8], keys: &TrustedKeys) -> SigCheck {
    let Some(sig) = sig else {
        return SigCheck::Missing;
    };
    let mut candidates = keys.with_id(&sig.key_id).peekable();
    if candidates.peek().is_none() {
        return SigCheck::UnknownKey {
            key_id: sig.key_id.clone(),
        };
    }
    if candidates.any(|key| key.verify_strict(message, &sig.signature).is_ok()) {
        SigCheck::Valid {
            key_id: sig.key_id.clone(),
        }
    } else {
        SigCheck::Bad {
            key_id: sig.key_id.clone(),
        }
    }
}

/// A signed licence file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedLicence {
    pub text: String,
    /// FEATURE lines signed.
    pub features: usize,
    /// Lines whose signed content repeats an earlier line's: a server
    /// counts such a line once, so a second purchase needs a field that
    /// tells it apart (e.g. `serial=`).
    pub warnings: Vec<String>,
}

/// Signs every FEATURE line of a licence file, adding `sig=` after the last
/// field or replacing the one there. Comments, blank lines, spacing and
/// every other line stay byte for byte; an old `sig=` value need not be
/// valid. Any line that does not parse is an error: a vendor should not
/// ship a file with lines the server skips.
pub fn sign_licence(
    name: &str,
    bytes: &[u8],
    key: &SigningKey,
) -> Result<SignedLicence, Vec<ParseError>> {
    let file = parse_licence_with(name, bytes, ExistingSig::Replace)?;
    if !file.errors.is_empty() {
        return Err(file.errors);
    }
    let server = &file.server.hostid;
    let failover = file.failover.as_ref().map(|f| &f.hostid);
    let mut out = String::with_capacity(bytes.len() + file.features.len() * 110);
    let mut features = 0;
    let mut warnings = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    for line in split_lines(bytes) {
        let text = checked_text(name, &line).map_err(|e| vec![e])?;
        let ctx = LineContext {
            file: name,
            number: line.number,
            text,
        };
        let raw = match lex_line(&ctx).map_err(|e| vec![e])? {
            Some(raw) if raw.kind == RecordKind::Feature => raw,
            _ => {
                out.push_str(text);
                out.push_str(&String::from_utf8_lossy(line.ending));
                continue;
            }
        };
        let feature = feature_from_raw(&ctx, &raw, ExistingSig::Replace).map_err(|e| vec![e])?;
        let message = signed_message(&feature, server, failover);
        if let Some(first) = first_line_of.get(&message) {
            warnings.push(format!(
                "{name}:{}: FEATURE {} has the same signed fields as line {first}; a server \
                 counts it once (add a field such as serial= to tell them apart)",
                line.number, feature.name
            ));
        } else {
            first_line_of.insert(message, line.number);
        }
        let sig = format!("sig={}", sign_feature(&feature, server, failover, key));
        match raw.fields.iter().find(|f| f.key == "sig") {
            Some(old) => {
                out.push_str(&text[..old.span.start]);
                out.push_str(&sig);
                out.push_str(&text[old.span.end..]);
            }
            None => {
                out.push_str(&text[..raw.fields_end]);
                out.push(' ');
                out.push_str(&sig);
                out.push_str(&text[raw.fields_end..]);
            }
        }
        out.push_str(&String::from_utf8_lossy(line.ending));
        features += 1;
    }
    Ok(SignedLicence {
        text: out,
        features,
        warnings,
    })
}

#[cfg(test)]
mod tests;
