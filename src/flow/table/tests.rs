//! The flow table on made-up packets and a made-up clock: no sockets, no threads.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::*;
use crate::flow::latch::EndpointLearning;
use crate::guard::{PolicyInputs, RelayPorts};

/// A fake clock: milliseconds the test moves by hand.
struct FakeClock(u64);

impl FakeClock {
    fn now(&self) -> Millis {
        Millis(self.0)
    }
    fn advance(&mut self, d: Duration) {
        self.0 += d.as_millis() as u64;
    }
}

const LOCAL_A: &str = "192.0.2.1:30000";
const LOCAL_B: &str = "192.0.2.1:30002";
const PEER_A: &str = "198.51.100.3:2000";
const PEER_B: &str = "203.0.113.9:4000";
const NAT_A: &str = "198.51.100.77:61000";

fn a(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn rtp(pt: u8) -> Vec<u8> {
    vec![0x80, pt, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xab, 0xcd]
}

fn rtcp_rr() -> Vec<u8> {
    vec![
        0x81, 201, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0,
    ]
}

fn latch(expected: &str, learning: EndpointLearning, strict: bool) -> LatchConfig {
    LatchConfig {
        expected: Some(a(expected)),
        learning,
        strict,
        window: Duration::from_millis(200),
        ..LatchConfig::default()
    }
}

fn change(egress: Option<FlowId>, latch: LatchConfig) -> FlowChange {
    FlowChange {
        kind: FlowKind::Rtp,
        egress,
        rtcp_egress: None,
        latch,
        record: None,
        crypto: FlowCrypto::default(),
    }
}

fn spec(egress: u64, latch: LatchConfig, local: &str) -> FlowSpec {
    FlowSpec {
        kind: FlowKind::Rtp,
        egress: Some(FlowId(egress)),
        rtcp_egress: None,
        latch,
        counters: Arc::default(),
        record: None,
        local: Some(a(local)),
        crypto: FlowCrypto::default(),
    }
}

/// Flow 1 (A's side, on LOCAL_A) and flow 2 (B's side, on LOCAL_B), each forwarding to the
/// other's peer. The I/O side of a flow is its own id, as a plane would name its socket.
fn call(learning_a: EndpointLearning, strict: bool, now: Millis) -> FlowTable<u64> {
    let mut t = FlowTable::default();
    t.open(
        FlowId(1),
        spec(2, latch(PEER_A, learning_a, strict), LOCAL_A),
        1,
        now,
    );
    t.open(
        FlowId(2),
        spec(1, latch(PEER_B, EndpointLearning::Off, strict), LOCAL_B),
        2,
        now,
    );
    t
}

fn permissive() -> TargetPolicy {
    TargetPolicy::permissive()
}

/// Decide one packet on flow `token`.
fn one(
    t: &mut FlowTable<u64>,
    token: u64,
    pkt: &[u8],
    src: &str,
    now: Millis,
    policy: &TargetPolicy,
) -> (Decision<u64>, RunOutcome) {
    let mut run = t.run(token, now, policy, |io| *io).expect("flow");
    let d = run.packet(pkt, a(src));
    (d, run.finish())
}

fn counters(t: &FlowTable<u64>, id: u64) -> (u64, u64, u64, u64) {
    let c = t.get(id).expect("flow").counters();
    (
        c.packets.load(Relaxed),
        c.rtcp_packets.load(Relaxed),
        c.errors.load(Relaxed),
        c.dropped.load(Relaxed),
    )
}

#[test]
fn learns_a_natted_peer_then_forwards_both_ways() {
    let mut clock = FakeClock(1000);
    let p = permissive();
    let mut t = call(EndpointLearning::Heuristic, false, clock.now());
    let cfg = LatchConfig {
        sdp_unreachable: true,
        ..latch(PEER_A, EndpointLearning::Heuristic, false)
    };
    assert!(t.update(FlowId(1), change(Some(FlowId(2)), cfg), clock.now()));
    // A speaks from its NAT address: relayed to B at once, learnt once the window closes.
    let (d, o) = one(&mut t, 1, &rtp(0), NAT_A, clock.now(), &p);
    assert_eq!(
        d,
        Decision::Forward {
            via: 2,
            dst: a(PEER_B),
            len: 14
        }
    );
    assert_eq!(o.learned, None);
    clock.advance(Duration::from_millis(300));
    let (d, o) = one(&mut t, 1, &rtp(0), NAT_A, clock.now(), &p);
    assert_eq!(
        d,
        Decision::Forward {
            via: 2,
            dst: a(PEER_B),
            len: 14
        }
    );
    assert_eq!(o.learned, Some(a(NAT_A)));
    assert!(o.offload, "the latch fixed: the kernel rule may change");
    // Reported once only.
    let (_, o) = one(&mut t, 1, &rtp(0), NAT_A, clock.now(), &p);
    assert_eq!(o.learned, None);
    // B's media now goes to where A really is, out of A's socket.
    let (d, _) = one(&mut t, 2, &rtp(0), PEER_B, clock.now(), &p);
    assert_eq!(
        d,
        Decision::Forward {
            via: 1,
            dst: a(NAT_A),
            len: 14
        }
    );
    assert_eq!(counters(&t, 1), (3, 0, 0, 0));
    assert_eq!(counters(&t, 2), (1, 0, 0, 0));
}

#[test]
fn strict_source_drops_others_and_counts_them() {
    let clock = FakeClock(0);
    let p = permissive();
    let mut t = call(EndpointLearning::Off, true, clock.now());
    let (d, o) = one(&mut t, 1, &rtp(0), "198.51.100.66:2000", clock.now(), &p);
    assert_eq!(d, Decision::Drop(DropReason::Latch));
    assert_eq!(o.accepted, 0);
    let (d, o) = one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    assert_eq!(
        d,
        Decision::Forward {
            via: 2,
            dst: a(PEER_B),
            len: 14
        }
    );
    assert_eq!(o.accepted, 1);
    assert_eq!(counters(&t, 1), (1, 0, 1, 0));
}

#[test]
fn malformed_packets_are_errors_and_unpaired_flows_drop() {
    let clock = FakeClock(0);
    let p = permissive();
    let mut t = call(EndpointLearning::Off, false, clock.now());
    let (d, _) = one(&mut t, 1, &[0x80, 0], PEER_A, clock.now(), &p);
    assert_eq!(d, Decision::Drop(DropReason::Malformed));
    t.close(FlowId(2)).expect("flow 2");
    let (d, _) = one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    assert_eq!(d, Decision::Drop(DropReason::NoEgress));
    assert_eq!(counters(&t, 1), (1, 0, 1, 1));
    assert!(t.run(2, clock.now(), &p, |io| *io).is_none());
}

#[test]
fn block_drops_media_but_passes_dtmf_and_rtcp() {
    let clock = FakeClock(0);
    let p = permissive();
    let mut t = call(EndpointLearning::Off, false, clock.now());
    let dtmf = 101u8;
    assert_eq!(t.block(FlowId(1), Some(1u128 << dtmf)), Some(true));
    assert_eq!(t.block(FlowId(1), Some(1u128 << dtmf)), Some(false));
    let (d, _) = one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    assert_eq!(d, Decision::Drop(DropReason::Blocked));
    let (d, _) = one(&mut t, 1, &rtp(dtmf), PEER_A, clock.now(), &p);
    assert_eq!(
        d,
        Decision::Forward {
            via: 2,
            dst: a(PEER_B),
            len: 14
        }
    );
    let (d, _) = one(&mut t, 1, &rtcp_rr(), PEER_A, clock.now(), &p);
    assert_eq!(
        d,
        Decision::Forward {
            via: 2,
            dst: a(PEER_B),
            len: 32
        }
    );
    // Blocked media is still counted as received, then as dropped.
    assert_eq!(counters(&t, 1), (2, 1, 0, 1));
    assert_eq!(t.block(FlowId(1), None), Some(true));
    let (d, _) = one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    assert!(matches!(d, Decision::Forward { .. }));
}

#[test]
fn rtcp_passes_and_counts_apart_from_rtp() {
    let clock = FakeClock(5);
    let p = permissive();
    let mut t = call(EndpointLearning::Off, true, clock.now());
    let (d, _) = one(&mut t, 1, &rtcp_rr(), PEER_A, clock.now(), &p);
    assert_eq!(
        d,
        Decision::Forward {
            via: 2,
            dst: a(PEER_B),
            len: 32
        }
    );
    let c = t.get(1).expect("flow").counters();
    assert_eq!(c.rtcp_bytes.load(Relaxed), rtcp_rr().len() as u64);
    assert_eq!(c.last_packet_ms.load(Relaxed), 5);
    assert_eq!(counters(&t, 1), (0, 1, 0, 0));
}

#[test]
fn a_recorded_flow_copies_its_rtp_to_the_tap() {
    let clock = FakeClock(0);
    let p = permissive();
    let mut t = call(EndpointLearning::Off, false, clock.now());
    fn wall() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
    }
    t.wall = wall;
    let (tx, rx) = crossbeam_channel::bounded(1);
    let tap = RecordTap {
        tx,
        dropped: Arc::new(AtomicU64::new(0)),
        stream_dropped: Arc::new(AtomicU64::new(0)),
    };
    assert!(t.tap(FlowId(1), Some(tap.clone())));
    assert!(t.get(1).expect("flow").recorded());
    let (d, _) = one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    assert!(matches!(d, Decision::Forward { .. }));
    // RTCP is not recorded; a full tap costs a recording packet, never the forward.
    one(&mut t, 1, &rtcp_rr(), PEER_A, clock.now(), &p);
    let (d, _) = one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    assert!(matches!(d, Decision::Forward { .. }));
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].flow, got[0].src, got[0].data.clone()),
        (1, a(PEER_A), rtp(0))
    );
    assert_eq!(tap.dropped.load(Relaxed), 1);
}

