//! The recorder's spool readers (pcap, frames, RTP, metadata) never panic on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rtprelay_recording::spool::fuzz_entry(data);
});
