//! NG protocol errors. `Display` is exactly the `error-reason` text rtpengine sends, because SIP
//! proxies and their operators match on it.

/// A request that cannot be answered with anything but `result: error` (or, for
/// [`NgError::NoCookie`], no reply at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NgError {
    /// No space in the datagram, or an empty cookie: rtpengine drops these without a reply.
    #[error("no cookie")]
    NoCookie,
    /// Nothing after the cookie.
    #[error("Invalid data (no payload)")]
    NoPayload,
    /// The body starts like bencode but is not one valid dictionary.
    #[error("Could not decode bencode dictionary")]
    BadBencode,
    /// The body starts with `{` but is not valid JSON.
    #[error("Failed to parse JSON document")]
    BadJson,
    /// Valid JSON that is not an object.
    #[error("Could not decode JSON dictionary")]
    JsonNotDict,
    /// The body is neither a bencode dictionary nor a JSON object.
    #[error("Invalid NG data format")]
    BadFormat,
    #[error("Dictionary contains no key \"command\"")]
    NoCommand,
    /// A command we do not know or do not implement.
    #[error("Unrecognized command")]
    UnknownCommand,
    #[error("No call-id in message")]
    NoCallId,
    #[error("No from-tag in message")]
    NoFromTag,
    #[error("No to-tag in message")]
    NoToTag,
    #[error("No SDP body in message")]
    NoSdp,
    /// `address` that is not an IP address (`block media` and the like).
    #[error("Failed to parse network address")]
    BadAddress,
    /// `list` with a negative `limit`.
    #[error("invalid limit, must be >= 0")]
    InvalidLimit,
}
