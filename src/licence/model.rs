//! What a licence grants, once parsed and verified: the vocabulary the seat
//! ledger works in. Parsing and signatures live beside this module; nothing
//! here knows about files.

use crate::civil::Date;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// Most dot-separated parts a version has.
const MAX_VERSION_PARTS: usize = 8;

/// A feature version such as `2.0` or `10.1.3`, compared numerically part
/// by part, with trailing zero parts ignored (`2` == `2.0`). Held inline
/// (no allocation), so copying one is free: a grant, its record and its
/// reply each carry the version asked for.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version {
    parts: [u32; MAX_VERSION_PARTS],
    len: u8,
}

impl Version {
    /// Parses dot-separated decimal parts (at most 8, each fitting in u32).
    pub fn parse(text: &str) -> Result<Version, String> {
        if text.is_empty() {
            return Err("empty version".into());
        }
        let mut v = Version {
            parts: [0; MAX_VERSION_PARTS],
            len: 0,
        };
        for part in text.split('.') {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("version {text:?} is not dot-separated numbers"));
            }
            let n: u32 = part
                .parse()
                .map_err(|_| format!("version part {part:?} is too large"))?;
            if v.len as usize == MAX_VERSION_PARTS {
                return Err(format!("version {text:?} has more than 8 parts"));
            }
            v.parts[v.len as usize] = n;
            v.len += 1;
        }
        while v.len > 1 && v.parts[v.len as usize - 1] == 0 {
            v.len -= 1;
        }
        Ok(v)
    }

    /// The parts as written (trailing zeros after the first dropped).
    pub fn parts(&self) -> &[u32] {
        &self.parts[..self.len as usize]
    }

    fn significant(&self) -> &[u32] {
        let parts = self.parts();
        let mut end = parts.len();
        while end > 0 && parts[end - 1] == 0 {
            end -= 1;
        }
        &parts[..end]
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.significant() == other.significant()
    }
}
impl Eq for Version {}
impl std::hash::Hash for Version {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.significant().hash(state)
    }
}
impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.significant().cmp(other.significant())
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = self.parts();
        let mut iter = parts.iter();
        if let Some(first) = iter.next() {
            write!(f, "{first}")?;
        }
        if parts.len() == 1 {
            return write!(f, ".0");
        }
        for p in iter {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for Version {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Version::parse(&s)
    }
}
impl From<Version> for String {
    fn from(v: Version) -> String {
        v.to_string()
    }
}

/// When a licence stops serving. Orders soonest first, `Permanent` last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Expiry {
    /// The last day the licence serves (inclusive).
    Date(Date),
    Permanent,
}

impl Expiry {
    pub fn parse(text: &str) -> Result<Expiry, String> {
        if text.eq_ignore_ascii_case("permanent") {
            return Ok(Expiry::Permanent);
        }
        Date::parse(text)
            .map(Expiry::Date)
            .ok_or_else(|| format!("expected a date YYYY-MM-DD or \"permanent\", found {text:?}"))
    }

    /// True once the last serving day has passed.
    pub fn is_expired(self, today: Date) -> bool {
        matches!(self, Expiry::Date(d) if d < today)
    }

    /// Days of service left counting today, or `None` when permanent.
    pub fn days_left(self, today: Date) -> Option<i64> {
        match self {
            Expiry::Date(d) => Some(today.days_until(d)),
            Expiry::Permanent => None,
        }
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::Date(d) => d.fmt(f),
            Expiry::Permanent => f.write_str("permanent"),
        }
    }
}
impl TryFrom<String> for Expiry {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Expiry::parse(&s)
    }
}
impl From<Expiry> for String {
    fn from(e: Expiry) -> String {
        e.to_string()
    }
}

/// How checkouts share a seat (`share=` on a FEATURE line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Share {
    /// Every checkout takes its own seats.
    None,
    /// Checkouts by the same user take one seat.
    User,
    /// Checkouts from the same host take one seat.
    Host,
}

impl Share {
    pub fn parse(text: &str) -> Result<Share, String> {
        match text {
            "none" => Ok(Share::None),
            "user" => Ok(Share::User),
            "host" => Ok(Share::Host),
            _ => Err(format!("expected share=user, host or none, found {text:?}")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Share::None => "none",
            Share::User => "user",
            Share::Host => "host",
        }
    }
}

/// How many seats a licence line grants (`count=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Count {
    Seats(u32),
    /// `count=uncounted`: served without limit.
    Uncounted,
    /// `count=single`: node-locked single use, never served by a server.
    Single,
}

