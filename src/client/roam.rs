//! Roaming for applications: take seats away for days, keep their token
//! in the user's roam store, and check it offline.
//!
//! The store is a directory of the user's (`$FLOATD_ROAM_DIR`, else
//! `$XDG_DATA_HOME/floatd/roams`, else `~/.local/share/floatd/roams`),
//! mode 0700:
//!
//! - `<feature>.<id digest>.token`: one token a file (mode 0600);
//! - `pins`: one line per server pair, `PAIR BASE64-KEY`: the roam key
//!   the first roam from that pair was signed with. Later tokens from the
//!   pair must be signed by it; a server offering another key is refused
//!   (and the roam it just granted handed back).
//!
//! [`RoamStore::check`] is what an application calls offline: a token for
//! the feature, good on this machine, within its dates, signed by the
//! pinned key. `docs/ROAMING.md` says what that stops and what it cannot.

use super::{Client, ClientError};
use crate::civil::unix_now_secs;
use crate::codes::Code;
use crate::licence::keys::{key_id, parse_public_key};
use crate::licence::{HostIds, Version};
use crate::protocol::{line, Request};
use crate::roam::{check_offline, roam_hostid, OfflineRefusal, RoamToken, SignedToken};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Environment variable naming the roam store's directory.
pub const ROAM_DIR_ENV: &str = "FLOATD_ROAM_DIR";

const PINS_FILE: &str = "pins";
const TOKEN_SUFFIX: &str = ".token";

/// Why a roam call failed.
#[derive(Debug)]
pub enum RoamError {
    /// The server refused, or could not be reached.
    Client(ClientError),
    /// The roam store could not be read or written.
    Store(String),
    /// The server's token cannot be used here (signed by another key than
    /// the one pinned for its pair, or for another machine). The roam was
    /// handed back.
    Unusable(String),
    /// No stored token matches.
    NotFound(String),
}

impl fmt::Display for RoamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoamError::Client(e) => e.fmt(f),
            RoamError::Store(e) => write!(f, "roam store: {e}"),
            RoamError::Unusable(e) => write!(f, "unusable roam token: {e}"),
            RoamError::NotFound(e) => write!(f, "no roam token: {e}"),
        }
    }
}

impl std::error::Error for RoamError {}

impl From<ClientError> for RoamError {
    fn from(e: ClientError) -> RoamError {
        RoamError::Client(e)
    }
}

/// A token in the store.
#[derive(Clone, Debug)]
pub struct StoredToken {
    pub path: PathBuf,
    pub signed: SignedToken,
}

impl StoredToken {
    pub fn token(&self) -> &RoamToken {
        &self.signed.token
    }
}

/// A token file and what reading it gave.
type TokenFile = (PathBuf, Result<SignedToken, String>);

/// The user's roam store.
#[derive(Clone, Debug)]
pub struct RoamStore {
    dir: PathBuf,
}

impl RoamStore {
    pub fn open(dir: impl Into<PathBuf>) -> RoamStore {
        RoamStore { dir: dir.into() }
    }

