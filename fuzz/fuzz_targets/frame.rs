//! The AF_XDP plane's frame parser never panics, and a frame it accepts can always be rewritten
//! (or refused) without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::wire::frame;

fuzz_target!(|data: &[u8]| {
    if let Some(p) = frame::parse(data) {
        assert!(p.payload.end <= data.len());
        let mut f = data.to_vec();
        let src = std::net::SocketAddr::new(p.dst.ip(), 30002);
        let _ = frame::rewrite(&mut f, &p, src, p.src, [2; 6], [4; 6]);
    }
});
