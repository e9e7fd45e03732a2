//! One worker's loop: epoll over its sockets and wake eventfd, batch receive, check, forward,
//! batch send.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::{emit, FlowEvent, FlowId, FlowKind, FlowUpdate, StreamCounters, BATCH};
use crate::dataplane::{new_plane, DataPlane, PlaneKind};
use crate::session::latch::{Latch, Verdict};
use crate::sys::epoll::{Epoll, Events};
use crate::sys::eventfd::EventFd;
use crate::time::Clock;
use crate::wire::{is_rtcp, rtcp, rtp};

/// epoll token of the wake eventfd.
const WAKE: u64 = u64::MAX;
/// Upper bound on a wait, so shutdown is noticed even without a wake.
const TICK_MS: i32 = 100;

struct Flow {
    kind: FlowKind,
    socket: UdpSocket,
    egress: Option<FlowId>,
    latch: Latch,
    counters: Arc<StreamCounters>,
    /// The learned endpoint last reported to control.
    reported: Option<SocketAddr>,
}

pub(super) struct Worker {
    index: usize,
    epoll: Epoll,
    events: Events,
    ready: Vec<u64>,
    wake: Arc<EventFd>,
    updates: Receiver<Vec<FlowUpdate>>,
    flows: HashMap<u64, Flow>,
    plane_kind: PlaneKind,
    clock: Clock,
    out: Sender<FlowEvent>,
    stop: Arc<AtomicBool>,
}

