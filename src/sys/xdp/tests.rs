//! Tests of the XDP program through BPF_PROG_TEST_RUN (crafted and random frames, the full
//! rewrite against a real FIB in a namespace), and of attaching/replacing/detaching on a veth.
//! They need root (CAP_BPF + CAP_NET_ADMIN): without it they skip through
//! [`crate::testkit::skip_unless`] (a failure under `RTPRELAY_E2E=1`).
#![allow(clippy::unwrap_used)]

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use libbpf_rs::{ProgramInput, ProgramMut};

use super::loader::{load_skel, table_of};
use super::*;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;

/// MACs in the test topology.
const RELAY_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];
const RELAY2_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x01];
const PEER_A_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x02];
const PEER_B_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x03];
const PEER_C_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x02, 0x02];
/// A host on veth0's link that forges the peers' addresses.
const SPOOF_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x66];

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Load the skeleton (not attached) and run `f` with its program and a table over its maps;
/// None (a skip, or a failure under `RTPRELAY_E2E=1`) when this process may not load BPF.
pub(crate) fn with_skel<T>(f: impl FnOnce(&ProgramMut<'_>, &XdpTable) -> T) -> Option<T> {
    // libbpf's messages (a verifier log on failure) go to tracing.
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut storage = MaybeUninit::uninit();
    let skel = match load_skel(&mut storage) {
        Ok(s) => s,
        Err(XdpError::Permission(e)) => {
            crate::testkit::skip_unless(false, &format!("cannot load BPF here ({e})"));
            return None;
        }
        Err(e) => panic!("loading the XDP program: {e}"),
    };
    let table = table_of(&skel).unwrap();
    Some(f(&skel.progs.rtprelay_xdp, &table))
}

/// Run the program on `frame` as if received on `ifindex`: (action, frame after the run).
fn run(prog: &ProgramMut<'_>, frame: &[u8], ifindex: u32) -> (u32, Vec<u8>) {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex.
    let len = u32::try_from(frame.len()).unwrap();
    let mut ctx = Vec::with_capacity(24);
    for w in [0, len, 0, ifindex, 0, 0] {
        ctx.extend_from_slice(&u32::to_ne_bytes(w));
    }
    let mut out = vec![0u8; frame.len() + 64];
    let input = ProgramInput {
        context_in: Some(&mut ctx),
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..Default::default()
    };
    let output = prog.test_run(input).unwrap();
    let data = output.data.map(|d| d.to_vec()).unwrap_or_default();
    (output.return_value, data)
}

// ---- frames ----

pub(crate) fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

pub(crate) fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The UDP checksum of `udp` (header with any checksum field, payload) between two addresses.
fn udp_checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
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
fn partial_checksum(src: IpAddr, dst: IpAddr, udp_len: usize) -> u16 {
    fold(pseudo_sum(src, dst, udp_len))
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, udp_len: usize) -> u32 {
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

/// An Ethernet frame (optionally VLAN-tagged) carrying UDP `payload` from `src` to `dst`.
fn frame(
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
fn rtp() -> Vec<u8> {
    let mut p = vec![
        0x80, 0x00, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef,
    ];
    p.extend((0..160u32).map(|i| (i * 7) as u8));
    p
}

/// An RTCP receiver report with no blocks (8 bytes).
fn rtcp() -> Vec<u8> {
    vec![0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef]
}

/// A parsed output frame: L3 offset, addresses, ports, TTL, and whether both checksums hold.
#[derive(Debug)]
struct Parsed {
    dmac: [u8; 6],
    smac: [u8; 6],
    src: SocketAddr,
    dst: SocketAddr,
    ttl: u8,
    ip_ok: bool,
    udp_ok: bool,
    udp_zero: bool,
}

fn parse(f: &[u8]) -> Option<Parsed> {
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

// ---- a namespace with a route and neighbours ----

pub(crate) static NEXT_NS: AtomicU32 = AtomicU32::new(0);

/// A network namespace with two veth pairs: veth0 (192.0.2.1/24, 2001:db8:1::1/64) with
/// permanent neighbours .2/.3 (::2/::3), and veth2 (198.51.100.1/24, 2001:db8:2::1/64) with
/// neighbour .2 (::2). Deleted on drop.
struct Netns {
    name: String,
}

pub(crate) fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    fn new(forwarding: bool) -> Netns {
        let name = format!(
            "rtprelay-xdp-{}-{}",
            std::process::id(),
            NEXT_NS.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        let n = ns.name.as_str();
        let mac = |m: [u8; 6]| {
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        ip(&["-n", n, "link", "set", "lo", "up"]);
        for (a, b, amac, addr4, addr6) in [
            (
                "veth0",
                "veth1",
                RELAY_MAC,
                "192.0.2.1/24",
                "2001:db8:1::1/64",
            ),
            (
                "veth2",
                "veth3",
                RELAY2_MAC,
                "198.51.100.1/24",
                "2001:db8:2::1/64",
            ),
        ] {
            ip(&[
                "-n",
                n,
                "link",
                "add",
                a,
                "address",
                &mac(amac),
                "type",
                "veth",
                "peer",
                "name",
                b,
            ]);
            ip(&["-n", n, "link", "set", a, "up"]);
            ip(&["-n", n, "link", "set", b, "up"]);
            ip(&["-n", n, "addr", "add", addr4, "dev", a]);
            ip(&["-n", n, "addr", "add", addr6, "dev", a, "nodad"]);
        }
        for (addr, m, dev) in [
            ("192.0.2.2", PEER_A_MAC, "veth0"),
            ("192.0.2.3", PEER_B_MAC, "veth0"),
            ("2001:db8:1::2", PEER_A_MAC, "veth0"),
            ("2001:db8:1::3", PEER_B_MAC, "veth0"),
            ("198.51.100.2", PEER_C_MAC, "veth2"),
            ("2001:db8:2::2", PEER_C_MAC, "veth2"),
        ] {
            ip(&[
                "-n",
                n,
                "neigh",
                "add",
                addr,
                "lladdr",
                &mac(m),
                "dev",
                dev,
                "nud",
                "permanent",
            ]);
        }
        ns.forwarding(forwarding);
        ns
    }

    /// bpf_fib_lookup() answers only where forwarding is on for the ingress device (a new
    /// namespace inherits IPv4's setting from the host's, so set it either way).
    fn forwarding(&self, on: bool) {
        let v = if on { "1" } else { "0" };
        for key in [
            "net.ipv4.conf.all.forwarding",
            "net.ipv6.conf.all.forwarding",
        ] {
            ip(&[
                "netns",
                "exec",
                &self.name,
                "sysctl",
                "-q",
                "-w",
                &format!("{key}={v}"),
            ]);
        }
    }

    /// Run `f` on a thread inside the namespace.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        crate::sys::netns::run_in(&self.name, f).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub(crate) fn can_load() -> bool {
    with_skel(|_, _| ()).is_some()
}

/// Let the program send out of `devices` (what the loader does for the devices it attaches
/// to); returns their indexes. Call inside the namespace.
fn send_out_of(table: &XdpTable, devices: &[&str]) -> Vec<u32> {
    devices
        .iter()
        .map(|d| {
            let i = ifindex(d).unwrap();
            table.add_device(i).unwrap();
            i
        })
        .collect()
}

// ---- crafted frames ----

#[test]
fn no_rule_passes_unchanged_and_is_counted() {
    with_skel(|prog, table| {
        let f = frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4000"),
            sa("192.0.2.1:30000"),
            &rtp(),
        );
        let (action, out) = run(prog, &f, 1);
        assert_eq!(action, XDP_PASS);
        assert_eq!(out, f);
        // Not IP at all, and a runt.
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(prog, &arp, 1).0, XDP_PASS);
        assert_eq!(run(prog, &f[..14], 1).0, XDP_PASS);
        let s = table.stats().unwrap();
        assert_eq!(
            s,
            XdpStats {
                passed: 3,
                ..XdpStats::default()
            }
        );
    });
}

#[test]
fn afxdp_flag_without_a_socket_falls_back_to_pass() {
    with_skel(|prog, table| {
        table.set_port_range(30000, 30099).unwrap();
        table.set_afxdp(true).unwrap();
        let f = frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4000"),
            sa("192.0.2.1:30000"),
            &rtp(),
        );
        // No AF_XDP socket on queue 0: the stack gets it, unchanged.
        let (action, out) = run(prog, &f, 1);
        assert_eq!(action, XDP_PASS);
        assert_eq!(out, f);
        // Outside the range, VLAN-tagged, not UDP: never offered to a socket.
        let other = frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4000"),
            sa("192.0.2.1:40000"),
            &rtp(),
        );
        assert_eq!(run(prog, &other, 1).0, XDP_PASS);
        let tagged = frame(
            RELAY_MAC,
            PEER_A_MAC,
            true,
            sa("192.0.2.2:4000"),
            sa("192.0.2.1:30000"),
            &rtp(),
        );
        assert_eq!(run(prog, &tagged, 1).0, XDP_PASS);
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(run(prog, &arp, 1).0, XDP_PASS);
        assert_eq!(
            table.stats().unwrap(),
            XdpStats {
                passed: 4,
                ..XdpStats::default()
            }
        );
        // Switching it off again keeps the port range.
        table.set_afxdp(false).unwrap();
        assert_eq!(run(prog, &f, 1).0, XDP_PASS);
    });
}

/// With AF_XDP on, only relay-port UDP to the relay's own addresses goes to the socket: the
/// same ports on another address (transit traffic on a host that routes, another service) stay
/// with the stack. An unspecified interface address takes every address, as before.
#[test]
fn afxdp_takes_only_the_relays_own_addresses() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        let xsk = crate::sys::xsk::XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        with_skel(|prog, table| {
            table.set_port_range(30000, 30099).unwrap();
            table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
            table.set_afxdp(true).unwrap();
            let ours: [IpAddr; 2] = [
                "192.0.2.1".parse().unwrap(),
                "2001:db8:1::1".parse().unwrap(),
            ];
            table.set_local_addrs(&ours).unwrap();
            let to = |src: &str, dst: &str| {
                frame(RELAY_MAC, PEER_A_MAC, false, sa(src), sa(dst), &rtp())
            };
            let local4 = to("192.0.2.2:4000", "192.0.2.1:30000");
            let local6 = to("[2001:db8:1::2]:4000", "[2001:db8:1::1]:30000");
            let transit4 = to("192.0.2.2:4000", "203.0.113.5:30000");
            let transit6 = to("[2001:db8:1::2]:4000", "[2001:db8:9::5]:30000");
            assert_eq!(run(prog, &local4, veth0).0, XDP_REDIRECT);
            assert_eq!(run(prog, &local6, veth0).0, XDP_REDIRECT);
            assert_eq!(run(prog, &transit4, veth0), (XDP_PASS, transit4.clone()));
            assert_eq!(run(prog, &transit6, veth0), (XDP_PASS, transit6.clone()));
            let s = table.stats().unwrap();
            assert_eq!((s.redirected, s.passed), (2, 2));
            // The relay on every address: everything in the range is its own again.
            let any: [IpAddr; 1] = ["0.0.0.0".parse().unwrap()];
            table.set_local_addrs(&any).unwrap();
            assert_eq!(run(prog, &transit4, veth0).0, XDP_REDIRECT);
            assert_eq!(run(prog, &transit6, veth0).0, XDP_REDIRECT);
        })
    });
}

