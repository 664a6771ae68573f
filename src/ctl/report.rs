//! `floatctl report`: usage per feature and day from report logs, the
//! current one and rotated ones (compressed too, through `gzip -dc`), in
//! any order. A line found in two files (a copy, an overlap) counts once.
//! The numbers come from [`super::usage`].

use super::usage::{self, Filter, Row};
use super::{EXIT_DENIED, EXIT_ERROR};
use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Table,
    Csv,
    Json,
}

/// Runs `floatctl report`; returns the exit code (1 when no report line
/// was found in the files given).
pub fn run(args: Vec<OsString>) -> i32 {
    match parse_args(args).and_then(|(filter, format, files)| report(&filter, format, &files)) {
        Ok(text) if text.is_empty() => {
            eprintln!("floatctl report: no usage in the period and features asked for");
            EXIT_DENIED
        }
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("floatctl report: {e}");
            EXIT_ERROR
        }
    }
}

fn parse_args(args: Vec<OsString>) -> Result<(Filter, Format, Vec<PathBuf>), String> {
    let mut filter = Filter {
        top: 3,
        ..Filter::default()
    };
    let mut format = Format::Table;
    let mut files = Vec::new();
    let mut iter = args.into_iter();
    let date = |v: Option<OsString>, name: &str| -> Result<jiff::civil::Date, String> {
        let v = v.ok_or_else(|| format!("{name} needs a date"))?;
        v.to_string_lossy()
            .parse()
            .map_err(|_| format!("{name} {v:?}: expected YYYY-MM-DD"))
    };
    while let Some(arg) = iter.next() {
        match arg.to_string_lossy().as_ref() {
            "--from" => filter.from = Some(date(iter.next(), "--from")?),
            "--to" => filter.to = Some(date(iter.next(), "--to")?),
            "--feature" => filter.features.push(
                iter.next()
                    .ok_or("--feature needs a name")?
                    .to_string_lossy()
                    .to_string(),
            ),
            "--top" => {
                filter.top = iter
                    .next()
                    .and_then(|v| v.to_string_lossy().parse().ok())
                    .ok_or("--top needs a number")?
            }
            "--csv" => format = Format::Csv,
            "--json" => format = Format::Json,
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() {
        return Err("name the report logs: floatctl report [OPTIONS] REPORT.LOG...".into());
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to {
            return Err(format!("--from {from} is after --to {to}"));
        }
    }
    Ok((filter, format, files))
}

fn report(filter: &Filter, format: Format, files: &[PathBuf]) -> Result<String, String> {
    let mut seen = HashSet::new();
    let mut events = Vec::new();
    for file in files {
        for line in read_log(file)?.lines() {
            if seen.insert(line.to_string()) {
                events.extend(usage::parse_line(line));
            }
        }
    }
    let rows = usage::summarise(&events, filter, &jiff::tz::TimeZone::system());
    if rows.is_empty() {
        return Ok(String::new());
    }
    Ok(match format {
        Format::Table => table(&rows),
        Format::Csv => csv(&rows),
        Format::Json => serde_json::to_string_pretty(&rows).expect("rows serialise") + "\n",
    })
}

/// A log's text; `.gz` files through `gzip -dc`.
fn read_log(path: &Path) -> Result<String, String> {
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let out = std::process::Command::new("gzip")
            .arg("-dc")
            .arg(path)
            .output()
            .map_err(|e| format!("{}: gzip: {e}", path.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{}: gzip: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        out.stdout
    } else {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn denials(row: &Row, sep: &str) -> String {
    row.denials
        .iter()
        .map(|(code, n)| format!("{code}={n}"))
        .collect::<Vec<_>>()
        .join(sep)
}

fn table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.day.clone(),
                r.feature.clone(),
                r.peak_seats.to_string(),
                format!("{:.2}", r.seat_hours),
                r.checkouts.to_string(),
                if r.denials.is_empty() {
                    "-".into()
                } else {
                    denials(r, " ")
                },
                r.top_users
                    .iter()
                    .map(|(u, h)| format!("{u} {h:.2}h"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let header = [
        "DAY",
        "FEATURE",
        "PEAK",
        "SEAT-HOURS",
        "CHECKOUTS",
        "DENIED",
        "TOP USERS",
    ];
    super::view::columns("", &header, &cells, &[2, 3, 4])
}

/// CSV (RFC 4180): fields with a comma, quote or newline are quoted.
fn csv(rows: &[Row]) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let mut out = String::from("day,feature,peak_seats,seat_hours,checkouts,denials,top_users\n");
    for r in rows {
        let users = r
            .top_users
            .iter()
            .map(|(u, h)| format!("{u}={h:.2}"))
            .collect::<Vec<_>>()
            .join(";");
        let _ = writeln!(
            out,
            "{},{},{},{:.2},{},{},{}",
            r.day,
            field(&r.feature),
            r.peak_seats,
            r.seat_hours,
            r.checkouts,
            field(&denials(r, ";")),
            field(&users)
        );
    }
    out
}
