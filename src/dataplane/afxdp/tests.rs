//! The AF_XDP plane's frame path and hand-offs, with no AF_XDP socket: frames are made up and
//! fed in, and a stand-in forwarder forwards everything.

use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::frames::Frames;
use super::handoff::HANDOFF_MAX;
use super::plane::{Arrival, Pending};
use super::*;
use crate::dataplane::mmsg::{MmsgPlane, Readiness};
use crate::dataplane::{Batch, FlowSocket, Forwarder, Plane, TOKEN_MAX};
use crate::flow::StreamCounters;
use crate::sys::eventfd::EventFd;
use crate::sys::xsk::Verdict;

/// Two workers' AF_XDP parts with hand-off queues and no sockets, and the port owner table
/// they share.
fn two_with_owners() -> (Vec<XskState>, Arc<PortOwners>) {
    let wakes: Vec<_> = (0..2)
        .map(|_| Arc::new(EventFd::new().expect("eventfd")))
        .collect();
    let owners = Arc::new(PortOwners::default());
    let states = deal(Vec::new(), &wakes, Some(&owners))
        .into_iter()
        .map(|(x, _)| x)
        .collect();
    (states, owners)
}

fn two() -> Vec<XskState> {
    two_with_owners().0
}

/// The plane a worker would run with `xsk`.
fn plane(xsk: XskState) -> AfxdpPlane {
    let wake = Arc::new(EventFd::new().expect("eventfd"));
    AfxdpPlane::new(
        MmsgPlane::new(Readiness::new(&wake).expect("epoll"), 32),
        xsk,
    )
}

/// Forwards every packet out of `via` to `dst`.
struct ForwardAll {
    via: RawFd,
    dst: SocketAddr,
    seen: usize,
}

impl Forwarder for ForwardAll {
    fn forward_run<B: Batch + ?Sized>(&mut self, token: u64, idx: Range<usize>, b: &mut B) {
        for i in idx {
            self.seen += 1;
            b.forward(i, self.via, self.dst, token);
        }
    }

    fn recv_failed(&mut self, _token: u64, _error: &std::io::Error) {}
}

fn register(p: &mut AfxdpPlane, token: u64, s: &UdpSocket, c: &Arc<StreamCounters>) {
    p.register(FlowSocket {
        token,
        fd: s.as_raw_fd(),
        local: s.local_addr().ok(),
        counters: c,
    })
    .expect("register");
}

#[test]
fn a_forwarded_frame_that_cannot_be_sent_counts_as_dropped() {
    let mut states = two();
    let mut sender = states.pop().expect("worker 1");
    let mut p = plane(states.pop().expect("worker 0"));
    let flow = Arc::new(StreamCounters::default());
    // Worker 1 asks worker 0 to send a frame out of a device worker 0 has no socket on.
    let h = sender.handoff.as_mut().expect("hand-off");
    h.hand(0, 7, b"frame", Some(flow.clone()), &sender.counters);
    let mut fwd = ForwardAll {
        via: -1,
        dst: "10.9.0.3:5000".parse().expect("addr"),
        seen: 0,
    };
    p.pass(&mut fwd);
    assert_eq!(flow.dropped.load(Relaxed), 1);
    assert_eq!(fwd.seen, 0, "a frame to transmit is not forwarded again");
    // A copy for a socket that cannot take it (here: none at that index).
    p.xsk.pending.push(Pending {
        socket: 3,
        frame: b"frame".to_vec(),
        counters: flow.clone(),
    });
    p.xsk.finish_pass();
    assert_eq!(flow.dropped.load(Relaxed), 2);
    assert_eq!(p.xsk.counters.tx_dropped.load(Relaxed), 2);
    assert_eq!(p.xsk.counters.transmitted.load(Relaxed), 0);
}

/// The next hop towards a peer never comes from received frames, not even ones the flow
/// accepts (a forger with the peer's address and port passes strict source): its MACs must
/// never become the way to the peer.
#[test]
fn frames_never_teach_a_next_hop() {
    use crate::wire::frame::tests::{frame, A};

    let mut states = two();
    states.truncate(1);
    let mut p = plane(states.pop().expect("worker 0"));
    let peer: SocketAddr = "10.9.0.2:4000".parse().expect("addr");
    let callee: SocketAddr = "10.9.0.3:5000".parse().expect("addr");
    let (a, b) = (
        UdpSocket::bind("127.0.0.1:0").expect("bind"),
        UdpSocket::bind("127.0.0.1:0").expect("bind"),
    );
    let local = a.local_addr().expect("local");
    let (ca, cb) = (Arc::default(), Arc::default());
    register(&mut p, 1, &a, &ca);
    register(&mut p, 2, &b, &cb);
    let mut fwd = ForwardAll {
        via: b.as_raw_fd(),
        dst: callee,
        seen: 0,
    };
    let rtp = [0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xff, 0xff];
    let arrival = Arrival {
        ifindex: 7,
        socket: None,
        handed: false,
        keep: false,
    };
    let mut good = frame(peer, local, &rtp);
    p.xsk.frame(&mut good, arrival, &mut fwd, &mut p.mmsg.io);
    // The exact address and port, another MAC.
    let mut forged = frame(peer, local, &rtp);
    forged[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x66]);
    p.xsk.frame(&mut forged, arrival, &mut fwd, &mut p.mmsg.io);
    assert_eq!(fwd.seen, 2, "both frames reached their flow");
    let taught: Vec<[u8; 6]> = p
        .xsk
        .hops
        .known
        .values()
        .filter_map(|(h, _)| h.map(|h| h.peer_mac))
        .collect();
    assert!(
        !taught.contains(&A) && !taught.contains(&[2, 0, 0, 0, 0, 0x66]),
        "a frame's MAC became a next hop: {taught:?}"
    );
}

