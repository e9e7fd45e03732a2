//! Real sockets on 127.0.0.1: two relay port pairs, clients on both sides, one injector.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::dataplane::{bind_pair, PlaneKind};
use crate::flow::latch::{EndpointLearning, LatchConfig};
use crate::testkit::skip_unless;
use crate::time::Clock;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn relay_pair() -> (UdpSocket, UdpSocket) {
    let start = 30000 + (std::process::id() % 4000) as u16 * 2;
    for k in 0..1000u16 {
        if let Ok(p) = bind_pair(LO, start.wrapping_add(2 * k).max(1024) & !1) {
            return p;
        }
    }
    panic!("no free port pair");
}

fn client() -> UdpSocket {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind client");
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    s
}

fn addr(s: &UdpSocket) -> SocketAddr {
    s.local_addr().expect("local addr")
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80, 0x00];
    v.extend(seq.to_be_bytes());
    v.extend((u32::from(seq) * 160).to_be_bytes());
    v.extend(ssrc.to_be_bytes());
    v.extend([0xd5u8; 160]);
    v
}

fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80, 201, 0, 1];
    v.extend(ssrc.to_be_bytes());
    v
}

/// Wait (bounded) for one datagram.
fn recv(s: &UdpSocket, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            return Some((buf[..n].to_vec(), from));
        }
    }
    None
}

/// Wait (bounded) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

fn permissive() -> crate::guard::SharedPolicy {
    crate::guard::share(crate::guard::TargetPolicy::permissive())
}

fn latch(expected: SocketAddr) -> LatchConfig {
    LatchConfig {
        expected: Some(expected),
        learning: EndpointLearning::Heuristic,
        strict: true,
        asymmetric: false,
        window: Duration::from_millis(200),
        signalled_from: None,
        sdp_unreachable: false,
        restored: None,
    }
}

struct Side {
    rtp: Arc<StreamCounters>,
    rtcp: Arc<StreamCounters>,
    port: u16,
}

/// Opens flow `id` on `socket`, relaying to flow `egress`, expecting its peer at `exp`.
fn open(
    id: u64,
    kind: FlowKind,
    socket: UdpSocket,
    egress: u64,
    exp: SocketAddr,
    counters: &Arc<StreamCounters>,
) -> FlowUpdate {
    FlowUpdate::Open {
        crypto: FlowCrypto::default(),
        id: FlowId(id),
        kind,
        socket,
        egress: Some(FlowId(egress)),
        rtcp_egress: None,
        latch: latch(exp),
        counters: counters.clone(),
        record: None,
    }
}

/// Open flows 1/3 (A side, RTP/RTCP) and 2/4 (B side) pairing A ↔ B.
fn open_call(
    w: &Workers,
    worker: usize,
    exp_a: (SocketAddr, SocketAddr),
    exp_b: (SocketAddr, SocketAddr),
) -> (Side, Side) {
    let (a_rtp, a_rtcp) = relay_pair();
    let (b_rtp, b_rtcp) = relay_pair();
    let a = Side {
        rtp: Arc::default(),
        rtcp: Arc::default(),
        port: addr(&a_rtp).port(),
    };
    let b = Side {
        rtp: Arc::default(),
        rtcp: Arc::default(),
        port: addr(&b_rtp).port(),
    };
    // One batch: a packet must never find a flow open before its egress flow is.
    w.send_batch(
        worker,
        vec![
            open(1, FlowKind::Rtp, a_rtp, 2, exp_a.0, &a.rtp),
            open(2, FlowKind::Rtp, b_rtp, 1, exp_b.0, &b.rtp),
            open(3, FlowKind::Rtcp, a_rtcp, 4, exp_a.1, &a.rtcp),
            open(4, FlowKind::Rtcp, b_rtcp, 3, exp_b.1, &b.rtcp),
        ],
    );
    (a, b)
}

#[test]
fn relays_both_ways_and_enforces_strict_source() {
    relays_both_ways_and_enforces_strict_source_on(PlaneKind::Mmsg);
}

#[test]
fn relays_both_ways_and_enforces_strict_source_uring() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    relays_both_ways_and_enforces_strict_source_on(PlaneKind::Uring);
}

