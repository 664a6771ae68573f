//! From parsed files to what a server serves: which files are this host's
//! (by side), which lines verify and are still valid, how lines combine
//! into pools, and which ports to listen on.
//!
//! Every line or file left out is logged and kept as a one-line problem,
//! so the status page and `floatctl pools` can show why.

use super::canonical::signed_message;
use super::hostid::HostIds;
use super::keys::TrustedKeys;
use super::model::{Count, Expiry, Pool, PoolKey, RoamAllowance};
use super::parse::{FeatureLine, LicenceFile, ServerLine};
use super::signature::{check_message, SigCheck};
use crate::civil::Date;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// Lines expiring within this many days are warned about.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// Which line of a file names this host: a primary serves the files whose
/// SERVER host id matches it, a backup those whose FAILOVER host id does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Primary,
    Backup,
}

impl Side {
    /// The record naming the host of this side.
    pub fn record(self) -> &'static str {
        match self {
            Side::Primary => "SERVER",
            Side::Backup => "FAILOVER",
        }
    }

    /// The `--role` value of this side.
    pub fn role(self) -> &'static str {
        match self {
            Side::Primary => "primary",
            Side::Backup => "backup",
        }
    }
}

/// A file this host serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub server: ServerLine,
    pub failover: Option<ServerLine>,
}

/// Everything a server needs from its licence files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// Sorted by feature, soonest expiry first, then version and sharing.
    pub pools: Vec<Pool>,
    /// The files this host serves, in search order.
    pub files: Vec<LoadedFile>,
    /// The listen port: the port on this side's line of the first served
    /// file that names one.
    pub port: Option<u16>,
    /// Ports named by later served files, without `port` and duplicates:
    /// bound if possible, success or failure logged.
    pub extra_ports: Vec<u16>,
    /// Pools expiring within [`EXPIRY_WARNING_DAYS`], with days left (0 on
    /// the last day).
    pub expiring: Vec<(PoolKey, i64)>,
    /// Lines and files left out, one message each (`file:line[:col]: why`).
    pub problems: Vec<String>,
    /// Those of [`Served::problems`] left out because they are broken: a
    /// line or file that does not parse, a bad, missing or untrusted
    /// signature, a file that cannot be read. Not expired, single-use,
    /// repeated or other hosts' lines, which are as they should be.
    pub skipped: Vec<String>,
}

