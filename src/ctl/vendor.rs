//! Vendor commands: keygen, sign, verify, hostid, pools.
//!
//! Exit codes: 0 all well, [`EXIT_DENIED`] (1) a check failed,
//! [`EXIT_ERROR`] (2) bad arguments or I/O. Results go to stdout, one item
//! a line; warnings and errors to stderr.

use super::{EXIT_DENIED, EXIT_ERROR};
use crate::civil::Date;
use crate::licence::keys::{generate_signing_key, key_id, read_secret_key, RUNTIME_KEYS_ALLOWED};
use crate::licence::load::read_licence_file;
use crate::licence::{
    check_feature, load_files, parse_licence, sign_licence, HostIds, Pool, Side, TrustedKeys,
};
use lexopt::prelude::*;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const KEYGEN_USAGE: &str = "usage: floatctl keygen --out DIR
  Writes a new signing key pair: DIR/vendor.key (secret, mode 0600) and
  DIR/vendor.pub (give it to floatd with --vendor-key, or embed it at build
  time with FLOATD_VENDOR_KEYS). Never overwrites a key.";
const SIGN_USAGE: &str = "usage: floatctl sign --key vendor.key FILE > SIGNED
  Signs every FEATURE line of FILE (- for stdin), adding or replacing sig=;
  comments, blank lines and other lines are kept as they are.";
const VERIFY_USAGE: &str = "usage: floatctl verify [--vendor-key vendor.pub]... FILE...
  Prints each feature with ok, bad signature, missing signature,
  unknown key ID, expired or wrong host; exits 1 unless all are ok.";
const HOSTID_USAGE: &str = "usage: floatctl hostid
  Prints this host's ids, one a line, for SERVER/FAILOVER hostid= fields.";
const POOLS_USAGE: &str = "usage: floatctl pools [--vendor-key vendor.pub]... [--backup] FILE...
  Prints the pools a server on this host would serve from FILEs (as the
  primary, or with --backup as the backup); exits 1 if none.";

/// Runs one vendor command; returns the exit code.
pub fn run(command: &str, args: Vec<OsString>) -> i32 {
    let result = match command {
        "keygen" => keygen(args),
        "sign" => sign(args),
        "verify" => verify(args),
        "hostid" => hostid(args),
        "pools" => pools(args),
        other => Err(format!("unknown vendor command {other:?}")),
    };
    result.unwrap_or_else(|message| {
        eprintln!("floatctl {command}: {message}");
        EXIT_ERROR
    })
}

/// A command's outcome: an exit code, or a message for exit code 2.
type Outcome = Result<i32, String>;

fn arg_error(e: lexopt::Error) -> String {
    e.to_string()
}

fn usage(text: &str) -> Outcome {
    println!("{text}");
    Ok(0)
}

/// Writes to stdout, turning a closed pipe into an error instead of a panic.
fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing to stdout: {e}"))
}

fn keygen(args: Vec<OsString>) -> Outcome {
    let mut out_dir: Option<PathBuf> = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(arg_error)? {
        match arg {
            Long("out") => out_dir = Some(parser.value().map_err(arg_error)?.into()),
            Short('h') | Long("help") => return usage(KEYGEN_USAGE),
            _ => return Err(format!("{}\n{KEYGEN_USAGE}", arg.unexpected())),
        }
    }
    let out_dir = out_dir.ok_or_else(|| format!("missing --out DIR\n{KEYGEN_USAGE}"))?;
    let key = generate_signing_key().map_err(|e| e.to_string())?;
    let files = crate::licence::keys::write_key_pair(&out_dir, &key).map_err(|e| e.to_string())?;
    write_stdout(&format!(
        "key id {}\nsecret key {} (keep it safe: it signs licences)\npublic key {}\n",
        key_id(&key.verifying_key()),
        files.secret.display(),
        files.public.display()
    ))?;
    Ok(0)
}

