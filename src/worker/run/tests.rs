//! The worker loop on the loopback plane (no packets through sockets, the real flow table),
//! and the wake's ordering on the epoll plane.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;

use super::*;
use crate::dataplane::loopback::{LoopbackPlane, Sent};
use crate::dataplane::PlaneKind;
use crate::flow::latch::{EndpointLearning, LatchConfig};
use crate::flow::{FlowCrypto, FlowId, FlowKind, StreamCounters};

/// A worker with no flows, its update queue, and nothing started.
pub(in crate::worker) fn idle_worker() -> (Worker, Sender<Vec<FlowUpdate>>) {
    idle_worker_with_events().0
}

/// As [`idle_worker`], with the queue of the events it reports.
fn idle_worker_with_events() -> ((Worker, Sender<Vec<FlowUpdate>>), Receiver<FlowEvent>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (etx, erx) = crossbeam_channel::unbounded();
    let w = Worker::new(WorkerConfig {
        index: 0,
        wake: Arc::new(EventFd::new().expect("eventfd")),
        updates: rx,
        clock: Clock::new(),
        events: etx,
        stop: Arc::new(AtomicBool::new(false)),
        offload: None,
        userspace: Arc::new(AtomicU64::new(0)),
        guard: Guard {
            srtp: Arc::default(),
            handshakes: Arc::default(),
            policy: crate::guard::share(crate::guard::TargetPolicy::permissive()),
            refused: Arc::default(),
            health: Arc::default(),
        },
        connect: false,
        dtls: None,
    });
    ((w, tx), erx)
}

/// What [`Worker::run`] needs to start `plane` for `w`.
pub(in crate::worker) fn plane_start(plane: PlaneKind, w: &Worker) -> PlaneStart {
    let ready = Readiness::new(&w.wake).expect("epoll");
    match plane {
        PlaneKind::Mmsg => PlaneStart::Mmsg(ready),
        PlaneKind::Uring => PlaneStart::Uring(ready, false),
    }
}

#[test]
fn a_wake_posted_after_the_queues_were_read_is_kept() {
    let (mut w, tx) = idle_worker();
    let mut plane = MmsgPlane::new(Readiness::new(&w.wake).expect("epoll"), BATCH);
    w.wake.notify();
    let woke = plane.wait(0).expect("wait");
    w.begin_pass(&mut plane, woke);
    // Another thread queues an update once the queues were read, before the ready fds are
    // serviced: its wake must end the next wait.
    tx.send(Vec::new()).expect("send");
    w.wake.notify();
    w.finish_pass(&mut plane);
    assert!(plane.wait(0).expect("wait"), "the wake is kept");
    // And once taken, the wake is gone.
    w.pass(&mut plane, true);
    assert!(!plane.wait(0).expect("wait"));
}

const PEER_A: &str = "198.51.100.3:2000";
const PEER_B: &str = "203.0.113.9:4000";

fn a(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn rtp(seq: u8) -> Vec<u8> {
    vec![0x80, 0, 0, seq, 0, 0, 0, 1, 0, 0, 0, 9, 0xab, 0xcd]
}

/// A socket to stand for a flow's: the loopback plane never sends or receives through it.
fn handle() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind")
}

/// Open flow 1 (A's side) and flow 2 (B's side), strict, each forwarding to the other's peer.
/// Returns both flows' counters and socket fds.
fn open_call(
    tx: &Sender<Vec<FlowUpdate>>,
) -> ((Arc<StreamCounters>, i32), (Arc<StreamCounters>, i32)) {
    let open = |id: u64, egress: u64, peer: &str| {
        let socket = handle();
        let fd = socket.as_raw_fd();
        let counters = Arc::new(StreamCounters::default());
        let update = FlowUpdate::Open {
            crypto: FlowCrypto::default(),
            id: FlowId(id),
            kind: FlowKind::Rtp,
            socket,
            egress: Some(FlowId(egress)),
            rtcp_egress: None,
            latch: LatchConfig {
                expected: Some(a(peer)),
                learning: EndpointLearning::Off,
                strict: true,
                ..LatchConfig::default()
            },
            counters: counters.clone(),
            record: None,
        };
        (update, (counters, fd))
    };
    let (u1, f1) = open(1, 2, PEER_A);
    let (u2, f2) = open(2, 1, PEER_B);
    tx.send(vec![u1, u2]).expect("send");
    (f1, f2)
}

#[test]
fn the_loop_forwards_both_ways_out_of_the_egress_flows_socket() {
    let (mut w, tx) = idle_worker();
    let mut plane = LoopbackPlane::default();
    let ((_, fd1), (_, fd2)) = open_call(&tx);
    w.pass(&mut plane, true);
    assert!(plane.is_registered(1) && plane.is_registered(2));
    plane.arrive(1, &rtp(1), a(PEER_A));
    plane.arrive(1, &rtp(2), a(PEER_A));
    plane.arrive(2, &rtp(3), a(PEER_B));
    w.pass(&mut plane, false);
    let sent = plane.take_sent();
    let to = |sock, dst: &str, seq, tag| Sent {
        sock,
        dst: a(dst),
        data: rtp(seq),
        tag,
    };
    assert_eq!(
        sent,
        vec![
            to(fd2, PEER_B, 1, 1),
            to(fd2, PEER_B, 2, 1),
            to(fd1, PEER_A, 3, 2),
        ]
    );
    // Closed: deregistered, and its packets go nowhere.
    tx.send(vec![FlowUpdate::Close { id: FlowId(1) }])
        .expect("send");
    w.pass(&mut plane, true);
    assert!(!plane.is_registered(1));
    plane.arrive(2, &rtp(4), a(PEER_B));
    w.pass(&mut plane, false);
    assert!(plane.take_sent().is_empty(), "no egress flow any more");
}

