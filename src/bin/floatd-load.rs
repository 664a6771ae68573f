fn main() {
    eprintln!("floatd-load: not yet");
    std::process::exit(2);
}
