//! Vendor commands: keygen, sign, verify, hostid, pools.

/// Runs one vendor command; returns the exit code.
pub fn run(command: &str, _args: Vec<std::ffi::OsString>) -> i32 {
    eprintln!("floatctl {command}: not yet");
    super::EXIT_ERROR
}