#[test]
fn the_loop_drops_a_source_the_latch_refuses() {
    let (mut w, tx) = idle_worker();
    let mut plane = LoopbackPlane::default();
    let ((c1, _), _) = open_call(&tx);
    w.pass(&mut plane, true);
    plane.arrive(1, &rtp(1), a("198.51.100.66:2000"));
    w.pass(&mut plane, false);
    assert!(plane.take_sent().is_empty());
    assert_eq!(c1.errors.load(Relaxed), 1);
    assert_eq!(c1.packets.load(Relaxed), 0);
    assert_eq!(w.userspace.load(Relaxed), 0);
}

#[test]
fn the_loop_counts_accepted_unsent_and_unknown() {
    let ((mut w, tx), events) = idle_worker_with_events();
    let mut plane = LoopbackPlane::default();
    let ((c1, _), (c2, _)) = open_call(&tx);
    w.pass(&mut plane, true);
    plane.arrive(1, &rtp(1), a(PEER_A));
    plane.arrive(1, &[0x80], a(PEER_A)); // too short for RTP
    plane.arrive(9, &rtp(1), a(PEER_A)); // no such flow
    w.pass(&mut plane, false);
    plane.refuse_sends(true);
    plane.arrive(2, &rtp(2), a(PEER_B));
    w.pass(&mut plane, false);
    assert_eq!(plane.take_sent().len(), 1);
    assert_eq!(
        (
            c1.packets.load(Relaxed),
            c1.errors.load(Relaxed),
            c1.dropped.load(Relaxed)
        ),
        (1, 1, 0)
    );
    assert_eq!(
        (
            c2.packets.load(Relaxed),
            c2.errors.load(Relaxed),
            c2.dropped.load(Relaxed)
        ),
        (1, 0, 1)
    );
    assert_eq!(w.userspace.load(Relaxed), 2);
    assert!(c1.last_packet_ms.load(Relaxed) > 0);
    // Peers at their SDP addresses: nothing learned to report.
    assert!(events.try_recv().is_err());
}

#[test]
fn the_loop_survives_a_panic_with_its_flows() {
    let (mut w, tx) = idle_worker();
    w.fault_inject = true;
    let health = w.guard.health.clone();
    let stop = w.stop.clone();
    let _ = open_call(&tx);
    let mut plane = LoopbackPlane::default();
    plane.woken = true;
    plane.arrive(1, super::FAULT_PANIC, a(PEER_A));
    // The loop's own body, as `run_on` runs it.
    let pass = catch_unwind(AssertUnwindSafe(|| w.pass(&mut plane, true)));
    assert!(pass.is_err());
    let mut none = std::iter::empty();
    plane.reset(&mut none).expect("reset");
    assert!(w.recover());
    assert_eq!(health.panics(), 1);
    plane.arrive(1, &rtp(1), a(PEER_A));
    w.pass(&mut plane, false);
    assert_eq!(plane.take_sent().len(), 1, "the flows survived");
    stop.store(true, std::sync::atomic::Ordering::Release);
}

#[test]
fn a_flow_the_plane_refuses_is_not_opened() {
    let (mut w, tx) = idle_worker();
    let mut plane = LoopbackPlane::default();
    let open = FlowUpdate::Open {
        crypto: FlowCrypto::default(),
        id: FlowId(crate::dataplane::TOKEN_MAX + 1), // reserved: refused
        kind: FlowKind::Rtp,
        socket: handle(),
        egress: None,
        rtcp_egress: None,
        latch: LatchConfig::default(),
        counters: Arc::default(),
        record: None,
    };
    tx.send(vec![open]).expect("send");
    w.pass(&mut plane, true);
    assert!(w.flows.is_empty());
}

#[test]
fn the_loop_counts_what_a_faulty_plane_loses_or_cannot_send() {
    use crate::dataplane::fault::{FaultPlane, Faults};
    let (mut w, tx) = idle_worker();
    let faults = Faults {
        lose_every: 2,
        refuse_every: 3,
    };
    let mut plane = FaultPlane::new(LoopbackPlane::default(), faults);
    let ((c1, _), _) = open_call(&tx);
    w.pass(&mut plane, true);
    for seq in 0..8 {
        plane.inner.arrive(1, &rtp(seq), a(PEER_A));
    }
    w.pass(&mut plane, false);
    // Packets 2, 4, 6, 8 arrive unusable; of the four forwards, the third is refused.
    assert_eq!(c1.errors.load(Relaxed), 4);
    assert_eq!(c1.packets.load(Relaxed), 4);
    assert_eq!(c1.dropped.load(Relaxed), 1);
    let sent: Vec<Vec<u8>> = plane
        .inner
        .take_sent()
        .into_iter()
        .map(|s| s.data)
        .collect();
    assert_eq!(sent, vec![rtp(0), rtp(2), rtp(6)]);
}
