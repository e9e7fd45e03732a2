//! MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) and FINGERPRINT (CRC-32, §14.7).
//!
//! Both cover the message up to the attribute itself, with the header's length field set as if
//! the attribute were the last one: that is what lets FINGERPRINT follow MESSAGE-INTEGRITY.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// FINGERPRINT is the CRC-32 xor'ed with this ("STUN"), so that it differs from the CRC of
/// protocols multiplexed on the same port.
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// The HMAC-SHA1 over `msg[..attr_offset]` (the message up to the MESSAGE-INTEGRITY attribute
/// header), with the length field set to cover the 24-byte attribute. `attr_offset` must be at
/// least 20 and within `msg`; `None` otherwise.
pub fn message_integrity(msg: &[u8], attr_offset: usize, key: &[u8]) -> Option<[u8; 20]> {
    let mac = integrity_mac(msg, attr_offset, key)?;
    Some(mac.finalize().into_bytes().into())
}

fn integrity_mac(msg: &[u8], attr_offset: usize, key: &[u8]) -> Option<Hmac<Sha1>> {
    let len = u16::try_from(attr_offset.checked_sub(super::HEADER_LEN)? + 24).ok()?;
    let head = msg.get(..2)?;
    let rest = msg.get(4..attr_offset)?;
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).ok()?;
    mac.update(head);
    mac.update(&len.to_be_bytes());
    mac.update(rest);
    Some(mac)
}

/// Checks `tag` against the HMAC in constant time.
pub(crate) fn verify_integrity(msg: &[u8], attr_offset: usize, key: &[u8], tag: &[u8]) -> bool {
    integrity_mac(msg, attr_offset, key).is_some_and(|mac| mac.verify_slice(tag).is_ok())
}

/// The FINGERPRINT value over `msg[..attr_offset]`, with the length field set to cover the
/// 8-byte attribute. `None` when `attr_offset` is not within `msg` or before the header's end.
pub fn fingerprint(msg: &[u8], attr_offset: usize) -> Option<u32> {
    let len = u16::try_from(attr_offset.checked_sub(super::HEADER_LEN)? + 8).ok()?;
    let mut h = crc32fast::Hasher::new();
    h.update(msg.get(..2)?);
    h.update(&len.to_be_bytes());
    h.update(msg.get(4..attr_offset)?);
    Some(h.finalize() ^ FINGERPRINT_XOR)
}
