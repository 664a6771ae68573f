//! `floatctl`: the vendor's and operator's command-line tool.
//!
//! Vendor commands (keygen, sign, verify, hostid, pools) live in
//! [`vendor`]; operator commands talking to a running server in [`ops`].

pub mod ops;
mod roam;
pub mod vendor;

/// Exit code for a denied request or a failed check.
pub const EXIT_DENIED: i32 = 1;
/// Exit code for any other error: bad arguments, unreachable server, I/O.
pub const EXIT_ERROR: i32 = 2;

const USAGE: &str = "\
usage: floatctl COMMAND [ARGS]

vendor commands:
  keygen --out DIR                      new signing key pair (vendor.key, vendor.pub)
  sign --key vendor.key FILE            sign every FEATURE line; signed file on stdout
  verify [--vendor-key FILE]... FILE    check each feature: ok, bad signature, expired, wrong host
  hostid                                this host's ids, one a line
  pools [--vendor-key FILE]... FILE...  the pools a server on this host would serve

operator commands (servers from --server HOST:PORT[,HOST:PORT] or $FLOATD_SERVERS):
  checkout FEATURE [--version V] [--count N] [--hold SECS] [--wait]
                                        prints the handle; with --hold, heartbeats then checks in
  checkin HANDLE                        return a seat
  status [--json]                       features, seats in use, holders, servers
  remove HANDLE                         (admin) take a seat back
  reread                                (admin) reread licences and options
  rotate-log                            (admin) start a new report log
  down [--release]                      (admin) shut the server down (--release: return all seats)

roaming (tokens in --roam-dir DIR, else $FLOATD_ROAM_DIR or ~/.local/share/floatd/roams):
  roam FEATURE --days N [--version V] [--count N]
                                        take seats away for N days; prints where the token is kept
  roam --list                           this user's roams and whether each is good here now (offline)
  roam --check FEATURE [--version V] [--count N]
                                        offline: exit 0 when a kept token lets FEATURE run here now
  roam --extend FEATURE|TOKEN --days N  make a roam last N days from today
  roam --return [FEATURE|TOKEN]         hand roams back early (every one without an argument)
  common: --server LIST  --user NAME  --host NAME  --client ID  --admin-token-file FILE  --timeout SECS
";

/// Runs `floatctl` with the arguments after the program name; returns the
/// process exit code.
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    // Common options may come before the command (`floatctl --server X status`).
    let mut leading = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next_if(|a| a.to_string_lossy().starts_with("--")) {
        let takes_value =
            !arg.to_string_lossy().contains('=') && !matches!(arg.to_str(), Some("--help"));
        leading.push(arg);
        if takes_value {
            leading.extend(args.next());
        }
    }
    let args: Vec<std::ffi::OsString> = args.collect();
    let Some(command) = args.first().and_then(|a| a.to_str()) else {
        if leading.iter().any(|a| a == "--help") {
            print!("{USAGE}");
            return 0;
        }
        eprint!("{USAGE}");
        return EXIT_ERROR;
    };
    let mut rest = args[1..].to_vec();
    rest.extend(leading);
    match command {
        "keygen" | "sign" | "verify" | "hostid" | "pools" => vendor::run(command, rest),
        "checkout" | "checkin" | "status" | "remove" | "reread" | "rotate-log" | "down"
        | "roam" => ops::run(command, rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            0
        }
        other => {
            eprintln!("floatctl: unknown command {other:?}\n{USAGE}");
            EXIT_ERROR
        }
    }
}
