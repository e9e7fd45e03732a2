fn main() { println!("rtprelay-recording {}", env!("CARGO_PKG_VERSION")); }
