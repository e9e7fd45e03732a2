//! A read-only view of one STUN message: the header, then one walk over the attributes that
//! keeps the ones ICE uses. Everything is bounds-checked; a hostile datagram is an error, never
//! a panic.

use std::net::SocketAddr;

use super::attr::{decode_xor_address, AttrType};
use super::error::StunError;
use super::integrity::{fingerprint, verify_integrity};

/// The fixed value in every RFC 5389/8489 header (bytes 4..8).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Type, length, cookie, transaction id.
pub const HEADER_LEN: usize = 20;
/// No connectivity check comes close; anything larger is dropped unread.
pub const MAX_MESSAGE_LEN: usize = 2048;
/// Attributes walked before the message is refused (a check carries about 8).
pub const MAX_ATTRIBUTES: usize = 32;
/// Unknown comprehension-required types remembered for a 420 answer.
const MAX_UNKNOWN: usize = 8;
/// The Binding method, the only one ICE uses.
pub const BINDING: u16 = 0x001;

/// The 96-bit transaction id.
pub type TransactionId = [u8; 12];

/// The message class, from bits C1 and C0 of the type (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

impl Class {
    fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }
}

/// The 16-bit message type for a class and a 12-bit method (the class bits sit at 4 and 8).
pub(crate) fn message_type(class: Class, method: u16) -> u16 {
    let m = method & 0x0fff;
    let c = class.bits();
    (m & 0x000f) | ((m & 0x0070) << 1) | ((m & 0x0f80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
}

fn split_type(t: u16) -> (Class, u16) {
    let method = (t & 0x000f) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0f80);
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    (class, method)
}

/// The cheap test a demultiplexer can run first: first byte 0..=3 (RFC 7983), a length that is
/// a multiple of 4, and the magic cookie.
pub fn looks_like_stun(bytes: &[u8]) -> bool {
    match bytes.get(..8) {
        Some(h) => {
            h[0] < 4
                && h[3] % 4 == 0
                && u32::from_be_bytes([h[4], h[5], h[6], h[7]]) == MAGIC_COOKIE
        }
        None => false,
    }
}

/// One parsed STUN message, borrowing the datagram.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    bytes: &'a [u8],
    class: Class,
    method: u16,
    transaction_id: TransactionId,
    username: Option<&'a [u8]>,
    /// Offset of the MESSAGE-INTEGRITY attribute header, and its 20-byte value.
    integrity: Option<(usize, &'a [u8])>,
    /// Offset of the FINGERPRINT attribute header, and its value.
    fingerprint: Option<(usize, u32)>,
    xor_mapped: Option<&'a [u8]>,
    priority: Option<u32>,
    use_candidate: bool,
    ice_controlling: Option<u64>,
    ice_controlled: Option<u64>,
    error_code: Option<u16>,
    error_reason: &'a [u8],
    unknown: [u16; MAX_UNKNOWN],
    unknown_len: usize,
}

fn be_u32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(*v.first_chunk::<4>()?))
}

fn exact_u32(t: u16, v: &[u8]) -> Result<u32, StunError> {
    match v.len() {
        4 => be_u32(v).ok_or(StunError::BadAttribute(t)),
        _ => Err(StunError::BadAttribute(t)),
    }
}

fn exact_u64(t: u16, v: &[u8]) -> Result<u64, StunError> {
    match v.first_chunk::<8>() {
        Some(b) if v.len() == 8 => Ok(u64::from_be_bytes(*b)),
        _ => Err(StunError::BadAttribute(t)),
    }
}

