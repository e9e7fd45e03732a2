//! The plane a worker runs with AF_XDP: its flows' UDP sockets through the mmsg plane (what the
//! XDP program lets through to the socket layer), and the frames of its AF_XDP sockets and
//! hand-off queue. A socket's frames are taken as one batch and go to the worker's
//! [`Forwarder`] like a socket's packets, one call per run of consecutive frames of one flow;
//! once forwarded, a frame is rewritten in place and sent back out of an AF_XDP socket. A frame
//! whose next hop is unknown, or that must leave by a device this worker has no socket on, is
//! sent through the egress flow's UDP socket instead.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::counters::XskCounters;
use super::frames::{run_end, FrameRun, Frames, Rewrites, Todo};
use super::handoff::{Handoff, HANDOFF_MAX};
use super::hops::Hops;
use super::owners::unspecified;
use crate::dataplane::mmsg::{MmsgIo, MmsgPlane, Readiness, WAKE};
use crate::dataplane::{FlowSocket, Forwarder, Plane};
use crate::flow::StreamCounters;
use crate::sys::eventfd::EventFd;
use crate::sys::xsk::{Verdict, XskSocket, XskStats};
use crate::time::{Clock, Millis};
use crate::wire::frame::{self, UdpFrame};

/// Frames taken from a socket per readiness event.
const FRAMES_PER_PASS: u32 = 64;
/// Frames kept for a flow not opened yet (see [`XskState::early`]).
const EARLY_MAX: usize = 256;
/// How often a worker reads its sockets' kernel counters.
const KERNEL_STATS_MS: u64 = 1000;
/// epoll tokens of AF_XDP sockets: `XSK_TOKEN - k` for socket `k`, above every flow token.
const XSK_TOKEN: u64 = u64::MAX - 1;
/// As many as the program's socket map holds (`RTPRELAY_MAX_DEVICES * RTPRELAY_MAX_QUEUES`).
const MAX_XSKS: u64 = 16 * 64;
const _: () = assert!(crate::dataplane::TOKEN_MAX == XSK_TOKEN - MAX_XSKS);

/// A rewritten copy to send from socket `socket`, for the flow that forwarded it.
pub(super) struct Pending {
    pub socket: usize,
    pub frame: Vec<u8>,
    pub counters: Arc<StreamCounters>,
}

/// A frame copied for a later look (see [`XskState::early`]).
struct Early {
    ifindex: u32,
    frame: Vec<u8>,
    /// It came from another worker: never hand it on again.
    handed: bool,
}

/// Where a frame came from, and what may be done with it.
#[derive(Clone, Copy)]
pub(super) struct Arrival {
    pub ifindex: u32,
    /// The socket (of this worker) holding the frame, when it can be sent back in place.
    pub socket: Option<usize>,
    /// Handed over by another worker.
    pub handed: bool,
    /// Keep a copy when its flow is not open yet.
    pub keep: bool,
}

/// One worker's AF_XDP sockets and lookups.
pub struct XskState {
    /// The worker's index (the owner table names workers by it).
    index: usize,
    /// The worker's wake: notified when hand-offs are left for the next pass.
    wake: Arc<EventFd>,
    pub(super) sockets: Vec<XskSocket>,
    /// The device of each socket (the sockets are taken out while one is serviced).
    pub(super) devices: Vec<u32>,
    /// Relay address:port -> flow and its counters, to find a frame's flow.
    by_local: HashMap<SocketAddr, (u64, Arc<StreamCounters>)>,
    /// Socket fd -> its address, to rewrite a forward as leaving the egress flow's socket.
    by_fd: HashMap<RawFd, Option<SocketAddr>>,
    pub(super) hops: Hops,
    pub(super) counters: Arc<XskCounters>,
    /// Copies of frames for ports with no flow yet: a UDP socket keeps what arrives before
    /// its flow is opened, a frame has no such buffer. The flow may be waiting in the update
    /// queue (the NG reply went out before this pass took its updates), so they get one more
    /// look at the start of the next pass, after the updates.
    early: Vec<Early>,
    /// With more than one worker.
    pub(super) handoff: Option<Handoff>,
    /// Rewritten copies to send from one of the sockets, at the end of the pass.
    pub(super) pending: Vec<Pending>,
    /// The frames of the batch being forwarded that go to flows, in order (kept for reuse).
    todo: Vec<Todo>,
    /// The forwarder's decision for each of `todo`: out of which socket, to where.
    decided: Vec<Option<(RawFd, SocketAddr)>>,
    /// For each frame of the batch: the socket to send it from once rewritten, with its flow.
    outcomes: Vec<Option<(usize, SocketAddr)>>,
    /// Payloads SRTP rewrote, sent through the socket layer.
    rewrites: Rewrites,
    /// When the sockets' kernel counters were last read.
    stats_read: Option<Millis>,
    /// For next hops' lifetimes.
    clock: Clock,
}

