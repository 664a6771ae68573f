//! The options file's text to [`Options`]. No I/O: the server reads the
//! file and hands the text over.
//!
//! One statement a line; words separated by spaces or tabs; a word that
//! starts with `#` starts a comment that runs to the end of the line; a
//! name holding spaces is written in double quotes (`"Ada Lovelace"`, with
//! `\"` and `\\` inside). Keywords and target kinds are case-insensitive;
//! names and features are not. Errors say file, line, column (counted in
//! characters from 1) and what was expected there.

use super::{Options, RoamLimit, RoamLimitKind, Rule, RuleKind, Target, TargetKind};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

/// A syntax error in an options file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionsError {
    /// The file as it was named to the server.
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for OptionsError {}

const KEYWORDS: &str = "GROUP, HOST_GROUP, RESERVE, MAX, INCLUDE, EXCLUDE, INCLUDE_ROAM, EXCLUDE_ROAM, ROAM_MAX_DAYS, ROAM_MAX_COUNT or ROAM_LOWWATER";
const KINDS: &str = "user, host, group or host_group";

/// One word of a line.
#[derive(Debug)]
struct Word {
    text: String,
    /// 1-based character column where the word starts.
    col: usize,
}

/// A rule's reference to a group, checked once the whole file is read.
struct GroupRef {
    kind: TargetKind,
    name: String,
    line: usize,
    col: usize,
}

/// Parses an options file's text. `file` is the path the server was given;
/// errors name it as given, and rules are cited by its file name.
pub fn parse(text: &str, file: &Path) -> Result<Options, OptionsError> {
    let file_text = file.display().to_string();
    let source = file
        .file_name()
        .map_or_else(|| file_text.clone(), |n| n.to_string_lossy().to_string());
    let mut parser = Parser {
        file: file_text,
        groups: HashMap::new(),
        host_groups: HashMap::new(),
        rules: Vec::new(),
        roam_limits: Vec::new(),
        refs: Vec::new(),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, line) in text.lines().enumerate() {
        parser.line(i + 1, line)?;
    }
    parser.check_refs()?;
    Ok(Options::build(
        source,
        parser.groups,
        parser.host_groups,
        parser.rules,
        parser.roam_limits,
    ))
}

struct Parser {
    file: String,
    groups: HashMap<String, BTreeSet<String>>,
    host_groups: HashMap<String, BTreeSet<String>>,
    rules: Vec<Rule>,
    roam_limits: Vec<RoamLimit>,
    refs: Vec<GroupRef>,
}

