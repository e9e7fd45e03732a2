//! The AF_XDP path of a worker: frames the XDP program redirected to an AF_XDP socket (packets to
//! the relay's ports that the kernel does not forward itself: streams still learning, recorded
//! streams, unknown next hops) go through the same per-packet logic as socket packets
//! ([`Worker::forward_run`]), and are rewritten in place and sent back out of the socket, with
//! no trip through the socket layer. A frame whose next hop is unknown, or that must leave by
//! a device this worker has no socket on, is sent through the flow's UDP socket instead.
//!
//! Each worker owns the sockets of some rx queues, but the device's RSS, not the call's
//! sharding, picks a frame's queue: a frame for another worker's flow is copied into that
//! worker's bounded hand-off queue ([`PortOwners`] names the owner), and the owner forwards it
//! like its own and sends it from one of its own sockets (transmission does not depend on the
//! rx queue). A full queue drops the frame and counts it. With more workers than queues, a
//! worker without a socket on the device hands the rewritten frame to one with a socket there,
//! which only transmits it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::owners::{unspecified, PortOwners};
use super::run::Worker;
use crate::dataplane::Batch;
use crate::flow::StreamCounters;
use crate::sys::eventfd::EventFd;
use crate::sys::xsk::{XskSocket, XskStats};
use crate::time::Millis;
use crate::wire::frame;

/// Frames taken from a socket per readiness event.
const FRAMES_PER_PASS: u32 = 64;
/// Next hops remembered; the table starts over when full (it refills from the kernel's tables).
const NEIGH_MAX: usize = 65536;
/// How long a next hop from the kernel's tables is used before it is looked up again (a peer's
/// MAC changes, a route moves)...
const HOP_TTL_MS: u64 = 1000;
/// ...and how long "no hop" is (the stack resolves the neighbour meanwhile, for the packets
/// the flow's socket sends).
const NO_HOP_TTL_MS: u64 = 100;
/// Frames kept for a flow not opened yet (see [`XskState::early`]).
const EARLY_MAX: usize = 256;
/// How often a worker reads its sockets' kernel counters.
const KERNEL_STATS_MS: u64 = 1000;
/// Frames a worker's hand-off queue holds: a few passes of every other worker's sockets.
pub(super) const HANDOFF_MAX: usize = 4096;

/// A peer's next hop, from the kernel's routing and neighbour tables (never from the MACs of a
/// received frame: anyone on the link can forge those, even with the peer's address and port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    peer_mac: [u8; 6],
    our_mac: [u8; 6],
    /// The device to send it out of.
    ifindex: u32,
}

/// Next hops by (relay address, peer address), each until a time; `None` = not known yet.
#[derive(Default)]
struct Hops {
    tables: Option<crate::sys::xdp::Neighbours>,
    /// The tables could not be opened: do not try again for every frame.
    unavailable: bool,
    known: HashMap<(IpAddr, IpAddr), (Option<Hop>, Millis)>,
}

impl Hops {
    /// The next hop from `src` to `dst` at `now`, looked up in the kernel's tables when the one
    /// remembered is too old.
    fn get(&mut self, src: IpAddr, dst: IpAddr, now: Millis) -> Option<Hop> {
        let key = (src.to_canonical(), dst.to_canonical());
        if let Some((hop, until)) = self.known.get(&key) {
            if now.0 < until.0 {
                return *hop;
            }
        }
        if self.tables.is_none() && !self.unavailable {
            match crate::sys::xdp::Neighbours::open() {
                Ok(t) => self.tables = Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "AF_XDP: cannot read the kernel's neighbour table; the flows' sockets send instead");
                    self.unavailable = true;
                }
            }
        }
        let hop = self
            .tables
            .as_mut()
            .and_then(|t| t.hop(key.0, key.1))
            .map(|h| Hop {
                peer_mac: h.peer_mac,
                our_mac: h.our_mac,
                ifindex: h.ifindex,
            });
        if self.known.len() >= NEIGH_MAX {
            self.known.clear();
        }
        let ttl = if hop.is_some() {
            HOP_TTL_MS
        } else {
            NO_HOP_TTL_MS
        };
        self.known
            .insert(key, (hop, Millis(now.0.saturating_add(ttl))));
        hop
    }
}

