//! The `a=candidate` and ICE credential parsers never panic; what parses renders, and the
//! rendering parses to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::sdp::ice::{check_pwd, check_ufrag, Candidate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = (check_ufrag(text), check_pwd(text));
    if let Ok(c) = text.parse::<Candidate>() {
        let again: Candidate = c.to_string().parse().expect("rendered candidate parses");
        assert_eq!(again, c);
        let _ = (c.ip(), c.typ.preference(), c.to_attribute());
    }
});
