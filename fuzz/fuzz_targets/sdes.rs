//! The `a=crypto` parser never panics; what parses renders, and the rendering parses to the same
//! value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::sdp::Crypto;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = text.parse::<Crypto>() {
        let again: Crypto = c.to_string().parse().expect("rendered crypto parses");
        assert_eq!(again, c);
        let _ = c.srtp_params();
        for k in &c.keys {
            let _ = k.key_salt();
            if let Some(m) = k.mki {
                let _ = m.bytes();
            }
        }
        let _ = (c.kdr(), c.wsh(), c.to_attribute());
    }
});
