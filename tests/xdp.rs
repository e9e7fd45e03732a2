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

mod common;

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

#[test]
fn xdp_forwards_rtp_and_rtcp_both_ways_in_the_kernel_after_learning() {
    forwards_both_ways(&Mode::from_env(), Family::V4);
}

#[test]
fn xdp_forwards_ipv6() {
    forwards_both_ways(&Mode::from_env(), Family::V6);
}

/// A relay killed by SIGKILL may leave its program on the NIC; the next one replaces it at start-up
/// and forwards in the kernel.
#[test]
fn xdp_replaces_the_program_of_a_crashed_relay() {
    let mode = Mode::from_env();
    if !mode.xdp() {
        eprintln!("SKIPPED: the crash test is about the XDP plane");
        return;
    }
    let Some(topo) = Topology::new() else { return };
    let mut first = mode.start(&topo, "--dataplane=xdp", &[]);
    first.crash();
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    wait_offloaded(&relay, 4.0);
    let f0 = relay.metric(FORWARDED);
    let sent = exchange(&call, 1, 10, 10, 1).packets() as f64;
    assert_eq!(
        wait_growth(&relay, FORWARDED, f0, sent),
        sent,
        "{FORWARDED}"
    );
}

/// Another program already on the NIC is not ours to replace: the relay leaves it attached and still
/// relays the call (through userspace, as it cannot offload).
#[test]
fn xdp_leaves_a_foreign_program_alone() {
    let mode = Mode::from_env();
    if !mode.xdp() {
        eprintln!("SKIPPED: the foreign-program test is about the XDP plane");
        return;
    }
    let Some(topo) = Topology::new() else { return };
    let relay_ns = topo.ns(Role::Relay);
    let foreign = common::netns::bpf_object("xdp_pass").unwrap_or_else(|e| panic!("{e}"));
    topo.attach_xdp(&relay_ns, PARTY_IF, &foreign)
        .unwrap_or_else(|e| panic!("{e}"));
    let relay = NsRelay::start(&topo, &["--dataplane=xdp"]);
    let link = topo.link_show(&relay_ns, PARTY_IF);
    assert!(
        link.contains("name xdp_pass"),
        "the foreign program was replaced:\n{link}\n{}",
        relay.log_tail(20)
    );
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    exchange(&call, 1, 10, 10, 1);
}

#[test]
fn xdp_strict_source_drops_an_injector_in_the_kernel() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    let d0 = if mode.xdp() {
        relay.metric(DROPPED)
    } else {
        0.0
    };
    let inj = topo.media(Role::Injector, Family::V4, CALLER_PORT);
    let mut injected = 0;
    // Well-formed media only (RTCP to the RTCP port), so nothing is refused for its content instead.
    let rtp = rtp_batch(0x1ec7, 0, 20);
    let rtcp: Vec<Vec<u8>> = (1..=5).map(|n| rtcp_sr(0x1ec7, n)).collect();
    for (to, pkts) in [
        (call.caller_to, &rtp),
        (rtcp_of(call.caller_to), &rtcp),
        (call.callee_to, &rtp),
    ] {
        for p in pkts {
            inj.send_to(p, to).expect("inject");
            injected += 1;
        }
    }
    assert_silent(&call.callee.rtp, QUIET, "injected RTP reached the callee");
    assert_silent(&call.callee.rtcp, QUIET, "injected RTCP reached the callee");
    assert_silent(&call.caller.rtp, QUIET, "injected RTP reached the caller");
    assert_silent(&inj, QUIET, "the injector got media back");
    exchange(&call, 1, 5, 5, 1);
    if mode.xdp() {
        let dropped = wait_growth(&relay, DROPPED, d0, f64::from(injected));
        assert_eq!(
            dropped,
            f64::from(injected),
            "{DROPPED} grew by {dropped}, {injected} injected"
        );
    }
}

#[test]
fn xdp_reinvite_moves_the_flow_at_once() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let mut call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    let stale_caller_to = call.caller_to;
    let old = call.reanswer_from(relay.ng(), &topo, 40010);
    // Right after the answer, media goes to the callee's new port, none to the old one.
    let pkts = rtp_batch(SSRC_CALLER, 100, 10);
    relay_and_expect(
        &call.caller.rtp,
        call.caller_to,
        &pkts,
        &call.callee.rtp,
        call.callee_to,
        "RTP caller->new callee port",
    );
    let sr = vec![rtcp_sr(SSRC_CALLER, 100)];
    relay_and_expect(
        &call.caller.rtcp,
        rtcp_of(call.caller_to),
        &sr,
        &call.callee.rtcp,
        rtcp_of(call.callee_to),
        "RTCP caller->new callee port",
    );
    // Nothing reaches the old port, not even through the relay port the caller used before.
    for p in rtp_batch(SSRC_CALLER, 200, 5) {
        call.caller.rtp.send_to(&p, stale_caller_to).expect("send");
    }
    assert_silent(&old.rtp, QUIET, "RTP still went to the old callee port");
    assert_silent(&old.rtcp, QUIET, "RTCP still went to the old callee port");
    while call.callee.rtp.recv_timeout(Duration::ZERO).is_some() {}
    // The callee sends from its new port, its SDP address: learned at once, both ways work.
    exchange(&call, 2, 10, 10, 2);
    if mode.xdp() {
        // The moved flows are offloaded again (they were learned in round 2; the old flows' count may
        // still show for a moment, hence the pause), and forwarded by the kernel from then on.
        std::thread::sleep(Duration::from_millis(500));
        wait_offloaded(&relay, 4.0);
        let f0 = settled(&relay, FORWARDED);
        let sent = exchange(&call, 3, 20, 20, 2).packets() as f64;
        let forwarded = wait_growth(&relay, FORWARDED, f0, sent);
        assert_eq!(forwarded, sent, "{FORWARDED} after the re-INVITE");
    }
    assert_silent(
        &old.rtp,
        Duration::ZERO,
        "media went to the old callee port",
    );
}