/// What the kernel would drop goes there, never to AF_XDP nor forwarded: an IPv4 header
/// with a bad checksum, an IPv6 datagram with a zero UDP checksum (mandatory in IPv6).
#[test]
fn invalid_checksums_go_to_the_stack_even_with_afxdp() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        let xsk = crate::sys::xsk::XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        with_skel(|prog, table| {
            table.set_port_range(30000, 30099).unwrap();
            table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
            table.set_afxdp(true).unwrap();
            let src4 = sa("192.0.2.2:4000");
            let src6 = sa("[2001:db8:1::2]:4000");
            let mut bad = frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                src4,
                sa("192.0.2.1:30000"),
                &rtp(),
            );
            bad[14 + 10] ^= 0xff;
            let mut zero = frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                src6,
                sa("[2001:db8:1::1]:30000"),
                &rtp(),
            );
            zero[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&[0, 0]);
            assert_eq!(run(prog, &bad, veth0), (XDP_PASS, bad.clone()));
            assert_eq!(run(prog, &zero, veth0), (XDP_PASS, zero.clone()));
            // With rules for them, neither is forwarded (nor redirected, as the intact ones are).
            for (local, rule, _) in topology_rules(table) {
                let mut f = frame(
                    RELAY_MAC,
                    PEER_A_MAC,
                    false,
                    if local.is_ipv4() { src4 } else { src6 },
                    local,
                    &rtp(),
                );
                assert_ne!(run(prog, &f, veth0).0, XDP_PASS, "{rule:?}");
                if local.is_ipv4() {
                    f[14 + 10] ^= 0xff;
                } else {
                    f[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&[0, 0]);
                }
                assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()), "{rule:?}");
            }
        })
    });
}

#[test]
fn strict_source_mismatch_drops_and_counts_errors() {
    with_skel(|prog, table| {
        let local = sa("192.0.2.1:30000");
        let rule = Rule {
            source: sa("192.0.2.1:30002"),
            dest: sa("192.0.2.3:5000"),
            expect: Some(sa("192.0.2.2:4000")),
            kind: RuleKind::Rtp,
            block: None,
        };
        let slot = table.install(0, local, &rule).unwrap();
        assert_eq!(table.installed(), 1);
        // Wrong port, then wrong address.
        for src in ["192.0.2.2:4001", "192.0.2.9:4000"] {
            let f = frame(RELAY_MAC, PEER_A_MAC, false, sa(src), local, &rtp());
            assert_eq!(run(prog, &f, 1).0, XDP_DROP, "from {src}");
        }
        let t = table.totals(slot).unwrap();
        assert_eq!(t.errors, 2);
        assert_eq!(t.packets, 0);
        assert_eq!(table.stats().unwrap().dropped, 2);
        // The expected source is not dropped (it passes here: no route in this namespace).
        let f = frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4000"),
            local,
            &rtp(),
        );
        assert_eq!(run(prog, &f, 1).0, XDP_PASS);
        // Replacing keeps the slot and its counters; removing returns its last totals and
        // frees it; a new key reuses it with zeroed counters.
        assert_eq!(table.install(0, local, &rule).unwrap(), slot);
        assert_eq!(table.totals(slot).unwrap().errors, 2);
        let last = table.remove(local).unwrap().unwrap();
        assert_eq!((last.errors, last.packets), (2, 0));
        assert_eq!(table.remove(local).unwrap(), None);
        assert_eq!(table.installed(), 0);
        let f = frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.2:4001"),
            local,
            &rtp(),
        );
        assert_eq!(run(prog, &f, 1), (XDP_PASS, f.clone()));
        let other = sa("192.0.2.1:30010");
        assert_eq!(table.install(0, other, &rule).unwrap(), slot);
        assert_eq!(table.totals(slot).unwrap(), FlowTotals::default());
    });
}