#[test]
fn a_source_the_policy_refuses_is_never_learnt() {
    let clock = FakeClock(0);
    let ip: IpAddr = a(LOCAL_A).ip();
    let ports = Arc::new(RelayPorts::new([ip]));
    ports.mark_pair(ip, 30010);
    let policy = TargetPolicy::new(
        &PolicyInputs {
            locals: vec![ip],
            port_min: 1024,
            port_max: 65535,
            ..Default::default()
        },
        ports,
    );
    let mut t = call(EndpointLearning::Immediate, false, clock.now());
    let own = "192.0.2.1:30010";
    let mut run = t.run(1, clock.now(), &policy, |io| *io).expect("flow");
    for _ in 0..3 {
        assert_eq!(
            run.packet(&rtp(0), a(own)),
            Decision::Drop(DropReason::RefusedSource)
        );
    }
    let o = run.finish();
    assert_eq!((o.refused, o.accepted, o.learned), (3, 0, None));
    assert_eq!(t.get(1).expect("flow").latch().source(), None);
    assert_eq!(counters(&t, 1), (0, 0, 3, 0));
    // The real peer still is.
    let (d, o) = one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &policy);
    assert!(matches!(d, Decision::Forward { .. }));
    assert_eq!(o.refused, 0);
}

#[test]
fn an_update_moves_the_peer_and_learning_starts_over() {
    let mut clock = FakeClock(0);
    let p = permissive();
    let mut t = call(EndpointLearning::Immediate, true, clock.now());
    one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    assert!(t.get(1).expect("flow").latch().is_fixed());
    let moved = "198.51.100.4:2002";
    let (d, _) = one(&mut t, 1, &rtp(0), moved, clock.now(), &p);
    assert_eq!(d, Decision::Drop(DropReason::Latch));
    // A re-INVITE moves A: the new address is learnt, and B's media follows it.
    clock.advance(Duration::from_millis(50));
    let cfg = latch(moved, EndpointLearning::Immediate, true);
    assert!(t.update(FlowId(1), change(Some(FlowId(2)), cfg), clock.now()));
    let (d, o) = one(&mut t, 1, &rtp(0), moved, clock.now(), &p);
    assert!(matches!(d, Decision::Forward { .. }));
    assert!(o.offload);
    let (d, _) = one(&mut t, 2, &rtp(0), PEER_B, clock.now(), &p);
    assert_eq!(
        d,
        Decision::Forward {
            via: 1,
            dst: a(moved),
            len: 14
        }
    );
    assert!(!t.update(FlowId(9), change(None, cfg), clock.now()));
}