/// Is `pkt` something a flow of `kind` relays? `Some(true)` for RTCP, `Some(false)` for RTP.
fn classify(kind: FlowKind, pkt: &[u8]) -> Option<bool> {
    match kind {
        FlowKind::Rtp if is_rtcp(pkt) => rtcp::Packet::new_checked(pkt).ok().map(|_| true),
        FlowKind::Rtp => rtp::Packet::new_checked_header(pkt).ok().map(|_| false),
        FlowKind::Rtcp => rtcp::Packet::new_checked(pkt).ok().map(|_| true),
        FlowKind::Opaque => Some(false),
    }
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        index: usize,
        epoll: Epoll,
        wake: Arc<EventFd>,
        updates: Receiver<Vec<FlowUpdate>>,
        plane_kind: PlaneKind,
        clock: Clock,
        out: Sender<FlowEvent>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Worker> {
        epoll.add(wake.as_raw_fd(), WAKE)?;
        Ok(Worker {
            index,
            epoll,
            events: Events::with_capacity(256),
            ready: Vec::with_capacity(256),
            wake,
            updates,
            flows: HashMap::new(),
            plane_kind,
            clock,
            out,
            stop,
        })
    }

    pub(super) fn run(mut self) {
        // The plane's buffers hold raw pointers: make them on this thread.
        let mut plane = new_plane(self.plane_kind, BATCH);
        tracing::debug!(worker = self.index, plane = plane.name(), "worker started");
        while !self.stop.load(std::sync::atomic::Ordering::Acquire) {
            if let Err(e) = self.epoll.wait(&mut self.events, TICK_MS) {
                tracing::error!(worker = self.index, error = %e, "epoll_wait failed");
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            // Flow changes first: a packet that arrives right after the NG reply (whose
            // updates were queued before the reply went out) must see them. The send queue is
            // empty here (flushed at the end of the last pass), so closing a socket is safe.
            self.apply_updates();
            self.ready.clear();
            self.ready.extend(self.events.tokens());
            for k in 0..self.ready.len() {
                match self.ready.get(k).copied() {
                    Some(WAKE) => self.wake.drain(),
                    Some(token) => self.service(token, plane.as_mut()),
                    None => {}
                }
            }
            let flows = &self.flows;
            plane.flush(&mut |tag| {
                if let Some(f) = flows.get(&tag) {
                    f.counters.dropped.fetch_add(1, Relaxed);
                }
            });
        }
        tracing::debug!(worker = self.index, "worker stopped");
    }

    fn apply_updates(&mut self) {
        let now = self.clock.mono();
        while let Ok(batch) = self.updates.try_recv() {
            for u in batch {
                match u {
                    FlowUpdate::Open {
                        id,
                        kind,
                        socket,
                        egress,
                        latch,
                        counters,
                    } => {
                        if id.0 == WAKE {
                            tracing::error!("flow id u64::MAX is reserved; flow not opened");
                            continue;
                        }
                        self.close(id);
                        if let Err(e) = self.epoll.add(socket.as_raw_fd(), id.0) {
                            tracing::error!(flow = id.0, error = %e, "cannot watch flow socket");
                            continue;
                        }
                        let latch = Latch::new(latch, now);
                        let flow = Flow {
                            kind,
                            socket,
                            egress,
                            latch,
                            counters,
                            reported: None,
                        };
                        self.flows.insert(id.0, flow);
                    }
                    FlowUpdate::Update {
                        id,
                        kind,
                        egress,
                        latch,
                    } => match self.flows.get_mut(&id.0) {
                        Some(f) => {
                            f.kind = kind;
                            f.egress = egress;
                            f.latch.update(latch, now);
                        }
                        None => tracing::debug!(flow = id.0, "update for unknown flow"),
                    },
                    FlowUpdate::Close { id } => self.close(id),
                }
            }
        }
    }

    fn close(&mut self, id: FlowId) {
        if let Some(f) = self.flows.remove(&id.0) {
            let _ = self.epoll.delete(f.socket.as_raw_fd());
        }
    }

    /// Receive one batch from flow `token`'s socket and forward what passes.
    fn service(&mut self, token: u64, plane: &mut dyn DataPlane) {
        let now = self.clock.mono();
        let Some(flow) = self.flows.get(&token) else {
            return;
        };
        let n = match plane.recv(flow.socket.as_fd()) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(flow = token, error = %e, "receive failed");
                flow.counters.errors.fetch_add(1, Relaxed);
                return;
            }
        };
        if n == 0 {
            return;
        }
        // The egress side cannot change while this batch is processed: look it up once.
        let egress: Option<(RawFd, Option<SocketAddr>)> = flow
            .egress
            .and_then(|e| self.flows.get(&e.0))
            .map(|e| (e.socket.as_raw_fd(), e.latch.target()));
        let Some(flow) = self.flows.get_mut(&token) else {
            return;
        };
        let c = &flow.counters;
        let stamp = now.0.max(1);
        for i in 0..n {
            let (len, rtcp, src) = match plane.packet(i) {
                Some((pkt, src)) => match classify(flow.kind, pkt) {
                    Some(rtcp) => (pkt.len() as u64, rtcp, src),
                    None => {
                        c.errors.fetch_add(1, Relaxed);
                        continue;
                    }
                },
                None => {
                    c.errors.fetch_add(1, Relaxed);
                    continue;
                }
            };
            if flow.latch.on_packet(src, now) == Verdict::Drop {
                c.errors.fetch_add(1, Relaxed);
                continue;
            }
            if rtcp {
                c.rtcp_packets.fetch_add(1, Relaxed);
                c.rtcp_bytes.fetch_add(len, Relaxed);
            } else {
                c.packets.fetch_add(1, Relaxed);
                c.bytes.fetch_add(len, Relaxed);
            }
            c.last_packet_ms.store(stamp, Relaxed);
            let queued = match egress {
                Some((fd, Some(dst))) => plane.forward(i, fd, dst, token),
                _ => false,
            };
            if !queued {
                c.dropped.fetch_add(1, Relaxed);
            }
        }
        let learned = flow.latch.learned();
        if learned != flow.reported {
            flow.reported = learned;
            if let Some(addr) = learned {
                emit(
                    &self.out,
                    FlowEvent::Learned {
                        id: FlowId(token),
                        addr,
                    },
                );
            }
        }
    }
}
