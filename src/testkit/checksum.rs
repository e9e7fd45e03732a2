//! Internet checksums computed from scratch, independently of the code under test: the sums a
//! test compares the relay's incremental updates (XDP program, AF_XDP rewrite) against.

use std::net::IpAddr;

/// The one's-complement sum of `data` as big-endian 16-bit words (an odd tail padded with zero),
/// not yet folded.
pub fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

/// `s` folded to 16 bits (end-around carry).
pub fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The UDP checksum of `udp` (header with any checksum field, payload) between two addresses.
pub fn udp_checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    let mut u = udp.to_vec();
    u[6] = 0;
    u[7] = 0;
    let c = !fold(pseudo_sum(src, dst, u.len()) + sum16(&u));
    if c == 0 {
        0xffff
    } else {
        c
    }
}

/// What a local sender with checksum offload puts in the UDP checksum field: the pseudo-header's
/// folded sum, not complemented (CHECKSUM_PARTIAL).
pub fn partial_checksum(src: IpAddr, dst: IpAddr, udp_len: usize) -> u16 {
    fold(pseudo_sum(src, dst, udp_len))
}

/// The sum of the UDP pseudo-header.
pub fn pseudo_sum(src: IpAddr, dst: IpAddr, udp_len: usize) -> u32 {
    let mut pseudo = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(udp_len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
        }
        _ => panic!("mixed families"),
    }
    sum16(&pseudo)
}
