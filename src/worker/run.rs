//! One worker's loop, the same for every plane: wait, apply the flow updates the wake
//! announced, hand the plane's packets to the flow table, flush the sends, and keep the kernel
//! rules in line with the flows.

use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::offload::{Installed, Offload};
use super::{FlowEvent, FlowUpdate, Guard, Offloading, BATCH};
use crate::dataplane::afxdp::{AfxdpPlane, XskState};
use crate::dataplane::mmsg::{MmsgPlane, Readiness};
use crate::dataplane::uring::UringPlane;
use crate::dataplane::{FlowSocket, Plane};
use crate::flow::table::FlowTable;
use crate::sys::eventfd::EventFd;
use crate::time::Clock;

/// Upper bound on a wait, so shutdown is noticed even without a wake.
const TICK_MS: u32 = 100;

/// The payload that panics a worker under fault injection (see `Worker::fault_inject`).
pub const FAULT_PANIC: &[u8] = b"RTPRELAY-FAULT-PANIC";

/// A flow's I/O side, as the flow table carries it: its socket, and its rule in the XDP map
/// when offloaded.
pub(super) struct FlowIo {
    pub(super) socket: std::net::UdpSocket,
    pub(super) offloaded: Option<Installed>,
    /// The peer the socket is `connect()`ed to (see `connect`).
    pub(super) connected: Option<std::net::SocketAddr>,
}

/// The plane a worker makes on its thread (the planes' buffers hold raw pointers, and a ring
/// is single-issuer), from what was set up where it was spawned.
pub(super) enum PlaneStart {
    Mmsg(Readiness),
    /// io_uring (with fixed files or not); the mmsg plane on this epoll set when the ring
    /// cannot be made.
    Uring(Readiness, bool),
    Afxdp(Readiness, Box<XskState>),
}

/// What a worker is made of.
pub(super) struct WorkerConfig {
    pub index: usize,
    pub wake: Arc<EventFd>,
    pub updates: Receiver<Vec<FlowUpdate>>,
    pub clock: Clock,
    pub events: Sender<FlowEvent>,
    pub stop: Arc<AtomicBool>,
    /// The kernel fast path, when the XDP plane runs.
    pub offload: Option<Offloading>,
    /// Packets accepted on this worker's userspace path.
    pub userspace: Arc<AtomicU64>,
    pub guard: Guard,
    /// Connect the sockets of latched flows (`--connect-latched`, socket planes only).
    pub connect: bool,
    /// What the flows' DTLS endpoints are made from.
    pub dtls: Option<Arc<crate::dtls::DtlsContext>>,
}

pub(super) struct Worker {
    pub(super) index: usize,
    pub(super) wake: Arc<EventFd>,
    pub(super) updates: Receiver<Vec<FlowUpdate>>,
    pub(super) flows: FlowTable<FlowIo>,
    pub(super) clock: Clock,
    pub(super) out: Sender<FlowEvent>,
    stop: Arc<AtomicBool>,
    /// The kernel fast path, when the XDP plane runs.
    pub(super) offload: Option<Offload>,
    /// Packets accepted on this worker's userspace path (the rest went through the kernel).
    pub(super) userspace: Arc<AtomicU64>,
    /// Which new sources a stream may learn.
    pub(super) guard: Guard,
    /// Debug builds only, with `RTPRELAY_FAULT_INJECT=1`: a packet starting with [`FAULT_PANIC`]
    /// panics the worker, so tests can check that a panic is survived.
    pub(super) fault_inject: bool,
    /// Connect the sockets of latched flows (see `connect`), and the flows to look at.
    pub(super) connect: bool,
    pub(super) connect_dirty: Vec<u64>,
}

