//! One worker's loop: wait for packets, check, forward, batch send.
//!
//! Two drivers share the flow table and the per-packet logic ([`Worker::forward_run`]): the
//! readiness-driven one (epoll over the sockets, then the plane reads one socket at a time)
//! and the completion-driven one (the io_uring plane owns the sockets' receives and returns
//! packets from many sockets at once).

use std::io;
use std::net::UdpSocket;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::offload::{desired_rule, EgressView, Installed, Offload};
use super::{emit, FlowEvent, FlowUpdate, BATCH};
use crate::dataplane::uring::UringPlane;
use crate::dataplane::{new_plane, Batch, DataPlane, PlaneKind};
use crate::flow::table::{Decision, FlowSpec, FlowTable};
use crate::flow::FlowId;
use crate::sys::epoll::{Epoll, Events};
use crate::sys::eventfd::EventFd;
use crate::time::Clock;

/// epoll token of the wake eventfd.
const WAKE: u64 = u64::MAX;
/// epoll tokens of AF_XDP sockets: `XSK_TOKEN - k` for socket `k`; flow ids stay below. As many
/// as the program's socket map holds (`RTPRELAY_MAX_DEVICES * RTPRELAY_MAX_QUEUES`).
pub(super) const XSK_TOKEN: u64 = u64::MAX - 1;
pub(super) const MAX_XSKS: u64 = 16 * 64;
/// Upper bound on a wait, so shutdown is noticed even without a wake.
const TICK_MS: i32 = 100;

/// A flow's I/O side, as the flow table carries it: its socket, and its rule in the XDP map
/// when offloaded.
pub(super) struct FlowIo {
    pub(super) socket: UdpSocket,
    offloaded: Option<Installed>,
}

pub(super) struct Worker {
    pub(super) index: usize,
    epoll: Epoll,
    events: Events,
    ready: Vec<u64>,
    pub(super) wake: Arc<EventFd>,
    updates: Receiver<Vec<FlowUpdate>>,
    pub(super) flows: FlowTable<FlowIo>,
    plane_kind: PlaneKind,
    pub(super) clock: Clock,
    out: Sender<FlowEvent>,
    stop: Arc<AtomicBool>,
    /// The kernel fast path, when the XDP plane runs.
    offload: Option<Offload>,
    /// Packets accepted on this worker's userspace path (the rest went through the kernel).
    userspace: Arc<AtomicU64>,
    /// AF_XDP: the sockets, and the indexes that map a frame to its flow.
    pub(super) xsk: super::afxdp::XskState,
    /// Which new sources a stream may learn.
    pub(super) guard: super::Guard,
    /// Debug builds only, with `RTPRELAY_FAULT_INJECT=1`: a packet starting with [`FAULT_PANIC`]
    /// panics the worker, so tests can check that a panic is survived.
    pub(super) fault_inject: bool,
}

