//! Why a packet was not protected or unprotected, or a context not built. Every variant is a
//! counted drop for the data plane; none is a panic.

/// An SRTP/SRTCP failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Shorter than a header plus the suite's trailer (tag, MKI, SRTCP index).
    #[error("packet too short for SRTP/SRTCP: {len} bytes")]
    TooShort { len: usize },
    /// Not RTP/RTCP version 2.
    #[error("not an RTP/RTCP version 2 packet")]
    BadVersion,
    /// The RTP header's CSRC list or extension runs past the packet.
    #[error("RTP header runs past the packet")]
    BadHeader,
    /// The authentication tag (HMAC or GCM) does not match: wrong key, or a forged or damaged
    /// packet.
    #[error("authentication failed")]
    AuthFailed,
    /// A packet index already received, or older than the replay window.
    #[error("replayed or too old (index {index})")]
    Replay { index: u64 },
    /// The packet's MKI is not the one this context was keyed with.
    #[error("unknown MKI")]
    UnknownMki,
    /// The caller's buffer has no room for the trailer protect appends.
    #[error("buffer too small: {need} bytes needed, {cap} available")]
    BufferTooSmall { need: usize, cap: usize },
    /// A new SSRC on a context that already tracks its limit of them.
    #[error("too many SSRCs on one SRTP context (limit {limit})")]
    TooManySsrcs { limit: usize },
    /// The rollover counter or SRTCP index would wrap: the key must be changed.
    #[error("packet index space exhausted, the key must be changed")]
    IndexExhausted,
    /// Master key or salt of the wrong length for the suite.
    #[error("{what} of {got} bytes, the suite needs {want}")]
    BadKeyLength {
        what: &'static str,
        want: usize,
        got: usize,
    },
    /// An MKI longer than we accept.
    #[error("MKI of {len} bytes (at most {max})")]
    BadMki { len: usize, max: usize },
    /// A session parameter the suite cannot honour (an AEAD suite without encryption or
    /// authentication).
    #[error("{param} is not possible with {suite}")]
    UnsupportedParam {
        param: &'static str,
        suite: &'static str,
    },
    /// A replay window size other than 64 or 128.
    #[error("replay window of {0} packets (64 or 128)")]
    BadWindow(u32),
}
