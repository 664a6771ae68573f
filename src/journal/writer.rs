//! The journal writer: a dedicated thread that appends records with group
//! commit and writes snapshots, so the event loop never waits for a disk.
//!
//! The loop hands over records with [`Journal::append`] (never blocks),
//! keeps answering other clients, and holds back each grant's reply until
//! [`Journal::durable_seq`] has reached the grant's record; the writer calls
//! the `wake` callback after each durable batch so the loop looks again.

use super::codec::{self, JOURNAL_HEADER};
use super::recover::{JOURNAL_FILE, SNAPSHOT_FILE, SNAPSHOT_TMP_FILE};
use crate::ledger::{Record, Snapshot};
use crate::report::{self, ReportLog, REPORT_FILE};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

/// A batch stops growing at this size and is written (a bound on the
/// buffer, not on throughput: the next batch starts at once).
const MAX_BATCH_BYTES: usize = 4 << 20;

/// When an appended record counts as durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After `fdatasync` of the batch that holds it (the default).
    Fsync,
    /// As soon as it is written to the page cache. Survives a crash or kill
    /// of floatd, not a kernel crash or power loss.
    None,
}

impl FromStr for Durability {
    type Err = String;

    fn from_str(text: &str) -> Result<Durability, String> {
        match text {
            "fsync" => Ok(Durability::Fsync),
            "none" => Ok(Durability::None),
            _ => Err(format!(
                "durability must be \"fsync\" or \"none\", not {text:?}"
            )),
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Durability::Fsync => "fsync",
            Durability::None => "none",
        })
    }
}

/// Counters for metrics. Times in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// The highest sequence number known durable.
    pub durable_seq: u64,
    /// Records written to the journal.
    pub appended: u64,
    /// Bytes written to the journal.
    pub bytes: u64,
    /// Group commits (one write, and one fsync unless durability is none).
    pub batches: u64,
    pub fsyncs: u64,
    pub last_fsync_us: u64,
    pub max_fsync_us: u64,
    /// Sum of all fsync times (for the average, and a Prometheus counter).
    pub total_fsync_us: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// Messages waiting for the writer right now.
    pub queued: u64,
}

impl JournalStats {
    /// Mean fsync time, 0 before the first.
    pub fn avg_fsync_us(&self) -> u64 {
        self.total_fsync_us.checked_div(self.fsyncs).unwrap_or(0)
    }
}

/// What the loop asks of the writer thread, processed strictly in order.
/// A new kind of output (report-log lines, say) is one more variant here
/// and one more arm in [`Writer::handle`].
enum Message {
    Append(Vec<Record>),
    Snapshot(Snapshot),
    /// Move the report log to this path and start a new one.
    RotateReport(PathBuf),
    /// Replace the whole history with this snapshot.
    Reset(Snapshot),
    Close,
}

/// What the writer thread publishes; read without locks on the hot path.
#[derive(Default)]
struct Shared {
    durable_seq: AtomicU64,
    appended: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    fsyncs: AtomicU64,
    last_fsync_us: AtomicU64,
    max_fsync_us: AtomicU64,
    total_fsync_us: AtomicU64,
    snapshots: AtomicU64,
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Shared {
    fn set_failure(&self, message: String) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            *failure = Some(message);
        }
        self.failed.store(true, Ordering::Release);
    }
}

