//! A small rtnetlink client that asks the kernel what its own stack would use to reach a peer:
//! the route from a local address (`ip route get DST from SRC`), the neighbour entry of the
//! next hop (`ip neigh get ADDR dev DEV`) and a device's MAC. The XDP program's fallback next
//! hops ([`super::nexthop`]) come from these answers, never from packets.
//!
//! One request, one reply: every request is a plain get (no dump), answered by one message or
//! by an error. The parsers take the kernel's bytes and never panic on short or odd input.

use std::io::{self, Read};
use std::net::IpAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// A reply that takes longer than this is taken as a failure (the kernel answers at once).
const TIMEOUT: Duration = Duration::from_secs(1);
/// Receive buffer: a link's reply (every attribute and its statistics) fits many times over.
const BUF: usize = 32 * 1024;
/// Datagrams read while looking for the reply to the current request (older ones are
/// replies to requests that timed out).
const MAX_READS: usize = 16;

// From the kernel's uapi headers (linux/netlink.h, linux/rtnetlink.h, linux/neighbour.h,
// linux/if_link.h, linux/if_arp.h).
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_VIA: u16 = 18;
const RTN_UNICAST: u8 = 1;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const IFLA_ADDRESS: u16 = 1;
const ARPHRD_ETHER: u16 = 1;
/// An attribute type's flag bits (NLA_F_NESTED, NLA_F_NET_BYTEORDER) masked off.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// Neighbour states whose link-layer address the stack itself sends to: REACHABLE, STALE,
/// DELAY, PROBE, PERMANENT. Not INCOMPLETE, FAILED or NOARP (the kernel's own entries for
/// multicast and broadcast destinations).
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Where the kernel routes a destination: out of `ifindex`, to `gateway` or (None) to the
/// destination itself on that link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Route {
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
}

/// A NETLINK_ROUTE socket and its request counter.
pub(super) struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Rtnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtnl").field("seq", &self.seq).finish()
    }
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Rtnl> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(libc::NETLINK_ROUTE)),
        )?;
        sock.set_read_timeout(Some(TIMEOUT))?;
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; BUF],
        })
    }

    /// The kernel's unicast route from local address `src` to `dst`; None when it has none
    /// (unreachable, a local or blackhole destination, mixed families, ...).
    pub fn route(&mut self, src: IpAddr, dst: IpAddr) -> io::Result<Option<Route>> {
        if src.is_ipv4() != dst.is_ipv4() {
            return Ok(None);
        }
        let bits = if dst.is_ipv4() { 32 } else { 128 };
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        let mut body = vec![family(dst), bits, bits, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        attr(&mut body, RTA_DST, &octets(dst));
        attr(&mut body, RTA_SRC, &octets(src));
        self.ask(RTM_GETROUTE, &body, RTM_NEWROUTE, parse_route)
    }

    /// The link-layer address of neighbour `addr` on device `ifindex`, when its entry is one
    /// the stack sends to and the address is a unicast MAC; None otherwise (no entry, still
    /// resolving, failed).
    pub fn neighbour(&mut self, ifindex: u32, addr: IpAddr) -> io::Result<Option<[u8; 6]>> {
        // struct ndmsg: family, pad1, pad2 (2), ifindex (4), state (2), flags, type.
        let mut body = vec![family(addr), 0, 0, 0];
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&[0, 0, 0, 0]);
        attr(&mut body, NDA_DST, &octets(addr));
        self.ask(RTM_GETNEIGH, &body, RTM_NEWNEIGH, parse_neighbour)
    }

    /// The MAC of Ethernet device `ifindex`; None for another kind of device (or none).
    pub fn link_mac(&mut self, ifindex: u32) -> io::Result<Option<[u8; 6]>> {
        // struct ifinfomsg: family, pad, type (2), index (4), flags (4), change (4).
        let mut body = vec![0u8; 4];
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&[0; 8]);
        self.ask(RTM_GETLINK, &body, RTM_NEWLINK, parse_link)
    }

    /// Send request `kind` with `body` and read its reply: `parse` of the answer of type
    /// `answer`, None when the kernel answered with an error (no route, no such entry).
    fn ask<T>(
        &mut self,
        kind: u16,
        body: &[u8],
        answer: u16,
        parse: impl Fn(&[u8]) -> Option<T>,
    ) -> io::Result<Option<T>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.sock.send(&request(kind, seq, body))?;
        for _ in 0..MAX_READS {
            let n = (&self.sock).read(&mut self.buf)?;
            let data = self.buf.get(..n).unwrap_or_default();
            for m in messages(data).filter(|m| m.seq == seq) {
                if m.kind == answer {
                    return Ok(parse(m.payload));
                }
                if m.kind == NLMSG_ERROR {
                    return Ok(None);
                }
            }
        }
        Err(io::Error::other(format!(
            "no netlink reply to request {seq} among {MAX_READS} datagrams"
        )))
    }
}

