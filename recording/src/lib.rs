//! rtprelay's call recording: the spool that the relay writes, and the pieces that turn a finished spooled
//! call into WAV files (G.711 decoding, a per-SSRC timeline, mixing, file naming).
//!
//! The relay uses [`spool::Spool`] / [`spool::SpoolWriter`]; the `rtprelay-recording` daemon uses
//! [`spool::SpoolReader`] and [`process::process_call`]. The format is described in `SPOOL.md`.
#![forbid(unsafe_code)]

pub mod config;
pub mod daemon;
pub mod fsutil;
pub mod g711;
pub mod limits;
pub mod mix;
#[doc(hidden)]
pub mod mixfuzz;
pub mod outputs;
pub mod pattern;
pub mod process;
pub mod retry;
pub mod rtp;
pub mod spool;
pub mod time;
pub mod timeline;
pub mod wav;
