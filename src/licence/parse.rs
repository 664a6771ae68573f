//! The licence file format: one record a line, `#` comments, `key=value`
//! fields. Two layers: `lex_line` turns a line into a raw record (record
//! type, name, fields with their positions); the typed records
//! ([`ServerLine`], [`FeatureLine`]) check the keys they know. Every error
//! names file, line and column; nothing here panics on any input.
//!
//! A bad FEATURE line (or an unknown record, or garbage) is reported and
//! skipped. A bad SERVER or FAILOVER line, or a file without exactly one
//! SERVER line and at most one FAILOVER line, makes the whole file unusable,
//! because every signature in it covers those lines' host ids.

use super::hostid::HostId;
use super::model::{Count, Expiry, Share, Version};
use super::signature::SigField;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

/// Longest line read, in bytes (without the line break).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Largest licence file read, in bytes.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Errors kept per file; a file of garbage reports this many and a count.
pub const MAX_ERRORS_PER_FILE: usize = 100;

/// Where in a file: line and column, both counted from 1; the column counts
/// characters, as editors do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A problem in a licence file. Displays as `file:line:col: message`, or
/// `file: message` for a problem of the whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub file: String,
    pub at: Option<Position>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(p) => write!(f, "{}:{}:{}: {}", self.file, p.line, p.column, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// The record types, the first word of a line (any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Server,
    Failover,
    Feature,
}

impl RecordKind {
    pub fn keyword(self) -> &'static str {
        match self {
            RecordKind::Server => "SERVER",
            RecordKind::Failover => "FAILOVER",
            RecordKind::Feature => "FEATURE",
        }
    }

    fn from_word(word: &[u8]) -> Option<RecordKind> {
        [
            RecordKind::Server,
            RecordKind::Failover,
            RecordKind::Feature,
        ]
        .into_iter()
        .find(|kind| word.eq_ignore_ascii_case(kind.keyword().as_bytes()))
    }
}

/// One `key=value` field as written, value unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub key: String,
    pub value: String,
}

/// A SERVER or FAILOVER line: the host that serves the file. Only the
/// host id is signed; the name and port are the customer's to edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLine {
    pub name: String,
    pub hostid: HostId,
    pub port: Option<u16>,
}

/// A FEATURE line, its known keys checked and typed. `fields` keeps every
/// field in file order (known, unknown, `_` and `sig`), for the canonical
/// form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureLine {
    pub name: String,
    pub version: Version,
    pub count: Count,
    pub expiry: Expiry,
    pub share: Share,
    /// `min_checkout=` seconds, 0 when absent.
    pub min_checkout_secs: u32,
    /// `roam=` days: the longest roam the vendor allows for these seats;
    /// `None` (absent) means they may not roam.
    pub roam_days: Option<u32>,
    pub sig: Option<SigField>,
    pub fields: Vec<Field>,
    /// Line number in its file, from 1.
    pub line: usize,
}

/// A licence file that can be used: exactly one SERVER line, at most one
/// FAILOVER line, and the FEATURE lines that parsed. `errors` holds the
/// lines that were skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenceFile {
    pub name: String,
    pub server: ServerLine,
    pub failover: Option<ServerLine>,
    pub features: Vec<FeatureLine>,
    pub errors: Vec<ParseError>,
}

/// Parses a whole file. `Err` when the file is unusable: it then holds every
/// error, the ones that make it unusable included.
pub fn parse_licence(name: &str, bytes: &[u8]) -> Result<LicenceFile, Vec<ParseError>> {
    parse_licence_with(name, bytes, ExistingSig::Check)
}

/// What to do with a FEATURE line's `sig=` value: a server checks its
/// syntax; signing replaces it, so any old value will do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExistingSig {
    Check,
    Replace,
}

