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
mod tests {
    use super::*;
    use crate::journal::codec::tests::{records, snapshot};
    use crate::journal::codec::{encode_record, encode_snapshot, JOURNAL_HEADER};
    use proptest::prelude::*;

    fn journal_bytes(records: &[Record]) -> Vec<u8> {
        let mut bytes = JOURNAL_HEADER.to_vec();
        for r in records {
            bytes.extend_from_slice(&encode_record(r));
        }
        bytes
    }

    fn write_journal(dir: &Path, bytes: &[u8]) {
        fs::write(dir.join(JOURNAL_FILE), bytes).unwrap();
    }

    fn journal_len(dir: &Path) -> u64 {
        fs::metadata(dir.join(JOURNAL_FILE)).unwrap().len()
    }

    #[test]
    fn empty_directory_is_a_new_state() {
        let dir = tempfile::tempdir().unwrap();
        let r = recover(dir.path()).unwrap();
        assert_eq!(
            r,
            Recovered {
                snapshot: None,
                records: vec![],
                cut: None,
                skipped: 0
            }
        );
        assert_eq!(r.last_seq(), 0);
        let missing = recover(&dir.path().join("nope")).unwrap();
        assert_eq!(missing.records, vec![]);
        write_journal(dir.path(), b"");
        assert_eq!(recover(dir.path()).unwrap().cut, None);
        write_journal(dir.path(), JOURNAL_HEADER);
        assert_eq!(recover(dir.path()).unwrap().cut, None);
    }