#[test]
fn xdp_delete_removes_the_offloaded_flows() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    // `--table=0`, rtpengine's spelling, asks for the kernel plane too.
    let relay = mode.start(&topo, "--table=0", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.offloads() {
        wait_offloaded(&relay, 4.0);
    }
    call.delete(relay.ng());
    // The owning worker takes the rules out of the kernel just after the reply (within about a
    // millisecond): wait for it before probing.
    if mode.offloads() {
        assert!(
            wait_until(OFFLOAD, || relay.metric(OFFLOADED) == 0.0),
            "{OFFLOADED} not back to 0 after delete:\n{}",
            relay.metrics()
        );
    }
    let f0 = if mode.xdp() {
        relay.metric(FORWARDED)
    } else {
        0.0
    };
    for p in rtp_batch(SSRC_CALLER, 10, 5) {
        call.caller.rtp.send_to(&p, call.caller_to).expect("send");
    }
    for p in rtp_batch(SSRC_CALLEE, 10, 5) {
        call.callee.rtp.send_to(&p, call.callee_to).expect("send");
    }
    call.caller
        .rtcp
        .send_to(&rtcp_sr(SSRC_CALLER, 1), rtcp_of(call.caller_to))
        .expect("send");
    assert_silent(&call.callee.rtp, QUIET, "a deleted call still forwards");
    assert_silent(
        &call.caller.rtp,
        QUIET,
        "a deleted call still forwards back",
    );
    assert_silent(
        &call.callee.rtcp,
        QUIET,
        "a deleted call still forwards RTCP",
    );
    if mode.xdp() {
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            relay.metric(FORWARDED),
            f0,
            "the kernel forwarded after delete"
        );
    }
    common::expect_ok(relay.ng().ping(), "ping after delete");
}

/// A call whose media flows only in the kernel stays up (the folded counters feed the timeout), and
/// times out once the media stops, taking its rules with it.
#[test]
fn xdp_offloaded_media_keeps_the_call_alive_and_silence_times_it_out() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &["--timeout=3"]);
    let ng = relay.ng();
    let call = NsCall::setup(ng, &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    // Twice the timeout of media, all of it forwarded by the kernel once offloaded.
    for round in 1..=12u16 {
        exchange(&call, round, 2, 2, 0);
        std::thread::sleep(Duration::from_millis(500));
    }
    let listed = |ng: &common::NgClient| ng.list_calls().expect("list").contains(&call.id);
    assert!(listed(ng), "a call with kernel-forwarded media timed out");
    assert!(
        wait_until(Duration::from_secs(8), || !listed(ng)),
        "the call did not time out after its media stopped"
    );
    if mode.xdp() {
        assert!(
            wait_until(OFFLOAD, || relay.metric(OFFLOADED) == 0.0),
            "{OFFLOADED} not back to 0 after the timeout"
        );
    }
}

/// `start recording` brings the call's RTP back to userspace (where the recorder copies it) at once,
/// and `stop recording` offloads it again.
#[test]
fn xdp_recording_takes_rtp_back_to_userspace_and_stopping_offloads_again() {
    let mode = Mode::from_env();
    if !mode.xdp() {
        eprintln!("SKIPPED: the recording hand-over is about the XDP plane");
        return;
    }
    let Some(topo) = Topology::new() else { return };
    let spool = tempfile_dir("xdp-spool");
    let spool_arg = format!("--recording-dir={}", spool.display());
    let relay = mode.start(&topo, "--dataplane=xdp", &[&spool_arg]);
    let ng = relay.ng();
    let call = NsCall::setup(ng, &topo, Family::V4, &[]);
    warm_up(&call);
    wait_offloaded(&relay, 4.0);
    let cmd = |command: &str| {
        let req = common::bencode::dict([
            ("command", command.into()),
            ("call-id", call.id.as_str().into()),
            ("from-tag", call.caller.tag.as_str().into()),
        ]);
        common::expect_ok(ng.request(req), command)
    };
    cmd("start recording");
    // The two RTP flows leave the kernel; RTCP is not recorded and stays.
    assert!(
        wait_until(OFFLOAD, || relay.metric(OFFLOADED) == 2.0),
        "RTP flows not taken out of the kernel while recording:\n{}",
        relay.metrics()
    );
    let u0 = relay.metric(USERSPACE);
    exchange(&call, 1, 20, 20, 0);
    let userspace = relay.metric(USERSPACE) - u0;
    assert!(
        userspace >= 40.0,
        "recorded RTP must pass through userspace: {userspace} of 40 did"
    );
    cmd("stop recording");
    wait_offloaded(&relay, 4.0);
    let (u1, f1) = (relay.metric(USERSPACE), relay.metric(FORWARDED));
    exchange(&call, 2, 20, 20, 0);
    let forwarded = wait_growth(&relay, FORWARDED, f1, 40.0);
    assert_eq!(forwarded, 40.0, "not offloaded again after stop recording");
    assert!(relay.metric(USERSPACE) - u1 <= USERSPACE_SLACK);
    let _ = std::fs::remove_dir_all(&spool);
}