#[test]
fn blocking_rule_drops_media_counts_it_and_lets_rtcp_and_dtmf_through() {
    with_skel(|prog, table| {
        let local = sa("192.0.2.1:30000");
        let rule = Rule {
            source: sa("192.0.2.1:30002"),
            dest: sa("192.0.2.3:5000"),
            expect: Some(sa("192.0.2.2:4000")),
            kind: RuleKind::Rtp,
            // Payload types 101 and 127 (both ends of a mask word) still pass.
            block: Some(1 << 101 | 1 << 127),
        };
        let slot = table.install(0, local, &rule).unwrap();
        let from = |src: &str, payload: &[u8]| {
            frame(RELAY_MAC, PEER_A_MAC, false, sa(src), local, payload)
        };
        // Media from the expected source: dropped, counted as the flow's packets and a drop.
        let f = from("192.0.2.2:4000", &rtp());
        assert_eq!(run(prog, &f, 1).0, XDP_DROP);
        let t = table.totals(slot).unwrap();
        assert_eq!(
            (t.packets, t.bytes, t.errors, t.blocked),
            (1, rtp().len() as u64, 0, 1)
        );
        assert_eq!(table.stats().unwrap().dropped, 1);
        // The source check still comes first.
        assert_eq!(run(prog, &from("192.0.2.9:4000", &rtp()), 1).0, XDP_DROP);
        assert_eq!(table.totals(slot).unwrap().errors, 1);
        // Muxed RTCP is not blocked: it goes on towards forwarding (passed here: no route).
        let f = from("192.0.2.2:4000", &rtcp());
        assert_eq!(run(prog, &f, 1), (XDP_PASS, f.clone()));
        assert_eq!(table.totals(slot).unwrap().rtcp_packets, 0);
        // So are the payload types the rule passes (DTMF events), and only those.
        for (pt, action) in [
            (101u8, XDP_PASS),
            (127, XDP_PASS),
            (100, XDP_DROP),
            (102, XDP_DROP),
        ] {
            let mut p = rtp();
            p[1] = pt | 0x80; // with the marker bit
            assert_eq!(
                run(prog, &from("192.0.2.2:4000", &p), 1).0,
                action,
                "PT {pt}"
            );
        }
        assert_eq!(table.totals(slot).unwrap().blocked, 3);
        // Unblocked, the same media is no longer dropped.
        table
            .install(
                0,
                local,
                &Rule {
                    block: None,
                    ..rule
                },
            )
            .unwrap();
        let f = from("192.0.2.2:4000", &rtp());
        assert_eq!(run(prog, &f, 1), (XDP_PASS, f.clone()));
        // Non-RTP media is blocked too, whatever its second byte.
        let opaque = Rule {
            kind: RuleKind::Opaque,
            expect: None,
            ..rule
        };
        table.install(0, local, &opaque).unwrap();
        assert_eq!(
            run(prog, &from("192.0.2.7:1", &[0x80, 101, 0, 0]), 1).0,
            XDP_DROP
        );
        assert_eq!(table.stats().unwrap().dropped, 5);
    });
}

#[test]
fn truncated_and_fragmented_frames_pass_unchanged() {
    with_skel(|prog, table| {
        let local = sa("192.0.2.1:30000");
        let rule = Rule {
            source: sa("192.0.2.1:30002"),
            dest: sa("192.0.2.3:5000"),
            expect: Some(sa("192.0.2.2:4000")),
            kind: RuleKind::Rtp,
            block: None,
        };
        table.install(0, local, &rule).unwrap();
        // From a wrong source, so that a frame that parsed fully would be dropped.
        let f = frame(
            RELAY_MAC,
            PEER_A_MAC,
            false,
            sa("192.0.2.9:1"),
            local,
            &rtp(),
        );
        assert_eq!(run(prog, &f, 1).0, XDP_DROP);
        for len in 14..14 + 20 + 8 {
            let (action, out) = run(prog, &f[..len], 1);
            assert_eq!((action, &out[..]), (XDP_PASS, &f[..len]), "cut at {len}");
        }
        // Cut inside the payload: the lengths disagree with the frame.
        let (action, _) = run(prog, &f[..f.len() - 1], 1);
        assert_eq!(action, XDP_PASS);
        // IP options (IHL 6, a NOP option word): left to the stack.
        let mut o = f[..14].to_vec();
        o.push(0x46);
        o.extend_from_slice(&f[15..34]);
        o.extend_from_slice(&[1, 1, 1, 0]);
        o.extend_from_slice(&f[34..]);
        let tot = u16::from_be_bytes([o[16], o[17]]) + 4;
        o[16..18].copy_from_slice(&tot.to_be_bytes());
        o[24..26].copy_from_slice(&[0, 0]);
        let c = !fold(sum16(&o[14..38]));
        o[24..26].copy_from_slice(&c.to_be_bytes());
        let (action, out) = run(prog, &o, 1);
        assert_eq!((action, out), (XDP_PASS, o));
        // More fragments, or an offset.
        for frag in [[0x20, 0x00], [0x00, 0x10]] {
            let mut g = f.clone();
            g[14 + 6..14 + 8].copy_from_slice(&frag);
            let (action, out) = run(prog, &g, 1);
            assert_eq!((action, out), (XDP_PASS, g));
        }
    });
}

// ---- the full rewrite, with a FIB ----

/// Rules of the namespace topology: v4 and v6, XDP_TX (same link) and redirect (other link).
fn topology_rules(table: &XdpTable) -> Vec<(SocketAddr, Rule, u32)> {
    let rules = [
        (
            "192.0.2.1:30000",
            "192.0.2.1:30002",
            "192.0.2.3:5000",
            None,
            RuleKind::Rtp,
        ),
        (
            "192.0.2.1:30004",
            "198.51.100.1:30006",
            "198.51.100.2:6000",
            Some("192.0.2.2:4000"),
            RuleKind::Rtp,
        ),
        (
            "192.0.2.1:30008",
            "192.0.2.1:30010",
            "192.0.2.3:5002",
            None,
            RuleKind::Opaque,
        ),
        (
            "[2001:db8:1::1]:30000",
            "[2001:db8:1::1]:30002",
            "[2001:db8:1::3]:5000",
            None,
            RuleKind::Rtp,
        ),
        (
            "[2001:db8:1::1]:30004",
            "[2001:db8:2::1]:30006",
            "[2001:db8:2::2]:6000",
            Some("[2001:db8:1::2]:4000"),
            RuleKind::Rtcp,
        ),
    ];
    rules
        .iter()
        .map(|&(local, source, dest, expect, kind)| {
            let rule = Rule {
                source: sa(source),
                dest: sa(dest),
                expect: expect.map(sa),
                kind,
                block: None,
            };
            let local = sa(local);
            let slot = table.install(0, local, &rule).unwrap();
            (local, rule, slot)
        })
        .collect()
}