fn relays_both_ways_and_enforces_strict_source_on(plane: PlaneKind) {
    let (etx, erx) = crossbeam_channel::unbounded();
    let w = Workers::spawn(WorkersConfig {
        workers: 1,
        cpus: None,
        plane,
        clock: Clock::new(),
        events: etx,
        offload: None,
        xsks: Vec::new(),
        policy: permissive(),
        tuning: SocketTuning::default(),
        dtls: None,
    })
    .expect("spawn");
    assert_eq!(w.plane_name(), plane.name());
    let (ca, ca_c, cb, cb_c, evil) = (client(), client(), client(), client(), client());
    let (a, b) = open_call(&w, 0, (addr(&ca), addr(&ca_c)), (addr(&cb), addr(&cb_c)));
    let to_a = SocketAddr::new(LO, a.port);
    let to_b = SocketAddr::new(LO, b.port);

    // Caller → relay A port → out of relay B port → callee, byte-identical.
    for seq in 0..5u16 {
        let p = rtp(1000 + seq, 0x1234);
        ca.send_to(&p, to_a).expect("send");
        let (got, from) = recv(&cb, Duration::from_secs(2)).expect("callee gets RTP");
        assert_eq!(got, p);
        assert_eq!(from, to_b, "leaves from the B-side relay socket");
    }
    // Callee → caller.
    for seq in 0..3u16 {
        let p = rtp(2000 + seq, 0x5678);
        cb.send_to(&p, to_b).expect("send");
        let (got, from) = recv(&ca, Duration::from_secs(2)).expect("caller gets RTP");
        assert_eq!(got, p);
        assert_eq!(from, to_a);
    }
    eventually("A counters", || a.rtp.packets.load(Relaxed) == 5);
    assert_eq!(a.rtp.bytes.load(Relaxed), 5 * 172);
    assert_eq!(b.rtp.packets.load(Relaxed), 3);
    assert!(a.rtp.last_packet_ms.load(Relaxed) > 0);
    assert_eq!(a.rtp.errors.load(Relaxed), 0);

    // Both peers sent from their SDP address: fixed. An injector is dropped and counted.
    for seq in 0..4u16 {
        evil.send_to(&rtp(seq, 0xbad), to_a).expect("send");
    }
    eventually("injector drops", || a.rtp.errors.load(Relaxed) == 4);
    assert!(
        recv(&cb, Duration::from_millis(150)).is_none(),
        "injector must not reach callee"
    );
    // ...and the stream still goes to the real caller, not the injector.
    cb.send_to(&rtp(2100, 0x5678), to_b).expect("send");
    assert!(recv(&ca, Duration::from_secs(2)).is_some());
    assert!(recv(&evil, Duration::from_millis(100)).is_none());

    // Malformed packets from the real peer are errors too.
    ca.send_to(b"\x00garbage", to_a).expect("send");
    ca.send_to(&[0x80, 0x00, 0x01], to_a).expect("send");
    eventually("malformed counted", || a.rtp.errors.load(Relaxed) == 6);
    assert_eq!(a.rtp.packets.load(Relaxed), 5);

    // RTCP on the RTCP pair, both ways.
    let rr = rtcp_rr(0x1234);
    ca_c.send_to(&rr, SocketAddr::new(LO, a.port + 1))
        .expect("send");
    let (got, from) = recv(&cb_c, Duration::from_secs(2)).expect("callee gets RTCP");
    assert_eq!(got, rr);
    assert_eq!(from, SocketAddr::new(LO, b.port + 1));
    cb_c.send_to(&rtcp_rr(0x5678), SocketAddr::new(LO, b.port + 1))
        .expect("send");
    assert_eq!(
        recv(&ca_c, Duration::from_secs(2)).map(|x| x.0),
        Some(rtcp_rr(0x5678))
    );
    eventually("RTCP counters", || a.rtcp.rtcp_packets.load(Relaxed) == 1);
    assert_eq!(a.rtcp.rtcp_bytes.load(Relaxed), 8);
    assert_eq!(a.rtcp.packets.load(Relaxed), 0);
    // RTP on the RTCP port is malformed there.
    ca_c.send_to(&rtp(1, 1), SocketAddr::new(LO, a.port + 1))
        .expect("send");
    eventually("RTP on RTCP port rejected", || {
        a.rtcp.errors.load(Relaxed) == 1
    });
    // Muxed RTCP on the RTP port is relayed and counted as RTCP.
    ca.send_to(&rr, to_a).expect("send");
    assert_eq!(recv(&cb, Duration::from_secs(2)).map(|x| x.0), Some(rr));
    eventually("muxed RTCP counted", || {
        a.rtp.rtcp_packets.load(Relaxed) == 1
    });

    // Nothing learned away from the SDP addresses.
    assert!(erx.try_recv().is_err());
    w.shutdown();
}

