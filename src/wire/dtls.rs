//! DTLS record framing (RFC 6347 §4.1): a walk over the records of one datagram.
//!
//! The relay does not decrypt records here (that is the DTLS endpoint's job, `crate::dtls`);
//! it needs the framing to tell a handshake from application data or an alert, to see whether
//! a datagram starts a new handshake (a ClientHello in epoch 0) before it creates any state for
//! it, and to count junk. Every header field is read from a range proven in bounds, and the walk
//! ends at the first record whose length runs past the datagram, so a hostile datagram costs at
//! most one pass over its bytes.

use super::WireError;

/// Byte ranges of the DTLS 1.0/1.2 record header.
pub mod field {
    use std::ops::Range;
    pub const CONTENT_TYPE: usize = 0;
    pub const VERSION: Range<usize> = 1..3;
    pub const EPOCH: Range<usize> = 3..5;
    /// 48-bit record sequence number.
    pub const SEQUENCE: Range<usize> = 5..11;
    pub const LENGTH: Range<usize> = 11..13;
    /// Length of the record header.
    pub const HEADER_LEN: usize = 13;
    /// Length of a handshake message header inside a handshake record (RFC 6347 §4.2.2):
    /// type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3).
    pub const HANDSHAKE_HEADER_LEN: usize = 12;
}

/// Largest record fragment a DTLS 1.2 peer may send (2^14 plus the 2048 bytes of expansion a
/// ciphertext may add, RFC 5246 §6.2.3).
pub const MAX_FRAGMENT_LEN: usize = (1 << 14) + 2048;

/// Record content types (RFC 5246 §6.2.1, RFC 6347).
pub mod content_type {
    pub const CHANGE_CIPHER_SPEC: u8 = 20;
    pub const ALERT: u8 = 21;
    pub const HANDSHAKE: u8 = 22;
    pub const APPLICATION_DATA: u8 = 23;
}

/// Handshake message type of a ClientHello (RFC 5246 §7.4).
pub const CLIENT_HELLO: u8 = 1;

/// One record of a datagram: its header fields and its (possibly encrypted) fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub content_type: u8,
    /// Wire version: 0xfeff for DTLS 1.0, 0xfefd for DTLS 1.2.
    pub version: u16,
    pub epoch: u16,
    /// 48-bit sequence number.
    pub sequence: u64,
    pub fragment: &'a [u8],
}

impl<'a> Record<'a> {
    /// Parse the record at the start of `buf`; returns it and the bytes after it.
    pub fn parse(buf: &'a [u8]) -> Result<(Record<'a>, &'a [u8]), WireError> {
        let hdr = buf.get(..field::HEADER_LEN).ok_or(WireError::Truncated)?;
        let content_type = hdr[field::CONTENT_TYPE];
        if !(content_type::CHANGE_CIPHER_SPEC..=63).contains(&content_type) {
            // RFC 7983 gives DTLS the first bytes 20..=63; anything else is not a record.
            return Err(WireError::Malformed);
        }
        let version = u16::from_be_bytes([hdr[1], hdr[2]]);
        if version >> 8 != 0xfe {
            // DTLS versions are the one's complement of (1, x): 0xfeff, 0xfefd, 0xfefc.
            return Err(WireError::BadVersion);
        }
        let epoch = u16::from_be_bytes([hdr[3], hdr[4]]);
        let mut seq = [0u8; 8];
        seq[2..].copy_from_slice(&hdr[field::SEQUENCE]);
        let len = usize::from(u16::from_be_bytes([hdr[11], hdr[12]]));
        if len > MAX_FRAGMENT_LEN {
            return Err(WireError::Malformed);
        }
        let end = field::HEADER_LEN + len;
        let fragment = buf
            .get(field::HEADER_LEN..end)
            .ok_or(WireError::Truncated)?;
        let rest = buf.get(end..).ok_or(WireError::Truncated)?;
        Ok((
            Record {
                content_type,
                version,
                epoch,
                sequence: u64::from_be_bytes(seq),
                fragment,
            },
            rest,
        ))
    }

