//! Configuration: rtpengine-compatible CLI options, keyfile config, validation (stub).

pub mod interface;
pub use interface::Interface;
