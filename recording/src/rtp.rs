//! A checked view of an RTP header (RFC 3550). Untrusted bytes never panic here.

use thiserror::Error;

/// Why a UDP payload is not an RTP packet we can use.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RtpError {
    /// shorter than the fixed 12-byte header
    #[error("packet shorter than an RTP header")]
    Short,
    /// the version bits are not 2
    #[error("not RTP version 2")]
    Version,
    /// CSRC list, extension or padding run past the end
    #[error("RTP header fields run past the end of the packet")]
    Length,
}

/// The fields the recorder needs, and the payload without header, extension and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses `data`. RTCP sharing the port also parses; callers filter it with [`Self::looks_like_rtcp`].
    pub fn parse(data: &'a [u8]) -> Result<Self, RtpError> {
        let head = data.get(..12).ok_or(RtpError::Short)?;
        if head[0] >> 6 != 2 {
            return Err(RtpError::Version);
        }
        let padding = head[0] & 0x20 != 0;
        let extension = head[0] & 0x10 != 0;
        let csrc = usize::from(head[0] & 0x0f);
        let mut start = 12 + 4 * csrc;
        if extension {
            let ext = data.get(start..start + 4).ok_or(RtpError::Length)?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            start += 4 + 4 * words;
        }
        let mut end = data.len();
        if padding {
            let pad = usize::from(*data.last().ok_or(RtpError::Length)?);
            end = end.checked_sub(pad).ok_or(RtpError::Length)?;
        }
        let payload = data.get(start..end).ok_or(RtpError::Length)?;
        Ok(RtpPacket {
            payload_type: head[1] & 0x7f,
            marker: head[1] & 0x80 != 0,
            seq: u16::from_be_bytes([head[2], head[3]]),
            timestamp: u32::from_be_bytes([head[4], head[5], head[6], head[7]]),
            ssrc: u32::from_be_bytes([head[8], head[9], head[10], head[11]]),
            payload,
        })
    }

    /// True for the payload types RTCP uses when it shares the port (RFC 5761).
    pub fn looks_like_rtcp(&self) -> bool {
        (72..=79).contains(&self.payload_type)
    }
}

/// Builds a plain RTP packet (no CSRC, extension or padding); for tools and tests.
pub fn build(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + payload.len());
    v.push(0x80);
    v.push((pt & 0x7f) | if marker { 0x80 } else { 0 });
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v.extend_from_slice(&ssrc.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = build(8, true, 65535, 0xdead_beef, 0x1234_5678, &[1, 2, 3]);
        let r = RtpPacket::parse(&p).unwrap();
        assert_eq!(r.payload_type, 8);
        assert!(r.marker);
        assert_eq!(r.seq, 65535);
        assert_eq!(r.timestamp, 0xdead_beef);
        assert_eq!(r.ssrc, 0x1234_5678);
        assert_eq!(r.payload, &[1, 2, 3]);
    }

    #[test]
    fn csrc_extension_padding() {
        let mut p = vec![0x80 | 0x20 | 0x10 | 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 7, 7, 7, 7]); // extension, one word
        p.extend_from_slice(&[0xaa, 0xbb]); // payload
        p.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let r = RtpPacket::parse(&p).unwrap();
        assert_eq!(r.payload, &[0xaa, 0xbb]);
    }

    #[test]
    fn bad_input() {
        assert_eq!(RtpPacket::parse(&[0x80; 5]), Err(RtpError::Short));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::Version));
        let mut p = build(0, false, 1, 1, 1, &[]);
        p[0] |= 0x0f;
        assert_eq!(RtpPacket::parse(&p), Err(RtpError::Length));
        let mut p = build(0, false, 1, 1, 1, &[200]);
        p[0] |= 0x20;
        assert_eq!(RtpPacket::parse(&p), Err(RtpError::Length));
    }
}
