//! Roam requests (ROAM, ROAM-EXTEND, ROAM-RETURN): the ledger decides and
//! keeps the seats; this module signs the tokens with the pair's roam key.
//!
//! The roam key is an Ed25519 key in the state directory (`roam.key`,
//! mode 0600, the `vendor.key` format). A pair signs with one key, so
//! tokens from either server verify with the key the client pinned: the
//! key recorded last in the pair's journal (`Event::RoamKey`, wrapped
//! under the peer secret; `roam::key`). Before it signs, a server takes
//! that key if it holds another; records its own if the journal names
//! none; and makes one if there is none at all (the first roam).

use super::conn::Session;
use super::core::Core;
use super::release::Reply;
use crate::codes::Code;
use crate::ledger::{Event, Gate, Grant, Ledger, Now, Refusal, RoamKey, RoamRequest};
use crate::licence::keys::{format_secret_key, generate_signing_key, key_id, parse_secret_key};
use crate::licence::Served;
use crate::protocol::reply;
use crate::protocol::Request;
use crate::roam::RoamToken;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use std::path::Path;

/// The roam key's file name in the state directory.
pub const ROAM_KEY_FILE: &str = "roam.key";

/// The pair's roam key, once this server has it.
#[derive(Default)]
pub struct RoamDesk {
    key: Option<SigningKey>,
    /// In a pair: the key that wraps the roam key for the journal.
    wrapping: Option<[u8; 32]>,
}