/// Check a forwarded frame byte by byte against the input and the rule.
fn check_rewrite(input: &[u8], out: &[u8], rule: &Rule, dmac: [u8; 6], smac: [u8; 6]) {
    assert_eq!(out.len(), input.len());
    let i = parse(input).unwrap();
    let o = parse(out).unwrap();
    assert_eq!(o.dmac, dmac);
    assert_eq!(o.smac, smac);
    assert_eq!(o.src, rule.source);
    assert_eq!(o.dst, rule.dest);
    assert_eq!(o.ttl, i.ttl - 1);
    assert!(o.ip_ok, "IP header checksum");
    assert!(o.udp_ok, "UDP checksum");
    // Everything else is untouched: the payload, and the IP header beyond what changed.
    let l3 = if input[12] == 0x81 { 18 } else { 14 };
    if input[l3 - 2] == 0x08 {
        let changed = [8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
        for k in 0..20 {
            if !changed.contains(&k) {
                assert_eq!(out[l3 + k], input[l3 + k], "IPv4 header byte {k}");
            }
        }
        assert_eq!(out[l3 + 28..], input[l3 + 28..], "payload");
    } else {
        assert_eq!(out[l3..l3 + 7], input[l3..l3 + 7], "IPv6 header");
        assert_eq!(out[l3 + 48..], input[l3 + 48..], "payload");
    }
}

#[test]
fn rewrites_v4_and_v6_with_fib_next_hop() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let rules = topology_rules(table);
            // With forwarding off, bpf_fib_lookup() refuses; the next hop is the one the rule's
            // install copied from the kernel's route and neighbour entry (`peers`).
            for (local, rule, src, dmac, smac, action) in [
                (
                    rules[0].0,
                    rules[0].1,
                    "192.0.2.2:4000",
                    PEER_B_MAC,
                    RELAY_MAC,
                    XDP_TX,
                ),
                (
                    rules[1].0,
                    rules[1].1,
                    "192.0.2.2:4000",
                    PEER_C_MAC,
                    RELAY2_MAC,
                    XDP_REDIRECT,
                ),
                (
                    rules[3].0,
                    rules[3].1,
                    "[2001:db8:1::2]:4000",
                    PEER_B_MAC,
                    RELAY_MAC,
                    XDP_TX,
                ),
            ] {
                let f = frame(RELAY_MAC, PEER_A_MAC, false, sa(src), local, &rtp());
                let (a, out) = run(prog, &f, veth0);
                assert_eq!(a, action, "{rule:?}");
                check_rewrite(&f, &out, &rule, dmac, smac);
            }
            // A peer the kernel has no neighbour entry for: userspace sends it (and the
            // kernel resolves it).
            let local = sa("192.0.2.1:30020");
            let unknown = Rule {
                dest: sa("192.0.2.77:5000"),
                ..rules[0].1
            };
            table.install(0, local, &unknown).unwrap();
            let f = frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                sa("192.0.2.2:4000"),
                local,
                &rtp(),
            );
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
        })
    });
    ns.forwarding(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let rules = topology_rules(table);
            let src4 = sa("192.0.2.2:4000");
            let src6 = sa("[2001:db8:1::2]:4000");

            // v4, same link: XDP_TX, MACs from the FIB, the payload counted.
            let (local, rule, slot) = rules[0];
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);
            // RTCP muxed on the RTP port.
            let g = frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtcp());
            let (action, out) = run(prog, &g, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&g, &out, &rule, PEER_B_MAC, RELAY_MAC);
            assert_eq!(
                table.totals(slot).unwrap(),
                FlowTotals {
                    packets: 1,
                    bytes: rtp().len() as u64,
                    rtcp_packets: 1,
                    rtcp_bytes: 8,
                    errors: 0,
                    blocked: 0,
                }
            );
            // Not RTP on an RTP rule: passed, for userspace to count as malformed.
            let junk = frame(RELAY_MAC, PEER_A_MAC, false, src4, local, b"hello, not rtp");
            assert_eq!(run(prog, &junk, veth0), (XDP_PASS, junk.clone()));
            // With a VLAN tag, XDP_TX is still fine.
            let t = frame(RELAY_MAC, PEER_A_MAC, true, src4, local, &rtp());
            let (action, out) = run(prog, &t, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&t, &out, &rule, PEER_B_MAC, RELAY_MAC);
            // A zero UDP checksum stays zero (IPv4 only).
            let mut z = f.clone();
            z[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
            let (action, out) = run(prog, &z, veth0);
            assert_eq!(action, XDP_TX);
            assert!(parse(&out).unwrap().udp_zero);
            // A partial checksum (TX offload on a veth peer: the pseudo-header's sum only)
            // leaves fully valid.
            let mut p = f.clone();
            let partial = partial_checksum(src4.ip(), local.ip(), 8 + rtp().len());
            p[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&partial.to_be_bytes());
            let (action, out) = run(prog, &p, veth0);
            assert_eq!(action, XDP_TX);
            assert!(parse(&out).unwrap().udp_ok);
            // A wrong checksum is updated, not recomputed: it stays wrong, so the receiver
            // still drops what was corrupted on the way.
            let mut w = f.clone();
            w[14 + 20 + 8 + 20] ^= 0x40;
            let (action, out) = run(prog, &w, veth0);
            assert_eq!(action, XDP_TX);
            assert!(!parse(&out).unwrap().udp_ok);
            w[14 + 20 + 8 + 20] ^= 0x40;
            assert!(parse(&w).unwrap().udp_ok);
            // TTL 1 would expire: passed.
            let mut e = f.clone();
            e[14 + 8] = 1;
            e[14 + 10] = 0;
            e[14 + 11] = 0;
            let c = !fold(sum16(&e[14..34]));
            e[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
            assert_eq!(run(prog, &e, veth0), (XDP_PASS, e.clone()));
            // A bad IP header checksum: passed, not repaired.
            let mut b = f.clone();
            b[14 + 10] ^= 0xff;
            assert_eq!(run(prog, &b, veth0), (XDP_PASS, b.clone()));

            // v4 to another link: redirect, strict source honoured.
            let (local, rule, _) = rules[1];
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_REDIRECT);
            check_rewrite(&f, &out, &rule, PEER_C_MAC, RELAY2_MAC);
            // ... but not with a VLAN tag.
            let t = frame(RELAY_MAC, PEER_A_MAC, true, src4, local, &rtp());
            assert_eq!(run(prog, &t, veth0), (XDP_PASS, t.clone()));

            // Opaque: anything goes.
            let (local, rule, _) = rules[2];
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src4, local, b"x");
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);

            // v6, same link.
            let (local, rule, _) = rules[3];
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src6, local, &rtp());
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);
            // Odd payload length.
            let mut odd = rtp();
            odd.push(0x5a);
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src6, local, &odd);
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);

            // v6 RTCP rule to another link, strict.
            let (local, rule, slot) = rules[4];
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src6, local, &rtcp());
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_REDIRECT);
            check_rewrite(&f, &out, &rule, PEER_C_MAC, RELAY2_MAC);
            let t = table.totals(slot).unwrap();
            assert_eq!((t.packets, t.rtcp_packets, t.rtcp_bytes), (0, 1, 8));
            let bad = frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                sa("[2001:db8:1::9]:4000"),
                local,
                &rtcp(),
            );
            assert_eq!(run(prog, &bad, veth0).0, XDP_DROP);
            assert_eq!(table.totals(slot).unwrap().errors, 1);

            // Mixed families: a v4 local with a v6 rule is left to userspace.
            let mixed = Rule {
                source: sa("[2001:db8:1::1]:30002"),
                dest: sa("[2001:db8:1::3]:5000"),
                expect: None,
                kind: RuleKind::Opaque,
                block: None,
            };
            let local = sa("192.0.2.1:31000");
            table.install(0, local, &mixed).unwrap();
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            // A wildcard local address matches any local address of its family.
            let any = sa("0.0.0.0:32000");
            table.install(0, any, &rules[0].1).unwrap();
            let f = frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                src4,
                sa("192.0.2.1:32000"),
                &rtp(),
            );
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_TX);
            check_rewrite(&f, &out, &rules[0].1, PEER_B_MAC, RELAY_MAC);

            let s = table.stats().unwrap();
            assert_eq!(s.forwarded, 12);
            assert_eq!(s.dropped, 1);
            assert_eq!(s.aborted, 0);
        })
    });
}

/// The topology's rules, and one RTP frame forwarded by the first (caching its next hop):
/// that rule's local address, rule, slot, the frame's source and the frame.
fn first_forward(
    prog: &ProgramMut<'_>,
    table: &XdpTable,
    veth0: u32,
) -> (SocketAddr, Rule, u32, SocketAddr, Vec<u8>) {
    let (local, rule, slot) = topology_rules(table)[0];
    let src = sa("192.0.2.2:4000");
    let f = frame(RELAY_MAC, PEER_A_MAC, false, src, local, &rtp());
    let (action, out) = run(prog, &f, veth0);
    assert_eq!(action, XDP_TX);
    check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);
    (local, rule, slot, src, f)
}

/// Each CPU reuses a flow's next hop for up to a second (RTPRELAY_HOP_TTL_NS), but never for
/// another destination: a rule that now sends elsewhere looks its hop up at once, and a
/// neighbour whose MAC changed is followed once the cached hop expires.
#[test]
fn cached_next_hop_follows_rule_and_neighbour_changes() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    let name = ns.name.clone();
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let (local, rule, slot, _, f) = first_forward(prog, table, veth0);

            // The same slot now sends to the other link: no stale hop.
            let moved = Rule {
                source: sa("198.51.100.1:30006"),
                dest: sa("198.51.100.2:6000"),
                ..rule
            };
            assert_eq!(table.install(0, local, &moved).unwrap(), slot);
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_REDIRECT);
            check_rewrite(&f, &out, &moved, PEER_C_MAC, RELAY2_MAC);

            // Back, then the callee's MAC changes: the cached hop holds until it expires.
            table.install(0, local, &rule).unwrap();
            let (_, out) = run(prog, &f, veth0);
            check_rewrite(&f, &out, &rule, PEER_B_MAC, RELAY_MAC);
            let new_mac = [0x02, 0, 0, 0, 0x01, 0x33];
            ip(&[
                "-n",
                &name,
                "neigh",
                "replace",
                "192.0.2.3",
                "lladdr",
                "02:00:00:00:01:33",
                "dev",
                "veth0",
                "nud",
                "permanent",
            ]);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            loop {
                let (action, out) = run(prog, &f, veth0);
                assert_eq!(action, XDP_TX);
                if out[0..6] == new_mac {
                    check_rewrite(&f, &out, &rule, new_mac, RELAY_MAC);
                    break;
                }
                assert_eq!(out[0..6], PEER_B_MAC);
                assert!(
                    std::time::Instant::now() < deadline,
                    "new neighbour never used"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    });
}