pub(crate) fn parse_licence_with(
    name: &str,
    bytes: &[u8],
    existing_sig: ExistingSig,
) -> Result<LicenceFile, Vec<ParseError>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(vec![ParseError {
            file: name.to_string(),
            at: None,
            message: format!(
                "file is {} bytes; licence files are limited to {MAX_FILE_BYTES} bytes (16 MiB)",
                bytes.len()
            ),
        }]);
    }
    let mut errors = ErrorList::new(name);
    let mut unusable = false;
    let mut servers = Vec::new();
    let mut failovers = Vec::new();
    let mut features = Vec::new();
    // Line numbers of SERVER and FAILOVER lines, good or bad, so that a bad
    // one does not also count as missing.
    let mut server_lines = Vec::new();
    let mut failover_lines = Vec::new();

    for line in split_lines(bytes) {
        match parse_line(name, &line, existing_sig) {
            Ok(None) => {}
            Ok(Some(Record::Server(s))) => {
                server_lines.push(line.number);
                servers.push(s);
            }
            Ok(Some(Record::Failover(s))) => {
                failover_lines.push(line.number);
                failovers.push(s);
            }
            Ok(Some(Record::Feature(f))) => features.push(f),
            Err(LineError { error, kind }) => {
                match kind {
                    Some(RecordKind::Server) => server_lines.push(line.number),
                    Some(RecordKind::Failover) => failover_lines.push(line.number),
                    _ => {}
                }
                unusable |= matches!(kind, Some(RecordKind::Server | RecordKind::Failover));
                errors.push(error);
            }
        }
    }

    for (kind, lines) in [
        (RecordKind::Server, &server_lines),
        (RecordKind::Failover, &failover_lines),
    ] {
        for &extra in lines.iter().skip(1) {
            unusable = true;
            errors.push(ParseError {
                file: name.to_string(),
                at: Some(Position {
                    line: extra,
                    column: 1,
                }),
                message: format!(
                    "second {} line (the first is line {}); a licence file has at most one",
                    kind.keyword(),
                    lines[0]
                ),
            });
        }
    }
    if server_lines.is_empty() {
        unusable = true;
        errors.push(ParseError {
            file: name.to_string(),
            at: None,
            message: "no SERVER line; a licence file needs exactly one".into(),
        });
    }

    let errors = errors.finish();
    if unusable {
        return Err(errors);
    }
    let (Some(server), true, true) = (servers.pop(), servers.is_empty(), failovers.len() <= 1)
    else {
        // Unreachable given the counts above; kept as an error, not a panic.
        return Err(errors);
    };
    Ok(LicenceFile {
        name: name.to_string(),
        server,
        failover: failovers.pop(),
        features,
        errors,
    })
}

/// Collects a file's errors, keeping at most [`MAX_ERRORS_PER_FILE`].
struct ErrorList {
    file: String,
    kept: Vec<ParseError>,
    dropped: usize,
}

impl ErrorList {
    fn new(file: &str) -> ErrorList {
        ErrorList {
            file: file.to_string(),
            kept: Vec::new(),
            dropped: 0,
        }
    }

    fn push(&mut self, error: ParseError) {
        if self.kept.len() < MAX_ERRORS_PER_FILE {
            self.kept.push(error);
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<ParseError> {
        if self.dropped > 0 {
            self.kept.push(ParseError {
                file: self.file,
                at: None,
                message: format!("{} more errors not shown", self.dropped),
            });
        }
        self.kept
    }
}

/// One physical line: its number, its bytes without the line break (and
/// without a `\r` before it), and the break itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawLine<'a> {
    pub number: usize,
    pub bytes: &'a [u8],
    pub ending: &'a [u8],
}

/// Splits a file into lines on `\n`, accepting `\r\n`.
pub(crate) fn split_lines(bytes: &[u8]) -> impl Iterator<Item = RawLine<'_>> {
    let mut rest = bytes;
    let mut number = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        number += 1;
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..=i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        let mut content_len = line.len();
        if line.ends_with(b"\n") {
            content_len -= 1;
        }
        if line[..content_len].ends_with(b"\r") {
            content_len -= 1;
        }
        Some(RawLine {
            number,
            bytes: &line[..content_len],
            ending: &line[content_len..],
        })
    })
}

/// A typed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    Server(ServerLine),
    Failover(ServerLine),
    Feature(FeatureLine),
}

/// A line's error and, when its first word says so, the kind of record it
/// was meant to be (a bad SERVER line makes its file unusable).
#[derive(Clone, Debug)]
pub(crate) struct LineError {
    pub error: ParseError,
    pub kind: Option<RecordKind>,
}

/// Parses one line to a typed record; `Ok(None)` for blank and comment lines.
pub(crate) fn parse_line(
    file: &str,
    line: &RawLine<'_>,
    existing_sig: ExistingSig,
) -> Result<Option<Record>, LineError> {
    let kind_hint = first_word(line.bytes).and_then(RecordKind::from_word);
    let fail = |error| LineError {
        error,
        kind: kind_hint,
    };
    let text = checked_text(file, line).map_err(fail)?;
    let ctx = LineContext {
        file,
        number: line.number,
        text,
    };
    let Some(raw) = lex_line(&ctx).map_err(fail)? else {
        return Ok(None);
    };
    let record = match raw.kind {
        RecordKind::Server => Record::Server(server_from_raw(&ctx, &raw).map_err(fail)?),
        RecordKind::Failover => Record::Failover(server_from_raw(&ctx, &raw).map_err(fail)?),
        RecordKind::Feature => {
            Record::Feature(feature_from_raw(&ctx, &raw, existing_sig).map_err(fail)?)
        }
    };
    Ok(Some(record))
}