impl Count {
    pub fn parse(text: &str) -> Result<Count, String> {
        match text {
            "uncounted" => Ok(Count::Uncounted),
            "single" => Ok(Count::Single),
            _ if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => text
                .parse::<u32>()
                .map(Count::Seats)
                .map_err(|_| format!("count {text} is too large (at most {})", u32::MAX)),
            _ => Err(format!(
                "expected a count: a number, \"uncounted\" or \"single\", found {text:?}"
            )),
        }
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Count::Seats(n) => write!(f, "{n}"),
            Count::Uncounted => f.write_str("uncounted"),
            Count::Single => f.write_str("single"),
        }
    }
}

/// What makes licence lines combine into one pool: lines with equal keys
/// from any number of files add their counts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PoolKey {
    /// Shared with every grant of the pool.
    pub feature: std::sync::Arc<str>,
    pub version: Version,
    pub expiry: Expiry,
    pub share: Share,
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} expires={} share={}",
            self.feature,
            self.version,
            self.expiry,
            self.share.as_str()
        )
    }
}

/// A pool the server serves: combined licence lines of one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub key: PoolKey,
    /// Never `Count::Single`: single-use lines are not served.
    pub count: Count,
    /// Seconds a seat stays out after checkout whatever the client does
    /// (the largest `min_checkout=` of the combined lines; 0 when unset).
    pub min_checkout_secs: u32,
    /// The seats that may roam, by the `roam=` of the lines that allow it,
    /// shortest roam first; empty when no line of the pool may roam.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roam: Vec<RoamAllowance>,
}

/// Seats of a pool whose licence lines say `roam=DAYS`: they may be out
/// roaming for at most `days` days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoamAllowance {
    pub days: u32,
    /// The seats of the pool's lines with this `roam=`.
    pub seats: Count,
}

impl Pool {
    /// Seats in the pool, `None` when uncounted.
    pub fn limit(&self) -> Option<u64> {
        count_limit(self.count)
    }

    /// The longest roam any of the pool's seats may make; `None` when
    /// they may not roam.
    pub fn longest_roam(&self) -> Option<u32> {
        self.roam.iter().map(|a| a.days).max()
    }

    /// Seats that may roam for `days` days or longer: those of the lines
    /// allowing at least that; `None` when uncounted.
    pub fn roam_seats(&self, days: u32) -> Option<u64> {
        self.roam
            .iter()
            .filter(|a| a.days >= days)
            .try_fold(0u64, |sum, a| count_limit(a.seats).map(|n| sum + n))
    }
}

fn count_limit(count: Count) -> Option<u64> {
    match count {
        Count::Seats(n) => Some(n as u64),
        Count::Uncounted => None,
        Count::Single => Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("10.0") > v("9.9"));
        assert_eq!(v("2"), v("2.0.0"));
        assert!(v("2.0.1") > v("2"));
        assert_eq!(v("2").to_string(), "2.0");
        assert_eq!(v("2.10").to_string(), "2.10");
        for bad in [
            "",
            "1..2",
            "a",
            "1.x",
            "99999999999",
            "-1",
            "1.2.3.4.5.6.7.8.9",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_orders_soonest_first() {
        let a = Expiry::parse("2027-01-01").unwrap();
        let b = Expiry::parse("2028-01-01").unwrap();
        assert!(a < b && b < Expiry::Permanent);
        let today = Date::parse("2027-01-01").unwrap();
        assert!(!a.is_expired(today));
        assert!(a.is_expired(today.add_days(1)));
        assert!(!Expiry::Permanent.is_expired(today));
    }

    #[test]
    fn roam_seats_count_the_lines_that_allow_at_least_the_days() {
        let pool = Pool {
            key: PoolKey {
                feature: "cad".into(),
                version: Version::parse("1").unwrap(),
                expiry: Expiry::Permanent,
                share: Share::None,
            },
            count: Count::Seats(10),
            min_checkout_secs: 0,
            roam: vec![
                RoamAllowance {
                    days: 3,
                    seats: Count::Seats(2),
                },
                RoamAllowance {
                    days: 30,
                    seats: Count::Seats(1),
                },
            ],
        };
        assert_eq!(pool.longest_roam(), Some(30));
        assert_eq!(pool.roam_seats(1), Some(3));
        assert_eq!(pool.roam_seats(3), Some(3));
        assert_eq!(pool.roam_seats(4), Some(1));
        assert_eq!(pool.roam_seats(31), Some(0));
        let mut open = pool.clone();
        open.roam[1].seats = Count::Uncounted;
        assert_eq!(open.roam_seats(3), None);
        open.roam.clear();
        assert_eq!((open.longest_roam(), open.roam_seats(1)), (None, Some(0)));
    }

    #[test]
    fn counts_parse_and_reject_overflow() {
        assert_eq!(Count::parse("10").unwrap(), Count::Seats(10));
        assert_eq!(Count::parse("uncounted").unwrap(), Count::Uncounted);
        assert!(Count::parse("4294967296").is_err());
        assert!(Count::parse("-3").is_err());
        assert!(Count::parse("").is_err());
    }
}
