//! The kernel's next hop towards a peer, for the AF_XDP path's own sends: the route from the
//! relay's address and the neighbour entry of its gateway or of the peer (what the stack would
//! send to), never a MAC read off a received frame, which anyone on the link can forge.

use std::net::IpAddr;

use super::nexthop::{resolve, Found, Seen};
use super::rtnl::Rtnl;

/// A next hop: the device, the relay's MAC on it and the neighbour's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelHop {
    pub ifindex: u32,
    pub our_mac: [u8; 6],
    pub peer_mac: [u8; 6],
}

/// Asks the routing and neighbour tables (a netlink socket of its own).
pub struct Neighbours {
    rtnl: Rtnl,
}

impl Neighbours {
    pub fn open() -> std::io::Result<Neighbours> {
        Ok(Neighbours {
            rtnl: Rtnl::open()?,
        })
    }

    /// The hop from `src` (a relay address) to `dst`; `None` while the tables do not know one
    /// (no route, neighbour not resolved, a netlink failure).
    pub fn hop(&mut self, src: IpAddr, dst: IpAddr) -> Option<KernelHop> {
        match resolve(
            &mut self.rtnl,
            &mut Seen::default(),
            (src.to_canonical(), dst.to_canonical()),
        ) {
            Found::Hop(h) => Some(KernelHop {
                ifindex: h.peer.ifindex,
                our_mac: h.peer.our_mac,
                peer_mac: h.peer.peer_mac,
            }),
            Found::NoRoute | Found::Unresolved(_) | Found::Failed => None,
        }
    }
}
