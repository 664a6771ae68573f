use super::*;
use crate::codes::Code;
use crate::ledger::{Denial, Event, Extension, Grant, Reason, Return, Roam, SeatSnapshot};
use crate::licence::{Expiry, PoolKey, Share, Version};

pub(crate) fn grant(handle: &str) -> Grant {
    Grant {
        handle: handle.into(),
        feature: "cad".into(),
        version: Version::parse("2.0").unwrap(),
        pool: PoolKey {
            feature: "cad".into(),
            version: Version::parse("2.1").unwrap(),
            expiry: Expiry::parse("2027-12-31").unwrap(),
            share: Share::User,
        },
        count: 2,
        user: "ann \"the admin\"\nnewline".into(),
        host: "ws-1".into(),
        client: "c-\u{e9}\u{1F600}".into(),
        lease_ms: 60_000,
        min_hold_ms: 5_000,
        at: 1_763_900_000,
        roam: None,
    }
}

/// One event of every kind (and every release reason).
pub(crate) fn every_event() -> Vec<Event> {
    let mut events = vec![
        Event::Started { at: 1 },
        Event::Grant(grant("h1.tag").into()),
        Event::Denied(Denial {
            feature: "cad".into(),
            version: Version::parse("3").unwrap(),
            count: 1,
            user: "bob".into(),
            host: "ws-2".into(),
            code: Code::NoSeats,
            rule: None,
            at: 3,
            roam_days: None,
        }),
        Event::Denied(Denial {
            feature: "cad".into(),
            version: Version::parse("1.0.1").unwrap(),
            count: 4,
            user: "eve".into(),
            host: "ws-3".into(),
            code: Code::MaxReached,
            rule: Some("floatd.opt:12".into()),
            at: 7,
            roam_days: Some(30),
        }),
        Event::Reread { pools: 3, at: 9 },
    ];
    for reason in [
        Reason::Checkin,
        Reason::Expired,
        Reason::Removed,
        Reason::LicenceGone,
        Reason::Shutdown,
    ] {
        events.push(Event::Release(Return {
            handle: "h1.tag".into(),
            reason,
            at: 11,
            feature: "cad".into(),
            version: Version::parse("2.0").unwrap(),
            count: 1,
            user: "alice".into(),
            host: "ws-1".into(),
            granted_at: 2,
        }));
    }
    events.push(Event::Activated {
        server: "lic2".into(),
        state: "recovering".into(),
        at: 12,
    });
    events.push(Event::Stopped { at: u64::MAX });
    // Format version 2: roams.
    events.extend([
        Event::Grant(std::sync::Arc::new(Grant {
            roam: Some(Box::new(Roam {
                hostid: "machine:0123456789abcdef".into(),
                days: 7,
                from: 1_763_900_000,
                until: 1_764_547_200,
            })),
            lease_ms: 0,
            min_hold_ms: 0,
            ..grant("r1.tag")
        })),
        Event::RoamExtended(Extension {
            handle: "r1.tag".into(),
            days: 9,
            until: 1_764_720_000,
            at: 1_763_990_000,
            feature: "cad".into(),
            version: Version::parse("2.0").unwrap(),
            count: 2,
            user: "ann".into(),
            host: "ws-1".into(),
        }),
    ]);
    events.push(Event::RoamKey(crate::ledger::RoamKey {
        key_id: "1f3a9c2e".into(),
        wrapped: "AAECAwQFBgcICQoLDA0ODw==".into(),
        at: 1_763_900_000,
    }));
    for reason in [Reason::RoamReturn, Reason::RoamEnd] {
        events.push(Event::Release(Return {
            handle: "r1.tag".into(),
            reason,
            at: 1_764_720_000,
            feature: "cad".into(),
            version: Version::parse("2.0").unwrap(),
            count: 2,
            user: "ann".into(),
            host: "ws-1".into(),
            granted_at: 1_763_900_000,
        }));
    }
    events
}

