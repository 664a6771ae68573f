//! The payload of a format 3 journal entry and snapshot: a record or a
//! snapshot as compact bytes. No framing (see [`super::codec`]), no I/O.
//!
//! Every value is written in a fixed order with no field names:
//!
//! - unsigned numbers as LEB128 varints (7 bits a byte, low bits first);
//! - strings as a varint byte length and UTF-8 bytes;
//! - an optional value as a byte `0` (absent) or `1` and the value;
//! - a version as its text (`2.0`), an expiry as `0` (permanent) or `1`
//!   and days since 1970-01-01, a share as `0` none, `1` user, `2` host,
//!   an error code as its stable text, a return reason as one byte
//!   ([`reason_byte`]).
//!
//! A record is its sequence number, epoch, one kind byte ([`Kind`]) and
//! the event's fields. A reader ignores bytes after the fields it knows, so
//! a later build may append fields to an event within format 3; a new event
//! kind needs a new format version.

use crate::civil::Date;
use crate::codes::Code;
use crate::ledger::{
    Denial, Event, Extension, Grant, Name, Reason, Record, Return, Returned, Roam, RoamKey,
    SeatSnapshot, Snapshot,
};
use crate::licence::{Expiry, PoolKey, Share, Version};
use std::sync::Arc;

/// The kind byte of each event. Stable: written to disk.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Kind {
    Grant = 1,
    Adopt = 2,
    Release = 3,
    Denied = 4,
    RoamExtended = 5,
    RoamKey = 6,
    Reread = 7,
    Started = 8,
    Stopped = 9,
    Activated = 10,
}

/// The byte of each return reason. Stable: written to disk.
fn reason_byte(reason: Reason) -> u8 {
    match reason {
        Reason::Checkin => 1,
        Reason::Expired => 2,
        Reason::Removed => 3,
        Reason::LicenceGone => 4,
        Reason::Shutdown => 5,
        Reason::Unconfirmed => 6,
        Reason::RoamReturn => 7,
        Reason::RoamEnd => 8,
    }
}

fn reason_of(byte: u8) -> Option<Reason> {
    Some(match byte {
        1 => Reason::Checkin,
        2 => Reason::Expired,
        3 => Reason::Removed,
        4 => Reason::LicenceGone,
        5 => Reason::Shutdown,
        6 => Reason::Unconfirmed,
        7 => Reason::RoamReturn,
        8 => Reason::RoamEnd,
        _ => return None,
    })
}

/// The last day a date may name (9999-12-31), as days since 1970.
const MAX_DAYS: u64 = 2_932_896;

// ----- writing ---------------------------------------------------------

/// Appends one record's payload to `out`.
pub fn put_record(out: &mut Vec<u8>, record: &Record) {
    put_u64(out, record.seq);
    put_u64(out, record.epoch);
    match &record.event {
        Event::Grant(g) => {
            out.push(Kind::Grant as u8);
            put_grant(out, g);
        }
        Event::Adopt(s) => {
            out.push(Kind::Adopt as u8);
            put_seat(out, s);
        }
        Event::Release(r) => {
            out.push(Kind::Release as u8);
            put_str(out, &r.handle);
            out.push(reason_byte(r.reason));
            put_u64(out, r.at);
            put_str(out, &r.feature);
            put_version(out, &r.version);
            put_u64(out, r.count.into());
            put_str(out, &r.user);
            put_str(out, &r.host);
            put_u64(out, r.granted_at);
        }
        Event::Denied(d) => {
            out.push(Kind::Denied as u8);
            put_str(out, &d.feature);
            put_version(out, &d.version);
            put_u64(out, d.count.into());
            put_str(out, &d.user);
            put_str(out, &d.host);
            put_str(out, d.code.as_str());
            put_opt(out, d.rule.as_deref(), put_str);
            put_u64(out, d.at);
            put_opt(out, d.roam_days, |o, n| put_u64(o, n.into()));
        }
        Event::RoamExtended(x) => {
            out.push(Kind::RoamExtended as u8);
            put_str(out, &x.handle);
            put_u64(out, x.days.into());
            put_u64(out, x.until);
            put_u64(out, x.at);
            put_str(out, &x.feature);
            put_version(out, &x.version);
            put_u64(out, x.count.into());
            put_str(out, &x.user);
            put_str(out, &x.host);
        }
        Event::RoamKey(k) => {
            out.push(Kind::RoamKey as u8);
            put_roam_key(out, k);
        }
        Event::Reread { pools, at } => {
            out.push(Kind::Reread as u8);
            put_u64(out, *pools as u64);
            put_u64(out, *at);
        }
        Event::Started { at } => {
            out.push(Kind::Started as u8);
            put_u64(out, *at);
        }
        Event::Stopped { at } => {
            out.push(Kind::Stopped as u8);
            put_u64(out, *at);
        }
        Event::Activated { server, state, at } => {
            out.push(Kind::Activated as u8);
            put_str(out, server);
            put_str(out, state);
            put_u64(out, *at);
        }
    }
}