/// `block media` for the caller keeps its offloaded RTP flow in the kernel with a blocking rule: the
/// kernel drops what the caller sends (counted as XDP drops, and in `query` as received) while the
/// callee's media and the caller's RTCP are still forwarded in the kernel; `unblock media` has the
/// kernel forward the caller's media again.
#[test]
fn xdp_block_media_drops_in_the_kernel_and_unblock_forwards_again() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let ng = relay.ng();
    let call = NsCall::setup(ng, &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    let cmd = |command: &str| {
        let req = common::bencode::dict([
            ("command", command.into()),
            ("call-id", call.id.as_str().into()),
            ("from-tag", call.caller.tag.as_str().into()),
        ]);
        common::expect_ok(ng.request(req), command)
    };
    let metrics = |relay: &NsRelay| {
        if mode.xdp() {
            [USERSPACE, FORWARDED, DROPPED].map(|m| settled(relay, m))
        } else {
            [0.0; 3]
        }
    };
    cmd("block media");
    // The worker rewrites the rule just after the reply; give it a moment.
    std::thread::sleep(Duration::from_millis(100));
    let [u0, f0, d0] = metrics(&relay);
    let blocked = rtp_batch(SSRC_CALLER, 100, 20);
    for p in &blocked {
        call.caller.rtp.send_to(p, call.caller_to).expect("send");
    }
    assert_silent(&call.callee.rtp, QUIET, "blocked media reached the callee");
    let back = rtp_batch(SSRC_CALLEE, 100, 10);
    relay_and_expect(
        &call.callee.rtp,
        call.callee_to,
        &back,
        &call.caller.rtp,
        call.caller_to,
        "RTP callee->caller while the caller is blocked",
    );
    let sr = vec![rtcp_sr(SSRC_CALLER, 100)];
    relay_and_expect(
        &call.caller.rtcp,
        rtcp_of(call.caller_to),
        &sr,
        &call.callee.rtcp,
        rtcp_of(call.callee_to),
        "RTCP caller->callee while the caller is blocked",
    );
    // Blocked packets count as received on the caller's stream (1 from the warm-up).
    let port = call.caller_to.port();
    wait_until(FOLD, || port_stat(&call.query(ng), port, "packets") == 21);
    assert_eq!(
        port_stat(&call.query(ng), port, "packets"),
        21,
        "the caller's stream counts what it sent while blocked"
    );
    if mode.xdp() {
        assert_eq!(
            relay.metric(OFFLOADED),
            4.0,
            "a blocked flow stays offloaded"
        );
        let dropped = wait_growth(&relay, DROPPED, d0, 20.0);
        assert_eq!(dropped, 20.0, "{DROPPED} grew by {dropped}, 20 blocked");
        let forwarded = wait_growth(&relay, FORWARDED, f0, 11.0);
        assert_eq!(forwarded, 11.0, "{FORWARDED}: the other direction and RTCP");
        let userspace = relay.metric(USERSPACE) - u0;
        assert!(
            userspace <= USERSPACE_SLACK,
            "{userspace} packets reached userspace while blocked"
        );
    }

    cmd("unblock media");
    std::thread::sleep(Duration::from_millis(100));
    let [u1, f1, _] = metrics(&relay);
    let pkts = rtp_batch(SSRC_CALLER, 200, 10);
    relay_and_expect(
        &call.caller.rtp,
        call.caller_to,
        &pkts,
        &call.callee.rtp,
        call.callee_to,
        "RTP caller->callee after unblock",
    );
    if mode.xdp() {
        let forwarded = wait_growth(&relay, FORWARDED, f1, 10.0);
        assert_eq!(forwarded, 10.0, "not forwarded by the kernel after unblock");
        assert!(relay.metric(USERSPACE) - u1 <= USERSPACE_SLACK);
    }
}

/// A fresh empty directory under the system's temp dir.
fn tempfile_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        common::ng::random_cookie()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// `query` reports per stream exactly what was sent, kernel-forwarded packets included.
fn query_counts_match(mode: &Mode) {
    let Some(topo) = Topology::new() else { return };
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let ng = relay.ng();
    let call = NsCall::setup(ng, &topo, Family::V4, &[]);
    let mut sent = warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    // Different counts per direction, so that swapped counters show.
    for (i, (port, pkts, bytes)) in exchange(&call, 1, 40, 25, 4).0.into_iter().enumerate() {
        sent.0[i].1 += pkts;
        sent.0[i].2 += bytes;
        assert_eq!(sent.0[i].0, port);
    }
    let matches = |q: &common::Value| {
        sent.0.iter().all(|&(port, pkts, bytes)| {
            port_stat(q, port, "packets") == pkts && port_stat(q, port, "bytes") == bytes
        })
    };
    wait_until(FOLD, || matches(&call.query(ng)));
    let q = call.query(ng);
    for &(port, pkts, bytes) in &sent.0 {
        assert_eq!(
            port_stat(&q, port, "packets"),
            pkts,
            "packets on {port}: {q:?}"
        );
        assert_eq!(
            port_stat(&q, port, "bytes"),
            bytes,
            "bytes on {port}: {q:?}"
        );
        assert_eq!(port_stat(&q, port, "errors"), 0, "errors on {port}: {q:?}");
    }
    assert_eq!(total(&q, "RTP", "packets"), 41 + 26, "{q:?}");
    assert_eq!(total(&q, "RTCP", "packets"), 2 * 5, "{q:?}");
}

#[test]
fn xdp_query_counters_match_what_was_sent() {
    query_counts_match(&Mode::from_env());
}

/// A hand-made UDP header (length and checksum as given) and payload, cut to `header_bytes` of header.
struct RawUdp<'a> {
    len: u16,
    checksum: u16,
    payload: &'a [u8],
    header_bytes: usize,
}

