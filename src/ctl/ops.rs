//! Operator commands that talk to a running server: checkout, checkin,
//! status, remove, reread, down, rotate-log.

use super::{EXIT_DENIED, EXIT_ERROR};
use crate::client::{
    parse_server_list, Client, ClientConfig, ClientError, ClientEvent, Identity, SERVERS_ENV,
};
use crate::licence::Version;
use crate::protocol::{Request, StatusReport};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server list when neither `--server` nor `FLOATD_SERVERS` is given.
const DEFAULT_SERVER: &str = "127.0.0.1:27000";

/// Options every operator command takes.
struct Common {
    servers: Vec<String>,
    identity: Identity,
    admin_token_file: Option<PathBuf>,
    timeout: Duration,
}

impl Common {
    fn client(&self) -> Client {
        let mut config = ClientConfig::new(self.servers.clone(), self.identity.clone());
        config.failover_timeout = self.timeout;
        Client::new(config)
    }

    fn admin_token(&self) -> Result<Option<String>, String> {
        match &self.admin_token_file {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(path)
                .map(|t| Some(t.lines().next().unwrap_or("").trim().to_string()))
                .map_err(|e| format!("admin token file {}: {e}", path.display())),
        }
    }
}

/// Parses the common options out of `args`, leaving the rest.
fn common(args: Vec<OsString>) -> Result<(Common, Vec<OsString>), String> {
    let mut servers = std::env::var(SERVERS_ENV)
        .ok()
        .map(|s| parse_server_list(&s));
    let mut identity = Identity::from_environment();
    let mut admin_token_file = std::env::var_os("FLOATD_ADMIN_TOKEN_FILE").map(PathBuf::from);
    let mut timeout = Duration::from_secs(30);
    let mut rest = Vec::new();
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().to_string();
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (text.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| iter.next().map(|v| v.to_string_lossy().to_string()))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--server" => servers = Some(parse_server_list(&value()?)),
            "--user" => identity.user = value()?,
            "--host" => identity.host = value()?,
            "--client" => identity.client = value()?,
            "--admin-token-file" => admin_token_file = Some(value()?.into()),
            "--timeout" => {
                let v = value()?;
                timeout = Duration::from_secs_f64(
                    v.parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .ok_or_else(|| format!("--timeout {v:?}: expected seconds"))?,
                );
            }
            _ => rest.push(arg),
        }
    }
    let servers = servers
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec![DEFAULT_SERVER.to_string()]);
    Ok((
        Common {
            servers,
            identity,
            admin_token_file,
            timeout,
        },
        rest,
    ))
}

/// Runs one operator command; returns the exit code.
pub fn run(command: &str, args: Vec<OsString>) -> i32 {
    let (common, rest) = match common(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("floatctl {command}: {e}");
            return EXIT_ERROR;
        }
    };
    let result = match command {
        "checkout" => checkout(&common, rest),
        "checkin" => one_handle(&common, rest, |h| Request::Checkin { handle: h }, false),
        "remove" => one_handle(&common, rest, |h| Request::Remove { handle: h }, true),
        "status" => status(&common, rest),
        "reread" => admin(&common, rest, Request::Reread).and_then(reread_done),
        "rotate-log" => admin(&common, rest, Request::RotateLog).map(print_detail),
        "down" => {
            let release = rest.iter().any(|a| a == "--release");
            let rest = rest.into_iter().filter(|a| a != "--release").collect();
            admin(&common, rest, Request::Down { release }).map(print_detail)
        }
        _ => Err(Failure::Usage(format!("unknown command {command}"))),
    };
    match result {
        Ok(()) => 0,
        Err(Failure::Usage(msg)) => {
            eprintln!("floatctl {command}: {msg}");
            EXIT_ERROR
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
        Err(Failure::Skipped) => EXIT_DENIED,
    }
}

enum Failure {
    Usage(String),
    Client(ClientError),
    /// Said already on stderr.
    Skipped,
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
    client.on_event(|event| match event {
        ClientEvent::Moved {
            from: Some(from),
            to,
        } => {
            eprintln!("floatctl: server {from} is gone; now served by {to}")
        }
        ClientEvent::Moved { from: None, .. } => {}
        ClientEvent::Reclaimed { handle, server } => {
            eprintln!("floatctl: seat {handle} kept on {server}")
        }
        ClientEvent::Lost { handle, reason } => {
            eprintln!("floatctl: seat {handle} lost: {reason}")
        }
    });
    client.start_heartbeats();
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(signal, interrupted.clone());
    }
    let until = Instant::now() + Duration::from_secs_f64(hold);
    while Instant::now() < until && !interrupted.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    client.stop_heartbeats();
    if client.held().iter().any(|s| s.handle == seat.handle) {
        client.checkin(&seat.handle)?;
    }
    Ok(())
}

