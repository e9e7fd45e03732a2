//! Ethernet/IP/UDP frames built and read from scratch for tests (never with the crate's own
//! `wire::frame`): what the XDP program and the AF_XDP path are fed and what they must emit.

use std::net::{IpAddr, SocketAddr};

use super::checksum::{fold, sum16, udp_checksum};

/// An Ethernet frame (optionally VLAN-tagged) carrying UDP `payload` from `src` to `dst`, with
/// both checksums correct.
pub fn udp_frame(
    dmac: [u8; 6],
    smac: [u8; 6],
    vlan: bool,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    if vlan {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
    }
    let mut udp = Vec::new();
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let c = udp_checksum(src.ip(), dst.ip(), &udp);
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&((20 + udp.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = !fold(sum16(&ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(udp.len() as u16).to_be_bytes());
            f.extend_from_slice(&[17, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    f.extend_from_slice(&udp);
    f
}

/// An RTP packet (PCMU, 160 bytes of payload).
pub fn rtp() -> Vec<u8> {
    let mut p = vec![
        0x80, 0x00, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef,
    ];
    p.extend((0..160u32).map(|i| (i * 7) as u8));
    p
}

/// An RTCP receiver report with no blocks (8 bytes).
pub fn rtcp() -> Vec<u8> {
    vec![0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef]
}

/// A parsed output frame: L3 offset, addresses, ports, TTL, and whether both checksums hold.
#[derive(Debug)]
pub struct Parsed {
    pub dmac: [u8; 6],
    pub smac: [u8; 6],
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ttl: u8,
    pub ip_ok: bool,
    pub udp_ok: bool,
    pub udp_zero: bool,
}

/// Reads a frame (VLAN tags skipped, IPv4 options allowed) and checks its checksums from scratch.
pub fn parse_udp(f: &[u8]) -> Option<Parsed> {
    let dmac: [u8; 6] = f.get(0..6)?.try_into().ok()?;
    let smac: [u8; 6] = f.get(6..12)?.try_into().ok()?;
    let mut off = 12;
    let mut proto = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    if proto == 0x8100 || proto == 0x88a8 {
        off += 4;
        proto = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    }
    off += 2;
    let (src_ip, dst_ip, ttl, ip_ok, l4, ulen) = match proto {
        0x0800 => {
            let ihl = usize::from(f.get(off)? & 0x0f) * 4;
            if ihl < 20 {
                return None;
            }
            let ip = f.get(off..off + ihl)?;
            let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let s: [u8; 4] = ip[12..16].try_into().ok()?;
            let d: [u8; 4] = ip[16..20].try_into().ok()?;
            let ok = fold(sum16(ip)) == 0xffff;
            (
                IpAddr::from(s),
                IpAddr::from(d),
                ip[8],
                ok,
                off + ihl,
                tot.checked_sub(ihl)?,
            )
        }
        0x86dd => {
            let ip = f.get(off..off + 40)?;
            let s: [u8; 16] = ip[8..24].try_into().ok()?;
            let d: [u8; 16] = ip[24..40].try_into().ok()?;
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            (
                IpAddr::from(s),
                IpAddr::from(d),
                ip[7],
                true,
                off + 40,
                plen,
            )
        }
        _ => return None,
    };
    let udp = f.get(l4..l4 + ulen)?;
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let check = u16::from_be_bytes([udp[6], udp[7]]);
    let udp_ok = check == udp_checksum(src_ip, dst_ip, udp);
    Some(Parsed {
        dmac,
        smac,
        src: SocketAddr::new(src_ip, sport),
        dst: SocketAddr::new(dst_ip, dport),
        ttl,
        ip_ok,
        udp_ok,
        udp_zero: check == 0,
    })
}
