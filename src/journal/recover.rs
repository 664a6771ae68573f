//! Recovery on start: load the snapshot, replay the journal after it, and
//! cut a torn or corrupt tail off the journal.
//!
//! A damaged journal *tail* is expected after a crash (the last batch may
//! be half written, or lost from the page cache on power loss) and is cut
//! back to the last good entry: none of the cut records was reported
//! durable, so no client was told of them. A damaged *snapshot*, or a file
//! of an unknown format version, is not expected and is an error: starting
//! with an empty or partial ledger would give away seats that are out.

use super::codec::{self, DecodeError};
use crate::ledger::{Record, Snapshot};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The journal's file name in the state directory.
pub const JOURNAL_FILE: &str = "journal";
/// The snapshot's file name in the state directory.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// Where a new snapshot is written before it is renamed over the old one.
pub const SNAPSHOT_TMP_FILE: &str = "snapshot.tmp";

/// What [`recover`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The snapshot to restore first, if there is one.
    pub snapshot: Option<Snapshot>,
    /// The journal's records after the snapshot, in order, contiguous:
    /// the first is `snapshot.seq + 1` (or 1 without a snapshot).
    pub records: Vec<Record>,
    /// What was cut off the journal's tail, if anything (log it at warn).
    pub cut: Option<Cut>,
    /// Records in the journal at or below the snapshot's sequence number,
    /// skipped (left by a crash between writing a snapshot and truncating
    /// the journal; harmless).
    pub skipped: usize,
}

impl Recovered {
    /// The sequence number of the last record recovered (snapshot or
    /// journal), 0 for a new state directory. Pass it to
    /// [`super::Journal::start`].
    pub fn last_seq(&self) -> u64 {
        self.records
            .last()
            .map(|r| r.seq)
            .or(self.snapshot.as_ref().map(|s| s.seq))
            .unwrap_or(0)
    }
}

/// A damaged journal tail that recovery cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The file was truncated to this length (the end of the last good entry).
    pub at_offset: u64,
    /// How many bytes were removed.
    pub bytes_cut: u64,
    /// The sequence number of the last good entry, if there was one.
    pub last_good_seq: Option<u64>,
    /// About how many entries were lost (lines in the cut bytes; a torn
    /// last entry counts as one).
    pub entries_lost_estimate: u64,
    pub reason: CutReason,
}

/// Why the journal's tail was cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CutReason {
    /// The file ends inside its header (a crash while it was created).
    TornHeader,
    /// The file ends inside an entry (a crash during a write).
    Torn,
    /// An entry is corrupt (bad framing, checksum or payload).
    Corrupt(DecodeError),
    /// An entry's sequence number is not the one after the previous entry's.
    OutOfOrder { expected: u64, found: u64 },
}

impl Cut {
    /// Whether records any client was told of may be gone: anything but a
    /// tail torn by a crash mid-write (nothing torn was ever durable, so
    /// no client heard of it).
    pub fn may_have_lost_records(&self) -> bool {
        !matches!(self.reason, CutReason::Torn | CutReason::TornHeader)
    }
}

impl fmt::Display for CutReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CutReason::TornHeader => f.write_str("the file ends inside its header"),
            CutReason::Torn => f.write_str("the file ends inside an entry (torn write)"),
            CutReason::Corrupt(e) => write!(f, "corrupt entry: {e}"),
            CutReason::OutOfOrder { expected, found } => {
                write!(f, "sequence number {found} where {expected} was due")
            }
        }
    }
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journal cut at byte {}: {}; {} bytes (about {} entries) removed",
            self.at_offset, self.reason, self.bytes_cut, self.entries_lost_estimate
        )?;
        match self.last_good_seq {
            Some(seq) => write!(f, " after seq {seq}"),
            None => f.write_str(", no good entry before it"),
        }
    }
}

/// Why the state directory could not be recovered. Every variant names the
/// file; none is ever answered with an empty ledger.
#[derive(Debug)]
pub enum RecoverError {
    /// Reading or truncating a file failed.
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// The snapshot is corrupt, truncated or of an unknown version.
    Snapshot { path: PathBuf, error: DecodeError },
    /// The journal's header is not a journal's, or of an unknown version.
    JournalHeader { path: PathBuf, error: DecodeError },
    /// The journal does not continue from the snapshot: records between
    /// them are missing (a file deleted or replaced by hand).
    Gap {
        path: PathBuf,
        /// The snapshot's sequence number (0 without one).
        after: u64,
        /// The journal's first sequence number.
        found: u64,
    },
}

impl fmt::Display for RecoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoverError::Io {
                path,
                action,
                source,
            } => write!(f, "{}: cannot {action}: {source}", path.display()),
            RecoverError::Snapshot { path, error } => write!(
                f,
                "{}: unusable snapshot: {error}; restore the state directory from a backup \
                 (floatd will not start with a partial ledger)",
                path.display()
            ),
            RecoverError::JournalHeader { path, error } => {
                write!(f, "{}: unusable journal: {error}", path.display())
            }
            RecoverError::Gap { path, after, found } => write!(
                f,
                "{}: the journal starts at seq {found} but the snapshot ends at seq {after}; \
                 records {}..{} are missing",
                path.display(),
                after + 1,
                found - 1
            ),
        }
    }
}

impl std::error::Error for RecoverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecoverError::Io { source, .. } => Some(source),
            RecoverError::Snapshot { error, .. } | RecoverError::JournalHeader { error, .. } => {
                Some(error)
            }
            RecoverError::Gap { .. } => None,
        }
    }
}

