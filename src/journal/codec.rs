//! Encoding of journal entries and snapshots: bytes only, no I/O.
//!
//! # Journal, format version 2 (version 1 files read as version 2)
//!
//! ```text
//! floatd-journal 2\n                                  file header (17 bytes)
//! <len> <sum> <payload>\n                             one entry per record
//! <len> <sum> <payload>\n
//! ...
//! ```
//!
//! - `<len>`: the payload's length in bytes, ASCII decimal, 1 to 7 digits
//!   (at most [`MAX_RECORD_LEN`]).
//! - `<sum>`: the first 8 bytes of the SHA-256 of the payload, as 16
//!   lowercase hex digits.
//! - `<payload>`: the [`Record`] as compact JSON (`{"seq":..,"epoch":..,
//!   "event":{"kind":..}}`). JSON escapes control characters inside
//!   strings, so a payload never holds a newline: every entry is exactly one
//!   line, and the file reads with `less`, `tail` or `grep`.
//!
//! The length says where an entry must end, so a reader tells a complete
//! entry (length, checksum and closing newline all agree) from a torn one
//! (the file ends first) or a corrupt one (anything else). The sequence
//! number is inside the payload, under the checksum.
//!
//! One entry stands alone: [`encode_record`] makes exactly the bytes the
//! journal file holds for a record, and the same bytes go to the standby
//! over the peer link. The format version is stated once per stream, as
//! the file's header does: the peer link states [`FORMAT_VERSION`] in its
//! hello, and both ends refuse a version they do not know.
//!
//! Readers ignore JSON fields they do not know, so a later build may add
//! fields to an event within version 1. A new event kind, or any change an
//! older build would misread, needs a new [`FORMAT_VERSION`]: an older
//! build stops at an unknown version instead of cutting entries it cannot
//! decode.
//!
//! # Snapshot, format version 2 (version 1 files read as version 2)
//!
//! ```text
//! floatd-snapshot 2\n                                 file header (18 bytes)
//! <len> <sum> <body>\n                                one line
//! ```
//!
//! The same framing as a journal entry, except that `<sum>` is the whole
//! SHA-256 of the body (64 lowercase hex digits) and the length has no
//! limit but the file's. The body is the [`Snapshot`] as compact JSON.
//! Nothing may follow the line.

use crate::ledger::{Record, Snapshot};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// The version of the journal, record and snapshot encodings. Version 2
/// added roams (a grant's `roam`, the `roam_extended` and `roam_key`
/// events, the `roam_return` and `roam_end` reasons) and what a merge after a split
/// records (the `adopt` event, the `journal_failed` reason, a snapshot's
/// `returned`).
pub const FORMAT_VERSION: u32 = 2;

/// The first line of a journal file.
pub const JOURNAL_HEADER: &[u8] = b"floatd-journal 2\n";

/// The first line of a snapshot file.
pub const SNAPSHOT_HEADER: &[u8] = b"floatd-snapshot 2\n";

/// The headers of version 1, which lacks only what version 2 added: its
/// files read as version 2. Recovery rewrites an old journal's header
/// before new records follow it, so a file never claims a version older
/// than its records.
pub const JOURNAL_HEADER_V1: &[u8] = b"floatd-journal 1\n";
const SNAPSHOT_HEADER_V1: &[u8] = b"floatd-snapshot 1\n";

const JOURNAL_MAGIC: &str = "floatd-journal";
const SNAPSHOT_MAGIC: &str = "floatd-snapshot";

/// The longest record payload accepted (a record is a few hundred bytes;
/// every string in it comes from a protocol line of at most 4 KiB).
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// Digits of `<len>` in a journal entry (enough for [`MAX_RECORD_LEN`]).
const MAX_LEN_DIGITS: usize = 7;

/// Hex digits of an entry's checksum (8 bytes of SHA-256).
const RECORD_SUM_HEX: usize = 16;

/// Hex digits of a snapshot's checksum (all of SHA-256).
const SNAPSHOT_SUM_HEX: usize = 64;