/// Sends `dgram` over a raw socket from the caller's namespace, with the caller's RTP port as source (so
/// it matches the caller's flow): headers the socket API cannot make.
fn send_raw_udp(topo: &Topology, to: SocketAddr, dgram: RawUdp) {
    let SocketAddr::V4(to) = to else {
        panic!("raw UDP is sent over IPv4 only")
    };
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&CALLER_PORT.to_be_bytes());
    bytes.extend_from_slice(&to.port().to_be_bytes());
    bytes.extend_from_slice(&dgram.len.to_be_bytes());
    bytes.extend_from_slice(&dgram.checksum.to_be_bytes());
    bytes.truncate(dgram.header_bytes);
    bytes.extend_from_slice(dgram.payload);
    let dest = SocketAddrV4::new(*to.ip(), 0);
    in_ns(&topo.ns(Role::Caller), move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))?;
        s.send_to(&bytes, &dest.into()).map(|_| ())
    })
    .and_then(|r| r)
    .unwrap_or_else(|e| panic!("raw UDP to {to}: {e}"));
}

/// A well-formed header (no checksum) with `len` bytes claimed, cut to `header_bytes`.
fn raw(len: u16, payload: &[u8], header_bytes: usize) -> RawUdp<'_> {
    RawUdp {
        len,
        checksum: 0,
        payload,
        header_bytes,
    }
}

#[test]
fn xdp_malformed_packets_neither_crash_nor_leak() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let mut relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    let good = RtpPacket::pcmu(SSRC_CALLER, 7).to_bytes();
    let with_first = |b: u8| {
        let mut p = good.clone();
        p[0] = b;
        p
    };
    let mut bad_rtcp = rtcp_sr(SSRC_CALLER, 1);
    bad_rtcp[0] = 0x40; // version 1
    let mut long_rtcp = rtcp_rr(SSRC_CALLER);
    long_rtcp[3] = 60; // length beyond the datagram
    let garbage: Vec<(SocketAddr, Vec<u8>)> = [
        Vec::new(),
        vec![0x80],
        good[..11].to_vec(),
        b"not RTP at all, just some bytes from a confused peer".to_vec(),
        with_first(0x00), // version 0
        with_first(0x40), // version 1
        with_first(0xc0), // version 3
    ]
    .into_iter()
    .map(|p| (call.caller_to, p))
    .chain([
        (rtcp_of(call.caller_to), Vec::new()),
        (rtcp_of(call.caller_to), vec![0x80, 200, 0]),
        (rtcp_of(call.caller_to), bad_rtcp),
        (rtcp_of(call.caller_to), long_rtcp),
        (rtcp_of(call.caller_to), good.clone()), // RTP on the RTCP port: no RTCP type
    ])
    .collect();
    for (to, p) in &garbage {
        let from = if to.port() == call.caller_to.port() {
            &call.caller.rtp
        } else {
            &call.caller.rtcp
        };
        from.send_to(p, *to).expect("send garbage");
    }
    // Headers no socket would make, from the caller's own address and port (so the flow key matches).
    let payload = &good[..20];
    send_raw_udp(&topo, call.caller_to, raw(200, payload, 8)); // UDP length beyond the packet
    send_raw_udp(&topo, call.caller_to, raw(4, payload, 8)); // UDP length below its header
    send_raw_udp(&topo, call.caller_to, raw(8, &[], 8)); // no payload at all
    send_raw_udp(&topo, call.caller_to, raw(0, &[], 4)); // a truncated UDP header
    assert_silent(&call.callee.rtp, QUIET, "malformed RTP leaked through");
    assert_silent(&call.callee.rtcp, QUIET, "malformed RTCP leaked through");
    assert!(relay.is_running(), "relay died:\n{}", relay.log_tail(30));
    common::expect_ok(relay.ng().ping(), "ping after malformed input");
    exchange(&call, 1, 5, 5, 1);
}

#[test]
fn xdp_without_capabilities_falls_back_and_no_fallback_exits() {
    let mode = Mode::from_env();
    if !mode.xdp() {
        eprintln!("SKIPPED: the fallback test is about the XDP plane");
        return;
    }
    if !common::require_or_skip("setpriv") {
        return;
    }
    let Some(topo) = Topology::new() else { return };
    let program = Path::new(env!("CARGO_BIN_EXE_rtprelay"));
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
    ];
    {
        let relay =
            NsRelay::start_wrapped(&topo, &nobody, &["--dataplane=xdp"]).unwrap_or_else(|e| {
                panic!(
                    "as nobody (is {} executable by all?): {e}",
                    program.display()
                )
            });
        let line = relay.plane_line();
        assert!(
            !line.contains("plane=\"xdp\"") && !line.contains("plane=xdp"),
            "XDP chosen without capabilities: {line}"
        );
        assert!(line.contains("falling back"), "no fallback reason: {line}");
        assert_ne!(relay.statistics_plane(), "xdp");
        assert_eq!(
            topo.xdp_attached(&topo.ns(Role::Relay), PARTY_IF),
            None,
            "a program is attached although the relay fell back"
        );
        let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
        exchange(&call, 0, 5, 5, 1);
    }
    let mut proc = NsRelay::spawn(&topo, &nobody, &["--dataplane=xdp", "-F"]);
    let status = proc.wait_timeout(Duration::from_secs(5));
    let log = proc.log_text();
    match status {
        Some(s) => assert!(!s.success(), "-F without capabilities exited 0:\n{log}"),
        None => panic!("-F without capabilities kept running:\n{log}"),
    }
    // The fatal error, as `main` prints it (`rtprelay: ...` on stderr, or an ERROR log line).
    let names_xdp = log
        .lines()
        .filter(|l| l.starts_with("rtprelay: ") || l.contains("ERROR"))
        .any(|l| l.to_lowercase().contains("xdp"));
    assert!(names_xdp, "no error naming XDP:\n{log}");
}