fn first_word(bytes: &[u8]) -> Option<&[u8]> {
    bytes
        .split(|&b| b == b' ' || b == b'\t')
        .find(|w| !w.is_empty())
}

/// The line as text, once it is within the length limit and valid UTF-8.
pub(crate) fn checked_text<'a>(file: &str, line: &RawLine<'a>) -> Result<&'a str, ParseError> {
    let at = |column| {
        Some(Position {
            line: line.number,
            column,
        })
    };
    if line.bytes.len() > MAX_LINE_BYTES {
        return Err(ParseError {
            file: file.to_string(),
            at: at(1),
            message: format!(
                "line is {} bytes long; lines are limited to {MAX_LINE_BYTES} bytes (64 KiB)",
                line.bytes.len()
            ),
        });
    }
    std::str::from_utf8(line.bytes).map_err(|e| {
        let valid = &line.bytes[..e.valid_up_to()];
        // The prefix is valid UTF-8 by construction.
        let column = String::from_utf8_lossy(valid).chars().count() + 1;
        ParseError {
            file: file.to_string(),
            at: at(column),
            message: format!(
                "invalid UTF-8 (byte 0x{:02x}); licence files are UTF-8 text",
                line.bytes[e.valid_up_to()]
            ),
        }
    })
}

/// A line being parsed, to turn byte offsets into positioned errors.
pub(crate) struct LineContext<'a> {
    pub file: &'a str,
    pub number: usize,
    pub text: &'a str,
}

impl LineContext<'_> {
    fn column(&self, byte: usize) -> usize {
        let byte = byte.min(self.text.len());
        self.text
            .char_indices()
            .take_while(|&(i, _)| i < byte)
            .count()
            + 1
    }

    fn error(&self, byte: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            at: Some(Position {
                line: self.number,
                column: self.column(byte),
            }),
            message: message.into(),
        }
    }
}

/// A record as written: its parts and their byte offsets in the line.
#[derive(Clone, Debug)]
pub(crate) struct RawRecord {
    pub kind: RecordKind,
    pub kind_at: usize,
    pub name: String,
    pub fields: Vec<RawField>,
    /// Just after the last name or field: where a new field goes.
    pub fields_end: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct RawField {
    pub key: String,
    pub value: String,
    pub value_at: usize,
    /// The whole `key=value` token; the key starts it.
    pub span: Range<usize>,
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    i
}

fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && !is_space(b[i]) {
        i += 1;
    }
    i
}

