//! `floatctl roam`: take seats away for days, list and check the tokens
//! kept (offline), extend and return roams.

use super::common::{self, Common};
use super::{EXIT_DENIED, EXIT_ERROR};
use crate::civil::{format_timestamp, unix_now_secs};
use crate::client::{ClientError, RoamError, RoamStore, StoredToken};
use crate::licence::{HostIds, Version};
use std::ffi::OsString;

const USAGE: &str = "usage: floatctl roam FEATURE --days N [--version V] [--count N]\n\
    \x20      floatctl roam --list | --check FEATURE [--version V] [--count N]\n\
    \x20      floatctl roam --extend FEATURE|TOKEN --days N | --return [FEATURE|TOKEN]";

/// What `floatctl roam` was asked to do.
enum Action {
    Roam,
    List,
    Check,
    Extend,
    Return,
}

struct Args {
    action: Action,
    /// FEATURE, or TOKEN for --extend and --return.
    target: Option<String>,
    version: Version,
    count: u32,
    days: Option<u32>,
    dir: Option<String>,
}

fn parse(args: Vec<OsString>) -> Result<Args, Failure> {
    let usage = || Failure::Usage(USAGE.into());
    let mut parsed = Args {
        action: Action::Roam,
        target: None,
        version: Version::parse("0").expect("0 is a version"),
        count: 1,
        days: None,
        dir: None,
    };
    let mut actions = 0;
    let mut iter = args.into_iter().map(|a| a.to_string_lossy().to_string());
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| {
            iter.next()
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))
        };
        let number = |name: &str, text: String| {
            text.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Failure::Usage(format!("{name} takes a whole number >= 1")))
        };
        match arg.as_str() {
            "--list" | "--check" | "--extend" | "--return" => {
                actions += 1;
                parsed.action = match arg.as_str() {
                    "--list" => Action::List,
                    "--check" => Action::Check,
                    "--extend" => Action::Extend,
                    _ => Action::Return,
                };
            }
            "--version" => {
                parsed.version = Version::parse(&value("--version")?).map_err(Failure::Usage)?
            }
            "--count" => parsed.count = number("--count", value("--count")?)?,
            "--days" => parsed.days = Some(number("--days", value("--days")?)?),
            "--roam-dir" => parsed.dir = Some(value("--roam-dir")?),
            other if other.starts_with('-') => {
                return Err(Failure::Usage(format!("unknown option {other}\n{USAGE}")))
            }
            other if parsed.target.is_none() => parsed.target = Some(other.to_string()),
            other => return Err(Failure::Usage(format!("unexpected argument {other:?}"))),
        }
    }
    let fits = match parsed.action {
        Action::Roam | Action::Extend => parsed.target.is_some() && parsed.days.is_some(),
        Action::Check => parsed.target.is_some() && parsed.days.is_none(),
        Action::List => parsed.target.is_none() && parsed.days.is_none(),
        Action::Return => parsed.days.is_none(),
    };
    if actions > 1 || !fits {
        return Err(usage());
    }
    Ok(parsed)
}

/// Why `floatctl roam` failed, and so its exit code.
enum Failure {
    /// Bad arguments, an unusable store (exit 2).
    Usage(String),
    /// A refusal, or nothing matched (exit 1).
    Refused(String),
    Client(ClientError),
}

/// Runs `floatctl roam ARGS`; returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let result = common::parse(args)
        .map_err(Failure::Usage)
        .and_then(|(common, rest)| roam(&common, rest));
    let (code, message) = match result {
        Ok(()) => return 0,
        Err(Failure::Usage(msg)) => (EXIT_ERROR, msg),
        Err(Failure::Refused(msg)) => (EXIT_DENIED, msg),
        Err(Failure::Client(ClientError::Denied {
            code_text, message, ..
        })) => (EXIT_DENIED, format!("denied: {code_text}: {message}")),
        Err(Failure::Client(e)) => (EXIT_ERROR, e.to_string()),
    };
    eprintln!("floatctl roam: {message}");
    code
}

