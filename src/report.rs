//! The report log: one line of usage history per event, for licence
//! administrators and their scripts (docs/REPORT-LOG.md).
//!
//! Lines are made from journal records, so a standby writes the same lines
//! as the active server, and a primary that syncs back after a failover
//! records the usage the backup served.

use crate::civil::format_timestamp;
use crate::ledger::{Event, Record};
use crate::protocol::line::LineWriter;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The report-log line for a record (with its newline).
pub fn format_line(record: &Record) -> String {
    let mut line = String::new();
    LineFormatter::default().append(record, &mut line);
    line
}

/// Formats report lines into a buffer, reusing the timestamp of the last
/// line (the records of a batch mostly share their second).
#[derive(Default)]
pub struct LineFormatter {
    stamp_secs: Option<u64>,
    stamp: String,
}

impl LineFormatter {
    /// Appends the record's line (with its newline) to `out`.
    pub fn append(&mut self, record: &Record, out: &mut String) {
        let (at, word) = match &record.event {
            Event::Grant(g) if g.roam.is_some() => (g.at, "roam"),
            Event::Grant(g) => (g.at, "checkout"),
            Event::RoamExtended(x) => (x.at, "roam_extend"),
            Event::RoamKey(k) => (k.at, "roam_key"),
            Event::Adopt(s) => (s.grant.at, "merged"),
            Event::Release(r) => (r.at, "return"),
            Event::Denied(d) => (d.at, "denied"),
            Event::Reread { at, .. } => (*at, "reread"),
            Event::Started { at } => (*at, "start"),
            Event::Stopped { at } => (*at, "stop"),
            Event::Activated { at, .. } => (*at, "activated"),
        };
        if self.stamp_secs != Some(at) {
            self.stamp_secs = Some(at);
            self.stamp = format_timestamp(at);
        }
        let mut line = LineWriter::new(out, &self.stamp);
        line.arg(word);
        match &record.event {
            Event::Grant(g) => {
                line.field_str("feature", &g.feature)
                    .field("version", g.version)
                    .field("pool", g.pool.version)
                    .field_u64("count", g.count.into())
                    .field_str("user", &g.user)
                    .field_str("host", &g.host)
                    .field_str("client", &g.client)
                    .field_opt("hostid", g.roam.as_ref().map(|r| &r.hostid))
                    .field_str("handle", &g.handle)
                    .field_opt("days", g.roam.as_ref().map(|r| r.days))
                    .field_opt("until", g.roam.as_ref().map(|r| format_timestamp(r.until)));
            }
            Event::RoamExtended(x) => {
                line.field_str("feature", &x.feature)
                    .field("version", x.version)
                    .field("count", x.count)
                    .field_str("user", &x.user)
                    .field_str("host", &x.host)
                    .field_str("handle", &x.handle)
                    .field("days", x.days)
                    .field("until", format_timestamp(x.until));
            }
            Event::Adopt(s) => {
                line.field_str("feature", &s.grant.feature)
                    .field("version", s.grant.version)
                    .field("pool", s.grant.pool.version)
                    .field("count", s.grant.count)
                    .field_str("user", &s.grant.user)
                    .field_str("host", &s.grant.host)
                    .field_str("client", &s.grant.client)
                    .field_opt("hostid", s.grant.roam.as_ref().map(|r| &r.hostid))
                    .field_str("handle", &s.grant.handle)
                    .field("lease_left_secs", s.lease_left_ms / 1000)
                    .field_opt(
                        "until",
                        s.grant.roam.as_ref().map(|r| format_timestamp(r.until)),
                    );
            }
            Event::Release(r) => {
                line.field_str("feature", &r.feature)
                    .field("version", r.version)
                    .field_u64("count", r.count.into())
                    .field_str("user", &r.user)
                    .field_str("host", &r.host)
                    .field_str("handle", &r.handle)
                    .field_str("reason", r.reason.as_str())
                    .field_u64("held_secs", r.at.saturating_sub(r.granted_at));
            }
            Event::Denied(d) => {
                line.field_str("feature", &d.feature)
                    .field("version", d.version)
                    .field("count", d.count)
                    .field_str("user", &d.user)
                    .field_str("host", &d.host)
                    .field("code", d.code)
                    .field_opt("rule", d.rule.as_ref())
                    .field_opt("days", d.roam_days);
            }
            Event::Reread { pools, .. } => {
                line.field("pools", pools);
            }
            Event::Activated { server, state, .. } => {
                line.field("server", server).field("state", state);
            }
            Event::RoamKey(k) => {
                line.field("key", &k.key_id);
            }
            Event::Started { .. } | Event::Stopped { .. } => {}
        }
        line.field_u64("epoch", record.epoch)
            .field_u64("seq", record.seq);
        line.finish();
    }
}

