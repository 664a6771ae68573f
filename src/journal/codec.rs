//! Encoding of journal entries and snapshots: bytes only, no I/O.
//!
//! # Journal, format version 3 (versions 1 and 2 are read too)
//!
//! ```text
//! floatd-journal 3\n                                  file header (17 bytes)
//! 0xB3 <len: u32 LE> <sum: 8 bytes> <payload>        one entry per record
//! 0xB3 <len: u32 LE> <sum: 8 bytes> <payload>
//! ...
//! ```
//!
//! - `0xB3`: marks a binary entry (a byte no text entry of versions 1 and
//!   2 starts with: theirs start with an ASCII digit).
//! - `<len>`: the payload's length in bytes, 1 to [`MAX_RECORD_LEN`].
//! - `<sum>`: the first 8 bytes of the SHA-256 of the payload.
//! - `<payload>`: the [`Record`] in compact binary ([`super::binary`]):
//!   about a third of the JSON that versions 1 and 2 wrote, and no
//!   escaping, number formatting or field names to spend time on.
//!
//! The length says where an entry must end, so a reader tells a complete
//! entry (length and checksum agree) from a torn one (the file ends first)
//! or a corrupt one (anything else). The sequence number is inside the
//! payload, under the checksum.
//!
//! A journal written by version 1 or 2 holds text entries
//! (`<len> <sum> <json>\n`, [`super::legacy`]). Recovery rewrites its header
//! as version 3's (the same length) before new entries follow, so one file
//! may hold text entries followed by binary ones; a reader takes each entry
//! by its first byte. An older floatd then refuses the file at start
//! instead of cutting entries it cannot read.
//!
//! A record's entry stands alone: [`encode_record`] makes exactly the bytes
//! the journal file holds for it. A reader ignores bytes after the fields
//! it knows in a payload, so a later build may add fields to an event
//! within file format 3.
//!
//! Two versions, because two things can change apart: [`FILE_FORMAT`] is
//! how the files are encoded (3: binary); [`FORMAT_VERSION`] is what a
//! record and a snapshot hold (their event kinds and fields, 2 since
//! roams). The peer link carries records in its own frames and states
//! [`FORMAT_VERSION`] in its hello, so two servers whose files differ only
//! in encoding still replicate (a rolling upgrade from a format 2 build
//! works). A new event kind, or any change an older build would misread,
//! needs a new [`FORMAT_VERSION`] and a new [`FILE_FORMAT`].
//!
//! # Snapshot, format version 3 (versions 1 and 2 are read too)
//!
//! ```text
//! floatd-snapshot 3\n                                 file header (18 bytes)
//! 0xB3 <len: u64 LE> <sum: 32 bytes> <body>           one frame
//! ```
//!
//! The same framing as a journal entry, except that `<len>` has 8 bytes
//! and `<sum>` is the whole SHA-256 of the body. The body is the
//! [`Snapshot`] in compact binary. Nothing may follow the frame.

use super::{binary, legacy};
use crate::ledger::{Record, Snapshot};
use sha2::{Digest, Sha256};
use std::fmt;

/// The version of what records and snapshots hold: their event kinds and
/// fields, whatever the encoding. Version 2 added roams (a grant's `roam`,
/// the `roam_extended` and `roam_key` events, the `roam_return` and
/// `roam_end` reasons) and what a merge after a split records (the `adopt`
/// event, the `unconfirmed` reason, a snapshot's `returned`). The peer
/// link states it in its hello.
pub const FORMAT_VERSION: u32 = 2;

/// The version of the journal and snapshot files' encoding, in their
/// headers. Versions 1 and 2 framed JSON as text; version 3 writes binary
/// entries (same records as version 2).
pub const FILE_FORMAT: u32 = 3;

/// The first line of a journal file.
pub const JOURNAL_HEADER: &[u8] = b"floatd-journal 3\n";

/// The first line of a snapshot file.
pub const SNAPSHOT_HEADER: &[u8] = b"floatd-snapshot 3\n";

/// The headers of versions 1 and 2 (the same length as version 3's): their
/// files read as version 3. Recovery rewrites an old journal's header
/// before new records follow it, so a file never claims a version older
/// than its records.
pub const OLD_JOURNAL_HEADERS: [&[u8]; 2] = [b"floatd-journal 1\n", b"floatd-journal 2\n"];
const OLD_SNAPSHOT_HEADERS: [&[u8]; 2] = [b"floatd-snapshot 1\n", b"floatd-snapshot 2\n"];

