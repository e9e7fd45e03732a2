//! The XDP data plane in a namespace topology (`common::netns`): a caller, a callee, an injector and a
//! one-armed relay on one bridged LAN, fresh for every test. The relay runs with `--dataplane=xdp` (or
//! `--table=0`) and attaches to its veth; a flow's first packets go through userspace, and once its
//! endpoint is learned the flow is offloaded to the kernel. The tests prove it with the relay's own
//! counters (`/metrics`, `query`), and check strict source, re-INVITE, delete, `block media`, IPv6,
//! malformed input, the fallback without capabilities, and that an on-link spoofer of a peer's address
//! gets none of its offloaded media. Packets arriving at the far ends also prove their UDP checksums
//! valid: the receiving kernel drops a datagram whose checksum is wrong.
//!
//! The same forwarding checks run on the mmsg plane as a control of the harness itself. Setting
//! `RTPRELAY_XDP_TESTS_PLANE=mmsg` (or `uring`) runs every test on that plane instead, skipping the
//! kernel-only assertions and the fallback test: a way to tell a harness fault from a plane fault.
//!
//! Needs root, `ip`, `ethtool` and `clang`; skips without them (fails under `RTPRELAY_E2E=1`).
//!
//! One file per subject: `offload` (the kernel fast path and the call's life around it),
//! `hostile` (malformed packets, an on-link spoofer), `fallback` (no capabilities), `afxdp` (the
//! AF_XDP plane), `harness` (the topology itself, and the mmsg control). Here: the plane a test
//! runs on and the exchanges and counters the subjects share.

#[path = "../common/mod.rs"]
mod common;

mod afxdp;
mod fallback;
mod harness;
mod hostile;
mod offload;
mod restore;

