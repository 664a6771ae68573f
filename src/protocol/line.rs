//! The shape every protocol line shares, requests and replies alike:
//!
//! ```text
//! WORD [positional]... [key=value]...
//! ```
//!
//! separated by spaces or tabs. A value (or positional) holding a space, a
//! quote, a backslash or `=` is written in double quotes with `\"` and `\\`
//! escapes. Control characters are never allowed: a line is one line.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A parsed line. Borrowed from the input where no unescaping was needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub word: &'a str,
    pub args: Vec<Cow<'a, str>>,
    pub fields: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> Line<'a> {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The positional argument at `i`, if present.
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|a| a.as_ref())
    }
}

/// Splits a line (without its newline) into word, positionals and fields.
pub fn parse(line: &str) -> Result<Line<'_>, String> {
    // Any control character but a tab (C1 controls such as U+0085 too:
    // some tools take them for line ends), as push_value never writes one.
    if let Some((pos, _)) = line.char_indices().find(|&(_, c)| is_control(c)) {
        return Err(format!("control character at column {}", pos + 1));
    }
    let mut rest = line.trim_start_matches([' ', '\t']);
    let word_end = rest.find([' ', '\t']).unwrap_or(rest.len());
    let word = &rest[..word_end];
    if word.is_empty() {
        return Err("empty line".into());
    }
    rest = &rest[word_end..];
    let mut parsed = Line {
        word,
        args: Vec::new(),
        fields: Vec::new(),
    };
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Ok(parsed);
        }
        let column = line.len() - rest.len() + 1;
        if rest.starts_with('"') {
            if !parsed.fields.is_empty() {
                return Err(format!(
                    "positional value after key=value at column {column}"
                ));
            }
            let (value, after) = quoted(rest, column)?;
            parsed.args.push(value);
            rest = after;
            continue;
        }
        let token_end = rest.find([' ', '\t', '"']).unwrap_or(rest.len());
        let token = &rest[..token_end];
        match token.find('=') {
            Some(eq) => {
                let key = &token[..eq];
                if key.is_empty() {
                    return Err(format!("missing key before '=' at column {column}"));
                }
                let value_start = &rest[eq + 1..];
                let (value, after) = if value_start.starts_with('"') {
                    quoted(value_start, column + eq + 1)?
                } else {
                    let end = value_start
                        .find([' ', '\t', '"'])
                        .unwrap_or(value_start.len());
                    if value_start[end..].starts_with('"') {
                        return Err(format!("stray quote at column {}", column + eq + 1 + end));
                    }
                    (Cow::Borrowed(&value_start[..end]), &value_start[end..])
                };
                if parsed.fields.iter().any(|(k, _)| *k == key) {
                    return Err(format!("key {key:?} given twice"));
                }
                parsed.fields.push((key, value));
                rest = after;
            }
            None => {
                if rest[token_end..].starts_with('"') {
                    return Err(format!("stray quote at column {}", column + token_end));
                }
                if !parsed.fields.is_empty() {
                    return Err(format!(
                        "positional value after key=value at column {column}"
                    ));
                }
                parsed.args.push(Cow::Borrowed(token));
                rest = &rest[token_end..];
            }
        }
    }
}

/// Reads a quoted value starting at `text[0] == '"'`; returns it unescaped
/// and the text after the closing quote.
fn quoted(text: &str, column: usize) -> Result<(Cow<'_, str>, &str), String> {
    let body = &text[1..];
    let mut value = String::new();
    let mut escaped = false;
    let mut plain = true;
    for (i, c) in body.char_indices() {
        if escaped {
            if c != '"' && c != '\\' {
                return Err(format!(
                    "unknown escape \\{c} in the value at column {column}"
                ));
            }
            value.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
            plain = false;
        } else if c == '"' {
            let after = &body[i + 1..];
            if !after.is_empty() && !after.starts_with([' ', '\t']) {
                return Err(format!("missing space after the value at column {column}"));
            }
            let value = if plain {
                Cow::Borrowed(&body[..i])
            } else {
                Cow::Owned(value)
            };
            return Ok((value, after));
        } else {
            value.push(c);
        }
    }
    Err(format!("unterminated quote at column {column}"))
}

