//! Where the relay may send media, and whom it may learn as a peer.
//!
//! An SDP body names the address the relay sends a party's media to, and any SIP endpoint writes
//! its own SDP. Without a check, an offer with `c=IN IP4 127.0.0.1` and the NG port turns the
//! relay into a client of its own control socket, or of any service on its host. The policy
//! refuses, on every setup:
//! - the relay's own sockets: its control listeners (NG over UDP/TCP/HTTP, metrics), the media
//!   ports it holds on its own addresses, and its media port range on addresses that are not
//!   loopback (including the advertised, public side of a NAT);
//!
//! and, when the media interface in use is not a loopback address (every production setup):
//! - loopback, unspecified, multicast, broadcast (limited and the host's subnets) and link-local
//!   addresses (169.254.169.254, a cloud's metadata service, is one), and every address of the
//!   relay's own host, so a public SDP cannot reach Kamailio, Redis or sshd next to the relay.
//!
//! A relay whose media interface is loopback (a lab, the tests) may send to other loopback
//! ports. The operator's `--media-target-deny` networks are refused and `--media-target-allow`
//! networks are accepted before the built-in classes are looked at; the relay's own sockets
//! stay refused whatever the lists say.
//!
//! The same check decides which packet sources a stream may learn: a source the relay would not
//! send to is never latched onto (a packet from one of the relay's own ports is a loop).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

use ipnet::IpNet;

use crate::guard::relay_ports::RelayPorts;

/// Why an address was refused as a media target or source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// One of the relay's control listeners (NG, HTTP, metrics).
    OwnControl,
    /// One of the relay's media ports.
    OwnMedia,
    /// An address of the relay's host.
    HostAddress,
    Loopback,
    Unspecified,
    Multicast,
    Broadcast,
    LinkLocal,
    /// Inside a `--media-target-deny` network.
    Denied,
}

impl Refusal {
    /// Every reason, in the order metrics list them.
    pub const ALL: [Refusal; 9] = [
        Refusal::OwnControl,
        Refusal::OwnMedia,
        Refusal::HostAddress,
        Refusal::Loopback,
        Refusal::Unspecified,
        Refusal::Multicast,
        Refusal::Broadcast,
        Refusal::LinkLocal,
        Refusal::Denied,
    ];

