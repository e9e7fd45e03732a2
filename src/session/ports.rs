//! RTP/RTCP port pairs from the configured range, one pool per local address, handed out with
//! no I/O.
//!
//! Binding is the daemon's part, around each command: [`Engine::plan_ports`] tells this pool how
//! many pairs the command may take on each address and which parked pairs it may use again; the
//! daemon's [`PortAllocator::sync`] binds them (through its [`PortBinder`]), the command takes
//! pairs with no I/O, and the next `sync` closes the sockets of pairs that were freed, parked or
//! left over. Pairs are picked at random from the free ones; a pair the binder refuses (another
//! program holds a port) is skipped. So the relay holds, between commands, exactly the pairs its
//! calls use, as when it bound each pair inside the command.
//!
//! [`Engine::plan_ports`]: crate::session::Engine::plan_ports

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::guard::RelayPorts;

/// Binds (or, in tests, pretends to bind) the RTP port and RTP+1 on an address. Only
/// [`PortAllocator::sync`] calls it, between commands.
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

/// Port pairs per local address: free, bound for the command at hand, or held by calls.
///
/// Random choice (as rtpengine does) keeps the next call's ports from being guessed: an injector
/// that knows one call's ports learns nothing about the next one's.
#[derive(Debug)]
pub struct PortAllocator {
    /// First even port of the range.
    min: u16,
    /// Last usable RTP port (even, with `max_rtp + 1` inside the range).
    max_rtp: u16,
    /// In address order, so that the picks of one seed are always the same.
    pools: BTreeMap<IpAddr, Pool>,
    rng: StdRng,
    /// Where the ports the relay holds are published for the workers and the target checks.
    published: Arc<RelayPorts>,
    /// Pairs the next command may take on each address (see [`plan`](Self::plan)).
    demand: usize,
    /// Parked pairs the next command may use again, to bind for it.
    rebind: Vec<(IpAddr, u16)>,
    /// Pairs whose sockets the next sync closes: freed, parked, or bound and not taken.
    to_close: Vec<(IpAddr, u16)>,
}

#[derive(Debug)]
struct Pool {
    /// Held by calls, current or parked.
    used: BTreeSet<u16>,
    /// Neither bound nor held, in no particular order (a pick swaps out of the middle).
    free: Vec<u16>,
    /// Bound for the command at hand and not taken yet, in the (random) order they were picked.
    ready: VecDeque<u16>,
    /// Parked pairs bound again for the command at hand.
    rebound: BTreeSet<u16>,
}

/// Random picks before a pool whose picks keep being refused by the binder is searched in full.
const RANDOM_TRIES: usize = 32;

impl PortAllocator {
    /// `port_min..=port_max` as configured; validated by the config layer to hold at least one
    /// pair. `seed` makes the choice of ports unpredictable (the daemon gives it from the OS).
    /// `locals`: the addresses pairs are taken on.
    pub fn new(
        port_min: u16,
        port_max: u16,
        seed: [u8; 32],
        published: Arc<RelayPorts>,
        locals: impl IntoIterator<Item = IpAddr>,
    ) -> Self {
        let min = port_min.saturating_add(port_min % 2);
        let max_rtp = if port_max % 2 == 0 {
            port_max.saturating_sub(2)
        } else {
            port_max.saturating_sub(1)
        };
        let max_rtp = max_rtp.max(min);
        let pools = locals
            .into_iter()
            .map(|local| {
                let pool = Pool {
                    used: BTreeSet::new(),
                    free: (min..=max_rtp).step_by(2).collect(),
                    ready: VecDeque::new(),
                    rebound: BTreeSet::new(),
                };
                (local, pool)
            })
            .collect();
        PortAllocator {
            min,
            max_rtp,
            pools,
            rng: StdRng::from_seed(seed),
            published,
            demand: 0,
            rebind: Vec::new(),
            to_close: Vec::new(),
        }
    }

    /// Number of RTP/RTCP pairs the range holds.
    pub fn capacity(&self) -> usize {
        usize::from((self.max_rtp - self.min) / 2) + 1
    }

    /// Pairs held by calls on `local`.
    pub fn in_use(&self, local: IpAddr) -> usize {
        self.pools.get(&local).map_or(0, |p| p.used.len())
    }

    /// Pairs bound for the command at hand on `local`, not taken yet.
    pub fn ready(&self, local: IpAddr) -> usize {
        self.pools.get(&local).map_or(0, |p| p.ready.len())
    }

