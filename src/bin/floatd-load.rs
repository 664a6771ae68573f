//! `floatd-load`: the load generator. See `floatd-load --help` and
//! docs/BENCHMARKS.md.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("{}", floatd::build_info::version_line("floatd-load"));
        return;
    }
    std::process::exit(floatd::load::main(args));
}
