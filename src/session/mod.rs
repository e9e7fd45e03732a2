//! Calls, legs, streams, port allocation and latching policy (sans-IO).
//!
//! The [`Engine`] executes NG [`Command`]s and answers with a typed [`Reply`]: it parses the SDP,
//! takes port pairs the daemon bound for the command ([`PortAllocator`]; the daemon binds through
//! a [`PortBinder`] around each command), rewrites the SDP for the other side, and queues
//! [`MediaAction`]s for the workers. Time comes in with every call; nothing here reads a clock or
//! touches a socket.

pub mod actions;
mod admin;
pub(crate) mod block;
pub mod call;
pub mod command;
mod drain;
pub mod dtls;
pub mod engine;
pub mod engine_config;
pub mod error;
mod follow;
pub mod ice;
mod interfaces;
pub mod keys;
pub mod limits;
pub mod log;
mod media_state;
mod negotiate;
mod origin;
pub mod ports;
mod recording;
pub mod reply;
pub mod reports;
mod restore;
pub mod sdes;
mod targets;
mod timers;

pub use actions::MediaAction;
pub use command::Command;
pub use engine::Engine;
pub use engine_config::EngineConfig;
pub use error::SessionError;
pub use ports::{PortAllocator, PortBinder};
pub use reply::Reply;
pub use reports::Snapshot;
pub use restore::{RestoreError, Restored};
#[cfg(test)]
mod tests;
