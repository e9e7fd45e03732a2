//! RTP views never panic on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::wire::rtp::Packet;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Packet::new_checked(data) {
        let _ = (p.version(), p.payload_type(), p.sequence(), p.timestamp(), p.ssrc(), p.payload().len());
    }
});
