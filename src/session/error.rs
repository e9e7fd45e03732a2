//! Session errors. The `Display` text is the NG `error-reason` an operator sees in Kamailio's log,
//! worded as rtpengine words it where rtpengine has the same error.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The SDP body did not parse.
    #[error("Failed to parse SDP")]
    SdpParse,
    /// The SDP parsed but its media cannot be used: no address for a media section, or an RTP
    /// format that is not a payload type.
    #[error("Incomplete SDP specification")]
    SdpIncomplete,
    /// The SDP cannot be written back (a session with no media).
    #[error("Error rewriting SDP")]
    SdpRewrite,
    /// `answer`/`query` for a call that does not exist.
    #[error("Unknown call-id")]
    UnknownCall,
    /// `answer` whose from-tag matches no side of the call.
    #[error("Unknown from-tag")]
    UnknownTag,
    /// No free RTP/RTCP pair left on the interface.
    #[error("Ran out of ports")]
    PortsExhausted,
    /// No interface entry to allocate ports on (the relay has none configured). A name the
    /// relay does not have is not an error: it falls back as rtpengine's does.
    #[error("Unknown interface '{0}'")]
    UnknownInterface(String),
    /// `--max-sessions` reached.
    #[error("Parallel session limit reached")]
    SessionLimit,
    /// The relay is draining: no new calls, and `ping` fails.
    #[error("Relay is draining, not accepting new calls")]
    Draining,
    /// `delete` with `fatal` for a call that does not exist.
    #[error("Call-ID not found or tags didn't match")]
    DeleteNotFound,
    /// `block media` with a `from-tag` that names no participant.
    #[error("From-tag given, but no such tag exists")]
    NoSuchTag,
    /// `block media` with a `label` no participant has.
    #[error("No monologue matching the given label")]
    NoSuchLabel,
    /// `block media` with an `address` no participant advertised.
    #[error("Failed to match address to any tag")]
    NoSuchAddress,
    /// More media sections than a call may carry.
    #[error("Too many media sections")]
    TooManyMedia,
    /// A new participant on a call that has the most it may have.
    #[error("Too many participants in this call (at most {0})")]
    TooManyLegs(usize),
    /// A new port pair for a call that holds the most it may hold.
    #[error("Too many media ports for this call (at most {0} pairs)")]
    TooManyPorts(usize),
}
