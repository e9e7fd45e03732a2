//! Ethernet frames carrying UDP over IPv4/IPv6, as the AF_XDP plane sees them: parse one to find
//! its addresses and payload, and rewrite one in place to send it on (new MACs, addresses, ports,
//! TTL, the IPv4 header checksum, and the UDP checksum updated from the old one as the XDP
//! program does, so a corrupted datagram still fails at the receiver). Sans-IO.
//!
//! Header fields are named byte ranges ([`field`], as smoltcp does), each relative to the start
//! of its header; [`at`] places one at a header's offset in the frame.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

/// The byte ranges of the header fields this module reads and writes, per header, each relative
/// to the start of that header.
pub mod field {
    /// A field's bytes within its header.
    pub type Field = core::ops::Range<usize>;

    /// Ethernet II (untagged).
    pub mod eth {
        use super::Field;
        pub const DESTINATION: Field = 0..6;
        pub const SOURCE: Field = 6..12;
        pub const ETHERTYPE: Field = 12..14;
        pub const HEADER_LEN: usize = 14;
        pub const TYPE_IPV4: u16 = 0x0800;
        pub const TYPE_IPV6: u16 = 0x86dd;
    }

    /// IPv4 without options.
    pub mod ipv4 {
        use super::Field;
        /// Version and header length: 0x45 for IPv4 without options.
        pub const VER_IHL: usize = 0;
        pub const LENGTH: Field = 2..4;
        /// Flags and fragment offset; a fragment has MF or an offset (the low 14 bits).
        pub const FLG_OFF: Field = 6..8;
        pub const TTL: usize = 8;
        pub const PROTOCOL: usize = 9;
        pub const CHECKSUM: Field = 10..12;
        pub const SRC_ADDR: Field = 12..16;
        pub const DST_ADDR: Field = 16..20;
        pub const HEADER_LEN: usize = 20;
    }

    /// IPv6 (fixed header).
    pub mod ipv6 {
        use super::Field;
        /// Version in the high nibble.
        pub const VER_TC: usize = 0;
        pub const PAYLOAD_LEN: Field = 4..6;
        pub const NEXT_HEADER: usize = 6;
        pub const HOP_LIMIT: usize = 7;
        pub const SRC_ADDR: Field = 8..24;
        pub const DST_ADDR: Field = 24..40;
        pub const HEADER_LEN: usize = 40;
    }

    /// UDP.
    pub mod udp {
        use super::Field;
        pub const SRC_PORT: Field = 0..2;
        pub const DST_PORT: Field = 2..4;
        /// Both ports, rewritten together.
        pub const PORTS: Field = 0..4;
        pub const LENGTH: Field = 4..6;
        pub const CHECKSUM: Field = 6..8;
        pub const HEADER_LEN: usize = 8;
        /// The IP protocol / next header number of UDP.
        pub const PROTOCOL: u8 = 17;
    }
}

use field::{eth, ipv4, ipv6, udp};

/// `f` placed at byte `base` of a frame: where a field of the header starting there is.
pub const fn at(base: usize, f: field::Field) -> Range<usize> {
    base + f.start..base + f.end
}

/// Where the parts of a UDP frame are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpFrame {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// The UDP payload's bytes within the frame.
    pub payload: Range<usize>,
}

fn be16(b: &[u8], r: Range<usize>) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(r)?.try_into().ok()?))
}

fn bytes<const N: usize>(b: &[u8], r: Range<usize>) -> Option<[u8; N]> {
    b.get(r)?.try_into().ok()
}

