//! Ethernet frames carrying UDP over IPv4/IPv6, as the AF_XDP plane sees them: parse one to find
//! its addresses and payload, and rewrite one in place to send it on (new MACs, addresses, ports,
//! TTL, the IPv4 header checksum, and the UDP checksum updated from the old one as the XDP
//! program does, so a corrupted datagram still fails at the receiver). Sans-IO.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

const ETH: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const UDP: u8 = 17;

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

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn mac(b: &[u8], at: usize) -> Option<[u8; 6]> {
    b.get(at..at + 6)?.try_into().ok()
}

/// Parse an untagged Ethernet frame with a UDP datagram over IPv4 (no options, not a fragment)
/// or IPv6 (UDP as the first next header). `None` for anything else or anything inconsistent.
pub fn parse(f: &[u8]) -> Option<UdpFrame> {
    let dst_mac = mac(f, 0)?;
    let src_mac = mac(f, 6)?;
    let (src_ip, dst_ip, l4) = match be16(f, 12)? {
        ETH_P_IP => {
            let ip = f.get(ETH..ETH + 20)?;
            let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff;
            if ip[0] != 0x45 || ip[9] != UDP || frag != 0 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if total < 28 || ETH + total > f.len() {
                return None;
            }
            // The UDP length must match the IP one: Ethernet padding is not payload.
            if usize::from(be16(f, ETH + 24)?) != total - 20 {
                return None;
            }
            let s: [u8; 4] = ip[12..16].try_into().ok()?;
            let d: [u8; 4] = ip[16..20].try_into().ok()?;
            (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                ETH + 20,
            )
        }
        ETH_P_IPV6 => {
            let ip = f.get(ETH..ETH + 40)?;
            if ip[0] >> 4 != 6 || ip[6] != UDP {
                return None;
            }
            if be16(f, ETH + 40 + 4)? != u16::from_be_bytes([ip[4], ip[5]]) {
                return None;
            }
            let s: [u8; 16] = ip[8..24].try_into().ok()?;
            let d: [u8; 16] = ip[24..40].try_into().ok()?;
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                ETH + 40,
            )
        }
        _ => return None,
    };
    let sport = be16(f, l4)?;
    let dport = be16(f, l4 + 2)?;
    let ulen = usize::from(be16(f, l4 + 4)?);
    if ulen < 8 || l4 + ulen > f.len() {
        return None;
    }
    Some(UdpFrame {
        src_mac,
        dst_mac,
        src: SocketAddr::new(src_ip, sport),
        dst: SocketAddr::new(dst_ip, dport),
        payload: l4 + 8..l4 + ulen,
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
    let l4 = p.payload.start - 8;
    let ttl_at = if v4 { ETH + 8 } else { ETH + 7 };
    match f.get(ttl_at) {
        Some(&t) if t > 1 => {}
        _ => return false,
    }
    let (s, d) = (ip_bytes(src.ip()), ip_bytes(dst.ip()));
    let (old_s, old_d) = (ip_bytes(p.src.ip()), ip_bytes(p.dst.ip()));
    let ulen = (p.payload.end - l4) as u32;
    let check = u16::from_be_bytes([f[l4 + 6], f[l4 + 7]]);
    // A sender with checksum offload (veth) leaves the pseudo-header sum, not complemented, for
    // the device to finish: that one is computed in full. IPv4 may go without a checksum (0 stays
    // 0); IPv6 may not, so a 0 there is computed too.
    let pseudo = sum(&old_d, sum(&old_s, 0)) + u32::from(UDP) + ulen;
    let full = check == fold(pseudo) || (check == 0 && !v4);
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[ttl_at] -= 1;
    if v4 {
        f[ETH + 12..ETH + 16].copy_from_slice(&s);
        f[ETH + 16..ETH + 20].copy_from_slice(&d);
        f[ETH + 10] = 0;
        f[ETH + 11] = 0;
        let c = !fold(sum(&f[ETH..ETH + 20], 0));
        f[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
    } else {
        f[ETH + 8..ETH + 24].copy_from_slice(&s);
        f[ETH + 24..ETH + 40].copy_from_slice(&d);
    }
    let mut ports = [0u8; 4];
    ports[..2].copy_from_slice(&src.port().to_be_bytes());
    ports[2..].copy_from_slice(&dst.port().to_be_bytes());
    let c = if full {
        f[l4..l4 + 4].copy_from_slice(&ports);
        f[l4 + 6] = 0;
        f[l4 + 7] = 0;
        let acc = sum(&d, sum(&s, 0)) + u32::from(UDP) + ulen;
        !fold(sum(&f[l4..p.payload.end], acc))
    } else if check == 0 {
        f[l4..l4 + 4].copy_from_slice(&ports);
        return true;
    } else {
        // Only what changed: a checksum that was wrong stays wrong.
        let mut acc = u32::from(!check);
        acc = sum_diff(&old_s, &s, acc);
        acc = sum_diff(&old_d, &d, acc);
        acc = sum_diff(&f[l4..l4 + 4], &ports, acc);
        f[l4..l4 + 4].copy_from_slice(&ports);
        !fold(acc)
    };
    // 0 means "no checksum": a computed 0 is sent as its other form.
    let c = if c == 0 { 0xffff } else { c };
    f[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
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
            f.extend_from_slice(&ETH_P_IP.to_be_bytes());
            let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, UDP, 0, 0];
            ip[2..4].copy_from_slice(&((20 + ulen) as u16).to_be_bytes());
            ip.extend_from_slice(&s);
            ip.extend_from_slice(&d);
            let c = !fold(sum(&ip, 0));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        } else {
            f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(ulen as u16).to_be_bytes());
            f.extend_from_slice(&[UDP, 64]);
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
        acc = acc.wrapping_add(u32::from(UDP) + ulen as u32);
        let c = !fold(sum(&udp, acc));
        udp[6..8].copy_from_slice(&c.to_be_bytes());
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
            let ttl_at = if p.src.is_ipv4() { ETH + 8 } else { ETH + 7 };
            want[ttl_at] = 63;
            if p.src.is_ipv4() {
                want[ETH + 10] = 0;
                want[ETH + 11] = 0;
                let c = !fold(sum(&want[ETH..ETH + 20], 0));
                want[ETH + 10..ETH + 12].copy_from_slice(&c.to_be_bytes());
            }
            want[0..6].copy_from_slice(&A);
            want[6..12].copy_from_slice(&B);
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
        frag[ETH + 6] = 0x20; // more fragments
        assert!(parse(&frag).is_none());
        let mut ttl1 = f.clone();
        ttl1[ETH + 8] = 1;
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
        let l4 = p.payload.start - 8;
        if p.src.is_ipv4() && f[l4 + 6..l4 + 8] == [0, 0] {
            return true;
        }
        let ulen = (p.payload.end - l4) as u32;
        let acc = sum(&ip_bytes(p.src.ip()), sum(&ip_bytes(p.dst.ip()), 0));
        fold(sum(&f[l4..p.payload.end], acc + u32::from(UDP) + ulen)) == 0xffff
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
            let l4 = p.payload.start - 8;
            // What a sender with checksum offload leaves: the pseudo-header sum.
            let ulen = (p.payload.end - l4) as u32;
            let acc = sum(&ip_bytes(p.src.ip()), sum(&ip_bytes(p.dst.ip()), 0));
            let partial = fold(acc + u32::from(UDP) + ulen);
            f[l4 + 6..l4 + 8].copy_from_slice(&partial.to_be_bytes());
            assert!(!udp_checksum_ok(&f));
            assert!(rewrite(&mut f, &p, a(new_src), a(new_dst), B, A));
            assert!(udp_checksum_ok(&f), "{from} -> {new_dst}");
            let want = frame(a(new_src), a(new_dst), payload);
            assert_eq!(f[l4 + 6..l4 + 8], want[l4 + 6..l4 + 8]);
        }
    }

    #[test]
    fn a_missing_udp_checksum_stays_missing_over_ipv4_and_is_computed_over_ipv6() {
        for (from, to, new_src, new_dst) in FLOWS {
            let mut f = frame(a(from), a(to), b"x");
            let p = parse(&f).expect("parses");
            let l4 = p.payload.start - 8;
            f[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
            assert!(rewrite(&mut f, &p, a(new_src), a(new_dst), B, A));
            let zero = f[l4 + 6..l4 + 8] == [0, 0];
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
        let l4 = p.payload.start - 8;
        f[l4 + 4..l4 + 6].copy_from_slice(&(8u16 + 10).to_be_bytes());
        assert!(parse(&f).is_none());
        // Over IPv6 the UDP length must match the payload length.
        let mut f6 = frame(a("[fd00::2]:4000"), a("[fd00::1]:30000"), b"ab");
        f6.resize(f6.len() + 8, 0);
        let p6 = parse(&f6).expect("parses");
        assert_eq!(&f6[p6.payload.clone()], b"ab");
        let l4 = p6.payload.start - 8;
        f6[l4 + 4..l4 + 6].copy_from_slice(&(8u16 + 10).to_be_bytes());
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
