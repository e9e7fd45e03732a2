//! IP/UDP framing of spooled RTP: the writer wraps each RTP packet in a made-up IPv4/IPv6 + UDP header (and
//! a zeroed Ethernet header for `eth`), so the files open in Wireshark; the reader strips it again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::pcap::LinkType;
use super::SpoolError;

/// The UDP datagram found in a captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: &'a [u8],
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// One's-complement sum over 16-bit words.
fn sum16(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Appends the frame for `payload` sent from `src` to `dst` to `out`. Mixed families are written as IPv6
/// with the IPv4 address mapped.
pub fn build_frame(src: SocketAddr, dst: SocketAddr, payload: &[u8], eth: bool, out: &mut Vec<u8>) {
    let udp_len = (8 + payload.len()).min(usize::from(u16::MAX)) as u16;
    let payload = &payload[..usize::from(udp_len) - 8];
    let both_v4 = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some((s, d)),
        _ => None,
    };
    if eth {
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(if both_v4.is_some() {
            &[0x08, 0x00]
        } else {
            &[0x86, 0xdd]
        });
    }
    let mut udp = [0u8; 8];
    udp[0..2].copy_from_slice(&src.port().to_be_bytes());
    udp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    if let Some((s, d)) = both_v4 {
        let total = (20 + u32::from(udp_len)).min(0xffff) as u16;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&s.octets());
        ip[16..20].copy_from_slice(&d.octets());
        let ck = fold(sum16(0, &ip));
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
        out.extend_from_slice(&ip);
        // UDP checksum 0 = not computed, allowed for IPv4.
        out.extend_from_slice(&udp);
    } else {
        let (s, d) = (v6(src.ip()), v6(dst.ip()));
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
        ip[6] = 17;
        ip[7] = 64;
        ip[8..24].copy_from_slice(&s.octets());
        ip[24..40].copy_from_slice(&d.octets());
        out.extend_from_slice(&ip);
        let mut acc = sum16(0, &ip[8..40]);
        acc += u32::from(udp_len) + 17;
        acc = sum16(acc, &udp);
        acc = sum16(acc, payload);
        let ck = match fold(acc) {
            0 => 0xffff,
            c => c,
        };
        udp[6..8].copy_from_slice(&ck.to_be_bytes());
        out.extend_from_slice(&udp);
    }
    out.extend_from_slice(payload);
}

fn corrupt(what: &str) -> SpoolError {
    SpoolError::Corrupt(format!("captured frame: {what}"))
}