/// One worker's AF_XDP counters, summed over the workers on read.
#[derive(Debug, Default)]
pub struct XskCounters {
    /// Frames sent out of an AF_XDP socket (the rest of what was forwarded went through the
    /// flow's UDP socket).
    pub transmitted: AtomicU64,
    /// Frames handed to the worker owning their flow, or to one with a socket on the device.
    pub handed_off: AtomicU64,
    /// Frames dropped because that worker's hand-off queue was full.
    pub handoff_dropped: AtomicU64,
    /// Frames dropped because no flow of this worker had their port, even on the retry.
    pub unmatched: AtomicU64,
    /// Frames forwarded (the flow accepted them) that could not be sent: no free frame or tx
    /// slot, no socket on the device, the egress flow gone. Also counted as the flow's drops.
    pub tx_dropped: AtomicU64,
    /// The kernel's drop counters of this worker's sockets, summed, as last read.
    pub kernel: [AtomicU64; 4],
}

impl XskCounters {
    /// The kernel's counters as last read by the worker.
    pub fn kernel(&self) -> XskStats {
        let [a, b, c, d] = self.kernel.each_ref().map(|v| v.load(Relaxed));
        XskStats {
            rx_dropped: a,
            rx_ring_full: b,
            rx_fill_ring_empty_descs: c,
            tx_invalid_descs: d,
        }
    }
}

/// A copy of a frame received by another worker for one of this worker's flows, or (with
/// `transmit`) one forwarded by a worker without a socket on the device, to send as it is.
pub(super) struct Handed {
    ifindex: u32,
    frame: Vec<u8>,
    /// `Some` (the counters of the flow that forwarded it) for a frame to send as it is.
    transmit: Option<Arc<StreamCounters>>,
}

/// A rewritten copy to send from socket `socket`, for the flow that forwarded it.
pub(super) struct Pending {
    socket: usize,
    frame: Vec<u8>,
    counters: Arc<StreamCounters>,
}

/// What a worker needs to hand frames to the others and take theirs.
pub(super) struct Handoff {
    owners: Arc<PortOwners>,
    /// Every worker's hand-off queue and wake, by worker index.
    peers: Vec<(Sender<Handed>, Arc<EventFd>)>,
    inbox: Receiver<Handed>,
    /// For each device (ifindex), a worker with an AF_XDP socket on it, to transmit for the
    /// workers with none (more workers than queues).
    transmitters: Arc<[(u32, usize)]>,
    /// Workers handed a frame during this pass: woken once, at its end.
    to_wake: Vec<bool>,
}

/// Each worker's AF_XDP state and counters, for workers woken by `wakes`: socket `j` goes to
/// worker `j % n`; with `owners` (several workers), every worker gets a hand-off queue.
pub(super) fn deal(
    xsks: Vec<XskSocket>,
    wakes: &[Arc<EventFd>],
    owners: Option<&Arc<PortOwners>>,
) -> Vec<(XskState, Arc<XskCounters>)> {
    let n = wakes.len().max(1);
    let mut sockets: Vec<Vec<XskSocket>> = (0..n).map(|_| Vec::new()).collect();
    let mut transmitters: Vec<(u32, usize)> = Vec::new();
    for (j, x) in xsks.into_iter().enumerate() {
        if !transmitters.iter().any(|t| t.0 == x.ifindex()) {
            transmitters.push((x.ifindex(), j % n));
        }
        sockets[j % n].push(x);
    }
    let transmitters: Arc<[(u32, usize)]> = transmitters.into();
    // Queues only where they serve: each is allocated in full up front.
    let (queues, mut inboxes): (Vec<_>, Vec<_>) = (0..if owners.is_some() { n } else { 0 })
        .map(|_| crossbeam_channel::bounded(HANDOFF_MAX))
        .map(|(tx, rx)| (tx, Some(rx)))
        .unzip();
    inboxes.resize_with(n, || None);
    let peers: Vec<_> = queues.into_iter().zip(wakes.iter().cloned()).collect();
    sockets
        .into_iter()
        .zip(&mut inboxes)
        .map(|(sockets, inbox)| {
            let handoff = owners.zip(inbox.take()).map(|(owners, inbox)| Handoff {
                owners: owners.clone(),
                peers: peers.clone(),
                inbox,
                transmitters: transmitters.clone(),
                to_wake: vec![false; peers.len()],
            });
            let counters = Arc::new(XskCounters::default());
            (XskState::new(sockets, counters.clone(), handoff), counters)
        })
        .collect()
}