    /// The handshake message type, for a plaintext (epoch 0) handshake record.
    pub fn handshake_type(&self) -> Option<u8> {
        if self.content_type != content_type::HANDSHAKE || self.epoch != 0 {
            return None;
        }
        if self.fragment.len() < field::HANDSHAKE_HEADER_LEN {
            return None;
        }
        self.fragment.first().copied()
    }
}

/// Iterator over the records of one datagram. Yields `Err` once (then stops) when the bytes
/// after the last good record are not a whole record.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Walk the records of `datagram`.
pub fn records(datagram: &[u8]) -> Records<'_> {
    Records {
        rest: datagram,
        failed: false,
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match Record::parse(self.rest) {
            Ok((rec, rest)) => {
                self.rest = rest;
                Some(Ok(rec))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Whether the datagram is well framed from end to end (every byte belongs to a record).
pub fn is_well_framed(datagram: &[u8]) -> bool {
    !datagram.is_empty() && records(datagram).all(|r| r.is_ok())
}

/// Whether the datagram's first record is a plaintext ClientHello: the only DTLS datagram that
/// may make a passive endpoint start a handshake.
pub fn starts_with_client_hello(datagram: &[u8]) -> bool {
    matches!(records(datagram).next(), Some(Ok(r)) if r.handshake_type() == Some(CLIENT_HELLO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ct: u8, epoch: u16, seq: u64, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ct, 0xfe, 0xfd];
        v.extend_from_slice(&epoch.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes()[2..]);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn walks_several_records() {
        let mut hello = vec![CLIENT_HELLO, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4];
        hello.extend_from_slice(&[1, 2, 3, 4]);
        let mut d = record(content_type::HANDSHAKE, 0, 7, &hello);
        d.extend(record(content_type::CHANGE_CIPHER_SPEC, 0, 8, &[1]));
        d.extend(record(
            content_type::HANDSHAKE,
            1,
            0x0000_0102_0304_0506,
            &[9; 40],
        ));
        let recs: Vec<_> = records(&d).collect::<Result<_, _>>().expect("well framed");
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].sequence, 7);
        assert_eq!(recs[0].handshake_type(), Some(CLIENT_HELLO));
        assert_eq!(recs[1].content_type, content_type::CHANGE_CIPHER_SPEC);
        assert_eq!(recs[1].fragment, &[1]);
        assert_eq!(recs[2].epoch, 1);
        assert_eq!(recs[2].sequence, 0x0102_0304_0506);
        // Encrypted (epoch 1) handshake records have no readable message type.
        assert_eq!(recs[2].handshake_type(), None);
        assert!(is_well_framed(&d));
        assert!(starts_with_client_hello(&d));
    }

    #[test]
    fn refuses_truncation_and_bad_headers() {
        let good = record(content_type::APPLICATION_DATA, 1, 1, &[0; 20]);
        for cut in 0..good.len() {
            assert!(!is_well_framed(&good[..cut]), "cut at {cut}");
        }
        let mut bad_version = good.clone();
        bad_version[1] = 0x03;
        assert_eq!(
            Record::parse(&bad_version).unwrap_err(),
            WireError::BadVersion
        );
        let mut bad_type = good.clone();
        bad_type[0] = 0x80;
        assert_eq!(Record::parse(&bad_type).unwrap_err(), WireError::Malformed);
        // Trailing junk after a good record: the walk yields the record, then one error, then stops.
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[23, 0xfe]);
        let mut it = records(&trailing);
        assert!(matches!(it.next(), Some(Ok(_))));
        assert_eq!(it.next(), Some(Err(WireError::Truncated)));
        assert_eq!(it.next(), None);
        assert!(!starts_with_client_hello(&good));
    }
}
