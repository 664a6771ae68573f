fn main() {
    std::process::exit(floatd::ctl::main(std::env::args_os().skip(1).collect()));
}