impl XskState {
    pub(super) fn new(
        index: usize,
        wake: Arc<EventFd>,
        sockets: Vec<XskSocket>,
        counters: Arc<XskCounters>,
        handoff: Option<Handoff>,
    ) -> XskState {
        XskState {
            index,
            wake,
            devices: sockets.iter().map(XskSocket::ifindex).collect(),
            sockets,
            by_local: HashMap::new(),
            by_fd: HashMap::new(),
            hops: Hops::default(),
            counters,
            early: Vec::new(),
            handoff,
            pending: Vec::new(),
            todo: Vec::with_capacity(FRAMES_PER_PASS as usize),
            decided: Vec::with_capacity(FRAMES_PER_PASS as usize),
            outcomes: Vec::with_capacity(FRAMES_PER_PASS as usize),
            rewrites: Rewrites::default(),
            stats_read: None,
            clock: Clock::new(),
        }
    }

    /// Watch the sockets in the worker's epoll set (done where the worker is spawned, so a
    /// failure stops the start).
    pub fn watch(&self, ready: &Readiness) -> io::Result<()> {
        for (k, x) in self.sockets.iter().enumerate().take(MAX_XSKS as usize) {
            ready.watch(x.as_raw_fd(), XSK_TOKEN - k as u64)?;
        }
        Ok(())
    }

    /// Index an opened flow.
    fn index(&mut self, flow: &FlowSocket<'_>) {
        if let Some(l) = flow.local {
            self.by_local.insert(l, (flow.token, flow.counters.clone()));
            if let Some(h) = &self.handoff {
                h.owners.claim(l, self.index);
            }
        }
        self.by_fd.insert(flow.fd, flow.local);
    }

    /// The worker refused to open a flow on `local`: the port the control thread gave it is
    /// no one's.
    fn disown(&self, local: Option<SocketAddr>) {
        if let (Some(l), Some(h)) = (local, &self.handoff) {
            h.owners.clear(l, self.index);
        }
    }

    /// Forget a closed flow.
    fn unindex(&mut self, flow: &FlowSocket<'_>) {
        if let Some(l) = flow.local {
            self.by_local.remove(&l);
            if let Some(h) = &self.handoff {
                h.owners.clear(l, self.index);
            }
        }
        self.by_fd.remove(&flow.fd);
    }