const JOURNAL_MAGIC: &str = "floatd-journal";
const SNAPSHOT_MAGIC: &str = "floatd-snapshot";

/// The longest record payload accepted (a record is a few hundred bytes;
/// every string in it comes from a protocol line of at most 4 KiB).
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// The first byte of a binary entry or snapshot frame.
const BINARY_MARK: u8 = 0xB3;
/// Mark, length and checksum of a journal entry.
const ENTRY_HEADER_LEN: usize = 1 + 4 + RECORD_SUM_LEN;
/// Bytes of SHA-256 kept as an entry's checksum.
const RECORD_SUM_LEN: usize = 8;
/// Mark, length and checksum of a snapshot frame.
const SNAPSHOT_FRAME_HEADER_LEN: usize = 1 + 8 + 32;

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
                "{magic} format version {found:?} is not one this build reads (it reads 1 to {FILE_FORMAT})"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

// ----- records ---------------------------------------------------------

/// Encodes one record as one journal entry (see the module documentation).
pub fn encode_record(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    encode_record_into(record, &mut out);
    out
}

/// Appends one record's entry to `out` (no allocation beyond `out`'s growth).
pub fn encode_record_into(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; ENTRY_HEADER_LEN]);
    binary::put_record(out, record);
    let len = out.len() - start - ENTRY_HEADER_LEN;
    let digest = Sha256::digest(&out[start + ENTRY_HEADER_LEN..]);
    let header = &mut out[start..start + ENTRY_HEADER_LEN];
    header[0] = BINARY_MARK;
    header[1..5].copy_from_slice(&(len as u32).to_le_bytes());
    header[5..].copy_from_slice(&digest[..RECORD_SUM_LEN]);
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

/// Decodes the entry at the start of `bytes` (binary, or text of versions
/// 1 and 2), returning the record and the number of bytes it took.
/// [`DecodeError::Incomplete`] means the bytes seen so far are a valid
/// beginning of an entry: at the end of a file it marks a torn write; on a
/// stream, wait for more.
pub fn decode_entry(bytes: &[u8]) -> Result<(Record, usize), DecodeError> {
    match bytes.first() {
        Some(&BINARY_MARK) => {
            let (payload, used) = split_entry(bytes)?;
            let record = binary::read_record(payload).map_err(DecodeError::Payload)?;
            Ok((record, used))
        }
        Some(b) if b.is_ascii_digit() => legacy::decode_entry(bytes, MAX_RECORD_LEN as u64),
        Some(_) => Err(DecodeError::Malformed("no entry starts with this byte")),
        None => Err(DecodeError::Incomplete),
    }
}

/// The length of the entry at the start of `bytes`, its framing and
/// checksum checked but its payload not decoded.
pub fn entry_len(bytes: &[u8]) -> Result<usize, DecodeError> {
    match bytes.first() {
        Some(&BINARY_MARK) => split_entry(bytes).map(|(_, used)| used),
        Some(b) if b.is_ascii_digit() => legacy::entry_len(bytes, MAX_RECORD_LEN as u64),
        Some(_) => Err(DecodeError::Malformed("no entry starts with this byte")),
        None => Err(DecodeError::Incomplete),
    }
}

/// The last entry of a journal's entries (the bytes after its header),
/// checking the framing of every entry on the way; `None` without entries.
pub fn last_record(mut entries: &[u8]) -> Result<Option<Record>, DecodeError> {
    let mut last = None;
    while !entries.is_empty() {
        let used = entry_len(entries)?;
        last = Some(&entries[..used]);
        entries = &entries[used..];
    }
    last.map(decode_record).transpose()
}

/// About how many entries `bytes` (a cut journal tail) held: each that
/// still frames, and one for the rest.
pub fn entries_estimate(mut bytes: &[u8]) -> u64 {
    let mut n = 0;
    while !bytes.is_empty() {
        n += 1;
        let next = match bytes.first() {
            Some(&BINARY_MARK) if bytes.len() >= ENTRY_HEADER_LEN => {
                let len = u32::from_le_bytes(bytes[1..5].try_into().expect("4 bytes")) as usize;
                ENTRY_HEADER_LEN + len
            }
            Some(b) if b.is_ascii_digit() => match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => end + 1,
                None => bytes.len(),
            },
            _ => bytes.len(),
        };
        bytes = &bytes[next.min(bytes.len())..];
    }
    n
}