#[test]
fn settling_asks_for_the_kernel_rule_once() {
    let mut clock = FakeClock(0);
    let p = permissive();
    let mut t = call(EndpointLearning::Heuristic, true, clock.now());
    assert!(!t.get(1).expect("flow").latch().is_settled());
    // The SDP address and port: fixed at once, settled, the offload is asked for.
    let (_, o) = one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    assert!(o.offload);
    assert!(t.get(1).expect("flow").latch().is_settled());
    // Nothing moves after that: no more requests.
    clock.advance(Duration::from_secs(5));
    let (_, o) = one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    assert!(!o.offload);
}

/// An RR with one report block: `fraction` lost (1/256), `cumulative` lost, `jitter` units.
fn rr_with(fraction: u8, cumulative: u32, jitter: u32) -> Vec<u8> {
    let mut v = vec![0x81, 201, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1, fraction];
    v.extend(&cumulative.to_be_bytes()[1..]);
    v.extend([0, 0, 0x03, 0xe8]);
    v.extend(jitter.to_be_bytes());
    v.extend([0u8; 8]);
    v
}

#[test]
fn rtcp_reports_keep_the_latest_loss_and_jitter() {
    let clock = FakeClock(5);
    let p = permissive();
    let mut t = call(EndpointLearning::Off, true, clock.now());
    // RTP and report-less RTCP record nothing.
    one(&mut t, 1, &rtp(0), PEER_A, clock.now(), &p);
    let mut no_block = rtcp_rr();
    no_block[0] = 0x80;
    no_block[3] = 1;
    no_block.truncate(8);
    one(&mut t, 1, &no_block, PEER_A, clock.now(), &p);
    assert_eq!(t.get(1).expect("flow").counters().rtcp_report(), None);
    one(&mut t, 1, &rr_with(0, 0, 40), PEER_A, clock.now(), &p);
    one(&mut t, 1, &rr_with(64, 12, 160), PEER_A, clock.now(), &p);
    let r = t
        .get(1)
        .expect("flow")
        .counters()
        .rtcp_report()
        .expect("a report");
    assert_eq!(
        (r.reports, r.fraction_lost, r.cumulative_lost, r.jitter),
        (2, 64, 12, 160)
    );
    assert!((r.loss_ratio() - 0.25).abs() < 1e-9);
    assert!((r.jitter_secs(8000) - 0.02).abs() < 1e-9);
    // The other flow heard nothing.
    assert_eq!(t.get(2).expect("flow").counters().rtcp_report(), None);
    // RTCP multiplexed on the RTP port is read too; its packets still count as RTCP.
    assert_eq!(counters(&t, 1), (1, 3, 0, 0));
}

