//! Seats in use per feature over the last 24 hours and 7 days, for the
//! status page's chart (`/history.json`), kept in bounded memory.
//!
//! Each feature has two rings of buckets: 288 of 5 minutes (24 h) and 168
//! of an hour (7 d). A bucket keeps the most seats in use seen in it, the
//! level at its last change, and the checkouts refused in it. The loop
//! tells the history after each batch of ledger records (grants, returns,
//! denials), so a bucket with no change carries the level of the one
//! before. A feature costs about 5 KiB once it is first used or refused;
//! at most [`MAX_FEATURES`] features are kept (the first to be used). The
//! history lives in memory: it starts empty when the server starts.

use crate::ledger::{Event, Ledger, Record};
use serde::Serialize;
use std::collections::BTreeMap;

/// Features charted at most (memory bound).
pub const MAX_FEATURES: usize = 256;

/// (bucket length in seconds, buckets kept): 24 h and 7 d.
const RANGES: [(u64, usize); 2] = [(300, 288), (3600, 168)];

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Bucket {
    /// Which bucket of time this slot holds now (unix / length); 0: none.
    id: u64,
    peak: u32,
    last: u32,
    denials: u32,
}

#[derive(Clone, Debug)]
struct FeatureHistory {
    rings: [Vec<Bucket>; 2],
    /// Seats licensed, as last told.
    licensed: Option<u64>,
}

/// The history of every charted feature.
#[derive(Debug, Default)]
pub struct History {
    features: BTreeMap<String, FeatureHistory>,
}

/// What the loop tells the history about a feature after a batch.
pub struct Level {
    pub in_use: u64,
    /// Seats the feature's counted pools hold; `None` when any is uncounted.
    pub licensed: Option<u64>,
}