#[test]
fn a_transmit_hand_off_to_a_full_queue_counts_as_the_flows_drop() {
    let mut states = two();
    let mut sender = states.pop().expect("worker 1");
    let flow = Arc::new(StreamCounters::default());
    let c = sender.counters.clone();
    let h = sender.handoff.as_mut().expect("hand-off");
    for _ in 0..HANDOFF_MAX {
        h.hand(0, 7, b"f", None, &c);
    }
    h.hand(0, 7, b"f", Some(flow.clone()), &c);
    assert_eq!(c.handoff_dropped.load(Relaxed), 1);
    assert_eq!(flow.dropped.load(Relaxed), 1);
}

#[test]
fn a_refused_open_leaves_its_port_ownerless() {
    let (mut states, owners) = two_with_owners();
    states.truncate(1);
    let mut p = plane(states.pop().expect("worker 0"));
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let local = socket.local_addr().expect("local");
    owners.set(local, 0); // as the control thread does before sending the Open
    let refused = p.register(FlowSocket {
        token: TOKEN_MAX + 1, // reserved: refused
        fd: socket.as_raw_fd(),
        local: Some(local),
        counters: &Arc::default(),
    });
    assert!(refused.is_err());
    assert_eq!(owners.owner(local), None);
}

/// Frames in plain buffers standing in for an AF_XDP socket's batch, with the verdicts the
/// plane gives them.
struct FakeBatch {
    frames: Vec<Vec<u8>>,
    verdicts: Vec<Verdict>,
}

impl Frames for FakeBatch {
    fn len(&self) -> usize {
        self.frames.len()
    }
    fn frame(&self, i: usize) -> Option<&[u8]> {
        self.frames.get(i).map(|f| &f[..])
    }
    fn frame_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        self.frames.get_mut(i).map(|f| &mut f[..])
    }
    fn set_verdict(&mut self, i: usize, verdict: Verdict) {
        self.verdicts[i] = verdict;
    }
}

/// Forwards every packet but those saying "drop" out of `via`, flow 1's to `dst1` and the
/// others' to `dst2`, and records each call (flow, packets).
struct Runs {
    via: RawFd,
    dst1: SocketAddr,
    dst2: SocketAddr,
    calls: Vec<(u64, usize)>,
}

impl Forwarder for Runs {
    fn forward_run<B: Batch + ?Sized>(&mut self, token: u64, idx: Range<usize>, b: &mut B) {
        self.calls.push((token, idx.len()));
        for i in idx {
            let Some((pkt, _)) = b.packet(i) else {
                continue;
            };
            if pkt != b"drop" {
                let dst = if token == 1 { self.dst1 } else { self.dst2 };
                b.forward(i, self.via, dst, token);
            }
        }
    }

    fn recv_failed(&mut self, _token: u64, _error: &std::io::Error) {}
}