/// Parse an untagged Ethernet frame with a UDP datagram over IPv4 (no options, not a fragment)
/// or IPv6 (UDP as the first next header). `None` for anything else or anything inconsistent.
pub fn parse(f: &[u8]) -> Option<UdpFrame> {
    let dst_mac = bytes(f, eth::DESTINATION)?;
    let src_mac = bytes(f, eth::SOURCE)?;
    let l3 = eth::HEADER_LEN;
    let (src_ip, dst_ip, l4) = match be16(f, eth::ETHERTYPE)? {
        eth::TYPE_IPV4 => {
            let ip = f.get(l3..l3 + ipv4::HEADER_LEN)?;
            let frag = be16(ip, ipv4::FLG_OFF)? & 0x3fff;
            if ip[ipv4::VER_IHL] != 0x45 || ip[ipv4::PROTOCOL] != udp::PROTOCOL || frag != 0 {
                return None;
            }
            let total = usize::from(be16(ip, ipv4::LENGTH)?);
            if total < ipv4::HEADER_LEN + udp::HEADER_LEN || l3 + total > f.len() {
                return None;
            }
            let l4 = l3 + ipv4::HEADER_LEN;
            // The UDP length must match the IP one: Ethernet padding is not payload.
            if usize::from(be16(f, at(l4, udp::LENGTH))?) != total - ipv4::HEADER_LEN {
                return None;
            }
            let s: [u8; 4] = bytes(ip, ipv4::SRC_ADDR)?;
            let d: [u8; 4] = bytes(ip, ipv4::DST_ADDR)?;
            (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                l4,
            )
        }
        eth::TYPE_IPV6 => {
            let ip = f.get(l3..l3 + ipv6::HEADER_LEN)?;
            if ip[ipv6::VER_TC] >> 4 != 6 || ip[ipv6::NEXT_HEADER] != udp::PROTOCOL {
                return None;
            }
            let l4 = l3 + ipv6::HEADER_LEN;
            if be16(f, at(l4, udp::LENGTH))? != be16(ip, ipv6::PAYLOAD_LEN)? {
                return None;
            }
            let s: [u8; 16] = bytes(ip, ipv6::SRC_ADDR)?;
            let d: [u8; 16] = bytes(ip, ipv6::DST_ADDR)?;
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                l4,
            )
        }
        _ => return None,
    };
    let sport = be16(f, at(l4, udp::SRC_PORT))?;
    let dport = be16(f, at(l4, udp::DST_PORT))?;
    let ulen = usize::from(be16(f, at(l4, udp::LENGTH))?);
    if ulen < udp::HEADER_LEN || l4 + ulen > f.len() {
        return None;
    }
    Some(UdpFrame {
        src_mac,
        dst_mac,
        src: SocketAddr::new(src_ip, sport),
        dst: SocketAddr::new(dst_ip, dport),
        payload: l4 + udp::HEADER_LEN..l4 + ulen,
    })
}

/// One's-complement sum of `b` as big-endian 16-bit words (an odd tail padded with zero).
fn sum(b: &[u8], mut acc: u32) -> u32 {
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The sum of the words of `new` plus the complements of those of `old` (equal lengths): what
/// adding it to a checksum's complement does is replace `old` by `new` (RFC 1624, eqn. 3).
fn sum_diff(old: &[u8], new: &[u8], mut acc: u32) -> u32 {
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc = acc.wrapping_add(u32::from(!u16::from_be_bytes([o[0], o[1]])));
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([n[0], n[1]])));
    }
    acc
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// Where the TTL (IPv4) or hop limit (IPv6) of a frame is.
fn ttl_at(v4: bool) -> usize {
    eth::HEADER_LEN + if v4 { ipv4::TTL } else { ipv6::HOP_LIMIT }
}