/// The cached next hop is also keyed by the source: a rule replaced in place whose new source
/// routes elsewhere (policy routing) looks its hop up at once. And it holds only for packets as
/// short as the one looked up: a longer one is checked against the route's MTU again.
#[test]
fn cached_next_hop_is_keyed_by_source_and_length() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    let n = ns.name.clone();
    // From 198.51.100.1, 192.0.2.0/24 is reached over veth2 (peer C's MAC there).
    ip(&[
        "-n",
        &n,
        "rule",
        "add",
        "from",
        "198.51.100.1",
        "lookup",
        "100",
    ]);
    ip(&[
        "-n",
        &n,
        "route",
        "add",
        "192.0.2.0/24",
        "dev",
        "veth2",
        "table",
        "100",
    ]);
    ip(&[
        "-n",
        &n,
        "neigh",
        "add",
        "192.0.2.3",
        "lladdr",
        "02:00:00:00:02:02",
        "dev",
        "veth2",
        "nud",
        "permanent",
    ]);
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let (local, rule, slot, src, f) = first_forward(prog, table, veth0);

            // Same slot and destination, new source: its own route, not the cached hop.
            let resourced = Rule {
                source: sa("198.51.100.1:30006"),
                ..rule
            };
            assert_eq!(table.install(0, local, &resourced).unwrap(), slot);
            let (action, out) = run(prog, &f, veth0);
            assert_eq!(action, XDP_REDIRECT);
            check_rewrite(&f, &out, &resourced, PEER_C_MAC, RELAY2_MAC);

            // Back; then the link's MTU drops below a longer packet's size: that one goes to
            // the stack (which sends the ICMP error), the short ones still use the cached hop.
            table.install(0, local, &rule).unwrap();
            assert_eq!(run(prog, &f, veth0).0, XDP_TX);
            ip(&["-n", &n, "link", "set", "veth0", "mtu", "600"]);
            let mut long = rtp();
            long.resize(1000, 0);
            let big = frame(RELAY_MAC, PEER_A_MAC, false, src, local, &long);
            assert_eq!(run(prog, &big, veth0), (XDP_PASS, big.clone()));
            assert_eq!(run(prog, &f, veth0).0, XDP_TX);
        })
    });
}

// ---- next hops: from the kernel's tables, never from frames ----

/// Strict-source rules both ways between peer A (192.0.2.2:4000) and peer B
/// (192.0.2.3:5000): A sends to 192.0.2.1:30000, forwarded to B from 30002; B sends to 30002,
/// forwarded to A from 30000. Returns A's local address, B's, and the slot of B's rule.
fn call_rules(table: &XdpTable) -> (SocketAddr, SocketAddr, u32) {
    let (la, lb) = (sa("192.0.2.1:30000"), sa("192.0.2.1:30002"));
    let rule = |source, dest: &str, expect: &str| Rule {
        source,
        dest: sa(dest),
        expect: Some(sa(expect)),
        kind: RuleKind::Rtp,
        block: None,
    };
    let to_b = rule(lb, "192.0.2.3:5000", "192.0.2.2:4000");
    let to_a = rule(la, "192.0.2.2:4000", "192.0.2.3:5000");
    table.install(0, la, &to_b).unwrap();
    let slot = table.install(0, lb, &to_a).unwrap();
    (la, lb, slot)
}

/// Where the program sends a peer's media when its route lookup cannot answer (forwarding
/// off) comes from the kernel's tables, never from frames: a host on the link that forges peer
/// A's address, from another port, to a relay port without a rule, or with A's exact address
/// and port (which strict source lets through), never has B's media for A sent to its MAC. A
/// frame from a multicast or broadcast source is left to the stack (not forwarded, nor handed
/// to AF_XDP).
#[test]
fn forged_frames_never_move_a_peers_next_hop() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        let xsk = crate::sys::xsk::XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0"]);
            table.set_port_range(30000, 30099).unwrap();
            let relay: IpAddr = "192.0.2.1".parse().unwrap();
            let (a, b) = (sa("192.0.2.2:4000"), sa("192.0.2.3:5000"));
            let no_rule = sa("192.0.2.1:30050");
            let forged = |src, to| frame(RELAY_MAC, SPOOF_MAC, false, src, to, &rtp());
            // Before any rule, to a port of the range: nothing is learnt.
            let f = forged(a, no_rule);
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            assert_eq!(table.peer_entry(relay, a.ip()).unwrap(), None);
            // The rules go in with their next hops, from the neighbour table.
            let (la, lb, slot_b) = call_rules(table);
            let hop = |peer_mac| abi::Peer {
                ifindex: veth0,
                our_mac: RELAY_MAC,
                peer_mac,
            };
            let hops = |t: &XdpTable| {
                (
                    t.peer_entry(relay, a.ip()).unwrap(),
                    t.peer_entry(relay, b.ip()).unwrap(),
                )
            };
            assert_eq!(hops(table), (Some(hop(PEER_A_MAC)), Some(hop(PEER_B_MAC))));
            // A's address, another port: strict source drops it.
            let f = forged(SocketAddr::new(a.ip(), 4001), la);
            assert_eq!(run(prog, &f, veth0).0, XDP_DROP);
            // A's address, to a port with no rule: the stack's.
            let f = forged(a, no_rule);
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            // A's exact address and port: forwarded to B (strict source cannot tell them
            // apart), and that is all.
            let (action, out) = run(prog, &forged(a, la), veth0);
            assert_eq!(action, XDP_TX);
            assert_eq!(parse(&out).unwrap().dmac, PEER_B_MAC);
            assert_eq!(hops(table), (Some(hop(PEER_A_MAC)), Some(hop(PEER_B_MAC))));
            // B's media for A, the first since (no hop cached): to A's MAC.
            let from_b = frame(RELAY_MAC, PEER_B_MAC, false, b, lb, &rtp());
            let (action, out) = run(prog, &from_b, veth0);
            assert_eq!(action, XDP_TX);
            let o = parse(&out).unwrap();
            assert_eq!(
                (o.dmac, o.smac, o.src, o.dst),
                (PEER_A_MAC, RELAY_MAC, la, a)
            );
            // A multicast or broadcast source: left to the stack, as B's exact address and
            // port too, and with the AF_XDP plane on.
            table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
            table.set_afxdp(true).unwrap();
            let before = table.totals(slot_b).unwrap();
            for smac in [
                [0x01, 0, 0x5e, 0, 0, 1],
                [0x33, 0x33, 0, 0, 0, 1],
                [0xff; 6],
            ] {
                for to in [lb, no_rule] {
                    let f = frame(RELAY_MAC, smac, false, b, to, &rtp());
                    assert_eq!(
                        run(prog, &f, veth0),
                        (XDP_PASS, f.clone()),
                        "{smac:02x?} to {to}"
                    );
                }
            }
            assert_eq!(table.totals(slot_b).unwrap(), before);
            // (A unicast source to the port without a rule goes to the AF_XDP socket.)
            assert_eq!(run(prog, &forged(a, no_rule), veth0).0, XDP_REDIRECT);
            assert_eq!(hops(table), (Some(hop(PEER_A_MAC)), Some(hop(PEER_B_MAC))));
        })
    });
}

