//! The next hops the XDP program falls back on (its `peers` map) where `bpf_fib_lookup()`
//! cannot answer: forwarding off on the device (the usual case on a host that is not a
//! router), or no neighbour entry yet.
//!
//! Userspace writes them, and only from the kernel's own routing and neighbour tables: for the
//! (new source, new destination) pair of every installed rule, i.e. once the latch has fixed
//! the peer, the route from the relay's address to the peer and the neighbour entry of its
//! next hop, what the stack itself would send to. Nothing is learnt from packets: a frame that
//! forges a peer's address, even with its port (which passes strict source), moves nothing,
//! so a host on the link cannot draw the peer's media to its own MAC. The defence is the
//! host's: the neighbour table is as trustworthy as ARP/ND on that link.
//!
//! A pair is looked up when its first rule goes in (by the worker installing it, before the
//! rule, so that the hop is there for its first packet), then again by a refresh thread at
//! every pass (1-5 s), so a changed neighbour MAC or route reaches offloaded flows within a
//! pass plus the program's one-second hop cache. A pair whose neighbour the stack is still
//! resolving is retried every few milliseconds for a while. The entry goes when the last rule
//! using the pair does.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::abi::{self, Pod};
use super::rtnl::{unicast_mac, Route, Rtnl};

/// Every pair is looked up again at least this often...
const PASS_MIN: Duration = Duration::from_secs(1);
/// ...and, with many pairs, at most this seldom...
const PASS_MAX: Duration = Duration::from_secs(5);
/// ...so as to make no more than about this many route lookups a second.
const LOOKUPS_PER_SECOND: u64 = 2000;
/// A pair with no hop when its rule went in (the stack is resolving the neighbour for the
/// packets userspace just relayed) is looked up again this often...
const RETRY: Duration = Duration::from_millis(20);
/// ...for this long, then at the passes.
const RETRY_FOR: Duration = Duration::from_secs(3);

/// A rule's (new source, new destination) addresses, IPv4 never v4-mapped.
pub(super) type Pair = (IpAddr, IpAddr);

/// The pair of a rule from `source` to `dest`.
pub(super) fn pair(source: IpAddr, dest: IpAddr) -> Pair {
    (source.to_canonical(), dest.to_canonical())
}

/// The pass interval for `pairs` tracked pairs.
fn interval(pairs: usize) -> Duration {
    let ms = (pairs as u64).saturating_mul(1000) / LOOKUPS_PER_SECOND;
    Duration::from_millis(ms).clamp(PASS_MIN, PASS_MAX)
}

/// The kernel's tables, as a lookup needs them: [`Rtnl`], or a fake in tests.
pub(super) trait Tables {
    fn route(&mut self, src: IpAddr, dst: IpAddr) -> io::Result<Option<Route>>;
    fn neighbour(&mut self, ifindex: u32, addr: IpAddr) -> io::Result<Option<[u8; 6]>>;
    fn link_mac(&mut self, ifindex: u32) -> io::Result<Option<[u8; 6]>>;
}

impl Tables for Rtnl {
    fn route(&mut self, src: IpAddr, dst: IpAddr) -> io::Result<Option<Route>> {
        Rtnl::route(self, src, dst)
    }
    fn neighbour(&mut self, ifindex: u32, addr: IpAddr) -> io::Result<Option<[u8; 6]>> {
        Rtnl::neighbour(self, ifindex, addr)
    }
    fn link_mac(&mut self, ifindex: u32) -> io::Result<Option<[u8; 6]>> {
        Rtnl::link_mac(self, ifindex)
    }
}

/// A route's device and next-hop address (its gateway, or the destination itself on-link).
pub(super) type Via = (u32, IpAddr);

/// A next hop, and the route it was found through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Hop {
    pub via: Via,
    pub peer: abi::Peer,
}