#[test]
fn learns_natted_peer_reports_it_and_follows_updates() {
    learns_natted_peer_reports_it_and_follows_updates_on(PlaneKind::Mmsg);
}

#[test]
fn learns_natted_peer_reports_it_and_follows_updates_uring() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    learns_natted_peer_reports_it_and_follows_updates_on(PlaneKind::Uring);
}

fn learns_natted_peer_reports_it_and_follows_updates_on(plane: PlaneKind) {
    let (etx, erx) = crossbeam_channel::unbounded();
    let w = Workers::spawn(WorkersConfig {
        workers: 2,
        cpus: Some(vec![0]),
        plane,
        clock: Clock::new(),
        events: etx,
        offload: None,
        xsks: Vec::new(),
        policy: permissive(),
        tuning: SocketTuning::default(),
        dtls: None,
    })
    .expect("spawn");
    let worker = w.worker_for(0xfeed);
    assert!(worker < 2);
    let (ca, ca_c, cb, cb_c) = (client(), client(), client(), client());
    // B's SDP names a port nobody listens on: its NAT rewrote the port (heuristic rank 2).
    let sdp_b = SocketAddr::new(LO, 9);
    let (a, b) = open_call(&w, worker, (addr(&ca), addr(&ca_c)), (sdp_b, addr(&cb_c)));
    let to_a = SocketAddr::new(LO, a.port);
    let to_b = SocketAddr::new(LO, b.port);

    cb.send_to(&rtp(1, 7), to_b).expect("send");
    assert!(recv(&ca, Duration::from_secs(2)).is_some());
    match erx.recv_timeout(Duration::from_secs(2)) {
        Ok(FlowEvent::Learned { id, addr: learned }) => {
            assert_eq!(id, FlowId(2));
            assert_eq!(learned, addr(&cb));
        }
        other => panic!("expected a Learned event, got {other:?}"),
    }
    // Caller's media now reaches the learned callee address.
    let p = rtp(10, 8);
    ca.send_to(&p, to_a).expect("send");
    assert_eq!(recv(&cb, Duration::from_secs(2)).map(|x| x.0), Some(p));

    // Unpair: with no egress, accepted packets are counted as dropped.
    w.send(
        worker,
        FlowUpdate::Update {
            crypto: FlowCrypto::default(),
            id: FlowId(1),
            kind: FlowKind::Rtp,
            egress: None,
            rtcp_egress: None,
            latch: latch(addr(&ca)),
            record: None,
        },
    );
    std::thread::sleep(Duration::from_millis(20));
    ca.send_to(&rtp(11, 8), to_a).expect("send");
    eventually("dropped without egress", || {
        a.rtp.dropped.load(Relaxed) == 1
    });
    assert!(recv(&cb, Duration::from_millis(100)).is_none());

    // Close: the socket is released, so its port can be bound again.
    w.send(worker, FlowUpdate::Close { id: FlowId(1) });
    eventually("port released", || UdpSocket::bind(to_a).is_ok());
    drop(cb_c);
    w.shutdown();
}

#[test]
fn spawn_rejects_zero_and_shards_stably() {
    let (etx, _erx) = crossbeam_channel::unbounded();
    assert!(matches!(
        Workers::spawn(WorkersConfig {
            workers: 0,
            cpus: None,
            plane: PlaneKind::Mmsg,
            clock: Clock::new(),
            events: etx.clone(),
            offload: None,
            xsks: Vec::new(),
            policy: permissive(),
            tuning: SocketTuning::default(),
            dtls: None,
        }),
        Err(WorkerError::NoWorkers)
    ));
    let w = Workers::spawn(WorkersConfig {
        workers: 3,
        cpus: None,
        plane: PlaneKind::Mmsg,
        clock: Clock::new(),
        events: etx,
        offload: None,
        xsks: Vec::new(),
        policy: permissive(),
        tuning: SocketTuning::default(),
        dtls: None,
    })
    .expect("spawn");
    assert_eq!(w.len(), 3);
    let mut seen = [0usize; 3];
    for k in 0..300u64 {
        let i = w.worker_for(k.wrapping_mul(0x1000_0000_0001));
        assert_eq!(i, w.worker_for(k.wrapping_mul(0x1000_0000_0001)));
        seen[i] += 1;
    }
    assert!(seen.iter().all(|&c| c > 30), "spread: {seen:?}");
    w.shutdown();
}