/// The program sends only out of the devices it is attached to (`devs`): a route, or a next
/// hop in `peers`, on any other device leaves the packet to the stack.
#[test]
fn a_next_hop_on_a_device_not_attached_to_is_left_to_the_stack() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0"]);
            let rules = topology_rules(table);
            let src4 = sa("192.0.2.2:4000");
            // The route to 198.51.100.2 is on veth2, which the program is not attached to.
            let (local, _, slot) = rules[1];
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            assert_eq!(table.totals(slot).unwrap().packets, 0);
            // Back out of veth0 is fine.
            let (local0, _, _) = rules[0];
            let g = frame(RELAY_MAC, PEER_A_MAC, false, src4, local0, &rtp());
            assert_eq!(run(prog, &g, veth0).0, XDP_TX);
            // Attached to veth2 too: redirected there.
            send_out_of(table, &["veth2"]);
            assert_eq!(run(prog, &f, veth0).0, XDP_REDIRECT);
        })
    });
    ns.forwarding(false);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        let veth2 = ifindex("veth2").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0"]);
            let rules = topology_rules(table);
            let relay: IpAddr = "192.0.2.1".parse().unwrap();
            let src4 = sa("192.0.2.2:4000");
            // The next hop of rule 1 (to 198.51.100.2) is on veth2, from the tables.
            let (local, _, _) = rules[1];
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src4, local, &rtp());
            assert_eq!(run(prog, &f, veth0), (XDP_PASS, f.clone()));
            // `peers` answering with veth2 for rule 0 (to 192.0.2.3), and with a device that
            // does not exist for a rule to 192.0.2.2: neither is sent.
            let elsewhere = |ifindex| abi::Peer {
                ifindex,
                our_mac: RELAY2_MAC,
                peer_mac: PEER_C_MAC,
            };
            let b: IpAddr = "192.0.2.3".parse().unwrap();
            table.write_peer_entry(relay, b, elsewhere(veth2)).unwrap();
            let (local0, _, _) = rules[0];
            let g = frame(RELAY_MAC, PEER_A_MAC, false, src4, local0, &rtp());
            assert_eq!(run(prog, &g, veth0), (XDP_PASS, g.clone()));
            let to_a = sa("192.0.2.1:30040");
            let rule = Rule {
                source: sa("192.0.2.1:30042"),
                dest: src4,
                expect: None,
                kind: RuleKind::Rtp,
                block: None,
            };
            table.install(0, to_a, &rule).unwrap();
            table
                .write_peer_entry(relay, src4.ip(), elsewhere(4242))
                .unwrap();
            let h = frame(
                RELAY_MAC,
                PEER_B_MAC,
                false,
                sa("192.0.2.3:5000"),
                to_a,
                &rtp(),
            );
            assert_eq!(run(prog, &h, veth0), (XDP_PASS, h.clone()));
            let s = table.stats().unwrap();
            assert_eq!((s.forwarded, s.aborted), (0, 0));
        })
    });
}

/// The next hops come from the kernel's tables: the route from the rule's source, and the
/// neighbour entry of its next hop (the gateway's, off-link). A new MAC is followed at the next
/// pass; a peer the kernel has not resolved yet gets its hop once it has; a hop whose
/// neighbour entry went but whose route stands holds; the entry goes with its route, and with
/// the last rule that needs it.
#[test]
fn next_hops_follow_the_kernels_route_and_neighbour_tables() {
    use super::rtnl::{Route, Rtnl};

    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    let n = ns.name.clone();
    // 203.0.113.0/24 is reached through 192.0.2.3 (peer B).
    ip(&[
        "-n",
        &n,
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        "192.0.2.3",
    ]);
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        let veth2 = ifindex("veth2").unwrap();
        let addr = |s: &str| -> IpAddr { s.parse().unwrap() };
        let relay = addr("192.0.2.1");
        // The tables as the lookups see them.
        let mut rtnl = Rtnl::open().unwrap();
        let on_link = |ifindex| {
            Some(Route {
                ifindex,
                gateway: None,
            })
        };
        assert_eq!(
            rtnl.route(relay, addr("192.0.2.3")).unwrap(),
            on_link(veth0)
        );
        assert_eq!(
            rtnl.route(relay, addr("203.0.113.9")).unwrap(),
            Some(Route {
                ifindex: veth0,
                gateway: Some(addr("192.0.2.3"))
            })
        );
        assert_eq!(
            rtnl.route(addr("198.51.100.1"), addr("198.51.100.2"))
                .unwrap(),
            on_link(veth2)
        );
        assert_eq!(
            rtnl.route(addr("2001:db8:1::1"), addr("2001:db8:1::3"))
                .unwrap(),
            on_link(veth0)
        );
        // No default route; a local destination.
        assert_eq!(rtnl.route(relay, addr("8.8.8.8")).unwrap(), None);
        assert_eq!(rtnl.route(relay, relay).unwrap(), None);
        assert_eq!(
            rtnl.neighbour(veth0, addr("192.0.2.3")).unwrap(),
            Some(PEER_B_MAC)
        );
        assert_eq!(
            rtnl.neighbour(veth0, addr("2001:db8:1::3")).unwrap(),
            Some(PEER_B_MAC)
        );
        assert_eq!(rtnl.neighbour(veth0, addr("192.0.2.99")).unwrap(), None);
        assert_eq!(rtnl.link_mac(veth0).unwrap(), Some(RELAY_MAC));
        assert_eq!(rtnl.link_mac(1).unwrap(), None, "loopback is no Ethernet");
        with_skel(|_, table| {
            let install = |port: u16, dest: &str| {
                let rule = Rule {
                    source: SocketAddr::new(relay, port + 2),
                    dest: sa(dest),
                    expect: None,
                    kind: RuleKind::Rtp,
                    block: None,
                };
                table
                    .install(0, SocketAddr::new(relay, port), &rule)
                    .unwrap();
            };
            let hop = |peer_mac| {
                Some(abi::Peer {
                    ifindex: veth0,
                    our_mac: RELAY_MAC,
                    peer_mac,
                })
            };
            let entry = |dest: &str| table.peer_entry(relay, addr(dest)).unwrap();
            let neigh = |args: &[&str]| {
                let mut all = vec!["-n", &n, "neigh"];
                all.extend_from_slice(args);
                ip(&all);
            };
            // On-link, and off-link through the gateway.
            install(30000, "192.0.2.3:5000");
            install(30004, "203.0.113.9:7000");
            assert_eq!(entry("192.0.2.3"), hop(PEER_B_MAC));
            assert_eq!(entry("203.0.113.9"), hop(PEER_B_MAC));
            // B's MAC changes: the next pass follows it, for both.
            let new_mac = [0x02, 0, 0, 0, 0x01, 0x33];
            neigh(&[
                "replace",
                "192.0.2.3",
                "lladdr",
                "02:00:00:00:01:33",
                "dev",
                "veth0",
                "nud",
                "permanent",
            ]);
            table.next_hops().refresh(&mut rtnl, true);
            assert_eq!(entry("192.0.2.3"), hop(new_mac));
            assert_eq!(entry("203.0.113.9"), hop(new_mac));
            // A peer the kernel has no entry for yet: no hop; the retry writes it once the
            // kernel has one (a stale entry is one the stack sends to).
            install(30008, "192.0.2.50:8000");
            assert_eq!(entry("192.0.2.50"), None);
            let mac50 = [0x02, 0, 0, 0, 0x01, 0x50];
            neigh(&[
                "add",
                "192.0.2.50",
                "lladdr",
                "02:00:00:00:01:50",
                "dev",
                "veth0",
                "nud",
                "stale",
            ]);
            table.next_hops().refresh(&mut rtnl, false);
            assert_eq!(entry("192.0.2.50"), hop(mac50));
            // The entry goes (the kernel collects unused ones), the route stands: the hop holds.
            neigh(&["del", "192.0.2.50", "dev", "veth0"]);
            table.next_hops().refresh(&mut rtnl, true);
            assert_eq!(entry("192.0.2.50"), hop(mac50));
            // The route goes: so does the hop.
            ip(&["-n", &n, "route", "del", "203.0.113.0/24"]);
            table.next_hops().refresh(&mut rtnl, true);
            assert_eq!(entry("203.0.113.9"), None);
            // A pair shared by two rules stays until both are gone.
            install(30012, "192.0.2.3:5002");
            table.remove(SocketAddr::new(relay, 30000)).unwrap();
            assert_eq!(entry("192.0.2.3"), hop(new_mac));
            table.remove(SocketAddr::new(relay, 30012)).unwrap();
            assert_eq!(entry("192.0.2.3"), None);
            // A rule replaced by one to another peer: the old peer's entry goes.
            install(30008, "192.0.2.2:8000");
            assert_eq!(entry("192.0.2.50"), None);
            assert_eq!(entry("192.0.2.2"), hop(PEER_A_MAC));
            for port in [30004, 30008] {
                table.remove(SocketAddr::new(relay, port)).unwrap();
            }
            assert_eq!(table.next_hops().tracked(), 0);
            assert_eq!(entry("192.0.2.2"), None);
        })
    });
}