use std::net::{SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use common::call::{assert_silent, port_stat, rtcp_rr, rtcp_sr, total, wait_until};
use common::netns::{in_ns, Family, Role, Topology, PARTY_IF};
use common::ns_call::{rtcp_of, NsCall, NsParty, CALLER_PORT};
use common::ns_relay::{metric_sum, NsRelay};
use common::{MediaEndpoint, RtpPacket};

/// How long a relayed packet may take to arrive.
const WAIT: Duration = Duration::from_secs(2);
/// How long nothing must arrive where nothing is expected.
const QUIET: Duration = Duration::from_millis(300);
/// Kernel counters are folded into the relay's about once a second: how long to wait for them at most.
const FOLD: Duration = Duration::from_secs(4);
/// How long a learned flow may take to be installed in the kernel.
const OFFLOAD: Duration = Duration::from_secs(3);
/// Packets that may still reach userspace after offload without failing the test (none expected).
const USERSPACE_SLACK: f64 = 4.0;

const USERSPACE: &str = "rtprelay_userspace_packets_total";
const FORWARDED: &str = "rtprelay_xdp_forwarded_packets_total";
const DROPPED: &str = "rtprelay_xdp_dropped_packets_total";
const OFFLOADED: &str = "rtprelay_xdp_offloaded_flows";

const SSRC_CALLER: u32 = 0xca11e4;
const SSRC_CALLEE: u32 = 0xca11ee;

/// The plane a test runs on: XDP (with its kernel-only checks), or a userspace plane.
#[derive(Clone, Debug)]
struct Mode {
    plane: String,
}

impl Mode {
    /// XDP, unless `RTPRELAY_XDP_TESTS_PLANE` names another plane.
    fn from_env() -> Mode {
        let plane = std::env::var("RTPRELAY_XDP_TESTS_PLANE").unwrap_or_default();
        Mode {
            plane: if plane.is_empty() {
                "xdp".into()
            } else {
                plane
            },
        }
    }

    fn userspace(plane: &str) -> Mode {
        Mode {
            plane: plane.into(),
        }
    }

    fn xdp(&self) -> bool {
        self.plane == "xdp"
    }

    /// Whether learned flows are offloaded to the kernel on this plane (xdp, and afxdp on top).
    fn offloads(&self) -> bool {
        matches!(self.plane.as_str(), "xdp" | "afxdp")
    }

    /// The option selecting the plane; `xdp_spelling` when it is XDP (`--dataplane=xdp` or `--table=0`).
    fn flag(&self, xdp_spelling: &str) -> String {
        if self.xdp() {
            xdp_spelling.into()
        } else {
            format!("--dataplane={}", self.plane)
        }
    }

    /// Starts the relay in `topo` on this plane and checks that it runs it.
    fn start(&self, topo: &Topology, xdp_spelling: &str, extra: &[&str]) -> NsRelay {
        let flag = self.flag(xdp_spelling);
        let mut args = vec![flag.as_str()];
        args.extend_from_slice(extra);
        let relay = NsRelay::start(topo, &args);
        if self.xdp() {
            assert_xdp_chosen(topo, &relay);
        } else {
            assert_eq!(relay.statistics_plane(), self.plane, "plane in statistics");
        }
        relay
    }
}

/// The start-up line says XDP on the relay's veth, in native or generic mode, and the veth has a
/// program attached that way; `statistics` and `/metrics` report the plane too.
fn assert_xdp_chosen(topo: &Topology, relay: &NsRelay) {
    let line = relay.plane_line();
    assert!(
        line.contains("plane=\"xdp\"") || line.contains("plane=xdp"),
        "XDP was not chosen: {line}\n{}",
        relay.log_tail(30)
    );
    assert!(
        line.contains(PARTY_IF) && (line.contains("native") || line.contains("generic")),
        "the reason does not name both the interface and the mode: {line}"
    );
    assert!(
        line.contains("mmsg") || line.contains("uring"),
        "the line does not name the userspace plane behind XDP: {line}"
    );
    let want = if line.contains("generic") {
        "xdpgeneric"
    } else {
        "xdp"
    };
    let attached = topo.xdp_attached(&topo.ns(Role::Relay), PARTY_IF);
    assert_eq!(
        attached.as_deref(),
        Some(want),
        "the relay's veth vs the log line {line}"
    );
    assert_eq!(relay.statistics_plane(), "xdp", "plane in statistics");
    let metrics = relay.metrics();
    assert!(
        metrics.contains("rtprelay_dataplane_info{plane=\"xdp\"} 1"),
        "{metrics}"
    );
}

/// Packets and bytes the relay received per local port, as `query` should count them.
#[derive(Default, Debug)]
struct Tally(Vec<(u16, i64, i64)>);

impl Tally {
    fn add(&mut self, port: u16, pkts: &[Vec<u8>]) {
        let bytes: i64 = pkts.iter().map(|p| p.len() as i64).sum();
        match self.0.iter_mut().find(|(p, _, _)| *p == port) {
            Some(e) => {
                e.1 += pkts.len() as i64;
                e.2 += bytes;
            }
            None => self.0.push((port, pkts.len() as i64, bytes)),
        }
    }

    fn packets(&self) -> i64 {
        self.0.iter().map(|e| e.1).sum()
    }
}

fn rtp_batch(ssrc: u32, first: u16, count: u16) -> Vec<Vec<u8>> {
    (first..first + count)
        .map(|n| RtpPacket::pcmu(ssrc, n).to_bytes())
        .collect()
}

/// Sends `pkts` from `from` to `to`; they must all arrive at `at`, in order, byte for byte, from `src`.
fn relay_and_expect(
    from: &MediaEndpoint,
    to: SocketAddr,
    pkts: &[Vec<u8>],
    at: &MediaEndpoint,
    src: SocketAddr,
    what: &str,
) {
    common::call::relay_and_expect(from, to, pkts, at, src, WAIT, what);
}

/// Media both ways on RTP and RTCP: `rtp_caller` and `rtp_callee` RTP packets, `rtcp` RTCP packets each
/// way, numbered from `round * 1000` so rounds differ. Every packet must arrive intact.
fn exchange(call: &NsCall, round: u16, rtp_caller: u16, rtp_callee: u16, rtcp: u32) -> Tally {
    let mut t = Tally::default();
    let (a, b) = (&call.caller, &call.callee);
    let first = round * 1000;
    let pkts = rtp_batch(SSRC_CALLER, first, rtp_caller);
    relay_and_expect(
        &a.rtp,
        call.caller_to,
        &pkts,
        &b.rtp,
        call.callee_to,
        "RTP caller->callee",
    );
    t.add(call.caller_to.port(), &pkts);
    let pkts = rtp_batch(SSRC_CALLEE, first, rtp_callee);
    relay_and_expect(
        &b.rtp,
        call.callee_to,
        &pkts,
        &a.rtp,
        call.caller_to,
        "RTP callee->caller",
    );
    t.add(call.callee_to.port(), &pkts);
    let base = u32::from(first);
    let pkts: Vec<Vec<u8>> = (1..=rtcp).map(|n| rtcp_sr(SSRC_CALLER, base + n)).collect();
    let (a_to, b_to) = (rtcp_of(call.caller_to), rtcp_of(call.callee_to));
    relay_and_expect(&a.rtcp, a_to, &pkts, &b.rtcp, b_to, "RTCP caller->callee");
    t.add(a_to.port(), &pkts);
    let pkts: Vec<Vec<u8>> = (1..=rtcp).map(|n| rtcp_rr(SSRC_CALLEE + n)).collect();
    relay_and_expect(&b.rtcp, b_to, &pkts, &a.rtcp, a_to, "RTCP callee->caller");
    t.add(b_to.port(), &pkts);
    t
}

/// One packet each way on RTP and RTCP from the SDP addresses: all four flows learn their endpoints.
fn warm_up(call: &NsCall) -> Tally {
    exchange(call, 0, 1, 1, 1)
}

/// Waits until at least `n` flows are offloaded.
fn wait_offloaded(relay: &NsRelay, n: f64) {
    if !wait_until(OFFLOAD, || relay.metric(OFFLOADED) >= n) {
        panic!(
            "{OFFLOADED} did not reach {n} within {OFFLOAD:?}:\n{}\nlog:\n{}",
            relay.metrics(),
            relay.log_tail(30)
        );
    }
}

/// The value of `metric` once it stops moving (read across more than one folding period), so that
/// earlier packets folded late are not taken for later ones.
fn settled(relay: &NsRelay, metric: &str) -> f64 {
    let mut last = relay.metric(metric);
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(1200));
        let now = relay.metric(metric);
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("{metric} keeps moving with no traffic: {last}")
}

