//! The recorder's timeline, per-call caps and mixers, fed arbitrary packets with arbitrary timestamps,
//! SSRCs, sequence numbers, codecs and arrival times: never a panic, never audio past the caps. Run with
//! `-rss_limit_mb` (scripts/fuzz-smoke.sh sets 2048) so an allocation the caps fail to bound is a crash.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rtprelay_recording::mixfuzz::fuzz_mix(data);
});