/// Splits one binary entry off the front of `bytes`: its payload and size.
fn split_entry(bytes: &[u8]) -> Result<(&[u8], usize), DecodeError> {
    if bytes.len() < ENTRY_HEADER_LEN {
        return Err(DecodeError::Incomplete);
    }
    let len = u32::from_le_bytes(bytes[1..5].try_into().expect("4 bytes")) as u64;
    if len > MAX_RECORD_LEN as u64 {
        return Err(DecodeError::TooLong {
            len,
            max: MAX_RECORD_LEN as u64,
        });
    }
    if len == 0 {
        return Err(DecodeError::Malformed("empty payload"));
    }
    let end = ENTRY_HEADER_LEN + len as usize;
    if bytes.len() < end {
        return Err(DecodeError::Incomplete);
    }
    let payload = &bytes[ENTRY_HEADER_LEN..end];
    if Sha256::digest(payload)[..RECORD_SUM_LEN] != bytes[5..ENTRY_HEADER_LEN] {
        return Err(DecodeError::Checksum);
    }
    Ok((payload, end))
}

// ----- snapshots -------------------------------------------------------

/// Encodes a snapshot as a whole snapshot file (header included).
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let header = SNAPSHOT_HEADER.len() + SNAPSHOT_FRAME_HEADER_LEN;
    let mut out = Vec::with_capacity(header + 64 + snapshot.seats.len() * 160);
    out.extend_from_slice(SNAPSHOT_HEADER);
    out.extend_from_slice(&[0; SNAPSHOT_FRAME_HEADER_LEN]);
    binary::put_snapshot(&mut out, snapshot);
    let len = (out.len() - header) as u64;
    let digest = Sha256::digest(&out[header..]);
    let frame = &mut out[SNAPSHOT_HEADER.len()..header];
    frame[0] = BINARY_MARK;
    frame[1..9].copy_from_slice(&len.to_le_bytes());
    frame[9..].copy_from_slice(&digest);
    out
}

/// Decodes a whole snapshot file. Every failure is an error: a snapshot is
/// never partly trusted.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, DecodeError> {
    let read = [
        SNAPSHOT_HEADER,
        OLD_SNAPSHOT_HEADERS[0],
        OLD_SNAPSHOT_HEADERS[1],
    ];
    let start = check_header(bytes, SNAPSHOT_MAGIC, &read)?;
    let rest = &bytes[start..];
    if !bytes.starts_with(SNAPSHOT_HEADER) {
        return legacy::decode_snapshot(rest);
    }
    if rest.len() < SNAPSHOT_FRAME_HEADER_LEN {
        return Err(DecodeError::Incomplete);
    }
    if rest[0] != BINARY_MARK {
        return Err(DecodeError::Malformed("no snapshot frame after the header"));
    }
    let len = u64::from_le_bytes(rest[1..9].try_into().expect("8 bytes"));
    let body = &rest[SNAPSHOT_FRAME_HEADER_LEN..];
    if (body.len() as u64) < len {
        return Err(DecodeError::Incomplete);
    }
    if body.len() as u64 != len {
        return Err(DecodeError::Malformed("bytes follow the snapshot"));
    }
    if Sha256::digest(body)[..] != rest[9..SNAPSHOT_FRAME_HEADER_LEN] {
        return Err(DecodeError::Checksum);
    }
    binary::read_snapshot(body).map_err(DecodeError::Payload)
}

// ----- headers ---------------------------------------------------------

/// Checks a journal file's header, returning its length.
pub fn check_journal_header(bytes: &[u8]) -> Result<usize, DecodeError> {
    let read = [
        JOURNAL_HEADER,
        OLD_JOURNAL_HEADERS[0],
        OLD_JOURNAL_HEADERS[1],
    ];
    check_header(bytes, JOURNAL_MAGIC, &read)
}

/// `Ok(header length)` for one of the headers read (this version's or an
/// older one); `Incomplete` for a proper prefix of one (a torn creation);
/// `UnknownVersion` for `<magic> <other>`; `NotThisFormat` for anything else.
fn check_header(
    bytes: &[u8],
    magic: &'static str,
    read: &[&'static [u8]],
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

#[cfg(test)]
pub(crate) mod tests;
