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
        let journal =
            crate::journal::Journal::start(dir.path(), 12, crate::journal::Durability::Fsync, wake)
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