    /// The store at its usual place (see the module documentation).
    pub fn default_store() -> Result<RoamStore, RoamError> {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let dir = env(ROAM_DIR_ENV)
            .map(PathBuf::from)
            .or_else(|| env("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("floatd/roams")))
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local/share/floatd/roams")))
            .ok_or_else(|| {
                RoamError::Store(format!(
                    "no place for roam tokens: set {ROAM_DIR_ENV} or HOME"
                ))
            })?;
        Ok(RoamStore::open(dir))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_dir(&self) -> Result<(), RoamError> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| self.fail(&self.dir, e))
    }

    fn fail(&self, path: &Path, e: impl fmt::Display) -> RoamError {
        RoamError::Store(format!("{}: {e}", path.display()))
    }

    /// Writes a file of the store (mode 0600) atomically.
    fn write(&self, name: &str, text: &str) -> Result<PathBuf, RoamError> {
        use std::os::unix::fs::OpenOptionsExt;
        self.ensure_dir()?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| self.fail(&tmp, e))?;
        file.write_all(text.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| self.fail(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| self.fail(&path, e))?;
        Ok(path)
    }

    fn pins(&self) -> Result<Vec<(String, String)>, RoamError> {
        let path = self.dir.join(PINS_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(pair, key)| (pair.to_string(), key.trim().to_string()))
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.fail(&path, e)),
        }
    }

    /// The roam key pinned for a server pair, if one is.
    pub fn pinned(&self, pair: &str) -> Result<Option<VerifyingKey>, RoamError> {
        let Some((_, key)) = self.pins()?.into_iter().find(|(p, _)| p == pair) else {
            return Ok(None);
        };
        parse_public_key(&format!("floatd-ed25519-public {key}"))
            .map(Some)
            .map_err(|e| RoamError::Store(format!("the key pinned for {pair}: {e}")))
    }

    /// Pins `key` for `pair` (the first roam from that pair).
    pub fn pin(&self, pair: &str, key: &VerifyingKey) -> Result<(), RoamError> {
        let mut text = String::new();
        for (p, k) in self.pins()? {
            if p != pair {
                text.push_str(&format!("{p} {k}\n"));
            }
        }
        text.push_str(&format!("{pair} {}\n", STANDARD.encode(key.as_bytes())));
        self.write(PINS_FILE, &text).map(|_| ())
    }

    /// Every stored token that parses, by file name. Files that do not
    /// parse are left alone and reported by [`RoamStore::damaged`].
    pub fn tokens(&self) -> Result<Vec<StoredToken>, RoamError> {
        Ok(self
            .read_all()?
            .into_iter()
            .filter_map(|(path, parsed)| parsed.ok().map(|signed| StoredToken { path, signed }))
            .collect())
    }

    /// Token files that do not parse, with why.
    pub fn damaged(&self) -> Result<Vec<(PathBuf, String)>, RoamError> {
        Ok(self
            .read_all()?
            .into_iter()
            .filter_map(|(path, parsed)| parsed.err().map(|e| (path, e)))
            .collect())
    }

    fn read_all(&self) -> Result<Vec<TokenFile>, RoamError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.fail(&self.dir, e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(TOKEN_SUFFIX) && !n.starts_with('.'))
            })
            .collect();
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|path| {
                let parsed = fs::read_to_string(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| SignedToken::parse(&t).map_err(|e| e.to_string()));
                (path, parsed)
            })
            .collect())
    }

    /// Stored tokens matching `what`: a token's text, its id, or a feature
    /// name (every token of it); all tokens when `what` is `None`.
    pub fn find(&self, what: Option<&str>) -> Result<Vec<StoredToken>, RoamError> {
        let all = self.tokens()?;
        let Some(what) = what.map(str::trim) else {
            return Ok(all);
        };
        let wanted = SignedToken::parse(what).ok().map(|s| s.token.id);
        Ok(all
            .into_iter()
            .filter(|t| {
                let tok = t.token();
                Some(&tok.id) == wanted.as_ref() || tok.id == what || tok.feature == what
            })
            .collect())
    }

    /// Keeps a token (replacing an earlier one of the same roam).
    pub fn save(&self, signed: &SignedToken) -> Result<PathBuf, RoamError> {
        self.write(&file_name(&signed.token), &format!("{}\n", signed.text))
    }

    /// Forgets a roam's token (after it was returned or ended).
    pub fn remove(&self, token: &RoamToken) -> Result<(), RoamError> {
        let path = self.dir.join(file_name(token));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.fail(&path, e)),
            _ => Ok(()),
        }
    }

    /// Checks one token offline: signed by the key pinned for its pair,
    /// good on `host`, within its dates at `now`.
    pub fn check_token(
        &self,
        stored: &StoredToken,
        host: &HostIds,
        now: u64,
    ) -> Result<RoamToken, OfflineRefusal> {
        let token = stored.token();
        let Ok(Some(pinned)) = self.pinned(&token.pair) else {
            return Err(OfflineRefusal::BadSignature {
                key_id: token.key_id.clone(),
            });
        };
        check_offline(&stored.signed.text, &pinned, host, now)
    }

    /// The offline check an application makes: is there a token letting
    /// it use `count` seats of `feature` at `version` (or an older
    /// version) on `host` at `now`? The first good one, or why the last
    /// candidate was refused.
    pub fn check(
        &self,
        feature: &str,
        version: &Version,
        count: u32,
        host: &HostIds,
        now: u64,
    ) -> Result<RoamToken, RoamError> {
        let mut why = format!("no roam of {feature} is stored in {}", self.dir.display());
        for stored in self.find(Some(feature))? {
            let token = stored.token();
            if token.feature != feature {
                continue;
            }
            if token.pool < *version || token.count < count {
                why = format!(
                    "the roam of {feature} is for {} seat(s) up to version {}",
                    token.count, token.pool
                );
                continue;
            }
            match self.check_token(&stored, host, now) {
                Ok(token) => return Ok(token),
                Err(e) => why = e.to_string(),
            }
        }
        Err(RoamError::NotFound(why))
    }

    /// Takes a token the server just sent: pins its key if this is the
    /// first roam from its pair, checks it as it will be checked offline
    /// on this machine, and keeps it. Returns where it was kept.
    fn accept(&self, text: &str, pubkey: &str) -> Result<StoredToken, RoamError> {
        let signed = SignedToken::parse(text)
            .map_err(|e| RoamError::Unusable(format!("the server sent {e}")))?;
        let offered = parse_public_key(&format!("floatd-ed25519-public {pubkey}"))
            .map_err(|e| RoamError::Unusable(format!("the server's roam key: {e}")))?;
        let pair = &signed.token.pair;
        match self.pinned(pair)? {
            Some(pinned) if pinned != offered => {
                return Err(RoamError::Unusable(format!(
                    "the servers of {pair} signed with roam key {}, but this user pinned key {} \
                     for them at an earlier roam; if the pair's key really changed, remove its \
                     line from {}",
                    key_id(&offered),
                    key_id(&pinned),
                    self.dir.join(PINS_FILE).display()
                )));
            }
            Some(_) => {}
            None => self.pin(pair, &offered)?,
        }
        check_offline(text, &offered, &HostIds::detect(), unix_now_secs())
            .map_err(|e| RoamError::Unusable(e.to_string()))?;
        let path = self.save(&signed)?;
        Ok(StoredToken { path, signed })
    }
}