/// Why bytes did not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the entry does (a torn write, or more to read).
    Incomplete,
    /// The framing is wrong: what is wrong, in words.
    Malformed(&'static str),
    /// The length field is larger than any valid entry.
    TooLong { len: u64, max: u64 },
    /// The checksum does not match the payload.
    Checksum,
    /// The payload passed its checksum but is not a valid record or snapshot
    /// (written by an incompatible build).
    Payload(String),
    /// The header is not this kind of file's.
    NotThisFormat { expected: &'static str },
    /// The header names a format version this build does not read.
    UnknownVersion { magic: &'static str, found: String },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete => f.write_str("the data ends inside an entry"),
            DecodeError::Malformed(what) => write!(f, "malformed entry: {what}"),
            DecodeError::TooLong { len, max } => {
                write!(f, "entry length {len} exceeds the limit of {max} bytes")
            }
            DecodeError::Checksum => f.write_str("checksum mismatch"),
            DecodeError::Payload(e) => write!(f, "undecodable payload: {e}"),
            DecodeError::NotThisFormat { expected } => {
                write!(f, "not a {expected} file (its first line is wrong)")
            }
            DecodeError::UnknownVersion { magic, found } => write!(
                f,
                "{magic} format version {found:?} is not one this build reads (it reads 1 and {FORMAT_VERSION})"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

// ----- records ---------------------------------------------------------

/// Encodes one record as one journal entry (see the module documentation).
pub fn encode_record(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(320);
    encode_record_into(record, &mut out);
    out
}

/// Appends one record's entry to `out` (no allocation beyond `out`'s growth).
pub fn encode_record_into(record: &Record, out: &mut Vec<u8>) {
    encode_framed(record, RECORD_SUM_HEX, out);
}

/// Decodes exactly one entry: `bytes` must hold one whole entry and nothing
/// else.
pub fn decode_record(bytes: &[u8]) -> Result<Record, DecodeError> {
    let (record, used) = decode_entry(bytes)?;
    if used != bytes.len() {
        return Err(DecodeError::Malformed("bytes follow the entry"));
    }
    Ok(record)
}

/// Decodes the entry at the start of `bytes`, returning the record and the
/// number of bytes it took. [`DecodeError::Incomplete`] means the bytes
/// seen so far are a valid beginning of an entry: at the end of a file it
/// marks a torn write; on a stream, wait for more.
pub fn decode_entry(bytes: &[u8]) -> Result<(Record, usize), DecodeError> {
    let (payload, used) = split_frame(bytes, RECORD_SUM_HEX, MAX_RECORD_LEN as u64)?;
    let record =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Payload(e.to_string()))?;
    Ok((record, used))
}

// ----- snapshots -------------------------------------------------------

/// Encodes a snapshot as a whole snapshot file (header included). The same
/// bytes can be sent to a standby.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER.len() + 128 + snapshot.seats.len() * 320);
    out.extend_from_slice(SNAPSHOT_HEADER);
    encode_framed(snapshot, SNAPSHOT_SUM_HEX, &mut out);
    out
}

/// Decodes a whole snapshot file. Every failure is an error: a snapshot is
/// never partly trusted.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
    let start = check_header(bytes, SNAPSHOT_MAGIC, [SNAPSHOT_HEADER, SNAPSHOT_HEADER_V1])?;
    let rest = &bytes[start..];
    let (body, used) = split_frame(rest, SNAPSHOT_SUM_HEX, rest.len() as u64)?;
    if used != rest.len() {
        return Err(DecodeError::Malformed("bytes follow the snapshot"));
    }
    serde_json::from_slice(body).map_err(|e| DecodeError::Payload(e.to_string()))
}

// ----- headers ---------------------------------------------------------

/// Checks a journal file's header, returning its length.
pub fn check_journal_header(bytes: &[u8]) -> Result<usize, DecodeError> {
    check_header(bytes, JOURNAL_MAGIC, [JOURNAL_HEADER, JOURNAL_HEADER_V1])
}

/// `Ok(header length)` for one of the headers read (this version's or an
/// older one); `Incomplete` for a proper prefix of one (a torn creation);
/// `UnknownVersion` for `<magic> <other>`; `NotThisFormat` for anything else.
fn check_header(
    bytes: &[u8],
    magic: &'static str,
    read: [&'static [u8]; 2],
) -> Result<usize, DecodeError> {
    if let Some(header) = read.iter().find(|h| bytes.starts_with(h)) {
        return Ok(header.len());
    }
    if read.iter().any(|h| h.starts_with(bytes)) {
        return Err(DecodeError::Incomplete);
    }
    let line_end = bytes.iter().take(64).position(|&b| b == b'\n');
    if let Some(end) = line_end {
        let line = &bytes[..end];
        if let Some(version) = line
            .strip_prefix(magic.as_bytes())
            .and_then(|r| r.strip_prefix(b" "))
        {
            return Err(DecodeError::UnknownVersion {
                magic,
                found: String::from_utf8_lossy(version).into_owned(),
            });
        }
    }
    Err(DecodeError::NotThisFormat { expected: magic })
}

// ----- framing ---------------------------------------------------------

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `<len> <sum> <json>\n` for `value`.
fn encode_framed<T: Serialize>(value: &T, sum_hex: usize, out: &mut Vec<u8>) {
    let start = out.len();
    // Records and snapshots hold only strings, numbers and enums (no maps
    // with non-string keys), which serde_json always serializes.
    serde_json::to_writer(&mut *out, value).expect("ledger types always serialize to JSON");
    let payload = &out[start..];
    let digest = Sha256::digest(payload);
    // `<len> <sum> `, built on the stack: at most 20 digits, 64 hex digits.
    let mut prefix = [0u8; 20 + 1 + SNAPSHOT_SUM_HEX + 1];
    let mut digits = [0u8; 20];
    let mut n = payload.len();
    let mut d = digits.len();
    loop {
        d -= 1;
        digits[d] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut at = digits.len() - d;
    prefix[..at].copy_from_slice(&digits[d..]);
    prefix[at] = b' ';
    at += 1;
    for &b in &digest[..sum_hex / 2] {
        prefix[at] = HEX[(b >> 4) as usize];
        prefix[at + 1] = HEX[(b & 15) as usize];
        at += 2;
    }
    prefix[at] = b' ';
    at += 1;
    out.splice(start..start, prefix[..at].iter().copied());
    out.push(b'\n');
}

/// Splits one `<len> <sum> <payload>\n` frame off the front of `bytes`,
/// checking length and checksum. Returns the payload and the frame's size.
fn split_frame(bytes: &[u8], sum_hex: usize, max_len: u64) -> Result<(&[u8], usize), DecodeError> {
    // <len>
    let max_digits = if sum_hex == RECORD_SUM_HEX {
        MAX_LEN_DIGITS
    } else {
        20
    };
    let digits = bytes
        .iter()
        .take(max_digits + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits > max_digits {
        return Err(DecodeError::Malformed("length field too long"));
    }
    if digits == bytes.len() {
        return Err(DecodeError::Incomplete);
    }
    if digits == 0 {
        return Err(DecodeError::Malformed("no length field"));
    }
    if bytes[0] == b'0' && digits > 1 {
        return Err(DecodeError::Malformed("length field has a leading zero"));
    }
    if bytes[digits] != b' ' {
        return Err(DecodeError::Malformed("no space after the length"));
    }
    let len: u64 = std::str::from_utf8(&bytes[..digits])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(DecodeError::Malformed("length field out of range"))?;
    if len > max_len {
        return Err(DecodeError::TooLong { len, max: max_len });
    }
    if len == 0 {
        return Err(DecodeError::Malformed("empty payload"));
    }
    // <sum>
    let sum_start = digits + 1;
    let sum_end = sum_start + sum_hex;
    let seen_sum = &bytes[sum_start..bytes.len().min(sum_end)];
    if !seen_sum
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(DecodeError::Malformed("checksum is not lowercase hex"));
    }
    if bytes.len() <= sum_end {
        return Err(DecodeError::Incomplete);
    }
    if bytes[sum_end] != b' ' {
        return Err(DecodeError::Malformed("no space after the checksum"));
    }
    // <payload>\n
    let payload_start = sum_end + 1;
    let len = len as usize;
    let payload_end = payload_start + len;
    if bytes.len() <= payload_end {
        if bytes[payload_start..].contains(&b'\n') {
            return Err(DecodeError::Malformed(
                "a newline inside the payload (its length is wrong)",
            ));
        }
        return Err(DecodeError::Incomplete);
    }
    if bytes[payload_end] != b'\n' {
        return Err(DecodeError::Malformed(
            "no newline where the payload ends (its length is wrong)",
        ));
    }
    let payload = &bytes[payload_start..payload_end];
    let digest = Sha256::digest(payload);
    let sum = &bytes[sum_start..sum_end];
    let matches = digest[..sum_hex / 2]
        .iter()
        .zip(sum.chunks_exact(2))
        .all(|(&b, hex)| hex[0] == HEX[(b >> 4) as usize] && hex[1] == HEX[(b & 15) as usize]);
    if !matches {
        return Err(DecodeError::Checksum);
    }
    Ok((payload, payload_end + 1))
}

#[cfg(test)]
pub(crate) mod tests {
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
            assert_eq!(bytes.last(), Some(&b'\n'));
            assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
            assert_eq!(decode_record(&bytes).unwrap(), record);
            let (again, used) = decode_entry(&bytes).unwrap();
            assert_eq!((again, used), (record, bytes.len()));
        }
    }

    #[test]
    fn entry_is_readable_text() {
        let record = Record {
            seq: 42,
            epoch: 1,
            event: Event::Started { at: 5 },
        };
        let text = String::from_utf8(encode_record(&record)).unwrap();
        let json = r#"{"seq":42,"epoch":1,"event":{"kind":"started","at":5}}"#;
        let sum: String = Sha256::digest(json.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(text, format!("{} {sum} {json}\n", json.len()));
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
        assert!(matches!(
            decode_entry(b"99999999 "),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_entry(b"2000000 0123456789abcdef {"),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(matches!(
            decode_entry(b"05 0123456789abcdef {}"),
            Err(DecodeError::Malformed(_))
        ));
        // A length that runs over a newline is corruption, not a torn tail.
        assert!(matches!(
            decode_entry(b"90 0123456789abcdef {}\n12 "),
            Err(DecodeError::Malformed(_))
        ));
        // A valid frame around a payload that is not a record.
        let json = b"{\"seq\":1}";
        let sum: String = Sha256::digest(json)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut frame = format!("{} {sum} ", json.len()).into_bytes();
        frame.extend_from_slice(json);
        frame.push(b'\n');
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
        assert_eq!(check_journal_header(b"floatd-journal 2\nrest"), Ok(17));
        assert_eq!(check_journal_header(b"floatd-journal 1\nrest"), Ok(17));
        assert_eq!(
            check_journal_header(b"floatd-journal 1"),
            Err(DecodeError::Incomplete)
        );
        assert_eq!(JOURNAL_HEADER.len(), 17);
        assert_eq!(SNAPSHOT_HEADER.len(), 18);
        assert_eq!(
            check_journal_header(b"floatd-jour"),
            Err(DecodeError::Incomplete)
        );
        assert_eq!(
            check_journal_header(b"floatd-journal 3\n"),
            Err(DecodeError::UnknownVersion {
                magic: "floatd-journal",
                found: "3".into()
            })
        );
        assert_eq!(
            check_journal_header(b"floatd-snapshot 2\n"),
            Err(DecodeError::NotThisFormat {
                expected: "floatd-journal"
            })
        );
        let body = &encode_snapshot(&snapshot(1, 0))[SNAPSHOT_HEADER.len()..];
        let mut v3 = b"floatd-snapshot 3\n".to_vec();
        v3.extend_from_slice(body);
        assert!(matches!(
            decode_snapshot(&v3),
            Err(DecodeError::UnknownVersion { .. })
        ));
        // Version 1 snapshots (written before roaming) still read.
        let mut v1 = SNAPSHOT_HEADER_V1.to_vec();
        v1.extend_from_slice(body);
        assert_eq!(decode_snapshot(&v1).unwrap(), snapshot(1, 0));
    }
}