#[test]
fn mmsg_control_forwards_in_the_topology() {
    let mode = Mode::userspace("mmsg");
    forwards_both_ways(&mode, Family::V4);
    forwards_both_ways(&mode, Family::V6);
    query_counts_match(&mode);
}

#[test]
fn topology_joins_every_party_and_is_removed_on_drop() {
    let Some(topo) = Topology::new() else { return };
    for family in [Family::V4, Family::V6] {
        let parties: Vec<(Role, MediaEndpoint)> =
            [Role::Caller, Role::Callee, Role::Relay, Role::Injector]
                .into_iter()
                .map(|r| (r, topo.media(r, family, 41000)))
                .collect();
        for (i, (role, ep)) in parties.iter().enumerate() {
            let (next_role, next) = &parties[(i + 1) % parties.len()];
            let msg = format!("{role:?} to {next_role:?}");
            ep.send_to(msg.as_bytes(), next.local_addr()).expect("send");
            let got = next.recv_timeout(WAIT);
            assert_eq!(
                got,
                Some((msg.into_bytes(), ep.local_addr())),
                "{role:?} -> {next_role:?} over {family:?}"
            );
        }
    }
    // A socket opened in a namespace stays there: the caller's address is not on the host.
    assert!(
        std::net::UdpSocket::bind((topo.v4(Role::Caller), 0)).is_err(),
        "the caller's address is on the host"
    );
    let out = topo
        .run_in(
            &topo.lan(),
            "ip",
            &["-d", "link", "show", &Topology::lan_ifname(Role::Relay)],
        )
        .expect("ip link show");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("xdp"),
        "no XDP_PASS program on the relay's bridge port: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let names: Vec<String> = std::iter::once(topo.lan())
        .chain(Role::ALL.map(|r| topo.ns(r)))
        .collect();
    for n in &names {
        assert!(Path::new("/run/netns").join(n).exists(), "{n} missing");
    }
    drop(topo);
    for n in &names {
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} left behind");
    }
}

#[test]
fn metric_sum_adds_the_labelled_samples_of_one_name() {
    let text = "# HELP x_total y\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3\nx_total_more 7\nx 9\n";
    assert_eq!(metric_sum(text, "x_total"), Some(5.0));
    assert_eq!(metric_sum(text, "x"), Some(9.0));
    assert_eq!(metric_sum(text, "y"), None);
}

/// The premise of "arrival proves a valid checksum": in this topology the receiving kernel drops a UDP
/// datagram whose checksum is wrong (and takes one without a checksum, which IPv4 allows).
#[test]
fn topology_drops_a_bad_udp_checksum_at_the_far_end() {
    let Some(topo) = Topology::new() else { return };
    let callee = topo.media(Role::Callee, Family::V4, CALLER_PORT);
    let to = callee.local_addr();
    let payload = b"abcd";
    let udp = |checksum| RawUdp {
        len: 8 + payload.len() as u16,
        checksum,
        payload,
        header_bytes: 8,
    };
    send_raw_udp(&topo, to, udp(0x1234));
    assert_silent(&callee, QUIET, "a datagram with a bad checksum arrived");
    send_raw_udp(&topo, to, udp(0));
    let got = callee.recv_timeout(WAIT).map(|(d, _)| d);
    assert_eq!(
        got.as_deref(),
        Some(&payload[..]),
        "a datagram without checksum"
    );
}

/// The XDP pitfalls are handled: a frame sent back with `XDP_TX` from the relay's veth reaches the
/// caller (the bridge-side peer runs `XDP_PASS`), with valid checksums, over IPv4 and IPv6. Uses a tiny
/// reflector program of the harness, not the relay's.
#[test]
fn topology_delivers_frames_sent_with_xdp_tx_from_the_relays_veth() {
    let Some(topo) = Topology::new() else { return };
    let obj = common::netns::bpf_object("xdp_reflect").unwrap_or_else(|e| panic!("{e}"));
    topo.attach_xdp(&topo.ns(Role::Relay), PARTY_IF, &obj)
        .unwrap_or_else(|e| panic!("{e}"));
    for family in [Family::V4, Family::V6] {
        let caller = topo.media(Role::Caller, family, CALLER_PORT);
        let relay = SocketAddr::new(topo.addr(Role::Relay, family), 7777);
        let pkts = rtp_batch(SSRC_CALLER, 0, 20);
        relay_and_expect(&caller, relay, &pkts, &caller, relay, "reflected by XDP_TX");
    }
}

