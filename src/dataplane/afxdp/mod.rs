//! The AF_XDP plane: the XDP program redirects packets to the relay's ports that the kernel
//! does not forward itself (streams still learning, recorded streams, unknown next hops) to an
//! AF_XDP socket per receive queue; a worker forwards those frames like socket packets, rewrites
//! them in place and sends them back out, with no trip through the socket layer.
//!
//! - `start`: opening the sockets and sharing out their frame memory;
//! - `plane`: the [`AfxdpPlane`] a worker runs (the flows' UDP sockets through the mmsg plane,
//!   the frames through its AF_XDP sockets);
//! - `frames`: a batch of frames as the plane forwards it, in runs of one flow;
//! - `handoff`: the bounded queues that carry frames between workers (the device, not the
//!   call's sharding, picks a frame's queue), and [`deal`], which shares the sockets out;
//! - `owners`: which worker owns the flow on a relay port;
//! - `hops`: next hops from the kernel's tables.

mod counters;
mod frames;
mod handoff;
mod hops;
mod owners;
mod plane;
#[cfg(test)]
mod socket_tests;
mod start;
#[cfg(test)]
mod tests;

pub use counters::XskCounters;
pub use handoff::{deal, HANDOFF_MAX};
pub use owners::{PortOwners, MAX_LOCAL_ADDRS};
pub use plane::{AfxdpPlane, XskState};
pub use start::open_sockets;