impl Parser {
    fn error(&self, line: usize, column: usize, message: impl Into<String>) -> OptionsError {
        OptionsError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    fn line(&mut self, n: usize, text: &str) -> Result<(), OptionsError> {
        let (words, end) = self.words(n, text)?;
        let Some(keyword) = words.first() else {
            return Ok(());
        };
        // Where a missing word would have started.
        let missing = |i: usize| words.get(i).map_or(end + 1, |w| w.col);
        let need = |i: usize, what: &str| -> Result<&Word, OptionsError> {
            words.get(i).ok_or_else(|| {
                let after: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
                self.error(
                    n,
                    missing(i),
                    format!("expected {what} after \"{}\"", after.join(" ")),
                )
            })
        };
        let upper = keyword.text.to_ascii_uppercase();
        match upper.as_str() {
            "GROUP" | "HOST_GROUP" => {
                let hosts = upper == "HOST_GROUP";
                let name = need(
                    1,
                    if hosts {
                        "a host group name"
                    } else {
                        "a group name"
                    },
                )?;
                let members = &words[2..];
                if members.is_empty() {
                    need(
                        2,
                        if hosts {
                            "at least one host name"
                        } else {
                            "at least one user name"
                        },
                    )?;
                }
                let map = if hosts {
                    &mut self.host_groups
                } else {
                    &mut self.groups
                };
                // Several lines of the same group add up (long groups).
                map.entry(name.text.clone())
                    .or_default()
                    .extend(members.iter().map(|w| w.text.clone()));
                Ok(())
            }
            "RESERVE" | "MAX" => {
                let seats = self.number(n, need(1, "a number of seats")?, "seats")?;
                let kind = if upper == "MAX" {
                    RuleKind::Max(seats)
                } else {
                    RuleKind::Reserve(seats)
                };
                self.rule(n, kind, &words, 2, end)
            }
            "INCLUDE" | "EXCLUDE" | "INCLUDE_ROAM" | "EXCLUDE_ROAM" => {
                let kind = match upper.as_str() {
                    "INCLUDE" => RuleKind::Include,
                    "EXCLUDE" => RuleKind::Exclude,
                    "INCLUDE_ROAM" => RuleKind::IncludeRoam,
                    _ => RuleKind::ExcludeRoam,
                };
                self.rule(n, kind, &words, 1, end)
            }
            "ROAM_MAX_DAYS" | "ROAM_MAX_COUNT" | "ROAM_LOWWATER" => {
                let (kind, unit, what) = match upper.as_str() {
                    "ROAM_MAX_DAYS" => (RoamLimitKind::MaxDays, "days", "a number of days"),
                    "ROAM_MAX_COUNT" => (RoamLimitKind::MaxCount, "seats", "a number of seats"),
                    _ => (RoamLimitKind::LowWater, "seats", "a number of seats"),
                };
                let number = self.number(n, need(1, what)?, unit)?;
                let feature = need(2, "a feature name")?;
                if let Some(extra) = words.get(3) {
                    return Err(self.error(
                        n,
                        extra.col,
                        format!(
                            "expected the end of the line after \"{} {} {}\", found \"{}\"",
                            keyword.text, words[1].text, feature.text, extra.text
                        ),
                    ));
                }
                self.roam_limits.push(RoamLimit {
                    kind,
                    n: number,
                    feature: feature.text.clone(),
                    line: n,
                });
                Ok(())
            }
            _ => Err(self.error(
                n,
                keyword.col,
                format!("expected {KEYWORDS}, found \"{}\"", keyword.text),
            )),
        }
    }

    /// A whole number of `unit` (seats, days), 0 to u32::MAX.
    fn number(&self, n: usize, word: &Word, unit: &str) -> Result<u32, OptionsError> {
        Some(&word.text)
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| {
                self.error(
                    n,
                    word.col,
                    format!(
                        "expected a number of {unit} (0 to {}), found \"{}\"",
                        u32::MAX,
                        word.text
                    ),
                )
            })
    }

