//! Scenario tests of the session engine, one file per group of scenarios; the shared helpers are
//! in `common.rs` (and used by the unit tests of limits.rs and targets.rs too).

mod admin;
mod block;
mod common;
mod drain;
mod egress_and_learning;
mod far_end;
mod fidelity_errors;
mod fidelity_ptime_codecs;
mod fidelity_sdp_lines;
mod interfaces;
mod lifetime;
mod limits;
mod offer_answer;
mod recording;
mod reports;
mod restore;
mod sdes;
mod webrtc;

pub(crate) use common::*;
