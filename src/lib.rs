//! rtprelay: an RTP media relay driven over rtpengine's NG protocol.
//!
//! The flow: a control message arrives on an NG transport ([`control`]); the codec turns it into a
//! typed command; the session layer ([`session`]) parses and rewrites the SDP ([`sdp`]), allocates
//! ports and keeps call state; streams are handed to per-core workers ([`worker`]) that own their
//! sockets and forward packets through a data plane ([`dataplane`]).
//!
//! The core (`config` parsing, `control` codec, `sdp`, `session`, `srtp`, `wire`) does no I/O and
//! reads no clock: time comes in as [`time::Now`]. Only [`sys`] contains `unsafe`.
#![deny(unsafe_code)]

pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod dtls;
pub mod flow;
pub mod guard;
pub mod ice;
pub mod metrics;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod store;
pub mod stun;
pub mod sys;
#[cfg(any(test, feature = "testkit"))]
#[doc(hidden)]
pub mod testkit;
pub mod time;
pub mod wire;
pub mod worker;