fn sign(args: Vec<OsString>) -> Outcome {
    let mut key_path: Option<PathBuf> = None;
    let mut input: Option<PathBuf> = None;
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(arg_error)? {
        match arg {
            Long("key") => key_path = Some(parser.value().map_err(arg_error)?.into()),
            Short('h') | Long("help") => return usage(SIGN_USAGE),
            Value(v) if input.is_none() => input = Some(v.into()),
            _ => return Err(format!("{}\n{SIGN_USAGE}", arg.unexpected())),
        }
    }
    let key_path = key_path.ok_or_else(|| format!("missing --key vendor.key\n{SIGN_USAGE}"))?;
    let input = input.ok_or_else(|| format!("missing the licence file to sign\n{SIGN_USAGE}"))?;
    let key = read_secret_key(&key_path).map_err(|e| e.to_string())?;
    warn_if_readable_by_others(&key_path);
    let (name, bytes) = read_input(&input)?;
    match sign_licence(&name, &bytes, &key) {
        Ok(signed) => {
            for warning in &signed.warnings {
                eprintln!("floatctl sign: warning: {warning}");
            }
            write_stdout(&signed.text)?;
            eprintln!(
                "floatctl sign: signed {} FEATURE lines of {name} with key {}",
                signed.features,
                key_id(&key.verifying_key())
            );
            Ok(0)
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            Err(format!("{name}: not signed; fix the lines above"))
        }
    }
}

/// A licence file's name for messages and its bytes; `-` is stdin.
fn read_input(path: &Path) -> Result<(String, Vec<u8>), String> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        let limit = crate::licence::parse::MAX_FILE_BYTES as u64 + 1;
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading stdin: {e}"))?;
        return Ok(("<stdin>".into(), bytes));
    }
    let name = path.display().to_string();
    let bytes = read_licence_file(path).map_err(|e| format!("{name}: {e}"))?;
    Ok((name, bytes))
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "floatctl sign: warning: {} can be read by other users; chmod 600 it",
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// `--vendor-key FILE` (repeatable), `--backup` when allowed, and files.
struct CheckArgs {
    vendor_keys: Vec<PathBuf>,
    backup: bool,
    files: Vec<PathBuf>,
}

fn check_args(
    args: Vec<OsString>,
    allow_backup: bool,
    usage_text: &str,
) -> Result<Option<CheckArgs>, String> {
    let mut parsed = CheckArgs {
        vendor_keys: Vec::new(),
        backup: false,
        files: Vec::new(),
    };
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next().map_err(arg_error)? {
        match arg {
            Long("vendor-key") => parsed
                .vendor_keys
                .push(parser.value().map_err(arg_error)?.into()),
            Long("backup") if allow_backup => parsed.backup = true,
            Short('h') | Long("help") => {
                println!("{usage_text}");
                return Ok(None);
            }
            Value(v) => parsed.files.push(v.into()),
            _ => return Err(format!("{}\n{usage_text}", arg.unexpected())),
        }
    }
    if parsed.files.is_empty() {
        return Err(format!("missing licence FILE\n{usage_text}"));
    }
    Ok(Some(parsed))
}

fn trusted_keys(paths: &[PathBuf]) -> Result<TrustedKeys, String> {
    let keys = TrustedKeys::with_runtime_files(paths).map_err(|e| e.to_string())?;
    if keys.is_empty() {
        let hint = if RUNTIME_KEYS_ALLOWED {
            "give the vendor's public key with --vendor-key vendor.pub"
        } else {
            "this build embeds none; rebuild with FLOATD_VENDOR_KEYS"
        };
        eprintln!("floatctl: warning: no trusted vendor keys: {hint}");
    }
    Ok(keys)
}