/// A feature's level in `ledger` now: seats in use in all its pools, and
/// the seats its counted pools hold (`None` when a pool is uncounted).
pub fn level_of(ledger: &Ledger, feature: &str) -> Level {
    let mut level = Level {
        in_use: 0,
        licensed: Some(0),
    };
    for view in ledger.pools().filter(|v| *v.pool.key.feature == *feature) {
        level.in_use += view.used;
        level.licensed = match (level.licensed, view.pool.limit()) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    level
}

impl History {
    /// Notes a batch of records made or applied at `unix`: the features
    /// they touched, with their level now from `level_of`.
    pub fn note(&mut self, records: &[Record], unix: u64, level_of: impl Fn(&str) -> Level) {
        let mut touched: BTreeMap<&str, u32> = BTreeMap::new();
        for r in records {
            match &r.event {
                Event::Grant(g) => {
                    touched.entry(&g.feature).or_default();
                }
                Event::Release(ret) => {
                    touched.entry(&ret.feature).or_default();
                }
                Event::Denied(d) => *touched.entry(&d.feature).or_default() += 1,
                _ => {}
            }
        }
        for (feature, denials) in touched {
            let level = level_of(feature);
            self.set(feature, level, denials, unix);
        }
    }

    fn set(&mut self, feature: &str, level: Level, denials: u32, unix: u64) {
        if !self.features.contains_key(feature) && self.features.len() >= MAX_FEATURES {
            return;
        }
        let h = self
            .features
            .entry(feature.to_string())
            .or_insert_with(|| FeatureHistory {
                rings: RANGES.map(|(_, n)| vec![Bucket::default(); n]),
                licensed: None,
            });
        h.licensed = level.licensed;
        let in_use = level.in_use.min(u32::MAX as u64) as u32;
        for (ring, (len, n)) in h.rings.iter_mut().zip(RANGES) {
            let id = unix / len;
            let carried = latest(ring).map_or(0, |b| b.last);
            let slot = &mut ring[(id % n as u64) as usize];
            if slot.id != id {
                *slot = Bucket {
                    id,
                    peak: carried,
                    last: carried,
                    denials: 0,
                };
            }
            slot.peak = slot.peak.max(in_use);
            slot.last = in_use;
            slot.denials += denials;
        }
    }

    /// The charts at `unix`: per feature, both ranges, oldest point first.
    pub fn charts(&self, unix: u64) -> Charts {
        let features = self
            .features
            .iter()
            .map(|(name, h)| FeatureChart {
                feature: name.clone(),
                licensed: h.licensed,
                ranges: h
                    .rings
                    .iter()
                    .zip(RANGES)
                    .map(|(ring, (len, n))| series(ring, len, n, unix))
                    .collect(),
            })
            .collect();
        Charts {
            now: unix,
            features,
        }
    }
}

/// The newest bucket a ring holds.
fn latest(ring: &[Bucket]) -> Option<&Bucket> {
    ring.iter().filter(|b| b.id != 0).max_by_key(|b| b.id)
}

/// A range as points, the levels carried through buckets with no change.
fn series(ring: &[Bucket], len: u64, n: usize, unix: u64) -> Series {
    let newest = unix / len;
    let oldest = newest + 1 - n as u64;
    // The level going into the range: the newest bucket before it, if kept.
    let mut level = ring
        .iter()
        .filter(|b| b.id != 0 && b.id < oldest)
        .max_by_key(|b| b.id)
        .map_or(0, |b| b.last);
    let mut peak = Vec::with_capacity(n);
    let mut denials = Vec::with_capacity(n);
    for id in oldest..=newest {
        let b = ring[(id % n as u64) as usize];
        if b.id == id {
            peak.push(b.peak);
            denials.push(b.denials);
            level = b.last;
        } else {
            peak.push(level);
            denials.push(0);
        }
    }
    Series {
        bucket_secs: len,
        start: oldest * len,
        peak,
        denials,
    }
}

/// `/history.json`.
#[derive(Debug, Serialize)]
pub struct Charts {
    /// Unix time the charts were made.
    pub now: u64,
    pub features: Vec<FeatureChart>,
}

#[derive(Debug, Serialize)]
pub struct FeatureChart {
    pub feature: String,
    /// Seats the feature's licences hold; `null` when uncounted.
    pub licensed: Option<u64>,
    /// The last 24 hours (5-minute buckets), then the last 7 days (hours).
    pub ranges: Vec<Series>,
}

#[derive(Debug, Serialize)]
pub struct Series {
    pub bucket_secs: u64,
    /// Unix time the first bucket begins.
    pub start: u64,
    /// Most seats in use in each bucket.
    pub peak: Vec<u32>,
    /// Checkouts refused in each bucket.
    pub denials: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Code;
    use crate::ledger::Denial;
    use crate::licence::Version;

    fn denial(feature: &str) -> Record {
        Record {
            seq: 1,
            epoch: 1,
            event: Event::Denied(Denial {
                feature: feature.into(),
                version: Version::parse("1").unwrap(),
                count: 1,
                user: "u".into(),
                host: "h".into(),
                code: Code::NoSeats,
                rule: None,
                at: 0,
                roam_days: None,
            }),
        }
    }

    fn level(in_use: u64) -> impl Fn(&str) -> Level {
        move |_| Level {
            in_use,
            licensed: Some(5),
        }
    }

    #[test]
    fn buckets_keep_the_peak_and_carry_the_level_through_quiet_ones() {
        let mut h = History::default();
        let t0: u64 = 1_800_000_000; // a whole hour
        h.set("cad", level(3)(""), 0, t0 + 10);
        h.set("cad", level(1)(""), 0, t0 + 20);
        h.note(&[denial("cad")], t0 + 30, level(1));
        let charts = h.charts(t0 + 1200);
        let day = &charts.features[0].ranges[0];
        assert_eq!(day.peak.len(), 288);
        assert_eq!(day.bucket_secs, 300);
        let at = |t: u64| ((t - day.start) / 300) as usize;
        assert_eq!(day.peak[at(t0)], 3, "the peak of the bucket");
        assert_eq!(day.denials[at(t0)], 1);
        assert_eq!(day.peak[at(t0 + 900)], 1, "the level carried on");
        assert_eq!(day.peak[at(t0) - 1], 0, "nothing before");
        assert_eq!(*day.peak.last().unwrap(), 1);
        assert_eq!(charts.features[0].licensed, Some(5));
        let week = &charts.features[0].ranges[1];
        assert_eq!(week.peak.len(), 168);
        assert_eq!(*week.peak.last().unwrap(), 3);
        assert_eq!(*week.denials.last().unwrap(), 1);
        // A day later the 5-minute ring has wrapped: the old peak is gone
        // from it, the level carries, the week still shows it.
        h.set("cad", level(2)(""), 0, t0 + 86_400 + 5);
        let charts = h.charts(t0 + 86_400 + 10);
        let day = &charts.features[0].ranges[0];
        assert!(day.peak.iter().all(|&p| p <= 2), "{:?}", day.peak);
        assert_eq!(*day.peak.last().unwrap(), 2);
        assert!(charts.features[0].ranges[1].peak.contains(&3));
    }

    #[test]
    fn memory_is_bounded_by_the_features_charted() {
        let mut h = History::default();
        for i in 0..MAX_FEATURES + 10 {
            h.set(&format!("f{i}"), level(1)(""), 0, 1_800_000_000);
        }
        assert_eq!(h.charts(1_800_000_000).features.len(), MAX_FEATURES);
    }
}
