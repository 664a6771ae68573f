//! Roaming in safe Rust, for the C functions `floatd_roam*`: take seats
//! away for days, keep the token in the user's roam store, check it
//! offline ([`floatd::client::roam`]; docs/ROAMING.md).
#![forbid(unsafe_code)]

use crate::codes::*;
use crate::model::{refuse_in_callback, SdkClient};
use floatd::client::{RoamError, RoamStore, StoredToken};
use floatd::licence::{HostIds, Version};

impl From<RoamError> for Failure {
    fn from(error: RoamError) -> Failure {
        match error {
            RoamError::Client(e) => Failure::from(e),
            RoamError::Store(_) => Failure::new(FLOATD_E_ROAM_STORE, error.to_string()),
            RoamError::Unusable(_) => Failure::new(FLOATD_E_ROAM_KEY, error.to_string()),
            RoamError::NotFound(_) => Failure::new(FLOATD_E_NO_ROAM, error.to_string()),
        }
    }
}

/// The roam store in `dir`, or the user's usual one (`FLOATD_ROAM_DIR`,
/// else `~/.local/share/floatd/roams`).
fn store(dir: Option<&str>) -> Result<RoamStore, Failure> {
    match dir.filter(|d| !d.is_empty()) {
        Some(dir) => Ok(RoamStore::open(dir)),
        None => Ok(RoamStore::default_store()?),
    }
}

fn version(text: Option<&str>) -> Result<Version, Failure> {
    Version::parse(text.filter(|v| !v.is_empty()).unwrap_or("0"))
        .map_err(|e| Failure::bad_argument(format!("version: {e}")))
}

/// The one kept roam `roam` names (a feature or a token).
fn one(store: &RoamStore, roam: &str) -> Result<StoredToken, Failure> {
    let mut found = store.find(Some(roam))?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Failure::new(
            FLOATD_E_NO_ROAM,
            format!("no roam of {roam} is kept in {}", store.dir().display()),
        )),
        n => Err(Failure::bad_argument(format!(
            "{n} kept roams match {roam}; name one by its token"
        ))),
    }
}

impl SdkClient {
    /// Roams `count` seats of `feature` for `days` days to this machine;
    /// returns when the roam ends (Unix seconds).
    pub fn roam(
        &self,
        feature: &str,
        version_text: Option<&str>,
        count: u32,
        days: u32,
        dir: Option<&str>,
    ) -> Result<u64, Failure> {
        refuse_in_callback()?;
        if feature.is_empty() || count == 0 || days == 0 {
            return Err(Failure::bad_argument(
                "a roam needs a feature, a count and days of at least 1",
            ));
        }
        let store = store(dir)?;
        let kept = self
            .client()
            .roam(feature, &version(version_text)?, count, days, &store)?;
        Ok(kept.token().until)
    }

    /// Makes the kept roam `roam` names last `days` days from today;
    /// returns when it now ends.
    pub fn extend_roam(&self, roam: &str, days: u32, dir: Option<&str>) -> Result<u64, Failure> {
        refuse_in_callback()?;
        if days == 0 {
            return Err(Failure::bad_argument("days must be at least 1"));
        }
        let store = store(dir)?;
        let kept = self
            .client()
            .extend_roam(&one(&store, roam)?, days, &store)?;
        Ok(kept.token().until)
    }

    /// Hands back the kept roams `roam` names (every one for `None`).
    pub fn return_roams(&self, roam: Option<&str>, dir: Option<&str>) -> Result<(), Failure> {
        refuse_in_callback()?;
        let store = store(dir)?;
        let found = store.find(roam.filter(|r| !r.is_empty()))?;
        if found.is_empty() {
            return Err(Failure::new(
                FLOATD_E_NO_ROAM,
                format!("no roam is kept in {}", store.dir().display()),
            ));
        }
        let mut failed = None;
        for kept in &found {
            if let Err(e) = self.client().return_roam(kept, &store) {
                failed = Some(Failure::from(e));
            }
        }
        failed.map_or(Ok(()), Err)
    }
}

/// The offline check: whether a kept token lets `count` seats of
/// `feature` at `version` (or older) run on this machine now; returns when
/// that roam ends.
pub fn roam_check(
    feature: &str,
    version_text: Option<&str>,
    count: u32,
    dir: Option<&str>,
) -> Result<u64, Failure> {
    if feature.is_empty() || count == 0 {
        return Err(Failure::bad_argument("a feature and a count of at least 1"));
    }
    let token = store(dir)?.check(
        feature,
        &version(version_text)?,
        count,
        &HostIds::detect(),
        floatd::civil::unix_now_secs(),
    )?;
    Ok(token.until)
}
