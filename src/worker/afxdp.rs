//! The AF_XDP path of a worker: frames the XDP program redirected to an AF_XDP socket (packets to
//! the relay's ports that the kernel does not forward itself: streams still learning, recorded
//! streams, unknown next hops) go through the same per-packet logic as socket packets
//! ([`Worker::forward_run`]), and are rewritten in place and sent back out of the socket, with
//! no trip through the socket layer. A frame whose next hop is unknown, or that must leave by
//! another device, is sent through the flow's UDP socket instead.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::run::Worker;
use crate::dataplane::Batch;
use crate::sys::xsk::XskSocket;
use crate::wire::frame;

/// Frames taken from a socket per readiness event.
const FRAMES_PER_PASS: u32 = 64;
/// Next hops remembered; the table starts over when full (it refills from the next frames).
const NEIGH_MAX: usize = 65536;
/// Frames kept for a flow not opened yet (see [`XskState::early`]).
const EARLY_MAX: usize = 256;

/// A peer's next hop as its own frames showed it.
#[derive(Debug, Clone, Copy)]
struct Hop {
    peer_mac: [u8; 6],
    our_mac: [u8; 6],
    /// The AF_XDP socket (so the device) it was seen on.
    socket: usize,
}

/// One worker's AF_XDP sockets and lookups.
#[derive(Default)]
pub(super) struct XskState {
    sockets: Vec<XskSocket>,
    /// Relay address:port -> flow, to find a frame's flow.
    by_local: HashMap<SocketAddr, u64>,
    /// Socket fd -> flow, to find the egress flow (and its address) of a forward.
    by_fd: HashMap<RawFd, u64>,
    neigh: HashMap<IpAddr, Hop>,
    /// Frames sent back out of an AF_XDP socket (the rest of what was forwarded went through
    /// the flow's UDP socket).
    sent: Arc<AtomicU64>,
    /// Copies of frames for ports with no flow yet, with their socket: a UDP socket keeps what
    /// arrives before its flow is opened, a frame has no such buffer. The flow may be waiting
    /// in the update queue (the NG reply went out before this pass took its updates), so they
    /// get one more look at the start of the next pass, after the updates.
    early: Vec<(usize, Vec<u8>)>,
}

impl XskState {
    pub(super) fn new(sockets: Vec<XskSocket>, sent: Arc<AtomicU64>) -> XskState {
        XskState {
            sockets,
            sent,
            ..XskState::default()
        }
    }

    fn active(&self) -> bool {
        !self.sockets.is_empty()
    }

    pub(super) fn index(&mut self, id: u64, local: Option<SocketAddr>, fd: RawFd) {
        if !self.active() {
            return;
        }
        if let Some(l) = local {
            self.by_local.insert(l, id);
        }
        self.by_fd.insert(fd, id);
    }

    pub(super) fn unindex(&mut self, local: Option<SocketAddr>, fd: RawFd) {
        if let Some(l) = local {
            self.by_local.remove(&l);
        }
        self.by_fd.remove(&fd);
    }

    fn learn(&mut self, p: &frame::UdpFrame, socket: usize) {
        if self.neigh.len() >= NEIGH_MAX {
            self.neigh.clear();
        }
        self.neigh.insert(
            p.src.ip(),
            Hop {
                peer_mac: p.src_mac,
                our_mac: p.dst_mac,
                socket,
            },
        );
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
            s.forward(FRAMES_PER_PASS, |f| self.xsk_frame(f, k, true));
        }
        self.xsk.sockets = sockets;
    }

    /// At the start of a pass, after the flow updates: the frames that arrived before their
    /// flow was opened get one more try; those still without a flow are dropped.
    pub(super) fn retry_early_frames(&mut self) {
        if self.xsk.early.is_empty() {
            return;
        }
        let early = std::mem::take(&mut self.xsk.early);
        let mut sockets = std::mem::take(&mut self.xsk.sockets);
        for (k, mut f) in early {
            if self.xsk_frame(&mut f, k, false) {
                if let Some(s) = sockets.get_mut(k) {
                    s.send(&f);
                }
            }
        }
        self.xsk.sockets = sockets;
    }

    /// True when the frame was rewritten to be sent back out of socket `k`. With `keep`, a
    /// frame for a port with no flow is copied for [`Worker::retry_early_frames`].
    fn xsk_frame(&mut self, f: &mut [u8], k: usize, keep: bool) -> bool {
        let Some(p) = frame::parse(f) else {
            tracing::trace!(
                worker = self.index,
                "AF_XDP: frame not UDP over IP, dropped"
            );
            return false;
        };
        self.xsk.learn(&p, k);
        let wildcard = SocketAddr::new(unspecified(p.dst.ip()), p.dst.port());
        let Some(&token) = self
            .xsk
            .by_local
            .get(&p.dst)
            .or_else(|| self.xsk.by_local.get(&wildcard))
        else {
            if keep && self.xsk.early.len() < EARLY_MAX {
                self.xsk.early.push((k, f.to_vec()));
            }
            return false; // no flow on that port (yet)
        };
        let mut batch = FrameBatch {
            payload: &f[p.payload.clone()],
            src: p.src,
            out: None,
        };
        self.forward_run(token, 0..1, &mut batch);
        let Some((fd, dst)) = batch.out else {
            return false;
        };
        let Some(egress) = self.xsk.by_fd.get(&fd).and_then(|id| self.flows.get(id)) else {
            return false;
        };
        let hop = self.xsk.neigh.get(&dst.ip()).copied();
        if let (Some(local), Some(h)) = (egress.local, hop) {
            if h.socket == k && frame::rewrite(f, &p, local, dst, h.our_mac, h.peer_mac) {
                self.xsk.sent.fetch_add(1, Relaxed);
                return true;
            }
        }
        // Unknown next hop, another device, or a family change: the socket layer sends it.
        if egress.socket.send_to(&f[p.payload.clone()], dst).is_err() {
            egress.counters.dropped.fetch_add(1, Relaxed);
        }
        false
    }
}

fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}
