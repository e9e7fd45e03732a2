//! A fault injector around any plane, for tests (smoltcp's `phy::FaultInjector`): it loses
//! received packets and refuses sends on a fixed pattern, so the worker's accounting of both
//! can be checked on whatever plane it wraps, with no change to the plane or the flow table.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::RawFd;

use super::{Batch, FlowSocket, Forwarder, Plane};
use crate::time::Millis;

/// Which packets go wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Every n-th packet of a batch (the n-th, 2n-th...) arrives unusable; 0: none.
    pub lose_every: usize,
    /// Every n-th forward is refused, as by a full send queue; 0: none.
    pub refuse_every: usize,
}

/// `inner` with [`Faults`].
pub struct FaultPlane<P> {
    pub inner: P,
    pub faults: Faults,
    /// Forwards asked for so far.
    forwards: usize,
}

impl<P: Plane> FaultPlane<P> {
    pub fn new(inner: P, faults: Faults) -> FaultPlane<P> {
        FaultPlane {
            inner,
            faults,
            forwards: 0,
        }
    }
}

/// The worker's forwarder, handed batches with faults.
struct FaultForwarder<'a, F> {
    fwd: &'a mut F,
    faults: Faults,
    forwards: &'a mut usize,
}

struct FaultBatch<'a, B: ?Sized> {
    inner: &'a mut B,
    faults: Faults,
    forwards: &'a mut usize,
}

/// The n-th of a count (1-based) with `every` > 0.
fn hits(n: usize, every: usize) -> bool {
    every > 0 && n % every == 0
}

impl<B: Batch + ?Sized> Batch for FaultBatch<'_, B> {
    fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if hits(i + 1, self.faults.lose_every) {
            return None;
        }
        self.inner.packet(i)
    }

    fn packet_mut(&mut self, i: usize) -> Option<(&mut [u8], usize, SocketAddr)> {
        if hits(i + 1, self.faults.lose_every) {
            return None;
        }
        self.inner.packet_mut(i)
    }

    fn set_len(&mut self, i: usize, len: usize) {
        self.inner.set_len(i, len);
    }

    fn forward(&mut self, i: usize, sock: RawFd, dst: SocketAddr, tag: u64) -> bool {
        *self.forwards += 1;
        if hits(*self.forwards, self.faults.refuse_every) {
            return false;
        }
        self.inner.forward(i, sock, dst, tag)
    }
}

impl<F: Forwarder> Forwarder for FaultForwarder<'_, F> {
    fn forward_run<B: Batch + ?Sized>(&mut self, token: u64, idx: Range<usize>, batch: &mut B) {
        let mut faulty = FaultBatch {
            inner: batch,
            faults: self.faults,
            forwards: self.forwards,
        };
        self.fwd.forward_run(token, idx, &mut faulty);
    }

    fn recv_failed(&mut self, token: u64, error: &io::Error) {
        self.fwd.recv_failed(token, error);
    }
}

impl<P: Plane> Plane for FaultPlane<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn register(&mut self, flow: FlowSocket<'_>) -> io::Result<()> {
        self.inner.register(flow)
    }

    fn deregister(&mut self, flow: FlowSocket<'_>) {
        self.inner.deregister(flow);
    }

    fn wait(&mut self, timeout_ms: u32) -> io::Result<bool> {
        self.inner.wait(timeout_ms)
    }

    fn pass<F: Forwarder>(&mut self, fwd: &mut F) {
        let mut faulty = FaultForwarder {
            fwd,
            faults: self.faults,
            forwards: &mut self.forwards,
        };
        self.inner.pass(&mut faulty);
    }

    fn flush(&mut self, failed: &mut dyn FnMut(u64)) -> usize {
        self.inner.flush(failed)
    }

    fn after_pass(&mut self, now: Millis) {
        self.inner.after_pass(now);
    }

    fn reset(&mut self, flows: &mut dyn Iterator<Item = FlowSocket<'_>>) -> io::Result<()> {
        self.inner.reset(flows)
    }
}
