//! Which protocol a UDP payload on a media port carries, by its first byte (RFC 7983 §7).
//!
//! One media port receives STUN (ICE checks), DTLS (the DTLS-SRTP handshake), ZRTP, TURN
//! channel data and RTP/RTCP (plain or SRTP). RFC 7983 splits the first byte's value space so
//! that one comparison routes a packet; nothing past the first byte is looked at here, so a
//! caller still validates the packet with the matching parser (`wire::rtp`, `wire::dtls`, STUN).

/// The protocol family a first byte belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Demux {
    /// 0..=3: STUN (RFC 8489; ICE connectivity checks).
    Stun,
    /// 16..=19: ZRTP (RFC 6189).
    Zrtp,
    /// 20..=63: DTLS (RFC 6347/9147 records; the DTLS-SRTP handshake).
    Dtls,
    /// 64..=79: TURN channel data (RFC 8656).
    TurnChannel,
    /// 128..=191: RTP or RTCP, plain or SRTP/SRTCP (version 2 in the top two bits).
    Rtp,
    /// Anything else (including an empty payload): no protocol RFC 7983 assigns.
    Unknown,
}

/// Classify a UDP payload by its first byte.
pub fn classify(payload: &[u8]) -> Demux {
    match payload.first() {
        Some(&b) => classify_byte(b),
        None => Demux::Unknown,
    }
}

/// Classify one first byte (the table of RFC 7983 §7).
pub const fn classify_byte(b: u8) -> Demux {
    match b {
        0..=3 => Demux::Stun,
        16..=19 => Demux::Zrtp,
        20..=63 => Demux::Dtls,
        64..=79 => Demux::TurnChannel,
        128..=191 => Demux::Rtp,
        _ => Demux::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_first_byte_has_the_rfc7983_class() {
        for b in 0..=255u8 {
            let want = if b <= 3 {
                Demux::Stun
            } else if (16..=19).contains(&b) {
                Demux::Zrtp
            } else if (20..=63).contains(&b) {
                Demux::Dtls
            } else if (64..=79).contains(&b) {
                Demux::TurnChannel
            } else if (128..=191).contains(&b) {
                Demux::Rtp
            } else {
                Demux::Unknown
            };
            assert_eq!(classify(&[b, 0, 0]), want, "first byte {b}");
        }
    }

    #[test]
    fn boundaries_and_real_packets() {
        assert_eq!(classify(&[]), Demux::Unknown);
        assert_eq!(classify_byte(3), Demux::Stun);
        assert_eq!(classify_byte(4), Demux::Unknown);
        assert_eq!(classify_byte(15), Demux::Unknown);
        assert_eq!(classify_byte(19), Demux::Zrtp);
        assert_eq!(classify_byte(63), Demux::Dtls);
        assert_eq!(classify_byte(79), Demux::TurnChannel);
        assert_eq!(classify_byte(80), Demux::Unknown);
        assert_eq!(classify_byte(127), Demux::Unknown);
        assert_eq!(classify_byte(192), Demux::Unknown);
        // A STUN Binding request (type 0x0001), a DTLS handshake record (content type 22),
        // an RTP packet (V=2, no padding/extension/CSRC), an RTCP SR (V=2, PT 200).
        assert_eq!(classify(&[0x00, 0x01, 0x00, 0x00]), Demux::Stun);
        assert_eq!(classify(&[22, 0xfe, 0xfd]), Demux::Dtls);
        assert_eq!(classify(&[0x80, 0x00]), Demux::Rtp);
        assert_eq!(classify(&[0x81, 200]), Demux::Rtp);
    }
}
