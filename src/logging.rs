//! Log set-up for the `floatd` binary: `log` records to stderr through
//! `env_logger` (levels from `RUST_LOG`, default `info`), one line each.
//!
//! - Under systemd, when stderr is the journal stream (`JOURNAL_STREAM`
//!   names stderr's device and inode), each line starts with its sd-daemon
//!   priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), so
//!   `journalctl -p warning` finds floatd's warnings; journald adds the
//!   time itself.
//! - Anywhere else a line starts with the UTC time, to the millisecond.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where log lines go, which decides their prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// stderr is connected to journald.
    Journal,
    /// A terminal, a file, another supervisor.
    Plain,
}

/// Installs the logger. Call once, first thing in `main`.
pub fn init() {
    let sink = detect_sink();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |buf, record| {
            let line = format_line(
                sink,
                record.level(),
                record.target(),
                &record.args().to_string(),
                SystemTime::now(),
            );
            buf.write_all(line.as_bytes())
        })
        .init();
}

/// Journal when `JOURNAL_STREAM` (`DEV:INODE`, set by systemd) names the
/// file stderr is open on; a child whose stderr was redirected elsewhere
/// inherits the variable but not the stream, hence the check.
pub fn detect_sink() -> Sink {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return Sink::Plain;
    };
    match (parse_journal_stream(&value.to_string_lossy()), stderr_id()) {
        (Some(named), Some(actual)) if named == actual => Sink::Journal,
        _ => Sink::Plain,
    }
}

fn parse_journal_stream(value: &str) -> Option<(u64, u64)> {
    let (dev, ino) = value.split_once(':')?;
    Some((dev.trim().parse().ok()?, ino.trim().parse().ok()?))
}

/// Device and inode of the file stderr is open on.
fn stderr_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The sd-daemon priority of a level (sd-daemon(3)).
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// One log line, newline included. A message of several lines stays one
/// record: its line breaks are escaped.
pub fn format_line(
    sink: Sink,
    level: log::Level,
    target: &str,
    message: &str,
    at: SystemTime,
) -> String {
    let message = message.replace('\n', "\\n");
    match sink {
        Sink::Journal => format!("<{}>[{level} {target}] {message}\n", priority(level)),
        Sink::Plain => format!("{} [{level:<5} {target}] {message}\n", utc_millis(at)),
    }
}

/// `2026-11-23T23:24:07.123Z`.
fn utc_millis(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = crate::civil::Date::from_days((secs / 86_400) as i64).ymd();
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn journal_lines_carry_the_sd_daemon_priority() {
        let t = UNIX_EPOCH;
        let line = |level| format_line(Sink::Journal, level, "floatd::x", "m", t);
        assert_eq!(line(log::Level::Error), "<3>[ERROR floatd::x] m\n");
        assert_eq!(line(log::Level::Warn), "<4>[WARN floatd::x] m\n");
        assert_eq!(line(log::Level::Info), "<6>[INFO floatd::x] m\n");
        assert_eq!(line(log::Level::Debug), "<7>[DEBUG floatd::x] m\n");
    }

    #[test]
    fn other_lines_carry_the_utc_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_477_447_123);
        assert_eq!(
            format_line(Sink::Plain, log::Level::Warn, "floatd", "a\nb", t),
            "2026-11-23T23:44:07.123Z [WARN  floatd] a\\nb\n"
        );
    }

    #[test]
    fn journal_stream_is_device_colon_inode() {
        assert_eq!(parse_journal_stream("8:12345"), Some((8, 12345)));
        assert_eq!(parse_journal_stream("8"), None);
        assert_eq!(parse_journal_stream("x:1"), None);
    }
}
