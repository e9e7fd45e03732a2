//! A plane without sockets, for tests: packets are pushed in by hand and what the worker sends
//! is kept for the test to read, as smoltcp's `phy::Loopback` stands in for a device. It drives
//! the real worker loop and flow table.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::{check_token, Batch, FlowSocket, Forwarder, Plane};

/// A packet the worker had sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The socket it left by (the egress flow's).
    pub sock: RawFd,
    pub dst: SocketAddr,
    pub data: Vec<u8>,
    /// The flow it arrived on.
    pub tag: u64,
}

/// Receive slots per batch, as the real planes have.
const BATCH: usize = 32;
/// Bytes of a slot, as the mmsg plane's.
const SLOT_SIZE: usize = crate::sys::mmsg::SLOT_SIZE;

#[derive(Default)]
struct LoopbackBatch {
    packets: Vec<(Vec<u8>, SocketAddr)>,
    queued: Vec<Sent>,
    /// Fault injection: every forward is refused (a full send queue).
    refuse: bool,
}

impl Batch for LoopbackBatch {
    fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        self.packets.get(i).map(|(p, s)| (p.as_slice(), *s))
    }

    fn packet_mut(&mut self, i: usize) -> Option<(&mut [u8], usize, SocketAddr)> {
        let (p, s) = self.packets.get_mut(i)?;
        // A slot as the real planes have: the packet, then room to grow.
        let len = p.len();
        p.resize(len.max(SLOT_SIZE), 0);
        Some((p.as_mut_slice(), len, *s))
    }

    fn set_len(&mut self, i: usize, len: usize) {
        if let Some((p, _)) = self.packets.get_mut(i) {
            p.truncate(len);
        }
    }

    fn forward(&mut self, i: usize, sock: RawFd, dst: SocketAddr, tag: u64) -> bool {
        let Some((data, _)) = self.packets.get(i) else {
            return false;
        };
        if self.refuse {
            return false;
        }
        self.queued.push(Sent {
            sock,
            dst,
            data: data.clone(),
            tag,
        });
        true
    }
}

/// The test plane.
#[derive(Default)]
pub struct LoopbackPlane {
    /// (flow token, packet, source), in arrival order.
    inbound: VecDeque<(u64, Vec<u8>, SocketAddr)>,
    registered: HashMap<u64, RawFd>,
    batch: LoopbackBatch,
    /// What flushes sent, in order.
    pub sent: Vec<Sent>,
    /// The next `wait` reports the wake.
    pub woken: bool,
}

impl LoopbackPlane {
    /// A packet from `src` arrives on flow `token`'s socket.
    pub fn arrive(&mut self, token: u64, pkt: &[u8], src: SocketAddr) {
        self.inbound.push_back((token, pkt.to_vec(), src));
    }

    /// Refuse (or accept again) every forward, as a full send queue does.
    pub fn refuse_sends(&mut self, refuse: bool) {
        self.batch.refuse = refuse;
    }

    pub fn is_registered(&self, token: u64) -> bool {
        self.registered.contains_key(&token)
    }

    /// Take what was sent so far.
    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }
}

impl Plane for LoopbackPlane {
    fn name(&self) -> &'static str {
        "loopback"
    }

    fn register(&mut self, flow: FlowSocket<'_>) -> io::Result<()> {
        check_token(flow.token)?;
        self.registered.insert(flow.token, flow.fd);
        Ok(())
    }

    fn deregister(&mut self, flow: FlowSocket<'_>) {
        self.registered.remove(&flow.token);
    }

    fn wait(&mut self, _timeout_ms: u32) -> io::Result<bool> {
        Ok(std::mem::take(&mut self.woken))
    }

    /// Runs of packets of one flow, up to a batch each; packets for flows not registered are
    /// lost, as on a closed socket.
    fn pass<F: Forwarder>(&mut self, fwd: &mut F) {
        while let Some((token, pkt, src)) = self.inbound.pop_front() {
            self.batch.packets.clear();
            self.batch.packets.push((pkt, src));
            while self.batch.packets.len() < BATCH
                && self.inbound.front().is_some_and(|(t, _, _)| *t == token)
            {
                if let Some((_, p, s)) = self.inbound.pop_front() {
                    self.batch.packets.push((p, s));
                }
            }
            if self.registered.contains_key(&token) {
                let n = self.batch.packets.len();
                fwd.forward_run(token, 0..n, &mut self.batch);
            }
        }
    }

    fn flush(&mut self, _failed: &mut dyn FnMut(u64)) -> usize {
        let n = self.batch.queued.len();
        self.sent.append(&mut self.batch.queued);
        n
    }

    fn reset(&mut self, _flows: &mut dyn Iterator<Item = FlowSocket<'_>>) -> io::Result<()> {
        self.batch.packets.clear();
        self.batch.queued.clear();
        Ok(())
    }
}