/// The AF_XDP plane: packets the kernel does not forward itself (here: streams still learning,
/// with `--endpoint-learning=delayed`) reach the relay through its AF_XDP socket and are forwarded
/// from there, without the socket layer; once the streams are learned the kernel takes over.
#[test]
fn afxdp_forwards_learning_streams_then_the_kernel_takes_over() {
    const REDIRECTED: &str = "rtprelay_xdp_redirected_packets_total";
    const TRANSMITTED: &str = "rtprelay_afxdp_transmitted_packets_total";
    for family in [Family::V4, Family::V6] {
        let Some(topo) = Topology::new() else { return };
        let relay = NsRelay::start(&topo, &["--dataplane=afxdp", "--endpoint-learning=delayed"]);
        assert_eq!(
            relay.statistics_plane(),
            "afxdp",
            "plane in statistics; start-up: {}",
            relay.plane_line()
        );
        let call = NsCall::setup(relay.ng(), &topo, family, &[]);
        // One packet each way first: a peer's next hop is learnt from its own frames (until then
        // the relay sends to it through the UDP socket).
        warm_up(&call);
        let (r0, u0, t0) = (
            relay.metric(REDIRECTED),
            relay.metric(USERSPACE),
            relay.metric(TRANSMITTED),
        );
        // Within the learning window: every packet goes through the AF_XDP socket.
        let sent = exchange(&call, 1, 30, 30, 3).packets() as f64;
        let redirected = relay.metric(REDIRECTED) - r0;
        assert!(
            redirected >= sent,
            "{family:?}: {redirected} packets redirected to AF_XDP, {sent} sent\n{}",
            relay.metrics()
        );
        assert!(
            relay.metric(USERSPACE) - u0 >= sent,
            "accepted by the worker"
        );
        // Every packet went back out of the AF_XDP socket, rewritten in place.
        let transmitted = relay.metric(TRANSMITTED) - t0;
        assert!(
            transmitted >= sent,
            "{family:?}: {transmitted} of {sent} sent back out of the AF_XDP socket"
        );
        // After the window the streams fix on the next packet and are offloaded.
        std::thread::sleep(Duration::from_millis(3200));
        exchange(&call, 2, 1, 1, 1);
        wait_offloaded(&relay, 4.0);
        let f0 = relay.metric(FORWARDED);
        let sent = exchange(&call, 3, 20, 20, 2).packets() as f64;
        let forwarded = wait_growth(&relay, FORWARDED, f0, sent);
        assert_eq!(
            forwarded, sent,
            "{family:?}: not forwarded by the kernel after learning"
        );
    }
}

/// A call-id that the relay puts on `worker` of `workers` (calls are sharded by call-id).
fn call_id_on(prefix: &str, worker: usize, workers: usize) -> String {
    (0..10_000)
        .map(|k| format!("{prefix}-{}-{k}", std::process::id()))
        .find(|id| {
            rtprelay::worker::worker_index(rtprelay::session::engine::shard_of(id), workers)
                == worker
        })
        .unwrap_or_else(|| panic!("no call-id maps to worker {worker}"))
}

/// Frames the relay's veth `ifname` received on each of its `queues` rx queues, from `ethtool
/// -S` (veth counts them per queue while an XDP program runs).
fn rx_queue_frames(topo: &Topology, ifname: &str, queues: u32) -> Vec<u64> {
    let out = topo
        .run_in(&topo.ns(Role::Relay), "ethtool", &["-S", ifname])
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    (0..queues)
        .map(|q| {
            let name = format!("rx_queue_{q}_xdp_packets:");
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name.as_str()))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in ethtool -S:\n{text}"))
        })
        .collect()
}

/// The AF_XDP plane with two workers on a two-queue device. The device's hash of each packet's
/// addresses and ports, not the call, picks the rx queue and so the worker whose socket receives
/// it: a frame for the other worker's call is handed to that worker, which forwards it and sends it
/// from its own AF_XDP socket.
#[test]
fn afxdp_two_workers_on_two_queues_forward_every_call_through_their_sockets() {
    afxdp_workers_forward_every_call_through_af_xdp(2, 2);
}

/// More workers than queues: the worker without a socket gets its calls' frames from the other,
/// and hands them back rewritten for the other to send out of its socket.
#[test]
fn afxdp_a_worker_without_a_socket_sends_through_another_workers_socket() {
    afxdp_workers_forward_every_call_through_af_xdp(1, 2);
}

/// Many calls on every one of `workers` workers, on a relay device with `queues` queues, all
/// learning (so nothing is offloaded yet): every packet arrives, every queue received some, some
/// frames went from one worker to another, and every packet left through an AF_XDP socket.
fn afxdp_workers_forward_every_call_through_af_xdp(queues: u32, workers: usize) {
    const TRANSMITTED: &str = "rtprelay_afxdp_transmitted_packets_total";
    const HANDED_OFF: &str = "rtprelay_afxdp_handed_off_packets_total";
    const HANDOFF_DROPPED: &str = "rtprelay_afxdp_handoff_dropped_packets_total";
    const CALLS: u16 = 16;
    let Some(topo) = Topology::with_relay_queues(queues) else {
        return;
    };
    let threads = format!("--num-threads={workers}");
    let relay = NsRelay::start(
        &topo,
        &["--dataplane=afxdp", "--endpoint-learning=delayed", &threads],
    );
    let line = relay.plane_line();
    let with_sockets = workers.min(queues as usize);
    assert!(
        line.contains(&format!("{queues} AF_XDP socket(s)"))
            && line.contains(&format!("on {with_sockets} of {workers} worker(s)")),
        "{line}"
    );
    let q0 = rx_queue_frames(&topo, PARTY_IF, queues);
    let h0 = relay.metric(HANDED_OFF);
    let (mut sent, mut transmitted) = (0.0, 0.0);
    for i in 0..CALLS {
        let worker = usize::from(i) % workers;
        let family = if i % 4 < 2 { Family::V4 } else { Family::V6 };
        let id = call_id_on(&format!("afxq{i}"), worker, workers);
        let (a, b) = (41000 + 4 * i, 42000 + 4 * i);
        let call = NsCall::setup_with(relay.ng(), &topo, family, &[], &id, a, b);
        // Next hops are learnt from the peers' own frames; then, well within the learning
        // window, media both ways.
        warm_up(&call);
        let t0 = relay.metric(TRANSMITTED);
        sent += exchange(&call, 1, 5, 5, 1).packets() as f64;
        transmitted += relay.metric(TRANSMITTED) - t0;
    }
    let per_queue: Vec<u64> = rx_queue_frames(&topo, PARTY_IF, queues)
        .iter()
        .zip(&q0)
        .map(|(now, before)| now - before)
        .collect();
    assert!(
        per_queue.iter().all(|&n| n > 0),
        "frames on one queue only: {per_queue:?}"
    );
    let handed = relay.metric(HANDED_OFF) - h0;
    assert!(handed > 0.0, "no frame was handed to the other worker");
    assert_eq!(
        relay.metric(HANDOFF_DROPPED),
        0.0,
        "hand-off queue overflowed"
    );
    assert!(
        transmitted >= sent,
        "{transmitted} of {sent} sent out of the AF_XDP sockets ({handed} handed over, \
         per queue {per_queue:?})\n{}",
        relay.metrics()
    );
}