fn tap_keeps_forwarding_when_full_on(plane: PlaneKind) {
    let (etx, _erx) = crossbeam_channel::unbounded();
    let w = Workers::spawn(WorkersConfig {
        workers: 1,
        cpus: None,
        plane,
        clock: Clock::new(),
        events: etx,
        offload: None,
        xsks: Vec::new(),
        policy: permissive(),
        tuning: SocketTuning::default(),
        dtls: None,
    })
    .expect("spawn");
    let (ca, ca_c, cb, cb_c) = (client(), client(), client(), client());
    let (a, _b) = open_call(&w, 0, (addr(&ca), addr(&ca_c)), (addr(&cb), addr(&cb_c)));
    let to_a = SocketAddr::new(LO, a.port);
    // A queue of 4 that nobody reads: a writer stuck on a slow disk.
    let (tx, rx) = crossbeam_channel::bounded(4);
    let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
    w.send(
        0,
        FlowUpdate::Tap {
            id: FlowId(1),
            record: Some(RecordTap {
                tx,
                dropped: dropped.clone(),
                stream_dropped: Arc::default(),
            }),
        },
    );
    std::thread::sleep(Duration::from_millis(20));
    let n = 30u16;
    for seq in 0..n {
        let p = rtp(seq, 0x77);
        ca.send_to(&p, to_a).expect("send");
        assert_eq!(
            recv(&cb, Duration::from_secs(2)).map(|x| x.0),
            Some(p),
            "forwarded despite the full tap"
        );
    }
    eventually("counters", || a.rtp.packets.load(Relaxed) == u64::from(n));
    assert_eq!(a.rtp.dropped.load(Relaxed), 0);
    assert_eq!(dropped.load(Relaxed), u64::from(n) - 4);
    let first = rx.try_recv().expect("tapped packet");
    assert_eq!(
        (first.flow, first.src, first.data),
        (1, addr(&ca), rtp(0, 0x77))
    );
    // Untapped again: nothing more is copied or counted.
    w.send(
        0,
        FlowUpdate::Tap {
            id: FlowId(1),
            record: None,
        },
    );
    std::thread::sleep(Duration::from_millis(20));
    ca.send_to(&rtp(99, 0x77), to_a).expect("send");
    assert!(recv(&cb, Duration::from_secs(2)).is_some());
    assert_eq!(dropped.load(Relaxed), u64::from(n) - 4);
    assert_eq!(rx.len(), 3);
}

#[test]
fn tap_keeps_forwarding_when_full() {
    tap_keeps_forwarding_when_full_on(PlaneKind::Mmsg);
}

#[test]
fn tap_keeps_forwarding_when_full_uring() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    tap_keeps_forwarding_when_full_on(PlaneKind::Uring);
}

