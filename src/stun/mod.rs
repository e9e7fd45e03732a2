//! STUN (RFC 8489, which obsoletes RFC 5389) as ICE needs it: a bounded, panic-free view of one
//! message ([`Message::parse`]), a builder ([`MessageBuilder`]), and the short-term credential
//! checks (MESSAGE-INTEGRITY with HMAC-SHA1, FINGERPRINT with CRC-32).
//!
//! Only what connectivity checks use is typed: XOR-MAPPED-ADDRESS, USERNAME, MESSAGE-INTEGRITY,
//! FINGERPRINT, ERROR-CODE, UNKNOWN-ATTRIBUTES and the ICE attributes of RFC 8445 §16.1
//! (PRIORITY, USE-CANDIDATE, ICE-CONTROLLED, ICE-CONTROLLING). Any other attribute is skipped;
//! an unknown one in the comprehension-required range (below 0x8000) is listed so that a request
//! can be answered with 420 (RFC 8489 §6.3.1).
//!
//! Sans-IO: bytes in, bytes out. Nothing here reads a clock or a socket.

mod attr;
mod builder;
mod error;
mod integrity;
mod message;

#[cfg(test)]
mod tests;

pub use attr::{
    decode_xor_address, AttrType, ERROR_ROLE_CONFLICT, ERROR_UNAUTHORIZED, ERROR_UNKNOWN_ATTRIBUTE,
};
pub use builder::MessageBuilder;
pub use error::StunError;
pub use integrity::{fingerprint, message_integrity, FINGERPRINT_XOR};
pub use message::{
    looks_like_stun, Class, Message, TransactionId, BINDING, HEADER_LEN, MAGIC_COOKIE,
    MAX_ATTRIBUTES, MAX_MESSAGE_LEN,
};
