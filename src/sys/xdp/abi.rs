//! `#[repr(C)]` mirrors of the map structs in `bpf/relay.h`, and their conversion from the
//! public API types. Keep both sides in step: the size checks below catch a drifted layout.

use std::net::{IpAddr, SocketAddr};

use super::{Rule, RuleKind, XdpError};

/// `RTPRELAY_MAX_FLOWS`: rules, and counter slots.
pub const MAX_FLOWS: u32 = 65536;
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;
pub const F_STRICT: u16 = 0x0001;
pub const F_KIND_RTP: u16 = 0x0002;
pub const F_KIND_RTCP: u16 = 0x0004;
pub const F_KIND_OPAQUE: u16 = 0x0008;
pub const F_OUT_V6: u16 = 0x0010;
pub const F_BLOCK: u16 = 0x0020;
/// `RTPRELAY_MAX_QUEUES`: rx queues per device that can have an AF_XDP socket.
pub const MAX_QUEUES: u32 = 64;
/// `RTPRELAY_MAX_DEVICES`: devices that can have AF_XDP sockets (`xsk_devs` slots).
pub const MAX_DEVICES: u32 = 16;
/// `RTPRELAY_CFG_AFXDP`: relay-port UDP the program does not forward goes to the AF_XDP socket.
pub const CFG_AFXDP: u16 = 0x0001;
/// `RTPRELAY_CFG_LOCALS`: only packets to an address in `locals` are the relay's.
pub const CFG_LOCALS: u16 = 0x0002;
/// `RTPRELAY_MAX_LOCALS`: addresses `locals` holds.
pub const MAX_LOCALS: usize = 64;
/// `RTPRELAY_MAX_ATTACHED`: devices `devs` (the devices the program may send to) holds.
pub const MAX_ATTACHED: usize = 64;

/// `struct rtprelay_flow_key`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// Network-order words; IPv4 v4-mapped.
    pub addr: [u32; 4],
    /// Network order.
    pub port: u16,
    pub family: u8,
    pub pad: u8,
}

/// `struct rtprelay_flow`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flow {
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
    pub expect_addr: [u32; 4],
    pub sport: u16,
    pub dport: u16,
    pub expect_port: u16,
    pub flags: u16,
    pub slot: u32,
    /// With `F_BLOCK`: payload type n still forwarded if bit n % 32 of word n / 32 is set.
    pub pass_pts: [u32; 4],
}

/// `struct rtprelay_counters`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
    pub errors: u64,
    pub last_seen_ns: u64,
    pub blocked: u64,
}

/// `struct rtprelay_hop`: the program's per-CPU next-hop cache of a slot (only zeroed here).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hop {
    pub expires_ns: u64,
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
    pub ifindex: u32,
    pub len: u32,
    pub smac: [u8; 6],
    pub dmac: [u8; 6],
    pub pad: u32,
}

/// `struct rtprelay_addr`: the key of `locals`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddrKey {
    /// Network-order words; IPv4 v4-mapped.
    pub addr: [u32; 4],
}

/// `struct rtprelay_pair`: the key of `peers`, a rule's new source and destination.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairKey {
    /// Network-order words; IPv4 v4-mapped.
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
}

/// `struct rtprelay_peer`: the value of `peers`, a next hop.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peer {
    pub ifindex: u32,
    /// The relay's MAC on that device (the frame's new source).
    pub our_mac: [u8; 6],
    /// The next hop's MAC (the frame's new destination).
    pub peer_mac: [u8; 6],
}

/// `struct rtprelay_stats`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub forwarded: u64,
    pub passed: u64,
    pub dropped: u64,
    pub aborted: u64,
    pub redirected: u64,
}

/// `struct rtprelay_config`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    pub port_min: u16,
    pub port_max: u16,
    /// `CFG_*`.
    pub flags: u16,
    pub pad: u16,
}