/// The batched read of a worker's slots gives what the per-slot read gives, across batches,
/// and reads only that worker's partition of the slots.
#[test]
fn batched_counter_read_matches_per_slot_reads() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            // Four workers: a quarter of the slots each, handed out in turn.
            table.set_partitions(4).unwrap();
            let claimed: Vec<usize> = (0..5).map(|_| table.claim_partition()).collect();
            assert_eq!(claimed, [0, 1, 2, 3, 0]);
            let quarter = abi::MAX_FLOWS / 4;
            let src = sa("192.0.2.2:4000");
            let rule_for = |local: SocketAddr, port: u16| Rule {
                source: SocketAddr::new(local.ip(), port),
                dest: sa("192.0.2.3:5000"),
                expect: None,
                kind: RuleKind::Rtp,
                block: None,
            };
            // Worker 1's rule, with a packet: not in worker 2's read.
            let other = sa("192.0.2.1:19998");
            let other_slot = table.install(1, other, &rule_for(other, 19996)).unwrap();
            assert_eq!(other_slot, quarter);
            let f = frame(RELAY_MAC, PEER_A_MAC, false, src, other, &rtp());
            assert_eq!(run(prog, &f, veth0).0, XDP_TX);
            assert!(
                table.set_partitions(2).is_err(),
                "repartitioned under a rule"
            );
            let mut hit = Vec::new();
            for i in 0..2500u16 {
                let local = SocketAddr::new(Ipv4Addr::new(192, 0, 2, 1).into(), 20000 + 2 * i);
                let slot = table
                    .install(2, local, &rule_for(local, 40000 + 2 * i))
                    .unwrap();
                assert!((2 * quarter..3 * quarter).contains(&slot), "slot {slot}");
                if i % 700 == 0 {
                    let f = frame(RELAY_MAC, PEER_A_MAC, false, src, local, &rtp());
                    for _ in 0..=i / 700 {
                        assert_eq!(run(prog, &f, veth0).0, XDP_TX);
                    }
                    hit.push((slot, u64::from(i / 700) + 1));
                }
            }
            let mut all = SlotTotals::default();
            // Read twice into the same buffers: the same result.
            for _ in 0..2 {
                table.totals_all(2, &mut all).unwrap();
                assert_eq!(all.len(), 2500);
                for &(slot, packets) in &hit {
                    assert_eq!(all.get(slot).unwrap().packets, packets, "slot {slot}");
                    assert_eq!(*all.get(slot).unwrap(), table.totals(slot).unwrap());
                }
                assert_eq!(all.get(other_slot), None);
                assert_eq!(all.get(2 * quarter + 2500), None);
                assert_eq!(
                    all.totals.iter().map(|t| t.packets).sum::<u64>(),
                    1 + 2 + 3 + 4
                );
            }
            table.totals_all(1, &mut all).unwrap();
            assert_eq!(all.len(), 1);
            assert_eq!(all.get(other_slot).unwrap().packets, 1);
            table.totals_all(3, &mut all).unwrap();
            assert!(all.is_empty());
        })
    });
}

// ---- random frames ----

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_frames_pass_unchanged_or_leave_valid() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            send_out_of(table, &["veth0", "veth2"]);
            let rules = topology_rules(table);
            let seed = 0x5eed_fa11_u64;
            let mut rng = Rng(seed);
            let sources = [
                sa("192.0.2.2:4000"),
                sa("192.0.2.9:4000"),
                sa("[2001:db8:1::2]:4000"),
            ];
            let (mut tx, mut pass, mut drop, mut wrong) = (0, 0, 0, 0);
            for n in 0..4000 {
                let (local, _, _) = rules[rng.below(rules.len())];
                let src = sources[rng.below(sources.len())];
                let src = if src.is_ipv4() == local.is_ipv4() {
                    src
                } else {
                    SocketAddr::new(
                        match local.ip() {
                            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
                            IpAddr::V6(_) => {
                                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2))
                            }
                        },
                        4000,
                    )
                };
                let payload: Vec<u8> = match rng.below(4) {
                    0 => rtp(),
                    1 => rtcp(),
                    _ => (0..rng.below(1500)).map(|_| rng.next() as u8).collect(),
                };
                let mut f = frame(
                    RELAY_MAC,
                    PEER_A_MAC,
                    rng.below(4) == 0,
                    src,
                    local,
                    &payload,
                );
                // Mutate: flip bytes, truncate, or replace with noise.
                match rng.below(5) {
                    0 => {}
                    1 | 2 => {
                        for _ in 0..=rng.below(4) {
                            let i = rng.below(f.len().min(80));
                            f[i] = rng.next() as u8;
                        }
                    }
                    3 => f.truncate(14 + rng.below(f.len() - 13)),
                    _ => {
                        let len = 14 + rng.below(200);
                        f = (0..len).map(|_| rng.next() as u8).collect();
                        if rng.below(2) == 0 {
                            f[12..14].copy_from_slice(&[0x08, 0x00]);
                        }
                    }
                }
                // The checksum is updated, not recomputed: valid in, valid out; wrong in,
                // wrong out (unless the input looks partial, which is recomputed).
                let in_ok = parse(&f).map(|p| p.udp_ok);
                let (action, out) = run(prog, &f, veth0);
                match action {
                    XDP_PASS => {
                        assert_eq!(out, f, "frame {n} (seed {seed:#x}) passed changed");
                        pass += 1;
                    }
                    XDP_DROP => {
                        assert_eq!(out, f, "frame {n} (seed {seed:#x}) dropped changed");
                        drop += 1;
                    }
                    XDP_TX | XDP_REDIRECT => {
                        let p = parse(&out)
                            .unwrap_or_else(|| panic!("frame {n} (seed {seed:#x}) unparsable"));
                        assert!(p.ip_ok, "frame {n} (seed {seed:#x}): IP checksum");
                        if p.udp_zero {
                            assert!(p.src.is_ipv4(), "frame {n} (seed {seed:#x}): IPv6 zero");
                        } else if in_ok == Some(true) {
                            assert!(p.udp_ok, "frame {n} (seed {seed:#x}): UDP checksum");
                        } else {
                            wrong += 1;
                            assert!(!p.udp_ok, "frame {n} (seed {seed:#x}): bad checksum fixed");
                        }
                        let rule = rules.iter().find(|r| r.1.dest == p.dst).unwrap();
                        assert_eq!(p.src, rule.1.source);
                        tx += 1;
                    }
                    other => panic!("frame {n} (seed {seed:#x}): action {other}"),
                }
            }
            eprintln!(
                "random frames: {tx} forwarded ({wrong} with the wrong checksum they came with), \
                 {pass} passed, {drop} dropped"
            );
            assert!(tx > 500 && pass > 500 && drop > 50);
        })
    });
}

// ---- attaching ----

/// The XDP program id attached to `dev` and whether in generic mode, from `ip -d link show`.
fn attached(ns: &str, dev: &str) -> Option<(u32, bool)> {
    let out = Command::new("ip")
        .args(["-n", ns, "-d", "link", "show", dev])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let generic = text.contains("xdpgeneric");
    let id = text
        .split("prog/xdp id ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((id, generic))
}

#[test]
fn attach_replaces_stale_copy_and_detaches_on_drop() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    let name = ns.name.clone();
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        assert_eq!(ifname(veth0).unwrap(), "veth0");
        let first = XdpProgram::load_and_attach(&[veth0]).unwrap();
        assert_eq!(first.attachments().len(), 1);
        assert_eq!(first.attachments()[0].mode, AttachMode::Native);
        assert_eq!(first.attachments()[0].ifname, "veth0");
        assert_eq!(attached(&name, "veth0"), Some((first.id(), false)));
        // A crash leaves it attached; the next start replaces it.
        let stale = first.id();
        std::mem::forget(first);
        let second = XdpProgram::load_and_attach(&[veth0]).unwrap();
        assert_ne!(second.id(), stale);
        assert_eq!(attached(&name, "veth0"), Some((second.id(), false)));
        let table = second.table();
        table
            .install(
                0,
                sa("192.0.2.1:30000"),
                &Rule {
                    source: sa("192.0.2.1:30002"),
                    dest: sa("192.0.2.3:5000"),
                    expect: None,
                    kind: RuleKind::Rtp,
                    block: None,
                },
            )
            .unwrap();
        drop(second);
        assert_eq!(attached(&name, "veth0"), None);
        // The table outlives the program.
        assert_eq!(table.installed(), 1);
        assert_eq!(table.stats().unwrap().aborted, 0);
    });
}