/// `<feature>.<12 hex digits of the id's SHA-256>.token`: one file a roam,
/// the same across its extensions, and nothing of the id (a secret) in
/// the name.
fn file_name(token: &RoamToken) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.id.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    let feature: String = token
        .feature
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{feature}.{hex}{TOKEN_SUFFIX}")
}

impl Client {
    /// Roams `count` seats of `feature` (`version` or newer) for `days`
    /// days to this machine, and keeps the token in `store`.
    pub fn roam(
        &self,
        feature: &str,
        version: &Version,
        count: u32,
        days: u32,
        store: &RoamStore,
    ) -> Result<StoredToken, RoamError> {
        let hostid = roam_hostid(&HostIds::detect()).ok_or_else(|| {
            RoamError::Unusable(
                "this machine has no host id (no machine id, MAC address or host name)".into(),
            )
        })?;
        let reply = self.request(&Request::Roam {
            feature: feature.to_string(),
            version: *version,
            count,
            days,
            hostid: hostid.to_string(),
        })?;
        self.keep_token(&reply, store, true)
    }

    /// Makes a stored roam last `days` days from today; keeps the new token.
    /// (Should the new token be of no use here, the old one is kept: it
    /// still holds until its own end.)
    pub fn extend_roam(
        &self,
        stored: &StoredToken,
        days: u32,
        store: &RoamStore,
    ) -> Result<StoredToken, RoamError> {
        let reply = self.request(&Request::RoamExtend {
            id: stored.token().id.clone(),
            days,
        })?;
        self.keep_token(&reply, store, false)
    }

    /// Hands a roam back to whichever server is active, and forgets its
    /// token. A roam the server no longer holds (it ended, or was returned
    /// or removed) is forgotten too.
    pub fn return_roam(&self, stored: &StoredToken, store: &RoamStore) -> Result<(), RoamError> {
        let result = self.request(&Request::RoamReturn {
            id: stored.token().id.clone(),
        });
        match result {
            Ok(_) => store.remove(stored.token()),
            Err(ClientError::Denied {
                code: Some(Code::UnknownHandle),
                ..
            }) => {
                store.remove(stored.token())?;
                Err(RoamError::NotFound(format!(
                    "the servers no longer hold the roam of {} (it ended, or was returned or \
                     removed); its token is forgotten",
                    stored.token().feature
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One roam request to the active server, walking the server list as
    /// every call does.
    fn request(&self, request: &Request) -> Result<String, ClientError> {
        self.shared
            .call(request, self.shared.config.failover_timeout)
    }

    /// Keeps the token of an `OK token=... pubkey=...` reply. A new roam
    /// whose token is of no use here is handed back at once (`hand_back`).
    fn keep_token(
        &self,
        reply: &str,
        store: &RoamStore,
        hand_back: bool,
    ) -> Result<StoredToken, RoamError> {
        let parsed = line::parse(reply).map_err(|e| RoamError::Client(ClientError::Protocol(e)))?;
        let (Some(text), Some(pubkey)) = (parsed.get("token"), parsed.get("pubkey")) else {
            return Err(RoamError::Client(ClientError::Protocol(format!(
                "a roam reply without token= and pubkey=: {reply:?}"
            ))));
        };
        match store.accept(text, pubkey) {
            Ok(stored) => Ok(stored),
            Err(e) => {
                if let Some(signed) = SignedToken::parse(text).ok().filter(|_| hand_back) {
                    let _ = self.request(&Request::RoamReturn {
                        id: signed.token.id,
                    });
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
#[path = "roam_tests.rs"]
mod tests;
