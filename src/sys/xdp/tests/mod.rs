//! Tests of the XDP program through BPF_PROG_TEST_RUN (crafted and random frames, the full
//! rewrite against a real FIB in a namespace), and of attaching/replacing/detaching on a veth,
//! one file per subject. Here: running the program, and the namespace with a route and
//! neighbours several subjects share. Frames, checksums and veth pairs come from
//! [`crate::testkit`], shared with the AF_XDP tests and `tests/`.
//! They need root (CAP_BPF + CAP_NET_ADMIN): without it they skip through
//! [`crate::testkit::skip_unless`] (a failure under `RTPRELAY_E2E=1`).
#![allow(clippy::unwrap_used)]

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::process::Command;

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

mod attach;
mod cost;
mod crafted;
mod next_hops;
mod random;
mod rewrite;
mod traffic;

pub(crate) use crate::testkit::checksum::{fold, partial_checksum, sum16};
pub(crate) use crate::testkit::frames::{parse_udp, rtcp, rtp, udp_frame};
pub(crate) use crate::testkit::netns::{fresh_name, ip, veth_pair};
pub(crate) use attach::{foreign_pass_program, xdp_attach_raw};

// ---- a namespace with a route and neighbours ----

/// A network namespace with two veth pairs: veth0 (192.0.2.1/24, 2001:db8:1::1/64) with
/// permanent neighbours .2/.3 (::2/::3), and veth2 (198.51.100.1/24, 2001:db8:2::1/64) with
/// neighbour .2 (::2). Deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(forwarding: bool) -> Netns {
        let name = fresh_name("rtprelay-xdp", "");
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