    /// `FEATURE KIND NAME` from word `at` on, and nothing after it.
    fn rule(
        &mut self,
        n: usize,
        kind: RuleKind,
        words: &[Word],
        at: usize,
        end: usize,
    ) -> Result<(), OptionsError> {
        let so_far = |upto: usize| {
            words[..upto]
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let need = |i: usize, what: &str| -> Result<&Word, OptionsError> {
            words.get(i).ok_or_else(|| {
                self.error(
                    n,
                    end + 1,
                    format!("expected {what} after \"{}\"", so_far(i)),
                )
            })
        };
        let feature = need(at, "a feature name")?;
        let kind_word = need(at + 1, KINDS)?;
        let target_kind = match kind_word.text.to_ascii_lowercase().as_str() {
            "user" => TargetKind::User,
            "host" => TargetKind::Host,
            "group" => TargetKind::Group,
            "host_group" => TargetKind::HostGroup,
            _ => {
                return Err(self.error(
                    n,
                    kind_word.col,
                    format!("expected {KINDS}, found \"{}\"", kind_word.text),
                ))
            }
        };
        let name = need(at + 2, &format!("a {} name", target_kind.as_str()))?;
        if let Some(extra) = words.get(at + 3) {
            return Err(self.error(
                n,
                extra.col,
                format!(
                    "expected the end of the line after \"{}\", found \"{}\" \
                     (a name holding spaces goes in double quotes)",
                    so_far(at + 3),
                    extra.text
                ),
            ));
        }
        if matches!(target_kind, TargetKind::Group | TargetKind::HostGroup) {
            self.refs.push(GroupRef {
                kind: target_kind,
                name: name.text.clone(),
                line: n,
                col: name.col,
            });
        }
        self.rules.push(Rule {
            kind,
            feature: feature.text.clone(),
            target: Target {
                kind: target_kind,
                name: name.text.clone(),
            },
            line: n,
        });
        Ok(())
    }

    /// Every group a rule names must be defined (anywhere in the file).
    fn check_refs(&self) -> Result<(), OptionsError> {
        for r in &self.refs {
            let (own, other, own_kw, other_kw) = match r.kind {
                TargetKind::Group => (&self.groups, &self.host_groups, "GROUP", "host_group"),
                _ => (&self.host_groups, &self.groups, "HOST_GROUP", "group"),
            };
            if own.contains_key(&r.name) {
                continue;
            }
            let message = if other.contains_key(&r.name) {
                format!(
                    "\"{}\" is not a {own_kw} but a {}; write {other_kw} {}",
                    r.name,
                    other_kw.to_ascii_uppercase(),
                    r.name
                )
            } else {
                format!(
                    "{} \"{}\" is not defined (expected a line {own_kw} {} ...)",
                    r.kind.as_str(),
                    r.name,
                    r.name
                )
            };
            return Err(self.error(r.line, r.col, message));
        }
        Ok(())
    }

    /// Splits a line into words; returns them and the column of the last
    /// character before any comment (0 for an empty line).
    fn words(&self, n: usize, text: &str) -> Result<(Vec<Word>, usize), OptionsError> {
        let mut words = Vec::new();
        let mut end = 0;
        let mut chars = text.chars().enumerate().peekable();
        while let Some(&(i, c)) = chars.peek() {
            let col = i + 1;
            if c == ' ' || c == '\t' {
                chars.next();
                continue;
            }
            if c.is_control() {
                return Err(self.error(n, col, "expected text, found a control character"));
            }
            if c == '#' {
                break;
            }
            let mut word = String::new();
            if c == '"' {
                chars.next();
                let mut closed = false;
                while let Some((j, c)) = chars.next() {
                    end = j + 1;
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((k, e @ ('"' | '\\'))) => {
                                end = k + 1;
                                word.push(e);
                            }
                            Some((k, _)) => {
                                return Err(self.error(
                                    n,
                                    k + 1,
                                    "expected \\\" or \\\\ after a backslash in quotes",
                                ))
                            }
                            None => break,
                        },
                        c if c.is_control() && c != '\t' => {
                            return Err(self.error(
                                n,
                                j + 1,
                                "expected text, found a control character",
                            ))
                        }
                        c => word.push(c),
                    }
                }
                if !closed {
                    return Err(self.error(
                        n,
                        col,
                        "expected a closing double quote for the name that starts here",
                    ));
                }
                if word.is_empty() {
                    return Err(self.error(n, col, "expected a name, found \"\""));
                }
                if let Some(&(j, next)) = chars.peek() {
                    if next != ' ' && next != '\t' {
                        return Err(self.error(
                            n,
                            j + 1,
                            "expected a space after the closing double quote",
                        ));
                    }
                }
            } else {
                while let Some(&(j, c)) = chars.peek() {
                    if c == ' ' || c == '\t' {
                        break;
                    }
                    if c == '"' {
                        return Err(self.error(
                            n,
                            j + 1,
                            "expected a space before the double quote (quotes enclose a whole name)",
                        ));
                    }
                    if c.is_control() {
                        return Err(self.error(
                            n,
                            j + 1,
                            "expected text, found a control character",
                        ));
                    }
                    word.push(c);
                    end = j + 1;
                    chars.next();
                }
            }
            words.push(Word { text: word, col });
        }
        Ok((words, end))
    }
}
