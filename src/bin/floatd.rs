fn main() {
    eprintln!("floatd: not yet");
    std::process::exit(2);
}