    /// Once a second, copy the sockets' kernel drop counters (ring full, fill ring empty) where
    /// `/metrics` reads them: the sockets live on this thread.
    fn read_kernel_stats(&mut self, now: Millis) {
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

    /// Take what AF_XDP socket `k` received, forward it, and send it on.
    pub(super) fn service<F: Forwarder>(&mut self, k: usize, fwd: &mut F, io: &mut MmsgIo) {
        let mut sockets = std::mem::take(&mut self.sockets);
        // A panic in the forwarding (a bug a packet found) is caught by the worker, which then
        // goes on with this plane: the sockets must be back in place when it unwinds, or the
        // worker would lose its AF_XDP sockets for good. The batch is released as it unwinds.
        let forwarded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Some(s) = sockets.get_mut(k) {
                let ifindex = s.ifindex();
                // Dropping the batch transmits or recycles its frames as `forward_batch` marked them.
                let mut batch = s.rx_batch(FRAMES_PER_PASS);
                self.forward_batch(k, ifindex, &mut batch, fwd, io);
            }
        }));
        self.sockets = sockets;
        if let Err(panic) = forwarded {
            std::panic::resume_unwind(panic);
        }
        self.finish_pass();
    }

    /// Forward the frames socket `k` (on device `ifindex`) received, and mark each: transmit in
    /// place when it leaves by the same socket, recycle otherwise (copied first when it
    /// leaves by another socket of this worker).
    pub(super) fn forward_batch<R: Frames + ?Sized, F: Forwarder>(
        &mut self,
        k: usize,
        ifindex: u32,
        frames: &mut R,
        fwd: &mut F,
        io: &mut MmsgIo,
    ) {
        let arrival = Arrival {
            ifindex,
            socket: Some(k),
            handed: false,
            keep: true,
        };
        self.forward_frames(frames, arrival, fwd, io);
        let outcomes = std::mem::take(&mut self.outcomes);
        for (i, outcome) in outcomes.iter().enumerate() {
            match *outcome {
                Some((socket, _)) if socket == k => {
                    self.counters.transmitted.fetch_add(1, Relaxed);
                    frames.set_verdict(i, Verdict::Transmit);
                }
                Some((socket, key)) => {
                    if let (Some((_, c)), Some(f)) = (self.by_local.get(&key), frames.frame(i)) {
                        self.pending.push(Pending {
                            socket,
                            frame: f.to_vec(),
                            counters: c.clone(),
                        });
                    }
                }
                None => {}
            }
        }
        self.outcomes = outcomes;
    }

    /// At the start of a pass, after the flow updates: the frames that arrived before their
    /// flow was opened get one more try; those still without a flow are dropped.
    fn retry_early_frames<F: Forwarder>(&mut self, fwd: &mut F, io: &mut MmsgIo) {
        if self.early.is_empty() {
            return;
        }
        for e in std::mem::take(&mut self.early) {
            let arrival = Arrival {
                ifindex: e.ifindex,
                socket: None,
                handed: e.handed,
                keep: false,
            };
            self.copied_frame(e.frame, arrival, fwd, io);
        }
        self.finish_pass();
    }

    /// Forward the frames other workers handed over (at most a queue's worth per pass).
    pub(super) fn take_handed_frames<F: Forwarder>(&mut self, fwd: &mut F, io: &mut MmsgIo) {
        for _ in 0..HANDOFF_MAX {
            let Some(Ok(h)) = self.handoff.as_ref().map(|h| h.inbox.try_recv()) else {
                break;
            };
            if let Some(counters) = h.transmit {
                match self.tx_socket(h.ifindex, None) {
                    Some(socket) => self.pending.push(Pending {
                        socket,
                        frame: h.frame,
                        counters,
                    }),
                    None => self.tx_lost(&counters),
                }
                continue;
            }
            let arrival = Arrival {
                ifindex: h.ifindex,
                socket: None,
                handed: true,
                keep: true,
            };
            self.copied_frame(h.frame, arrival, fwd, io);
        }
        // The budget ran out with frames left: come back for them without waiting for
        // traffic (their senders' wakes were taken already).
        if self.handoff.as_ref().is_some_and(|h| !h.inbox.is_empty()) {
            self.wake.notify();
        }
        self.finish_pass();
    }

    fn copied_frame<F: Forwarder>(
        &mut self,
        mut f: Vec<u8>,
        arrival: Arrival,
        fwd: &mut F,
        io: &mut MmsgIo,
    ) {
        if let Some((socket, key)) = self.frame(&mut f, arrival, fwd, io) {
            if let Some((_, c)) = self.by_local.get(&key) {
                self.pending.push(Pending {
                    socket,
                    frame: f,
                    counters: c.clone(),
                });
            }
        }
    }

    /// Send the rewritten copies, and wake the workers this pass handed frames to.
    pub(super) fn finish_pass(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        for p in pending.drain(..) {
            if self
                .sockets
                .get_mut(p.socket)
                .is_some_and(|s| s.send(&p.frame))
            {
                self.counters.transmitted.fetch_add(1, Relaxed);
            } else {
                self.tx_lost(&p.counters);
            }
        }
        self.pending = pending;
        for s in &mut self.sockets {
            s.flush();
        }
        if let Some(h) = self.handoff.as_mut() {
            h.wake_peers();
        }
    }

    /// The socket to send the frame from once rewritten (`arrival.socket`: in place), with the
    /// address of the flow that forwarded it, or None when it was handed to another worker,
    /// kept for later, queued on the egress flow's UDP socket or dropped.
    pub(super) fn frame<F: Forwarder>(
        &mut self,
        f: &mut [u8],
        arrival: Arrival,
        fwd: &mut F,
        io: &mut MmsgIo,
    ) -> Option<(usize, SocketAddr)> {
        self.forward_frames(&mut [f][..], arrival, fwd, io);
        self.outcomes.first().copied().flatten()
    }

    /// Forward a batch of frames that arrived together: each is parsed and handed to another
    /// worker, kept, or queued for its flow; then each run of consecutive frames of one flow
    /// goes to the forwarder in one call, and each frame it forwarded is rewritten or sent
    /// through the socket layer. Leaves in `outcomes`, for each frame, what [`Self::frame`]
    /// returns for one.
    fn forward_frames<R: Frames + ?Sized, F: Forwarder>(
        &mut self,
        frames: &mut R,
        arrival: Arrival,
        fwd: &mut F,
        io: &mut MmsgIo,
    ) {
        let mut todo = std::mem::take(&mut self.todo);
        let mut decided = std::mem::take(&mut self.decided);
        todo.clear();
        self.outcomes.clear();
        self.outcomes.resize(frames.len(), None);
        for i in 0..frames.len() {
            if let Some((token, key, parsed)) = frames.frame(i).and_then(|f| self.sort(f, arrival))
            {
                todo.push(Todo {
                    frame: i,
                    token,
                    key,
                    parsed,
                });
            }
        }
        decided.clear();
        decided.resize(todo.len(), None);
        let mut rewrites = std::mem::take(&mut self.rewrites);
        rewrites.reset(todo.len());
        let mut start = 0;
        while start < todo.len() {
            let end = run_end(&todo, start);
            let mut run = FrameRun {
                frames: &*frames,
                todo: &todo,
                out: &mut decided,
                rewrites: &mut rewrites,
            };
            fwd.forward_run(todo[start].token, start..end, &mut run);
            for (k, (t, out)) in todo[start..end]
                .iter()
                .zip(&decided[start..end])
                .enumerate()
            {
                if let (Some((fd, dst)), Some(pkt)) = (*out, rewrites.get(start + k)) {
                    // SRTP rewrote it (maybe longer than the frame): the socket layer sends
                    // the copy; the frame is let go.
                    if !io.send(fd, dst, pkt, t.token) {
                        if let Some((_, c)) = self.by_local.get(&t.key) {
                            c.dropped.fetch_add(1, Relaxed);
                        }
                    }
                    continue;
                }
                if let (Some((fd, dst)), Some(f)) = (*out, frames.frame_mut(t.frame)) {
                    let sent = self.send_forwarded(f, t, fd, dst, arrival, io);
                    if let Some(o) = self.outcomes.get_mut(t.frame) {
                        *o = sent;
                    }
                }
            }
            start = end;
        }
        self.todo = todo;
        self.decided = decided;
        self.rewrites = rewrites;
    }

    /// A frame's flow (its token, the address it is indexed by) and where its parts are; None
    /// when it is not UDP over IP, was handed to the worker owning its flow, or has no flow
    /// (kept for another look, or counted as unmatched).
    fn sort(&mut self, f: &[u8], arrival: Arrival) -> Option<(u64, SocketAddr, UdpFrame)> {
        let Some(p) = frame::parse(f) else {
            tracing::trace!(
                worker = self.index,
                "AF_XDP: frame not UDP over IP, dropped"
            );
            return None;
        };
        if !arrival.handed {
            if let Some(h) = self.handoff.as_mut() {
                match h.owners.owner(p.dst) {
                    Some(w) if w != self.index => {
                        h.hand(w, arrival.ifindex, f, None, &self.counters);
                        return None;
                    }
                    _ => {}
                }
            }
        }
        let wildcard = SocketAddr::new(unspecified(p.dst.ip()), p.dst.port());
        let Some((&key, &(token, _))) = self
            .by_local
            .get_key_value(&p.dst)
            .or_else(|| self.by_local.get_key_value(&wildcard))
        else {
            if arrival.keep && self.early.len() < EARLY_MAX {
                self.early.push(Early {
                    ifindex: arrival.ifindex,
                    frame: f.to_vec(),
                    handed: arrival.handed,
                });
            } else {
                self.counters.unmatched.fetch_add(1, Relaxed);
            }
            return None; // no flow on that port (yet)
        };
        Some((token, key, p))
    }

    /// Send on a frame its flow forwarded out of socket `fd` to `dst`: rewritten for the next
    /// hop, from a socket of this worker (returned, with the flow's address) or handed to a
    /// worker with a socket on the device; else through the socket layer.
    fn send_forwarded(
        &mut self,
        f: &mut [u8],
        t: &Todo,
        fd: RawFd,
        dst: SocketAddr,
        arrival: Arrival,
        io: &mut MmsgIo,
    ) -> Option<(usize, SocketAddr)> {
        let (key, p) = (t.key, &t.parsed);
        let ingress = self.by_local.get(&key).map(|(_, c)| c)?;
        let Some(&egress_local) = self.by_fd.get(&fd) else {
            // The forwarder named the egress flow by a socket this plane registered: never
            // expected.
            self.tx_lost(ingress);
            return None;
        };
        let now = self.clock.mono();
        let hop = egress_local.and_then(|l| self.hops.get(l.ip(), dst.ip(), now));
        if let (Some(local), Some(h)) = (egress_local, hop) {
            match self.tx_socket(h.ifindex, arrival.socket) {
                Some(i) => {
                    if frame::rewrite(f, p, local, dst, h.our_mac, h.peer_mac) {
                        return Some((i, key));
                    }
                }
                // No socket of ours on that device (more workers than queues): a worker
                // with one sends it.
                None => {
                    if let Some(ho) = self.handoff.as_mut() {
                        let by = ho.transmitters.iter().find(|t| t.0 == h.ifindex);
                        if let Some(&(_, w)) = by {
                            if frame::rewrite(f, p, local, dst, h.our_mac, h.peer_mac) {
                                let by = Some(ingress.clone());
                                ho.hand(w, h.ifindex, f, by, &self.counters);
                                return None;
                            }
                        }
                    }
                }
            }
        }
        // Unknown next hop, a device without an AF_XDP socket, or a family change: the
        // socket layer sends it (a failure comes back through the flush as the flow's drop).
        if !io.send(fd, dst, &f[p.payload.clone()], t.token) {
            ingress.dropped.fetch_add(1, Relaxed);
        }
        None
    }
}