fn io_error<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> RecoverError + 'a {
    move |source| RecoverError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// Recovers the state in `dir`: the snapshot (if any) and the journal's
/// records after it. A torn or corrupt journal tail is cut off (the file is
/// truncated and fsynced) and reported in [`Recovered::cut`]. A missing
/// directory, journal or snapshot is a new state, not an error.
pub fn recover(dir: &Path) -> Result<Recovered, RecoverError> {
    let snapshot = load_snapshot(&dir.join(SNAPSHOT_FILE))?;
    let base = snapshot.as_ref().map_or(0, |s| s.seq);
    let path = dir.join(JOURNAL_FILE);
    let bytes = match File::open(&path) {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(io_error(&path, "read the journal"))?;
            bytes
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_error(&path, "open the journal")(e)),
    };
    let scan = scan_journal(&bytes, base).map_err(|e| match e {
        ScanError::Header(error) => RecoverError::JournalHeader {
            path: path.clone(),
            error,
        },
        ScanError::Gap { found } => RecoverError::Gap {
            path: path.clone(),
            after: base,
            found,
        },
    })?;
    let mut keep = scan
        .cut
        .as_ref()
        .map_or(bytes.len() as u64, |c| c.at_offset);
    if scan.records.is_empty() && scan.skipped > 0 {
        // Everything left is covered by the snapshot: finish the truncation
        // a crash interrupted, so the next record follows the header.
        keep = keep.min(codec::JOURNAL_HEADER.len() as u64);
    }
    if keep < bytes.len() as u64 {
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error(&path, "open the journal to truncate it"))?;
        file.set_len(keep)
            .map_err(io_error(&path, "truncate the journal"))?;
        file.sync_all()
            .map_err(io_error(&path, "fsync the truncated journal"))?;
    }
    let old = codec::OLD_JOURNAL_HEADERS
        .iter()
        .find(|h| bytes.starts_with(h));
    if let Some(old) = old.filter(|_| keep >= codec::JOURNAL_HEADER.len() as u64) {
        upgrade_header(&path, old)?;
    }
    Ok(Recovered {
        snapshot,
        records: scan.records,
        cut: scan.cut,
        skipped: scan.skipped,
    })
}

/// Rewrites an older journal's header (`old`) as this version's (the same
/// length) before records of this version follow it: an older floatd then
/// refuses the file at start instead of cutting records it cannot read.
fn upgrade_header(path: &Path, old: &[u8]) -> Result<(), RecoverError> {
    use std::os::unix::fs::FileExt;
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error(path, "open the journal to upgrade its header"))?;
    file.write_all_at(codec::JOURNAL_HEADER, 0)
        .map_err(io_error(path, "upgrade the journal's header"))?;
    file.sync_all()
        .map_err(io_error(path, "fsync the journal's new header"))?;
    log::info!(
        "{}: journal header {:?} upgraded to format {}",
        path.display(),
        String::from_utf8_lossy(old).trim_end(),
        codec::FILE_FORMAT
    );
    Ok(())
}

/// Reads and checks a snapshot file; `None` if there is none.
pub fn load_snapshot(path: &Path) -> Result<Option<Snapshot>, RecoverError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, "read the snapshot")(e)),
    };
    codec::decode_snapshot(&bytes)
        .map(Some)
        .map_err(|error| RecoverError::Snapshot {
            path: path.to_path_buf(),
            error,
        })
}

struct Scan {
    records: Vec<Record>,
    skipped: usize,
    cut: Option<Cut>,
}

enum ScanError {
    Header(DecodeError),
    Gap { found: u64 },
}

/// Reads a journal's bytes: records after `base`, and where the good
/// prefix ends if it does not run to the end.
fn scan_journal(bytes: &[u8], base: u64) -> Result<Scan, ScanError> {
    let mut scan = Scan {
        records: Vec::new(),
        skipped: 0,
        cut: None,
    };
    if bytes.is_empty() {
        return Ok(scan);
    }
    let mut offset = match codec::check_journal_header(bytes) {
        Ok(n) => n,
        Err(DecodeError::Incomplete) => {
            scan.cut = Some(cut_at(bytes, 0, None, CutReason::TornHeader));
            return Ok(scan);
        }
        Err(e) => return Err(ScanError::Header(e)),
    };
    let mut last: Option<u64> = None;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let reason = match codec::decode_entry(rest) {
            Ok((record, used)) => match last {
                Some(prev) if record.seq != prev + 1 => CutReason::OutOfOrder {
                    expected: prev + 1,
                    found: record.seq,
                },
                _ => {
                    if last.is_none() && record.seq > base + 1 {
                        return Err(ScanError::Gap { found: record.seq });
                    }
                    last = Some(record.seq);
                    if record.seq > base {
                        scan.records.push(record);
                    } else {
                        scan.skipped += 1;
                    }
                    offset += used;
                    continue;
                }
            },
            Err(DecodeError::Incomplete) => CutReason::Torn,
            Err(e) => CutReason::Corrupt(e),
        };
        scan.cut = Some(cut_at(bytes, offset, last, reason));
        break;
    }
    Ok(scan)
}

fn cut_at(bytes: &[u8], offset: usize, last_good_seq: Option<u64>, reason: CutReason) -> Cut {
    let tail = &bytes[offset..];
    Cut {
        at_offset: offset as u64,
        bytes_cut: tail.len() as u64,
        last_good_seq,
        entries_lost_estimate: if reason == CutReason::TornHeader {
            0
        } else {
            codec::entries_estimate(tail)
        },
        reason,
    }
}

#[cfg(test)]
mod tests;