fn one_handle(
    common: &Common,
    args: Vec<OsString>,
    make: impl Fn(String) -> Request,
    is_admin: bool,
) -> Result<(), Failure> {
    let [handle] = &args[..] else {
        return Err(Failure::Usage("takes exactly one HANDLE".into()));
    };
    let request = make(handle.to_string_lossy().to_string());
    let client = common.client();
    if is_admin {
        let token = common.admin_token().map_err(Failure::Usage)?;
        client.admin(&request, token.as_deref())?;
    } else if let Request::Checkin { handle } = &request {
        client.checkin(handle)?;
    }
    Ok(())
}

/// Sends an admin request; returns the server's reply.
fn admin(common: &Common, args: Vec<OsString>, request: Request) -> Result<String, Failure> {
    if let Some(extra) = args.first() {
        return Err(Failure::Usage(format!("unexpected argument {extra:?}")));
    }
    let token = common.admin_token().map_err(Failure::Usage)?;
    // Reread, down and rotate-log concern the server named: the first of
    // the list that answers, whatever its role.
    let client = common.client();
    let mut result = Err(ClientError::Unreachable("no server given".into()));
    for server in &common.servers {
        result = client.admin_at(server, &request, token.as_deref());
        if !matches!(result, Err(ClientError::Unreachable(_))) {
            break;
        }
    }
    Ok(result?)
}

/// Prints what an admin reply says besides `OK`.
fn print_detail(reply: String) {
    let detail = reply.trim_start_matches("OK").trim();
    if !detail.is_empty() {
        println!("{detail}");
    }
}

/// After a reread: what is served on stdout; the broken licence lines the
/// server skipped, one a line on stderr, make the command fail (the
/// reread itself took effect).
fn reread_done(reply: String) -> Result<(), Failure> {
    let Ok(line) = crate::protocol::line::parse(&reply) else {
        print_detail(reply);
        return Ok(());
    };
    let served: Vec<String> = line
        .fields
        .iter()
        .filter(|(k, _)| *k != "skip" && *k != "skipped")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!("{}", served.join(" "));
    let skipped: usize = line
        .get("skipped")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if skipped == 0 {
        return Ok(());
    }
    eprintln!(
        "floatctl reread: the server serves {} pool(s), but skipped {skipped} broken licence \
         line(s) or file(s); seats they served stay out, new checkouts of them are refused:",
        line.get("pools").unwrap_or("?")
    );
    for (key, why) in &line.fields {
        if *key == "skip" {
            eprintln!("  {why}");
        }
    }
    Err(Failure::Skipped)
}

fn status(common: &Common, args: Vec<OsString>) -> Result<(), Failure> {
    let json = match &args[..] {
        [] => false,
        [flag] if flag == "--json" => true,
        _ => return Err(Failure::Usage("usage: floatctl status [--json]".into())),
    };
    let report = common.client().status()?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("status serialises")
        );
    } else {
        print!("{}", render_status(&report));
    }
    Ok(())
}

/// The human-readable status table.
pub fn render_status(report: &StatusReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "server {} ({}, {}, epoch {}), up {}s, {} connection(s), lease {}s",
        report.server,
        report.role,
        report.state,
        report.epoch,
        report.uptime_secs,
        report.connections,
        report.lease_secs
    );
    for s in &report.servers {
        let contact = s
            .last_contact_ms
            .map(|ms| format!(", last contact {ms} ms ago"))
            .unwrap_or_default();
        let lag = s.lag.map(|l| format!(", lag {l}")).unwrap_or_default();
        let rtt = s
            .rtt_ms
            .map(|r| format!(", round trip {r} ms"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {}: {} (epoch {}){contact}{lag}{rtt}",
            s.role, s.addr, s.state, s.epoch
        );
    }
    if let Some(w) = &report.witness {
        let _ = writeln!(
            out,
            "  witness {}: {}, records {} active at epoch {}{}",
            w.addr,
            w.state,
            if w.active.is_empty() {
                "nobody"
            } else {
                &w.active
            },
            w.epoch,
            w.stale_since
                .map(|n| format!(", standby stale since entry {n}"))
                .unwrap_or_default()
        );
    }
    for alert in &report.alerts {
        let _ = writeln!(out, "  ALERT: {alert}");
    }
    let _ = writeln!(
        out,
        "{:<16} {:<8} {:>9} {:>7} {:>6} {:<11} {:<6}",
        "FEATURE", "VERSION", "COUNT", "IN USE", "QUEUE", "EXPIRES", "SHARE"
    );
    for f in &report.features {
        let count = f.count.map_or("uncounted".to_string(), |c| c.to_string());
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:>9} {:>7} {:>6} {:<11} {:<6}",
            f.name, f.version, count, f.in_use, f.queue, f.expires, f.share
        );
        for h in &f.holders {
            let _ = writeln!(
                out,
                "    {} {}@{} x{} for {}s (returns in {}s)",
                h.handle, h.user, h.host, h.count, h.age_secs, h.returns_in_secs
            );
        }
    }
    out
}
