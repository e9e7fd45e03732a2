//! RTCP compound parsing never panics on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rtprelay::wire::rtcp::is_rtcp(data);
    for _ in rtprelay::wire::rtcp::Compound::new(data).take(64) {}
});
