//! Why a datagram is not a STUN message we accept.

/// A STUN message that failed parsing or a check. Every variant is a counted drop for the
/// caller; none is a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StunError {
    /// Shorter than the 20-byte header.
    #[error("STUN message shorter than its header")]
    TooShort,
    /// Longer than [`super::MAX_MESSAGE_LEN`]: no connectivity check is that large.
    #[error("STUN message longer than we accept")]
    TooLong,
    /// The two top bits are not zero or the magic cookie is wrong (RFC 8489 §6).
    #[error("not a STUN message (top bits or magic cookie)")]
    NotStun,
    /// The header's length is not a multiple of 4 or does not match the datagram.
    #[error("STUN length field does not match the datagram")]
    BadLength,
    /// An attribute runs past the end of the message.
    #[error("STUN attribute truncated")]
    TruncatedAttribute,
    /// More attributes than [`super::MAX_ATTRIBUTES`].
    #[error("too many STUN attributes")]
    TooManyAttributes,
    /// A known attribute with a value of the wrong size or content.
    #[error("malformed STUN attribute {0:#06x}")]
    BadAttribute(u16),
    /// Something follows FINGERPRINT, which must be last (RFC 8489 §14.7).
    #[error("STUN attribute after FINGERPRINT")]
    FingerprintNotLast,
    /// FINGERPRINT is required here and absent.
    #[error("STUN message without FINGERPRINT")]
    MissingFingerprint,
    /// The CRC-32 does not match.
    #[error("STUN FINGERPRINT mismatch")]
    BadFingerprint,
    /// MESSAGE-INTEGRITY is required here and absent.
    #[error("STUN message without MESSAGE-INTEGRITY")]
    MissingIntegrity,
    /// The HMAC-SHA1 does not match the key.
    #[error("STUN MESSAGE-INTEGRITY mismatch")]
    BadIntegrity,
}
