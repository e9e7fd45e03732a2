//! Writes a STUN message attribute by attribute, keeping the header's length field current,
//! then seals it with MESSAGE-INTEGRITY and FINGERPRINT.

use std::net::SocketAddr;

use super::attr::{encode_xor_address, AttrType};
use super::integrity::{fingerprint, message_integrity};
use super::message::{message_type, Class, TransactionId, HEADER_LEN, MAGIC_COOKIE};

/// A STUN message being written. Values longer than 0xffff bytes are cut (no caller comes
/// near: the builder is fed by our own state, not by the network).
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    /// The padding byte. RFC 8489 says zero on sending; RFC 5769's vectors use spaces, and
    /// the tests set it to reproduce them byte for byte.
    pub(crate) pad: u8,
}

impl MessageBuilder {
    /// Starts a message of `class` and `method` (12 bits).
    pub fn new(class: Class, method: u16, tid: &TransactionId) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&message_type(class, method).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(tid);
        MessageBuilder { buf, pad: 0 }
    }

    fn set_len(&mut self) {
        let len = u16::try_from(self.buf.len().saturating_sub(HEADER_LEN)).unwrap_or(u16::MAX);
        if let Some(l) = self.buf.get_mut(2..4) {
            l.copy_from_slice(&len.to_be_bytes());
        }
    }

    /// Appends one attribute with its padding.
    pub fn attribute(&mut self, t: u16, value: &[u8]) -> &mut Self {
        let value = value.get(..0xffff).unwrap_or(value);
        self.buf.extend_from_slice(&t.to_be_bytes());
        self.buf
            .extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        let pad = (4 - value.len() % 4) % 4;
        self.buf.extend(std::iter::repeat_n(self.pad, pad));
        self.set_len();
        self
    }

    pub fn software(&mut self, name: &str) -> &mut Self {
        self.attribute(AttrType::SOFTWARE, name.as_bytes())
    }
    pub fn username(&mut self, name: &str) -> &mut Self {
        self.attribute(AttrType::USERNAME, name.as_bytes())
    }
    pub fn priority(&mut self, p: u32) -> &mut Self {
        self.attribute(AttrType::PRIORITY, &p.to_be_bytes())
    }
    pub fn use_candidate(&mut self) -> &mut Self {
        self.attribute(AttrType::USE_CANDIDATE, &[])
    }
    pub fn ice_controlling(&mut self, tie_breaker: u64) -> &mut Self {
        self.attribute(AttrType::ICE_CONTROLLING, &tie_breaker.to_be_bytes())
    }
    pub fn ice_controlled(&mut self, tie_breaker: u64) -> &mut Self {
        self.attribute(AttrType::ICE_CONTROLLED, &tie_breaker.to_be_bytes())
    }
    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> &mut Self {
        let tid = self.transaction_id();
        let v = encode_xor_address(addr, &tid);
        self.attribute(AttrType::XOR_MAPPED_ADDRESS, &v)
    }
    /// ERROR-CODE: `code` 300..=699 and a reason phrase.
    pub fn error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        let mut v = vec![0, 0, (code / 100 % 8) as u8, (code % 100) as u8];
        v.extend_from_slice(reason.as_bytes());
        self.attribute(AttrType::ERROR_CODE, &v)
    }
    /// UNKNOWN-ATTRIBUTES, for a 420 answer.
    pub fn unknown_attributes(&mut self, types: &[u16]) -> &mut Self {
        let v: Vec<u8> = types.iter().flat_map(|t| t.to_be_bytes()).collect();
        self.attribute(AttrType::UNKNOWN_ATTRIBUTES, &v)
    }

    fn transaction_id(&self) -> TransactionId {
        let mut tid = [0u8; 12];
        if let Some(t) = self.buf.get(8..20) {
            tid.copy_from_slice(t);
        }
        tid
    }

    /// Appends MESSAGE-INTEGRITY keyed with `key` (the short-term password).
    pub fn integrity(&mut self, key: &[u8]) -> &mut Self {
        let off = self.buf.len();
        let mac = message_integrity(&self.buf, off, key).unwrap_or([0; 20]);
        self.attribute(AttrType::MESSAGE_INTEGRITY, &mac)
    }

    /// Appends FINGERPRINT and returns the finished message.
    pub fn fingerprint(mut self) -> Vec<u8> {
        let off = self.buf.len();
        let fp = fingerprint(&self.buf, off).unwrap_or(0);
        self.attribute(AttrType::FINGERPRINT, &fp.to_be_bytes());
        self.buf
    }

    /// The message as written so far.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}