impl Worker {
    pub(super) fn new(cfg: WorkerConfig) -> Worker {
        let clock = cfg.clock;
        let mut flows = FlowTable::default();
        flows.set_dtls(cfg.dtls);
        Worker {
            index: cfg.index,
            wake: cfg.wake,
            updates: cfg.updates,
            flows,
            clock,
            out: cfg.events,
            stop: cfg.stop,
            offload: cfg
                .offload
                .map(|o| Offload::new(o.table, clock.mono(), o.install)),
            userspace: cfg.userspace,
            guard: cfg.guard,
            fault_inject: cfg!(debug_assertions)
                && std::env::var_os("RTPRELAY_FAULT_INJECT").is_some_and(|v| v == "1"),
            connect: cfg.connect,
            connect_dirty: Vec::new(),
        }
    }

    /// Make the plane and run until stopped.
    pub(super) fn run(mut self, start: PlaneStart) {
        match start {
            PlaneStart::Mmsg(ready) => self.run_on(MmsgPlane::new(ready, BATCH)),
            PlaneStart::Uring(ready, fixed) => match UringPlane::new(self.wake.clone(), fixed) {
                Ok(ring) => self.run_on(ring),
                Err(e) => {
                    tracing::error!(worker = self.index, error = %e,
                        "cannot set up this worker's io_uring; it runs the mmsg plane");
                    self.run_on(MmsgPlane::new(ready, BATCH));
                }
            },
            PlaneStart::Afxdp(ready, xsk) => {
                self.connect = false;
                self.run_on(AfxdpPlane::new(MmsgPlane::new(ready, BATCH), *xsk))
            }
        }
    }

    /// The loop. A panic in a pass is caught: the plane starts clean, the flows stay (see
    /// `recover`).
    pub(super) fn run_on<P: Plane>(mut self, mut plane: P) {
        tracing::debug!(worker = self.index, plane = plane.name(), "worker started");
        while !self.stop.load(std::sync::atomic::Ordering::Acquire) {
            let woke = match plane.wait(TICK_MS) {
                Ok(woke) => woke,
                Err(e) => {
                    tracing::error!(worker = self.index, plane = plane.name(), error = %e,
                        "waiting for packets failed");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            let pass = catch_unwind(AssertUnwindSafe(|| self.pass(&mut plane, woke)));
            if pass.is_err() {
                // The plane is whole again (a fresh ring has its flows armed) before the
                // panic is accounted, so the worker is whole when it says so.
                let mut flows = self.flows.iter().map(|(id, f)| FlowSocket {
                    token: id,
                    fd: f.io.socket.as_raw_fd(),
                    local: f.local(),
                    counters: f.counters(),
                });
                let reset = plane.reset(&mut flows);
                drop(flows);
                if let Err(e) = reset {
                    tracing::error!(worker = self.index, error = %e,
                        "cannot set the plane up again after a panic; the worker stops");
                    self.guard.health.set_dead();
                    break;
                }
                if !self.recover() {
                    break;
                }
            }
        }
        tracing::debug!(worker = self.index, "worker stopped");
    }

    /// One pass, after a wait (`woke`: the wait saw the wake).
    pub(super) fn pass<P: Plane>(&mut self, plane: &mut P, woke: bool) {
        self.begin_pass(plane, woke);
        self.finish_pass(plane);
    }

    /// Take the wake, then what it announced. Flow changes go first: a packet that arrives
    /// right after the NG reply (whose updates were queued before the reply went out) must see
    /// them. The send queue is empty here (flushed at the end of the last pass), so closing a
    /// socket is safe.
    pub(super) fn begin_pass<P: Plane>(&mut self, plane: &mut P, woke: bool) {
        // Drained before the queues it announces, never after: a notify posted once the
        // queues were read (a hand-off, an update) then stays and ends the next wait.
        if woke {
            self.wake.drain();
        }
        self.apply_updates(plane);
    }

    /// Forward what the plane received, send it, and bring the kernel rules up to date.
    pub(super) fn finish_pass<P: Plane>(&mut self, plane: &mut P) {
        plane.pass(self);
        let flows = &self.flows;
        plane.flush(&mut |tag| {
            if let Some(f) = flows.get(tag) {
                f.counters().dropped.fetch_add(1, Relaxed);
            }
        });
        self.handshakes();
        self.sync_connect();
        self.sync_offload();
        plane.after_pass(self.clock.mono());
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
}

#[cfg(test)]
pub(super) mod tests;