/// The report log's name in the state directory.
pub const REPORT_FILE: &str = "report.log";

/// The name a rotated report log gets: `report.log.<UTC time>`, with a
/// number added when that name is taken.
pub fn rotated_path(dir: &Path, unix_secs: u64) -> PathBuf {
    let stamp = format_timestamp(unix_secs).replace([':', '-'], "");
    let mut path = dir.join(format!("{REPORT_FILE}.{stamp}"));
    let mut n = 1;
    while path.exists() {
        path = dir.join(format!("{REPORT_FILE}.{stamp}.{n}"));
        n += 1;
    }
    path
}

/// The report log file, appended to and rotated on request.
pub struct ReportLog {
    path: PathBuf,
    file: File,
}

impl ReportLog {
    pub fn open(path: &Path) -> io::Result<ReportLog> {
        Ok(ReportLog {
            path: path.to_path_buf(),
            file: open_append(path)?,
        })
    }

    /// Appends lines (already formatted, newline-terminated).
    pub fn append(&mut self, text: &str) -> io::Result<()> {
        self.file.write_all(text.as_bytes())
    }

    /// Moves the current log to `to` and starts a new one. Lines are only
    /// ever written between rotations, so none is lost.
    pub fn rotate_to(&mut self, to: &Path) -> io::Result<()> {
        self.file.sync_data()?;
        if to.exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", to.display()),
            ));
        }
        std::fs::rename(&self.path, to)?;
        self.file = open_append(&self.path)?;
        Ok(())
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(crate::files::PRIVATE_FILE_MODE)
        .open(path)
}

/// How far back from the end of a report log to look for its last line
/// (a line is far shorter: names come from request lines of at most 4 KiB).
const TAIL_BYTES: u64 = 64 * 1024;

/// The `seq=` of the last complete line of a report log, and the length of
/// the file up to that line's end (past it is a torn line, if anything).
fn last_line_seq(path: &Path) -> io::Result<Option<(u64, u64)>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let from = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let Some(end) = tail.iter().rposition(|&b| b == b'\n') else {
        return Ok(None);
    };
    let start = tail[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = String::from_utf8_lossy(&tail[start..end]);
    let seq = crate::protocol::line::parse(&line)
        .ok()
        .and_then(|l| l.get("seq").and_then(|s| s.parse().ok()));
    Ok(seq.map(|seq| (seq, from + end as u64 + 1)))
}

