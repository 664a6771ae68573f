//! What the server needs of durable storage, so the same request handling
//! runs on the file journal ([`super::Journal`]) and, in tests and the
//! simulation, on [`MemJournal`], whose durability and failures the test
//! controls.

use super::writer::{Journal, JournalStats};
use crate::ledger::{Record, Snapshot};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// Durable storage of ledger records. Calls never block; durability is
/// learned from [`Storage::durable_seq`].
pub trait Storage: Send {
    /// Queues records for appending, in order.
    fn append(&mut self, records: Vec<Record>);
    /// Queues a snapshot covering every record appended before it.
    fn snapshot(&mut self, snapshot: Snapshot);
    /// Replaces the whole history with `snapshot`.
    fn reset(&mut self, snapshot: Snapshot);
    /// Every record up to this one is durable.
    fn durable_seq(&self) -> u64;
    /// The failure that stopped storage for good, if any.
    fn failure(&self) -> Option<String>;
    fn stats(&self) -> JournalStats;
    /// Moves the report log aside (the in-memory journal has none).
    fn rotate_report(&mut self, to: PathBuf);
    /// Makes everything queued durable and stops.
    fn close(self: Box<Self>) -> io::Result<()>;
}

impl Storage for Journal {
    fn append(&mut self, records: Vec<Record>) {
        Journal::append(self, records)
    }
    fn snapshot(&mut self, snapshot: Snapshot) {
        Journal::snapshot(self, snapshot)
    }
    fn reset(&mut self, snapshot: Snapshot) {
        Journal::reset(self, snapshot)
    }
    fn durable_seq(&self) -> u64 {
        Journal::durable_seq(self)
    }
    fn failure(&self) -> Option<String> {
        Journal::failure(self)
    }
    fn stats(&self) -> JournalStats {
        Journal::stats(self)
    }
    fn rotate_report(&mut self, to: PathBuf) {
        Journal::rotate_report(self, to)
    }
    fn close(self: Box<Self>) -> io::Result<()> {
        Journal::close(*self)
    }
}

/// What a [`MemJournal`] holds: the durable history (snapshot + records,
/// what survives a crash) and what is written but not yet durable.
#[derive(Clone, Debug, Default)]
pub struct MemState {
    pub snapshot: Option<Snapshot>,
    pub durable: Vec<Record>,
    pub pending: Vec<Record>,
    pub failure: Option<String>,
    /// Make appended records durable at once (no explicit `sync`).
    pub auto_sync: bool,
}

impl MemState {
    pub fn durable_seq(&self) -> u64 {
        self.durable
            .last()
            .map(|r| r.seq)
            .or(self.snapshot.as_ref().map(|s| s.seq))
            .unwrap_or(0)
    }
}

/// An in-memory journal. Clones share one state, so a test keeps a clone
/// to make records durable ([`MemJournal::sync`]), fail the disk
/// ([`MemJournal::fail`]) or read what survives a crash.
#[derive(Clone, Default)]
pub struct MemJournal {
    state: Arc<Mutex<MemState>>,
}

impl MemJournal {
    /// Durable only when [`MemJournal::sync`] is called.
    pub fn new() -> MemJournal {
        MemJournal::default()
    }

    /// Every append durable at once.
    pub fn synced() -> MemJournal {
        let j = MemJournal::default();
        j.lock().auto_sync = true;
        j
    }

    pub fn lock(&self) -> MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes everything written so far durable (an fsync that succeeded).
    pub fn sync(&self) {
        let mut s = self.lock();
        if s.failure.is_none() {
            let pending = std::mem::take(&mut s.pending);
            s.durable.extend(pending);
        }
    }

    /// The disk fails: nothing written becomes durable any more.
    pub fn fail(&self, why: &str) {
        let mut s = self.lock();
        s.failure.get_or_insert_with(|| why.to_string());
        s.pending.clear();
    }

    /// What a restart finds: the durable snapshot and records.
    pub fn recovered(&self) -> (Option<Snapshot>, Vec<Record>) {
        let s = self.lock();
        (s.snapshot.clone(), s.durable.clone())
    }

    /// A crash: what was not durable is lost; a new disk replaces a failed one.
    pub fn crash(&self) {
        let mut s = self.lock();
        s.pending.clear();
        s.failure = None;
    }
}

impl Storage for MemJournal {
    fn append(&mut self, records: Vec<Record>) {
        let mut s = self.lock();
        if s.failure.is_some() {
            return;
        }
        let after = s.pending.last().map(|r| r.seq).unwrap_or(s.durable_seq());
        let fresh = records.into_iter().filter(|r| r.seq > after);
        if s.auto_sync {
            s.durable.extend(fresh);
        } else {
            s.pending.extend(fresh);
        }
    }
    fn snapshot(&mut self, snapshot: Snapshot) {
        let mut s = self.lock();
        if s.failure.is_some() {
            return;
        }
        let pending = std::mem::take(&mut s.pending);
        s.durable.extend(pending);
        s.durable.retain(|r| r.seq > snapshot.seq);
        s.snapshot = Some(snapshot);
    }
    fn reset(&mut self, snapshot: Snapshot) {
        let mut s = self.lock();
        if s.failure.is_some() {
            return;
        }
        s.pending.clear();
        s.durable.clear();
        s.snapshot = Some(snapshot);
    }
    fn durable_seq(&self) -> u64 {
        self.lock().durable_seq()
    }
    fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }
    fn stats(&self) -> JournalStats {
        let s = self.lock();
        JournalStats {
            durable_seq: s.durable_seq(),
            appended: (s.durable.len() + s.pending.len()) as u64,
            ..JournalStats::default()
        }
    }
    fn rotate_report(&mut self, _to: PathBuf) {}
    fn close(self: Box<Self>) -> io::Result<()> {
        self.sync();
        match self.failure() {
            Some(f) => Err(io::Error::other(f)),
            None => Ok(()),
        }
    }
}
