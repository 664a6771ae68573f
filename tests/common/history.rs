//! A history checker: records every grant and return clients observed and
//! asserts that no feature was ever held beyond its count.
//!
//! A seat is surely held from the moment its grant reply arrived until the
//! moment its client sent the checkin (or noticed it lost the seat), since
//! the server granted before replying and returns only after the checkin
//! arrives. Counting only those intervals never blames the server for
//! timing, and catches every double grant that clients acted on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A seat as clients saw it: feature, count, granted at, surely returned by.
type Observed = (String, u32, Instant, Option<Instant>);

#[derive(Default)]
pub struct History {
    /// By handle.
    seats: Mutex<HashMap<String, Observed>>,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    pub fn granted(&self, feature: &str, count: u32, handle: &str) {
        let mut seats = self.seats.lock().unwrap();
        seats.entry(handle.to_string()).or_insert((
            feature.to_string(),
            count,
            Instant::now(),
            None,
        ));
    }

    /// The client is about to check the seat in (or learned it is gone).
    pub fn returning(&self, handle: &str) {
        if let Some(seat) = self.seats.lock().unwrap().get_mut(handle) {
            seat.3.get_or_insert(Instant::now());
        }
    }

    /// Handles clients hold now (granted, not returned).
    pub fn held(&self) -> Vec<String> {
        self.seats
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| s.3.is_none())
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// The longest stretch without a grant from `since` until now: how
    /// long service was unavailable (to clients that kept asking).
    pub fn longest_gap_since(&self, since: Instant) -> std::time::Duration {
        let mut times: Vec<Instant> = self
            .seats
            .lock()
            .unwrap()
            .values()
            .map(|s| s.2)
            .filter(|t| *t >= since)
            .collect();
        times.sort();
        times.push(Instant::now());
        let mut last = since;
        let mut gap = std::time::Duration::ZERO;
        for t in times {
            gap = gap.max(t.duration_since(last));
            last = t;
        }
        gap
    }

    pub fn grants(&self) -> usize {
        self.seats.lock().unwrap().len()
    }

    /// The most seats of `feature` surely held at one moment.
    pub fn peak(&self, feature: &str) -> u32 {
        let seats = self.seats.lock().unwrap();
        let mut edges: Vec<(Instant, i64)> = Vec::new();
        let end = Instant::now();
        for (f, count, from, to) in seats.values() {
            if f != feature {
                continue;
            }
            let to = to.unwrap_or(end);
            if to > *from {
                edges.push((*from, *count as i64));
                edges.push((to, -(*count as i64)));
            }
        }
        // Ends before starts at the same instant: touching intervals don't overlap.
        edges.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let (mut now, mut peak) = (0i64, 0i64);
        for (_, delta) in edges {
            now += delta;
            peak = peak.max(now);
        }
        peak as u32
    }

    /// Panics if `feature` was ever held beyond `count`.
    pub fn assert_never_over(&self, feature: &str, count: u32) {
        let peak = self.peak(feature);
        assert!(
            peak <= count,
            "{feature} was held {peak} times at once, licensed {count} ({} grants observed)",
            self.grants()
        );
    }
}