/// Appends a snapshot's body to `out`.
pub fn put_snapshot(out: &mut Vec<u8>, snapshot: &Snapshot) {
    put_u64(out, snapshot.seq);
    put_u64(out, snapshot.epoch);
    put_u64(out, snapshot.seats.len() as u64);
    for seat in &snapshot.seats {
        put_seat(out, seat);
    }
    put_u64(out, snapshot.returned.len() as u64);
    for r in &snapshot.returned {
        put_str(out, &r.handle);
        out.push(reason_byte(r.reason));
        put_u64(out, r.left_ms);
    }
    put_opt(out, snapshot.roam_key.as_ref(), put_roam_key);
}

fn put_grant(out: &mut Vec<u8>, g: &Grant) {
    put_str(out, &g.handle);
    put_str(out, &g.feature);
    put_version(out, &g.version);
    put_str(out, &g.pool.feature);
    put_version(out, &g.pool.version);
    match g.pool.expiry {
        Expiry::Permanent => out.push(0),
        Expiry::Date(d) => {
            out.push(1);
            put_u64(out, d.days_since_epoch().max(0) as u64);
        }
    }
    out.push(match g.pool.share {
        Share::None => 0,
        Share::User => 1,
        Share::Host => 2,
    });
    put_u64(out, g.count.into());
    put_str(out, &g.user);
    put_str(out, &g.host);
    put_str(out, &g.client);
    put_u64(out, g.lease_ms);
    put_u64(out, g.min_hold_ms);
    put_u64(out, g.at);
    put_opt(out, g.roam.as_deref(), |o, r| {
        put_str(o, &r.hostid);
        put_u64(o, r.days.into());
        put_u64(o, r.from);
        put_u64(o, r.until);
    });
}

fn put_seat(out: &mut Vec<u8>, s: &SeatSnapshot) {
    put_grant(out, &s.grant);
    put_u64(out, s.lease_left_ms);
    put_u64(out, s.hold_left_ms);
    out.push(u8::from(s.checked_in));
}

fn put_roam_key(out: &mut Vec<u8>, k: &RoamKey) {
    put_str(out, &k.key_id);
    put_str(out, &k.wrapped);
    put_u64(out, k.at);
}

fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_version(out: &mut Vec<u8>, v: &Version) {
    use std::io::Write;
    // At most 8 parts of 10 digits: the text fits on the stack.
    let mut text = [0u8; 96];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    let _ = write!(cursor, "{v}");
    let len = cursor.position() as usize;
    put_u64(out, len as u64);
    out.extend_from_slice(&text[..len]);
}

fn put_opt<T>(out: &mut Vec<u8>, value: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put(out, v);
        }
    }
}

// ----- reading ---------------------------------------------------------