fn verify(args: Vec<OsString>) -> Outcome {
    let Some(args) = check_args(args, false, VERIFY_USAGE)? else {
        return Ok(0);
    };
    let keys = trusted_keys(&args.vendor_keys)?;
    let host = HostIds::detect();
    let today = Date::today();
    let mut report = String::new();
    let mut all_ok = true;
    for path in &args.files {
        let (name, bytes) = read_input(path)?;
        let file = match parse_licence(&name, &bytes) {
            Ok(file) => file,
            Err(errors) => {
                all_ok = false;
                for error in errors {
                    report.push_str(&format!("{error}\n"));
                }
                report.push_str(&format!("{name}: unusable\n"));
                continue;
            }
        };
        for error in &file.errors {
            all_ok = false;
            report.push_str(&format!("{error}\n"));
        }
        let server_id = &file.server.hostid;
        let failover_id = file.failover.as_ref().map(|f| &f.hostid);
        let wrong_host =
            !server_id.matches(&host) && !failover_id.is_some_and(|id| id.matches(&host));
        for feature in &file.features {
            let mut problems = Vec::new();
            let sig = check_feature(feature, server_id, failover_id, &keys);
            if !sig.is_valid() {
                problems.push(sig.to_string());
            }
            if feature.expiry.is_expired(today) {
                problems.push("expired".to_string());
            }
            if wrong_host {
                problems.push("wrong host".to_string());
            }
            all_ok &= problems.is_empty();
            let status = if problems.is_empty() {
                "ok".to_string()
            } else {
                problems.join(", ")
            };
            report.push_str(&format!(
                "{name}:{}: {} {} count={} expires={}: {status}\n",
                feature.line, feature.name, feature.version, feature.count, feature.expiry
            ));
        }
    }
    write_stdout(&report)?;
    Ok(if all_ok { 0 } else { EXIT_DENIED })
}

fn hostid(args: Vec<OsString>) -> Outcome {
    let mut parser = lexopt::Parser::from_args(args);
    if let Some(arg) = parser.next().map_err(arg_error)? {
        return match arg {
            Short('h') | Long("help") => usage(HOSTID_USAGE),
            _ => Err(format!("{}\n{HOSTID_USAGE}", arg.unexpected())),
        };
    }
    let host = HostIds::detect();
    if host.is_empty() {
        eprintln!(
            "floatctl hostid: no host id found (no host name, network address or /etc/machine-id); \
             only hostid=any licences can be served here"
        );
        return Ok(EXIT_DENIED);
    }
    let text: String = host.ids().iter().map(|id| format!("{id}\n")).collect();
    write_stdout(&text)?;
    Ok(0)
}

fn pools(args: Vec<OsString>) -> Outcome {
    let Some(args) = check_args(args, true, POOLS_USAGE)? else {
        return Ok(0);
    };
    let keys = trusted_keys(&args.vendor_keys)?;
    let side = if args.backup {
        Side::Backup
    } else {
        Side::Primary
    };
    match load_files(&args.files, &keys, &HostIds::detect(), side, Date::today()) {
        Ok(served) => {
            for problem in &served.problems {
                eprintln!("warning: {problem}");
            }
            for (key, days) in &served.expiring {
                eprintln!("warning: {key} expires in {days} days");
            }
            if let Some(port) = served.port {
                let extra: Vec<String> = served.extra_ports.iter().map(u16::to_string).collect();
                eprintln!(
                    "port {port}{}",
                    if extra.is_empty() {
                        String::new()
                    } else {
                        format!(" (also {})", extra.join(", "))
                    }
                );
            }
            write_stdout(&served.pools.iter().map(pool_line).collect::<String>())?;
            Ok(0)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(EXIT_DENIED)
        }
    }
}

/// One pool as `floatctl pools` prints it.
fn pool_line(pool: &Pool) -> String {
    let min_checkout = if pool.min_checkout_secs > 0 {
        format!(" min_checkout={}", pool.min_checkout_secs)
    } else {
        String::new()
    };
    // `roam=3:2,30:1`: 2 seats may roam up to 3 days, 1 up to 30.
    let roam = if pool.roam.is_empty() {
        String::new()
    } else {
        let parts: Vec<String> = pool
            .roam
            .iter()
            .map(|a| format!("{}:{}", a.days, a.seats))
            .collect();
        format!(" roam={}", parts.join(","))
    };
    format!(
        "{} {} count={} expires={} share={}{min_checkout}{roam}\n",
        pool.key.feature,
        pool.key.version,
        pool.count,
        pool.key.expiry,
        pool.key.share.as_str()
    )
}
