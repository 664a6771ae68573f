use super::*;
use crate::journal::codec::tests::{records, snapshot};
use crate::journal::recover::recover;
use crossbeam_channel::RecvTimeoutError;
use std::time::Duration;

fn waker() -> (Box<dyn Fn() + Send>, Receiver<()>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (
        Box::new(move || {
            let _ = tx.send(());
        }),
        rx,
    )
}

/// Waits until the journal reports `seq` durable (or fails the test).
fn wait_durable(journal: &Journal, woken: &Receiver<()>, seq: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal.durable_seq() < seq {
        match woken.recv_deadline(deadline) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => panic!("seq {seq} never became durable"),
            Err(RecvTimeoutError::Disconnected) => panic!("writer gone"),
        }
    }
}

#[test]
fn durability_parses() {
    assert_eq!("fsync".parse(), Ok(Durability::Fsync));
    assert_eq!("none".parse(), Ok(Durability::None));
    assert!("sometimes".parse::<Durability>().is_err());
    assert_eq!(Durability::None.to_string(), "none");
}

#[test]
fn appended_records_recover() {
    for durability in [Durability::Fsync, Durability::None] {
        let dir = tempfile::tempdir().unwrap();
        let (wake, _woken) = waker();
        let journal = Journal::start(dir.path(), 0, durability, wake).unwrap();
        let rs = records(1, 500);
        for chunk in rs.chunks(7) {
            journal.append(chunk.to_vec());
        }
        journal.append(vec![]);
        journal.close().unwrap();
        let r = recover(dir.path()).unwrap();
        assert_eq!(r.records, rs);
        assert_eq!(r.cut, None);
        assert_eq!(r.snapshot, None);
    }
}

#[test]
fn publishes_durable_seq_and_wakes() {
    for durability in [Durability::Fsync, Durability::None] {
        let dir = tempfile::tempdir().unwrap();
        let (wake, woken) = waker();
        let journal = Journal::start(dir.path(), 0, durability, wake).unwrap();
        assert_eq!(journal.durable_seq(), 0);
        assert_eq!(journal.failure(), None);
        journal.append(records(1, 3));
        woken
            .recv_timeout(Duration::from_secs(10))
            .expect("woken after a batch");
        wait_durable(&journal, &woken, 3);
        assert_eq!(journal.durable_seq(), 3);
        let stats = journal.stats();
        assert_eq!(stats.durable_seq, 3);
        assert_eq!(stats.appended, 3);
        assert!(stats.batches >= 1);
        assert!(stats.bytes > 0);
        assert_eq!(
            stats.fsyncs,
            if durability == Durability::Fsync {
                stats.batches
            } else {
                0
            }
        );
        assert!(stats.max_fsync_us >= stats.last_fsync_us);
        assert!(stats.avg_fsync_us() <= stats.max_fsync_us);
        journal.close().unwrap();
    }
}

#[test]
fn group_commit_batches_what_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (wake, woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    let rs = records(1, 2000);
    for r in &rs {
        journal.append(vec![r.clone()]);
    }
    wait_durable(&journal, &woken, 2000);
    let stats = journal.stats();
    assert_eq!(stats.appended, 2000);
    // Each fsync took many records (the exact count depends on timing).
    assert!(stats.fsyncs < 2000, "{stats:?}");
    journal.close().unwrap();
    assert_eq!(recover(dir.path()).unwrap().records, rs);
}

#[test]
fn close_flushes_everything_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (wake, _woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    let rs = records(1, 100);
    journal.append(rs.clone());
    journal.close().unwrap();
    assert_eq!(recover(dir.path()).unwrap().records, rs);
}

#[test]
fn drop_flushes_too() {
    let dir = tempfile::tempdir().unwrap();
    let (wake, _woken) = waker();
    let rs = records(1, 10);
    {
        let journal = Journal::start(dir.path(), 0, Durability::None, wake).unwrap();
        journal.append(rs.clone());
    }
    assert_eq!(recover(dir.path()).unwrap().records, rs);
}

#[test]
fn reopening_appends_after_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let rs = records(1, 30);
    let (wake, _woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    journal.append(rs[..10].to_vec());
    journal.close().unwrap();
    let r = recover(dir.path()).unwrap();
    assert_eq!(r.last_seq(), 10);
    let (wake, _woken) = waker();
    let journal = Journal::start(dir.path(), r.last_seq(), Durability::Fsync, wake).unwrap();
    assert_eq!(journal.durable_seq(), 10);
    journal.append(rs[10..].to_vec());
    journal.close().unwrap();
    assert_eq!(recover(dir.path()).unwrap().records, rs);
}