/// Waits until `metric` is at least `from + by` (counters fold about once a second); returns its growth.
fn wait_growth(relay: &NsRelay, metric: &str, from: f64, by: f64) -> f64 {
    wait_until(FOLD, || relay.metric(metric) - from >= by);
    relay.metric(metric) - from
}

/// Sends a round both ways on `call` and asserts that the kernel forwarded every packet of it.
fn assert_kernel_forwards(relay: &NsRelay, call: &NsCall, what: &str) {
    let f0 = relay.metric(FORWARDED);
    let sent = exchange(call, 1, 10, 10, 1).packets() as f64;
    assert_eq!(
        wait_growth(relay, FORWARDED, f0, sent),
        sent,
        "{FORWARDED} {what}"
    );
}

/// RTP and RTCP both ways over `family`; with XDP, once learned, the packets are forwarded by the
/// kernel: the userspace counter stands still while the XDP one grows by exactly what was sent.
fn forwards_both_ways(mode: &Mode, family: Family) {
    let Some(topo) = Topology::new() else { return };
    let mut relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let call = NsCall::setup(relay.ng(), &topo, family, &[]);
    assert_eq!(
        call.caller_to.ip(),
        topo.addr(Role::Relay, family),
        "the relay advertises its veth address"
    );
    warm_up(&call);
    if !mode.xdp() {
        exchange(&call, 1, 50, 50, 10);
        return;
    }
    wait_offloaded(&relay, 4.0);
    let (u0, f0) = (relay.metric(USERSPACE), relay.metric(FORWARDED));
    let sent = exchange(&call, 1, 50, 50, 10).packets() as f64;
    let forwarded = wait_growth(&relay, FORWARDED, f0, sent);
    let userspace = relay.metric(USERSPACE) - u0;
    assert_eq!(
        forwarded, sent,
        "{FORWARDED} grew by {forwarded}, {sent} sent"
    );
    assert!(
        userspace <= USERSPACE_SLACK,
        "{userspace} packets still reached userspace after offload ({sent} sent)"
    );
    // On exit the relay detaches its program.
    let status = relay.stop(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "the relay did not exit cleanly on SIGTERM: {status:?}\n{}",
        relay.log_tail(20)
    );
    let left = topo.xdp_attached(&topo.ns(Role::Relay), PARTY_IF);
    assert_eq!(
        left, None,
        "XDP program left on the relay's veth after exit"
    );
}