    /// The reason as a metric label and in logs.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::OwnControl => "own_control_socket",
            Refusal::OwnMedia => "own_media_port",
            Refusal::HostAddress => "host_address",
            Refusal::Loopback => "loopback",
            Refusal::Unspecified => "unspecified",
            Refusal::Multicast => "multicast",
            Refusal::Broadcast => "broadcast",
            Refusal::LinkLocal => "link_local",
            Refusal::Denied => "denied_network",
        }
    }

    /// Position in [`Refusal::ALL`], for counter arrays.
    pub fn index(self) -> usize {
        Refusal::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Everything the checks need to know about the relay and its host.
#[derive(Debug, Clone, Default)]
pub struct PolicyInputs {
    /// Control listeners: NG over UDP, TCP, HTTP (which also serves `/metrics`).
    pub control: Vec<SocketAddr>,
    /// The media interfaces' local addresses.
    pub locals: Vec<IpAddr>,
    /// The media interfaces' advertised addresses (the public side of a NAT).
    pub advertised: Vec<IpAddr>,
    /// The media port range.
    pub port_min: u16,
    pub port_max: u16,
    /// Every address of the host (from `getifaddrs`).
    pub host: Vec<IpAddr>,
    /// The host's IPv4 subnet broadcast addresses.
    pub broadcast: Vec<IpAddr>,
    /// `--media-target-deny`.
    pub deny: Vec<IpNet>,
    /// `--media-target-allow`.
    pub allow: Vec<IpNet>,
}

/// The media target policy. Cheap to query; rebuilt when the host's addresses change.
#[derive(Debug)]
pub struct TargetPolicy {
    control: Vec<SocketAddr>,
    locals: Vec<IpAddr>,
    advertised: Vec<IpAddr>,
    range: RangeInclusive<u16>,
    host: Vec<IpAddr>,
    broadcast: Vec<IpAddr>,
    deny: Vec<IpNet>,
    allow: Vec<IpNet>,
    ports: Arc<RelayPorts>,
}

fn canonical(list: &[IpAddr]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = list.iter().map(|a| a.to_canonical()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl TargetPolicy {
    pub fn new(inputs: &PolicyInputs, ports: Arc<RelayPorts>) -> TargetPolicy {
        TargetPolicy {
            control: inputs
                .control
                .iter()
                .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()))
                .collect(),
            locals: canonical(&inputs.locals),
            advertised: canonical(&inputs.advertised),
            range: inputs.port_min..=inputs.port_max,
            host: canonical(&inputs.host),
            broadcast: canonical(&inputs.broadcast),
            deny: inputs.deny.clone(),
            allow: inputs.allow.clone(),
            ports,
        }
    }

    /// A policy that knows nothing of the host: for tests of other layers.
    pub fn permissive() -> TargetPolicy {
        TargetPolicy::new(&PolicyInputs::default(), Arc::new(RelayPorts::new([])))
    }

    /// The relay's port table this policy reads.
    pub fn ports(&self) -> &Arc<RelayPorts> {
        &self.ports
    }

    /// The same policy with the host's addresses read again.
    pub fn with_host(&self, host: Vec<IpAddr>, broadcast: Vec<IpAddr>) -> TargetPolicy {
        TargetPolicy {
            control: self.control.clone(),
            locals: self.locals.clone(),
            advertised: self.advertised.clone(),
            range: self.range.clone(),
            host: canonical(&host),
            broadcast: canonical(&broadcast),
            deny: self.deny.clone(),
            allow: self.allow.clone(),
            ports: self.ports.clone(),
        }
    }

    /// Whether `ip` is an address of this relay or its host (its sockets may listen there).
    fn is_self(&self, ip: IpAddr) -> bool {
        ip.is_loopback()
            || self.host.contains(&ip)
            || self.locals.contains(&ip)
            || self.advertised.contains(&ip)
    }

    /// Whether the media sockets of the relay listen on `ip` (exactly, or through a wildcard).
    fn receives_media_on(&self, ip: IpAddr) -> bool {
        self.locals.contains(&ip)
            || (self.locals.iter().any(|l| l.is_unspecified()) && self.is_self(ip))
    }

    /// Whether the relay may send media to `target` from its local address `via`. Use for SDP
    /// endpoints and for sources a stream is about to learn.
    pub fn check(&self, target: SocketAddr, via: IpAddr) -> Result<(), Refusal> {
        let ip = target.ip().to_canonical();
        let port = target.port();
        if self.control.iter().any(|c| {
            c.port() == port && (c.ip() == ip || (c.ip().is_unspecified() && self.is_self(ip)))
        }) {
            return Err(Refusal::OwnControl);
        }
        if self.receives_media_on(ip) {
            let held = self.ports.holds(ip, port) || self.ports.wildcard_holds(ip, port);
            // Loopback labs share the range with test peers: only the ports held count there.
            if held || (!ip.is_loopback() && self.range.contains(&port)) {
                return Err(Refusal::OwnMedia);
            }
        }
        if self.advertised.contains(&ip) && self.range.contains(&port) {
            return Err(Refusal::OwnMedia);
        }
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return Err(Refusal::Denied);
        }
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        if via.to_canonical().is_loopback() {
            return Ok(());
        }
        match class(ip) {
            Some(r) => Err(r),
            None if self.broadcast.contains(&ip) => Err(Refusal::Broadcast),
            None if self.is_self(ip) => Err(Refusal::HostAddress),
            None => Ok(()),
        }
    }
}

/// Whether `target` is a private address (RFC 1918, shared CGNAT space, IPv6 unique-local) that
/// a relay advertising the public `advertised` cannot reach: such an SDP address is a phone's
/// own view from behind NAT, not where its packets come from.
pub fn unreachable_from(target: IpAddr, advertised: IpAddr) -> bool {
    is_private(target.to_canonical())
        && !is_private(advertised.to_canonical())
        && !advertised.to_canonical().is_loopback()
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// The built-in classes no production relay sends media to.
fn class(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(a) => class_v4(a),
        IpAddr::V6(a) => class_v6(a),
    }
}