    #[test]
    fn whole_journal_is_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let rs = records(1, 40);
        write_journal(dir.path(), &journal_bytes(&rs));
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.records, rs);
        assert_eq!(r.cut, None);
        assert_eq!(r.last_seq(), 40);
    }

    #[test]
    fn torn_tail_is_cut_at_every_offset() {
        let dir = tempfile::tempdir().unwrap();
        // The last entry is a grant, a release, then a stop; the first an only entry.
        for n in [1, 2, 6, 11] {
            let rs = records(1, n);
            let good = journal_bytes(&rs[..n - 1]);
            let full = journal_bytes(&rs);
            let last_good = (n > 1).then_some(n as u64 - 1);
            for end in good.len() + 1..full.len() {
                write_journal(dir.path(), &full[..end]);
                let r = recover(dir.path()).unwrap();
                assert_eq!(r.records, rs[..n - 1], "cut at {end}");
                let cut = r.cut.expect("a cut");
                assert_eq!(cut.reason, CutReason::Torn, "cut at {end}");
                assert_eq!(cut.at_offset, good.len() as u64);
                assert_eq!(cut.bytes_cut, (end - good.len()) as u64);
                assert_eq!(cut.last_good_seq, last_good);
                assert_eq!(cut.entries_lost_estimate, 1);
                assert_eq!(journal_len(dir.path()), good.len() as u64);
                let again = recover(dir.path()).unwrap();
                assert_eq!(again.cut, None);
                assert_eq!(again.records, rs[..n - 1]);
            }
        }
    }

    #[test]
    fn torn_header_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        for end in 1..JOURNAL_HEADER.len() {
            write_journal(dir.path(), &JOURNAL_HEADER[..end]);
            let r = recover(dir.path()).unwrap();
            assert_eq!(r.records, vec![]);
            let cut = r.cut.unwrap();
            assert_eq!(cut.reason, CutReason::TornHeader);
            assert_eq!(cut.at_offset, 0);
            assert_eq!(journal_len(dir.path()), 0);
        }
    }

    #[test]
    fn corrupt_middle_keeps_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let rs = records(1, 10);
        let prefix = journal_bytes(&rs[..4]);
        let mut bytes = journal_bytes(&rs);
        // A byte inside the payload of the fifth entry.
        let at = prefix.len() + 15;
        bytes[at] ^= 0x02;
        write_journal(dir.path(), &bytes);
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.records, rs[..4]);
        let cut = r.cut.unwrap();
        assert_eq!(cut.reason, CutReason::Corrupt(DecodeError::Checksum));
        assert_eq!(cut.at_offset, prefix.len() as u64);
        assert_eq!(cut.bytes_cut, (bytes.len() - prefix.len()) as u64);
        assert_eq!(cut.entries_lost_estimate, 6);
        assert_eq!(cut.last_good_seq, Some(4));
        assert!(cut.to_string().contains("checksum"), "{cut}");
        assert_eq!(journal_len(dir.path()), prefix.len() as u64);
        assert_eq!(recover(dir.path()).unwrap().cut, None);
    }

    #[test]
    fn garbage_after_good_entries_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let rs = records(1, 3);
        let good = journal_bytes(&rs);
        let mut bytes = good.clone();
        bytes.extend_from_slice(&[0u8; 4096]);
        write_journal(dir.path(), &bytes);
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.records, rs);
        assert!(matches!(
            r.cut.unwrap().reason,
            CutReason::Corrupt(DecodeError::Malformed(_))
        ));
        assert_eq!(journal_len(dir.path()), good.len() as u64);
    }

    #[test]
    fn sequence_that_skips_or_goes_back_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let rs = records(1, 5);
        for bad_seq in [7, 3, 4] {
            let mut bad = rs.clone();
            bad[4].seq = bad_seq;
            write_journal(dir.path(), &journal_bytes(&bad));
            let r = recover(dir.path()).unwrap();
            assert_eq!(r.records, rs[..4]);
            assert_eq!(
                r.cut.unwrap().reason,
                CutReason::OutOfOrder {
                    expected: 5,
                    found: bad_seq
                }
            );
        }
    }

    #[test]
    fn older_journals_are_read_their_header_upgraded_and_appended_to() {
        for old in codec::OLD_JOURNAL_HEADERS {
            let dir = tempfile::tempdir().unwrap();
            let rs = records(1, 12); // every kind version 1 had
            let mut bytes = old.to_vec();
            for r in &rs {
                bytes.extend_from_slice(&crate::journal::legacy::encode_record(r));
            }
            write_journal(dir.path(), &bytes);
            let r = recover(dir.path()).unwrap();
            assert_eq!((r.records, r.cut), (rs.clone(), None));
            let on_disk = fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
            assert!(on_disk.starts_with(JOURNAL_HEADER));
            assert_eq!(on_disk[JOURNAL_HEADER.len()..], bytes[old.len()..]);
            // New records follow in this version's encoding, and the whole
            // file reads back.
            let (wake, _woken) = (Box::new(|| {}), ());
            let journal = crate::journal::Journal::start(
                dir.path(),
                12,
                crate::journal::Durability::Fsync,
                wake,
            )
            .unwrap();
            let more = records(13, 8);
            journal.append(more.clone());
            journal.close().unwrap();
            let all = recover(dir.path()).unwrap();
            assert_eq!(all.records, [rs, more].concat());
            assert_eq!(all.cut, None);
            // A journal holding only an old header is upgraded too.
            write_journal(dir.path(), old);
            recover(dir.path()).unwrap();
            assert_eq!(
                fs::read(dir.path().join(JOURNAL_FILE)).unwrap(),
                JOURNAL_HEADER
            );
        }
    }

    #[test]
    fn unknown_journal_version_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"floatd-journal 4\n".to_vec();
        bytes.extend_from_slice(&encode_record(&records(1, 1)[0]));
        write_journal(dir.path(), &bytes);
        let e = recover(dir.path()).unwrap_err();
        assert!(matches!(
            e,
            RecoverError::JournalHeader {
                error: DecodeError::UnknownVersion { .. },
                ..
            }
        ));
        let text = e.to_string();
        assert!(
            text.contains("journal") && text.contains("version"),
            "{text}"
        );
        // Left untouched for the operator.
        assert_eq!(journal_len(dir.path()), bytes.len() as u64);

        write_journal(dir.path(), b"hello world\n");
        assert!(matches!(
            recover(dir.path()),
            Err(RecoverError::JournalHeader {
                error: DecodeError::NotThisFormat { .. },
                ..
            })
        ));
    }

    #[test]
    fn snapshot_then_newer_records() {
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot(20, 3);
        fs::write(dir.path().join(SNAPSHOT_FILE), encode_snapshot(&snap)).unwrap();
        let rs = records(21, 5);
        write_journal(dir.path(), &journal_bytes(&rs));
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.snapshot, Some(snap));
        assert_eq!(r.records, rs);
        assert_eq!(r.skipped, 0);
        assert_eq!(r.last_seq(), 25);
    }

    #[test]
    fn records_covered_by_the_snapshot_are_skipped() {
        // A crash after the snapshot's rename, before the journal's truncation.
        let dir = tempfile::tempdir().unwrap();
        let snap = snapshot(20, 2);
        fs::write(dir.path().join(SNAPSHOT_FILE), encode_snapshot(&snap)).unwrap();
        write_journal(dir.path(), &journal_bytes(&records(11, 10)));
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.snapshot, Some(snap.clone()));
        assert_eq!(r.records, vec![]);
        assert_eq!(r.skipped, 10);
        assert_eq!(r.cut, None);
        assert_eq!(r.last_seq(), 20);
        // The interrupted truncation is finished, so seq 21 can follow.
        assert_eq!(journal_len(dir.path()), JOURNAL_HEADER.len() as u64);

        // Stale records followed by newer ones (contiguous): both handled.
        let rs = records(15, 10);
        write_journal(dir.path(), &journal_bytes(&rs));
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.records, rs[6..]);
        assert_eq!(r.skipped, 6);
        assert_eq!(r.records[0].seq, 21);
    }

    #[test]
    fn journal_that_does_not_follow_the_snapshot_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write_journal(dir.path(), &journal_bytes(&records(5, 3)));
        let e = recover(dir.path()).unwrap_err();
        assert!(matches!(
            e,
            RecoverError::Gap {
                after: 0,
                found: 5,
                ..
            }
        ));
        assert!(e.to_string().contains("1..4"), "{e}");
        fs::write(
            dir.path().join(SNAPSHOT_FILE),
            encode_snapshot(&snapshot(3, 0)),
        )
        .unwrap();
        assert!(matches!(
            recover(dir.path()),
            Err(RecoverError::Gap {
                after: 3,
                found: 5,
                ..
            })
        ));
        fs::write(
            dir.path().join(SNAPSHOT_FILE),
            encode_snapshot(&snapshot(4, 0)),
        )
        .unwrap();
        assert_eq!(recover(dir.path()).unwrap().records.len(), 3);
    }

    #[test]
    fn corrupt_snapshot_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SNAPSHOT_FILE);
        let good = encode_snapshot(&snapshot(5, 4));
        write_journal(dir.path(), &journal_bytes(&records(6, 2)));

        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x10;
        let mut wrong_header = good.clone();
        wrong_header[..6].copy_from_slice(b"FLOATD");
        let mut v9 = b"floatd-snapshot 9\n".to_vec();
        v9.extend_from_slice(&good[SNAPSHOT_HEADER_LEN..]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("flipped", flipped),
            ("truncated", good[..good.len() - 10].to_vec()),
            ("empty", vec![]),
            ("wrong header", wrong_header),
            ("version 9", v9),
        ];
        for (name, bytes) in cases {
            fs::write(&path, &bytes).unwrap();
            let e = recover(dir.path()).unwrap_err();
            assert!(matches!(e, RecoverError::Snapshot { .. }), "{name}: {e:?}");
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()), "{name}: {text}");
            if name == "version 9" {
                assert!(text.contains("version"), "{text}");
            }
        }
        fs::write(&path, &good).unwrap();
        assert_eq!(recover(dir.path()).unwrap().records.len(), 2);
    }

    const SNAPSHOT_HEADER_LEN: usize = codec::SNAPSHOT_HEADER.len();

    #[test]
    fn unreadable_snapshot_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the snapshot file should be cannot be read.
        fs::create_dir(dir.path().join(SNAPSHOT_FILE)).unwrap();
        let e = recover(dir.path()).unwrap_err();
        assert!(matches!(e, RecoverError::Io { .. }), "{e:?}");
        assert!(e.to_string().contains(SNAPSHOT_FILE));
    }

    proptest! {
        #[test]
        fn arbitrary_journal_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let dir = tempfile::tempdir().unwrap();
            write_journal(dir.path(), &bytes);
            let _ = recover(dir.path());
            let mut with_header = JOURNAL_HEADER.to_vec();
            with_header.extend_from_slice(&bytes);
            write_journal(dir.path(), &with_header);
            let r = recover(dir.path()).unwrap();
            // Whatever was kept reads back the same, with nothing more to cut.
            let again = recover(dir.path()).unwrap();
            prop_assert_eq!(again.cut, None);
            prop_assert_eq!(again.records, r.records);
        }

        #[test]
        fn good_prefix_then_garbage_keeps_the_prefix(
            n in 0usize..8,
            garbage in proptest::collection::vec(any::<u8>(), 1..256),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let rs = records(1, n);
            let mut bytes = journal_bytes(&rs);
            bytes.extend_from_slice(&garbage);
            write_journal(dir.path(), &bytes);
            let r = recover(dir.path()).unwrap();
            prop_assert!(r.records.len() >= n);
            prop_assert_eq!(&r.records[..n], &rs[..]);
        }
    }
}