/// Bytes being read, and where.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Read<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Read<u8> {
        let b = *self.bytes.get(self.at).ok_or("the payload ends early")?;
        self.at += 1;
        Ok(b)
    }

    fn u64(&mut self) -> Read<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err("a number overflows 64 bits".into());
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("a number overflows 64 bits".into())
    }

    fn u32(&mut self) -> Read<u32> {
        u32::try_from(self.u64()?).map_err(|_| "a count overflows 32 bits".to_string())
    }

    fn str(&mut self) -> Read<&'a str> {
        let len = usize::try_from(self.u64()?).map_err(|_| "a string is too long")?;
        let end = self
            .at
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("a string runs past the payload")?;
        let s = std::str::from_utf8(&self.bytes[self.at..end])
            .map_err(|_| "a string is not UTF-8".to_string())?;
        self.at = end;
        Ok(s)
    }

    fn name(&mut self) -> Read<Name> {
        self.str().map(Name::from)
    }

    fn string(&mut self) -> Read<String> {
        self.str().map(str::to_string)
    }

    fn version(&mut self) -> Read<Version> {
        Version::parse(self.str()?)
    }

    fn flag(&mut self) -> Read<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("a flag byte is {b}")),
        }
    }

    fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Read<T>) -> Read<Option<T>> {
        if self.flag()? {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }

    fn reason(&mut self) -> Read<Reason> {
        let b = self.byte()?;
        reason_of(b).ok_or_else(|| format!("unknown return reason {b}"))
    }

    fn grant(&mut self) -> Read<Grant> {
        Ok(Grant {
            handle: self.name()?,
            feature: self.name()?,
            version: self.version()?,
            pool: PoolKey {
                feature: self.name()?,
                version: self.version()?,
                expiry: match self.byte()? {
                    0 => Expiry::Permanent,
                    1 => match self.u64()? {
                        days if days <= MAX_DAYS => Expiry::Date(Date::from_days(days as i64)),
                        _ => return Err("an expiry date past 9999".into()),
                    },
                    b => return Err(format!("unknown expiry tag {b}")),
                },
                share: match self.byte()? {
                    0 => Share::None,
                    1 => Share::User,
                    2 => Share::Host,
                    b => return Err(format!("unknown share {b}")),
                },
            },
            count: self.u32()?,
            user: self.name()?,
            host: self.name()?,
            client: self.name()?,
            lease_ms: self.u64()?,
            min_hold_ms: self.u64()?,
            at: self.u64()?,
            roam: self.opt(|r| {
                Ok(Box::new(Roam {
                    hostid: r.string()?,
                    days: r.u32()?,
                    from: r.u64()?,
                    until: r.u64()?,
                }))
            })?,
        })
    }

    fn seat(&mut self) -> Read<SeatSnapshot> {
        Ok(SeatSnapshot {
            grant: Arc::new(self.grant()?),
            lease_left_ms: self.u64()?,
            hold_left_ms: self.u64()?,
            checked_in: self.flag()?,
        })
    }

    fn roam_key(&mut self) -> Read<RoamKey> {
        Ok(RoamKey {
            key_id: self.string()?,
            wrapped: self.string()?,
            at: self.u64()?,
        })
    }

    fn event(&mut self) -> Read<Event> {
        let kind = self.byte()?;
        Ok(match kind {
            k if k == Kind::Grant as u8 => Event::Grant(Arc::new(self.grant()?)),
            k if k == Kind::Adopt as u8 => Event::Adopt(self.seat()?),
            k if k == Kind::Release as u8 => Event::Release(Return {
                handle: self.name()?,
                reason: self.reason()?,
                at: self.u64()?,
                feature: self.name()?,
                version: self.version()?,
                count: self.u32()?,
                user: self.name()?,
                host: self.name()?,
                granted_at: self.u64()?,
            }),
            k if k == Kind::Denied as u8 => Event::Denied(Denial {
                feature: self.name()?,
                version: self.version()?,
                count: self.u32()?,
                user: self.name()?,
                host: self.name()?,
                code: {
                    let text = self.str()?;
                    Code::parse(text).ok_or_else(|| format!("unknown code {text:?}"))?
                },
                rule: self.opt(Self::string)?,
                at: self.u64()?,
                roam_days: self.opt(Self::u32)?,
            }),
            k if k == Kind::RoamExtended as u8 => Event::RoamExtended(Extension {
                handle: self.name()?,
                days: self.u32()?,
                until: self.u64()?,
                at: self.u64()?,
                feature: self.name()?,
                version: self.version()?,
                count: self.u32()?,
                user: self.name()?,
                host: self.name()?,
            }),
            k if k == Kind::RoamKey as u8 => Event::RoamKey(self.roam_key()?),
            k if k == Kind::Reread as u8 => Event::Reread {
                pools: usize::try_from(self.u64()?).map_err(|_| "too many pools")?,
                at: self.u64()?,
            },
            k if k == Kind::Started as u8 => Event::Started { at: self.u64()? },
            k if k == Kind::Stopped as u8 => Event::Stopped { at: self.u64()? },
            k if k == Kind::Activated as u8 => Event::Activated {
                server: self.string()?,
                state: self.string()?,
                at: self.u64()?,
            },
            other => return Err(format!("unknown event kind {other}")),
        })
    }
}

