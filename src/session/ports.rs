//! RTP/RTCP port-pair allocation from the configured range, one pool per local address.
//!
//! The allocator only decides which pair to try; binding is the caller's [`PortBinder`], so the
//! session layer stays free of sockets. A pair the binder refuses (taken by another program) is
//! skipped, and the search goes on until the whole range was tried once.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

/// Binds (or, in tests, pretends to bind) the RTP port and RTP+1 on an address.
pub trait PortBinder {
    /// Binds both ports, or neither. `false` means the pair is unavailable.
    fn bind_pair(&mut self, local: IpAddr, rtp_port: u16) -> bool;
    /// Forgets a pair: its sockets are closed (or handed away already).
    fn release_pair(&mut self, local: IpAddr, rtp_port: u16);
}

/// A binder that accepts every pair: for scenario tests.
#[derive(Debug, Default)]
pub struct AcceptAll {
    pub bound: BTreeSet<SocketAddr>,
}

impl PortBinder for AcceptAll {
    fn bind_pair(&mut self, local: IpAddr, rtp_port: u16) -> bool {
        self.bound.insert(SocketAddr::new(local, rtp_port))
    }
    fn release_pair(&mut self, local: IpAddr, rtp_port: u16) {
        self.bound.remove(&SocketAddr::new(local, rtp_port));
    }
}

/// Port pairs in use, per local address.
#[derive(Debug)]
pub struct PortAllocator {
    /// First even port of the range.
    min: u16,
    /// Last usable RTP port (even, with `max_rtp + 1` inside the range).
    max_rtp: u16,
    pools: HashMap<IpAddr, Pool>,
}

#[derive(Debug, Default)]
struct Pool {
    used: BTreeSet<u16>,
    next: Option<u16>,
}

impl PortAllocator {
    /// `port_min..=port_max` as configured; validated by the config layer to hold at least one pair.
    pub fn new(port_min: u16, port_max: u16) -> Self {
        let min = port_min.saturating_add(port_min % 2);
        let max_rtp = if port_max % 2 == 0 {
            port_max.saturating_sub(2)
        } else {
            port_max.saturating_sub(1)
        };
        PortAllocator {
            min,
            max_rtp: max_rtp.max(min),
            pools: HashMap::new(),
        }
    }

    /// Number of RTP/RTCP pairs the range holds.
    pub fn capacity(&self) -> usize {
        usize::from((self.max_rtp - self.min) / 2) + 1
    }

    /// Pairs in use on `local`.
    pub fn in_use(&self, local: IpAddr) -> usize {
        self.pools.get(&local).map_or(0, |p| p.used.len())
    }

    /// Allocates the next free pair on `local`, upward from the last one, wrapping once.
    pub fn allocate(&mut self, local: IpAddr, binder: &mut dyn PortBinder) -> Option<u16> {
        let (min, max_rtp, capacity) = (self.min, self.max_rtp, self.capacity());
        let pool = self.pools.entry(local).or_default();
        let mut port = pool.next.unwrap_or(min);
        for _ in 0..capacity {
            if !pool.used.contains(&port) && binder.bind_pair(local, port) {
                pool.used.insert(port);
                pool.next = Some(if port >= max_rtp { min } else { port + 2 });
                return Some(port);
            }
            port = if port >= max_rtp { min } else { port + 2 };
        }
        None
    }

    /// Returns a pair to the pool and tells the binder to close it.
    pub fn release(&mut self, local: IpAddr, rtp_port: u16, binder: &mut dyn PortBinder) {
        if let Some(pool) = self.pools.get_mut(&local) {
            if pool.used.remove(&rtp_port) {
                binder.release_pair(local, rtp_port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn allocates_even_pairs_upward_and_reuses_released_ones_after_wrap() {
        let mut alloc = PortAllocator::new(30001, 30008);
        let mut b = AcceptAll::default();
        assert_eq!(alloc.capacity(), 3); // 30002, 30004, 30006 (30008 has no RTCP port)
        assert_eq!(alloc.allocate(A, &mut b), Some(30002));
        assert_eq!(alloc.allocate(A, &mut b), Some(30004));
        assert_eq!(alloc.allocate(A, &mut b), Some(30006));
        assert_eq!(alloc.allocate(A, &mut b), None, "range exhausted");
        alloc.release(A, 30004, &mut b);
        assert_eq!(alloc.allocate(A, &mut b), Some(30004));
        assert_eq!(alloc.in_use(A), 3);
    }

    #[test]
    fn skips_pairs_the_binder_refuses() {
        struct Refuse(u16);
        impl PortBinder for Refuse {
            fn bind_pair(&mut self, _: IpAddr, p: u16) -> bool {
                p != self.0
            }
            fn release_pair(&mut self, _: IpAddr, _: u16) {}
        }
        let mut alloc = PortAllocator::new(40000, 40010);
        assert_eq!(alloc.allocate(A, &mut Refuse(40000)), Some(40002));
    }

    #[test]
    fn pools_are_per_address() {
        let mut alloc = PortAllocator::new(30000, 30003);
        let mut b = AcceptAll::default();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(alloc.allocate(A, &mut b), Some(30000));
        assert_eq!(alloc.allocate(v6, &mut b), Some(30000));
    }
}
