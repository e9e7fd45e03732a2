//! Bencode decoding never panics, and whatever decodes re-encodes to something that decodes the same.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::control::bencode;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = bencode::decode(data) {
        let again = bencode::decode(&v.encode()).expect("re-encoded value decodes");
        assert_eq!(v, again);
    }
});