/// The journal of a state directory, written by its own thread.
pub struct Journal {
    tx: Sender<Message>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    /// Opens (creating if needed) `dir/journal` for appending and starts the
    /// writer thread. Call after [`super::recover()`], with its
    /// [`last_seq`](super::Recovered::last_seq): the next record appended
    /// must be `last_seq + 1`. `wake` is called from the writer thread after
    /// each batch is durable, after a snapshot, and on a failure (the server
    /// passes a closure over `mio::Waker::wake`).
    ///
    /// Fails if the journal has an unexpected header or a torn tail
    /// (recovery was not run).
    pub fn start(
        dir: &Path,
        last_seq: u64,
        durability: Durability,
        wake: Box<dyn Fn() + Send>,
    ) -> io::Result<Journal> {
        std::os::unix::fs::DirBuilderExt::mode(
            fs::DirBuilder::new().recursive(true),
            crate::files::PRIVATE_DIR_MODE,
        )
        .create(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let file = open_journal(dir, &path, last_seq)?;
        let report_path = dir.join(REPORT_FILE);
        let report = ReportLog::open(&report_path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", report_path.display())))?;
        let shared = Arc::new(Shared::default());
        shared.durable_seq.store(last_seq, Ordering::Release);
        let (tx, rx) = crossbeam_channel::unbounded();
        let writer = Writer {
            dir: dir.to_path_buf(),
            file,
            durability,
            shared: Arc::clone(&shared),
            wake,
            buf: Vec::with_capacity(64 << 10),
            report,
            report_buf: String::new(),
            report_lines: report::LineFormatter::default(),
            report_failed: false,
            last_seq,
            pending: 0,
            failed: false,
        };
        let thread = std::thread::Builder::new()
            .name("floatd-journal".into())
            .spawn(move || writer.run(rx))?;
        Ok(Journal {
            tx,
            shared,
            thread: Some(thread),
        })
    }

    /// Queues records for appending, in order. Never blocks.
    pub fn append(&self, records: Vec<Record>) {
        if !records.is_empty() {
            self.send(Message::Append(records));
        }
    }

    /// Queues a snapshot. The writer first makes every record queued before
    /// it durable, then writes `snapshot.tmp`, fsyncs it, renames it over
    /// `snapshot`, fsyncs the directory, and truncates the journal back to
    /// its header (the snapshot covers everything in it). A crash between
    /// any two steps recovers correctly: see [`super::recover()`].
    ///
    /// The snapshot must cover every record appended before it (take it
    /// after appending the ledger's records); one that does not is still
    /// written, but the journal is then left untruncated.
    pub fn snapshot(&self, snapshot: Snapshot) {
        self.send(Message::Snapshot(snapshot));
    }

    /// The highest sequence number known durable: every record up to it is
    /// on disk (fsynced unless durability is none). Non-blocking.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// The write or fsync failure the writer hit, if any. After one, nothing
    /// more becomes durable until a restart (which recovers the journal):
    /// the server must stop granting rather than claim durability.
    pub fn failure(&self) -> Option<String> {
        if !self.shared.failed.load(Ordering::Acquire) {
            return None;
        }
        self.shared
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counters for metrics.
    pub fn stats(&self) -> JournalStats {
        let s = &self.shared;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        JournalStats {
            durable_seq: self.durable_seq(),
            appended: get(&s.appended),
            bytes: get(&s.bytes),
            batches: get(&s.batches),
            fsyncs: get(&s.fsyncs),
            last_fsync_us: get(&s.last_fsync_us),
            max_fsync_us: get(&s.max_fsync_us),
            total_fsync_us: get(&s.total_fsync_us),
            snapshots: get(&s.snapshots),
            queued: self.tx.len() as u64,
        }
    }

    /// Replaces everything with `snapshot`, even a longer journal: a
    /// standby taking the active server's history after its own diverged
    /// (the server stepped down after a partition). Records after it
    /// continue from `snapshot.seq + 1`.
    pub fn reset(&self, snapshot: Snapshot) {
        self.send(Message::Reset(snapshot));
    }

    /// Moves the report log to `to` and starts a new one, after every line
    /// queued before (so no line is lost or split between the two).
    pub fn rotate_report(&self, to: PathBuf) {
        self.send(Message::RotateReport(to));
    }

    /// Makes everything queued durable and stops the thread. Returns the
    /// writer's failure, if it had one.
    pub fn close(mut self) -> io::Result<()> {
        self.stop()?;
        match self.failure() {
            Some(message) => Err(io::Error::other(message)),
            None => Ok(()),
        }
    }

    fn stop(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let _ = self.tx.send(Message::Close);
        thread
            .join()
            .map_err(|_| io::Error::other("the journal writer thread panicked"))
    }

    fn send(&self, message: Message) {
        if self.tx.send(message).is_err() {
            self.shared
                .set_failure("the journal writer thread has stopped".into());
        }
    }
}

impl Drop for Journal {
    /// Flushes and joins, as `close` does, ignoring the outcome.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Opens the journal for appending, writing the header into a new or empty
/// file. An existing one must have this version's header and end with a
/// good entry numbered `last_seq` (or hold no entries): what recovery
/// leaves behind.
fn open_journal(dir: &Path, path: &Path, last_seq: u64) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(crate::files::PRIVATE_FILE_MODE)
        .open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        file.write_all(JOURNAL_HEADER)?;
        file.sync_data()?;
        sync_dir(dir)?;
        return Ok(file);
    }
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: {what}; run recovery before starting the journal",
                path.display()
            ),
        )
    };
    if len < JOURNAL_HEADER.len() as u64 {
        return Err(bad("the header is incomplete"));
    }
    let mut header = vec![0u8; JOURNAL_HEADER.len()];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut header)?;
    if header != JOURNAL_HEADER {
        return Err(bad(&format!(
            "the header is not a version {} journal's",
            codec::FILE_FORMAT
        )));
    }
    let header = JOURNAL_HEADER.len() as u64;
    if len == header {
        return Ok(file);
    }
    // Entries are found from the front (a binary entry has no end mark).
    let mut entries = Vec::with_capacity((len - header) as usize);
    file.read_to_end(&mut entries)?;
    let record = match codec::last_record(&entries) {
        Ok(Some(record)) => record,
        Ok(None) => return Err(bad("it holds no entry")),
        Err(codec::DecodeError::Incomplete) => return Err(bad("the last entry is incomplete")),
        Err(e) => return Err(bad(&format!("an entry is bad: {e}"))),
    };
    if record.seq != last_seq {
        return Err(bad(&format!(
            "the journal ends at seq {} but the ledger at seq {last_seq}",
            record.seq
        )));
    }
    Ok(file)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    file: File,
    durability: Durability,
    shared: Arc<Shared>,
    wake: Box<dyn Fn() + Send>,
    /// Encoded entries of the batch being gathered.
    buf: Vec<u8>,
    /// The usage report log, written from the same records.
    report: ReportLog,
    /// Report lines of the batch being gathered.
    report_buf: String,
    report_lines: report::LineFormatter,
    /// Set after a report write failed (logged once).
    report_failed: bool,
    /// The highest sequence number in the journal, the batch or the last
    /// snapshot: the next record must follow it.
    last_seq: u64,
    /// Records in `buf`.
    pending: u64,
    failed: bool,
}

