//! The most recent journal records, kept by the watchdog so a standby that
//! fell behind can catch up from the tail instead of a whole snapshot.

use crate::ledger::Record;
use crate::protocol::peer::HistoryMark;
use std::collections::VecDeque;

pub struct Ring {
    records: VecDeque<Record>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            records: VecDeque::new(),
            capacity,
        }
    }

    pub fn push(&mut self, record: Record) {
        if let Some(last) = self.records.back() {
            if record.seq != last.seq + 1 {
                // Not a continuation (a reset, a new history): start over.
                self.records.clear();
            }
        }
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    pub fn clear(&mut self) {
        self.records.clear();
    }

    /// The epoch of the record at `seq`, if the ring holds it.
    pub fn epoch_at(&self, seq: u64) -> Option<u64> {
        let first = self.records.front()?.seq;
        let at = seq.checked_sub(first)?;
        self.records.get(at as usize).map(|r| r.epoch)
    }

    /// The records after `from`, if `from` is a point of this history the
    /// ring still holds (so the two histories agree up to it).
    pub fn after(&self, from: HistoryMark) -> Option<Vec<Record>> {
        let first = self.records.front()?;
        if from.seq + 1 < first.seq {
            return None;
        }
        if from.seq + 1 == first.seq {
            // The record before the ring is not held: its epoch cannot be
            // checked, except for the very start of a history.
            if from.seq != 0 {
                return None;
            }
        } else {
            let at = (from.seq - first.seq) as usize;
            let record = self.records.get(at)?;
            if record.epoch != from.epoch {
                return None;
            }
        }
        let start = (from.seq + 1 - first.seq) as usize;
        Some(self.records.iter().skip(start).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Event;

    fn rec(seq: u64, epoch: u64) -> Record {
        Record {
            seq,
            epoch,
            event: Event::Started { at: seq },
        }
    }

    #[test]
    fn gives_the_tail_only_for_a_matching_history() {
        let mut ring = Ring::new(3);
        for s in 1..=5 {
            ring.push(rec(s, 1));
        }
        let tail = ring.after(HistoryMark { seq: 3, epoch: 1 }).unwrap();
        assert_eq!(tail.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(
            ring.after(HistoryMark { seq: 5, epoch: 1 }).unwrap(),
            vec![]
        );
        assert!(
            ring.after(HistoryMark { seq: 3, epoch: 2 }).is_none(),
            "diverged history"
        );
        assert!(
            ring.after(HistoryMark { seq: 1, epoch: 1 }).is_none(),
            "too old"
        );
        assert!(
            ring.after(HistoryMark { seq: 9, epoch: 1 }).is_none(),
            "ahead of us"
        );
        let mut fresh = Ring::new(10);
        fresh.push(rec(1, 1));
        assert_eq!(fresh.after(HistoryMark::default()).unwrap().len(), 1);
    }
}
