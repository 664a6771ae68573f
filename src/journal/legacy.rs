//! Reading journal entries and snapshots of format versions 1 and 2, which
//! framed JSON as text. This build writes format 3 ([`super::codec`]), and
//! reads these so a state directory of an older floatd carries on.
//!
//! ```text
//! <len> <sum> <payload>\n          a journal entry: <sum> is the first 8 bytes
//!                                  of the payload's SHA-256 as 16 hex digits
//! <len> <sum> <body>\n             a snapshot: <sum> is the whole SHA-256
//! ```
//!
//! `<len>` is the payload's length in ASCII decimal. JSON escapes control
//! characters, so a payload never holds a newline and every entry is one
//! line.

use super::codec::DecodeError;
use crate::ledger::{Record, Snapshot};
use sha2::{Digest, Sha256};

/// Hex digits of an entry's checksum (8 bytes of SHA-256).
pub const RECORD_SUM_HEX: usize = 16;
/// Hex digits of a snapshot's checksum (all of SHA-256).
pub const SNAPSHOT_SUM_HEX: usize = 64;
/// Digits of `<len>` in a journal entry (enough for 1 MiB).
const MAX_LEN_DIGITS: usize = 7;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Decodes the text entry at the start of `bytes`, with the bytes it took.
pub fn decode_entry(bytes: &[u8], max_len: u64) -> Result<(Record, usize), DecodeError> {
    let (payload, used) = split_frame(bytes, RECORD_SUM_HEX, max_len)?;
    let record =
        serde_json::from_slice(payload).map_err(|e| DecodeError::Payload(e.to_string()))?;
    Ok((record, used))
}

/// The length of the text entry at the start of `bytes`, checksum checked.
pub fn entry_len(bytes: &[u8], max_len: u64) -> Result<usize, DecodeError> {
    split_frame(bytes, RECORD_SUM_HEX, max_len).map(|(_, used)| used)
}

/// Decodes a snapshot body framed as text (after the file's header).
pub fn decode_snapshot(rest: &[u8]) -> Result<Snapshot, DecodeError> {
    let (body, used) = split_frame(rest, SNAPSHOT_SUM_HEX, rest.len() as u64)?;
    if used != rest.len() {
        return Err(DecodeError::Malformed("bytes follow the snapshot"));
    }
    serde_json::from_slice(body).map_err(|e| DecodeError::Payload(e.to_string()))
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

/// The text frame of `json`, as formats 1 and 2 wrote it: for tests of
/// reading old files.
#[cfg(test)]
pub fn frame(json: &[u8], sum_hex: usize) -> Vec<u8> {
    let sum: String = Sha256::digest(json)[..sum_hex / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut out = format!("{} {sum} ", json.len()).into_bytes();
    out.extend_from_slice(json);
    out.push(b'\n');
    out
}

/// A record as a format 2 journal entry (for tests of reading old files).
#[cfg(test)]
pub fn encode_record(record: &Record) -> Vec<u8> {
    frame(&serde_json::to_vec(record).unwrap(), RECORD_SUM_HEX)
}

/// A snapshot as a whole format 2 snapshot file.
#[cfg(test)]
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = b"floatd-snapshot 2\n".to_vec();
    out.extend_from_slice(&frame(
        &serde_json::to_vec(snapshot).unwrap(),
        SNAPSHOT_SUM_HEX,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::codec::tests::{records, snapshot};
    use crate::journal::codec::{decode_entry as decode_any, decode_snapshot as decode_file};

    #[test]
    fn format_2_entries_and_snapshots_still_read() {
        for record in records(1, 30) {
            let bytes = encode_record(&record);
            assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(decode_any(&bytes).unwrap(), (record, bytes.len()));
        }
        for seats in [0, 3] {
            let snap = snapshot(8, seats);
            assert_eq!(decode_file(&encode_snapshot(&snap)).unwrap(), snap);
            let mut v1 = encode_snapshot(&snap);
            v1[16] = b'1';
            assert_eq!(decode_file(&v1).unwrap(), snap, "format 1");
        }
    }

    #[test]
    fn every_proper_prefix_of_a_text_entry_is_incomplete() {
        let bytes = encode_record(&records(1, 2)[1]);
        for cut in 1..bytes.len() {
            assert_eq!(
                decode_any(&bytes[..cut]).unwrap_err(),
                DecodeError::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_flipped_byte_of_a_text_entry_is_detected() {
        let bytes = encode_record(&records(1, 2)[1]);
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x20, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                let whole = decode_any(&bad).map(|(_, used)| used == bad.len());
                assert!(whole != Ok(true), "byte {i} bit {bit:#x}");
            }
        }
    }

    #[test]
    fn bad_text_frames_are_named() {
        assert!(matches!(
            decode_any(b"99999999 "),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_any(b"2000000 0123456789abcdef {"),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(matches!(
            decode_any(b"05 0123456789abcdef {}"),
            Err(DecodeError::Malformed(_))
        ));
        // A length that runs over a newline is corruption, not a torn tail.
        assert!(matches!(
            decode_any(b"90 0123456789abcdef {}\n12 "),
            Err(DecodeError::Malformed(_))
        ));
        // A valid frame around a payload that is not a record.
        let frame = frame(b"{\"seq\":1}", RECORD_SUM_HEX);
        assert!(matches!(decode_any(&frame), Err(DecodeError::Payload(_))));
    }
}
