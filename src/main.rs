fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(cc_relay::cli::run(args));
}
