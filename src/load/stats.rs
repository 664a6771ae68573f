//! Counters and latency histograms, per worker thread and merged.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies are recorded in nanoseconds, 1 ns to 100 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("histogram bounds")
}

/// What one worker counted.
#[derive(Clone)]
pub struct Counts {
    /// Requests answered with OK (a checkout and its checkin are two).
    pub ops: u64,
    /// Error replies and connection failures, by code.
    pub errors: BTreeMap<String, u64>,
    /// Latency of every OK reply, from the request's write to its reply.
    pub latency: Histogram<u64>,
}

impl Default for Counts {
    fn default() -> Counts {
        Counts {
            ops: 0,
            errors: BTreeMap::new(),
            latency: new_histogram(),
        }
    }
}

impl Counts {
    pub fn error(&mut self, code: &str) {
        match self.errors.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(code.to_string(), 1);
            }
        }
    }

    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counts) {
        self.ops += other.ops;
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
        let _ = self.latency.add(&other.latency);
    }

    pub fn reset(&mut self) {
        self.ops = 0;
        self.errors.clear();
        self.latency.reset();
    }
}

/// What one worker saw of failures and failover.
#[derive(Clone, Debug, Default)]
pub struct FailoverCounts {
    /// Per client: first failed request to the next success, each time.
    pub gaps: Vec<Duration>,
    /// Clients that failed and had not succeeded again by the end.
    pub unrecovered: u64,
    /// Seats reclaimed on another server (or the same one after a reconnect).
    pub reclaimed: u64,
    /// Seats a reclaim was refused for, or never reclaimed by the end.
    pub lost: u64,
    /// Established connections that broke.
    pub disconnects: u64,
    /// Redirects followed (`ERR STANDBY active=`, `* MOVED`, greeting `active=`).
    pub redirects: u64,
    /// Earliest failure and latest recovery, as offsets from the run's start.
    pub first_failure: Option<Duration>,
    pub last_recovery: Option<Duration>,
}

impl FailoverCounts {
    pub fn merge(&mut self, other: &FailoverCounts) {
        self.gaps.extend_from_slice(&other.gaps);
        self.unrecovered += other.unrecovered;
        self.reclaimed += other.reclaimed;
        self.lost += other.lost;
        self.disconnects += other.disconnects;
        self.redirects += other.redirects;
        self.first_failure = match (self.first_failure, other.first_failure) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_recovery = self.last_recovery.max(other.last_recovery);
    }
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    pub samples: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
        Percentiles {
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
            mean: (h.mean() / 100.0).round() / 10.0,
            samples: h.len(),
        }
    }
}