    /// Before a command: it may take up to `pairs` pairs on each address, and use the parked
    /// pairs `parked` again. The next [`sync`](Self::sync) binds them.
    pub fn plan(&mut self, pairs: usize, parked: impl IntoIterator<Item = (IpAddr, u16)>) {
        self.demand = pairs;
        self.rebind = parked.into_iter().collect();
    }

    /// The I/O around a command, run by the daemon before and after it: closes the sockets of
    /// freed, parked and left-over pairs, then binds what the planned command may need.
    pub fn sync(&mut self, binder: &mut dyn PortBinder) {
        for (local, port) in self.to_close.drain(..) {
            binder.release_pair(local, port);
        }
        for (local, port) in std::mem::take(&mut self.rebind) {
            let Some(pool) = self.pools.get_mut(&local) else {
                continue;
            };
            if pool.used.contains(&port) && binder.bind_pair(local, port) {
                pool.rebound.insert(port);
            }
        }
        for (&local, pool) in &mut self.pools {
            while pool.ready.len() < self.demand {
                let Some(port) = pick(pool, &mut self.rng, |port| binder.bind_pair(local, port))
                else {
                    break;
                };
                pool.ready.push_back(port);
                self.published.mark_pair(local, port);
            }
        }
    }

    /// Takes a bound pair on `local` for a call; `None` when none is left (the range is
    /// exhausted, or every free pair was refused by the binder).
    pub fn take(&mut self, local: IpAddr) -> Option<u16> {
        let pool = self.pools.get_mut(&local)?;
        let port = pool.ready.pop_front()?;
        pool.used.insert(port);
        Some(port)
    }

    /// Returns a pair to the free ones; its sockets close at the next sync.
    pub fn release(&mut self, local: IpAddr, rtp_port: u16) {
        if let Some(pool) = self.pools.get_mut(&local) {
            if pool.used.remove(&rtp_port) {
                pool.rebound.remove(&rtp_port);
                pool.free.push(rtp_port);
                self.published.clear_pair(local, rtp_port);
                self.to_close.push((local, rtp_port));
            }
        }
    }

    /// Keeps a pair for its call while its flows close; its sockets close at the next sync.
    pub fn park(&mut self, local: IpAddr, rtp_port: u16) {
        if let Some(pool) = self.pools.get_mut(&local) {
            if pool.used.contains(&rtp_port) {
                pool.rebound.remove(&rtp_port);
                self.to_close.push((local, rtp_port));
            }
        }
    }

    /// Uses a parked pair again: `true` when it was bound again for this command, `false` when
    /// it could not be, and the caller should take another.
    pub fn unpark(&mut self, local: IpAddr, rtp_port: u16) -> bool {
        self.pools
            .get_mut(&local)
            .is_some_and(|pool| pool.rebound.remove(&rtp_port))
    }

    /// Takes the given pairs for restored calls (a restart or a takeover), binding each at once.
    /// Returns the pairs taken; a pair is left out when its address has no pool, it is outside
    /// the range or held already, or the binder refuses it. One pass over each pool, however
    /// many pairs: a takeover restores thousands of calls at once.
    pub fn adopt(
        &mut self,
        wanted: &[(IpAddr, u16)],
        binder: &mut dyn PortBinder,
    ) -> BTreeSet<(IpAddr, u16)> {
        let mut taken = BTreeSet::new();
        for (&local, pool) in &mut self.pools {
            let mut want: BTreeSet<u16> = wanted
                .iter()
                .filter(|(l, _)| *l == local)
                .map(|&(_, p)| p)
                .collect();
            pool.free.retain(|&port| {
                if !want.remove(&port) || !binder.bind_pair(local, port) {
                    return true;
                }
                pool.used.insert(port);
                self.published.mark_pair(local, port);
                taken.insert((local, port));
                false
            });
        }
        taken
    }