impl RoamDesk {
    /// Reads the state directory's roam key, if there is one yet. A pair
    /// member passes the wrapping key derived from its peer secret.
    pub fn load(state_dir: &Path, wrapping: Option<[u8; 32]>) -> Result<RoamDesk, String> {
        let path = state_dir.join(ROAM_KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => {
                Some(parse_secret_key(&text).map_err(|e| format!("{}: {e}", path.display()))?)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(RoamDesk { key, wrapping })
    }

    /// Makes this server sign with the pair's key (see the module
    /// documentation): a few milliseconds of file I/O on the loop, once
    /// when the key is made or taken over.
    fn ready(&mut self, ledger: &mut Ledger, state_dir: &Path, now: Now) -> Result<(), String> {
        let mine = self.key.as_ref().map(|k| key_id(&k.verifying_key()));
        match ledger.roam_key() {
            Some(recorded) if Some(&recorded.key_id) == mine.as_ref() => Ok(()),
            Some(recorded) => {
                let id = recorded.key_id.clone();
                let wrapping = self.wrapping.ok_or_else(|| {
                    format!(
                        "the journal names the pair's roam key {id}, which this server (without \
                         a peer secret) cannot read; copy roam.key from the server that made it"
                    )
                })?;
                let key = crate::roam::key::unwrap(&recorded.wrapped, &wrapping, &id)
                    .map_err(|e| format!("the pair's roam key {id}: {e}"))?;
                self.install(key, state_dir, "took the pair's roam key")
            }
            None => {
                if self.key.is_none() {
                    let key = generate_signing_key().map_err(|e| e.0)?;
                    self.install(key, state_dir, "made the roam key")?;
                }
                let (Some(wrapping), Some(key)) = (self.wrapping, &self.key) else {
                    return Ok(()); // standalone: nobody to tell
                };
                let mut nonce = [0u8; 16];
                getrandom::fill(&mut nonce).map_err(|e| format!("randomness: {e}"))?;
                ledger.commit(
                    Event::RoamKey(RoamKey {
                        key_id: key_id(&key.verifying_key()),
                        wrapped: crate::roam::key::wrap(key, &wrapping, nonce),
                        at: now.unix,
                    }),
                    now,
                );
                Ok(())
            }
        }
    }

    fn install(&mut self, key: SigningKey, state_dir: &Path, what: &str) -> Result<(), String> {
        let path = state_dir.join(ROAM_KEY_FILE);
        super::write_private(&path, format_secret_key(&key).as_bytes())?;
        let id = key_id(&key.verifying_key());
        match self.key.as_ref().map(|k| key_id(&k.verifying_key())) {
            Some(old) => log::warn!(
                "{what} {id} in place of {old} ({}): tokens signed by {old} fail the offline \
                 check of users who pinned {id}",
                path.display()
            ),
            None => log::info!("{what} {id} ({})", path.display()),
        }
        self.key = Some(key);
        Ok(())
    }
}

/// The server pair as tokens name it: the host ids of the first served
/// licence file's SERVER line and, if it has one, its FAILOVER line. Both
/// servers of a pair serve the same file, so both give the same name.
pub fn pair_name(served: &Served) -> String {
    let Some(file) = served.files.first() else {
        return "none".into();
    };
    match &file.failover {
        Some(failover) => format!("{}+{}", file.server.hostid, failover.hostid),
        None => file.server.hostid.to_string(),
    }
}

/// Answers a roam request from `session` (`Core::serve` calls this for
/// ROAM, ROAM-EXTEND and ROAM-RETURN). A reply that reports a change waits
/// for its record, like a grant's.
pub fn handle(core: &mut Core, session: Session, request: Request, now: Now) -> Reply {
    let new_roam = matches!(request, Request::Roam { .. });
    let (text, granted) = answer(core, session, request, now);
    Reply {
        text,
        wait_for: core.ledger.take_change(),
        // A new roam's seats are taken back should its record never
        // become durable; an extension's or a return's need nothing.
        grant: granted.filter(|_| new_roam),
    }
}

/// The reply's text, and the handle of the roam it reports, if any.
fn answer(
    core: &mut Core,
    session: Session,
    request: Request,
    now: Now,
) -> (String, Option<crate::ledger::Name>) {
    if let Request::RoamReturn { id } = &request {
        let text = match core.ledger.return_roam(id, now) {
            Ok(grant) => reply::ok()
                .field("feature", &grant.feature)
                .field("count", grant.count)
                .finish(),
            Err(refusal) => core.refused(&refusal),
        };
        return (text, None);
    }
    if !roam_allowed(pair_view(core)) {
        let refusal = Refusal::new(
            Code::RoamUnavailable,
            "the other server of the pair is catching up or not acknowledging, so no roam is \
             granted or extended now: a roam holds seats for days, and a server that took over \
             without knowing of it would give them out again; try again shortly",
        );
        core.counters.denied(refusal.code);
        return (core.refused(&refusal), None);
    }
    // The key first: a roam granted without a token to give would hold
    // seats nobody can use. Only a server that may grant now takes the
    // pair's key or records it; otherwise the ledger refuses below.
    if *core.ledger.gate() == Gate::Open {
        if let Err(e) = core.roam.ready(&mut core.ledger, &core.state_dir, now) {
            log::error!("no roam key: {e}");
            let refusal = Refusal::new(Code::Internal, format!("no roam key to sign with: {e}"));
            core.counters.denied(refusal.code);
            return (core.refused(&refusal), None);
        }
    }
    let result = match request {
        Request::Roam {
            feature,
            version,
            count,
            days,
            hostid,
        } => {
            let request = RoamRequest {
                checkout: session.request(feature, version, count, false),
                days,
                hostid,
            };
            core.ledger.roam(&request, now)
        }
        Request::RoamExtend { id, days } => core.ledger.extend_roam(&id, days, now),
        other => unreachable!("not a roam request: {other:?}"),
    };
    match result {
        Ok(grant) => (
            token_reply(core, &grant),
            Some(std::sync::Arc::clone(&grant.handle)),
        ),
        Err(refusal) => {
            core.counters.denied(refusal.code);
            (core.refused(&refusal), None)
        }
    }
}

/// Whether this server may grant or extend a roam now, given its pair:
/// `None` for a lone server, else whether replies wait for the standby's
/// acknowledgement and the state the other server last reported.
///
/// A roam cannot be reclaimed (its client is offline) and lasts days, so
/// a server that took over without knowing of it would give its seats out
/// again. With the standby in sync, the reply waits until the standby has
/// the roam. With the other server out of reach, this one serves alone and
/// the other catches up from it when it returns. In between (the standby
/// catching up or no longer acknowledging, or both servers active), a roam
/// could miss the server that serves next: refused.
pub fn roam_allowed(pair: Option<(bool, Option<&str>)>) -> bool {
    match pair {
        None => true,
        Some((_, Some("inaccessible"))) => true,
        Some((wait_for_acks, Some("ready"))) => wait_for_acks,
        Some(_) => false,
    }
}

fn pair_view(core: &Core) -> Option<(bool, Option<&str>)> {
    core.pair.as_ref().map(|p| {
        let other = p.status.servers.get(1).map(|s| s.state.as_str());
        (p.wait_for_acks, other)
    })
}

/// `OK token=T pubkey=K ...`: the token, the key that signed it (for the
/// client to pin or compare), and what a person reading it wants to know.
fn token_reply(core: &mut Core, grant: &Grant) -> String {
    let pair = pair_name(&core.served);
    let key = core.roam.key.as_ref().expect("made before the grant");
    let public = key.verifying_key();
    let token = RoamToken::from_grant(grant, &pair, &public).expect("a roam's grant");
    reply::ok()
        .field("token", token.sign(key))
        .field("pubkey", STANDARD.encode(public.as_bytes()))
        .field("feature", &grant.feature)
        .field("count", grant.count)
        .field("until", crate::civil::format_timestamp(token.until))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::roam_allowed;

    #[test]
    fn roams_wait_for_a_standby_in_sync_or_a_server_serving_alone() {
        assert!(roam_allowed(None));
        assert!(roam_allowed(Some((true, Some("ready")))));
        assert!(roam_allowed(Some((false, Some("inaccessible")))));
        assert!(roam_allowed(Some((true, Some("inaccessible")))));
        for (acks, other) in [
            (false, Some("ready")),
            (true, Some("syncing")),
            (false, Some("syncing")),
            (true, Some("starting")),
            (true, Some("active")),
            (true, None),
        ] {
            assert!(!roam_allowed(Some((acks, other))), "{acks} {other:?}");
        }
    }
}
