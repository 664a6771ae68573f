//! `floatd`: the licence server. See `floatd --help` and docs/OPERATIONS.md.
//!
//! Exit status: 0 after a clean stop, [`floatd::server::EXIT_CONFIG`] (78)
//! when the configuration or the licences cannot work (systemd does not
//! restart it: `RestartPreventExitStatus=78`), 1 for any other failure.

use floatd::server::{RunError, EXIT_CONFIG};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("{}", floatd::build_info::version_line("floatd"));
        return;
    }
    floatd::logging::init();
    let config = match floatd::config::Config::from_args(args) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{}", floatd::config::FLOATD_USAGE);
            return;
        }
        Err(e) => {
            // A usage error: said plainly, not as a log line.
            eprintln!("floatd: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    match floatd::server::run(config) {
        Ok(()) => {}
        Err(RunError::Config(e)) => fail(&e, EXIT_CONFIG),
        Err(RunError::Other(e)) => fail(&e, 1),
    }
}

/// Says why once (a log line, or stderr when logging is off) and exits.
fn fail(why: &str, status: i32) -> ! {
    if log::log_enabled!(log::Level::Error) {
        log::error!("{why}");
    } else {
        eprintln!("floatd: {why}");
    }
    std::process::exit(status);
}
