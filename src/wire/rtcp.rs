//! RTCP compound packet view (RFC 3550 §6) and RTP/RTCP demultiplexing (RFC 5761 §4).

use super::WireError;

/// Byte ranges of the common RTCP header.
pub mod field {
    use std::ops::Range;
    /// V(2) P(1) count(5).
    pub const VPC: usize = 0;
    pub const PT: usize = 1;
    /// Length in 32-bit words, minus one.
    pub const LENGTH: Range<usize> = 2..4;
    /// Sender SSRC (SR, RR, SDES first chunk, BYE first source, APP, feedback).
    pub const SSRC: Range<usize> = 4..8;
    pub const HEADER_LEN: usize = 4;
}

/// Packet types the first packet of a compound may carry: SR (200) through IDMS (211).
pub const FIRST_PT: std::ops::RangeInclusive<u8> = 200..=211;
/// The second-byte range RFC 5761 reserves for RTCP when RTP and RTCP share a port.
pub const MUX_RANGE: std::ops::RangeInclusive<u8> = 192..=223;

/// Is this datagram RTCP rather than RTP, on a port that carries both (RFC 5761 §4)?
///
/// RTP payload types 64-95 would collide with this range, which is why RFC 5761 forbids them
/// on muxed sessions.
pub fn is_rtcp(buf: &[u8]) -> bool {
    match (buf.first(), buf.get(field::PT)) {
        (Some(b0), Some(pt)) => buf.len() >= 8 && b0 >> 6 == 2 && MUX_RANGE.contains(pt),
        _ => false,
    }
}

/// One packet inside a compound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub packet_type: u8,
    /// The report/source count (low 5 bits of the first byte).
    pub count: u8,
    /// Total length of this packet in bytes, header included.
    pub len: usize,
    /// The first SSRC, when the packet is long enough to carry one.
    pub ssrc: Option<u32>,
}

/// Parse the header of the packet at the start of `buf`, checking its length fits.
fn header(buf: &[u8]) -> Result<Header, WireError> {
    let (b0, pt) = match (buf.first(), buf.get(field::PT)) {
        (Some(b0), Some(pt)) => (*b0, *pt),
        _ => return Err(WireError::Truncated),
    };
    let words = match buf.get(field::LENGTH) {
        Some(&[h, l]) => u16::from_be_bytes([h, l]),
        _ => return Err(WireError::Truncated),
    };
    if b0 >> 6 != 2 {
        return Err(WireError::BadVersion);
    }
    if !MUX_RANGE.contains(&pt) {
        return Err(WireError::Malformed);
    }
    let len = (usize::from(words) + 1) * 4;
    if len > buf.len() {
        return Err(WireError::Truncated);
    }
    let ssrc = match buf.get(field::SSRC) {
        Some(&[a, b, c, d]) if len >= 8 => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    };
    Ok(Header {
        packet_type: pt,
        count: b0 & 0x1f,
        len,
        ssrc,
    })
}

/// A read-only view of an RTCP compound packet whose first packet is well formed.
///
/// Only the first packet is checked up front: SRTCP appends an index and an authentication tag
/// after the compound, and a relay must still forward it. [`Packet::iter`] walks the rest and
/// stops at the first thing that is not an RTCP header.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
    first: Header,
}

