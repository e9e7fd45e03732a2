fn main() {
    println!("rtprelay {}", env!("CARGO_PKG_VERSION"));
}
