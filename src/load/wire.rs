//! Allocation-free reading of reply lines and writing of request lines.
//!
//! The load generator must cost the server's replies as little as it can,
//! so it does not build a [`crate::protocol::Reply`] (which allocates) per
//! reply: it classifies a line by its first bytes and picks the few fields
//! it needs (`handle=`, `version=`, `active=`, ...) straight out of the
//! received bytes. The shapes are those of docs/PROTOCOL.md.

use std::io::Write;

/// What a reply line is, from its first word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ok,
    Err,
    /// A `*` line, pushed outside the request order.
    Push,
    Greeting,
    Other,
}

pub fn kind(line: &[u8]) -> Kind {
    if line == b"OK" || line.starts_with(b"OK ") {
        Kind::Ok
    } else if line.starts_with(b"ERR") {
        Kind::Err
    } else if line.starts_with(b"* ") || line == b"*" {
        Kind::Push
    } else if line.starts_with(b"FLOATD") {
        Kind::Greeting
    } else {
        Kind::Other
    }
}

/// Iterates the space-separated tokens of a line, keeping a quoted value
/// (`msg="a b"`, with `\"` escapes) in one token.
pub struct Tokens<'a> {
    rest: &'a [u8],
}

pub fn tokens(line: &[u8]) -> Tokens<'_> {
    Tokens { rest: line }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&b| b != b' ' && b != b'\t')?;
        let rest = &self.rest[start..];
        let mut in_quotes = false;
        let mut escaped = false;
        let mut end = rest.len();
        for (i, &b) in rest.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if in_quotes && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = !in_quotes;
            } else if !in_quotes && (b == b' ' || b == b'\t') {
                end = i;
                break;
            }
        }
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

/// The raw value of `key=` (quotes kept if it was quoted; the fields this
/// crate reads never are).
pub fn field<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    tokens(line).skip(1).find_map(|t| {
        (t.len() > key.len() && t.starts_with(key) && t[key.len()] == b'=')
            .then(|| &t[key.len() + 1..])
    })
}

/// The field as text, when it is UTF-8.
pub fn field_str<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a str> {
    field(line, key).and_then(|v| std::str::from_utf8(v).ok())
}

/// The field as a number.
pub fn field_u64(line: &[u8], key: &[u8]) -> Option<u64> {
    field_str(line, key).and_then(|v| v.parse().ok())
}

/// The code of an `ERR CODE ...` line (or a push's first argument).
pub fn second_word(line: &[u8]) -> &[u8] {
    tokens(line).nth(1).unwrap_or(b"")
}

/// Appends `WORD arg` and a newline.
pub fn put(out: &mut Vec<u8>, word: &[u8], arg: &[u8]) {
    out.extend_from_slice(word);
    out.push(b' ');
    out.extend_from_slice(arg);
    out.push(b'\n');
}

/// Appends `CHECKOUT feature [version=V]`.
pub fn put_checkout(out: &mut Vec<u8>, feature: &str, version: Option<&str>) {
    out.extend_from_slice(b"CHECKOUT ");
    out.extend_from_slice(feature.as_bytes());
    if let Some(v) = version {
        out.extend_from_slice(b" version=");
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b'\n');
}

/// Appends `RECLAIM handle feature=F version=V count=1`.
pub fn put_reclaim(out: &mut Vec<u8>, handle: &str, feature: &str, version: &str) {
    let _ = writeln!(
        out,
        "RECLAIM {handle} feature={feature} version={version} count=1"
    );
}

/// Appends the HELLO line of client `client` as `user` on `host`.
pub fn put_hello(out: &mut Vec<u8>, client: &str, user: &str, host: &str) {
    let _ = writeln!(out, "HELLO proto=1 client={client} user={user} host={host}");
}

/// Splits the complete lines off the front of `buf`; calls `each` with
/// every line (without `\r\n`) and returns the bytes consumed.
pub fn for_each_line(buf: &[u8], mut each: impl FnMut(&[u8]) -> bool) -> usize {
    let mut start = 0;
    while let Some(i) = memchr(b'\n', &buf[start..]) {
        let mut line = &buf[start..start + i];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        start += i + 1;
        if !each(line) {
            break;
        }
    }
    start
}

/// Position of `needle` in `hay` (the std slice search; a separate
/// function so a faster one could drop in).
#[inline]
pub fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_and_reads_fields() {
        let ok = b"OK handle=abc.def feature=cad version=2.0 count=1 pool=2.0 expires=permanent lease_ms=60000";
        assert_eq!(kind(ok), Kind::Ok);
        assert_eq!(field(ok, b"handle"), Some(&b"abc.def"[..]));
        assert_eq!(field_u64(ok, b"lease_ms"), Some(60000));
        assert_eq!(field(ok, b"hand"), None);
        let err = br#"ERR STANDBY msg="ask active=elsewhere \"x\"" active=10.0.0.1:27000"#;
        assert_eq!(kind(err), Kind::Err);
        assert_eq!(second_word(err), b"STANDBY");
        assert_eq!(field_str(err, b"active"), Some("10.0.0.1:27000"));
        assert_eq!(kind(b"* MOVED active=h:1"), Kind::Push);
        assert_eq!(kind(b"FLOATD proto=1 role=backup"), Kind::Greeting);
        assert_eq!(kind(b"OK"), Kind::Ok);
        assert_eq!(kind(b"OKAY"), Kind::Other);
    }

    #[test]
    fn splits_lines() {
        let mut got = Vec::new();
        let used = for_each_line(b"a\r\nbb\nc", |l| {
            got.push(l.to_vec());
            true
        });
        assert_eq!(got, vec![b"a".to_vec(), b"bb".to_vec()]);
        assert_eq!(used, 6);
    }
}
