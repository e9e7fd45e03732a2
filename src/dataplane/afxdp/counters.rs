//! One worker's AF_XDP counters, summed over the workers on read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::sys::xsk::XskStats;

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