impl<'a> Packet<'a> {
    /// Validate the first packet: version 2, a known type (200-211), its length inside the buffer.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let first = header(buf)?;
        if !FIRST_PT.contains(&first.packet_type) {
            return Err(WireError::Malformed);
        }
        Ok(Packet { buf, first })
    }

    /// The first packet's header.
    pub fn first(&self) -> Header {
        self.first
    }

    /// Sender SSRC of the first packet.
    pub fn ssrc(&self) -> Option<u32> {
        self.first.ssrc
    }

    /// The packets of the compound, in order. A malformed packet yields one `Err` and ends it.
    pub fn iter(&self) -> Iter<'a> {
        Iter {
            rest: self.buf,
            done: false,
        }
    }

    /// True when the packets' lengths add up to exactly the buffer (plain, unencrypted RTCP).
    pub fn is_exact_compound(&self) -> bool {
        let mut total = 0usize;
        for h in self.iter() {
            match h {
                Ok(h) => total += h.len,
                Err(_) => return false,
            }
        }
        total == self.buf.len()
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// Iterator over the packets of a compound.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Header, WireError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        match header(self.rest) {
            Ok(h) => {
                self.rest = self.rest.get(h.len..).unwrap_or(&[]);
                Some(Ok(h))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RR with one report block (32 bytes) + SDES with a CNAME chunk (20 bytes), like a phone
    /// sends every few seconds.
    fn rr_sdes() -> Vec<u8> {
        let mut v = vec![0x81, 201, 0, 7, 0x12, 0x34, 0x56, 0x78];
        v.extend([
            0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 5,
        ]);
        v.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        v.extend([0x81, 202, 0, 4, 0x12, 0x34, 0x56, 0x78]);
        v.extend([1, 6, b'a', b'b', b'c', b'd', b'e', b'f', 0, 0, 0, 0]);
        v
    }

    #[test]
    fn walks_compound() {
        let b = rr_sdes();
        assert_eq!(b.len(), 52);
        let p = Packet::new_checked(&b).expect("valid");
        assert_eq!(p.ssrc(), Some(0x12345678));
        let hs: Vec<_> = p.iter().collect();
        assert_eq!(
            hs,
            vec![
                Ok(Header {
                    packet_type: 201,
                    count: 1,
                    len: 32,
                    ssrc: Some(0x12345678)
                }),
                Ok(Header {
                    packet_type: 202,
                    count: 1,
                    len: 20,
                    ssrc: Some(0x12345678)
                }),
            ]
        );
        assert!(p.is_exact_compound());
    }

    #[test]
    fn srtcp_trailer_is_tolerated_but_not_exact() {
        let mut b = rr_sdes();
        b.extend([0x80, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]); // E|index + 80-bit tag
        let p = Packet::new_checked(&b).expect("first packet is fine");
        let hs: Vec<_> = p.iter().collect();
        assert_eq!(hs.len(), 3);
        assert!(hs[2].is_err());
        assert!(!p.is_exact_compound());
    }

    #[test]
    fn rejects_runts_and_garbage() {
        let b = rr_sdes();
        for n in 0..32 {
            assert!(Packet::new_checked(&b[..n]).is_err(), "len {n}");
        }
        let mut bad_pt = rr_sdes();
        bad_pt[1] = 195; // in the mux range, but not a valid first packet
        assert_eq!(
            Packet::new_checked(&bad_pt).err(),
            Some(WireError::Malformed)
        );
        let mut v1 = rr_sdes();
        v1[0] = 0x41;
        assert_eq!(Packet::new_checked(&v1).err(), Some(WireError::BadVersion));
        assert!(Packet::new_checked(b"hello world, not rtcp").is_err());
    }

    #[test]
    fn demux_per_rfc5761() {
        assert!(is_rtcp(&rr_sdes()));
        let mut sr = rr_sdes();
        sr[1] = 200;
        assert!(is_rtcp(&sr));
        // RTP PCMU, and RTP with marker + PT 8: 0x88 = 136, outside 192-223.
        let rtp = [0x80, 0x00, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        assert!(!is_rtcp(&rtp));
        let rtp_m = [0x80, 0x88, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        assert!(!is_rtcp(&rtp_m));
        // Boundaries of the range.
        for (pt, want) in [(191u8, false), (192, true), (223, true), (224, false)] {
            let b = [0x80, pt, 0, 1, 0, 0, 0, 1];
            assert_eq!(is_rtcp(&b), want, "pt {pt}");
        }
        assert!(!is_rtcp(&[0x80, 200]));
        assert!(!is_rtcp(&[]));
        assert!(!is_rtcp(&[0x00, 200, 0, 1, 0, 0, 0, 1]));
    }

    #[test]
    fn never_panics() {
        let mut buf = [0u8; 16];
        for a in 0..=255u8 {
            buf[0] = 0x80 | (a & 0x3f);
            buf[1] = a;
            buf[3] = a >> 4;
            for len in 0..=buf.len() {
                if let Ok(p) = Packet::new_checked(&buf[..len]) {
                    let n = p.iter().take(10).count();
                    assert!(n >= 1);
                }
                let _ = is_rtcp(&buf[..len]);
            }
        }
    }
}