/// Nothing can be served; every reason, one a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub reasons: Vec<String>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no licence can be served:")?;
        for reason in &self.reasons {
            write!(f, "\n{reason}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// Problems met while loading, each logged as it is found.
#[derive(Default)]
pub(crate) struct Problems {
    pub all: Vec<String>,
    /// The broken lines and files among them ([`Served::skipped`]).
    pub skipped: Vec<String>,
}

impl Problems {
    /// Problems already logged (by the file search), all of them broken files.
    pub fn logged_skips(messages: Vec<String>) -> Problems {
        Problems {
            skipped: messages.clone(),
            all: messages,
        }
    }

    pub fn warn(&mut self, message: String) {
        log::warn!("{message}");
        self.all.push(message);
    }

    pub fn info(&mut self, message: String) {
        log::info!("{message}");
        self.all.push(message);
    }

    /// A broken line or file, left out.
    pub fn skip(&mut self, message: String) {
        self.skipped.push(message.clone());
        self.warn(message);
    }
}

/// Checks every FEATURE line's signature, on all cores when there are
/// many: Ed25519 verification is most of the start-up time of a large
/// licence file (1,000 lines: ~30 ms on one core of a small VM).
fn check_all(features: &[FeatureLine], messages: &[String], keys: &TrustedKeys) -> Vec<SigCheck> {
    let check = |(f, m): (&FeatureLine, &String)| check_message(f.sig.as_ref(), m.as_bytes(), keys);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || features.len() < 64 {
        return features.iter().zip(messages).map(check).collect();
    }
    let chunk = features.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = features
            .chunks(chunk)
            .zip(messages.chunks(chunk))
            .map(|(f, m)| scope.spawn(move || f.iter().zip(m).map(check).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("signature check thread"))
            .collect()
    })
}

/// Builds what this host serves from parsed files (in search order).
pub(crate) fn serve(
    files: Vec<(PathBuf, LicenceFile)>,
    mut problems: Problems,
    keys: &TrustedKeys,
    host: &HostIds,
    side: Side,
    today: Date,
) -> Result<Served, LoadError> {
    let mut pools: Vec<Pool> = Vec::new();
    let mut pool_index: HashMap<PoolKey, usize> = HashMap::new();
    let mut served_files = Vec::new();
    // Signed messages already counted, and where: a line pasted twice, or
    // into a second file for the same hosts, must not add its seats twice.
    let mut counted: HashMap<String, String> = HashMap::new();

    for (path, file) in files {
        for error in &file.errors {
            problems.skip(format!("{error}; line skipped"));
        }
        if !is_served_by(&file, host, side, &mut problems) {
            continue;
        }
        let server_id = &file.server.hostid;
        let failover_id = file.failover.as_ref().map(|f| &f.hostid);
        let messages: Vec<String> = file
            .features
            .iter()
            .map(|f| signed_message(f, server_id, failover_id))
            .collect();
        let checks = check_all(&file.features, &messages, keys);
        for ((feature, message), check) in file.features.iter().zip(messages).zip(checks) {
            let place = format!("{}:{}: FEATURE {}", file.name, feature.line, feature.name);
            match check {
                SigCheck::Valid { .. } => {}
                SigCheck::Missing => {
                    problems.skip(format!(
                        "{place}: missing signature (no sig=); line skipped"
                    ));
                    continue;
                }
                SigCheck::UnknownKey { key_id } => {
                    problems.skip(format!(
                        "{place}: signed by key {key_id}, which is not trusted here \
                         (give its vendor.pub with --vendor-key); line skipped"
                    ));
                    continue;
                }
                SigCheck::Bad { key_id } => {
                    problems.skip(format!(
                        "{place}: bad signature (key {key_id}): the line was edited, or belongs \
                         to a file for another host; line skipped"
                    ));
                    continue;
                }
            }
            if let Some(first) = counted.get(&message) {
                problems.warn(format!(
                    "{place}: same signed licence as {first}; counted once"
                ));
                continue;
            }
            counted.insert(message, format!("{}:{}", file.name, feature.line));
            if feature.count == Count::Single {
                problems.info(format!(
                    "{place}: count=single is node-locked single use; a server does not serve it"
                ));
                continue;
            }
            if feature.expiry.is_expired(today) {
                problems.info(format!(
                    "{place} {}: expired on {}; not served",
                    feature.version, feature.expiry
                ));
                continue;
            }
            if let Some(days) = feature.expiry.days_left(today) {
                if days <= EXPIRY_WARNING_DAYS {
                    log::warn!(
                        "{place} {}: expires on {} ({days} days left)",
                        feature.version,
                        feature.expiry
                    );
                }
            }
            let key = PoolKey {
                feature: feature.name.as_str().into(),
                version: feature.version,
                expiry: feature.expiry,
                share: feature.share,
            };
            match pool_index.get(&key) {
                Some(&i) => {
                    let pool = &mut pools[i];
                    let (count, overflowed) = add_counts(pool.count, feature.count);
                    if overflowed {
                        problems.warn(format!(
                            "{place}: pool {key} would exceed {} seats; capped there",
                            u32::MAX
                        ));
                    }
                    pool.count = count;
                    pool.min_checkout_secs = pool.min_checkout_secs.max(feature.min_checkout_secs);
                    add_roam(pool, feature);
                }
                None => {
                    pool_index.insert(key.clone(), pools.len());
                    let mut pool = Pool {
                        key,
                        count: feature.count,
                        min_checkout_secs: feature.min_checkout_secs,
                        roam: Vec::new(),
                    };
                    add_roam(&mut pool, feature);
                    pools.push(pool);
                }
            }
        }
        served_files.push(LoadedFile {
            path,
            server: file.server,
            failover: file.failover,
        });
    }

    if pools.is_empty() {
        let mut reasons = problems.all;
        reasons.push(if served_files.is_empty() {
            format!(
                "no licence file names this host on its {} line (role {}; this host's ids: {})",
                side.record(),
                side.role(),
                describe_host(host)
            )
        } else {
            "no FEATURE line in this host's licence files can be served".to_string()
        });
        return Err(LoadError { reasons });
    }

    pools.sort_by(|a, b| {
        (&a.key.feature, a.key.expiry, &a.key.version, a.key.share).cmp(&(
            &b.key.feature,
            b.key.expiry,
            &b.key.version,
            b.key.share,
        ))
    });
    let expiring = pools
        .iter()
        .filter_map(|pool| match pool.key.expiry {
            Expiry::Date(_) => pool
                .key
                .expiry
                .days_left(today)
                .filter(|&days| days <= EXPIRY_WARNING_DAYS)
                .map(|days| (pool.key.clone(), days)),
            Expiry::Permanent => None,
        })
        .collect();
    let (port, extra_ports) = choose_ports(&served_files, side);
    Ok(Served {
        pools,
        files: served_files,
        port,
        extra_ports,
        expiring,
        problems: problems.all,
        skipped: problems.skipped,
    })
}

/// True when `side` of this host serves `file`; otherwise says why not
/// (with a hint when the other side would).
fn is_served_by(file: &LicenceFile, host: &HostIds, side: Side, problems: &mut Problems) -> bool {
    let server_matches = file.server.hostid.matches(host);
    let failover_matches = file
        .failover
        .as_ref()
        .is_some_and(|f| f.hostid.matches(host));
    let (ours, other) = match side {
        Side::Primary => (server_matches, failover_matches),
        Side::Backup => (failover_matches, server_matches),
    };
    if ours {
        return true;
    }
    let other_side = match side {
        Side::Primary => Side::Backup,
        Side::Backup => Side::Primary,
    };
    if other {
        problems.warn(format!(
            "this host is the {} host of {}: run with --role {} to serve it",
            other_side.record(),
            file.name,
            other_side.role()
        ));
    } else if side == Side::Backup && file.failover.is_none() {
        problems.info(format!(
            "{}: not served by a backup: the file has no FAILOVER line",
            file.name
        ));
    } else {
        let failover = file
            .failover
            .as_ref()
            .map(|f| format!(" nor its FAILOVER hostid={}", f.hostid))
            .unwrap_or_default();
        problems.info(format!(
            "{}: not for this host: neither its SERVER hostid={}{failover} is one of this \
             host's ids (see floatctl hostid)",
            file.name, file.server.hostid
        ));
    }
    false
}

fn describe_host(host: &HostIds) -> String {
    if host.is_empty() {
        return "none found".into();
    }
    host.ids()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds two served counts: uncounted absorbs anything; seats saturate at
/// u32::MAX (the flag says so).
/// Adds a line's roamable seats to its pool: lines with the same `roam=`
/// add up, and each roam length keeps its own seats, so a pool of 7 seats
/// that may not roam and 3 that may is exactly that.
fn add_roam(pool: &mut Pool, feature: &FeatureLine) {
    let Some(days) = feature.roam_days else {
        return;
    };
    match pool.roam.iter_mut().find(|a| a.days == days) {
        Some(allowance) => allowance.seats = add_counts(allowance.seats, feature.count).0,
        None => {
            pool.roam.push(RoamAllowance {
                days,
                seats: feature.count,
            });
            pool.roam.sort_by_key(|a| a.days);
        }
    }
}

fn add_counts(a: Count, b: Count) -> (Count, bool) {
    match (a, b) {
        (Count::Seats(x), Count::Seats(y)) => match x.checked_add(y) {
            Some(sum) => (Count::Seats(sum), false),
            None => (Count::Seats(u32::MAX), true),
        },
        (Count::Uncounted, _) | (_, Count::Uncounted) => (Count::Uncounted, false),
        // Single lines never reach a pool; keep the other count.
        (Count::Single, other) | (other, Count::Single) => (other, false),
    }
}

/// The first served file's port (on this side's line) that is set, and the
/// other distinct ports in file order.
fn choose_ports(files: &[LoadedFile], side: Side) -> (Option<u16>, Vec<u16>) {
    let ports = files.iter().filter_map(|f| match side {
        Side::Primary => f.server.port,
        Side::Backup => f.failover.as_ref().and_then(|l| l.port),
    });
    let mut port = None;
    let mut extra = Vec::new();
    for p in ports {
        match port {
            None => port = Some(p),
            Some(first) if first != p && !extra.contains(&p) => extra.push(p),
            Some(_) => {}
        }
    }
    (port, extra)
}

#[cfg(test)]
mod tests;
