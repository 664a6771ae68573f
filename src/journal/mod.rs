//! The journal: durable storage of ledger records in the state directory.
//!
//! Every change to the seat ledger is a numbered [`Record`]. The journal
//! appends records to `journal` and, periodically, replaces them with a
//! [`Snapshot`] of the whole ledger in `snapshot`. On start, [`recover()`]
//! reads the snapshot and the records after it, and the server replays them
//! into a fresh ledger. `docs/STATE.md` describes the files byte by byte.
//!
//! # One concern a module
//!
//! - [`codec`]: the bytes of a journal entry and of a snapshot, versioned,
//!   each with a SHA-256 checksum. No I/O. A record's entry stands alone,
//!   so the same bytes stream to the standby server.
//! - [`recover`](mod@recover): snapshot + replay on start; cuts a torn or
//!   corrupt journal tail and says what it cut; refuses a corrupt snapshot.
//! - [`writer`]: the writer thread and its handle, [`Journal`].
//!
//! # Why a thread
//!
//! The event loop must never block, and an `fsync` takes from tens of
//! microseconds (NVMe) to tens of milliseconds (a busy disk or a VM). The
//! loop therefore hands records to a writer thread over an unbounded
//! channel and carries on; it holds a grant's reply until
//! [`Journal::durable_seq`] reaches the grant's record. The writer calls a
//! `wake` callback (a `mio::Waker`) after each durable batch.
//!
//! # Group commit
//!
//! The writer blocks for one message, then takes every message already
//! queued behind it, and makes the whole batch durable with one `write`
//! and one `fdatasync`. While it waits for the disk, the loop queues the
//! next batch. So throughput grows with load (more records per fsync)
//! while a lone grant waits for one fsync. With [`Durability::None`] the
//! writer skips the fsync and publishes once the batch is in the page
//! cache.
//!
//! # Truncation safety
//!
//! A snapshot is written to `snapshot.tmp`, fsynced, renamed over
//! `snapshot` and the directory fsynced; only then is the journal truncated
//! back to its header. A crash before the rename leaves the old snapshot
//! and the whole journal. A crash after it, before the truncation is on
//! disk, leaves the new snapshot and journal records it already covers,
//! which recovery skips by sequence number (and then truncates). The writer
//! handles messages in order, so when a snapshot message arrives, every
//! record in the journal is at or below its sequence number.
//!
//! A journal tail damaged by a crash is cut back to the last good entry.
//! Nothing cut was ever reported durable, because a batch is published
//! only after its fsync. A write or fsync error stops the writer for good
//! ([`Journal::failure`]): after a failed fsync the kernel may have
//! dropped the dirty pages, so retrying could claim durability falsely.
//!
//! [`Record`]: crate::ledger::Record
//! [`Snapshot`]: crate::ledger::Snapshot

pub mod binary;
pub mod codec;
pub mod legacy;
pub mod recover;
pub mod storage;
pub mod writer;

pub use codec::{
    decode_entry, decode_record, decode_snapshot, encode_record, encode_record_into,
    encode_snapshot, DecodeError, FILE_FORMAT, FORMAT_VERSION,
};
pub use recover::{
    load_snapshot, recover, Cut, CutReason, RecoverError, Recovered, JOURNAL_FILE, SNAPSHOT_FILE,
    SNAPSHOT_TMP_FILE,
};
pub use storage::{MemJournal, MemState, Storage};
pub use writer::{Durability, Journal, JournalStats};
