//! `floatctl`: the vendor's and operator's command-line tool.
//!
//! Vendor commands (keygen, sign, verify, hostid, pools) live in
//! [`vendor`]; operator commands talking to a running server in [`ops`].

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
";

/// Runs `floatctl` with the arguments after the program name; returns the
/// process exit code.
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let Some(command) = args.first().and_then(|a| a.to_str()) else {
        eprint!("{USAGE}");
        return EXIT_ERROR;
    };
    let rest = args[1..].to_vec();
    match command {
        "keygen" | "sign" | "verify" | "hostid" | "pools" => vendor::run(command, rest),
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