/// Records 1..=n cycling through every event kind.
pub(crate) fn records(first: u64, n: usize) -> Vec<Record> {
    let events = every_event();
    (0..n)
        .map(|i| Record {
            seq: first + i as u64,
            epoch: 1 + i as u64 / 7,
            event: events[i % events.len()].clone(),
        })
        .collect()
}

pub(crate) fn snapshot(seq: u64, seats: usize) -> Snapshot {
    Snapshot {
        seq,
        epoch: 3,
        seats: (0..seats)
            .map(|i| SeatSnapshot {
                grant: grant(&format!("h{i}.tag")).into(),
                lease_left_ms: 1000 * i as u64,
                hold_left_ms: 7,
                checked_in: i % 2 == 1,
            })
            .collect(),
        returned: (0..seats / 2)
            .map(|i| crate::ledger::Returned {
                handle: format!("r{i}.tag").into(),
                reason: crate::ledger::Reason::Checkin,
                left_ms: 100 * i as u64,
            })
            .collect(),
        roam_key: (seats > 0).then(|| crate::ledger::RoamKey {
            key_id: "1f3a9c2e".into(),
            wrapped: "AAECAwQFBgcICQoLDA0ODw==".into(),
            at: 5,
        }),
    }
}

#[test]
fn every_event_kind_round_trips() {
    for record in records(1, every_event().len()) {
        let bytes = encode_record(&record);
        assert_eq!(bytes[0], BINARY_MARK);
        assert_eq!(decode_record(&bytes).unwrap(), record);
        let (again, used) = decode_entry(&bytes).unwrap();
        assert_eq!((again, used), (record, bytes.len()));
    }
}

#[test]
fn an_entry_is_framed_as_documented_and_smaller_than_json() {
    let record = Record {
        seq: 42,
        epoch: 1,
        event: Event::Grant(grant("h1.tag").into()),
    };
    let bytes = encode_record(&record);
    let len = u32::from_le_bytes(bytes[1..5].try_into().unwrap()) as usize;
    assert_eq!(bytes.len(), ENTRY_HEADER_LEN + len);
    let payload = &bytes[ENTRY_HEADER_LEN..];
    assert_eq!(bytes[5..13], Sha256::digest(payload)[..8]);
    assert_eq!(payload[..2], [42, 1], "seq and epoch lead");
    let json = serde_json::to_vec(&record).unwrap();
    assert!(
        bytes.len() * 2 < json.len(),
        "{} vs {}",
        bytes.len(),
        json.len()
    );
}

#[test]
fn encode_into_appends() {
    let rs = records(1, 3);
    let mut buf = Vec::new();
    for r in &rs {
        encode_record_into(r, &mut buf);
    }
    let mut at = 0;
    for r in &rs {
        let (got, used) = decode_entry(&buf[at..]).unwrap();
        assert_eq!(&got, r);
        at += used;
    }
    assert_eq!(at, buf.len());
    assert_eq!(last_record(&buf).unwrap().as_ref(), rs.last());
    assert_eq!(entries_estimate(&buf), 3);
    assert_eq!(last_record(&[]).unwrap(), None);
}

#[test]
fn text_and_binary_entries_mix_in_one_journal() {
    let rs = records(1, 20);
    let mut buf = Vec::new();
    for r in &rs[..10] {
        buf.extend_from_slice(&legacy::encode_record(r));
    }
    for r in &rs[10..] {
        encode_record_into(r, &mut buf);
    }
    let mut at = 0;
    for r in &rs {
        let (got, used) = decode_entry(&buf[at..]).unwrap();
        assert_eq!(&got, r);
        at += used;
    }
    assert_eq!(last_record(&buf).unwrap().as_ref(), rs.last());
    assert_eq!(entries_estimate(&buf), 20);
}

#[test]
fn every_proper_prefix_is_incomplete() {
    let bytes = encode_record(&records(1, 2)[1]);
    for cut in 1..bytes.len() {
        assert_eq!(
            decode_entry(&bytes[..cut]),
            Err(DecodeError::Incomplete),
            "cut at {cut}"
        );
    }
    assert_eq!(
        decode_entry(&[]).unwrap_err(),
        DecodeError::Incomplete,
        "empty"
    );
}

