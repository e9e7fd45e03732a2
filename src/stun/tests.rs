//! RFC 5769's test vectors (short-term credential samples, §2.1-2.3), the builder reproducing
//! them byte for byte, and hostile input.

use std::net::SocketAddr;

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).unwrap_or(0) as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
const TID: TransactionId = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

/// RFC 5769 §2.1: software "STUN test client", username "evtj:h6vY".
fn sample_request() -> Vec<u8> {
    hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
         00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36
         00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
         00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
         80 28 00 04 e5 7a 3b cf")
}

/// RFC 5769 §2.2: software "test vector", mapped address 192.0.2.1:32853.
fn sample_v4_response() -> Vec<u8> {
    hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 08 00 01 a1 47 e1 12 a6 43
         00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
         80 28 00 04 c0 7d 4c 96")
}

/// RFC 5769 §2.3: mapped address [2001:db8:1234:5678:11:2233:4455:6677]:32853.
fn sample_v6_response() -> Vec<u8> {
    hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
         00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
         80 28 00 04 c8 fb 0b 4c")
}

#[test]
fn rfc5769_request_parses_and_verifies() {
    let bytes = sample_request();
    assert_eq!(bytes.len(), 108);
    assert!(looks_like_stun(&bytes));
    let m = Message::parse(&bytes).expect("parses");
    assert_eq!(m.class(), Class::Request);
    assert_eq!(m.method(), BINDING);
    assert_eq!(m.transaction_id(), &TID);
    assert_eq!(m.username(), Some(&b"evtj:h6vY"[..]));
    assert_eq!(m.priority(), Some(0x6e00_01ff));
    assert_eq!(m.ice_controlled(), Some(0x932f_f9b1_5126_3b36));
    assert_eq!(m.ice_controlling(), None);
    assert!(!m.use_candidate());
    assert!(m.unknown_required().is_empty());
    assert_eq!(m.check_fingerprint(true), Ok(()));
    assert_eq!(m.check_integrity(PASSWORD), Ok(()));
    assert_eq!(
        m.check_integrity(b"VOkJxbRl1RmTxUk/WvJxBu"),
        Err(StunError::BadIntegrity)
    );
}

#[test]
fn rfc5769_responses_decode_the_mapped_address() {
    for (bytes, want) in [
        (sample_v4_response(), "192.0.2.1:32853"),
        (
            sample_v6_response(),
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        ),
    ] {
        let m = Message::parse(&bytes).expect("parses");
        assert_eq!(m.class(), Class::Success);
        assert_eq!(m.method(), BINDING);
        let want: SocketAddr = want.parse().expect("address");
        assert_eq!(m.xor_mapped_address(), Some(want));
        assert_eq!(m.check_fingerprint(true), Ok(()));
        assert_eq!(m.check_integrity(PASSWORD), Ok(()));
    }
}

#[test]
fn builder_reproduces_rfc5769_vectors() {
    let mut b = MessageBuilder::new(Class::Request, BINDING, &TID);
    b.pad = b' ';
    b.software("STUN test client")
        .priority(0x6e00_01ff)
        .ice_controlled(0x932f_f9b1_5126_3b36)
        .username("evtj:h6vY")
        .integrity(PASSWORD);
    assert_eq!(b.fingerprint(), sample_request());

    for (bytes, addr) in [
        (sample_v4_response(), "192.0.2.1:32853"),
        (
            sample_v6_response(),
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        ),
    ] {
        let mut b = MessageBuilder::new(Class::Success, BINDING, &TID);
        b.pad = b' ';
        b.software("test vector")
            .xor_mapped_address(addr.parse().expect("address"))
            .integrity(PASSWORD);
        assert_eq!(b.fingerprint(), bytes);
    }
}

#[test]
fn a_flipped_bit_fails_fingerprint_and_integrity() {
    let good = sample_request();
    // A bit in the SOFTWARE value: covered by both.
    let mut bad = good.clone();
    bad[25] ^= 0x01;
    let m = Message::parse(&bad).expect("still parses");
    assert_eq!(m.check_fingerprint(true), Err(StunError::BadFingerprint));
    assert_eq!(m.check_integrity(PASSWORD), Err(StunError::BadIntegrity));
    // The FINGERPRINT value itself.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x80;
    let m = Message::parse(&bad).expect("still parses");
    assert_eq!(m.check_fingerprint(true), Err(StunError::BadFingerprint));
    assert_eq!(m.check_integrity(PASSWORD), Ok(()));
}