fn block_drops_media_but_counts_it_on(plane: PlaneKind) {
    let (etx, _erx) = crossbeam_channel::unbounded();
    let w = Workers::spawn(WorkersConfig {
        workers: 1,
        cpus: None,
        plane,
        clock: Clock::new(),
        events: etx,
        offload: None,
        xsks: Vec::new(),
        policy: permissive(),
        tuning: SocketTuning::default(),
        dtls: None,
    })
    .expect("spawn");
    let (ca, ca_c, cb, cb_c) = (client(), client(), client(), client());
    let (a, b) = open_call(&w, 0, (addr(&ca), addr(&ca_c)), (addr(&cb), addr(&cb_c)));
    let (to_a, to_b) = (SocketAddr::new(LO, a.port), SocketAddr::new(LO, b.port));
    // B sends first, so A's egress target (B) is known before A's packets come.
    cb.send_to(&rtp(0, 0x22), to_b).expect("send");
    assert!(recv(&ca, Duration::from_secs(2)).is_some());
    w.send(
        0,
        FlowUpdate::Block {
            id: FlowId(1),
            block: Some(1 << 101),
        },
    );
    std::thread::sleep(Duration::from_millis(20));
    for seq in 0..5 {
        ca.send_to(&rtp(seq, 0x11), to_a).expect("send");
    }
    // RTCP muxed on the blocked flow still passes, so do DTMF events (payload type 101 here),
    // and B's media still reaches A.
    ca.send_to(&rtcp_rr(0x11), to_a).expect("send");
    assert_eq!(
        recv(&cb, Duration::from_secs(2)).map(|x| x.0),
        Some(rtcp_rr(0x11)),
        "the RTCP arrives, not the media"
    );
    let mut dtmf = rtp(5, 0x11);
    dtmf[1] = 101;
    ca.send_to(&dtmf, to_a).expect("send");
    assert_eq!(
        recv(&cb, Duration::from_secs(2)).map(|x| x.0),
        Some(dtmf),
        "the DTMF event arrives"
    );
    cb.send_to(&rtp(1, 0x22), to_b).expect("send");
    assert!(recv(&ca, Duration::from_secs(2)).is_some());
    eventually("blocked packets counted", || {
        a.rtp.packets.load(Relaxed) == 6 && a.rtp.dropped.load(Relaxed) == 5
    });
    assert_eq!(a.rtp.rtcp_packets.load(Relaxed), 1);
    w.send(
        0,
        FlowUpdate::Block {
            id: FlowId(1),
            block: None,
        },
    );
    std::thread::sleep(Duration::from_millis(20));
    ca.send_to(&rtp(9, 0x11), to_a).expect("send");
    assert_eq!(
        recv(&cb, Duration::from_secs(2)).map(|x| x.0),
        Some(rtp(9, 0x11)),
        "forwarded again"
    );
    assert_eq!(a.rtp.dropped.load(Relaxed), 5);
}

#[test]
fn block_drops_media_but_counts_it() {
    block_drops_media_but_counts_it_on(PlaneKind::Mmsg);
}

#[test]
fn block_drops_media_but_counts_it_uring() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    block_drops_media_but_counts_it_on(PlaneKind::Uring);
}

#[test]
fn a_worker_survives_a_panic_with_its_flows_and_too_many_stop_it() {
    survives_a_panic_on(PlaneKind::Mmsg);
}

#[test]
fn a_uring_worker_survives_a_panic_with_a_fresh_ring() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    survives_a_panic_on(PlaneKind::Uring);
}

fn survives_a_panic_on(plane: PlaneKind) {
    let (mut w, tx) = super::run::tests::idle_worker();
    let start = super::run::tests::plane_start(plane, &w);
    w.fault_inject = true;
    let health = w.guard.health.clone();
    let wake = w.wake.clone();
    let (ra, _ra_rtcp) = relay_pair();
    let (rb, _rb_rtcp) = relay_pair();
    let (a, b) = (client(), client());
    let (ra_addr, a_addr, b_addr) = (addr(&ra), addr(&a), addr(&b));
    let counters = Arc::new(StreamCounters::default());
    tx.send(vec![
        open(1, FlowKind::Rtp, ra, 2, a_addr, &counters),
        open(2, FlowKind::Rtp, rb, 1, b_addr, &counters),
    ])
    .expect("send");
    wake.notify();
    let t = std::thread::spawn(move || w.run(start));
    let forwards = |seq: u16| {
        a.send_to(&rtp(seq, 7), ra_addr).expect("send");
        recv(&b, Duration::from_secs(2)).is_some()
    };
    assert!(forwards(1), "media before the panic");
    a.send_to(super::run::FAULT_PANIC, ra_addr).expect("send");
    eventually("the panic to be caught", || health.panics() == 1);
    assert!(
        forwards(2),
        "media after the panic: the worker kept its flows"
    );
    assert!(!health.is_dead());
    // One panic per pass at most: fault packets that queue up while the worker recovers (a
    // loaded machine) end up in one batch and cost one panic, so keep sending until it gives up.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !health.is_dead() && std::time::Instant::now() < deadline {
        a.send_to(super::run::FAULT_PANIC, ra_addr).expect("send");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        health.is_dead(),
        "the worker gave up: {} panics",
        health.panics()
    );
    assert!(
        health.panics() > PANIC_BUDGET as u64,
        "{} panics",
        health.panics()
    );
    eventually("the worker thread to end", || t.is_finished());
}