#[test]
fn every_flipped_byte_is_detected() {
    let bytes = encode_record(&records(1, 2)[1]);
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x20, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            assert!(decode_record(&bad).is_err(), "byte {i} bit {bit:#x}");
        }
    }
}

#[test]
fn decode_record_wants_exactly_one_entry() {
    let mut bytes = encode_record(&records(1, 1)[0]);
    bytes.extend_from_slice(b"x");
    assert!(matches!(
        decode_record(&bytes),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn bad_frames_are_named() {
    assert!(matches!(decode_entry(b"x"), Err(DecodeError::Malformed(_))));
    let mut too_long = vec![BINARY_MARK];
    too_long.extend_from_slice(&(MAX_RECORD_LEN as u32 + 1).to_le_bytes());
    too_long.extend_from_slice(&[0; 8]);
    assert!(matches!(
        decode_entry(&too_long),
        Err(DecodeError::TooLong { .. })
    ));
    let mut empty = vec![BINARY_MARK, 0, 0, 0, 0];
    empty.extend_from_slice(&[0; 8]);
    assert!(matches!(
        decode_entry(&empty),
        Err(DecodeError::Malformed(_))
    ));
    // A valid frame around a payload that is not a record.
    let payload = [7u8, 1, 99];
    let mut frame = vec![BINARY_MARK];
    frame.extend_from_slice(&3u32.to_le_bytes());
    frame.extend_from_slice(&Sha256::digest(payload)[..8]);
    frame.extend_from_slice(&payload);
    assert!(matches!(decode_entry(&frame), Err(DecodeError::Payload(_))));
}

#[test]
fn snapshot_round_trips() {
    for seats in [0, 1, 5] {
        let snap = snapshot(77, seats);
        let bytes = encode_snapshot(&snap);
        assert!(bytes.starts_with(SNAPSHOT_HEADER));
        assert_eq!(decode_snapshot(&bytes).unwrap(), snap);
    }
}

#[test]
fn snapshot_damage_is_an_error() {
    let bytes = encode_snapshot(&snapshot(9, 3));
    for cut in 0..bytes.len() {
        assert!(decode_snapshot(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x04;
        assert!(decode_snapshot(&bad).is_err(), "byte {i}");
    }
    let mut longer = bytes.clone();
    longer.push(b'\n');
    assert!(decode_snapshot(&longer).is_err());
}

#[test]
fn headers_are_checked() {
    for version in ["1", "2", "3"] {
        let header = format!("floatd-journal {version}\nrest");
        assert_eq!(check_journal_header(header.as_bytes()), Ok(17));
    }
    assert_eq!(
        check_journal_header(b"floatd-journal 1"),
        Err(DecodeError::Incomplete)
    );
    assert_eq!(
        JOURNAL_HEADER,
        format!("floatd-journal {FILE_FORMAT}\n").as_bytes()
    );
    assert_eq!(
        SNAPSHOT_HEADER,
        format!("floatd-snapshot {FILE_FORMAT}\n").as_bytes()
    );
    assert_eq!(JOURNAL_HEADER.len(), 17);
    assert_eq!(SNAPSHOT_HEADER.len(), 18);
    assert_eq!(
        check_journal_header(b"floatd-jour"),
        Err(DecodeError::Incomplete)
    );
    assert_eq!(
        check_journal_header(b"floatd-journal 4\n"),
        Err(DecodeError::UnknownVersion {
            magic: "floatd-journal",
            found: "4".into()
        })
    );
    assert_eq!(
        check_journal_header(b"floatd-snapshot 3\n"),
        Err(DecodeError::NotThisFormat {
            expected: "floatd-journal"
        })
    );
    let body = &encode_snapshot(&snapshot(1, 0))[SNAPSHOT_HEADER.len()..];
    let mut v4 = b"floatd-snapshot 4\n".to_vec();
    v4.extend_from_slice(body);
    assert!(matches!(
        decode_snapshot(&v4),
        Err(DecodeError::UnknownVersion { .. })
    ));
}