/// Reads one record's payload (bytes after its fields are ignored).
pub fn read_record(bytes: &[u8]) -> Result<Record, String> {
    let mut r = Reader { bytes, at: 0 };
    Ok(Record {
        seq: r.u64()?,
        epoch: r.u64()?,
        event: r.event()?,
    })
}

/// Reads a snapshot's body (bytes after its fields are ignored).
pub fn read_snapshot(bytes: &[u8]) -> Result<Snapshot, String> {
    let mut r = Reader { bytes, at: 0 };
    let seq = r.u64()?;
    let epoch = r.u64()?;
    // Each seat and return takes more than one byte: a count larger than
    // the bytes left is corrupt, and must not reserve memory.
    let most = |r: &Reader| (r.bytes.len() - r.at) as u64;
    let seats = r.u64()?;
    if seats > most(&r) {
        return Err("more seats than bytes".into());
    }
    let seats = (0..seats).map(|_| r.seat()).collect::<Read<Vec<_>>>()?;
    let returned = r.u64()?;
    if returned > most(&r) {
        return Err("more returns than bytes".into());
    }
    let returned = (0..returned)
        .map(|_| {
            Ok(Returned {
                handle: r.name()?,
                reason: r.reason()?,
                left_ms: r.u64()?,
            })
        })
        .collect::<Read<Vec<_>>>()?;
    let roam_key = r.opt(Reader::roam_key)?;
    Ok(Snapshot {
        seq,
        epoch,
        seats,
        returned,
        roam_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::codec::tests::{every_event, snapshot};

    #[test]
    fn every_event_kind_round_trips() {
        for (i, event) in every_event().into_iter().enumerate() {
            let record = Record {
                seq: 1 << (i * 3),
                epoch: i as u64,
                event,
            };
            let mut bytes = Vec::new();
            put_record(&mut bytes, &record);
            assert_eq!(read_record(&bytes).unwrap(), record);
            // Fields a later build appends are ignored.
            bytes.extend_from_slice(&[1, 2, 3]);
            assert_eq!(read_record(&bytes).unwrap(), record);
        }
    }

    #[test]
    fn snapshots_round_trip() {
        for seats in [0, 1, 7] {
            let snap = snapshot(99, seats);
            let mut bytes = Vec::new();
            put_snapshot(&mut bytes, &snap);
            assert_eq!(read_snapshot(&bytes).unwrap(), snap);
        }
    }

    #[test]
    fn every_cut_short_payload_is_an_error() {
        for event in every_event() {
            let mut bytes = Vec::new();
            put_record(
                &mut bytes,
                &Record {
                    seq: 300,
                    epoch: 2,
                    event,
                },
            );
            for cut in 0..bytes.len() {
                assert!(read_record(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn varints_cover_every_width() {
        for n in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut bytes = Vec::new();
            put_u64(&mut bytes, n);
            let mut r = Reader {
                bytes: &bytes,
                at: 0,
            };
            assert_eq!(r.u64().unwrap(), n);
            assert_eq!(r.at, bytes.len());
        }
        let mut r = Reader {
            bytes: &[0xff; 11],
            at: 0,
        };
        assert!(r.u64().is_err(), "too long");
    }
}