/// Writes the report lines a crash kept from the log.
///
/// The journal writer appends a batch's report lines after the batch is
/// durable, so a kill between the two leaves records in the journal whose
/// lines are missing from `report.log`. On start, before the writer opens
/// the log, this appends the lines of every recovered record after the
/// last line on record: that of `report.log`, or, when it has none (just
/// rotated), that of the newest rotated log beside it. A torn last line
/// (power loss) is cut first. Returns how many lines were written.
pub fn catch_up(dir: &Path, records: &[Record]) -> io::Result<usize> {
    let path = dir.join(REPORT_FILE);
    let mut last = last_line_seq(&path)?;
    if let Some((_, good_len)) = last {
        let len = std::fs::metadata(&path)?.len();
        if len > good_len {
            log::warn!(
                "{}: cut a torn last line ({} bytes)",
                path.display(),
                len - good_len
            );
            OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(good_len)?;
        }
    } else {
        last = last_rotated_seq(dir)?;
    }
    let after = last.map_or(0, |(seq, _)| seq);
    let mut text = String::new();
    let mut n = 0;
    for record in records.iter().filter(|r| r.seq > after) {
        text.push_str(&format_line(record));
        n += 1;
    }
    if n > 0 {
        let mut file = open_append(&path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
    }
    Ok(n)
}

/// The last line on record in the rotated logs (`report.log.*`) in `dir`:
/// that of the most recently modified one whose last line has a `seq=`
/// (an operator may have compressed some).
fn last_rotated_seq(dir: &Path) -> io::Result<Option<(u64, u64)>> {
    let prefix = format!("{REPORT_FILE}.");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut rotated = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            rotated.push((entry.metadata()?.modified()?, entry.path()));
        }
    }
    rotated.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, path) in rotated {
        if let Some(found) = last_line_seq(&path)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Code;
    use crate::ledger::{Denial, Grant, Reason, Return};
    use crate::licence::{Expiry, PoolKey, Share, Version};
    use crate::protocol::line;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn lines_carry_what_scripts_need() {
        let grant = Record {
            seq: 1,
            epoch: 1,
            event: Event::Grant(std::sync::Arc::new(Grant {
                handle: "h1".into(),
                feature: "cad".into(),
                version: v("2.0"),
                pool: PoolKey {
                    feature: "cad".into(),
                    version: v("3.0"),
                    expiry: Expiry::Permanent,
                    share: Share::None,
                },
                count: 2,
                user: "alice smith".into(),
                host: "ws1".into(),
                client: "c1".into(),
                lease_ms: 60_000,
                min_hold_ms: 0,
                at: 1_800_000_000,
                roam: None,
            })),
        };
        let text = format_line(&grant);
        assert!(text.starts_with("2027-01-15T08:00:00Z checkout "), "{text}");
        let parsed = line::parse(text.trim_end()).unwrap();
        assert_eq!(parsed.get("user"), Some("alice smith"));
        assert_eq!(parsed.get("pool"), Some("3.0"));

        let ret = Record {
            seq: 2,
            epoch: 1,
            event: Event::Release(Return {
                handle: "h1".into(),
                reason: Reason::Expired,
                at: 1_800_003_600,
                feature: "cad".into(),
                version: v("2.0"),
                count: 2,
                user: "alice".into(),
                host: "ws1".into(),
                granted_at: 1_800_000_000,
            }),
        };
        let parsed_text = format_line(&ret);
        let parsed = line::parse(parsed_text.trim_end()).unwrap();
        assert_eq!(parsed.arg(0), Some("return"));
        assert_eq!(parsed.get("reason"), Some("expired"));
        assert_eq!(parsed.get("held_secs"), Some("3600"));

        let denied = Record {
            seq: 3,
            epoch: 1,
            event: Event::Denied(Denial {
                feature: "cad".into(),
                version: v("1"),
                count: 1,
                user: "bob".into(),
                host: "ws2".into(),
                code: Code::Excluded,
                rule: Some("site.opt:4".into()),
                at: 1_800_000_000,
                roam_days: None,
            }),
        };
        let text = format_line(&denied);
        assert!(text.contains(" code=EXCLUDED rule=site.opt:4 "), "{text}");
    }

    #[test]
    fn roams_have_lines_and_reasons_of_their_own() {
        let mut grant = crate::journal::codec::tests::grant("r1");
        grant.roam = Some(Box::new(crate::ledger::Roam {
            hostid: "machine:0123456789abcdef".into(),
            days: 3,
            from: 1_800_000_000,
            until: 1_800_316_800,
        }));
        grant.user = "ann".into();
        let text = format_line(&Record {
            seq: 4,
            epoch: 1,
            event: Event::Grant(grant.clone().into()),
        });
        let l = line::parse(text.trim_end()).unwrap();
        assert_eq!(l.arg(0), Some("roam"));
        assert_eq!(l.get("hostid"), Some("machine:0123456789abcdef"));
        assert_eq!(l.get("days"), Some("3"));
        assert_eq!(l.get("until"), Some("2027-01-19T00:00:00Z"));
        assert_eq!(l.get("seq"), Some("4"));

        let text = format_line(&Record {
            seq: 5,
            epoch: 1,
            event: Event::RoamExtended(crate::ledger::Extension {
                handle: "r1".into(),
                days: 5,
                until: 1_800_489_600,
                at: 1_800_100_000,
                feature: "cad".into(),
                version: v("2.0"),
                count: 2,
                user: "ann".into(),
                host: "ws-1".into(),
            }),
        });
        let l = line::parse(text.trim_end()).unwrap();
        assert_eq!(l.arg(0), Some("roam_extend"));
        assert_eq!(l.get("until"), Some("2027-01-21T00:00:00Z"));

        for (reason, text) in [
            (Reason::RoamReturn, "roam_return"),
            (Reason::RoamEnd, "roam_end"),
        ] {
            let line_text = format_line(&Record {
                seq: 6,
                epoch: 1,
                event: Event::Release(Return {
                    handle: "r1".into(),
                    reason,
                    at: 1_800_316_800,
                    feature: "cad".into(),
                    version: v("2.0"),
                    count: 2,
                    user: "ann".into(),
                    host: "ws-1".into(),
                    granted_at: 1_800_000_000,
                }),
            });
            let l = line::parse(line_text.trim_end()).unwrap();
            assert_eq!(l.get("reason"), Some(text));
            assert_eq!(l.get("held_secs"), Some("316800"));
        }
    }

    fn started(seq: u64) -> Record {
        Record {
            seq,
            epoch: 1,
            event: Event::Started { at: 1_800_000_000 },
        }
    }

    #[test]
    fn catch_up_writes_the_lines_a_crash_kept_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(REPORT_FILE);
        let records: Vec<Record> = (1..=5).map(started).collect();
        // New state directory: every recovered record.
        assert_eq!(catch_up(dir.path(), &records[..2]).unwrap(), 2);
        // Nothing missing: nothing written.
        assert_eq!(catch_up(dir.path(), &records[..2]).unwrap(), 0);
        // A torn last line is cut and the rest written once.
        let mut f = open_append(&path).unwrap();
        f.write_all(format_line(&records[2]).as_bytes()).unwrap();
        f.write_all(b"2027-01-15T08:00:00Z sta").unwrap();
        drop(f);
        assert_eq!(catch_up(dir.path(), &records).unwrap(), 2);
        let seqs = |p: &Path| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| line::parse(l).unwrap().get("seq").unwrap().to_string())
                .collect()
        };
        assert_eq!(seqs(&path), ["1", "2", "3", "4", "5"]);
        // Just rotated: the rotated log says how far the lines went.
        let mut log = ReportLog::open(&path).unwrap();
        log.rotate_to(&rotated_path(dir.path(), 1_800_000_000))
            .unwrap();
        let more: Vec<Record> = (4..=7).map(started).collect();
        assert_eq!(catch_up(dir.path(), &more).unwrap(), 2);
        assert_eq!(seqs(&path), ["6", "7"]);
    }

    #[test]
    fn rotation_keeps_every_line() {
        let dir = std::env::temp_dir().join(format!("floatd-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(REPORT_FILE);
        let mut log = ReportLog::open(&path).unwrap();
        log.append("one\n").unwrap();
        let old = rotated_path(&dir, 1_800_000_000);
        log.rotate_to(&old).unwrap();
        log.append("two\n").unwrap();
        let again = rotated_path(&dir, 1_800_000_000);
        assert_ne!(old, again);
        log.rotate_to(&again).unwrap();
        assert!(
            log.rotate_to(&again).is_err(),
            "never overwrites an old log"
        );
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "one\n");
        assert_eq!(std::fs::read_to_string(&again).unwrap(), "two\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
