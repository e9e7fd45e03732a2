//! The STUN parser never panics; whatever parses can be checked and re-sealed without panicking,
//! and a message we seal ourselves passes our own checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rtprelay::stun::{Class, Message, MessageBuilder, BINDING};

fuzz_target!(|data: &[u8]| {
    let _ = rtprelay::stun::looks_like_stun(data);
    if let Ok(m) = Message::parse(data) {
        let _ = m.check_fingerprint(true);
        let _ = m.check_integrity(b"fuzzpassword");
        let _ = (m.xor_mapped_address(), m.error_code(), m.unknown_required());
        let mut b = MessageBuilder::new(Class::Success, BINDING, m.transaction_id());
        if let Some(u) = m.username() {
            b.username(&String::from_utf8_lossy(u));
        }
        b.integrity(b"key");
        let again = b.fingerprint();
        let m2 = Message::parse(&again).expect("our message parses");
        assert_eq!(m2.check_fingerprint(true), Ok(()));
        assert_eq!(m2.check_integrity(b"key"), Ok(()));
    }
});