#[test]
fn reset_replaces_a_longer_history() {
    let dir = tempfile::tempdir().unwrap();
    let (wake, woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    journal.append(records(1, 20));
    wait_durable(&journal, &woken, 20);
    // Another server's history, shorter than ours: it wins whole.
    let theirs = snapshot(5, 2);
    journal.reset(theirs.clone());
    let next = records(6, 3);
    journal.append(next.clone());
    journal.close().unwrap();
    let r = recover(dir.path()).unwrap();
    assert_eq!(r.snapshot, Some(theirs));
    assert_eq!(r.records, next);
    assert!(r.cut.is_none());
}

#[test]
fn snapshot_truncates_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (wake, woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    journal.append(records(1, 50));
    let snap = snapshot(50, 4);
    journal.snapshot(snap.clone());
    let newer = records(51, 20);
    journal.append(newer.clone());
    wait_durable(&journal, &woken, 70);
    assert_eq!(journal.stats().snapshots, 1);
    journal.close().unwrap();
    assert!(!dir.path().join(SNAPSHOT_TMP_FILE).exists());
    let r = recover(dir.path()).unwrap();
    assert_eq!(r.snapshot, Some(snap));
    assert_eq!(r.records, newer);
    assert_eq!(r.skipped, 0, "the journal was truncated");
    assert_eq!(r.cut, None);
}

#[test]
fn snapshot_ahead_of_the_journal_catches_up() {
    // A standby catching up: its journal is at 5, the snapshot at 100.
    let dir = tempfile::tempdir().unwrap();
    let (wake, woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    journal.append(records(1, 5));
    journal.snapshot(snapshot(100, 1));
    journal.append(records(101, 3));
    wait_durable(&journal, &woken, 103);
    journal.close().unwrap();
    let r = recover(dir.path()).unwrap();
    assert_eq!(r.snapshot.unwrap().seq, 100);
    assert_eq!(r.records, records(101, 3));
}

#[test]
fn snapshot_behind_the_journal_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (wake, _woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    let rs = records(1, 20);
    journal.append(rs.clone());
    journal.snapshot(snapshot(10, 0));
    journal.close().unwrap();
    let r = recover(dir.path()).unwrap();
    assert_eq!(r.snapshot.unwrap().seq, 10);
    assert_eq!(r.records, rs[10..]);
    assert_eq!(r.skipped, 10);
}

#[test]
fn duplicates_are_skipped_and_gaps_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (wake, woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    journal.append(records(1, 5));
    journal.append(records(3, 4)); // 3..=6: 3..=5 again, then 6
    wait_durable(&journal, &woken, 6);
    assert_eq!(journal.failure(), None);
    journal.append(records(9, 1));
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal.failure().is_none() {
        woken.recv_deadline(deadline).expect("woken on failure");
    }
    assert!(journal.failure().unwrap().contains("contiguous"));
    journal.append(records(7, 1));
    let e = journal.close().unwrap_err();
    assert!(e.to_string().contains("contiguous"), "{e}");
    let r = recover(dir.path()).unwrap();
    assert_eq!(r.records[..5], records(1, 5));
    let seqs: Vec<u64> = r.records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<u64>>());
}

#[test]
fn snapshot_failure_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // A directory in the way of snapshot.tmp makes the snapshot fail.
    fs::create_dir(dir.path().join(SNAPSHOT_TMP_FILE)).unwrap();
    let (wake, woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    journal.append(records(1, 3));
    journal.snapshot(snapshot(3, 1));
    journal.append(records(4, 3));
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal.failure().is_none() {
        woken.recv_deadline(deadline).expect("woken on failure");
    }
    let failure = journal.failure().unwrap();
    assert!(failure.contains("snapshot at seq 3"), "{failure}");
    assert_eq!(journal.durable_seq(), 3, "nothing after the failure");
    assert!(journal.close().is_err());
    // The records before the snapshot are safe in the journal.
    let r = recover(dir.path()).unwrap();
    assert_eq!(r.snapshot, None);
    assert_eq!(r.records, records(1, 3));
}

#[test]
fn start_creates_the_directory_and_header() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (wake, _woken) = waker();
    Journal::start(&state, 0, Durability::Fsync, wake)
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(fs::read(state.join(JOURNAL_FILE)).unwrap(), JOURNAL_HEADER);
}

#[test]
fn start_refuses_a_journal_that_does_not_end_at_last_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (wake, _woken) = waker();
    let journal = Journal::start(dir.path(), 0, Durability::Fsync, wake).unwrap();
    journal.append(records(1, 10));
    journal.close().unwrap();
    for wrong in [0, 9, 11] {
        let (wake, _woken) = waker();
        let e = Journal::start(dir.path(), wrong, Durability::Fsync, wake)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("ends at seq 10"), "{e}");
    }
    let (wake, _woken) = waker();
    Journal::start(dir.path(), 10, Durability::Fsync, wake)
        .unwrap()
        .close()
        .unwrap();
}

#[test]
fn start_refuses_an_unrecovered_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    let mut torn = JOURNAL_HEADER.to_vec();
    torn.extend_from_slice(&codec::encode_record(&records(1, 1)[0]));
    torn.truncate(torn.len() - 3);
    for bytes in [&b"floatd-jo"[..], b"floatd-journal 1\n", &torn[..]] {
        fs::write(&path, bytes).unwrap();
        let (wake, _woken) = waker();
        let e = Journal::start(dir.path(), 0, Durability::Fsync, wake)
            .err()
            .expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("recovery"), "{e}");
    }
}
