//! `floatd`: the licence server. See `floatd --help` and docs/OPERATIONS.md.

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match floatd::config::Config::from_args(std::env::args_os().skip(1).collect()) {
        Ok(Some(config)) => config,
        Ok(None) => {
            print!("{}", floatd::config::FLOATD_USAGE);
            return;
        }
        Err(e) => {
            eprintln!("floatd: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = floatd::server::run(config) {
        log::error!("{e}");
        eprintln!("floatd: {e}");
        std::process::exit(1);
    }
}
