//! Which UDP ports the relay holds on each of its media addresses, readable without a lock.
//!
//! The session layer marks a pair when it allocates it and clears it when it frees it; workers
//! and the target checks ask whether a source or target is one of the relay's own media sockets.
//! One bit per port, per local address: 8 KiB an address.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const WORDS: usize = 65536 / 64;

/// The relay's bound media ports, per local address (an unspecified address stands for every
/// address of its family).
#[derive(Debug)]
pub struct RelayPorts {
    addrs: Vec<(IpAddr, Box<[AtomicU64]>)>,
}

impl RelayPorts {
    /// A table for these local addresses (duplicates count once).
    pub fn new(locals: impl IntoIterator<Item = IpAddr>) -> RelayPorts {
        let mut addrs: Vec<(IpAddr, Box<[AtomicU64]>)> = Vec::new();
        for ip in locals {
            let ip = ip.to_canonical();
            if addrs.iter().all(|(a, _)| *a != ip) {
                addrs.push((ip, (0..WORDS).map(|_| AtomicU64::new(0)).collect()));
            }
        }
        RelayPorts { addrs }
    }

    fn words(&self, ip: IpAddr) -> Option<&[AtomicU64]> {
        let ip = ip.to_canonical();
        self.addrs.iter().find(|(a, _)| *a == ip).map(|(_, w)| &**w)
    }

    fn set(&self, ip: IpAddr, port: u16, on: bool) {
        let Some(words) = self.words(ip) else { return };
        let (word, bit) = (usize::from(port) / 64, 1u64 << (port % 64));
        if let Some(w) = words.get(word) {
            if on {
                w.fetch_or(bit, Relaxed);
            } else {
                w.fetch_and(!bit, Relaxed);
            }
        }
    }

    /// Marks the RTP port and the RTCP port after it as the relay's.
    pub fn mark_pair(&self, ip: IpAddr, rtp_port: u16) {
        self.set(ip, rtp_port, true);
        self.set(ip, rtp_port.wrapping_add(1), true);
    }

    /// Clears a pair marked with [`mark_pair`](Self::mark_pair).
    pub fn clear_pair(&self, ip: IpAddr, rtp_port: u16) {
        self.set(ip, rtp_port, false);
        self.set(ip, rtp_port.wrapping_add(1), false);
    }

    /// Whether `port` is held on local address `ip` (exactly that address; see
    /// [`wildcard_holds`](Self::wildcard_holds) for unspecified ones).
    pub fn holds(&self, ip: IpAddr, port: u16) -> bool {
        self.words(ip).is_some_and(|words| {
            words
                .get(usize::from(port) / 64)
                .is_some_and(|w| w.load(Relaxed) & (1u64 << (port % 64)) != 0)
        })
    }

    /// Whether `port` is held on the unspecified address of `ip`'s family (a relay bound to
    /// `0.0.0.0` or `::` receives on every address of the host).
    pub fn wildcard_holds(&self, ip: IpAddr, port: u16) -> bool {
        let any = match ip.to_canonical() {
            IpAddr::V4(_) => IpAddr::from([0u8; 4]),
            IpAddr::V6(_) => IpAddr::from([0u16; 8]),
        };
        self.holds(any, port)
    }

    /// Whether `addr` is exactly one of the relay's media sockets.
    pub fn is_relay_socket(&self, addr: SocketAddr) -> bool {
        self.holds(addr.ip(), addr.port())
    }

    /// The local addresses this table knows.
    pub fn locals(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addrs.iter().map(|(a, _)| *a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_marked_and_cleared_per_address() {
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "2001:db8::1".parse().expect("ip");
        let t = RelayPorts::new([a, b, a]);
        assert_eq!(t.locals().count(), 2);
        t.mark_pair(a, 30000);
        assert!(t.holds(a, 30000) && t.holds(a, 30001));
        assert!(!t.holds(a, 30002) && !t.holds(b, 30000));
        assert!(t.is_relay_socket(SocketAddr::new(a, 30001)));
        // An IPv4-mapped form of the same address is the same address.
        assert!(t.holds("::ffff:192.0.2.1".parse().expect("ip"), 30000));
        t.clear_pair(a, 30000);
        assert!(!t.holds(a, 30000) && !t.holds(a, 30001));
        // Unknown addresses hold nothing and marking them is a no-op.
        t.mark_pair("198.51.100.1".parse().expect("ip"), 4);
        assert!(!t.holds("198.51.100.1".parse().expect("ip"), 4));
        // The top of the port space does not wrap into a panic.
        t.mark_pair(a, 65535);
        assert!(t.holds(a, 65535) && t.holds(a, 0));
    }

    #[test]
    fn a_wildcard_address_holds_for_its_family() {
        let t = RelayPorts::new(["0.0.0.0".parse().expect("ip")]);
        t.mark_pair("0.0.0.0".parse().expect("ip"), 40000);
        assert!(t.wildcard_holds("10.1.2.3".parse().expect("ip"), 40000));
        assert!(!t.wildcard_holds("2001:db8::5".parse().expect("ip"), 40000));
    }
}
