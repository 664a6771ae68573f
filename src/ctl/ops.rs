//! Operator commands that talk to a running server: checkout, checkin,
//! status, remove, reread, down, rotate-log, backup forget.

use super::common::{self, Common};
use super::{EXIT_DENIED, EXIT_ERROR};
use crate::client::ClientError;
use crate::ledger::SeatSelector;
use crate::licence::Version;
use crate::protocol::{line, Request};
use std::ffi::OsString;
use std::io::Write;
use std::time::{Duration, Instant};

/// Runs one operator command; returns the exit code.
pub fn run(command: &str, args: Vec<OsString>) -> i32 {
    let (common, rest) = match common::parse(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("floatctl {command}: {e}");
            return EXIT_ERROR;
        }
    };
    let result = match command {
        "checkout" => checkout(&common, rest),
        "checkin" => checkin(&common, rest),
        "remove" => remove(&common, rest),
        "status" => status(&common, rest),
        "reread" => admin(&common, rest, Request::Reread),
        "rotate-log" => admin(&common, rest, Request::RotateLog),
        "backup" => match rest.split_first() {
            Some((what, rest)) if what == "forget" => {
                admin(&common, rest.to_vec(), Request::BackupForget)
            }
            _ => Err(Failure::Usage("usage: floatctl backup forget".into())),
        },
        "down" => {
            let release = rest.iter().any(|a| a == "--release");
            let rest = rest.into_iter().filter(|a| a != "--release").collect();
            admin(&common, rest, Request::Down { release })
        }
        _ => Err(Failure::Usage(format!("unknown command {command}"))),
    };
    match result {
        Ok(()) => 0,
        Err(Failure::Usage(msg)) => {
            eprintln!("floatctl {command}: {msg}");
            EXIT_ERROR
        }
        Err(Failure::Denied(msg)) => {
            eprintln!("floatctl {command}: {msg}");
            EXIT_DENIED
        }
        Err(Failure::Client(ClientError::Denied {
            code_text, message, ..
        })) => {
            eprintln!("floatctl {command}: denied: {code_text}: {message}");
            EXIT_DENIED
        }
        Err(Failure::Client(e)) => {
            eprintln!("floatctl {command}: {e}");
            EXIT_ERROR
        }
    }
}

enum Failure {
    Usage(String),
    /// A refusal found by floatctl itself (exit 1).
    Denied(String),
    Client(ClientError),
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        Failure::Client(e)
    }
}

