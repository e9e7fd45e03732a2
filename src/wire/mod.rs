//! Zero-copy views of packets the relay looks at (RTP, RTCP, DTLS records), and the RFC 7983
//! first-byte demultiplexer that picks which view applies.
//!
//! Each view wraps a borrowed byte slice. `new_checked` validates once, so accessors never panic
//! on untrusted input: every byte range they read was proven to be in bounds.

pub mod demux;
pub mod dtls;
pub mod frame;
pub mod rtcp;
pub mod rtp;

pub use rtcp::is_rtcp;

/// Why a buffer is not a valid packet of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header (or than a length field says).
    #[error("packet truncated")]
    Truncated,
    /// The version field is not 2.
    #[error("bad version")]
    BadVersion,
    /// A field has a value the format does not allow.
    #[error("malformed packet")]
    Malformed,
}
