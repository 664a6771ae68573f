//! A blocking STATUS request with a deadline, for what the run needs to
//! know from the server before and after: the licensed count and the seats
//! in use.

use crate::protocol::StatusReport;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The server's status report, or why not, within `within`. A standby
/// whose greeting names the active server is left for that one.
pub fn fetch(addr: &str, within: Duration) -> Result<StatusReport, String> {
    fetch_hops(addr, within, 1)
}

fn fetch_hops(addr: &str, within: Duration, hops: u32) -> Result<StatusReport, String> {
    let deadline = Instant::now() + within;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let stream = TcpStream::connect_timeout(&sock, left()).map_err(|e| format!("{addr}: {e}"))?;
    stream.set_read_timeout(Some(left())).ok();
    stream.set_write_timeout(Some(left())).ok();
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("{addr}: greeting: {e}"))?;
    if !line.starts_with("FLOATD") {
        return Err(format!("{addr}: greeting {:?}", line.trim_end()));
    }
    let greeting = line.trim_end().as_bytes();
    let state = super::wire::field(greeting, b"state").unwrap_or(b"active");
    if let (false, Some(active), true) = (
        state == b"active" || state == b"recovering",
        super::wire::field_str(greeting, b"active"),
        hops > 0,
    ) {
        let active = active.to_string();
        return fetch_hops(&active, left(), hops - 1);
    }
    (&stream)
        .write_all(b"STATUS\n")
        .map_err(|e| format!("{addr}: {e}"))?;
    loop {
        line.clear();
        stream.set_read_timeout(Some(left())).ok();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("{addr}: status: {e}"))?;
        if n == 0 {
            return Err(format!("{addr}: closed before the status reply"));
        }
        if line.starts_with('*') {
            continue;
        }
        let json = line
            .trim_end()
            .strip_prefix("STATUS ")
            .ok_or_else(|| format!("{addr}: status reply {:?}", line.trim_end()))?;
        return serde_json::from_str(json).map_err(|e| format!("{addr}: status JSON: {e}"));
    }
}

/// Seats licensed for `feature` (all its pools), `None` when uncounted or
/// unknown.
pub fn licensed(report: &StatusReport, feature: &str) -> Option<u64> {
    let pools: Vec<_> = report
        .features
        .iter()
        .filter(|f| f.name == feature)
        .collect();
    if pools.is_empty() || pools.iter().any(|f| f.count.is_none()) {
        return None;
    }
    Some(pools.iter().filter_map(|f| f.count).sum())
}

/// Seats of `feature` in use on that server.
pub fn in_use(report: &StatusReport, feature: &str) -> u64 {
    report
        .features
        .iter()
        .filter(|f| f.name == feature)
        .map(|f| f.in_use)
        .sum()
}

/// The feature a run uses when none is given: the counted pool with the
/// most seats, else the first.
pub fn default_feature(report: &StatusReport) -> Option<String> {
    report
        .features
        .iter()
        .max_by_key(|f| f.count.map_or(0, |c| c + 1))
        .map(|f| f.name.clone())
}