fn checkout(common: &Common, args: Vec<OsString>) -> Result<(), Failure> {
    let mut feature = None;
    let mut version = Version::parse("0").expect("0 is a version");
    let mut count = 1u32;
    let mut hold: Option<f64> = None;
    let mut wait = false;
    let mut wait_timeout = 3600.0;
    let mut iter = args.into_iter().map(|a| a.to_string_lossy().to_string());
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| {
            iter.next()
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--version" => {
                version = Version::parse(&value("--version")?).map_err(Failure::Usage)?
            }
            "--count" => {
                count = value("--count")?
                    .parse()
                    .ok()
                    .filter(|c| *c >= 1)
                    .ok_or_else(|| Failure::Usage("--count takes a number >= 1".into()))?
            }
            "--hold" => {
                hold = Some(
                    value("--hold")?
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .ok_or_else(|| Failure::Usage("--hold takes seconds".into()))?,
                )
            }
            "--wait" => wait = true,
            "--wait-timeout" => {
                wait_timeout = value("--wait-timeout")?
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| Failure::Usage("--wait-timeout takes seconds".into()))?
            }
            other if other.starts_with('-') => {
                return Err(Failure::Usage(format!("unknown option {other}")))
            }
            other if feature.is_none() => feature = Some(other.to_string()),
            other => return Err(Failure::Usage(format!("unexpected argument {other:?}"))),
        }
    }
    let feature = feature.ok_or_else(|| {
        Failure::Usage(
            "usage: floatctl checkout FEATURE [--version V] [--count N] [--hold SECS] [--wait]"
                .into(),
        )
    })?;
    let client = common.client();
    let seat = if wait {
        client.checkout_wait(
            &feature,
            &version,
            count,
            Duration::from_secs_f64(wait_timeout),
        )?
    } else {
        client.checkout(&feature, &version, count)?
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", seat.handle);
    let _ = stdout.flush();
    drop(stdout);
    let Some(hold) = hold else {
        return Ok(());
    };
    client.start_heartbeats();
    let until = Instant::now() + Duration::from_secs_f64(hold);
    while Instant::now() < until && !common.interrupted() {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Return the seats: at once when no server listens; a seat not
    // returned runs out its lease on the server.
    if let Err(e) = client.close() {
        eprintln!(
            "floatctl checkout: seat {} not returned ({e}); it returns when its lease runs out",
            crate::ledger::seat_id(&seat.handle)
        );
        return Err(Failure::Client(e));
    }
    Ok(())
}

fn checkin(common: &Common, args: Vec<OsString>) -> Result<(), Failure> {
    let [handle] = &args[..] else {
        return Err(Failure::Usage("usage: floatctl checkin HANDLE".into()));
    };
    common
        .client()
        .checkin(&handle.to_string_lossy())
        .map_err(Failure::from)
}

/// `remove SEAT` or `remove FEATURE --user U --host H`; says what it did.
fn remove(common: &Common, args: Vec<OsString>) -> Result<(), Failure> {
    const USAGE: &str =
        "usage: floatctl remove SEAT | floatctl remove FEATURE --user NAME --host NAME";
    let [target] = &args[..] else {
        return Err(Failure::Usage(USAGE.into()));
    };
    let target = target.to_string_lossy().to_string();
    if target.starts_with('-') && !is_handle(&target) {
        return Err(Failure::Usage(format!("unknown option {target}\n{USAGE}")));
    }
    let seats = match (&common.user_given, &common.host_given) {
        (None, None) => SeatSelector::Seat(target),
        (Some(user), Some(host)) => SeatSelector::Holder {
            feature: target,
            user: user.clone(),
            host: host.clone(),
        },
        _ => {
            return Err(Failure::Usage(format!(
                "a holder is named by both --user and --host\n{USAGE}"
            )))
        }
    };
    let token = common.admin_token().map_err(Failure::Usage)?;
    let reply = common
        .client()
        .admin(&Request::Remove { seats }, token.as_deref())?;
    let fields = line::parse(&reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let get = |k: &str| fields.get(k).unwrap_or("?");
    let n: u64 = get("removed").parse().unwrap_or(0);
    println!(
        "removed {n} seat{} of {} from {}@{}",
        if n == 1 { "" } else { "s" },
        get("feature"),
        get("user"),
        get("host")
    );
    Ok(())
}

/// A handle is `ID.TAG` in base64url, so it may start with `-` (one in 64
/// does): no option looks like that.
fn is_handle(text: &str) -> bool {
    let base64url = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    text.split_once('.')
        .is_some_and(|(id, tag)| base64url(id) && base64url(tag))
}

/// An admin request to the server named (the first of the list that
/// answers, whatever its role); prints what the server did.
fn admin(common: &Common, args: Vec<OsString>, request: Request) -> Result<(), Failure> {
    if let Some(extra) = args.first() {
        return Err(Failure::Usage(format!("unexpected argument {extra:?}")));
    }
    let token = common.admin_token().map_err(Failure::Usage)?;
    let client = common.client();
    let mut result = Err(ClientError::Unreachable("no server given".into()));
    let mut server = "";
    for s in &common.servers {
        server = s;
        result = client.admin_at(s, &request, token.as_deref());
        if !matches!(result, Err(ClientError::Unreachable(_))) {
            break;
        }
    }
    let reply = result?;
    let fields = line::parse(&reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
    println!("{}", admin_done(&request, server, &fields));
    if matches!(request, Request::Reread) {
        reread_skipped(&fields)?;
    }
    Ok(())
}

/// A reread took effect, but the broken licence lines the server skipped
/// (`skip=` fields) make the command fail, each named on stderr.
fn reread_skipped(ok: &line::Line) -> Result<(), Failure> {
    let skipped: usize = ok.get("skipped").and_then(|n| n.parse().ok()).unwrap_or(0);
    if skipped == 0 {
        return Ok(());
    }
    let mut message = format!(
        "the server skipped {skipped} broken licence line(s) or file(s); seats they served \
         stay out, new checkouts of them are refused:"
    );
    for (key, why) in &ok.fields {
        if *key == "skip" {
            message.push_str(&format!("\n  {why}"));
        }
    }
    Err(Failure::Denied(message))
}

/// What an admin request did, in words, from the server's `OK` line.
fn admin_done(request: &Request, server: &str, ok: &line::Line) -> String {
    match request {
        Request::Reread => format!(
            "server at {server} reread its licences: serving {} pool(s){}{}",
            ok.get("pools").unwrap_or("?"),
            ok.get("options")
                .map(|o| format!(", options from {o}"))
                .unwrap_or_default(),
            ok.get("peer")
                .map(|p| format!("; the other server's peer port is now {p}"))
                .unwrap_or_default()
        ),
        Request::BackupForget => format!(
            "server at {server} forgot its backup {}: clients are no longer told about it until it is heard from again",
            ok.get("forgotten").unwrap_or("?")
        ),
        Request::RotateLog => format!(
            "server at {server} rotated its report log to {}",
            ok.get("rotated").unwrap_or("?")
        ),
        Request::Down { release: true } => {
            format!("server at {server} is returning every seat and shutting down")
        }
        Request::Down { release: false } => format!("server at {server} is shutting down"),
        other => format!("server at {server} did {}", other.to_line().trim_end()),
    }
}

fn status(common: &Common, args: Vec<OsString>) -> Result<(), Failure> {
    let mut json = false;
    let mut all = false;
    let mut features = Vec::new();
    for arg in args {
        match arg.to_string_lossy().as_ref() {
            "--json" => json = true,
            "--all" => all = true,
            other if other.starts_with('-') => {
                return Err(Failure::Usage(format!(
                    "unknown option {other}\nusage: floatctl status [FEATURE]... [--all] [--json]"
                )))
            }
            other => features.push(other.to_string()),
        }
    }
    let mut report = if all {
        // Every holder: an admin request (its cost is the admin's call).
        let token = common.admin_token().map_err(Failure::Usage)?;
        let line = common
            .client()
            .admin(&Request::StatusAll, token.as_deref())?;
        let json = line.strip_prefix("STATUS ").unwrap_or(&line);
        serde_json::from_str(json)
            .map_err(|e| ClientError::Protocol(format!("status JSON: {e}")))?
    } else {
        common.client().status()?
    };
    let missing: Vec<&String> = features
        .iter()
        .filter(|name| !report.features.iter().any(|f| &f.name == *name))
        .collect();
    if !features.is_empty() {
        report.features.retain(|f| features.contains(&f.name));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("status serialises")
        );
    } else {
        print!(
            "{}",
            super::view::render_status(&report, crate::civil::unix_now_secs())
        );
    }
    match missing.as_slice() {
        [] => Ok(()),
        names => Err(Failure::Denied(format!(
            "no licence served for {}",
            names
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_starting_with_a_dash_is_no_option() {
        assert!(is_handle("-Dy15i0gYlSwOFTK.jcajxCyhkeZEpNBiMZxOjA"));
        assert!(is_handle("abc_-.x-y"));
        for option in ["--user", "-x", "--server=a.b:1", "-a.", ".b", "a.b.c"] {
            assert!(!is_handle(option), "{option}");
        }
    }
}
