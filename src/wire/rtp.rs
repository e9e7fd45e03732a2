//! RTP packet view (RFC 3550 §5.1).

use super::WireError;

/// Byte ranges of the fixed header.
pub mod field {
    use std::ops::Range;
    /// V(2) P(1) X(1) CC(4).
    pub const VPXCC: usize = 0;
    /// M(1) PT(7).
    pub const MPT: usize = 1;
    pub const SEQUENCE: Range<usize> = 2..4;
    pub const TIMESTAMP: Range<usize> = 4..8;
    pub const SSRC: Range<usize> = 8..12;
    /// Start of the CSRC list; each entry is 4 bytes.
    pub const CSRC: usize = 12;
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 12;
}

/// A read-only view of an RTP packet whose header, CSRC list and extension fit in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    buf: &'a [u8],
    /// Offset of the payload (after CSRCs and extension).
    payload_start: usize,
    /// Number of padding bytes at the end (0 unless P is set).
    padding: usize,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl<'a> Packet<'a> {
    /// Validate the header, CSRC list, extension and padding.
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut p = Self::new_checked_header(buf)?;
        if buf.get(field::VPXCC).is_some_and(|b| b & 0x20 != 0) {
            let pad = usize::from(*buf.last().ok_or(WireError::Truncated)?);
            if pad == 0 || p.payload_start + pad > buf.len() {
                return Err(WireError::Malformed);
            }
            p.padding = pad;
        }
        Ok(p)
    }

    /// Validate the header, CSRC list and extension, but not the padding count.
    ///
    /// SRTP puts the authentication tag after the padding, so the last byte is not the padding
    /// count there; a relay that only forwards uses this check.
    pub fn new_checked_header(buf: &'a [u8]) -> Result<Self, WireError> {
        let first = *buf.first().ok_or(WireError::Truncated)?;
        if buf.len() < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if first >> 6 != 2 {
            return Err(WireError::BadVersion);
        }
        let mut off = field::CSRC + 4 * usize::from(first & 0x0f);
        if first & 0x10 != 0 {
            // Extension header: 16-bit profile, 16-bit length in 32-bit words.
            let words = be16(buf, off + 2).ok_or(WireError::Truncated)?;
            off += 4 + 4 * usize::from(words);
        }
        if off > buf.len() {
            return Err(WireError::Truncated);
        }
        Ok(Packet {
            buf,
            payload_start: off,
            padding: 0,
        })
    }

    fn byte(&self, at: usize) -> u8 {
        self.buf.get(at).copied().unwrap_or(0)
    }

    pub fn version(&self) -> u8 {
        self.byte(field::VPXCC) >> 6
    }
    pub fn padding(&self) -> bool {
        self.byte(field::VPXCC) & 0x20 != 0
    }
    pub fn extension(&self) -> bool {
        self.byte(field::VPXCC) & 0x10 != 0
    }
    pub fn csrc_count(&self) -> u8 {
        self.byte(field::VPXCC) & 0x0f
    }
    pub fn marker(&self) -> bool {
        self.byte(field::MPT) & 0x80 != 0
    }
    pub fn payload_type(&self) -> u8 {
        self.byte(field::MPT) & 0x7f
    }
    pub fn sequence(&self) -> u16 {
        be16(self.buf, field::SEQUENCE.start).unwrap_or(0)
    }
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, field::TIMESTAMP.start).unwrap_or(0)
    }
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, field::SSRC.start).unwrap_or(0)
    }
    /// The `i`th contributing source, if present.
    pub fn csrc(&self, i: usize) -> Option<u32> {
        if i >= usize::from(self.csrc_count()) {
            return None;
        }
        be32(self.buf, field::CSRC + 4 * i)
    }
    /// Header length including CSRCs and extension.
    pub fn header_len(&self) -> usize {
        self.payload_start
    }
    /// The payload, without padding (when the padding was validated).
    pub fn payload(&self) -> &'a [u8] {
        let end = self.buf.len().saturating_sub(self.padding);
        self.buf.get(self.payload_start..end).unwrap_or(&[])
    }
    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCMU packet as a softphone sends it: PT 0, seq 1000, ts 3000, SSRC 0x1234, 160 bytes.
    fn pcmu() -> Vec<u8> {
        let mut v = vec![
            0x80, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x0b, 0xb8, 0x00, 0x00, 0x12, 0x34,
        ];
        v.extend([0xffu8; 160]);
        v
    }

    #[test]
    fn parses_plain_packet() {
        let b = pcmu();
        let p = Packet::new_checked(&b).expect("valid");
        assert_eq!(p.version(), 2);
        assert!(!p.padding());
        assert!(!p.extension());
        assert_eq!(p.csrc_count(), 0);
        assert!(!p.marker());
        assert_eq!(p.payload_type(), 0);
        assert_eq!(p.sequence(), 1000);
        assert_eq!(p.timestamp(), 3000);
        assert_eq!(p.ssrc(), 0x1234);
        assert_eq!(p.payload().len(), 160);
        assert_eq!(p.header_len(), 12);
    }

    #[test]
    fn marker_and_dynamic_pt() {
        let mut b = pcmu();
        b[1] = 0x80 | 101; // telephone-event with marker
        let p = Packet::new_checked(&b).expect("valid");
        assert!(p.marker());
        assert_eq!(p.payload_type(), 101);
    }

    #[test]
    fn csrc_extension_and_padding() {
        // V=2 P=1 X=1 CC=2
        let mut b = vec![0xb2, 0x08, 0, 1, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef];
        b.extend([0, 0, 0, 0x11, 0, 0, 0, 0x22]); // CSRCs
        b.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one-byte-header extension, 1 word
        b.extend([9, 9, 9, 9]); // payload
        b.extend([0, 0, 3]); // 3 bytes padding
        let p = Packet::new_checked(&b).expect("valid");
        assert_eq!(p.csrc_count(), 2);
        assert_eq!(p.csrc(0), Some(0x11));
        assert_eq!(p.csrc(1), Some(0x22));
        assert_eq!(p.csrc(2), None);
        assert!(p.extension());
        assert!(p.padding());
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.payload(), &[9, 9, 9, 9]);
        assert_eq!(p.ssrc(), 0xdeadbeef);
    }

    #[test]
    fn rejects_runts_and_garbage() {
        let b = pcmu();
        for n in 0..12 {
            assert_eq!(
                Packet::new_checked(&b[..n]).err(),
                Some(WireError::Truncated),
                "len {n}"
            );
        }
        let mut v1 = pcmu();
        v1[0] = 0x40;
        assert_eq!(Packet::new_checked(&v1).err(), Some(WireError::BadVersion));
        // CC=15 needs 72 header bytes.
        let mut cc = pcmu();
        cc[0] = 0x8f;
        assert!(Packet::new_checked(&cc[..40]).is_err());
        // Extension length pointing past the end.
        let mut x = pcmu()[..16].to_vec();
        x[0] = 0x90;
        x[14] = 0xff;
        assert_eq!(Packet::new_checked(&x).err(), Some(WireError::Truncated));
        // Padding count 0 or larger than the payload.
        let mut p0 = pcmu();
        p0[0] = 0xa0;
        *p0.last_mut().expect("non-empty") = 0;
        assert_eq!(Packet::new_checked(&p0).err(), Some(WireError::Malformed));
        let mut big = pcmu()[..14].to_vec();
        big[0] = 0xa0;
        big[13] = 200;
        assert_eq!(Packet::new_checked(&big).err(), Some(WireError::Malformed));
        // ...but the header-only check accepts it (SRTP tag after the padding).
        assert!(Packet::new_checked_header(&big).is_ok());
    }

    #[test]
    fn never_panics_on_any_short_input() {
        // Exhaustive over 3-byte prefixes of a 13-byte buffer with fuzz-ish tails.
        let mut buf = [0u8; 24];
        for a in 0..=255u8 {
            for len in 0..buf.len() {
                buf[0] = a;
                buf[1] = a.wrapping_mul(7);
                buf[len.saturating_sub(1)] = a;
                if let Ok(p) = Packet::new_checked(&buf[..len]) {
                    let _ = (p.payload(), p.csrc(3), p.sequence(), p.ssrc());
                }
            }
        }
    }
}
