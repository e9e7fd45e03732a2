//! SDP parsing never panics; what parses renders, and the rendering parses again.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = rtprelay::sdp::parse(data) {
        let text = sd.to_string();
        rtprelay::sdp::parse(text.as_bytes()).expect("rendered SDP parses");
    }
});