/// What the tables say about a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// No unicast route from the source to the destination.
    NoRoute,
    /// A route, but no usable neighbour entry for its next hop (yet), or a device that is not
    /// Ethernet.
    Unresolved(Via),
    Hop(Hop),
    /// A netlink failure: nothing is known.
    Failed,
}

/// Answers already had in one pass: many pairs share a gateway and a device.
#[derive(Default)]
pub(super) struct Seen {
    neighbours: HashMap<Via, Option<[u8; 6]>>,
    links: HashMap<u32, Option<[u8; 6]>>,
}

/// The workers' lookups: their socket, and the devices' MACs for a while (a device's MAC is
/// the dearest answer, and it hardly ever changes; a pass corrects one that did).
struct First {
    rtnl: Rtnl,
    seen: Seen,
    since: Instant,
}

/// Look `pair` up in `tables`.
pub(super) fn resolve(tables: &mut impl Tables, seen: &mut Seen, (src, dst): Pair) -> Found {
    let route = match tables.route(src, dst) {
        Ok(Some(r)) => r,
        Ok(None) => return Found::NoRoute,
        Err(_) => return Found::Failed,
    };
    let via: Via = (
        route.ifindex,
        route.gateway.map_or(dst, |g| g.to_canonical()),
    );
    let our_mac = match seen.links.get(&via.0) {
        Some(&m) => m,
        None => match tables.link_mac(via.0) {
            Ok(m) => *seen.links.entry(via.0).or_insert(m),
            Err(_) => return Found::Failed,
        },
    };
    let peer_mac = match seen.neighbours.get(&via) {
        Some(&m) => m,
        None => match tables.neighbour(via.0, via.1) {
            Ok(m) => *seen.neighbours.entry(via).or_insert(m),
            Err(_) => return Found::Failed,
        },
    };
    match (
        our_mac.and_then(|m| unicast_mac(&m)),
        peer_mac.and_then(|m| unicast_mac(&m)),
    ) {
        (Some(our_mac), Some(peer_mac)) => Found::Hop(Hop {
            via,
            peer: abi::Peer {
                ifindex: via.0,
                our_mac,
                peer_mac,
            },
        }),
        _ => Found::Unresolved(via),
    }
}

/// A tracked pair: how many installed rules use it, and the hop in the map for it.
#[derive(Debug, Default)]
pub(super) struct Entry {
    refs: usize,
    hop: Option<Hop>,
}

/// What a lookup changes in the map.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Change {
    Keep,
    Write(abi::Peer),
    Delete,
}

impl Entry {
    /// Take what the tables said into account.
    pub(super) fn update(&mut self, found: Found) -> Change {
        let next = match found {
            Found::Failed => return Change::Keep,
            Found::NoRoute => None,
            // The neighbour entry of a route that still stands may be gone: the kernel collects
            // entries the stack no longer uses, and with the flow offloaded it uses it no more.
            // The hop found through that same route still holds.
            Found::Unresolved(via) => self.hop.filter(|h| h.via == via),
            Found::Hop(h) => Some(h),
        };
        if next == self.hop {
            return Change::Keep;
        }
        self.hop = next;
        match next {
            Some(h) => Change::Write(h.peer),
            None => Change::Delete,
        }
    }
}

#[derive(Debug, Default)]
struct Book {
    pairs: HashMap<Pair, Entry>,
    /// Pairs that had no hop when their first rule went in, and until when to retry them.
    retry: Vec<(Pair, Instant)>,
    stop: bool,
}

/// The tracked pairs and the `peers` map; shared by the workers (through the table) and the
/// refresh thread.
pub(super) struct NextHops {
    peers: MapHandle,
    book: Mutex<Book>,
    wake: Condvar,
    /// The first lookups, made by the workers as they install rules (the refresh thread has its
    /// own socket): opened on first use, None while it cannot be.
    first: Mutex<Option<First>>,
}