/// Finds the UDP datagram in a captured frame.
pub fn parse_frame(link: LinkType, frame: &[u8]) -> Result<Datagram<'_>, SpoolError> {
    let ip = match link {
        LinkType::Raw => frame,
        LinkType::Ethernet | LinkType::LinuxSll => {
            let (mut type_at, mut start) = if link == LinkType::Ethernet {
                (12, 14)
            } else {
                (14, 16)
            };
            loop {
                let t = frame
                    .get(type_at..type_at + 2)
                    .ok_or_else(|| corrupt("short link header"))?;
                match u16::from_be_bytes([t[0], t[1]]) {
                    0x8100 | 0x88a8 => {
                        type_at += 4;
                        start += 4;
                    }
                    0x0800 | 0x86dd => break,
                    other => return Err(corrupt(&format!("ethertype {other:#06x} is not IP"))),
                }
            }
            frame
                .get(start..)
                .ok_or_else(|| corrupt("short link header"))?
        }
    };
    let version = ip.first().ok_or_else(|| corrupt("empty"))? >> 4;
    let (src_ip, dst_ip, udp): (IpAddr, IpAddr, &[u8]) = match version {
        4 => {
            let h = ip.get(..20).ok_or_else(|| corrupt("short IPv4 header"))?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if h[9] != 17 {
                return Err(corrupt("not UDP"));
            }
            if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
                return Err(corrupt("IPv4 fragment"));
            }
            let end = total.min(ip.len());
            let udp = ip
                .get(ihl..end)
                .ok_or_else(|| corrupt("bad IPv4 lengths"))?;
            let s = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
            let d = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
            (s.into(), d.into(), udp)
        }
        6 => {
            let h = ip.get(..40).ok_or_else(|| corrupt("short IPv6 header"))?;
            if h[6] != 17 {
                return Err(corrupt("not UDP (or IPv6 extension headers)"));
            }
            let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
            let end = (40 + plen).min(ip.len());
            let mut s = [0u8; 16];
            s.copy_from_slice(&h[8..24]);
            let mut d = [0u8; 16];
            d.copy_from_slice(&h[24..40]);
            let udp = ip.get(40..end).ok_or_else(|| corrupt("bad IPv6 lengths"))?;
            (Ipv6Addr::from(s).into(), Ipv6Addr::from(d).into(), udp)
        }
        v => return Err(corrupt(&format!("IP version {v}"))),
    };
    let uh = udp.get(..8).ok_or_else(|| corrupt("short UDP header"))?;
    let ulen = usize::from(u16::from_be_bytes([uh[4], uh[5]]));
    let end = ulen.clamp(8, udp.len().max(8)).min(udp.len());
    let payload = udp.get(8..end).ok_or_else(|| corrupt("bad UDP length"))?;
    Ok(Datagram {
        src: SocketAddr::new(src_ip, u16::from_be_bytes([uh[0], uh[1]])),
        dst: SocketAddr::new(dst_ip, u16::from_be_bytes([uh[2], uh[3]])),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_round_trip_and_checksum() {
        let mut f = Vec::new();
        build_frame(
            sa("10.0.0.1:4000"),
            sa("192.168.1.2:30000"),
            b"hello",
            false,
            &mut f,
        );
        assert_eq!(f.len(), 20 + 8 + 5);
        assert_eq!(
            fold(sum16(0, &f[..20])),
            0,
            "IPv4 header checksum must verify"
        );
        let d = parse_frame(LinkType::Raw, &f).unwrap();
        assert_eq!(d.src, sa("10.0.0.1:4000"));
        assert_eq!(d.dst, sa("192.168.1.2:30000"));
        assert_eq!(d.payload, b"hello");
    }

    #[test]
    fn ipv6_and_eth_round_trip() {
        let mut f = Vec::new();
        build_frame(
            sa("[2001:db8::1]:5004"),
            sa("[2001:db8::2]:6000"),
            b"abc",
            true,
            &mut f,
        );
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        // UDP checksum over the pseudo header verifies to zero.
        let ip = &f[14..];
        let mut acc = sum16(0, &ip[8..40]);
        acc += 11 + 17;
        acc = sum16(acc, &ip[40..]);
        assert_eq!(fold(acc), 0);
        let d = parse_frame(LinkType::Ethernet, &f).unwrap();
        assert_eq!(d.src, sa("[2001:db8::1]:5004"));
        assert_eq!(d.payload, b"abc");
    }

    #[test]
    fn mixed_families_map_to_v6() {
        let mut f = Vec::new();
        build_frame(sa("10.0.0.1:1"), sa("[::1]:2"), b"x", false, &mut f);
        let d = parse_frame(LinkType::Raw, &f).unwrap();
        assert_eq!(d.src, sa("[::ffff:10.0.0.1]:1"));
    }

    #[test]
    fn garbage_frames() {
        for f in [&b""[..], &[0x45; 10], &[0x60; 39], &[0x99; 60]] {
            assert!(parse_frame(LinkType::Raw, f).is_err());
            assert!(parse_frame(LinkType::Ethernet, f).is_err());
        }
        let mut f = Vec::new();
        build_frame(sa("10.0.0.1:1"), sa("10.0.0.2:2"), b"x", false, &mut f);
        f[0] = 0x4f; // IHL past the end
        assert!(parse_frame(LinkType::Raw, &f).is_err());
    }
}
