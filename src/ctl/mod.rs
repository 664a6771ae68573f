//! `floatctl`: the vendor's and operator's command-line tool.
//!
//! Vendor commands (keygen, sign, verify, hostid, pools) live in
//! [`vendor`]; operator commands talking to a running server in [`ops`]
//! (options common to them in [`common`], the status table in [`view`]);
//! usage reports from report logs in [`report`] (numbers from `usage`);
//! roaming (`floatctl roam`) in `roam`.

pub mod common;
pub mod ops;
pub mod report;
mod roam;
mod usage;
pub mod vendor;
pub mod view;

/// Exit code for a denied request or a failed check.
pub const EXIT_DENIED: i32 = 1;
/// Exit code for any other error: bad arguments, unreachable server, I/O.
pub const EXIT_ERROR: i32 = 2;

/// Each command: name, arguments, what it does (one line), more help.
const COMMANDS: &[(&str, &str, &str, &str)] = &[
    (
        "keygen",
        "--out DIR",
        "new signing key pair (vendor.key, vendor.pub)",
        "",
    ),
    (
        "sign",
        "--key vendor.key FILE",
        "sign every FEATURE line; signed file on stdout",
        "",
    ),
    (
        "verify",
        "[--vendor-key FILE]... FILE",
        "check each feature: ok, bad signature, expired, wrong host",
        "",
    ),
    ("hostid", "", "this host's ids, one a line", ""),
    (
        "pools",
        "[--vendor-key FILE]... FILE...",
        "the pools a server on this host would serve",
        "",
    ),
    (
        "checkout",
        "FEATURE [--version V] [--count N] [--hold SECS] [--wait] [--wait-timeout SECS]",
        "take seats; prints the handle (a secret: it returns the seat)",
        "  --hold SECS   keep the seats that long, heartbeating, then check them in\n\
         \x20               (SIGTERM or Ctrl-C checks them in at once)\n\
         \x20 --wait        queue for a seat when none is free (at most --wait-timeout, 3600 s)\n\
         A seat is returned by the same user on the same host (`floatctl checkin`).\n",
    ),
    (
        "checkin",
        "HANDLE",
        "return a seat taken by `floatctl checkout` (same user and host)",
        "",
    ),
    (
        "status",
        "[FEATURE]... [--all] [--json]",
        "servers, alerts, each licence's seats and who holds them",
        "  FEATURE   show only these features\n\
         \x20 --all     (admin) every holder, not only the 50 longest-held of each pool\n\
         \x20 --json    the status report as JSON (docs/OPERATIONS.md): for scripts\n",
    ),
    (
        "remove",
        "SEAT | FEATURE --user NAME --host NAME",
        "(admin) take seats back: one by seat id (from status), or a holder's",
        "  SEAT                          the seat id `floatctl status` shows (or the handle)\n\
         \x20 FEATURE --user U --host H     every seat of FEATURE that U holds on H\n",
    ),
    ("reread", "", "(admin) reread licences and options", ""),
    ("rotate-log", "", "(admin) start a new report log", ""),
    (
        "down",
        "[--release]",
        "(admin) shut the server down (--release: return every seat first)",
        "",
    ),
    (
        "backup",
        "forget",
        "(admin) a primary stops advertising its lost backup until it is heard from again",
        "  forget   clients are no longer told about the backup (as after backup_lost_after);\n\
         \x20          refused while the backup is heard from. Ask the primary.\n",
    ),
    (
        "report",
        "[--from DATE] [--to DATE] [--feature F] [--csv|--json] REPORT.LOG...",
        "usage per feature and day from report logs (rotated ones too)",
        "  --from, --to DATE   first and last day (YYYY-MM-DD, local time), both included\n\
         \x20 --feature F         only feature F (may be repeated)\n\
         \x20 --top N             users listed per feature and day (default 3)\n\
         \x20 --csv, --json       for spreadsheets and scripts (default: a table)\n\
         Reads plain and rotated logs in any order; a record seen twice counts once.\n",
    ),
    (
        "roam",
        "FEATURE --days N [--version V] [--count N] | --list | --check FEATURE | --extend FEATURE|TOKEN --days N | --return [FEATURE|TOKEN]",
        "take seats away offline for days, and the tokens kept for it (docs/ROAMING.md)",
        "  FEATURE --days N          roam: prints where the token is kept\n\
         \x20 --list                    this user's roams, and whether each is good here now\n\
         \x20 --check FEATURE           offline: exit 0 when a kept token lets FEATURE\n\
         \x20                           ([--version V] [--count N]) run here now\n\
         \x20 --extend FEATURE|TOKEN --days N   make a roam last N days from today\n\
         \x20 --return [FEATURE|TOKEN]  hand roams back early (every one without an argument)\n\
         \x20 --roam-dir DIR            where tokens are kept ($FLOATD_ROAM_DIR, else\n\
         \x20                           ~/.local/share/floatd/roams)\n",
    ),
];

