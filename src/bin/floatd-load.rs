//! `floatd-load`: the load generator. See `floatd-load --help` and
//! docs/BENCHMARKS.md.

fn main() {
    std::process::exit(floatd::load::main(std::env::args_os().skip(1).collect()));
}