    /// After a command: what it bound and did not take goes back (the next sync closes it).
    pub fn done(&mut self) {
        self.demand = 0;
        self.rebind.clear();
        for (&local, pool) in &mut self.pools {
            for port in std::mem::take(&mut pool.rebound) {
                self.to_close.push((local, port));
            }
            for port in pool.ready.drain(..) {
                pool.free.push(port);
                self.published.clear_pair(local, port);
                self.to_close.push((local, port));
            }
        }
    }
}
/// Moves a free pair the binder accepts out of `pool.free`: a few random picks, then, if the
/// binder kept refusing (another program holds those pairs), every free pair once from a
/// random offset.
fn pick(pool: &mut Pool, rng: &mut StdRng, mut bind: impl FnMut(u16) -> bool) -> Option<u16> {
    let mut take = |pool: &mut Pool, at: usize| {
        let port = pool.free.get(at).copied()?;
        if !bind(port) {
            return None;
        }
        pool.free.swap_remove(at);
        Some(port)
    };
    for _ in 0..RANDOM_TRIES {
        if pool.free.is_empty() {
            return None;
        }
        let at = rng.random_range(0..pool.free.len());
        if let Some(port) = take(pool, at) {
            return Some(port);
        }
    }
    let n = pool.free.len();
    if n == 0 {
        return None;
    }
    let offset = rng.random_range(0..n);
    (0..n).find_map(|k| take(pool, (offset + k) % n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn alloc(min: u16, max: u16) -> PortAllocator {
        PortAllocator::new(min, max, [7; 32], Arc::new(RelayPorts::new([A])), [A])
    }

    /// Binds up to `n` pairs on every address for the next takes, as the daemon does before a
    /// command.
    fn bind_for(alloc: &mut PortAllocator, n: usize, b: &mut dyn PortBinder) {
        alloc.plan(n, []);
        alloc.sync(b);
    }

    /// Refuses one port and counts the binds it was asked for.
    #[derive(Default)]
    struct Refuse {
        port: Option<u16>,
        binds: usize,
    }
    impl PortBinder for Refuse {
        fn bind_pair(&mut self, _: IpAddr, p: u16) -> bool {
            self.binds += 1;
            Some(p) != self.port
        }
        fn release_pair(&mut self, _: IpAddr, _: u16) {}
    }

    #[test]
    fn restored_pairs_are_bound_and_held_once() {
        let mut a = alloc(10000, 10019);
        let mut b = AcceptAll::default();
        let ip = A;
        let other: IpAddr = "192.0.2.99".parse().expect("ip");
        // 10004 twice, 10005 odd (not a pair), 20000 outside, an unknown address.
        let wanted = [
            (ip, 10004),
            (ip, 10004),
            (ip, 10005),
            (ip, 20000),
            (ip, 10010),
            (other, 10006),
        ];
        let taken = a.adopt(&wanted, &mut b);
        assert_eq!(
            taken.into_iter().collect::<Vec<_>>(),
            vec![(ip, 10004), (ip, 10010)]
        );
        assert_eq!(a.in_use(ip), 2);
        assert_eq!(b.bound.len(), 2);
        // Held: neither a second restore nor a new command gets them.
        assert!(a.adopt(&[(ip, 10004)], &mut b).is_empty());
        bind_for(&mut a, 8, &mut b);
        let mut got = Vec::new();
        while let Some(p) = a.take(ip) {
            got.push(p);
        }
        assert_eq!(got.len(), 8);
        assert!(!got.contains(&10004) && !got.contains(&10010));
    }

    #[test]
    fn allocates_every_even_pair_once_and_reuses_released_ones() {
        let mut alloc = alloc(30001, 30008);
        let mut b = AcceptAll::default();
        assert_eq!(alloc.capacity(), 3); // 30002, 30004, 30006 (30008 has no RTCP port)
        bind_for(&mut alloc, 4, &mut b);
        let mut got: Vec<u16> = (0..3).filter_map(|_| alloc.take(A)).collect();
        got.sort_unstable();
        assert_eq!(got, vec![30002, 30004, 30006]);
        assert_eq!(alloc.take(A), None, "range exhausted");
        alloc.release(A, 30004);
        alloc.done();
        bind_for(&mut alloc, 1, &mut b);
        assert_eq!(alloc.take(A), Some(30004));
        assert_eq!(alloc.in_use(A), 3);
    }

    #[test]
    fn skips_pairs_the_binder_refuses() {
        let mut alloc = alloc(40000, 40003);
        let mut b = Refuse {
            port: Some(40000),
            ..Refuse::default()
        };
        bind_for(&mut alloc, 1, &mut b);
        assert_eq!(alloc.take(A), Some(40002));
        alloc.done();
        bind_for(&mut alloc, 1, &mut b);
        assert_eq!(alloc.take(A), None, "40000 stays refused");
    }

    #[test]
    fn taking_and_releasing_bind_nothing() {
        let mut alloc = alloc(30000, 30099);
        let mut b = Refuse::default();
        bind_for(&mut alloc, 10, &mut b);
        let binds = b.binds;
        assert_eq!(alloc.ready(A), 10);
        let ports: Vec<u16> = (0..10).filter_map(|_| alloc.take(A)).collect();
        assert_eq!(alloc.take(A), None, "no more than planned");
        for p in &ports {
            alloc.release(A, *p);
        }
        assert_eq!(b.binds, binds, "only sync binds");
    }

    #[test]
    fn pairs_not_taken_are_closed_after_the_command() {
        let mut alloc = alloc(30000, 30099);
        let mut b = AcceptAll::default();
        bind_for(&mut alloc, 3, &mut b);
        let p = alloc.take(A).expect("a pair");
        assert_eq!(b.bound.len(), 3);
        alloc.done();
        alloc.sync(&mut b);
        assert_eq!(b.bound.iter().map(|a| a.port()).collect::<Vec<_>>(), [p]);
        assert_eq!(alloc.ready(A), 0);
        alloc.release(A, p);
        alloc.sync(&mut b);
        assert!(b.bound.is_empty());
    }

    #[test]
    fn consecutive_calls_get_unpredictable_ports() {
        // Sequential allocation would hand out 30000, 30002, 30004...: the next call's ports
        // would be known from the last one's.
        let mut alloc = alloc(30000, 40000);
        let mut b = AcceptAll::default();
        let mut next = |alloc: &mut PortAllocator| {
            bind_for(alloc, 2, &mut b);
            let p = alloc.take(A);
            alloc.done();
            p
        };
        let ports: Vec<u16> = (0..50).filter_map(|_| next(&mut alloc)).collect();
        let steps_of_two = ports.windows(2).filter(|w| w[1] == w[0] + 2).count();
        assert!(steps_of_two < 5, "{ports:?}");
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len());
        // Another seed, another sequence.
        let mut other =
            PortAllocator::new(30000, 40000, [8; 32], Arc::new(RelayPorts::new([A])), [A]);
        let first: Vec<u16> = (0..5).filter_map(|_| next(&mut other)).collect();
        assert_ne!(first[..], ports[..5]);
    }

    #[test]
    fn ports_in_use_are_published() {
        let published = Arc::new(RelayPorts::new([A]));
        let mut alloc = PortAllocator::new(30000, 30003, [1; 32], published.clone(), [A]);
        let mut b = AcceptAll::default();
        bind_for(&mut alloc, 2, &mut b);
        let p = alloc.take(A).expect("a pair");
        alloc.done();
        assert!(published.holds(A, p) && published.holds(A, p + 1));
        let other = if p == 30000 { 30002 } else { 30000 };
        assert!(!published.holds(A, other), "not taken: not held");
        alloc.release(A, p);
        assert!(!published.holds(A, p) && !published.holds(A, p + 1));
    }

    #[test]
    fn pools_are_per_address() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let mut alloc = PortAllocator::new(
            30000,
            30001,
            [7; 32],
            Arc::new(RelayPorts::new([A])),
            [A, v6],
        );
        let mut b = AcceptAll::default();
        bind_for(&mut alloc, 1, &mut b);
        assert_eq!(alloc.take(A), Some(30000));
        assert_eq!(alloc.take(v6), Some(30000));
    }

    #[test]
    fn parked_pairs_are_bound_again_for_the_command_that_may_use_them() {
        let mut alloc = alloc(30000, 30099);
        let mut b = AcceptAll::default();
        bind_for(&mut alloc, 1, &mut b);
        let p = alloc.take(A).expect("a pair");
        alloc.park(A, p);
        alloc.done();
        alloc.sync(&mut b);
        assert!(b.bound.is_empty(), "a parked pair is not bound");
        assert!(!alloc.unpark(A, p), "not bound again before a sync");
        alloc.plan(0, [(A, p)]);
        alloc.sync(&mut b);
        assert!(alloc.unpark(A, p));
        assert!(b.bound.contains(&SocketAddr::new(A, p)));
        assert_eq!(alloc.in_use(A), 1);
        alloc.done();
        // Parked again; this time someone else holds it when the command comes.
        alloc.park(A, p);
        alloc.done();
        let mut refuse = Refuse {
            port: Some(p),
            ..Refuse::default()
        };
        alloc.plan(0, [(A, p)]);
        alloc.sync(&mut refuse);
        assert!(!alloc.unpark(A, p));
        alloc.release(A, p);
        assert_eq!(alloc.in_use(A), 0);
    }
}