impl NextHops {
    pub(super) fn new(peers: MapHandle) -> NextHops {
        NextHops {
            peers,
            book: Mutex::new(Book::default()),
            wake: Condvar::new(),
            first: Mutex::new(None),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // Every step leaves the book consistent: keep going after a panic elsewhere.
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A rule for `pair` is going in. On the pair's first rule its next hop is looked up at
    /// once, so that it is in the map before the rule; one still unresolved is retried soon.
    pub(super) fn acquire(&self, pair: Pair) {
        let first = {
            let mut book = self.book();
            let e = book.pairs.entry(pair).or_default();
            e.refs += 1;
            e.refs == 1
        };
        if !first {
            return;
        }
        let found = {
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if first.is_none() {
                *first = Rtnl::open()
                    .map_err(|e| tracing::warn!(error = %e, "XDP: no netlink socket for next hops"))
                    .ok()
                    .map(|rtnl| First {
                        rtnl,
                        seen: Seen::default(),
                        since: now,
                    });
            }
            match first.as_mut() {
                Some(f) => {
                    // Neighbours always afresh; device MACs for up to a pass.
                    f.seen.neighbours.clear();
                    if now.duration_since(f.since) >= PASS_MIN {
                        f.seen.links.clear();
                        f.since = now;
                    }
                    resolve(&mut f.rtnl, &mut f.seen, pair)
                }
                None => Found::Failed,
            }
        };
        let mut book = self.book();
        if self.apply(&mut book, pair, found) == Some(false) {
            book.retry.push((pair, Instant::now() + RETRY_FOR));
            drop(book);
            self.wake.notify_all();
        }
    }

    /// A rule for `pair` went: the last one takes the pair's hop out of the map.
    pub(super) fn release(&self, pair: Pair) {
        let mut book = self.book();
        let Some(e) = book.pairs.get_mut(&pair) else {
            return;
        };
        e.refs = e.refs.saturating_sub(1);
        if e.refs > 0 {
            return;
        }
        let had = e.hop.is_some();
        book.pairs.remove(&pair);
        book.retry.retain(|&(p, _)| p != pair);
        if had {
            self.delete(pair);
        }
    }

    /// Apply `found` to `pair` and the map, if the pair is still tracked: whether it has a hop
    /// now (None: not tracked any more).
    fn apply(&self, book: &mut Book, pair: Pair, found: Found) -> Option<bool> {
        let e = book.pairs.get_mut(&pair)?;
        match e.update(found) {
            Change::Keep => {}
            Change::Write(peer) => {
                let key = abi::pair_key(pair.0, pair.1);
                if let Err(err) = self
                    .peers
                    .update(key.as_bytes(), peer.as_bytes(), MapFlags::ANY)
                {
                    tracing::warn!(src = %pair.0, dst = %pair.1, error = %err,
                        "XDP: cannot write a next hop");
                    // Not in the map: the next lookup writes it again.
                    e.hop = None;
                }
            }
            Change::Delete => self.delete(pair),
        }
        Some(e.hop.is_some())
    }

    fn delete(&self, pair: Pair) {
        let key = abi::pair_key(pair.0, pair.1);
        match self.peers.delete(key.as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(src = %pair.0, dst = %pair.1, error = %e,
                "XDP: cannot remove a next hop"),
        }
    }

    /// Look every tracked pair up again (`all`), or only those waiting for a retry.
    pub(super) fn refresh(&self, tables: &mut impl Tables, all: bool) {
        let now = Instant::now();
        let todo: Vec<Pair> = {
            let mut book = self.book();
            let Book { pairs, retry, .. } = &mut *book;
            retry.retain(|&(p, until)| {
                now < until && pairs.get(&p).is_some_and(|e| e.hop.is_none())
            });
            if all {
                pairs.keys().copied().collect()
            } else {
                retry.iter().map(|&(p, _)| p).collect()
            }
        };
        let mut seen = Seen::default();
        for pair in todo {
            let found = resolve(tables, &mut seen, pair);
            self.apply(&mut self.book(), pair, found);
        }
    }

    /// The refresh loop, on its own thread until [`NextHops::stop`]: every pair at each pass,
    /// the pairs waiting for their neighbour more often.
    pub(super) fn run(&self) {
        let mut rtnl = match Rtnl::open() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e,
                    "XDP: no netlink socket: next hops are looked up as rules go in, never again");
                return;
            }
        };
        let mut next_pass = Instant::now() + PASS_MIN;
        loop {
            let all = {
                let mut book = self.book();
                if book.stop {
                    return;
                }
                let left = next_pass.saturating_duration_since(Instant::now());
                let wait = if book.retry.is_empty() {
                    left
                } else {
                    left.min(RETRY)
                };
                if !wait.is_zero() {
                    book = self
                        .wake
                        .wait_timeout(book, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    if book.stop {
                        return;
                    }
                }
                let now = Instant::now();
                let all = now >= next_pass;
                if all {
                    next_pass = now + interval(book.pairs.len());
                } else if book.retry.is_empty() {
                    // Woken early with nothing to retry.
                    continue;
                }
                all
            };
            self.refresh(&mut rtnl, all);
        }
    }