impl<'a> Message<'a> {
    /// Parses a whole datagram as one STUN message. The length field must match the datagram
    /// exactly, attributes must fit with their padding, FINGERPRINT must be last, and
    /// attributes after MESSAGE-INTEGRITY other than FINGERPRINT (and
    /// MESSAGE-INTEGRITY-SHA256) are ignored (RFC 8489 §14.5).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, StunError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(StunError::TooLong);
        }
        let header = bytes
            .first_chunk::<HEADER_LEN>()
            .ok_or(StunError::TooShort)?;
        let t = u16::from_be_bytes([header[0], header[1]]);
        let cookie = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if t & 0xc000 != 0 || cookie != MAGIC_COOKIE {
            return Err(StunError::NotStun);
        }
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if len % 4 != 0 || HEADER_LEN + len != bytes.len() {
            return Err(StunError::BadLength);
        }
        let mut transaction_id = [0u8; 12];
        transaction_id.copy_from_slice(&header[8..20]);
        let (class, method) = split_type(t);
        let mut m = Message {
            bytes,
            class,
            method,
            transaction_id,
            username: None,
            integrity: None,
            fingerprint: None,
            xor_mapped: None,
            priority: None,
            use_candidate: false,
            ice_controlling: None,
            ice_controlled: None,
            error_code: None,
            error_reason: &[],
            unknown: [0; MAX_UNKNOWN],
            unknown_len: 0,
        };
        m.walk()?;
        Ok(m)
    }

    fn walk(&mut self) -> Result<(), StunError> {
        let bytes = self.bytes;
        let mut off = HEADER_LEN;
        let mut count = 0usize;
        while off < bytes.len() {
            if self.fingerprint.is_some() {
                return Err(StunError::FingerprintNotLast);
            }
            count += 1;
            if count > MAX_ATTRIBUTES {
                return Err(StunError::TooManyAttributes);
            }
            let h = bytes
                .get(off..off + 4)
                .ok_or(StunError::TruncatedAttribute)?;
            let t = u16::from_be_bytes([h[0], h[1]]);
            let vlen = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let start = off + 4;
            let value = bytes
                .get(start..start + vlen)
                .ok_or(StunError::TruncatedAttribute)?;
            let padded = (vlen + 3) & !3;
            if start + padded > bytes.len() {
                return Err(StunError::TruncatedAttribute);
            }
            let after_integrity = self.integrity.is_some();
            match t {
                AttrType::FINGERPRINT => {
                    self.fingerprint = Some((off, exact_u32(t, value)?));
                }
                AttrType::MESSAGE_INTEGRITY if !after_integrity => {
                    if vlen != 20 {
                        return Err(StunError::BadAttribute(t));
                    }
                    self.integrity = Some((off, value));
                }
                _ if after_integrity => {}
                AttrType::USERNAME => {
                    if vlen > 513 {
                        return Err(StunError::BadAttribute(t));
                    }
                    self.username.get_or_insert(value);
                }
                AttrType::XOR_MAPPED_ADDRESS => {
                    self.xor_mapped.get_or_insert(value);
                }
                AttrType::PRIORITY => {
                    let p = exact_u32(t, value)?;
                    self.priority.get_or_insert(p);
                }
                AttrType::USE_CANDIDATE => {
                    if vlen != 0 {
                        return Err(StunError::BadAttribute(t));
                    }
                    self.use_candidate = true;
                }
                AttrType::ICE_CONTROLLING => {
                    let v = exact_u64(t, value)?;
                    self.ice_controlling.get_or_insert(v);
                }
                AttrType::ICE_CONTROLLED => {
                    let v = exact_u64(t, value)?;
                    self.ice_controlled.get_or_insert(v);
                }
                AttrType::ERROR_CODE => {
                    // Reserved 21 bits, class (3 bits, 3..=6), number (0..=99), reason.
                    let (&[_, _, class, number], reason) = value
                        .split_first_chunk::<4>()
                        .ok_or(StunError::BadAttribute(t))?;
                    let class = u16::from(class & 0x07);
                    let number = u16::from(number);
                    if !(3..=6).contains(&class) || number > 99 {
                        return Err(StunError::BadAttribute(t));
                    }
                    if self.error_code.is_none() {
                        self.error_code = Some(class * 100 + number);
                        self.error_reason = reason;
                    }
                }
                t if t < 0x8000 && !AttrType::is_known_required(t) => self.remember_unknown(t),
                _ => {}
            }
            off = start + padded;
        }
        Ok(())
    }

    fn remember_unknown(&mut self, t: u16) {
        if self.unknown_required().contains(&t) {
            return;
        }
        if let Some(slot) = self.unknown.get_mut(self.unknown_len) {
            *slot = t;
            self.unknown_len += 1;
        }
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn class(&self) -> Class {
        self.class
    }
    pub fn method(&self) -> u16 {
        self.method
    }
    pub fn transaction_id(&self) -> &TransactionId {
        &self.transaction_id
    }
    /// USERNAME as bytes (not checked for UTF-8).
    pub fn username(&self) -> Option<&'a [u8]> {
        self.username
    }
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }
    /// XOR-MAPPED-ADDRESS decoded; `None` when absent or malformed.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        decode_xor_address(self.xor_mapped?, &self.transaction_id)
    }
    pub fn priority(&self) -> Option<u32> {
        self.priority
    }
    pub fn use_candidate(&self) -> bool {
        self.use_candidate
    }
    /// The ICE-CONTROLLING tie breaker.
    pub fn ice_controlling(&self) -> Option<u64> {
        self.ice_controlling
    }
    /// The ICE-CONTROLLED tie breaker.
    pub fn ice_controlled(&self) -> Option<u64> {
        self.ice_controlled
    }
    /// ERROR-CODE as a number (300..=699).
    pub fn error_code(&self) -> Option<u16> {
        self.error_code
    }
    /// ERROR-CODE's reason phrase, as sent.
    pub fn error_reason(&self) -> &'a [u8] {
        self.error_reason
    }
    /// Unknown comprehension-required attribute types (at most 8 remembered).
    pub fn unknown_required(&self) -> &[u16] {
        self.unknown.get(..self.unknown_len).unwrap_or(&[])
    }

    /// Checks FINGERPRINT; `required` makes its absence an error.
    pub fn check_fingerprint(&self, required: bool) -> Result<(), StunError> {
        match self.fingerprint {
            None if required => Err(StunError::MissingFingerprint),
            None => Ok(()),
            Some((off, value)) => match fingerprint(self.bytes, off) {
                Some(v) if v == value => Ok(()),
                _ => Err(StunError::BadFingerprint),
            },
        }
    }

    /// Checks MESSAGE-INTEGRITY with a short-term key (the password's bytes); absence is an
    /// error.
    pub fn check_integrity(&self, key: &[u8]) -> Result<(), StunError> {
        let (off, tag) = self.integrity.ok_or(StunError::MissingIntegrity)?;
        if verify_integrity(self.bytes, off, key, tag) {
            Ok(())
        } else {
            Err(StunError::BadIntegrity)
        }
    }
}