const COMMON_HELP: &str = "\
common options (operator commands; also from the environment):
  --server HOST:PORT[,HOST:PORT]   servers to ask ($FLOATD_SERVERS; default 127.0.0.1:27000)
  --user NAME  --host NAME  --client ID   who floatctl says it is (checkout, checkin)
  --admin-token-file FILE          admin requests from another host ($FLOATD_ADMIN_TOKEN_FILE)
  --timeout SECS                   how long to keep trying the servers (default 30)
";

fn is_operator(command: &str) -> bool {
    matches!(
        command,
        "checkout"
            | "checkin"
            | "status"
            | "remove"
            | "reread"
            | "rotate-log"
            | "down"
            | "backup"
            | "roam"
    )
}

/// The whole usage text.
fn usage() -> String {
    let mut out =
        String::from("usage: floatctl COMMAND [ARGS]   (floatctl help COMMAND for more)\n");
    for (i, (name, args, what, _)) in COMMANDS.iter().enumerate() {
        match i {
            0 => out.push_str("\nvendor commands:\n"),
            5 => out.push_str("\noperator commands:\n"),
            13 => out.push_str("\nreports:\n"),
            14 => out.push_str("\nroaming:\n"),
            _ => {}
        }
        out.push_str(&format!("  {name} {args}\n      {what}\n"));
    }
    out.push('\n');
    out.push_str(COMMON_HELP);
    out.push_str("  --version   floatctl's version and protocol\n");
    out
}

/// One command's usage, or `None` for an unknown command.
fn command_usage(command: &str) -> Option<String> {
    let (name, args, what, more) = COMMANDS.iter().find(|c| c.0 == command)?;
    let mut out = format!("usage: floatctl {name} {args}\n\n{what}\n");
    if !more.is_empty() {
        out.push('\n');
        out.push_str(more);
    }
    if is_operator(command) {
        out.push('\n');
        out.push_str(COMMON_HELP);
    }
    Some(out)
}

/// Runs `floatctl` with the arguments after the program name; returns the
/// process exit code.
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    // Common options may come before the command (`floatctl --server X status`).
    let mut leading = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next_if(|a| a.to_string_lossy().starts_with('-')) {
        let text = arg.to_string_lossy().to_string();
        match text.as_str() {
            "--help" | "-h" => {
                print!("{}", usage());
                return 0;
            }
            "--version" | "-V" => {
                println!("{}", crate::build_info::version_line("floatctl"));
                return 0;
            }
            _ => {}
        }
        let takes_value = !text.contains('=');
        leading.push(arg);
        if takes_value {
            leading.extend(args.next());
        }
    }
    let args: Vec<std::ffi::OsString> = args.collect();
    let Some(command) = args.first().and_then(|a| a.to_str()) else {
        eprint!("{}", usage());
        return EXIT_ERROR;
    };
    let mut rest = args[1..].to_vec();
    // Help is answered here and never sent to a server.
    if command == "help" {
        return match rest.first().and_then(|a| a.to_str()) {
            None => {
                print!("{}", usage());
                0
            }
            Some(c) => match command_usage(c) {
                Some(text) => {
                    print!("{text}");
                    0
                }
                None => {
                    eprintln!("floatctl help: unknown command {c:?}");
                    EXIT_ERROR
                }
            },
        };
    }
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        if let Some(text) = command_usage(command) {
            print!("{text}");
            return 0;
        }
    }
    rest.extend(leading);
    match command {
        "keygen" | "sign" | "verify" | "hostid" | "pools" => vendor::run(command, rest),
        "report" => report::run(rest),
        "roam" => roam::run(rest),
        c if is_operator(c) => ops::run(command, rest),
        "--version" | "version" => {
            println!("{}", crate::build_info::version_line("floatctl"));
            0
        }
        other => {
            eprintln!("floatctl: unknown command {other:?}\n{}", usage());
            EXIT_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_usage_and_the_listing_names_them_all() {
        let all = usage();
        for (name, ..) in COMMANDS {
            assert!(command_usage(name).unwrap().contains(name));
            assert!(all.contains(&format!("  {name} ")), "{name}");
        }
        assert!(command_usage("frobnicate").is_none());
        assert!(command_usage("status").unwrap().contains("--server"));
        assert!(!command_usage("sign").unwrap().contains("--server"));
    }
}
