//! SDP: parse into a typed model ([`parse()`]), rewrite it for the other side ([`rewrite()`] with a
//! [`RewritePlan`]), write it back with `Display` (CRLF after every line). No text surgery.

pub mod answer;
pub mod body;
pub mod codec;
pub mod crypto;
pub mod error;
pub mod family;
pub mod ice;
pub mod model;
pub mod parse;
pub mod query;
pub mod rewrite;

#[cfg(test)]
mod tests;

pub use answer::{align_answer_codecs, supplementals_after_touch};
pub use body::Body;
pub use codec::{CodecFilter, Touched};
pub use crypto::{crypto_attributes, Crypto, CryptoError};
pub use error::SdpError;
pub use family::Family;
pub use model::{
    Attribute, ConnAddress, Connection, Direction, Line, Media, MediaLine, Origin,
    SessionDescription, SessionLine,
};
pub use parse::{parse, MAX_SDP_LEN};
pub use rewrite::{rewrite, MediaPlan, RewritePlan};
