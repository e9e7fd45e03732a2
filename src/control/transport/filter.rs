//! Which datagram sources the NG UDP listener refuses before the handler sees them.
//!
//! An SDP can aim a call's media at the NG port. The session layer refuses such targets, but if
//! that check ever fails, the relay's own media socket would forward an attacker's "RTP" (a
//! `<cookie> <dict>` payload) to NG, and the NG reply would go back through the call to the
//! attacker. So the listener drops every datagram whose source is one of the relay's media
//! sockets: an address of a media interface with a port in the media range. Port 0 is never a
//! real sender either. Both are counted, for `/metrics`.
//!
//! Media sockets are bound to the interfaces' own addresses, so the address set is those
//! addresses; an interface on the unspecified address stands for every address of the host
//! ([`relay_addresses`]). Only UDP needs this: media sockets cannot open TCP connections.
//!
//! The rule cannot tell a media socket from another program's socket on the same address whose
//! (ephemeral) port falls in the media range while the relay does not hold that port. A
//! [`RelaySocketProbe`] that knows which ports the relay holds makes it exact; without one, such
//! a client is dropped (and logged, rate-limited, with what to change).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::NgPeer;

/// Tells whether a local address (interface address and media-range port) is one of the relay's
/// media sockets right now.
pub type RelaySocketProbe = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// What [`SourceFilter::classify`] says about a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// One of the relay's own media sockets.
    FromMedia,
    /// Source port 0.
    PortZero,
}

/// The NG UDP source filter; one is shared by all UDP listeners so its counters cover them all.
pub struct SourceFilter {
    relay_addrs: Vec<IpAddr>,
    ports: Option<RangeInclusive<u16>>,
    probe: Option<RelaySocketProbe>,
    from_media: AtomicU64,
    port_zero: AtomicU64,
}

impl std::fmt::Debug for SourceFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceFilter")
            .field("relay_addrs", &self.relay_addrs)
            .field("ports", &self.ports)
            .field("probe", &self.probe.is_some())
            .finish_non_exhaustive()
    }
}

impl SourceFilter {
    /// Drops sources on one of `relay_addrs` with a port in `port_min..=port_max`, and port 0.
    pub fn new(
        relay_addrs: impl IntoIterator<Item = IpAddr>,
        port_min: u16,
        port_max: u16,
    ) -> SourceFilter {
        let mut relay_addrs: Vec<IpAddr> = relay_addrs
            .into_iter()
            .map(|ip| ip.to_canonical())
            .collect();
        relay_addrs.sort_unstable();
        relay_addrs.dedup();
        SourceFilter {
            relay_addrs,
            ports: Some(port_min..=port_max),
            probe: None,
            from_media: AtomicU64::new(0),
            port_zero: AtomicU64::new(0),
        }
    }

    /// Drops only port 0 (tests, and listeners with no media plane behind them).
    pub fn allow_all() -> SourceFilter {
        SourceFilter {
            relay_addrs: Vec::new(),
            ports: None,
            probe: None,
            from_media: AtomicU64::new(0),
            port_zero: AtomicU64::new(0),
        }
    }

    /// Asks `probe` before dropping a source that looks like a media socket, so that another
    /// program's socket in the media range is not refused while the relay does not hold it.
    pub fn with_probe(mut self, probe: RelaySocketProbe) -> SourceFilter {
        self.probe = Some(probe);
        self
    }

    /// The addresses whose media-range ports are refused.
    pub fn relay_addrs(&self) -> &[IpAddr] {
        &self.relay_addrs
    }

    /// What to do with a datagram from `src` (counts nothing).
    pub fn classify(&self, src: SocketAddr) -> Verdict {
        if src.port() == 0 {
            return Verdict::PortZero;
        }
        let Some(ports) = &self.ports else {
            return Verdict::Accept;
        };
        let ip = src.ip().to_canonical();
        let looks_like_media =
            ports.contains(&src.port()) && self.relay_addrs.binary_search(&ip).is_ok();
        if !looks_like_media {
            return Verdict::Accept;
        }
        match &self.probe {
            Some(probe) if !probe(SocketAddr::new(ip, src.port())) => Verdict::Accept,
            _ => Verdict::FromMedia,
        }
    }

