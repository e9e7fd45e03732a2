//! The address family of an SDP address (`IN IP4` / `IN IP6`), also what `address family` asks for.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}