impl Writer {
    /// Group commit: wait for a message, take every message already queued
    /// behind it, then write the batch once and fsync once.
    fn run(mut self, rx: Receiver<Message>) {
        loop {
            let mut closing = match rx.recv() {
                Ok(message) => self.handle(message),
                Err(_) => true,
            };
            while !closing && self.buf.len() < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(message) => closing = self.handle(message),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => closing = true,
                }
            }
            self.commit();
            if closing {
                return;
            }
        }
    }

    /// Takes one message; true when it asks the thread to stop.
    fn handle(&mut self, message: Message) -> bool {
        match message {
            Message::Append(records) => {
                for record in &records {
                    self.add(record);
                }
                false
            }
            Message::Snapshot(snapshot) => {
                self.commit();
                self.write_snapshot(&snapshot);
                false
            }
            Message::Reset(snapshot) => {
                self.commit();
                if !self.failed {
                    if let Err(e) = self.try_reset(&snapshot) {
                        self.fail(format!(
                            "{}: reset to the snapshot at seq {} failed: {e}",
                            self.dir.display(),
                            snapshot.seq
                        ));
                    } else {
                        self.shared.snapshots.fetch_add(1, Ordering::Relaxed);
                        (self.wake)();
                    }
                }
                false
            }
            Message::RotateReport(to) => {
                self.commit();
                match self.report.rotate_to(&to) {
                    Ok(()) => log::info!("report log moved to {}", to.display()),
                    Err(e) => log::error!("report log rotation to {} failed: {e}", to.display()),
                }
                false
            }
            Message::Close => true,
        }
    }

    /// Encodes one record into the batch, keeping the journal contiguous.
    fn add(&mut self, record: &Record) {
        if self.failed {
            return;
        }
        if record.seq <= self.last_seq {
            log::warn!(
                "journal: record {} is already written (last is {}); skipped",
                record.seq,
                self.last_seq
            );
            return;
        }
        if record.seq != self.last_seq + 1 {
            self.fail(format!(
                "record {} appended after record {}: the journal must be contiguous \
                 (a gap would be cut at recovery)",
                record.seq, self.last_seq
            ));
            return;
        }
        codec::encode_record_into(record, &mut self.buf);
        self.report_lines.append(record, &mut self.report_buf);
        self.last_seq = record.seq;
        self.pending += 1;
    }

    /// Writes the batch, fsyncs it, publishes it and wakes the loop.
    fn commit(&mut self) {
        if self.failed || self.buf.is_empty() {
            self.buf.clear();
            self.report_buf.clear();
            self.pending = 0;
            return;
        }
        if let Err(e) = self.file.write_all(&self.buf) {
            self.fail(format!("{}: write failed: {e}", self.journal_path()));
            return;
        }
        if self.durability == Durability::Fsync {
            let started = Instant::now();
            if let Err(e) = self.file.sync_data() {
                self.fail(format!("{}: fsync failed: {e}", self.journal_path()));
                return;
            }
            let us = started.elapsed().as_micros() as u64;
            let s = &self.shared;
            s.fsyncs.fetch_add(1, Ordering::Relaxed);
            s.last_fsync_us.store(us, Ordering::Relaxed);
            s.max_fsync_us.fetch_max(us, Ordering::Relaxed);
            s.total_fsync_us.fetch_add(us, Ordering::Relaxed);
        }
        let s = &self.shared;
        s.appended.fetch_add(self.pending, Ordering::Relaxed);
        s.bytes.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        s.batches.fetch_add(1, Ordering::Relaxed);
        s.durable_seq.store(self.last_seq, Ordering::Release);
        self.buf.clear();
        self.pending = 0;
        (self.wake)();
        self.write_report();
    }

    /// Appends the batch's report lines, after the replies were released:
    /// the report log is a record of usage, not part of durability.
    fn write_report(&mut self) {
        if self.report_buf.is_empty() {
            return;
        }
        match self.report.append(&self.report_buf) {
            Ok(()) => self.report_failed = false,
            Err(e) if !self.report_failed => {
                self.report_failed = true;
                log::error!("report log: write failed: {e}; lines are being lost");
            }
            Err(_) => {}
        }
        self.report_buf.clear();
    }

    /// Writes a snapshot crash-safely, then truncates the journal it covers.
    fn write_snapshot(&mut self, snapshot: &Snapshot) {
        if self.failed {
            return;
        }
        if let Err(e) = self.try_write_snapshot(snapshot) {
            self.fail(format!(
                "{}: snapshot at seq {} failed: {e}",
                self.dir.display(),
                snapshot.seq
            ));
            return;
        }
        self.shared.snapshots.fetch_add(1, Ordering::Relaxed);
        self.shared
            .durable_seq
            .fetch_max(snapshot.seq, Ordering::AcqRel);
        (self.wake)();
    }

    /// Writes `snapshot` to `snapshot.tmp` and fsyncs it; returns its path.
    fn write_snapshot_tmp(&self, snapshot: &Snapshot) -> io::Result<PathBuf> {
        let tmp = self.dir.join(SNAPSHOT_TMP_FILE);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(crate::files::PRIVATE_FILE_MODE)
            .open(&tmp)?;
        file.write_all(&codec::encode_snapshot(snapshot))?;
        file.sync_all()?;
        Ok(tmp)
    }

    /// Moves a written `snapshot.tmp` over `snapshot`, durably.
    fn install_snapshot(&self, tmp: &Path) -> io::Result<()> {
        fs::rename(tmp, self.dir.join(SNAPSHOT_FILE))?;
        sync_dir(&self.dir)
    }

    fn try_write_snapshot(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let tmp = self.write_snapshot_tmp(snapshot)?;
        self.install_snapshot(&tmp)?;
        if snapshot.seq < self.last_seq {
            log::warn!(
                "journal: snapshot at seq {} is older than the journal (seq {}); \
                 the journal is kept whole",
                snapshot.seq,
                self.last_seq
            );
            return Ok(());
        }
        // The report lines of the records about to leave the journal go to
        // disk first: after a power loss, start-up can rewrite the lines of
        // records still in the journal only (report::catch_up).
        if self.durability == Durability::Fsync {
            if let Err(e) = self.report.sync() {
                log::warn!(
                    "report log: sync failed ({e}); the journal is kept whole so its lines can be rewritten"
                );
                return Ok(());
            }
        }
        // Everything in the journal is now covered by the snapshot. If this
        // truncation is lost in a crash, recovery skips the stale records.
        self.file.set_len(JOURNAL_HEADER.len() as u64)?;
        self.file.sync_data()?;
        self.last_seq = snapshot.seq;
        Ok(())
    }

    fn try_reset(&mut self, snapshot: &Snapshot) -> io::Result<()> {
        let tmp = self.write_snapshot_tmp(snapshot)?;
        // Truncate first: a crash between the two leaves the old snapshot
        // with an empty journal (a consistent older state), never the new
        // snapshot with records of the old history after it.
        self.file.set_len(JOURNAL_HEADER.len() as u64)?;
        self.file.sync_data()?;
        self.install_snapshot(&tmp)?;
        self.last_seq = snapshot.seq;
        self.shared
            .durable_seq
            .store(snapshot.seq, Ordering::Release);
        Ok(())
    }

    fn fail(&mut self, message: String) {
        log::error!("journal: {message}; nothing more becomes durable until a restart");
        self.failed = true;
        self.buf.clear();
        self.report_buf.clear();
        self.pending = 0;
        self.shared.set_failure(message);
        (self.wake)();
    }

    fn journal_path(&self) -> String {
        self.dir.join(JOURNAL_FILE).display().to_string()
    }
}

#[cfg(test)]
mod tests;