    /// True if a datagram from `peer` may reach the handler; counts and logs the drops. A peer
    /// without an IP address (an LD_PRELOAD shim's opaque address) cannot be checked and passes.
    pub fn admit(&self, peer: &NgPeer) -> bool {
        let Some(src) = peer.addr() else {
            return true;
        };
        match self.classify(src) {
            Verdict::Accept => true,
            Verdict::FromMedia => {
                let n = self.from_media.fetch_add(1, Ordering::Relaxed) + 1;
                // Logged at 1, 2, 4, 8, ...: a flood cannot flood the log.
                if n.is_power_of_two() {
                    tracing::warn!(
                        %src,
                        dropped = n,
                        "NG datagram from one of the relay's own media ports dropped (if this is \
                         a real NG client on this host, move the media port range out of the \
                         kernel's ephemeral ports, net.ipv4.ip_local_port_range)"
                    );
                }
                false
            }
            Verdict::PortZero => {
                let n = self.port_zero.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(%src, dropped = n, "NG datagram from port 0 dropped");
                }
                false
            }
        }
    }

    /// Datagrams dropped because they came from one of the relay's media sockets.
    pub fn dropped_from_media(&self) -> u64 {
        self.from_media.load(Ordering::Relaxed)
    }

    /// Datagrams dropped because their source port was 0.
    pub fn dropped_port_zero(&self) -> u64 {
        self.port_zero.load(Ordering::Relaxed)
    }
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`), if it can be read: a
/// media range that overlaps it can make the filter refuse a local NG client (see the module
/// doc).
pub fn ephemeral_ports() -> Option<RangeInclusive<u16>> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Some(lo..=hi),
        _ => None,
    }
}

/// The filter's counters in the Prometheus text format, for `/metrics`.
pub fn render_metrics(filter: &SourceFilter) -> String {
    format!(
        "# HELP rtprelay_ng_dropped_total NG datagrams dropped unanswered, by reason.\n\
         # TYPE rtprelay_ng_dropped_total counter\n\
         rtprelay_ng_dropped_total{{reason=\"media_source\"}} {}\n\
         rtprelay_ng_dropped_total{{reason=\"port_zero\"}} {}\n",
        filter.dropped_from_media(),
        filter.dropped_port_zero()
    )
}

/// The addresses the relay's media sockets can send from: the interfaces' local addresses, where
/// an unspecified one (`0.0.0.0`, `::`) stands for every address of the host (`host`).
pub fn relay_addresses(locals: &[IpAddr], host: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for ip in locals {
        if ip.is_unspecified() {
            out.extend(host.iter().copied());
        } else {
            out.push(*ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn filter() -> SourceFilter {
        SourceFilter::new(
            [
                IpAddr::from([203, 0, 113, 1]),
                "2001:db8::1".parse().unwrap_or_else(|_| unreachable!()),
            ],
            30000,
            40000,
        )
    }

    #[test]
    fn media_ports_on_relay_addresses_are_refused() {
        let f = filter();
        assert_eq!(f.classify(sa("203.0.113.1:30000")), Verdict::FromMedia);
        assert_eq!(f.classify(sa("203.0.113.1:40000")), Verdict::FromMedia);
        assert_eq!(f.classify(sa("[2001:db8::1]:35000")), Verdict::FromMedia);
        // The IPv4-mapped form a dual-stack socket reports.
        assert_eq!(
            f.classify(sa("[::ffff:203.0.113.1]:35000")),
            Verdict::FromMedia
        );
        // Outside the range, or another address: a client.
        assert_eq!(f.classify(sa("203.0.113.1:29999")), Verdict::Accept);
        assert_eq!(f.classify(sa("203.0.113.1:40001")), Verdict::Accept);
        assert_eq!(f.classify(sa("203.0.113.2:35000")), Verdict::Accept);
        assert_eq!(f.classify(sa("127.0.0.1:35000")), Verdict::Accept);
        // Port 0 from anywhere.
        assert_eq!(f.classify(sa("198.51.100.7:0")), Verdict::PortZero);
        assert_eq!(
            SourceFilter::allow_all().classify(sa("1.2.3.4:0")),
            Verdict::PortZero
        );
        assert_eq!(
            SourceFilter::allow_all().classify(sa("203.0.113.1:35000")),
            Verdict::Accept
        );
    }

    #[test]
    fn drops_are_counted() {
        let f = filter();
        assert!(f.admit(&NgPeer::from_addr(sa("198.51.100.7:5060"))));
        assert!(!f.admit(&NgPeer::from_addr(sa("203.0.113.1:31000"))));
        assert!(!f.admit(&NgPeer::from_addr(sa("203.0.113.1:31001"))));
        assert!(!f.admit(&NgPeer::from_addr(sa("198.51.100.7:0"))));
        assert_eq!((f.dropped_from_media(), f.dropped_port_zero()), (2, 1));
    }

    #[test]
    fn a_probe_lets_other_programs_ports_through() {
        let held = sa("203.0.113.1:31000");
        let f = filter().with_probe(Arc::new(move |a| a == held));
        assert_eq!(f.classify(held), Verdict::FromMedia);
        assert_eq!(f.classify(sa("203.0.113.1:31002")), Verdict::Accept);
    }

    #[test]
    fn metrics_text() {
        let f = filter();
        assert!(!f.admit(&NgPeer::from_addr(sa("203.0.113.1:31000"))));
        let text = render_metrics(&f);
        assert!(
            text.contains("rtprelay_ng_dropped_total{reason=\"media_source\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("rtprelay_ng_dropped_total{reason=\"port_zero\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn an_unspecified_interface_means_every_host_address() {
        let host = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::from([192, 0, 2, 5]),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let got = relay_addresses(
            &[
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::from([10, 0, 0, 1]),
            ],
            &host,
        );
        assert_eq!(
            got,
            [host[0], host[1], host[2], IpAddr::from([10, 0, 0, 1])]
        );
        let f = SourceFilter::new(got, 30000, 40000);
        assert_eq!(f.classify(sa("127.0.0.1:30002")), Verdict::FromMedia);
        assert_eq!(f.classify(sa("[::1]:30002")), Verdict::FromMedia);
    }
}