impl Handoff {
    /// Queue a copy of `f` for `worker`. A dropped transmit hand-off also counts as its flow's
    /// drop (the flow counted it as forwarded).
    fn hand(
        &mut self,
        worker: usize,
        ifindex: u32,
        f: &[u8],
        transmit: Option<Arc<StreamCounters>>,
        c: &XskCounters,
    ) {
        let handed = Handed {
            ifindex,
            frame: f.to_vec(),
            transmit,
        };
        let sent = match self.peers.get(worker) {
            Some((tx, _)) => tx.try_send(handed).map_err(|e| e.into_inner()),
            None => Err(handed),
        };
        match sent {
            Ok(()) => {
                c.handed_off.fetch_add(1, Relaxed);
                if let Some(w) = self.to_wake.get_mut(worker) {
                    *w = true;
                }
            }
            Err(h) => {
                c.handoff_dropped.fetch_add(1, Relaxed);
                if let Some(fc) = h.transmit {
                    fc.dropped.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

/// A frame copied for a later look (see [`XskState::early`]).
struct Early {
    ifindex: u32,
    frame: Vec<u8>,
    /// It came from another worker: never hand it on again.
    handed: bool,
}

/// One worker's AF_XDP sockets and lookups.
#[derive(Default)]
pub(super) struct XskState {
    /// The plane runs (this worker may own flows whose frames arrive as AF_XDP frames, on its
    /// sockets or handed over, even with no socket of its own).
    on: bool,
    sockets: Vec<XskSocket>,
    /// The device of each socket (the sockets are taken out while one is serviced).
    devices: Vec<u32>,
    /// Relay address:port -> flow, to find a frame's flow.
    by_local: HashMap<SocketAddr, u64>,
    /// Socket fd -> flow, to find the egress flow (and its address) of a forward.
    by_fd: HashMap<RawFd, u64>,
    hops: Hops,
    counters: Arc<XskCounters>,
    /// Copies of frames for ports with no flow yet: a UDP socket keeps what arrives before
    /// its flow is opened, a frame has no such buffer. The flow may be waiting in the update
    /// queue (the NG reply went out before this pass took its updates), so they get one more
    /// look at the start of the next pass, after the updates.
    early: Vec<Early>,
    /// With more than one worker.
    handoff: Option<Handoff>,
    /// Rewritten copies to send from one of the sockets, at the end of the pass.
    pending: Vec<Pending>,
    /// When the sockets' kernel counters were last read.
    stats_read: Option<Millis>,
}

/// Where a frame came from, and what may be done with it.
#[derive(Clone, Copy)]
struct Arrival {
    ifindex: u32,
    /// The socket (of this worker) holding the frame, when it can be sent back in place.
    socket: Option<usize>,
    /// Handed over by another worker.
    handed: bool,
    /// Keep a copy when its flow is not open yet.
    keep: bool,
}

impl XskState {
    fn new(
        sockets: Vec<XskSocket>,
        counters: Arc<XskCounters>,
        handoff: Option<Handoff>,
    ) -> XskState {
        XskState {
            on: !sockets.is_empty() || handoff.is_some(),
            devices: sockets.iter().map(XskSocket::ifindex).collect(),
            sockets,
            counters,
            handoff,
            ..XskState::default()
        }
    }

    pub(super) fn sockets(&self) -> &[XskSocket] {
        &self.sockets
    }

    /// Index an opened flow of worker `worker`.
    pub(super) fn index(&mut self, worker: usize, id: u64, local: Option<SocketAddr>, fd: RawFd) {
        if !self.on {
            return;
        }
        if let Some(l) = local {
            self.by_local.insert(l, id);
            if let Some(h) = &self.handoff {
                h.owners.claim(l, worker);
            }
        }
        self.by_fd.insert(fd, id);
    }

    /// Worker `worker` refused to open a flow on `local`: the port the control thread gave it
    /// is no one's.
    pub(super) fn disown(&self, worker: usize, local: Option<SocketAddr>) {
        if let (Some(l), Some(h)) = (local, &self.handoff) {
            h.owners.clear(l, worker);
        }
    }

    /// Forget a closed flow of worker `worker`.
    pub(super) fn unindex(&mut self, worker: usize, local: Option<SocketAddr>, fd: RawFd) {
        if let Some(l) = local {
            self.by_local.remove(&l);
            if let Some(h) = &self.handoff {
                h.owners.clear(l, worker);
            }
        }
        self.by_fd.remove(&fd);
    }

    /// Once a second, copy the sockets' kernel drop counters (ring full, fill ring empty) where
    /// `/metrics` reads them: the sockets live on this thread.
    pub(super) fn read_kernel_stats(&mut self, now: Millis) {
        if self.sockets.is_empty()
            || self
                .stats_read
                .is_some_and(|t| now.0 < t.0.saturating_add(KERNEL_STATS_MS))
        {
            return;
        }
        self.stats_read = Some(now);
        let mut total = XskStats::default();
        for s in &self.sockets {
            if let Some(st) = s.stats() {
                total += st;
            }
        }
        let k = &self.counters.kernel;
        let values = [
            total.rx_dropped,
            total.rx_ring_full,
            total.rx_fill_ring_empty_descs,
            total.tx_invalid_descs,
        ];
        for (slot, v) in k.iter().zip(values) {
            slot.store(v, Relaxed);
        }
    }

    /// A frame its flow forwarded could not be sent: the flow counts it as dropped.
    fn tx_lost(&self, flow: &StreamCounters) {
        flow.dropped.fetch_add(1, Relaxed);
        self.counters.tx_dropped.fetch_add(1, Relaxed);
    }

    /// The socket to send a frame out of device `ifindex`: `prefer` when it is on that device,
    /// else the first one there.
    fn tx_socket(&self, ifindex: u32, prefer: Option<usize>) -> Option<usize> {
        match prefer {
            Some(k) if self.devices.get(k) == Some(&ifindex) => Some(k),
            _ => self.devices.iter().position(|&d| d == ifindex),
        }
    }
}

/// One frame's payload as the shared forwarding logic sees it; `forward` records the decision.
struct FrameBatch<'a> {
    payload: &'a [u8],
    src: SocketAddr,
    out: Option<(RawFd, SocketAddr)>,
}

impl Batch for FrameBatch<'_> {
    fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        (i == 0).then_some((self.payload, self.src))
    }

    fn forward(&mut self, i: usize, sock: RawFd, dst: SocketAddr, _tag: u64) -> bool {
        if i != 0 {
            return false;
        }
        self.out = Some((sock, dst));
        true
    }
}

impl Worker {
    /// Take what AF_XDP socket `k` received, forward it, and send it on.
    pub(super) fn service_xsk(&mut self, k: usize) {
        let mut sockets = std::mem::take(&mut self.xsk.sockets);
        if let Some(s) = sockets.get_mut(k) {
            let arrival = Arrival {
                ifindex: s.ifindex(),
                socket: Some(k),
                handed: false,
                keep: true,
            };
            s.forward(FRAMES_PER_PASS, |f| match self.xsk_frame(f, arrival) {
                Some((i, _)) if i == k => {
                    self.xsk.counters.transmitted.fetch_add(1, Relaxed);
                    true
                }
                Some((socket, token)) => {
                    if let Some(fl) = self.flows.get(token) {
                        self.xsk.pending.push(Pending {
                            socket,
                            frame: f.to_vec(),
                            counters: fl.counters().clone(),
                        });
                    }
                    false
                }
                None => false,
            });
        }
        self.xsk.sockets = sockets;
        self.finish_xsk_pass();
    }

    /// At the start of a pass, after the flow updates: the frames that arrived before their
    /// flow was opened get one more try; those still without a flow are dropped.
    pub(super) fn retry_early_frames(&mut self) {
        if self.xsk.early.is_empty() {
            return;
        }
        for e in std::mem::take(&mut self.xsk.early) {
            let arrival = Arrival {
                ifindex: e.ifindex,
                socket: None,
                handed: e.handed,
                keep: false,
            };
            self.copied_frame(e.frame, arrival);
        }
        self.finish_xsk_pass();
    }

    /// Forward the frames other workers handed over (at most a queue's worth per pass).
    pub(super) fn take_handed_frames(&mut self) {
        for _ in 0..HANDOFF_MAX {
            let Some(Ok(h)) = self.xsk.handoff.as_ref().map(|h| h.inbox.try_recv()) else {
                break;
            };
            if let Some(counters) = h.transmit {
                match self.xsk.tx_socket(h.ifindex, None) {
                    Some(socket) => self.xsk.pending.push(Pending {
                        socket,
                        frame: h.frame,
                        counters,
                    }),
                    None => self.xsk.tx_lost(&counters),
                }
                continue;
            }
            let arrival = Arrival {
                ifindex: h.ifindex,
                socket: None,
                handed: true,
                keep: true,
            };
            self.copied_frame(h.frame, arrival);
        }
        // The budget ran out with frames left: come back for them without waiting for
        // traffic (their senders' wakes were taken already).
        if self
            .xsk
            .handoff
            .as_ref()
            .is_some_and(|h| !h.inbox.is_empty())
        {
            self.wake.notify();
        }
        self.finish_xsk_pass();
    }

    fn copied_frame(&mut self, mut f: Vec<u8>, arrival: Arrival) {
        if let Some((socket, token)) = self.xsk_frame(&mut f, arrival) {
            if let Some(fl) = self.flows.get(token) {
                self.xsk.pending.push(Pending {
                    socket,
                    frame: f,
                    counters: fl.counters().clone(),
                });
            }
        }
    }

    /// Send the rewritten copies, and wake the workers this pass handed frames to.
    fn finish_xsk_pass(&mut self) {
        let mut pending = std::mem::take(&mut self.xsk.pending);
        for p in pending.drain(..) {
            if self
                .xsk
                .sockets
                .get_mut(p.socket)
                .is_some_and(|s| s.send(&p.frame))
            {
                self.xsk.counters.transmitted.fetch_add(1, Relaxed);
            } else {
                self.xsk.tx_lost(&p.counters);
            }
        }
        self.xsk.pending = pending;
        for s in &mut self.xsk.sockets {
            s.flush();
        }
        if let Some(h) = self.xsk.handoff.as_mut() {
            for (w, wake) in h.to_wake.iter_mut().enumerate() {
                if std::mem::take(wake) {
                    if let Some((_, fd)) = h.peers.get(w) {
                        fd.notify();
                    }
                }
            }
        }
    }

    /// The socket to send the frame from once rewritten (`arrival.socket`: in place), with the
    /// flow that forwarded it, or None when it was handed to another worker, kept for later,
    /// sent through the UDP socket or dropped.
    fn xsk_frame(&mut self, f: &mut [u8], arrival: Arrival) -> Option<(usize, u64)> {
        let Some(p) = frame::parse(f) else {
            tracing::trace!(
                worker = self.index,
                "AF_XDP: frame not UDP over IP, dropped"
            );
            return None;
        };
        if !arrival.handed {
            if let Some(h) = self.xsk.handoff.as_mut() {
                match h.owners.owner(p.dst) {
                    Some(w) if w != self.index => {
                        h.hand(w, arrival.ifindex, f, None, &self.xsk.counters);
                        return None;
                    }
                    _ => {}
                }
            }
        }
        let wildcard = SocketAddr::new(unspecified(p.dst.ip()), p.dst.port());
        let Some(&token) = self
            .xsk
            .by_local
            .get(&p.dst)
            .or_else(|| self.xsk.by_local.get(&wildcard))
        else {
            if arrival.keep && self.xsk.early.len() < EARLY_MAX {
                self.xsk.early.push(Early {
                    ifindex: arrival.ifindex,
                    frame: f.to_vec(),
                    handed: arrival.handed,
                });
            } else {
                self.xsk.counters.unmatched.fetch_add(1, Relaxed);
            }
            return None; // no flow on that port (yet)
        };
        let mut batch = FrameBatch {
            payload: &f[p.payload.clone()],
            src: p.src,
            out: None,
        };
        self.forward_run(token, 0..1, &mut batch);
        let (fd, dst) = batch.out?;
        let ingress = self.flows.get(token).map(|fl| fl.counters())?;
        let Some(egress) = self.xsk.by_fd.get(&fd).and_then(|id| self.flows.get(*id)) else {
            // Forward_run found the egress flow by the same fd: never expected.
            self.xsk.tx_lost(ingress);
            return None;
        };
        let now = self.clock.mono();
        let hop = egress
            .local()
            .and_then(|l| self.xsk.hops.get(l.ip(), dst.ip(), now));
        if let (Some(local), Some(h)) = (egress.local(), hop) {
            match self.xsk.tx_socket(h.ifindex, arrival.socket) {
                Some(i) => {
                    if frame::rewrite(f, &p, local, dst, h.our_mac, h.peer_mac) {
                        return Some((i, token));
                    }
                }
                // No socket of ours on that device (more workers than queues): a worker
                // with one sends it.
                None => {
                    if let Some(ho) = self.xsk.handoff.as_mut() {
                        let by = ho.transmitters.iter().find(|t| t.0 == h.ifindex);
                        if let Some(&(_, w)) = by {
                            if frame::rewrite(f, &p, local, dst, h.our_mac, h.peer_mac) {
                                let by = Some(ingress.clone());
                                ho.hand(w, h.ifindex, f, by, &self.xsk.counters);
                                return None;
                            }
                        }
                    }
                }
            }
        }
        // Unknown next hop, a device without an AF_XDP socket, or a family change: the
        // socket layer sends it.
        if egress
            .io
            .socket
            .send_to(&f[p.payload.clone()], dst)
            .is_err()
        {
            ingress.dropped.fetch_add(1, Relaxed);
        }
        None
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::worker::run::tests::idle_worker_with;

    /// Two workers' AF_XDP parts with hand-off queues and no sockets.
    fn two() -> Vec<XskState> {
        two_with_owners().0
    }

    /// The same, and the port owner table they share.
    pub(in crate::worker) fn two_with_owners() -> (Vec<XskState>, Arc<PortOwners>) {
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

    #[test]
    fn a_forwarded_frame_that_cannot_be_sent_counts_as_dropped() {
        let mut states = two();
        let mut sender = states.pop().expect("worker 1");
        let (mut w, _tx) = idle_worker_with(states.pop().expect("worker 0"));
        let flow = Arc::new(StreamCounters::default());
        // Worker 1 asks worker 0 to send a frame out of a device worker 0 has no socket on.
        let h = sender.handoff.as_mut().expect("hand-off");
        h.hand(0, 7, b"frame", Some(flow.clone()), &sender.counters);
        w.take_handed_frames();
        assert_eq!(flow.dropped.load(Relaxed), 1);
        // A copy for a socket that cannot take it (here: none at that index).
        w.xsk.pending.push(Pending {
            socket: 3,
            frame: b"frame".to_vec(),
            counters: flow.clone(),
        });
        w.finish_xsk_pass();
        assert_eq!(flow.dropped.load(Relaxed), 2);
        assert_eq!(w.xsk.counters.tx_dropped.load(Relaxed), 2);
        assert_eq!(w.xsk.counters.transmitted.load(Relaxed), 0);
    }

    /// The next hop towards a peer never comes from received frames, not even ones the latch
    /// accepts (a forger with the peer's address and port passes strict source): its MACs must
    /// never become the way to the peer.
    #[test]
    fn frames_never_teach_a_next_hop() {
        use crate::flow::latch::{EndpointLearning, LatchConfig};
        use crate::wire::frame::tests::{frame, A};
        use crate::worker::{FlowId, FlowKind, FlowUpdate};
        use std::net::UdpSocket;

        let mut states = two();
        states.truncate(1);
        let (mut w, tx) = idle_worker_with(states.pop().expect("worker 0"));
        let peer: SocketAddr = "10.9.0.2:4000".parse().expect("addr");
        let callee: SocketAddr = "10.9.0.3:5000".parse().expect("addr");
        let latch = |expected| LatchConfig {
            expected: Some(expected),
            learning: EndpointLearning::Heuristic,
            strict: true,
            asymmetric: false,
            window: std::time::Duration::from_millis(200),
            signalled_from: None,
            sdp_unreachable: false,
        };
        let (a, b) = (
            UdpSocket::bind("127.0.0.1:0").expect("bind"),
            UdpSocket::bind("127.0.0.1:0").expect("bind"),
        );
        let local = a.local_addr().expect("local");
        let open = |id, socket, egress, expected| FlowUpdate::Open {
            id: FlowId(id),
            kind: FlowKind::Rtp,
            socket,
            egress: Some(FlowId(egress)),
            latch: latch(expected),
            counters: Arc::default(),
            record: None,
        };
        tx.send(vec![open(1, a, 2, peer), open(2, b, 1, callee)])
            .expect("send");
        w.begin_pass();
        let rtp = [0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xff, 0xff];
        let arrival = Arrival {
            ifindex: 7,
            socket: None,
            handed: false,
            keep: false,
        };
        let mut good = frame(peer, local, &rtp);
        w.xsk_frame(&mut good, arrival);
        // The exact address and port, another MAC: strict source accepts it.
        let mut forged = frame(peer, local, &rtp);
        forged[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x66]);
        w.xsk_frame(&mut forged, arrival);
        let taught: Vec<[u8; 6]> = w
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
}