#[test]
fn muxed_rtcp_goes_to_the_other_sides_rtcp_port_when_it_demuxes() {
    // Flow 1: A muxes RTP and RTCP on LOCAL_A. B demuxes: flow 2 is its RTP socket (peer
    // PEER_B), flow 3 its RTCP socket (peer PEER_B's port + 1).
    let now = Millis(0);
    let mut t = FlowTable::default();
    let mut s = spec(2, latch(PEER_A, EndpointLearning::Off, true), LOCAL_A);
    s.rtcp_egress = Some(FlowId(3));
    t.open(FlowId(1), s, 1, now);
    t.open(
        FlowId(2),
        spec(1, latch(PEER_B, EndpointLearning::Off, true), LOCAL_B),
        2,
        now,
    );
    let b_rtcp = "203.0.113.9:4001";
    let mut s = spec(
        1,
        latch(b_rtcp, EndpointLearning::Off, true),
        "192.0.2.1:30003",
    );
    s.kind = FlowKind::Rtcp;
    t.open(FlowId(3), s, 3, now);
    let policy = permissive();

    let (d, _) = one(&mut t, 1, &rtp(0), PEER_A, now, &policy);
    assert_eq!(
        d,
        Decision::Forward {
            via: 2,
            dst: a(PEER_B),
            len: rtp(0).len()
        }
    );
    let (d, _) = one(&mut t, 1, &rtcp_rr(), PEER_A, now, &policy);
    assert_eq!(
        d,
        Decision::Forward {
            via: 3,
            dst: a(b_rtcp),
            len: rtcp_rr().len()
        },
        "RTCP leaves by B's RTCP socket, to B's RTCP address"
    );
    // Without the demux, RTCP stays with the RTP egress.
    let mut c = change(Some(FlowId(2)), latch(PEER_A, EndpointLearning::Off, true));
    c.rtcp_egress = None;
    assert!(t.update(FlowId(1), c, now));
    let (d, _) = one(&mut t, 1, &rtcp_rr(), PEER_A, now, &policy);
    assert!(matches!(d, Decision::Forward { via: 2, .. }), "{d:?}");
}