#[test]
fn a_packet_from_one_of_the_relays_own_ports_is_dropped_and_never_learnt() {
    // The policy's port table says the "other relay socket" below is the relay's own: a packet
    // from it (a loop) must be dropped and counted, even while the stream is still learning.
    let ports = Arc::new(crate::guard::RelayPorts::new([LO]));
    let own = client();
    ports.mark_pair(LO, addr(&own).port() & !1);
    let policy = crate::guard::share(crate::guard::TargetPolicy::new(
        &crate::guard::PolicyInputs {
            locals: vec![LO],
            port_min: 1024,
            port_max: 65535,
            ..Default::default()
        },
        ports,
    ));
    let (etx, _erx) = crossbeam_channel::unbounded();
    let w = Workers::spawn(WorkersConfig {
        workers: 1,
        cpus: None,
        plane: PlaneKind::Mmsg,
        clock: Clock::new(),
        events: etx,
        offload: None,
        xsks: Vec::new(),
        policy,
        tuning: SocketTuning::default(),
        dtls: None,
    })
    .expect("spawn");
    let (ca, ca_c, cb, cb_c) = (client(), client(), client(), client());
    let (a, _b) = open_call(&w, 0, (addr(&ca), addr(&ca_c)), (addr(&cb), addr(&cb_c)));
    let to_a = SocketAddr::new(LO, a.port);
    for seq in 0..3u16 {
        own.send_to(&rtp(seq, 0x1007), to_a).expect("send");
    }
    eventually("the loop packets are refused", || {
        w.counters().refused_sources == 3
    });
    assert_eq!(a.rtp.errors.load(Relaxed), 3);
    assert!(
        recv(&cb, Duration::from_millis(150)).is_none(),
        "nothing forwarded"
    );
    // The real peer is still learnt and relayed.
    ca.send_to(&rtp(9, 0x1234), to_a).expect("send");
    assert!(recv(&cb, Duration::from_secs(2)).is_some());
}

/// Whether the kernel turns away a packet to `to` from `from` (a socket that may be connected
/// to `to` already): it answers with ICMP port unreachable, which a connected sender sees as
/// "connection refused". A relay socket that takes the packet (unconnected, or connected to
/// `from`) sends no such answer.
fn kernel_refuses(from: &UdpSocket, to: SocketAddr) -> bool {
    from.connect(to).expect("connect the probe");
    let mut buf = [0u8; 2048];
    for seq in 0..5u16 {
        let _ = from.send(&rtp(60000 + seq, 0xbad));
        match from.recv(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => {}
        }
    }
    false
}

#[test]
fn connected_sockets_keep_latching_semantics() {
    connected_sockets_keep_latching_semantics_on(PlaneKind::Mmsg, false);
}

#[test]
fn connected_sockets_keep_latching_semantics_uring() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    connected_sockets_keep_latching_semantics_on(PlaneKind::Uring, false);
}

/// The same with the ring's sockets in its fixed-file table.
#[test]
fn connected_sockets_keep_latching_semantics_uring_fixed_files() {
    if !skip_unless(crate::sys::uring::probe().is_ok(), "io_uring refused here") {
        return;
    }
    connected_sockets_keep_latching_semantics_on(PlaneKind::Uring, true);
}