/// The payload that panics a worker under fault injection (see `Worker::fault_inject`).
pub const FAULT_PANIC: &[u8] = b"RTPRELAY-FAULT-PANIC";

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
        offload: Option<super::Offloading>,
        userspace: Arc<AtomicU64>,
        xsk: super::afxdp::XskState,
        guard: super::Guard,
    ) -> io::Result<Worker> {
        epoll.add(wake.as_raw_fd(), WAKE)?;
        for (k, x) in xsk.sockets().iter().enumerate().take(MAX_XSKS as usize) {
            epoll.add(x.as_raw_fd(), XSK_TOKEN - k as u64)?;
        }
        Ok(Worker {
            index,
            epoll,
            events: Events::with_capacity(256),
            ready: Vec::with_capacity(256),
            wake,
            updates,
            flows: FlowTable::default(),
            plane_kind,
            clock,
            out,
            stop,
            offload: offload.map(|o| Offload::new(o.table, clock.mono(), o.install)),
            userspace,
            xsk,
            guard,
            fault_inject: cfg!(debug_assertions)
                && std::env::var_os("RTPRELAY_FAULT_INJECT").is_some_and(|v| v == "1"),
        })
    }

    pub(super) fn run(self) {
        // (the loops below catch panics per pass; see `recover`)
        match self.plane_kind {
            PlaneKind::Uring => match UringPlane::new() {
                Ok(ring) => self.run_uring(ring),
                Err(e) => {
                    tracing::error!(worker = self.index, error = %e,
                        "cannot set up this worker's io_uring; it runs the mmsg plane");
                    self.run_epoll();
                }
            },
            PlaneKind::Mmsg => self.run_epoll(),
        }
    }

    fn run_epoll(mut self) {
        // The plane's buffers hold raw pointers: make them on this thread.
        let mut plane = new_plane(PlaneKind::Mmsg, BATCH);
        tracing::debug!(worker = self.index, plane = plane.name(), "worker started");
        while !self.stop.load(std::sync::atomic::Ordering::Acquire) {
            if let Err(e) = self.epoll.wait(&mut self.events, TICK_MS) {
                tracing::error!(worker = self.index, error = %e, "epoll_wait failed");
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            let pass = catch_unwind(AssertUnwindSafe(|| self.epoll_pass(plane.as_mut())));
            if pass.is_err() {
                if !self.recover() {
                    break;
                }
                // Whatever the batch held when it panicked is dropped with it.
                plane = new_plane(PlaneKind::Mmsg, BATCH);
            }
        }
        tracing::debug!(worker = self.index, "worker stopped");
    }

    /// One pass of the readiness-driven loop, after a wait.
    fn epoll_pass(&mut self, plane: &mut dyn DataPlane) {
        self.begin_pass();
        self.service_ready(plane);
        let flows = &self.flows;
        plane.flush(&mut |tag| {
            if let Some(f) = flows.get(tag) {
                f.counters().dropped.fetch_add(1, Relaxed);
            }
        });
        self.sync_offload();
        self.xsk.read_kernel_stats(self.clock.mono());
    }

    /// After a panic in a pass: counts it and takes this worker's flows out of the kernel (the
    /// next sweep installs them again from a clean state). False when the worker must stop:
    /// too many panics, or the clean-up itself panicked.
    fn recover(&mut self) -> bool {
        let now = self.clock.mono();
        let alive = self.guard.health.on_panic(now);
        let cleared = catch_unwind(AssertUnwindSafe(|| self.clear_kernel_rules(now))).is_ok();
        if alive && cleared {
            tracing::error!(
                worker = self.index,
                panics = self.guard.health.panics(),
                "worker panicked; restarted with its flows (the packets of that pass are lost)"
            );
            return true;
        }
        self.guard.health.set_dead();
        tracing::error!(
            worker = self.index,
            panics = self.guard.health.panics(),
            budget = super::PANIC_BUDGET,
            "worker panicked too often and stops; the relay exits"
        );
        false
    }

    /// Removes every kernel rule of this worker's flows, and marks the flows for the next sync.
    fn clear_kernel_rules(&mut self, now: crate::time::Millis) {
        let Some(off) = self.offload.as_mut() else {
            return;
        };
        for (id, f) in self.flows.iter_mut() {
            let (io, counters) = f.io_and_counters();
            off.remove(id, &mut io.offloaded, counters, now);
            off.mark(id);
        }
    }

    /// The start of an epoll pass: take the wake, then what it announced. Flow changes first: a
    /// packet that arrives right after the NG reply (whose updates were queued before the
    /// reply went out) must see them. The send queue is empty here (flushed at the end of the
    /// last pass), so closing a socket is safe.
    pub(super) fn begin_pass(&mut self) {
        self.ready.clear();
        self.ready.extend(self.events.tokens());
        // Drained before the queues it announces, never after: a notify posted once the
        // queues were read (a hand-off, an update) then stays and ends the next wait.
        if self.ready.contains(&WAKE) {
            self.wake.drain();
        }
        self.apply_updates(None);
        self.retry_early_frames();
        self.take_handed_frames();
    }

    /// Service the sockets the last wait found ready.
    fn service_ready(&mut self, plane: &mut dyn DataPlane) {
        for k in 0..self.ready.len() {
            match self.ready.get(k).copied() {
                Some(WAKE) | None => {}
                Some(t) if t > XSK_TOKEN - MAX_XSKS => self.service_xsk((XSK_TOKEN - t) as usize),
                Some(token) => self.service(token, plane),
            }
        }
    }

    /// The completion-driven loop: one ring wait gives packets from all sockets (and the
    /// wake); runs of packets from one flow go through the shared logic; one submit sends.
    fn run_uring(mut self, mut ring: UringPlane) {
        ring.watch_wake(self.wake.as_raw_fd());
        tracing::debug!(worker = self.index, plane = "uring", "worker started");
        while !self.stop.load(std::sync::atomic::Ordering::Acquire) {
            let (n, woke) = match ring.poll(TICK_MS as u32) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(worker = self.index, error = %e, "io_uring wait failed");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            let pass = catch_unwind(AssertUnwindSafe(|| self.uring_pass(&mut ring, n, woke)));
            if pass.is_err() {
                // A fresh ring: the old one's state at the panic is not trusted. It goes first
                // (its receives are cancelled), then the flows are armed on the new one, and
                // only then is the panic accounted, so the worker is whole when it says so.
                match UringPlane::new() {
                    Ok(fresh) => {
                        ring = fresh;
                        ring.watch_wake(self.wake.as_raw_fd());
                        for (id, f) in self.flows.iter() {
                            ring.register(id, f.io.socket.as_raw_fd());
                        }
                    }
                    Err(e) => {
                        tracing::error!(worker = self.index, error = %e,
                            "cannot set up a new io_uring after a panic; the worker stops");
                        self.guard.health.set_dead();
                        break;
                    }
                }
                if !self.recover() {
                    break;
                }
            }
        }
        tracing::debug!(
            worker = self.index,
            enobufs_rearms = ring.rearmed_on_enobufs(),
            "worker stopped"
        );
    }

    /// One pass of the completion-driven loop: `n` completions were polled.
    fn uring_pass(&mut self, ring: &mut UringPlane, n: usize, woke: bool) {
        {
            if woke {
                self.wake.drain();
            }
            // As in the epoll loop: updates before packets; no send is queued here.
            self.apply_updates(Some(ring));
            let mut start = 0;
            while start < n {
                let token = ring.token(start);
                let mut end = start + 1;
                while end < n && ring.token(end) == token {
                    end += 1;
                }
                if let Some(token) = token {
                    self.forward_run(token, start..end, ring);
                }
                start = end;
            }
            let flows = &self.flows;
            ring.flush(&mut |tag| {
                if let Some(f) = flows.get(tag) {
                    f.counters().dropped.fetch_add(1, Relaxed);
                }
            });
            self.sync_offload();
        }
    }

    /// Apply queued flow changes. With `ring`, sockets are registered with the io_uring plane
    /// instead of the epoll set.
    fn apply_updates(&mut self, mut ring: Option<&mut UringPlane>) {
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
                        record,
                    } => {
                        if id.0 > XSK_TOKEN - MAX_XSKS {
                            tracing::error!(
                                flow = id.0,
                                "flow ids this high are reserved; flow not opened"
                            );
                            self.xsk.disown(self.index, socket.local_addr().ok());
                            continue;
                        }
                        self.close(id, ring.as_deref_mut());
                        match ring.as_deref_mut() {
                            Some(r) => r.register(id.0, socket.as_raw_fd()),
                            None => {
                                if let Err(e) = self.epoll.add(socket.as_raw_fd(), id.0) {
                                    tracing::error!(flow = id.0, error = %e, "cannot watch flow socket");
                                    self.xsk.disown(self.index, socket.local_addr().ok());
                                    continue;
                                }
                            }
                        }
                        let local = socket.local_addr().ok();
                        self.xsk.index(self.index, id.0, local, socket.as_raw_fd());
                        let spec = FlowSpec {
                            kind,
                            egress,
                            latch,
                            counters,
                            record,
                            local,
                        };
                        let io = FlowIo {
                            socket,
                            offloaded: None,
                        };
                        self.flows.open(id, spec, io, now);
                        self.mark(id.0);
                    }
                    FlowUpdate::Update {
                        id,
                        kind,
                        egress,
                        latch,
                        record,
                    } => {
                        if self.flows.update(id, kind, egress, latch, record, now) {
                            self.mark(id.0);
                        } else {
                            tracing::debug!(flow = id.0, "update for unknown flow");
                        }
                    }
                    FlowUpdate::Tap { id, record } => {
                        if self.flows.tap(id, record) {
                            self.mark(id.0);
                        } else {
                            tracing::debug!(flow = id.0, "tap for unknown flow");
                        }
                    }
                    FlowUpdate::Block { id, block } => match self.flows.block(id, block) {
                        Some(true) => self.mark(id.0),
                        Some(false) => {}
                        None => tracing::debug!(flow = id.0, "block for unknown flow"),
                    },
                    FlowUpdate::Close { id } => self.close(id, ring.as_deref_mut()),
                }
            }
        }
    }

    fn close(&mut self, id: FlowId, ring: Option<&mut UringPlane>) {
        if let Some(mut f) = self.flows.close(id) {
            self.xsk
                .unindex(self.index, f.local(), f.io.socket.as_raw_fd());
            if let Some(off) = self.offload.as_mut() {
                // Out of the kernel first, with its last counts, before the socket goes.
                let (io, counters) = f.io_and_counters();
                off.remove(id.0, &mut io.offloaded, counters, self.clock.mono());
            }
            match ring {
                // Cancels the receive before the socket is dropped below.
                Some(r) => r.deregister(id.0),
                None => {
                    let _ = self.epoll.delete(f.io.socket.as_raw_fd());
                }
            }
        }
    }

    /// Receive one batch from flow `token`'s socket and forward what passes.
    fn service(&mut self, token: u64, plane: &mut dyn DataPlane) {
        let Some(flow) = self.flows.get(token) else {
            return;
        };
        let n = match plane.recv(flow.io.socket.as_fd()) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(flow = token, error = %e, "receive failed");
                flow.counters().errors.fetch_add(1, Relaxed);
                return;
            }
        };
        if n == 0 {
            return;
        }
        self.forward_run(token, 0..n, plane);
    }

    /// The per-packet work, shared by every plane: packets `idx` of `plane`'s current batch
    /// all arrived on flow `token`'s socket. Classify, check the source (latching), count,
    /// and queue the forward.
    pub(super) fn forward_run<B: Batch + ?Sized>(
        &mut self,
        token: u64,
        idx: Range<usize>,
        plane: &mut B,
    ) {
        let now = self.clock.mono();
        let policy = self.guard.policy.load();
        let Some(mut run) = self
            .flows
            .run(token, now, &policy, |io| io.socket.as_raw_fd())
        else {
            return;
        };
        for i in idx {
            let Some((pkt, src)) = plane.packet(i) else {
                run.unusable();
                continue;
            };
            if self.fault_inject && pkt.starts_with(FAULT_PANIC) {
                panic!("fault injection: worker {} panics on request", self.index);
            }
            if let Decision::Forward { via, dst } = run.packet(pkt, src) {
                if !plane.forward(i, via, dst, token) {
                    run.not_sent();
                }
            }
        }
        let outcome = run.finish();
        self.userspace.fetch_add(outcome.accepted, Relaxed);
        if outcome.refused > 0 {
            self.guard.refused.fetch_add(outcome.refused, Relaxed);
        }
        if outcome.offload {
            self.mark(token);
        }
        if let Some(addr) = outcome.learned {
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

impl Worker {
    /// Note that flow `id` (and so the flow that sends to its peer) may need a new kernel rule.
    fn mark(&mut self, id: u64) {
        if let Some(off) = self.offload.as_mut() {
            off.mark(id);
        }
    }

    /// After a pass: bring the kernel rules of changed flows up to date, and once a second
    /// (less often with thousands of rules) fold the kernel's counters and re-check every flow.
    fn sync_offload(&mut self) {
        let Some(off) = self.offload.as_mut() else {
            return;
        };
        let now = self.clock.mono();
        let mut ids = off.take_dirty();
        let sweep = off.sweep_due(now);
        if sweep {
            off.begin_sweep();
            ids = self.flows.ids().collect();
        } else if ids.is_empty() {
            return;
        } else {
            // A flow's rule sends to its egress flow's peer: when a flow's endpoint moves, the
            // flow that forwards to it changes too (its egress is this flow's egress, as calls
            // pair flows both ways).
            let extra: Vec<u64> = ids
                .iter()
                .filter_map(|id| self.flows.get(*id).and_then(|f| f.egress()).map(|e| e.0))
                .collect();
            ids.extend(extra);
            ids.sort_unstable();
            ids.dedup();
        }
        for id in ids {
            self.sync_flow(id, now);
        }
        if sweep {
            if let Some(off) = self.offload.as_mut() {
                off.end_sweep();
            }
        }
    }

    fn sync_flow(&mut self, id: u64, now: crate::time::Millis) {
        let Some(flow) = self.flows.get(id) else {
            return;
        };
        let egress = flow
            .egress()
            .and_then(|e| self.flows.get(e.0))
            .and_then(|e| {
                e.local().map(|local| EgressView {
                    local,
                    target: e.latch().target(),
                })
            });
        let want = flow.local().and_then(|l| {
            desired_rule(
                flow.kind(),
                l,
                flow.latch(),
                flow.recorded(),
                flow.blocked(),
                egress,
            )
        });
        let (Some(off), Some(flow)) = (self.offload.as_mut(), self.flows.get_mut(id)) else {
            return;
        };
        let local = flow.local();
        let (io, counters) = flow.io_and_counters();
        off.reconcile(id, &mut io.offloaded, local, want, counters, now);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::flow::FlowKind;

    /// A worker with no flows and these AF_XDP parts, its update queue, and nothing started.
    pub(in crate::worker) fn idle_worker_with(
        xsk: super::super::afxdp::XskState,
    ) -> (Worker, Sender<Vec<FlowUpdate>>) {
        idle_worker_on(PlaneKind::Mmsg, xsk)
    }

    /// As [`idle_worker_with`], on `plane`.
    pub(in crate::worker) fn idle_worker_on(
        plane: PlaneKind,
        xsk: super::super::afxdp::XskState,
    ) -> (Worker, Sender<Vec<FlowUpdate>>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (etx, _erx) = crossbeam_channel::unbounded();
        let w = Worker::new(
            0,
            Epoll::new().expect("epoll"),
            Arc::new(EventFd::new().expect("eventfd")),
            rx,
            plane,
            Clock::new(),
            etx,
            Arc::new(AtomicBool::new(false)),
            None,
            Arc::new(AtomicU64::new(0)),
            xsk,
            super::super::Guard {
                policy: crate::guard::share(crate::guard::TargetPolicy::permissive()),
                refused: Arc::default(),
                health: Arc::default(),
            },
        )
        .expect("worker");
        (w, tx)
    }

    pub(in crate::worker) fn idle_worker() -> (Worker, Sender<Vec<FlowUpdate>>) {
        idle_worker_with(super::super::afxdp::XskState::default())
    }

    #[test]
    fn a_refused_open_leaves_its_port_ownerless() {
        let (mut states, owners) = super::super::afxdp::tests::two_with_owners();
        states.truncate(1);
        let (mut w, tx) = idle_worker_with(states.pop().expect("worker 0"));
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let local = socket.local_addr().expect("local");
        owners.set(local, 0); // as the control thread does before sending the Open
        let open = FlowUpdate::Open {
            id: FlowId(XSK_TOKEN), // reserved: refused
            kind: FlowKind::Rtp,
            socket,
            egress: None,
            latch: crate::flow::latch::LatchConfig::default(),
            counters: Arc::default(),
            record: None,
        };
        tx.send(vec![open]).expect("send");
        w.begin_pass();
        assert!(w.flows.is_empty());
        assert_eq!(owners.owner(local), None);
    }

    #[test]
    fn a_wake_posted_after_the_queues_were_read_is_kept() {
        let (mut w, tx) = idle_worker();
        let mut plane = new_plane(PlaneKind::Mmsg, BATCH);
        w.wake.notify();
        w.epoll.wait(&mut w.events, 0).expect("wait");
        w.begin_pass();
        // Another thread queues an update once the queues were read, before the ready fds are
        // serviced: its wake must end the next wait.
        tx.send(Vec::new()).expect("send");
        w.wake.notify();
        w.service_ready(plane.as_mut());
        let mut next = Events::with_capacity(4);
        w.epoll.wait(&mut next, 0).expect("wait");
        assert_eq!(next.tokens().collect::<Vec<_>>(), vec![WAKE]);
        // And once taken, the wake is gone.
        w.events = next;
        w.begin_pass();
        w.service_ready(plane.as_mut());
        assert_eq!(w.epoll.wait(&mut w.events, 0).expect("wait"), 0);
    }
}
