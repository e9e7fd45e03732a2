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

/// The reception figures of one report block (RFC 3550 §6.4.1), as an SR or RR carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source the block is about.
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, in 1/256 units.
    pub fraction_lost: u8,
    /// Packets lost since reception began (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in RTP timestamp units.
    pub jitter: u32,
}

/// Report block layout: fixed sizes from RFC 3550 §6.4.
const REPORT_BLOCK_LEN: usize = 24;
const SENDER_INFO_LEN: usize = 20;
const PT_SR: u8 = 200;
const PT_RR: u8 = 201;

impl Packet<'_> {
    /// The first report block of the first SR or RR in the compound, if any. Only plain RTCP
    /// is read: with SRTCP the blocks are encrypted, and the compound is not exact.
    pub fn first_report_block(&self) -> Option<ReportBlock> {
        if !self.is_exact_compound() {
            return None;
        }
        let mut at = 0usize;
        for h in self.iter() {
            let h = h.ok()?;
            let blocks_at = match h.packet_type {
                PT_SR => 8 + SENDER_INFO_LEN,
                PT_RR => 8,
                _ => {
                    at += h.len;
                    continue;
                }
            };
            if h.count == 0 {
                at += h.len;
                continue;
            }
            let start = at + blocks_at;
            let b = self.buf.get(start..start + REPORT_BLOCK_LEN)?;
            if start + REPORT_BLOCK_LEN > at + h.len {
                return None;
            }
            let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            // Sign-extend the 24-bit count.
            let lost = (u32::from_be_bytes([b[5], b[6], b[7], 0]) as i32) >> 8;
            return Some(ReportBlock {
                ssrc: word(0),
                fraction_lost: b[4],
                cumulative_lost: lost,
                highest_seq: word(8),
                jitter: word(12),
            });
        }
        None
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

    #[test]
    fn reads_the_first_report_block() {
        let b = rr_sdes();
        let p = Packet::new_checked(&b).expect("valid");
        let rb = p.first_report_block().expect("an RR block");
        assert_eq!(rb.ssrc, 0xcafebabe);
        assert_eq!(rb.fraction_lost, 0);
        assert_eq!(rb.cumulative_lost, 0);
        assert_eq!(rb.highest_seq, 1000);
        assert_eq!(rb.jitter, 5);
        // An SR: sender info first, then the block; negative cumulative loss is sign-extended.
        let mut sr = vec![0x81, 200, 0, 12, 0, 0, 0, 9];
        sr.extend([0u8; 20]);
        sr.extend([0, 0, 0, 7, 64, 0xff, 0xff, 0xfe, 0, 0, 0, 50, 0, 0, 0, 80]);
        sr.extend([0u8; 8]);
        let rb = Packet::new_checked(&sr)
            .expect("valid")
            .first_report_block()
            .expect("an SR block");
        assert_eq!((rb.ssrc, rb.fraction_lost, rb.cumulative_lost), (7, 64, -2));
        assert_eq!(rb.jitter, 80);
        // No block (RR count 0), or SRTCP (not an exact compound): nothing.
        let empty = [0x80, 201, 0, 1, 0, 0, 0, 1];
        assert_eq!(
            Packet::new_checked(&empty).unwrap().first_report_block(),
            None
        );
        let mut srtcp = rr_sdes();
        srtcp.extend([0x80, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(
            Packet::new_checked(&srtcp).unwrap().first_report_block(),
            None
        );
    }
}