    /// End [`NextHops::run`].
    pub(super) fn stop(&self) {
        self.book().stop = true;
        self.wake.notify_all();
    }

    /// The `peers` map (tests).
    #[cfg(test)]
    pub(super) fn map(&self) -> &MapHandle {
        &self.peers
    }

    /// Pairs tracked (tests).
    #[cfg(test)]
    pub(super) fn tracked(&self) -> usize {
        self.book().pairs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: [u8; 6] = [2, 0, 0, 0, 9, 1];
    const OURS: [u8; 6] = [2, 0, 0, 0, 1, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 1, 3];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Tables with 192.0.2.0/24 on device 2 and everything else via 192.0.2.254; the
    /// neighbours in `neighbours`; counts the lookups.
    #[derive(Default)]
    struct Fake {
        neighbours: HashMap<IpAddr, [u8; 6]>,
        fail: bool,
        routes: usize,
        neighbour_lookups: usize,
        link_lookups: usize,
    }

    impl Tables for Fake {
        fn route(&mut self, _src: IpAddr, dst: IpAddr) -> io::Result<Option<Route>> {
            self.routes += 1;
            if self.fail {
                return Err(io::Error::other("netlink"));
            }
            Ok(match dst {
                IpAddr::V4(a) if a.octets()[..3] == [192, 0, 2] => Some(Route {
                    ifindex: 2,
                    gateway: None,
                }),
                IpAddr::V4(a) if a.octets()[0] == 10 => None,
                _ => Some(Route {
                    ifindex: 2,
                    gateway: Some(ip("192.0.2.254")),
                }),
            })
        }
        fn neighbour(&mut self, ifindex: u32, addr: IpAddr) -> io::Result<Option<[u8; 6]>> {
            self.neighbour_lookups += 1;
            assert_eq!(ifindex, 2);
            Ok(self.neighbours.get(&addr).copied())
        }
        fn link_mac(&mut self, ifindex: u32) -> io::Result<Option<[u8; 6]>> {
            self.link_lookups += 1;
            Ok((ifindex == 2).then_some(OURS))
        }
    }

    fn hop(via: &str, mac: [u8; 6]) -> Hop {
        Hop {
            via: (2, ip(via)),
            peer: abi::Peer {
                ifindex: 2,
                our_mac: OURS,
                peer_mac: mac,
            },
        }
    }

    #[test]
    fn pairs_take_ipv4_as_ipv4() {
        assert_eq!(
            pair(ip("::ffff:192.0.2.1"), ip("::ffff:192.0.2.3")),
            (ip("192.0.2.1"), ip("192.0.2.3"))
        );
        assert_eq!(
            pair(ip("2001:db8::1"), ip("::1")),
            (ip("2001:db8::1"), ip("::1"))
        );
    }

    #[test]
    fn a_hop_is_the_next_hops_neighbour_entry() {
        let mut t = Fake::default();
        t.neighbours.insert(ip("192.0.2.3"), B);
        t.neighbours.insert(ip("192.0.2.254"), GW);
        let src = ip("192.0.2.1");
        let mut seen = Seen::default();
        assert_eq!(
            resolve(&mut t, &mut seen, (src, ip("192.0.2.3"))),
            Found::Hop(hop("192.0.2.3", B))
        );
        // Off-link: the gateway's entry, looked up once for every destination behind it.
        for dst in ["203.0.113.5", "198.51.100.7", "2001:db8::5"] {
            let found = resolve(&mut t, &mut seen, (src, ip(dst)));
            assert_eq!(found, Found::Hop(hop("192.0.2.254", GW)), "{dst}");
        }
        assert_eq!((t.routes, t.neighbour_lookups, t.link_lookups), (4, 2, 1));
        // No entry (still resolving), no route, a netlink failure.
        assert_eq!(
            resolve(&mut t, &mut seen, (src, ip("192.0.2.9"))),
            Found::Unresolved((2, ip("192.0.2.9")))
        );
        assert_eq!(
            resolve(&mut t, &mut seen, (src, ip("10.1.1.1"))),
            Found::NoRoute
        );
        t.fail = true;
        assert_eq!(
            resolve(&mut t, &mut Seen::default(), (src, ip("192.0.2.3"))),
            Found::Failed
        );
    }

    #[test]
    fn a_multicast_or_broadcast_neighbour_mac_is_never_a_hop() {
        let mut t = Fake::default();
        let src = ip("192.0.2.1");
        for mac in [
            [0x01, 0, 0x5e, 0, 0, 1],
            [0xff; 6],
            [0x33, 0x33, 0, 0, 0, 1],
        ] {
            t.neighbours.insert(ip("192.0.2.3"), mac);
            assert_eq!(
                resolve(&mut t, &mut Seen::default(), (src, ip("192.0.2.3"))),
                Found::Unresolved((2, ip("192.0.2.3"))),
                "{mac:02x?}"
            );
        }
    }

    #[test]
    fn updates_write_what_changed_and_keep_a_hop_whose_route_stands() {
        let mut e = Entry::default();
        let h = hop("192.0.2.3", B);
        assert_eq!(e.update(Found::Failed), Change::Keep);
        assert_eq!(e.update(Found::Unresolved(h.via)), Change::Keep);
        assert_eq!(e.update(Found::Hop(h)), Change::Write(h.peer));
        assert_eq!(e.update(Found::Hop(h)), Change::Keep);
        // The neighbour entry was collected, the route is the same: the hop holds.
        assert_eq!(e.update(Found::Unresolved(h.via)), Change::Keep);
        assert_eq!(e.update(Found::Failed), Change::Keep);
        assert_eq!(e.hop, Some(h));
        // A new MAC for the same next hop.
        let moved = hop("192.0.2.3", GW);
        assert_eq!(e.update(Found::Hop(moved)), Change::Write(moved.peer));
        // The route now goes elsewhere, unresolved yet: the old hop is wrong.
        assert_eq!(
            e.update(Found::Unresolved((2, ip("192.0.2.254")))),
            Change::Delete
        );
        assert_eq!(e.update(Found::Hop(h)), Change::Write(h.peer));
        assert_eq!(e.update(Found::NoRoute), Change::Delete);
        assert_eq!(e.update(Found::NoRoute), Change::Keep);
    }

    #[test]
    fn passes_slow_down_with_many_pairs_within_bounds() {
        assert_eq!(interval(0), PASS_MIN);
        assert_eq!(interval(2000), PASS_MIN);
        assert_eq!(interval(6000), Duration::from_secs(3));
        assert_eq!(interval(1_000_000), PASS_MAX);
    }
}