/// With `--connect-latched`: a latched strict flow's socket is connected (the kernel refuses
/// other sources), media flows both ways on connected sockets, a re-INVITE that moves a peer
/// behind NAT opens learning again (the socket takes the new source, which is relayed, counted
/// and learnt, then connected to after the window), and a re-INVITE to a new target works.
fn connected_sockets_keep_latching_semantics_on(plane: PlaneKind, fixed_files: bool) {
    let (etx, erx) = crossbeam_channel::unbounded();
    let w = Workers::spawn(WorkersConfig {
        workers: 1,
        cpus: None,
        plane,
        clock: Clock::new(),
        events: etx,
        offload: None,
        xsks: Vec::new(),
        policy: permissive(),
        tuning: SocketTuning {
            connect_latched: true,
            uring_fixed_files: fixed_files,
        },
        dtls: None,
    })
    .expect("spawn");
    let (ca, ca_c, cb, cb_c) = (client(), client(), client(), client());
    let (a, b) = open_call(&w, 0, (addr(&ca), addr(&ca_c)), (addr(&cb), addr(&cb_c)));
    let to_a = SocketAddr::new(LO, a.port);
    let to_b = SocketAddr::new(LO, b.port);

    // Both peers send from their SDP address: latched at once, then connected.
    ca.send_to(&rtp(1, 1), to_a).expect("send");
    assert!(recv(&cb, Duration::from_secs(2)).is_some());
    cb.send_to(&rtp(1, 2), to_b).expect("send");
    assert!(recv(&ca, Duration::from_secs(2)).is_some());
    // Both ways on the connected sockets, byte-identical, from the relay's ports.
    for seq in 2..6u16 {
        let p = rtp(seq, 1);
        ca.send_to(&p, to_a).expect("send");
        assert_eq!(recv(&cb, Duration::from_secs(2)), Some((p, to_b)));
        let p = rtp(seq, 2);
        cb.send_to(&p, to_b).expect("send");
        assert_eq!(recv(&ca, Duration::from_secs(2)), Some((p, to_a)));
    }

    // Strict source: the kernel refuses an injector on the connected socket; nothing reaches
    // the callee.
    let evil = client();
    assert!(kernel_refuses(&evil, to_a), "A's socket is connected");
    assert!(recv(&cb, Duration::from_millis(100)).is_none());
    assert_eq!(a.rtp.packets.load(Relaxed), 5);
    // The kernel dropped them: the latch never saw them (a probe that raced the connect in
    // the steps below may still reach a latch, which refuses it as before).
    assert_eq!(a.rtp.errors.load(Relaxed), 0);

    // The caller moves behind a NAT (re-INVITE: its SDP port is one nobody listens on). Learning
    // starts again: the socket takes the new source, which is relayed, counted and learnt.
    let ca2 = client();
    let sdp_a = SocketAddr::new(LO, 9);
    w.send(
        0,
        FlowUpdate::Update {
            crypto: FlowCrypto::default(),
            id: FlowId(1),
            kind: FlowKind::Rtp,
            egress: Some(FlowId(2)),
            rtcp_egress: None,
            latch: latch(sdp_a),
            record: None,
        },
    );
    std::thread::sleep(Duration::from_millis(30));
    let p = rtp(100, 3);
    ca2.send_to(&p, to_a).expect("send");
    assert_eq!(
        recv(&cb, Duration::from_secs(2)).map(|x| x.0),
        Some(p),
        "the new source is heard while learning"
    );
    eventually("new source counted", || a.rtp.packets.load(Relaxed) == 6);
    match erx.recv_timeout(Duration::from_secs(2)) {
        Ok(FlowEvent::Learned { id, addr: learned }) => {
            assert_eq!((id, learned), (FlowId(1), addr(&ca2)));
        }
        other => panic!("expected a Learned event, got {other:?}"),
    }
    // The callee's media follows the new source.
    let p = rtp(100, 4);
    cb.send_to(&p, to_b).expect("send");
    assert_eq!(recv(&ca2, Duration::from_secs(2)), Some((p, to_a)));
    // After the window (200 ms) the new source is fixed and connected to: the old address is
    // refused by the kernel now.
    std::thread::sleep(Duration::from_millis(250));
    ca2.send_to(&rtp(101, 3), to_a).expect("send");
    assert!(recv(&cb, Duration::from_secs(2)).is_some());
    eventually("connected to the new source", || kernel_refuses(&ca, to_a));
    assert!(recv(&cb, Duration::from_millis(100)).is_none());

    // A re-INVITE sends the callee's side to a new address: media goes there, and its answer
    // comes back in (the socket left its old peer at once).
    let cb2 = client();
    w.send(
        0,
        FlowUpdate::Update {
            crypto: FlowCrypto::default(),
            id: FlowId(2),
            kind: FlowKind::Rtp,
            egress: Some(FlowId(1)),
            rtcp_egress: None,
            latch: latch(addr(&cb2)),
            record: None,
        },
    );
    std::thread::sleep(Duration::from_millis(30));
    let p = rtp(200, 3);
    ca2.send_to(&p, to_a).expect("send");
    assert_eq!(recv(&cb2, Duration::from_secs(2)), Some((p, to_b)));
    let p = rtp(200, 5);
    cb2.send_to(&p, to_b).expect("send");
    assert_eq!(recv(&ca2, Duration::from_secs(2)), Some((p, to_a)));
    eventually("B connected to its new peer", || kernel_refuses(&cb, to_b));
    w.shutdown();
}

mod dtls;
mod srtp;
