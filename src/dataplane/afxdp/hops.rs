//! Next hops towards peers, from the kernel's routing and neighbour tables (never from the MACs
//! of a received frame: anyone on the link can forge those, even with the peer's address and
//! port).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::time::Millis;

/// Next hops remembered; the table starts over when full (it refills from the kernel's tables).
const NEIGH_MAX: usize = 65536;
/// How long a next hop from the kernel's tables is used before it is looked up again (a peer's
/// MAC changes, a route moves)...
const HOP_TTL_MS: u64 = 1000;
/// ...and how long "no hop" is (the stack resolves the neighbour meanwhile, for the packets
/// the flow's socket sends).
const NO_HOP_TTL_MS: u64 = 100;

/// A peer's next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hop {
    pub peer_mac: [u8; 6],
    pub our_mac: [u8; 6],
    /// The device to send it out of.
    pub ifindex: u32,
}

/// Next hops by (relay address, peer address), each until a time; `None` = not known yet.
#[derive(Default)]
pub(super) struct Hops {
    tables: Option<crate::sys::xdp::Neighbours>,
    /// The tables could not be opened: do not try again for every frame.
    unavailable: bool,
    pub(super) known: HashMap<(IpAddr, IpAddr), (Option<Hop>, Millis)>,
}

impl Hops {
    /// The next hop from `src` to `dst` at `now`, looked up in the kernel's tables when the one
    /// remembered is too old.
    pub(super) fn get(&mut self, src: IpAddr, dst: IpAddr, now: Millis) -> Option<Hop> {
        let key = (src.to_canonical(), dst.to_canonical());
        if let Some((hop, until)) = self.known.get(&key) {
            if now.0 < until.0 {
                return *hop;
            }
        }
        if self.tables.is_none() && !self.unavailable {
            match crate::sys::xdp::Neighbours::open() {
                Ok(t) => self.tables = Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "AF_XDP: cannot read the kernel's neighbour table; the flows' sockets send instead");
                    self.unavailable = true;
                }
            }
        }
        let hop = self
            .tables
            .as_mut()
            .and_then(|t| t.hop(key.0, key.1))
            .map(|h| Hop {
                peer_mac: h.peer_mac,
                our_mac: h.our_mac,
                ifindex: h.ifindex,
            });
        if self.known.len() >= NEIGH_MAX {
            self.known.clear();
        }
        let ttl = if hop.is_some() {
            HOP_TTL_MS
        } else {
            NO_HOP_TTL_MS
        };
        self.known
            .insert(key, (hop, Millis(now.0.saturating_add(ttl))));
        hop
    }
}