fn family(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Netlink attributes are padded to 4 bytes.
fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Append attribute `kind` holding `data` (struct rtattr/nlattr: length, type, data, padding).
fn attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + align4(len) - len, 0);
}

/// A request message: struct nlmsghdr (length, type, flags, sequence, port 0) and `body`.
fn request(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One message of a datagram.
#[derive(Debug, PartialEq, Eq)]
struct Message<'a> {
    kind: u16,
    seq: u32,
    payload: &'a [u8],
}

/// The messages of a datagram, up to the first malformed header.
fn messages(data: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        let len = u32_at(data, off)? as usize;
        let kind = u16_at(data, off + 4)?;
        let seq = u32_at(data, off + 8)?;
        let end = off.checked_add(len)?;
        let payload = data.get(off + NLMSG_HDRLEN..end)?;
        off = off.checked_add(align4(len).max(NLMSG_HDRLEN))?;
        Some(Message { kind, seq, payload })
    })
}

/// The attributes (type, data) that follow a fixed header of `fixed` bytes.
fn attrs(payload: &[u8], fixed: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = fixed;
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(payload, off)?);
        let kind = u16_at(payload, off + 2)? & NLA_TYPE_MASK;
        if len < 4 {
            return None;
        }
        let data = payload.get(off + 4..off.checked_add(len)?)?;
        off = off.checked_add(align4(len))?;
        Some((kind, data))
    })
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// A MAC a frame may be sent to: 6 bytes, unicast, not all zero.
pub(super) fn unicast_mac(bytes: &[u8]) -> Option<[u8; 6]> {
    let mac: [u8; 6] = bytes.try_into().ok()?;
    (mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

/// An RTM_NEWROUTE answer (struct rtmsg, 12 bytes, then attributes): a unicast route's device
/// and gateway.
fn parse_route(payload: &[u8]) -> Option<Route> {
    if *payload.get(7)? != RTN_UNICAST {
        return None;
    }
    let (mut ifindex, mut gateway) = (None, None);
    for (kind, data) in attrs(payload, 12) {
        match kind {
            RTA_OIF => ifindex = u32_at(data, 0),
            RTA_GATEWAY => gateway = ip_from(data),
            // struct rtvia: a family (2 bytes), then the address (an IPv4 route via IPv6).
            RTA_VIA => gateway = data.get(2..).and_then(ip_from),
            _ => {}
        }
    }
    Some(Route {
        ifindex: ifindex.filter(|&i| i != 0)?,
        gateway,
    })
}

/// An RTM_NEWNEIGH answer (struct ndmsg, 12 bytes, then attributes): the link-layer address
/// of an entry in a usable state.
fn parse_neighbour(payload: &[u8]) -> Option<[u8; 6]> {
    if u16_at(payload, 8)? & NUD_USABLE == 0 {
        return None;
    }
    attrs(payload, 12)
        .find(|&(kind, _)| kind == NDA_LLADDR)
        .and_then(|(_, mac)| unicast_mac(mac))
}

/// An RTM_NEWLINK answer (struct ifinfomsg, 16 bytes, then attributes): an Ethernet device's
/// MAC.
fn parse_link(payload: &[u8]) -> Option<[u8; 6]> {
    if u16_at(payload, 2)? != ARPHRD_ETHER {
        return None;
    }
    attrs(payload, 16)
        .find(|&(kind, _)| kind == IFLA_ADDRESS)
        .and_then(|(_, mac)| unicast_mac(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply datagram: one message of `kind` with `body`.
    fn reply(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = request(kind, seq, body);
        m.resize(align4(m.len()), 0);
        m
    }

    fn rtmsg(kind: u8) -> Vec<u8> {
        vec![AF_INET, 32, 0, 0, 254, 2, 0, kind, 0, 0, 0, 0]
    }

    fn ndmsg(state: u16) -> Vec<u8> {
        let mut b = vec![AF_INET, 0, 0, 0];
        b.extend_from_slice(&7u32.to_ne_bytes());
        b.extend_from_slice(&state.to_ne_bytes());
        b.extend_from_slice(&[0, 1]);
        b
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 1, 3];

    #[test]
    fn requests_are_what_ip_route_get_sends() {
        let mut body = vec![AF_INET, 32, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        attr(&mut body, RTA_DST, &[192, 0, 2, 3]);
        attr(&mut body, RTA_SRC, &[192, 0, 2, 1]);
        let m = request(RTM_GETROUTE, 9, &body);
        assert_eq!(m.len(), 16 + 12 + 8 + 8);
        assert_eq!(u32_at(&m, 0), Some(m.len() as u32));
        assert_eq!(u16_at(&m, 4), Some(RTM_GETROUTE));
        assert_eq!(u16_at(&m, 6), Some(NLM_F_REQUEST));
        assert_eq!(u32_at(&m, 8), Some(9));
        // An odd-length attribute is padded to 4 bytes, its length field says 5.
        let mut b = Vec::new();
        attr(&mut b, 3, &[1]);
        let mut want = 5u16.to_ne_bytes().to_vec();
        want.extend_from_slice(&3u16.to_ne_bytes());
        want.extend_from_slice(&[1, 0, 0, 0]);
        assert_eq!(b, want);
    }

    #[test]
    fn routes_give_device_and_gateway_and_only_unicast() {
        let mut on_link = rtmsg(RTN_UNICAST);
        attr(&mut on_link, RTA_DST, &[192, 0, 2, 3]);
        attr(&mut on_link, RTA_OIF, &5u32.to_ne_bytes());
        assert_eq!(
            parse_route(&on_link),
            Some(Route {
                ifindex: 5,
                gateway: None
            })
        );
        let mut via = rtmsg(RTN_UNICAST);
        attr(&mut via, RTA_OIF, &6u32.to_ne_bytes());
        attr(&mut via, RTA_GATEWAY, &[198, 51, 100, 254]);
        assert_eq!(
            parse_route(&via),
            Some(Route {
                ifindex: 6,
                gateway: Some("198.51.100.254".parse().unwrap())
            })
        );
        let mut v6via = rtmsg(RTN_UNICAST);
        attr(&mut v6via, RTA_OIF, &6u32.to_ne_bytes());
        let mut rtvia = u16::from(AF_INET6).to_ne_bytes().to_vec();
        rtvia.extend_from_slice(&"fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        attr(&mut v6via, RTA_VIA, &rtvia);
        assert_eq!(
            parse_route(&v6via).unwrap().gateway,
            Some("fe80::1".parse().unwrap())
        );
        // A local destination, and a route without a device.
        let mut local = rtmsg(2);
        attr(&mut local, RTA_OIF, &1u32.to_ne_bytes());
        assert_eq!(parse_route(&local), None);
        assert_eq!(parse_route(&rtmsg(RTN_UNICAST)), None);
        assert_eq!(parse_route(&[]), None);
    }

    #[test]
    fn neighbours_in_a_usable_state_with_a_unicast_mac_only() {
        for (state, want) in [
            (0x02, Some(MAC)), // REACHABLE
            (0x04, Some(MAC)), // STALE
            (0x80, Some(MAC)), // PERMANENT
            (0x01, None),      // INCOMPLETE
            (0x20, None),      // FAILED
            (0x40, None),      // NOARP
        ] {
            let mut b = ndmsg(state);
            attr(&mut b, NDA_DST, &[192, 0, 2, 3]);
            attr(&mut b, NDA_LLADDR, &MAC);
            assert_eq!(parse_neighbour(&b), want, "state {state:#x}");
        }
        for mac in [[0x01, 0, 0x5e, 0, 0, 1], [0xff; 6], [0; 6]] {
            let mut b = ndmsg(0x02);
            attr(&mut b, NDA_LLADDR, &mac);
            assert_eq!(parse_neighbour(&b), None, "{mac:02x?}");
        }
        let mut short = ndmsg(0x02);
        attr(&mut short, NDA_LLADDR, &MAC[..4]);
        assert_eq!(parse_neighbour(&short), None);
    }

    #[test]
    fn links_give_an_ethernet_mac() {
        let mut eth = vec![0, 0];
        eth.extend_from_slice(&ARPHRD_ETHER.to_ne_bytes());
        eth.extend_from_slice(&[0; 12]);
        attr(&mut eth, 3, b"veth0\0");
        attr(&mut eth, IFLA_ADDRESS, &MAC);
        assert_eq!(parse_link(&eth), Some(MAC));
        let mut lo = vec![0, 0];
        lo.extend_from_slice(&772u16.to_ne_bytes());
        lo.extend_from_slice(&[0; 12]);
        attr(&mut lo, IFLA_ADDRESS, &MAC);
        assert_eq!(parse_link(&lo), None);
    }

    #[test]
    fn datagrams_split_into_messages_and_stop_at_garbage() {
        let mut d = reply(NLMSG_ERROR, 3, &(-2i32).to_ne_bytes());
        d.extend(reply(RTM_NEWNEIGH, 4, &ndmsg(2)));
        let all: Vec<_> = messages(&d).collect();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].kind, all[0].seq), (NLMSG_ERROR, 3));
        assert_eq!(
            (all[1].kind, all[1].seq, all[1].payload.len()),
            (RTM_NEWNEIGH, 4, 12)
        );
        // A length beyond the datagram, a zero length, truncation: no panic, no message.
        let mut bad = d.clone();
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(messages(&bad).count(), 0);
        bad[0..4].copy_from_slice(&0u32.to_ne_bytes());
        assert!(messages(&bad).count() <= 1);
        for cut in 0..d.len() {
            let _ = messages(&d[..cut]).count();
        }
        // Attributes with a bad length end the walk.
        let mut b = ndmsg(2);
        b.extend_from_slice(&[2, 0, 2, 0]);
        assert_eq!(attrs(&b, 12).count(), 0);
    }
}