/// The AF_XDP plane: the mmsg plane for the flows' sockets, and the worker's AF_XDP state.
pub struct AfxdpPlane {
    pub(super) mmsg: MmsgPlane,
    pub(super) xsk: XskState,
}

impl AfxdpPlane {
    pub fn new(mmsg: MmsgPlane, xsk: XskState) -> AfxdpPlane {
        AfxdpPlane { mmsg, xsk }
    }
}

impl Plane for AfxdpPlane {
    fn name(&self) -> &'static str {
        "afxdp"
    }

    fn register(&mut self, flow: FlowSocket<'_>) -> io::Result<()> {
        if let Err(e) = self.mmsg.register(flow) {
            self.xsk.disown(flow.local);
            return Err(e);
        }
        self.xsk.index(&flow);
        Ok(())
    }

    fn deregister(&mut self, flow: FlowSocket<'_>) {
        self.xsk.unindex(&flow);
        self.mmsg.deregister(flow);
    }

    fn wait(&mut self, timeout_ms: u32) -> io::Result<bool> {
        self.mmsg.wait(timeout_ms)
    }

    /// Frames kept or handed over first, then what the wait found ready.
    fn pass<F: Forwarder>(&mut self, fwd: &mut F) {
        self.xsk.retry_early_frames(fwd, &mut self.mmsg.io);
        self.xsk.take_handed_frames(fwd, &mut self.mmsg.io);
        for k in 0..self.mmsg.ready.ready.len() {
            match self.mmsg.ready.ready.get(k).copied() {
                Some(WAKE) | None => {}
                Some(t) if t > XSK_TOKEN - MAX_XSKS => {
                    self.xsk
                        .service((XSK_TOKEN - t) as usize, fwd, &mut self.mmsg.io)
                }
                Some(token) => self.mmsg.service(token, fwd),
            }
        }
    }

    fn flush(&mut self, failed: &mut dyn FnMut(u64)) -> usize {
        self.mmsg.flush(failed)
    }

    fn after_pass(&mut self, now: Millis) {
        self.xsk.read_kernel_stats(now);
    }

    fn reset(&mut self, flows: &mut dyn Iterator<Item = FlowSocket<'_>>) -> io::Result<()> {
        self.mmsg.reset(flows)
    }
}