fn char_at(text: &str, byte: usize) -> char {
    text[byte..].chars().next().unwrap_or(' ')
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

/// Splits a line into record type, name and fields; `Ok(None)` for a blank
/// or comment line.
pub(crate) fn lex_line(ctx: &LineContext<'_>) -> Result<Option<RawRecord>, ParseError> {
    let text = ctx.text;
    let b = text.as_bytes();
    if let Some((i, c)) = text
        .char_indices()
        .find(|&(_, c)| c.is_control() && c != '\t')
    {
        return Err(ctx.error(
            i,
            format!("unexpected control character U+{:04X}", c as u32),
        ));
    }

    let kind_at = skip_spaces(b, 0);
    if kind_at == b.len() || b[kind_at] == b'#' {
        return Ok(None);
    }
    let kind_end = token_end(b, kind_at);
    let word = &text[kind_at..kind_end];
    let kind = RecordKind::from_word(word.as_bytes()).ok_or_else(|| {
        ctx.error(
            kind_at,
            format!("unknown record type {word:?}: expected SERVER, FAILOVER or FEATURE"),
        )
    })?;

    let name_at = skip_spaces(b, kind_end);
    if name_at == b.len() || b[name_at] == b'#' {
        return Err(ctx.error(name_at, format!("expected a name after {}", kind.keyword())));
    }
    let name_end = token_end(b, name_at);
    let name = &text[name_at..name_end];
    if name.contains('=') {
        return Err(ctx.error(
            name_at,
            format!(
                "expected a name after {}, found the field {name:?}",
                kind.keyword()
            ),
        ));
    }
    if let Some(bad) = name.bytes().position(|c| !is_name_byte(c)) {
        return Err(ctx.error(
            name_at + bad,
            format!(
                "unexpected {:?} in name {name:?}: names use letters, digits, '_', '-' and '.'",
                char_at(text, name_at + bad)
            ),
        ));
    }

    let mut fields: Vec<RawField> = Vec::new();
    // Key -> offset, so a 64 KiB line of tiny fields stays linear.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut pos = name_end;
    loop {
        let key_at = skip_spaces(b, pos);
        if key_at == b.len() || b[key_at] == b'#' {
            break;
        }
        let field = lex_field(ctx, key_at)?;
        let key = &text[key_at..key_at + field.key.len()];
        if let Some(&first_at) = seen.get(key) {
            return Err(ctx.error(
                key_at,
                format!(
                    "duplicate key {key:?} (first at column {})",
                    ctx.column(first_at)
                ),
            ));
        }
        seen.insert(key, key_at);
        pos = field.span.end;
        fields.push(field);
    }
    Ok(Some(RawRecord {
        kind,
        kind_at,
        name: name.to_string(),
        fields_end: pos,
        fields,
    }))
}

/// Reads one `key=value` or `key="quoted value"` starting at `key_at`.
fn lex_field(ctx: &LineContext<'_>, key_at: usize) -> Result<RawField, ParseError> {
    let text = ctx.text;
    let b = text.as_bytes();
    if !(b[key_at].is_ascii_alphabetic() || b[key_at] == b'_') {
        return Err(ctx.error(
            key_at,
            format!(
                "expected a key (a letter or '_' first), found {:?}",
                char_at(text, key_at)
            ),
        ));
    }
    let mut key_end = key_at + 1;
    while key_end < b.len()
        && (b[key_end].is_ascii_alphanumeric() || b[key_end] == b'_' || b[key_end] == b'-')
    {
        key_end += 1;
    }
    let key = &text[key_at..key_end];
    if key_end == b.len() || is_space(b[key_end]) {
        return Err(ctx.error(key_end, format!("expected '=' after key {key:?}")));
    }
    if b[key_end] != b'=' {
        return Err(ctx.error(
            key_end,
            format!(
                "expected '=' after key {key:?}, found {:?} (keys use letters, digits, '_' and '-')",
                char_at(text, key_end)
            ),
        ));
    }
    let value_at = key_end + 1;
    let (value, end) = if b.get(value_at) == Some(&b'"') {
        lex_quoted(ctx, key, value_at)?
    } else {
        let end = token_end(b, value_at);
        if end == value_at {
            return Err(ctx.error(
                value_at,
                format!("expected a value after {key}= (write \"\" for an empty value)"),
            ));
        }
        if let Some(quote) = text[value_at..end].find('"') {
            return Err(ctx.error(
                value_at + quote,
                format!("unexpected '\"' inside the value of {key:?}: quote the whole value"),
            ));
        }
        (text[value_at..end].to_string(), end)
    };
    Ok(RawField {
        key: key.to_string(),
        value,
        value_at,
        span: key_at..end,
    })
}

/// Reads a quoted value whose opening quote is at `open`; returns the value
/// and the offset after the closing quote.
fn lex_quoted(
    ctx: &LineContext<'_>,
    key: &str,
    open: usize,
) -> Result<(String, usize), ParseError> {
    let text = ctx.text;
    let b = text.as_bytes();
    let unterminated = || {
        ctx.error(
            open,
            format!("unterminated quoted value of {key:?}: no closing '\"' on this line"),
        )
    };
    let mut value = String::new();
    let mut i = open + 1;
    loop {
        match b.get(i) {
            None => return Err(unterminated()),
            Some(b'"') => {
                i += 1;
                break;
            }
            Some(b'\\') => match b.get(i + 1) {
                None => return Err(unterminated()),
                Some(b'"') => {
                    value.push('"');
                    i += 2;
                }
                Some(b'\\') => {
                    value.push('\\');
                    i += 2;
                }
                Some(_) => {
                    return Err(ctx.error(
                        i,
                        format!(
                        "unknown escape '\\{}' in a quoted value: only \\\" and \\\\ are allowed",
                        char_at(text, i + 1)
                    ),
                    ))
                }
            },
            Some(_) => {
                let c = char_at(text, i);
                value.push(c);
                i += c.len_utf8();
            }
        }
    }
    if i < b.len() && !is_space(b[i]) {
        return Err(ctx.error(
            i,
            format!("expected a space after the closing quote of {key:?}"),
        ));
    }
    Ok((value, i))
}

fn bad_value(ctx: &LineContext<'_>, field: &RawField, why: String) -> ParseError {
    ctx.error(field.value_at, format!("bad {}= value: {why}", field.key))
}

fn missing(ctx: &LineContext<'_>, raw: &RawRecord, key: &str, required: &str) -> ParseError {
    ctx.error(
        raw.kind_at,
        format!(
            "{} {} has no {key}= field ({required})",
            raw.kind.keyword(),
            raw.name
        ),
    )
}

/// Checks a SERVER or FAILOVER line: `hostid` required, `port` optional;
/// other keys are kept by nobody and ignored.
pub(crate) fn server_from_raw(
    ctx: &LineContext<'_>,
    raw: &RawRecord,
) -> Result<ServerLine, ParseError> {
    let mut hostid = None;
    let mut port = None;
    for field in &raw.fields {
        match field.key.as_str() {
            "hostid" => {
                hostid = Some(HostId::parse(&field.value).map_err(|e| bad_value(ctx, field, e))?)
            }
            "port" => {
                let n = parse_decimal(&field.value)
                    .filter(|n| (1..=u64::from(u16::MAX)).contains(n))
                    .ok_or_else(|| {
                        bad_value(
                            ctx,
                            field,
                            format!("expected a port 1-65535, found {:?}", field.value),
                        )
                    })?;
                port = Some(n as u16);
            }
            _ => {}
        }
    }
    Ok(ServerLine {
        name: raw.name.clone(),
        hostid: hostid.ok_or_else(|| missing(ctx, raw, "hostid", "required"))?,
        port,
    })
}

/// Checks a FEATURE line's known keys; unknown keys are kept. With
/// [`ExistingSig::Replace`] the `sig` value is not looked at (`sig` is `None`).
pub(crate) fn feature_from_raw(
    ctx: &LineContext<'_>,
    raw: &RawRecord,
    existing_sig: ExistingSig,
) -> Result<FeatureLine, ParseError> {
    let mut version = None;
    let mut count = None;
    let mut expiry = None;
    let mut share = Share::None;
    let mut min_checkout_secs = 0;
    let mut roam_days = None;
    let mut sig = None;
    for field in &raw.fields {
        let value = field.value.as_str();
        let bad = |why| bad_value(ctx, field, why);
        match field.key.as_str() {
            "version" => version = Some(Version::parse(value).map_err(bad)?),
            "count" => count = Some(Count::parse(value).map_err(bad)?),
            "expires" => expiry = Some(Expiry::parse(value).map_err(bad)?),
            "share" => share = Share::parse(value).map_err(bad)?,
            "min_checkout" => {
                min_checkout_secs = parse_decimal(value)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "expected seconds, a whole number up to {}, found {value:?}",
                            u32::MAX
                        ))
                    })?
            }
            "roam" => {
                roam_days = Some(
                    parse_decimal(value)
                        .filter(|n| (1..=u64::from(MAX_ROAM_DAYS)).contains(n))
                        .ok_or_else(|| {
                            bad(format!(
                                "expected the longest roam in days, 1 to {MAX_ROAM_DAYS}, found {value:?}"
                            ))
                        })? as u32,
                )
            }
            "sig" if existing_sig == ExistingSig::Check => {
                sig = Some(SigField::parse(value).map_err(bad)?)
            }
            _ => {}
        }
    }
    const REQUIRED: &str = "version, count and expires are required";
    Ok(FeatureLine {
        name: raw.name.clone(),
        version: version.ok_or_else(|| missing(ctx, raw, "version", REQUIRED))?,
        count: count.ok_or_else(|| missing(ctx, raw, "count", REQUIRED))?,
        expiry: expiry.ok_or_else(|| missing(ctx, raw, "expires", REQUIRED))?,
        share,
        min_checkout_secs,
        roam_days,
        sig,
        fields: raw
            .fields
            .iter()
            .map(|f| Field {
                key: f.key.clone(),
                value: f.value.clone(),
            })
            .collect(),
        line: ctx.number,
    })
}

/// The longest `roam=` a licence line may allow (ten years).
pub const MAX_ROAM_DAYS: u32 = 3650;

/// Decimal digits only (no sign, no spaces), saturating far above any u32.
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests;