#[test]
fn foreign_program_is_never_replaced() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    let name = ns.name.clone();
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        let foreign = foreign_pass_program();
        xdp_attach_raw(veth0, foreign.as_raw_fd());
        let err = XdpProgram::load_and_attach(&[veth0]).unwrap_err();
        assert!(
            matches!(&err, XdpError::Busy { ifname, program } if ifname == "veth0" && program.contains("foreign")),
            "{err}"
        );
        // Still the foreign one.
        let (id, _) = attached(&name, "veth0").unwrap();
        assert_eq!(
            libbpf_rs::ProgramHandle::from_prog_id(id).unwrap().name(),
            "foreign"
        );
    });
}

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A minimal XDP program named "foreign" (`return XDP_PASS`).
pub(crate) fn foreign_pass_program() -> OwnedFd {
    use libbpf_rs::libbpf_sys;
    // r0 = 2 (XDP_PASS); exit
    let insns = [
        libbpf_sys::bpf_insn {
            code: (libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_MOV | libbpf_sys::BPF_K) as u8,
            imm: 2,
            ..Default::default()
        },
        libbpf_sys::bpf_insn {
            code: (libbpf_sys::BPF_JMP | libbpf_sys::BPF_EXIT) as u8,
            ..Default::default()
        },
    ];
    let name = c"foreign";
    let license = c"GPL";
    // SAFETY: the name, license and instruction array are valid for the call; no options.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_XDP,
            name.as_ptr(),
            license.as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            std::ptr::null_mut(),
        )
    };
    assert!(fd >= 0, "bpf_prog_load: {}", -fd);
    // SAFETY: bpf_prog_load returned a new fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

pub(crate) fn xdp_attach_raw(ifindex: u32, fd: i32) {
    use libbpf_rs::libbpf_sys;
    // SAFETY: plain syscall wrapper; a null opts pointer is allowed.
    let rc = unsafe {
        libbpf_sys::bpf_xdp_attach(
            ifindex as i32,
            fd,
            libbpf_sys::XDP_FLAGS_DRV_MODE,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "attaching the foreign program");
}

// ---- real traffic through an attached program ----

/// Delete a network namespace on drop.
pub(crate) struct NsGuard(pub(crate) String);

/// Two fresh namespaces `<prefix>-<pid>-<n>r` and `...p`, joined by `veth0` (relay side,
/// 02:00:00:00:01:01, 192.0.2.1/24, up) and `veth1` (peer side, 02:00:00:00:01:02, down: each
/// test gives it its addresses). Both are deleted on drop.
pub(crate) fn veth_pair(prefix: &str) -> (NsGuard, NsGuard) {
    let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
    let relay = NsGuard(format!("{prefix}-{}-{n}r", std::process::id()));
    let peer = NsGuard(format!("{prefix}-{}-{n}p", std::process::id()));
    ip(&["netns", "add", &relay.0]);
    ip(&["netns", "add", &peer.0]);
    ip(&[
        "-n",
        &relay.0,
        "link",
        "add",
        "veth0",
        "address",
        "02:00:00:00:01:01",
        "type",
        "veth",
        "peer",
        "name",
        "veth1",
        "netns",
        &peer.0,
        "address",
        "02:00:00:00:01:02",
    ]);
    ip(&[
        "-n",
        &relay.0,
        "addr",
        "add",
        "192.0.2.1/24",
        "dev",
        "veth0",
    ]);
    ip(&["-n", &relay.0, "link", "set", "veth0", "up"]);
    (relay, peer)
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn attached_program_relays_real_datagrams() {
    use std::net::UdpSocket;
    use std::time::Duration;

    if !can_load() {
        return;
    }
    // veth0 (relay) <-> veth1 (peer, two addresses: the caller .2 and the callee .3). The
    // sender keeps TX checksum offload on, so frames arrive with a partial checksum.
    let (relay, peer) = veth_pair("rtprelay-xdp");
    ip(&["-n", &peer.0, "addr", "add", "192.0.2.2/24", "dev", "veth1"]);
    ip(&["-n", &peer.0, "addr", "add", "192.0.2.3/24", "dev", "veth1"]);
    ip(&["-n", &peer.0, "link", "set", "veth1", "up"]);
    ip(&[
        "-n",
        &relay.0,
        "neigh",
        "add",
        "192.0.2.3",
        "lladdr",
        "02:00:00:00:01:02",
        "dev",
        "veth0",
        "nud",
        "permanent",
    ]);
    ip(&[
        "netns",
        "exec",
        &relay.0,
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.conf.all.forwarding=1",
    ]);

    let program = crate::sys::netns::run_in(&relay.0, || {
        XdpProgram::load_and_attach(&[ifindex("veth0").unwrap()]).unwrap()
    })
    .unwrap();
    assert_eq!(program.attachments()[0].mode, AttachMode::Native);
    let table = program.table();
    let slot = table
        .install(
            0,
            sa("192.0.2.1:30000"),
            &Rule {
                source: sa("192.0.2.1:30002"),
                dest: sa("192.0.2.3:5000"),
                expect: Some(sa("192.0.2.2:4000")),
                kind: RuleKind::Rtp,
                block: None,
            },
        )
        .unwrap();
    // Frames XDP_TXed into a veth are dropped unless its peer runs XDP: a pass program there.
    let (caller, callee, _pass) = crate::sys::netns::run_in(&peer.0, || {
        let pass = foreign_pass_program();
        xdp_attach_raw(ifindex("veth1").unwrap(), pass.as_raw_fd());
        let caller = UdpSocket::bind("192.0.2.2:4000").unwrap();
        let callee = UdpSocket::bind("192.0.2.3:5000").unwrap();
        callee
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        (caller, callee, pass)
    })
    .unwrap();

    let mut buf = [0u8; 2048];
    for i in 0..3u8 {
        let mut pkt = rtp();
        pkt[3] = i;
        caller.send_to(&pkt, "192.0.2.1:30000").unwrap();
        // The kernel checks the UDP checksum before delivering: arriving proves it valid.
        let (len, from) = callee.recv_from(&mut buf).unwrap();
        assert_eq!(from, sa("192.0.2.1:30002"));
        assert_eq!(&buf[..len], &pkt[..]);
    }
    let t = table.totals(slot).unwrap();
    assert_eq!((t.packets, t.bytes), (3, 3 * rtp().len() as u64));
    assert_eq!(table.stats().unwrap().forwarded, 3);
    drop(program);
}

/// Run the program `repeat` times on `frame` in the kernel: mean ns per run.
fn cost(prog: &ProgramMut<'_>, frame: &[u8], ifindex: u32, repeat: u32) -> (u32, u64) {
    let len = u32::try_from(frame.len()).unwrap();
    let mut ctx = Vec::with_capacity(24);
    for w in [0, len, 0, ifindex, 0, 0] {
        ctx.extend_from_slice(&u32::to_ne_bytes(w));
    }
    let input = ProgramInput {
        context_in: Some(&mut ctx),
        data_in: Some(frame),
        repeat,
        ..Default::default()
    };
    let output = prog.test_run(input).unwrap();
    (output.return_value, output.duration.as_nanos() as u64)
}

/// What one packet costs the program, by path (`cargo test --lib xdp_cost -- --ignored
/// --nocapture` as root). A measuring aid, not a pass/fail test.
#[test]
#[ignore]
fn xdp_cost() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(true);
    ns.run(|| {
        let veth0 = ifindex("veth0").unwrap();
        with_skel(|prog, table| {
            let rules = topology_rules(table);
            let (local, _, _) = rules[0];
            let src = sa("192.0.2.2:4000");
            let fwd = frame(RELAY_MAC, PEER_A_MAC, false, src, local, &rtp());
            let mut nocsum = fwd.clone();
            nocsum[40..42].copy_from_slice(&[0, 0]);
            let miss = frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                src,
                sa("192.0.2.1:40000"),
                &rtp(),
            );
            let (l6, _, _) = rules[3];
            let fwd6 = frame(
                RELAY_MAC,
                PEER_A_MAC,
                false,
                sa("[2001:db8:1::2]:4000"),
                l6,
                &rtp(),
            );
            for (name, f) in [
                ("forward v4", &fwd),
                ("forward v4, no UDP checksum", &nocsum),
                ("forward v6", &fwd6),
                ("no rule (pass)", &miss),
            ] {
                let mut runs: Vec<u64> = (0..5).map(|_| cost(prog, f, veth0, 200_000).1).collect();
                runs.sort_unstable();
                let (action, _) = cost(prog, f, veth0, 1);
                eprintln!("{name}: action {action}, median {} ns/run", runs[2]);
            }
        })
    });
}
