//! What the relay refuses to send media to, and whom it refuses to learn as a peer: its own
//! sockets, its host, and the networks an operator names (sans-IO: the host's addresses are
//! passed in). Shared by the session layer (SDP endpoints) and the workers (packet sources).

pub mod policy;
pub mod relay_ports;

pub use policy::{parse_network, unreachable_from, PolicyInputs, Refusal, TargetPolicy};
pub use relay_ports::RelayPorts;

/// The policy as the session layer and the workers share it: swapped whole when the host's
/// addresses change, read without a lock.
pub type SharedPolicy = std::sync::Arc<arc_swap::ArcSwap<TargetPolicy>>;

/// A shared handle on `policy`.
pub fn share(policy: TargetPolicy) -> SharedPolicy {
    std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(policy))
}
