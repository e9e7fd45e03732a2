//! The call store: each call as a versioned record in Redis, written off the NG reply path.
//!
//! Sans-IO parts ([`record`], [`keys`], [`coalesce`], [`script`], [`pause`]) say what to write; only
//! [`writer`] talks to Redis, on its own thread, fed through a bounded channel so that a slow or
//! dead Redis never holds up NG or forwarding; [`connection`] opens its connection (one server,
//! Sentinel or Cluster). [`load`] reads a node's records back for a restore (the session layer's
//! `Engine::restore` makes them live calls again).

pub mod coalesce;
pub mod connection;
pub mod follow;
pub mod keys;
pub mod load;
pub mod mirror;
pub mod pause;
pub mod record;
pub mod record_webrtc;
pub mod script;
pub mod writer;

pub use coalesce::{Coalescer, StoreOp};
pub use record::CallRecord;