#[test]
fn missing_checks_are_reported() {
    let mut b = MessageBuilder::new(Class::Request, BINDING, &TID);
    b.username("a:b");
    let bytes = b.finish();
    let m = Message::parse(&bytes).expect("parses");
    assert_eq!(m.check_fingerprint(false), Ok(()));
    assert_eq!(
        m.check_fingerprint(true),
        Err(StunError::MissingFingerprint)
    );
    assert_eq!(m.check_integrity(b"x"), Err(StunError::MissingIntegrity));
}

#[test]
fn error_codes_and_unknown_attributes_round_trip() {
    let mut b = MessageBuilder::new(Class::Error, BINDING, &TID);
    b.error_code(ERROR_ROLE_CONFLICT, "Role Conflict")
        .attribute(0x7777, b"x")
        .attribute(0x0003, b"")
        .attribute(0x8fff, b"ignored: optional")
        .unknown_attributes(&[0x7777]);
    let bytes = b.fingerprint();
    let m = Message::parse(&bytes).expect("parses");
    assert_eq!(m.class(), Class::Error);
    assert_eq!(m.error_code(), Some(487));
    assert_eq!(m.error_reason(), b"Role Conflict");
    assert_eq!(m.unknown_required(), &[0x7777, 0x0003]);
    assert_eq!(m.check_fingerprint(true), Ok(()));
}

#[test]
fn message_types_interleave_class_bits() {
    for (class, t) in [
        (Class::Request, 0x0001u16),
        (Class::Indication, 0x0011),
        (Class::Success, 0x0101),
        (Class::Error, 0x0111),
    ] {
        let bytes = MessageBuilder::new(class, BINDING, &TID).finish();
        assert_eq!(u16::from_be_bytes([bytes[0], bytes[1]]), t);
        let m = Message::parse(&bytes).expect("parses");
        assert_eq!((m.class(), m.method()), (class, BINDING));
    }
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let good = sample_request();
    assert_eq!(Message::parse(&good[..19]).err(), Some(StunError::TooShort));
    assert_eq!(
        Message::parse(&good[..100]).err(),
        Some(StunError::BadLength)
    );
    let mut bad = good.clone();
    bad[4] = 0;
    assert_eq!(Message::parse(&bad).err(), Some(StunError::NotStun));
    let mut bad = good.clone();
    bad[0] = 0x80;
    assert_eq!(Message::parse(&bad).err(), Some(StunError::NotStun));
    // USERNAME claims 200 bytes.
    let mut bad = good.clone();
    bad[63] = 200;
    assert_eq!(
        Message::parse(&bad).err(),
        Some(StunError::TruncatedAttribute)
    );
    // An attribute after FINGERPRINT.
    let mut bad = good.clone();
    bad.extend_from_slice(&[0x80, 0x22, 0, 0]);
    bad[3] += 4;
    assert_eq!(
        Message::parse(&bad).err(),
        Some(StunError::FingerprintNotLast)
    );
    // PRIORITY of the wrong size.
    let mut b = MessageBuilder::new(Class::Request, BINDING, &TID);
    b.attribute(AttrType::PRIORITY, &[1, 2]);
    assert_eq!(
        Message::parse(&b.finish()).err(),
        Some(StunError::BadAttribute(AttrType::PRIORITY))
    );
    // Too many attributes.
    let mut b = MessageBuilder::new(Class::Request, BINDING, &TID);
    for _ in 0..=MAX_ATTRIBUTES {
        b.attribute(AttrType::SOFTWARE, b"");
    }
    assert_eq!(
        Message::parse(&b.finish()).err(),
        Some(StunError::TooManyAttributes)
    );
    assert_eq!(
        Message::parse(&vec![0u8; MAX_MESSAGE_LEN + 1]).err(),
        Some(StunError::TooLong)
    );
    // Every truncation and every single-byte corruption of a good message.
    for n in 0..good.len() {
        let _ = Message::parse(&good[..n]);
        for bit in 0..8 {
            let mut b = good.clone();
            b[n] ^= 1 << bit;
            if let Ok(m) = Message::parse(&b) {
                let _ = (m.xor_mapped_address(), m.check_fingerprint(true));
                let _ = m.check_integrity(PASSWORD);
            }
        }
    }
}
