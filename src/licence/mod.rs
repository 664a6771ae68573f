//! Licence files: what a vendor signs and a server serves.
//!
//! One concern a module:
//!
//! - [`parse`]: the text format, lines to typed records, with file:line:col errors.
//! - [`hostid`]: host ids on SERVER/FAILOVER lines and this host's own ids.
//! - [`canonical`]: the exact bytes a FEATURE signature covers.
//! - [`signature`]: the `sig=` field, signing a file, checking a line.
//! - [`keys`]: vendor key files and the set of keys trusted here.
//! - [`search`]: which files a server reads, in which order.
//! - [`pools`]: from verified lines to the pools and ports a server serves.
//! - [`load`](mod@load): the server's entry points tying the above together.
//! - [`demo`]: the embedded demo licence for `floatd --demo`.
//!
//! # What the server calls
//!
//! ```no_run
//! use floatd::civil::Date;
//! use floatd::licence::{load, HostIds, LoadRequest, Side, TrustedKeys};
//! use std::path::Path;
//!
//! let keys = TrustedKeys::with_runtime_files(&["vendor.pub".into()])?; // embedded + --vendor-key
//! let host = HostIds::detect();
//! let exe_dir = floatd::licence::search::exe_dir();
//! let licence_path = floatd::licence::search::licence_path_setting(None); // --license, else FLOATD_LICENSE
//! let served = load(&LoadRequest {
//!     license_path: licence_path.as_deref(),
//!     cwd: Path::new("."),
//!     exe_dir: exe_dir.as_deref(),
//!     keys: &keys,
//!     host: &host,
//!     side: Side::Primary,
//!     today: Date::today(),
//!     strict: false,
//! })?;
//! for pool in &served.pools {
//!     println!("{} {}", pool.key, pool.count);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`load()`]`(&LoadRequest) -> Result<Served, LoadError>`: search, read, parse,
//!   verify, combine. `Err` only when nothing at all can be served; it lists
//!   every reason, one a line. On success [`Served::problems`] lists the lines
//!   and files that were skipped, and [`Served::expiring`] the pools that run
//!   out within [`EXPIRY_WARNING_DAYS`] days.
//! - [`find_files`]`(&LoadRequest) -> Vec<PathBuf>`: the search rules alone.
//! - [`load_files`] and [`load_sources`]: the same without the search, for
//!   `floatctl pools`, `floatd --demo` ([`demo::demo_source`] with
//!   [`demo::demo_keys`]) and tests.
//! - [`Served::pools`] is sorted by feature, soonest expiry first, version;
//!   a checkout for version V may be served from any pool of version >= V
//!   (the ledger's rule; pools only carry the versions).

pub mod canonical;
pub mod demo;
pub mod hostid;
pub mod keys;
pub mod load;
mod model;
pub mod parse;
pub mod pools;
pub mod search;
pub mod signature;

pub use hostid::{HostId, HostIds};
pub use keys::{KeyError, TrustedKeys};
pub use load::{find_files, load, load_files, load_sources, LoadRequest, Source};
pub use model::{Count, Expiry, Pool, PoolKey, RoamAllowance, Share, Version};
pub use parse::{parse_licence, FeatureLine, LicenceFile, ParseError, ServerLine};
pub use pools::{LoadError, LoadedFile, Served, Side, EXPIRY_WARNING_DAYS};
pub use signature::{check_feature, sign_licence, SigCheck, SigField};

/// The first `digits` lower-case hex digits of SHA-256 of `data`: short,
/// stable fingerprints for key ids and machine ids.
pub(crate) fn sha256_hex_prefix(data: &[u8], digits: usize) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data);
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex.truncate(digits);
    hex
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_prefix_matches_known_digest() {
        // sha256("abc") = ba7816bf 8f01cfea ...
        assert_eq!(super::sha256_hex_prefix(b"abc", 16), "ba7816bf8f01cfea");
        assert_eq!(super::sha256_hex_prefix(b"abc", 8), "ba7816bf");
    }
}