fn class_v4(a: Ipv4Addr) -> Option<Refusal> {
    if a.is_loopback() {
        Some(Refusal::Loopback)
    } else if a.octets()[0] == 0 {
        // 0.0.0.0/8: "this network", never a destination.
        Some(Refusal::Unspecified)
    } else if a.is_multicast() {
        Some(Refusal::Multicast)
    } else if a.is_broadcast() {
        Some(Refusal::Broadcast)
    } else if a.is_link_local() {
        Some(Refusal::LinkLocal)
    } else {
        None
    }
}

fn class_v6(a: Ipv6Addr) -> Option<Refusal> {
    if a.is_loopback() {
        Some(Refusal::Loopback)
    } else if a.is_unspecified() {
        Some(Refusal::Unspecified)
    } else if a.is_multicast() {
        Some(Refusal::Multicast)
    } else if a.is_unicast_link_local() {
        Some(Refusal::LinkLocal)
    } else {
        None
    }
}

/// Parses a `--media-target-deny` / `--media-target-allow` entry: a CIDR network or a single
/// address (IPv6 optionally in brackets).
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    // `[2001:db8::]/32` and `[2001:db8::1]` as well as the bare forms.
    let unbracketed = match s.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((addr, rest)) => format!("{addr}{rest}"),
        None => s.to_string(),
    };
    if let Ok(net) = unbracketed.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    unbracketed
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| "expected a network (192.0.2.0/24, 2001:db8::/32) or an address".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// A production relay: media on 203.0.113.10 (advertised 198.51.100.10), NG on
    /// 127.0.0.1:22222, HTTP on every address at 8080, range 30000-40000.
    fn production() -> TargetPolicy {
        let ports = Arc::new(RelayPorts::new([ip("203.0.113.10")]));
        ports.mark_pair(ip("203.0.113.10"), 30000);
        TargetPolicy::new(
            &PolicyInputs {
                control: vec![sa("127.0.0.1:22222"), sa("0.0.0.0:8080")],
                locals: vec![ip("203.0.113.10")],
                advertised: vec![ip("198.51.100.10")],
                port_min: 30000,
                port_max: 40000,
                host: vec![
                    ip("203.0.113.10"),
                    ip("10.0.0.5"),
                    ip("127.0.0.1"),
                    ip("::1"),
                ],
                broadcast: vec![ip("10.0.0.255")],
                deny: vec![parse_network("192.0.2.0/24").expect("net")],
                allow: vec![parse_network("10.0.0.5").expect("net")],
            },
            ports,
        )
    }

    #[test]
    fn production_refuses_the_relay_its_host_and_special_classes() {
        let p = production();
        let via = ip("203.0.113.10");
        let cases = [
            ("127.0.0.1:22222", Err(Refusal::OwnControl)),
            ("203.0.113.10:8080", Err(Refusal::OwnControl)),
            ("203.0.113.10:30000", Err(Refusal::OwnMedia)),
            ("203.0.113.10:35000", Err(Refusal::OwnMedia)),
            ("198.51.100.10:31000", Err(Refusal::OwnMedia)),
            ("198.51.100.10:22", Err(Refusal::HostAddress)),
            ("203.0.113.10:22", Err(Refusal::HostAddress)),
            ("127.0.0.53:53", Err(Refusal::Loopback)),
            ("[::1]:6379", Err(Refusal::Loopback)),
            ("[::ffff:127.0.0.1]:6379", Err(Refusal::Loopback)),
            ("0.0.0.0:5000", Err(Refusal::Unspecified)),
            ("0.1.2.3:5000", Err(Refusal::Unspecified)),
            ("[::]:5000", Err(Refusal::Unspecified)),
            ("224.0.0.1:5000", Err(Refusal::Multicast)),
            ("[ff02::1]:5000", Err(Refusal::Multicast)),
            ("255.255.255.255:5000", Err(Refusal::Broadcast)),
            ("10.0.0.255:5000", Err(Refusal::Broadcast)),
            ("169.254.169.254:80", Err(Refusal::LinkLocal)),
            ("[fe80::1]:5000", Err(Refusal::LinkLocal)),
            ("192.0.2.77:5000", Err(Refusal::Denied)),
            // The allow list opens a host address (a media server next to the relay)...
            ("10.0.0.5:16384", Ok(())),
            // ...and ordinary peers pass.
            ("198.51.100.20:4000", Ok(())),
            ("[2001:db8::20]:4000", Ok(())),
        ];
        for (target, want) in cases {
            assert_eq!(p.check(sa(target), via), want, "{target}");
        }
    }

    #[test]
    fn allow_never_opens_the_relays_own_sockets() {
        let ports = Arc::new(RelayPorts::new([ip("203.0.113.10")]));
        ports.mark_pair(ip("203.0.113.10"), 30000);
        let p = TargetPolicy::new(
            &PolicyInputs {
                control: vec![sa("127.0.0.1:22222")],
                locals: vec![ip("203.0.113.10")],
                port_min: 30000,
                port_max: 40000,
                allow: vec![parse_network("0.0.0.0/0").expect("net")],
                ..PolicyInputs::default()
            },
            ports,
        );
        let via = ip("203.0.113.10");
        assert_eq!(
            p.check(sa("127.0.0.1:22222"), via),
            Err(Refusal::OwnControl)
        );
        assert_eq!(
            p.check(sa("203.0.113.10:30001"), via),
            Err(Refusal::OwnMedia)
        );
        assert_eq!(p.check(sa("127.0.0.1:6379"), via), Ok(()));
    }

    #[test]
    fn a_loopback_lab_may_send_to_other_loopback_ports() {
        let lo = ip("127.0.0.1");
        let ports = Arc::new(RelayPorts::new([lo]));
        ports.mark_pair(lo, 30010);
        let p = TargetPolicy::new(
            &PolicyInputs {
                control: vec![sa("127.0.0.1:22222")],
                locals: vec![lo],
                port_min: 30000,
                port_max: 40000,
                host: vec![lo],
                ..PolicyInputs::default()
            },
            ports,
        );
        // A test peer on an ephemeral port inside the range is not the relay...
        assert_eq!(p.check(sa("127.0.0.1:35001"), lo), Ok(()));
        assert_eq!(p.check(sa("127.0.0.2:5000"), lo), Ok(()));
        // ...but the ports the relay holds and its control socket are.
        assert_eq!(p.check(sa("127.0.0.1:30010"), lo), Err(Refusal::OwnMedia));
        assert_eq!(p.check(sa("127.0.0.1:30011"), lo), Err(Refusal::OwnMedia));
        assert_eq!(p.check(sa("127.0.0.1:22222"), lo), Err(Refusal::OwnControl));
    }

    #[test]
    fn a_wildcard_media_interface_holds_ports_on_every_host_address() {
        let any = ip("0.0.0.0");
        let ports = Arc::new(RelayPorts::new([any]));
        ports.mark_pair(any, 30100);
        let p = TargetPolicy::new(
            &PolicyInputs {
                locals: vec![any],
                port_min: 30000,
                port_max: 40000,
                host: vec![ip("10.0.0.5"), ip("127.0.0.1")],
                allow: vec![parse_network("10.0.0.0/8").expect("net")],
                ..PolicyInputs::default()
            },
            ports,
        );
        let via = ip("10.0.0.5");
        assert_eq!(p.check(sa("10.0.0.5:30100"), via), Err(Refusal::OwnMedia));
        assert_eq!(p.check(sa("10.0.0.5:35000"), via), Err(Refusal::OwnMedia));
        assert_eq!(p.check(sa("10.0.0.6:35000"), via), Ok(()));
    }

    #[test]
    fn private_sdp_addresses_are_unreachable_only_from_a_public_relay() {
        let public = ip("203.0.113.10");
        for private in [
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.10",
            "100.64.0.1",
            "fd00::5",
        ] {
            assert!(unreachable_from(ip(private), public), "{private}");
            assert!(
                !unreachable_from(ip(private), ip("10.0.0.1")),
                "{private} from private"
            );
        }
        assert!(!unreachable_from(ip("198.51.100.7"), public));
        assert!(!unreachable_from(ip("192.168.1.10"), ip("127.0.0.1")));
    }

    #[test]
    fn networks_parse_as_cidr_or_address() {
        assert_eq!(
            parse_network("10.1.2.3/8").expect("net"),
            "10.0.0.0/8".parse::<IpNet>().expect("net")
        );
        assert_eq!(
            parse_network("[2001:db8::1]").expect("net"),
            "2001:db8::1/128".parse::<IpNet>().expect("net")
        );
        assert_eq!(
            parse_network("[fd00::]/8").expect("net"),
            "fd00::/8".parse::<IpNet>().expect("net")
        );
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("example.com").is_err());
    }
}