/// The AF_XDP plane on two devices: the caller reaches the relay over the LAN (its veth0, two
/// queues), the far callee over the relay's second link (veth1, one queue), both to the relay's
/// LAN address. Frames arrive on either device, for calls on either worker, and each leaves from
/// a socket on the device of the peer it goes to; the worker with no socket on veth1 has the other
/// send its frames there.
#[test]
fn afxdp_forwards_between_two_devices() {
    const TRANSMITTED: &str = "rtprelay_afxdp_transmitted_packets_total";
    const CALLS: u16 = 8;
    let Some(mut topo) = Topology::with_relay_queues(2) else {
        return;
    };
    let far = topo.add_far_party();
    let second = format!("far/{}", topo.far_v4(Role::Relay));
    let relay = NsRelay::start(
        &topo,
        &[
            "--dataplane=afxdp",
            "--endpoint-learning=delayed",
            "--num-threads=2",
            "-i",
            &second,
        ],
    );
    let line = relay.plane_line();
    assert!(
        line.contains("3 AF_XDP socket(s)") && line.contains("on 2 of 2 worker(s)"),
        "{line}"
    );
    let far0 = rx_queue_frames(&topo, "veth1", 1)[0];
    let (mut sent, mut transmitted) = (0.0, 0.0);
    for i in 0..CALLS {
        let id = call_id_on(&format!("afxd{i}"), usize::from(i % 2), 2);
        let caller = NsParty::bind(&topo, Role::Caller, Family::V4, 41000 + 4 * i, "tag-caller");
        let callee = NsParty::bind_in(
            &far,
            topo.far_v4(Role::Callee).into(),
            42000 + 4 * i,
            "tag-callee",
        );
        let call = NsCall::between(relay.ng(), caller, callee, Family::V4, &[], &id);
        assert_eq!(call.callee_to.ip(), topo.addr(Role::Relay, Family::V4));
        warm_up(&call);
        let t0 = relay.metric(TRANSMITTED);
        sent += exchange(&call, 1, 5, 5, 1).packets() as f64;
        transmitted += relay.metric(TRANSMITTED) - t0;
    }
    let far_frames = rx_queue_frames(&topo, "veth1", 1)[0] - far0;
    assert!(
        far_frames >= sent as u64 / 2,
        "{far_frames} frames on veth1 for {sent} sent"
    );
    assert!(
        transmitted >= sent,
        "{transmitted} of {sent} sent out of the AF_XDP sockets\n{}",
        relay.metrics()
    );
}

// ---- an on-link spoofer (security issue 11, point 4) ----

/// `cmd args` in namespace `ns`, which must succeed.
fn must_run(topo: &Topology, ns: &str, cmd: &str, args: &[&str]) {
    topo.run_in(ns, cmd, args)
        .unwrap_or_else(|e| panic!("{cmd} {args:?} in {ns}: {e}"));
}

/// The MAC of `role`'s veth, from `ip link show`.
fn mac_of(topo: &Topology, role: Role) -> String {
    let text = topo.link_show(&topo.ns(role), PARTY_IF);
    text.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in:\n{text}"))
        .to_owned()
}

/// A socket bound to `addr` in namespace `ns`.
fn endpoint_in(ns: &str, addr: SocketAddr) -> MediaEndpoint {
    in_ns(ns, move || MediaEndpoint::bind(addr))
        .and_then(|r| r)
        .unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"))
}

/// Datagrams waiting on `ep` are thrown away.
fn drain(ep: &MediaEndpoint) {
    while ep.recv_timeout(Duration::from_millis(50)).is_some() {}
}

/// The spoofer (the injector's namespace) takes the caller's address without ever announcing it:
/// it answers no ARP and has a static entry for the relay, so that it never asks either. (Poisoning
/// the relay's neighbour table would be ARP spoofing, which no data plane can tell from the truth.)
/// Whatever the relay sent to the spoofer's MAC for the caller would then reach its sockets.
fn silently_take_the_callers_address(topo: &Topology, caller: std::net::IpAddr) {
    let ns = topo.ns(Role::Injector);
    must_run(
        topo,
        &ns,
        "sysctl",
        &["-q", "-w", "net.ipv4.conf.all.arp_ignore=8"],
    );
    let relay = topo.v4(Role::Relay).to_string();
    let relay_mac = mac_of(topo, Role::Relay);
    must_run(
        topo,
        &ns,
        "ip",
        &[
            "neigh",
            "replace",
            &relay,
            "lladdr",
            &relay_mac,
            "dev",
            PARTY_IF,
            "nud",
            "permanent",
        ],
    );
    let addr = format!("{caller}/32");
    must_run(topo, &ns, "ip", &["addr", "add", &addr, "dev", PARTY_IF]);
}

