//! RTCP compound parsing never panics on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::wire::rtcp::Packet;

fuzz_target!(|data: &[u8]| {
    let _ = rtprelay::wire::rtcp::is_rtcp(data);
    if let Ok(p) = Packet::new_checked(data) {
        for header in p.iter().take(64) {
            let _ = header;
        }
    }
});