/// True when `value` can be written as it is: printable ASCII that needs no
/// quotes (most names and every number). One pass over the bytes; anything
/// else goes through [`push_value`].
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b > b' ' && b < 0x7f && b != b'"' && b != b'\\' && b != b'=')
}

/// True when `value` must be quoted to survive [`parse`].
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .bytes()
            .any(|b| matches!(b, b' ' | b'\t' | b'"' | b'\\' | b'='))
}

/// The characters a line never holds: every control character but a tab.
fn is_control(c: char) -> bool {
    c.is_control() && c != '\t'
}

/// Appends `value` to `out`, quoted if needed. Control characters (which
/// only a server-side message could hold) become spaces; a tab, which
/// [`parse`] accepts inside quotes, is kept (quoted), so what parses
/// writes back the same.
pub fn push_value(out: &mut String, value: &str) {
    if is_plain(value) {
        out.push_str(value);
        return;
    }
    let clean: Cow<str> = if value.chars().any(is_control) {
        Cow::Owned(
            value
                .chars()
                .map(|c| if is_control(c) { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(value)
    };
    if !needs_quotes(&clean) {
        out.push_str(&clean);
        return;
    }
    out.push('"');
    for c in clean.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends one line to a string someone else owns: a reply straight into
/// a reused buffer, with no allocation of its own.
#[derive(Debug)]
pub struct LineWriter<'a> {
    text: &'a mut String,
}

impl<'a> LineWriter<'a> {
    /// Starts a line with `word` at the end of `text`.
    pub fn new(text: &'a mut String, word: &str) -> LineWriter<'a> {
        text.push_str(word);
        LineWriter { text }
    }

    /// A positional value.
    pub fn arg(&mut self, value: &str) -> &mut Self {
        self.text.push(' ');
        push_value(self.text, value);
        self
    }

    /// A `key=value` field. The value is formatted in place and quoted
    /// afterwards only if it needs to be (numbers and plain names never do).
    pub fn field(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        self.text.push(' ');
        self.text.push_str(key);
        self.text.push('=');
        let start = self.text.len();
        let _ = write!(self.text, "{value}");
        if !is_plain(&self.text[start..]) {
            let raw = self.text.split_off(start);
            push_value(self.text, &raw);
        }
        self
    }

    /// A `key=value` field with a string value (no formatting machinery).
    pub fn field_str(&mut self, key: &str, value: &str) -> &mut Self {
        self.text.push(' ');
        self.text.push_str(key);
        self.text.push('=');
        push_value(self.text, value);
        self
    }

    /// A `key=value` field with a number (digits written directly).
    pub fn field_u64(&mut self, key: &str, value: u64) -> &mut Self {
        self.text.push(' ');
        self.text.push_str(key);
        self.text.push('=');
        push_u64(self.text, value);
        self
    }

    /// A field only when there is a value.
    pub fn field_opt(&mut self, key: &str, value: Option<impl std::fmt::Display>) -> &mut Self {
        if let Some(v) = value {
            self.field(key, v);
        }
        self
    }

    /// Ends the line with its newline.
    pub fn finish(&mut self) {
        self.text.push('\n');
    }
}

/// Appends the decimal digits of `n`.
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

/// Builds one line: `LineBuilder::new("OK").field("lease", 60).finish()`.
#[derive(Debug, Clone)]
pub struct LineBuilder {
    text: String,
}

impl LineBuilder {
    pub fn new(word: &str) -> LineBuilder {
        let mut text = String::with_capacity(96);
        text.push_str(word);
        LineBuilder { text }
    }

    fn writer(&mut self) -> LineWriter<'_> {
        LineWriter {
            text: &mut self.text,
        }
    }

    /// A positional value.
    pub fn arg(mut self, value: &str) -> LineBuilder {
        self.writer().arg(value);
        self
    }

    /// A `key=value` field.
    pub fn field(mut self, key: &str, value: impl std::fmt::Display) -> LineBuilder {
        self.writer().field(key, value);
        self
    }

    /// A `key=value` field with a string value.
    pub fn field_str(mut self, key: &str, value: &str) -> LineBuilder {
        self.writer().field_str(key, value);
        self
    }

    /// A `key=value` field with a number.
    pub fn field_u64(mut self, key: &str, value: u64) -> LineBuilder {
        self.writer().field_u64(key, value);
        self
    }

    /// A field only when there is a value.
    pub fn field_opt(mut self, key: &str, value: Option<impl std::fmt::Display>) -> LineBuilder {
        self.writer().field_opt(key, value);
        self
    }

    /// Free text after the fields (used for the JSON of STATUS).
    pub fn raw(mut self, text: &str) -> LineBuilder {
        self.text.push(' ');
        self.text.push_str(text);
        self
    }

    /// The line with its newline.
    pub fn finish(mut self) -> String {
        self.text.push('\n');
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tab_inside_quotes_survives_writing_back() {
        let l = parse("HELLO user=\"a\tb\"").unwrap();
        assert_eq!(l.get("user"), Some("a\tb"));
        let mut out = String::new();
        push_value(&mut out, "a\tb");
        assert_eq!(out, "\"a\tb\"");
        let mut out = String::new();
        push_value(&mut out, "a\nb\u{7f}");
        assert_eq!(out, "\"a b \"");
        // C1 controls are control characters too, refused like the rest.
        assert!(parse("CHECKIN o\u{9c}f")
            .unwrap_err()
            .contains("control character"));
        assert!(parse("CHECKIN \"a\u{85}b\"").is_err());
    }

    #[test]
    fn parses_words_positionals_and_fields() {
        let l = parse("CHECKOUT cad version=2.0 count=3 note=\"a b \\\"c\\\"\"").unwrap();
        assert_eq!(l.word, "CHECKOUT");
        assert_eq!(l.arg(0), Some("cad"));
        assert_eq!(l.get("version"), Some("2.0"));
        assert_eq!(l.get("count"), Some("3"));
        assert_eq!(l.get("note"), Some("a b \"c\""));
        assert_eq!(l.get("missing"), None);
    }

    #[test]
    fn rejects_malformed_lines() {
        for bad in [
            "",
            "   ",
            "X a=\"open",
            "X a=1 a=2",
            "X =v",
            "X a=1 pos",
            "X a=b\"c\"",
            "X a=\"b\"c",
            "X \u{1}",
            "X a=\"\\n\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn built_lines_parse_back() {
        let tricky = "spaces and \"quotes\" and \\ and = signs";
        let line = LineBuilder::new("OK")
            .arg("pos one")
            .field("a", tricky)
            .field("empty", "")
            .field("n", 42)
            .finish();
        assert!(line.ends_with('\n'));
        let parsed = parse(line.trim_end()).unwrap();
        assert_eq!(parsed.arg(0), Some("pos one"));
        assert_eq!(parsed.get("a"), Some(tricky));
        assert_eq!(parsed.get("empty"), Some(""));
        assert_eq!(parsed.get("n"), Some("42"));
    }

    #[test]
    fn control_characters_in_messages_are_blanked() {
        let line = LineBuilder::new("ERR").field("msg", "two\nlines").finish();
        assert_eq!(line, "ERR msg=\"two lines\"\n");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = parse(&s);
        }

        #[test]
        fn any_printable_value_round_trips(v in "[ -~]{0,40}") {
            let line = LineBuilder::new("OK").field("v", &v).finish();
            let parsed = parse(line.trim_end()).unwrap();
            proptest::prop_assert_eq!(parsed.get("v"), Some(v.as_str()));
        }
    }
}
