//! Ethernet frames carrying UDP over IPv4/IPv6, as the AF_XDP plane sees them: parse one to find
//! its addresses and payload, and rewrite one in place to send it on (new MACs, addresses, ports,
//! TTL, and both checksums computed in full, since frames from a veth sender may carry a
//! partial UDP checksum). Sans-IO.

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
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[ttl_at] -= 1;
    let (s, d) = (ip_bytes(src.ip()), ip_bytes(dst.ip()));
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
    f[l4..l4 + 2].copy_from_slice(&src.port().to_be_bytes());
    f[l4 + 2..l4 + 4].copy_from_slice(&dst.port().to_be_bytes());
    let had_checksum = f[l4 + 6] != 0 || f[l4 + 7] != 0;
    f[l4 + 6] = 0;
    f[l4 + 7] = 0;
    // IPv4 may go without a UDP checksum (as it came); IPv6 never does.
    if had_checksum || !v4 {
        let ulen = (p.payload.end - l4) as u32;
        let mut acc = sum(&s, 0);
        acc = sum(&d, acc);
        acc = acc.wrapping_add(u32::from(UDP)).wrapping_add(ulen);
        acc = sum(&f[l4..p.payload.end], acc);
        let c = match !fold(acc) {
            0 => 0xffff,
            c => c,
        };
        f[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    /// A frame with a correct UDP checksum, built independently of `rewrite`.
    fn frame(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
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
        for (from, to, new_src, new_dst) in [
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
        ] {
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