/// Rewrite a frame that [`parse`] accepted so that it goes from `src` (MAC `src_mac`) to `dst`
/// (next hop `dst_mac`), in place. False (frame untouched) when the families differ from the
/// frame's, or the hop limit would run out.
pub fn rewrite(
    f: &mut [u8],
    p: &UdpFrame,
    src: SocketAddr,
    dst: SocketAddr,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
) -> bool {
    let v4 = p.src.is_ipv4();
    if src.is_ipv4() != v4 || dst.is_ipv4() != v4 {
        return false;
    }
    let l3 = eth::HEADER_LEN;
    let l4 = p.payload.start - udp::HEADER_LEN;
    let ttl_at = ttl_at(v4);
    match f.get(ttl_at) {
        Some(&t) if t > 1 => {}
        _ => return false,
    }
    let (s, d) = (ip_bytes(src.ip()), ip_bytes(dst.ip()));
    let (old_s, old_d) = (ip_bytes(p.src.ip()), ip_bytes(p.dst.ip()));
    let ulen = (p.payload.end - l4) as u32;
    let check_at = at(l4, udp::CHECKSUM);
    let check = u16::from_be_bytes([f[check_at.start], f[check_at.start + 1]]);
    // A sender with checksum offload (veth) leaves the pseudo-header sum, not complemented, for
    // the device to finish: that one is computed in full. IPv4 may go without a checksum (0 stays
    // 0); IPv6 may not, so a 0 there is computed too.
    let pseudo = sum(&old_d, sum(&old_s, 0)) + u32::from(udp::PROTOCOL) + ulen;
    let full = check == fold(pseudo) || (check == 0 && !v4);
    f[eth::DESTINATION].copy_from_slice(&dst_mac);
    f[eth::SOURCE].copy_from_slice(&src_mac);
    f[ttl_at] -= 1;
    if v4 {
        f[at(l3, ipv4::SRC_ADDR)].copy_from_slice(&s);
        f[at(l3, ipv4::DST_ADDR)].copy_from_slice(&d);
        f[at(l3, ipv4::CHECKSUM)].fill(0);
        let c = !fold(sum(&f[l3..l3 + ipv4::HEADER_LEN], 0));
        f[at(l3, ipv4::CHECKSUM)].copy_from_slice(&c.to_be_bytes());
    } else {
        f[at(l3, ipv6::SRC_ADDR)].copy_from_slice(&s);
        f[at(l3, ipv6::DST_ADDR)].copy_from_slice(&d);
    }
    let mut ports = [0u8; 4];
    ports[udp::SRC_PORT].copy_from_slice(&src.port().to_be_bytes());
    ports[udp::DST_PORT].copy_from_slice(&dst.port().to_be_bytes());
    let c = if full {
        f[at(l4, udp::PORTS)].copy_from_slice(&ports);
        f[check_at.clone()].fill(0);
        let acc = sum(&d, sum(&s, 0)) + u32::from(udp::PROTOCOL) + ulen;
        !fold(sum(&f[l4..p.payload.end], acc))
    } else if check == 0 {
        f[at(l4, udp::PORTS)].copy_from_slice(&ports);
        return true;
    } else {
        // Only what changed: a checksum that was wrong stays wrong.
        let mut acc = u32::from(!check);
        acc = sum_diff(&old_s, &s, acc);
        acc = sum_diff(&old_d, &d, acc);
        acc = sum_diff(&f[at(l4, udp::PORTS)], &ports, acc);
        f[at(l4, udp::PORTS)].copy_from_slice(&ports);
        !fold(acc)
    };
    // 0 means "no checksum": a computed 0 is sent as its other form.
    let c = if c == 0 { 0xffff } else { c };
    f[check_at].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The frames' destination and source MACs.
    pub(crate) const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    pub(crate) const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    /// A frame from MAC `A` to MAC `B` with a correct UDP checksum, built independently of
    /// `rewrite`.
    pub(crate) fn frame(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&B);
        f.extend_from_slice(&A);
        let ulen = 8 + payload.len();
        let (s, d) = (ip_bytes(src.ip()), ip_bytes(dst.ip()));
        if src.is_ipv4() {
            f.extend_from_slice(&eth::TYPE_IPV4.to_be_bytes());
            let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, udp::PROTOCOL, 0, 0];
            ip[ipv4::LENGTH].copy_from_slice(&((20 + ulen) as u16).to_be_bytes());
            ip.extend_from_slice(&s);
            ip.extend_from_slice(&d);
            let c = !fold(sum(&ip, 0));
            ip[ipv4::CHECKSUM].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        } else {
            f.extend_from_slice(&eth::TYPE_IPV6.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(ulen as u16).to_be_bytes());
            f.extend_from_slice(&[udp::PROTOCOL, 64]);
            f.extend_from_slice(&s);
            f.extend_from_slice(&d);
        }
        let mut udp = Vec::new();
        udp.extend_from_slice(&src.port().to_be_bytes());
        udp.extend_from_slice(&dst.port().to_be_bytes());
        udp.extend_from_slice(&(ulen as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        let mut acc = sum(&s, sum(&d, 0));
        acc = acc.wrapping_add(u32::from(udp::PROTOCOL) + ulen as u32);
        let c = !fold(sum(&udp, acc));
        udp[udp::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&udp);
        f
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn parses_and_rewrites_to_what_a_fresh_frame_would_be() {
        for (from, to, new_src, new_dst) in FLOWS {
            let payload = b"\x80\x00\x00\x01rtp payload, odd length";
            let mut f = frame(a(from), a(to), payload);
            let p = parse(&f).expect("parses");
            assert_eq!((p.src, p.dst), (a(from), a(to)));
            assert_eq!(&f[p.payload.clone()], payload);
            assert!(rewrite(&mut f, &p, a(new_src), a(new_dst), B, A));
            let mut want = frame(a(new_src), a(new_dst), payload);
            // The fresh frame has a TTL of 64: ours was decremented from 64.
            want[ttl_at(p.src.is_ipv4())] = 63;
            if p.src.is_ipv4() {
                let (l3, check) = (eth::HEADER_LEN, at(eth::HEADER_LEN, ipv4::CHECKSUM));
                want[check.clone()].fill(0);
                let c = !fold(sum(&want[l3..l3 + ipv4::HEADER_LEN], 0));
                want[check].copy_from_slice(&c.to_be_bytes());
            }
            want[eth::DESTINATION].copy_from_slice(&A);
            want[eth::SOURCE].copy_from_slice(&B);
            assert_eq!(f, want, "{from} -> {new_dst}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_rewrite() {
        let mut f = frame(a("10.0.0.2:4000"), a("10.0.0.1:30000"), b"x");
        let p = parse(&f).expect("parses");
        assert!(!rewrite(
            &mut f,
            &p,
            a("[fd00::1]:1"),
            a("10.0.0.3:5000"),
            A,
            B
        ));
        assert!(parse(&f[..30]).is_none());
        let mut frag = f.clone();
        frag[at(eth::HEADER_LEN, ipv4::FLG_OFF).start] = 0x20; // more fragments
        assert!(parse(&frag).is_none());
        let mut ttl1 = f.clone();
        ttl1[ttl_at(true)] = 1;
        let p1 = parse(&ttl1).expect("parses");
        assert!(!rewrite(
            &mut ttl1,
            &p1,
            a("10.0.0.1:1"),
            a("10.0.0.3:5000"),
            A,
            B
        ));
    }

    /// Whether the UDP checksum of a frame `parse` accepts holds (or is absent, over IPv4).
    fn udp_checksum_ok(f: &[u8]) -> bool {
        let p = parse(f).expect("parses");
        let l4 = p.payload.start - udp::HEADER_LEN;
        if p.src.is_ipv4() && f[at(l4, udp::CHECKSUM)] == [0, 0] {
            return true;
        }
        let ulen = (p.payload.end - l4) as u32;
        let acc = sum(&ip_bytes(p.src.ip()), sum(&ip_bytes(p.dst.ip()), 0));
        fold(sum(
            &f[l4..p.payload.end],
            acc + u32::from(udp::PROTOCOL) + ulen,
        )) == 0xffff
    }

    const FLOWS: [(&str, &str, &str, &str); 2] = [
        (
            "10.0.0.2:4000",
            "10.0.0.1:30000",
            "10.0.0.1:30002",
            "10.0.0.3:5000",
        ),
        (
            "[fd00::2]:4000",
            "[fd00::1]:30000",
            "[fd00::1]:30002",
            "[fd00::3]:5000",
        ),
    ];

    #[test]
    fn a_wrong_udp_checksum_stays_wrong() {
        for (from, to, new_src, new_dst) in FLOWS {
            let mut f = frame(a(from), a(to), b"\x80\x00\x00\x01payload");
            let last = f.len() - 1;
            f[last] ^= 0x40; // corrupted on the way, after the sender's checksum
            assert!(!udp_checksum_ok(&f));
            let p = parse(&f).expect("parses");
            assert!(rewrite(&mut f, &p, a(new_src), a(new_dst), B, A));
            assert!(!udp_checksum_ok(&f), "{from} -> {new_dst}");
        }
    }

    #[test]
    fn a_partial_udp_checksum_is_completed() {
        for (from, to, new_src, new_dst) in FLOWS {
            let payload = b"\x80\x00\x00\x01payload";
            let mut f = frame(a(from), a(to), payload);
            let p = parse(&f).expect("parses");
            let l4 = p.payload.start - udp::HEADER_LEN;
            // What a sender with checksum offload leaves: the pseudo-header sum.
            let ulen = (p.payload.end - l4) as u32;
            let acc = sum(&ip_bytes(p.src.ip()), sum(&ip_bytes(p.dst.ip()), 0));
            let partial = fold(acc + u32::from(udp::PROTOCOL) + ulen);
            f[at(l4, udp::CHECKSUM)].copy_from_slice(&partial.to_be_bytes());
            assert!(!udp_checksum_ok(&f));
            assert!(rewrite(&mut f, &p, a(new_src), a(new_dst), B, A));
            assert!(udp_checksum_ok(&f), "{from} -> {new_dst}");
            let want = frame(a(new_src), a(new_dst), payload);
            assert_eq!(f[at(l4, udp::CHECKSUM)], want[at(l4, udp::CHECKSUM)]);
        }
    }

    #[test]
    fn a_missing_udp_checksum_stays_missing_over_ipv4_and_is_computed_over_ipv6() {
        for (from, to, new_src, new_dst) in FLOWS {
            let mut f = frame(a(from), a(to), b"x");
            let p = parse(&f).expect("parses");
            let l4 = p.payload.start - udp::HEADER_LEN;
            f[at(l4, udp::CHECKSUM)].copy_from_slice(&[0, 0]);
            assert!(rewrite(&mut f, &p, a(new_src), a(new_dst), B, A));
            let zero = f[at(l4, udp::CHECKSUM)] == [0, 0];
            assert_eq!(zero, p.src.is_ipv4(), "{from}");
            assert!(udp_checksum_ok(&f), "{from} -> {new_dst}");
        }
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A short datagram padded to Ethernet's minimum: the payload ends where UDP says.
        let mut f = frame(a("10.0.0.2:4000"), a("10.0.0.1:30000"), b"ab");
        f.resize(60, 0);
        let p = parse(&f).expect("parses");
        assert_eq!(&f[p.payload.clone()], b"ab");
        // A UDP length that takes in the padding disagrees with the IP length.
        let l4 = p.payload.start - udp::HEADER_LEN;
        f[at(l4, udp::LENGTH)].copy_from_slice(&(8u16 + 10).to_be_bytes());
        assert!(parse(&f).is_none());
        // Over IPv6 the UDP length must match the payload length.
        let mut f6 = frame(a("[fd00::2]:4000"), a("[fd00::1]:30000"), b"ab");
        f6.resize(f6.len() + 8, 0);
        let p6 = parse(&f6).expect("parses");
        assert_eq!(&f6[p6.payload.clone()], b"ab");
        let l4 = p6.payload.start - udp::HEADER_LEN;
        f6[at(l4, udp::LENGTH)].copy_from_slice(&(8u16 + 10).to_be_bytes());
        assert!(parse(&f6).is_none());
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut seed = 0x1234_5678u32;
        for len in 0..200 {
            let f: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = parse(&f);
        }
    }
}