/// An on-link host that forges a peer's address cannot pull that peer's offloaded media to its own
/// MAC. Forwarding is off in the relay's namespace, as on most hosts that are not routers, so the
/// kernel's route lookup cannot answer for the XDP program and it sends by its fallback next hops:
/// the very next hops a spoofer would want to move. Once the call is offloaded, the spoofer sends
/// media with the caller's address from another port, to relay ports without a flow, and from the
/// caller's exact address and port (which strict source lets through). The callee's media for the
/// caller keeps arriving at the caller, all of it, for longer than the program caches a next hop;
/// none reaches the spoofer.
#[test]
fn xdp_an_on_link_spoofer_of_a_peers_address_gets_none_of_its_media() {
    const SSRC_SPOOF: u32 = 0x5b00f;
    // Rounds of the callee's media after the forgeries, each after a pause: together longer than
    // the program's per-CPU next-hop cache (one second), so a moved next hop would show.
    const ROUNDS: u16 = 4;
    const PAUSE: Duration = Duration::from_millis(500);
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    must_run(
        &topo,
        &topo.ns(Role::Relay),
        "sysctl",
        &["-q", "-w", "net.ipv4.conf.all.forwarding=0"],
    );
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    let (caller, callee) = (&call.caller, &call.callee);
    let (caller_rtcp_to, callee_rtcp_to) = (rtcp_of(call.caller_to), rtcp_of(call.callee_to));
    // The callee's media for the caller: RTP batch `n` of `count`, and one RTCP report.
    let to_caller = |n: u16, count: u16| {
        let pkts = rtp_batch(SSRC_CALLEE, 1000 * n, count);
        relay_and_expect(
            &callee.rtp,
            call.callee_to,
            &pkts,
            &caller.rtp,
            call.caller_to,
            "RTP callee->caller",
        );
        let rtcp = [rtcp_rr(SSRC_CALLEE + u32::from(n))];
        relay_and_expect(
            &callee.rtcp,
            callee_rtcp_to,
            &rtcp,
            &caller.rtcp,
            caller_rtcp_to,
            "RTCP callee->caller",
        );
        f64::from(count) + 1.0
    };
    warm_up(&call);
    if mode.offloads() {
        wait_offloaded(&relay, 4.0);
        // With forwarding off, the kernel forwards by its fallback next hops.
        let f0 = relay.metric(FORWARDED);
        let sent = to_caller(1, 20);
        assert_eq!(
            wait_growth(&relay, FORWARDED, f0, sent),
            sent,
            "not forwarded by the kernel's fallback next hops"
        );
    } else {
        to_caller(1, 20);
    }

    let caller_ip = caller.addr().ip();
    silently_take_the_callers_address(&topo, caller_ip);
    let spoof_ns = topo.ns(Role::Injector);
    let at = |port| SocketAddr::new(caller_ip, port);
    let spoof_rtp = endpoint_in(&spoof_ns, at(CALLER_PORT));
    let spoof_rtcp = endpoint_in(&spoof_ns, at(CALLER_PORT + 1));
    let spoof_other = endpoint_in(&spoof_ns, at(CALLER_PORT + 7));
    let call_ports = [
        call.caller_to.port(),
        caller_rtcp_to.port(),
        call.callee_to.port(),
        callee_rtcp_to.port(),
    ];
    let no_flow: Vec<SocketAddr> = (common::ns_relay::PORT_MIN..=common::ns_relay::PORT_MAX)
        .filter(|p| !call_ports.contains(p))
        .step_by(97)
        .map(|p| SocketAddr::new(call.caller_to.ip(), p))
        .collect();
    for p in rtp_batch(SSRC_SPOOF, 0, 5) {
        // The caller's address, another port: strict source refuses it.
        spoof_other.send_to(&p, call.caller_to).expect("forge");
        // The caller's address and port, to relay ports without a flow.
        for &to in &no_flow {
            spoof_rtp.send_to(&p, to).expect("forge");
        }
        // The caller's exact address and port: by address no different from the caller, relayed
        // to the callee as the caller's media would be.
        spoof_rtp.send_to(&p, call.caller_to).expect("forge");
        spoof_rtcp
            .send_to(&rtcp_rr(SSRC_SPOOF), caller_rtcp_to)
            .expect("forge");
    }

    let f0 = if mode.offloads() {
        relay.metric(FORWARDED)
    } else {
        0.0
    };
    let mut sent = 0.0;
    for round in 0..ROUNDS {
        std::thread::sleep(PAUSE);
        sent += to_caller(2 + round, 10);
    }
    for (ep, what) in [
        (&spoof_rtp, "RTP"),
        (&spoof_rtcp, "RTCP"),
        (&spoof_other, "another port"),
    ] {
        assert_silent(
            ep,
            QUIET,
            &format!("the spoofer got the caller's media ({what})"),
        );
    }
    if mode.offloads() {
        let forwarded = wait_growth(&relay, FORWARDED, f0, sent);
        assert!(
            forwarded >= sent,
            "the callee's media left the kernel path after the forgeries ({forwarded} of {sent})"
        );
    }
    // The caller's own media still reaches the callee, past what the forgeries injected.
    drain(&callee.rtp);
    drain(&callee.rtcp);
    relay_and_expect(
        &caller.rtp,
        call.caller_to,
        &rtp_batch(SSRC_CALLER, 9000, 10),
        &callee.rtp,
        call.callee_to,
        "RTP caller->callee after the forgeries",
    );
}