// The skeleton's types come from the object's BTF, i.e. from relay.h as clang laid it out.
const _: () = {
    use super::skel::types;
    use std::mem::size_of;
    assert!(size_of::<FlowKey>() == 20 && size_of::<types::rtprelay_flow_key>() == 20);
    assert!(size_of::<Flow>() == 76 && size_of::<types::rtprelay_flow>() == 76);
    assert!(size_of::<Counters>() == 56 && size_of::<types::rtprelay_counters>() == 56);
    assert!(size_of::<Hop>() == 64 && size_of::<types::rtprelay_hop>() == 64);
    assert!(size_of::<Stats>() == 40 && size_of::<types::rtprelay_stats>() == 40);
    assert!(size_of::<AddrKey>() == 16 && size_of::<types::rtprelay_addr>() == 16);
    assert!(size_of::<PairKey>() == 32 && size_of::<types::rtprelay_pair>() == 32);
    assert!(size_of::<Peer>() == 16 && size_of::<types::rtprelay_peer>() == 16);
    assert!(size_of::<Config>() == 8 && size_of::<types::rtprelay_config>() == 8);
};

/// Plain-old-data map structs: every bit pattern is valid and there is no padding the compiler
/// adds (the structs pad explicitly), so they can be viewed as bytes and read from bytes.
pub trait Pod: Copy + Default {
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: `Self` is one of the repr(C) structs above (the trait is only implemented
        // for them), which have no implicit padding, so all size_of::<Self>() bytes are
        // initialised; the slice borrows `self`.
        unsafe {
            std::slice::from_raw_parts(
                (self as *const Self).cast::<u8>(),
                std::mem::size_of::<Self>(),
            )
        }
    }

    /// Read a value from the start of `bytes` (None when too short).
    fn read(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < std::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the length was checked; read_unaligned has no alignment requirement, and
        // every bit pattern is a valid value of these integer-only structs.
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

impl Pod for FlowKey {}
impl Pod for Flow {}
impl Pod for Counters {}
impl Pod for Hop {}
impl Pod for Stats {}
impl Pod for Config {}
impl Pod for AddrKey {}
impl Pod for PairKey {}
impl Pod for Peer {}

/// An address as the maps hold it: 16 bytes, IPv4 v4-mapped, and its family. A v4-mapped IPv6
/// socket address is taken as the IPv4 address it carries (that is what arrives on the wire).
fn words(ip: IpAddr) -> ([u32; 4], u8) {
    let (v6, family) = match ip {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped(), FAMILY_V4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (v4.to_ipv6_mapped(), FAMILY_V4),
            None => (v6, FAMILY_V6),
        },
    };
    let o = v6.octets();
    let w = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
    ([w(0), w(4), w(8), w(12)], family)
}

/// The `locals` key of an address: 16 bytes, IPv4 v4-mapped.
pub fn addr_key(ip: IpAddr) -> [u32; 4] {
    words(ip).0
}

/// The `peers` key of the pair (new source, new destination) of a rule.
pub fn pair_key(source: IpAddr, dest: IpAddr) -> PairKey {
    PairKey {
        saddr: words(source).0,
        daddr: words(dest).0,
    }
}

/// The map key for packets arriving at `local`. An unspecified address matches any local
/// address of its family.
pub fn key(local: SocketAddr) -> FlowKey {
    let (addr, family) = words(local.ip());
    FlowKey {
        addr,
        port: local.port().to_be(),
        family,
        pad: 0,
    }
}

/// The map value for `rule`, counting into `slot`.
pub fn flow(rule: &Rule, slot: u32) -> Result<Flow, XdpError> {
    let (saddr, sfam) = words(rule.source.ip());
    let (daddr, dfam) = words(rule.dest.ip());
    if sfam != dfam {
        return Err(XdpError::Map(format!(
            "rule source {} and destination {} are of different families",
            rule.source, rule.dest
        )));
    }
    let mut flags = match rule.kind {
        RuleKind::Rtp => F_KIND_RTP,
        RuleKind::Rtcp => F_KIND_RTCP,
        RuleKind::Opaque => F_KIND_OPAQUE,
    };
    if dfam == FAMILY_V6 {
        flags |= F_OUT_V6;
    }
    let mut pass_pts = [0u32; 4];
    if let Some(pass) = rule.block {
        flags |= F_BLOCK;
        for (i, w) in pass_pts.iter_mut().enumerate() {
            *w = (pass >> (32 * i)) as u32;
        }
    }
    let (expect_addr, expect_port) = match rule.expect {
        Some(e) => {
            flags |= F_STRICT;
            (words(e.ip()).0, e.port().to_be())
        }
        None => ([0; 4], 0),
    };
    Ok(Flow {
        saddr,
        daddr,
        expect_addr,
        sport: rule.source.port().to_be(),
        dport: rule.dest.port().to_be(),
        expect_port,
        flags,
        slot,
        pass_pts,
    })
}
