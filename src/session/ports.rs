//! RTP/RTCP port-pair allocation from the configured range, one pool per local address.
//!
//! The allocator only decides which pair to try; binding is the caller's [`PortBinder`], so the
//! session layer stays free of sockets. A pair the binder refuses (taken by another program) is
//! skipped, and the search goes on until every free pair was tried once.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::guard::RelayPorts;

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

/// Port pairs in use, per local address, chosen at random from the free ones.
///
/// Random choice (as rtpengine does) keeps the next call's ports from being guessed: an injector
/// that knows one call's ports learns nothing about the next one's.
#[derive(Debug)]
pub struct PortAllocator {
    /// First even port of the range.
    min: u16,
    /// Last usable RTP port (even, with `max_rtp + 1` inside the range).
    max_rtp: u16,
    pools: HashMap<IpAddr, Pool>,
    rng: StdRng,
    /// Where the ports in use are published for the workers and the target checks.
    published: Arc<RelayPorts>,
}

#[derive(Debug)]
struct Pool {
    used: BTreeSet<u16>,
    /// The free RTP ports, in no particular order (a pick swaps out of the middle).
    free: Vec<u16>,
}

/// Random picks before a pool whose picks keep being refused by the binder is searched in full.
const RANDOM_TRIES: usize = 32;

impl PortAllocator {
    /// `port_min..=port_max` as configured; validated by the config layer to hold at least one pair.
    /// `seed` makes the choice of ports unpredictable (the daemon gives it from the OS).
    pub fn new(port_min: u16, port_max: u16, seed: [u8; 32], published: Arc<RelayPorts>) -> Self {
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
            rng: StdRng::from_seed(seed),
            published,
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

    /// Allocates a free pair on `local`, chosen at random; `None` when every free pair was
    /// tried and the binder refused it (or none is free).
    pub fn allocate(&mut self, local: IpAddr, binder: &mut dyn PortBinder) -> Option<u16> {
        let (min, max_rtp) = (self.min, self.max_rtp);
        let pool = self.pools.entry(local).or_insert_with(|| Pool {
            used: BTreeSet::new(),
            free: (min..=max_rtp).step_by(2).collect(),
        });
        let published = &self.published;
        let mut take = |pool: &mut Pool, at: usize| {
            let port = pool.free.get(at).copied()?;
            if !binder.bind_pair(local, port) {
                return None;
            }
            pool.free.swap_remove(at);
            pool.used.insert(port);
            published.mark_pair(local, port);
            Some(port)
        };
        // A few random picks; then, if the binder kept refusing (another program holds those
        // pairs), every free pair once from a random offset.
        for _ in 0..RANDOM_TRIES {
            if pool.free.is_empty() {
                return None;
            }
            let at = self.rng.random_range(0..pool.free.len());
            if let Some(port) = take(pool, at) {
                return Some(port);
            }
        }
        let n = pool.free.len();
        if n == 0 {
            return None;
        }
        let offset = self.rng.random_range(0..n);
        (0..n).find_map(|k| take(pool, (offset + k) % n))
    }

    /// Returns a pair to the pool and tells the binder to close it.
    pub fn release(&mut self, local: IpAddr, rtp_port: u16, binder: &mut dyn PortBinder) {
        if let Some(pool) = self.pools.get_mut(&local) {
            if pool.used.remove(&rtp_port) {
                pool.free.push(rtp_port);
                self.published.clear_pair(local, rtp_port);
                binder.release_pair(local, rtp_port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn alloc(min: u16, max: u16) -> PortAllocator {
        PortAllocator::new(min, max, [7; 32], Arc::new(RelayPorts::new([A])))
    }

    #[test]
    fn allocates_every_even_pair_once_and_reuses_released_ones() {
        let mut alloc = alloc(30001, 30008);
        let mut b = AcceptAll::default();
        assert_eq!(alloc.capacity(), 3); // 30002, 30004, 30006 (30008 has no RTCP port)
        let mut got: Vec<u16> = (0..3).filter_map(|_| alloc.allocate(A, &mut b)).collect();
        got.sort_unstable();
        assert_eq!(got, vec![30002, 30004, 30006]);
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
        let mut alloc = alloc(40000, 40003);
        assert_eq!(alloc.allocate(A, &mut Refuse(40000)), Some(40002));
        assert_eq!(
            alloc.allocate(A, &mut Refuse(40000)),
            None,
            "40000 stays refused"
        );
    }

    #[test]
    fn consecutive_calls_get_unpredictable_ports() {
        // Sequential allocation would hand out 30000, 30002, 30004...: the next call's ports
        // would be known from the last one's.
        let mut alloc = alloc(30000, 40000);
        let mut b = AcceptAll::default();
        let ports: Vec<u16> = (0..50).filter_map(|_| alloc.allocate(A, &mut b)).collect();
        let steps_of_two = ports.windows(2).filter(|w| w[1] == w[0] + 2).count();
        assert!(steps_of_two < 5, "{ports:?}");
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len());
        // Another seed, another sequence.
        let mut other = PortAllocator::new(30000, 40000, [8; 32], Arc::new(RelayPorts::new([A])));
        let first: Vec<u16> = (0..5).filter_map(|_| other.allocate(A, &mut b)).collect();
        assert_ne!(first[..], ports[..5]);
    }

    #[test]
    fn ports_in_use_are_published() {
        let published = Arc::new(RelayPorts::new([A]));
        let mut alloc = PortAllocator::new(30000, 30003, [1; 32], published.clone());
        let mut b = AcceptAll::default();
        let p = alloc.allocate(A, &mut b).expect("a pair");
        assert!(published.holds(A, p) && published.holds(A, p + 1));
        alloc.release(A, p, &mut b);
        assert!(!published.holds(A, p) && !published.holds(A, p + 1));
    }

    #[test]
    fn pools_are_per_address() {
        let mut alloc = alloc(30000, 30003);
        let mut b = AcceptAll::default();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(alloc.allocate(A, &mut b), Some(30000));
        assert_eq!(alloc.allocate(v6, &mut b), Some(30000));
    }
}