fn roam(common: &Common, args: Vec<OsString>) -> Result<(), Failure> {
    let args = parse(args)?;
    let store = match &args.dir {
        Some(dir) => RoamStore::open(dir),
        None => RoamStore::default_store().map_err(roam_failure)?,
    };
    match args.action {
        Action::Roam => {
            let feature = args.target.as_deref().expect("checked");
            let days = args.days.expect("checked");
            let client = common.client();
            let kept = client
                .roam(feature, &args.version, args.count, days, &store)
                .map_err(roam_failure)?;
            print_kept("roaming", &kept);
        }
        Action::Extend => {
            let target = args.target.as_deref();
            let stored = one(&store, target)?;
            let kept = common
                .client()
                .extend_roam(&stored, args.days.expect("checked"), &store)
                .map_err(roam_failure)?;
            print_kept("extended", &kept);
        }
        Action::Return => {
            let found = store.find(args.target.as_deref()).map_err(roam_failure)?;
            if found.is_empty() {
                return Err(nothing_kept(&store, args.target.as_deref()));
            }
            let client = common.client();
            let mut failed = None;
            for stored in found {
                let t = stored.token();
                match client.return_roam(&stored, &store) {
                    Ok(()) => println!("returned {} seat(s) of {}", t.count, t.feature),
                    Err(e) => {
                        eprintln!("floatctl roam: {}: {e}", t.feature);
                        failed = Some(e);
                    }
                }
            }
            if let Some(e) = failed {
                return Err(roam_failure(e));
            }
        }
        Action::List => {
            let host = HostIds::detect();
            let now = unix_now_secs();
            for stored in store.tokens().map_err(roam_failure)? {
                let t = stored.token();
                let verdict = match store.check_token(&stored, &host, now) {
                    Ok(_) => "good here now".to_string(),
                    Err(e) => e.to_string(),
                };
                println!(
                    "{} {} x{} until {}: {verdict} ({})",
                    t.feature,
                    t.pool,
                    t.count,
                    format_timestamp(t.until),
                    stored.path.display()
                );
            }
            for (path, why) in store.damaged().map_err(roam_failure)? {
                println!("{}: {why}", path.display());
            }
        }
        Action::Check => {
            let feature = args.target.as_deref().expect("checked");
            let token = store
                .check(
                    feature,
                    &args.version,
                    args.count,
                    &HostIds::detect(),
                    unix_now_secs(),
                )
                .map_err(roam_failure)?;
            println!(
                "{} {} x{} may run here until {}",
                token.feature,
                token.pool,
                token.count,
                format_timestamp(token.until)
            );
        }
    }
    Ok(())
}

fn print_kept(what: &str, kept: &StoredToken) {
    let t = kept.token();
    println!(
        "{what} {} seat(s) of {} until {}; token kept in {}",
        t.count,
        t.feature,
        format_timestamp(t.until),
        kept.path.display()
    );
}

/// The one kept token that `target` names.
fn one(store: &RoamStore, target: Option<&str>) -> Result<StoredToken, Failure> {
    let mut found = store.find(target).map_err(roam_failure)?;
    match found.len() {
        0 => Err(nothing_kept(store, target)),
        1 => Ok(found.remove(0)),
        n => Err(Failure::Usage(format!(
            "{n} roams match; name one by its token (floatctl roam --list shows where each is kept)"
        ))),
    }
}

fn nothing_kept(store: &RoamStore, target: Option<&str>) -> Failure {
    Failure::Refused(format!(
        "no roam token{} is kept in {}",
        target.map(|t| format!(" for {t}")).unwrap_or_default(),
        store.dir().display()
    ))
}

fn roam_failure(e: RoamError) -> Failure {
    match e {
        RoamError::Client(e) => Failure::Client(e),
        RoamError::Store(why) => Failure::Usage(format!("roam store: {why}")),
        other => Failure::Refused(other.to_string()),
    }
}