/// A batch of frames goes to the forwarder one run of one flow at a time (frames that go to
/// no flow do not break a run), and each frame gets its own verdict: transmitted in place
/// (rewritten for the next hop) when it leaves by the socket it came in on, recycled when the
/// flow dropped it, it was no UDP, or it leaves by another socket (a copy is queued there).
#[test]
fn a_batch_is_forwarded_in_runs_and_each_frame_gets_its_verdict() {
    use super::hops::Hop;
    use crate::time::Millis;
    use crate::wire::frame::{self, tests::frame};

    let wake = Arc::new(EventFd::new().expect("eventfd"));
    let (xsk, _) = deal(Vec::new(), &[wake], None).pop().expect("worker 0");
    let mut p = plane(xsk);
    let peer: SocketAddr = "10.9.0.2:4000".parse().expect("addr");
    let (callee, other) = (
        "10.9.0.3:5000".parse().expect("addr"),
        "10.8.0.3:5000".parse().expect("addr"),
    );
    let (a, b) = (
        UdpSocket::bind("127.0.0.1:0").expect("bind"),
        UdpSocket::bind("127.0.0.1:0").expect("bind"),
    );
    let (la, lb) = (
        a.local_addr().expect("local"),
        b.local_addr().expect("local"),
    );
    let (ca, cb) = (Arc::default(), Arc::default());
    register(&mut p, 1, &a, &ca);
    register(&mut p, 2, &b, &cb);
    // Socket 0 on device 7 (where the callee is), socket 1 on device 8 (the other).
    p.xsk.devices = vec![7, 8];
    let (ours, theirs) = ([2, 0, 0, 0, 7, 1], [2, 0, 0, 0, 7, 2]);
    for (to, ifindex) in [(callee, 7), (other, 8)] {
        let hop = Hop {
            peer_mac: theirs,
            our_mac: ours,
            ifindex,
        };
        let key = (lb.ip(), SocketAddr::ip(&to));
        p.xsk.hops.known.insert(key, (Some(hop), Millis(u64::MAX)));
    }
    let frames: Vec<Vec<u8>> = vec![
        frame(peer, la, b"0"),
        frame(peer, la, b"1"),
        frame(peer, la, b"drop"),
        b"not a frame".to_vec(),
        frame(peer, la, b"3"),
        frame(peer, lb, b"4"),
        frame(peer, lb, b"5"),
        frame(peer, la, b"6"),
    ];
    let mut batch = FakeBatch {
        verdicts: vec![Verdict::Recycle; frames.len()],
        frames,
    };
    let mut fwd = Runs {
        via: b.as_raw_fd(),
        dst1: callee,
        dst2: other,
        calls: Vec::new(),
    };
    p.xsk
        .forward_batch(0, 7, &mut batch, &mut fwd, &mut p.mmsg.io);

    assert_eq!(fwd.calls, vec![(1, 4), (2, 2), (1, 1)], "one call per run");
    use Verdict::{Recycle as R, Transmit as T};
    assert_eq!(batch.verdicts, vec![T, T, R, R, T, R, R, T]);
    for i in [0, 1, 4, 7] {
        let f = frame::parse(&batch.frames[i]).expect("still a frame");
        assert_eq!(
            (f.src, f.dst, f.dst_mac, f.src_mac),
            (lb, callee, theirs, ours)
        );
    }
    // Flow 2's frames leave by socket 1: rewritten copies queued for it.
    let queued: Vec<(usize, SocketAddr)> = p
        .xsk
        .pending
        .iter()
        .map(|q| (q.socket, frame::parse(&q.frame).expect("frame").dst))
        .collect();
    assert_eq!(queued, vec![(1, other), (1, other)]);
    assert_eq!(p.xsk.counters.transmitted.load(Relaxed), 4);
    assert_eq!(ca.dropped.load(Relaxed) + cb.dropped.load(Relaxed), 0);
}

/// Grows every packet it is given writable by a trailer (as SRTP protect does) and forwards
/// it out of `via` to `dst`.
struct Grow {
    via: RawFd,
    dst: SocketAddr,
}

impl Forwarder for Grow {
    fn forward_run<B: Batch + ?Sized>(&mut self, token: u64, idx: Range<usize>, b: &mut B) {
        for i in idx {
            let Some((buf, len, _)) = b.packet_mut(i) else {
                continue;
            };
            let Some(tail) = buf.get_mut(len..len + 10) else {
                continue;
            };
            tail.copy_from_slice(b"0123456789");
            b.set_len(i, len + 10);
            b.forward(i, self.via, self.dst, token);
        }
    }

    fn recv_failed(&mut self, _token: u64, _error: &std::io::Error) {}
}

/// A payload SRTP rewrote (longer than its frame) is not sent in place: the rewritten copy
/// goes out through the socket layer, and the frame is let go.
#[test]
fn a_rewritten_payload_goes_out_through_the_socket_layer() {
    use crate::wire::frame::tests::frame;

    let wake = Arc::new(EventFd::new().expect("eventfd"));
    let (xsk, _) = deal(Vec::new(), &[wake], None).pop().expect("worker 0");
    let mut p = plane(xsk);
    let peer: SocketAddr = "10.9.0.2:4000".parse().expect("addr");
    let (a, b, callee) = (
        UdpSocket::bind("127.0.0.1:0").expect("bind"),
        UdpSocket::bind("127.0.0.1:0").expect("bind"),
        UdpSocket::bind("127.0.0.1:0").expect("bind"),
    );
    callee
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .expect("timeout");
    let (ca, cb) = (Arc::default(), Arc::default());
    register(&mut p, 1, &a, &ca);
    register(&mut p, 2, &b, &cb);
    let la = a.local_addr().expect("local");
    let frames = vec![frame(peer, la, b"abc"), frame(peer, la, b"defg")];
    let mut batch = FakeBatch {
        verdicts: vec![Verdict::Recycle; frames.len()],
        frames,
    };
    let mut fwd = Grow {
        via: b.as_raw_fd(),
        dst: callee.local_addr().expect("local"),
    };
    p.xsk
        .forward_batch(0, 7, &mut batch, &mut fwd, &mut p.mmsg.io);
    assert_eq!(batch.verdicts, vec![Verdict::Recycle, Verdict::Recycle]);
    assert_eq!(p.flush(&mut |_| {}), 2);
    let mut buf = [0u8; 64];
    for want in [&b"abc0123456789"[..], b"defg0123456789"] {
        let (n, from) = callee.recv_from(&mut buf).expect("the rewritten copy");
        assert_eq!((&buf[..n], from), (want, b.local_addr().expect("local")));
    }
}
