//! The recording tap: how a worker hands a copy of a recorded flow's packets to the spool
//! writer thread without ever waiting for it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::SystemTime;

use crossbeam_channel::{Sender, TrySendError};

/// One packet of a recorded flow, copied off the packet path.
#[derive(Debug)]
pub struct TapPacket {
    /// The flow (stream) it arrived on.
    pub flow: u64,
    pub src: SocketAddr,
    /// Arrival time (wall clock: it goes into the pcap).
    pub at: SystemTime,
    pub data: Vec<u8>,
}

/// Set on a flow whose packets are recorded: the bounded queue to the writer, and the counter of
/// packets that did not fit in it.
#[derive(Debug, Clone)]
pub struct RecordTap {
    pub tx: Sender<TapPacket>,
    /// `recording_dropped`: packets not recorded because the queue was full.
    pub dropped: Arc<AtomicU64>,
    /// The same, for this flow only (it goes into the stream's spool metadata).
    pub stream_dropped: Arc<AtomicU64>,
}

impl RecordTap {
    /// Queues a copy of `data`, stamped now; never blocks. A full (or gone) writer costs a
    /// recording packet, never a forwarded one.
    pub fn offer(&self, flow: u64, src: SocketAddr, data: &[u8]) {
        self.offer_at(flow, src, data, SystemTime::now());
    }

    /// [`offer`](RecordTap::offer) with the arrival time passed in (the flow table reads no
    /// clock of its own).
    pub fn offer_at(&self, flow: u64, src: SocketAddr, data: &[u8], at: SystemTime) {
        let pkt = TapPacket {
            flow,
            src,
            at,
            data: data.to_vec(),
        };
        match self.tx.try_send(pkt) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Relaxed);
                self.stream_dropped.fetch_add(1, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_counts_instead_of_blocking() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let tap = RecordTap {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            stream_dropped: Arc::new(AtomicU64::new(0)),
        };
        let src: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        for i in 0..5u8 {
            tap.offer(7, src, &[i]);
        }
        assert_eq!(tap.dropped.load(Relaxed), 3);
        assert_eq!(tap.stream_dropped.load(Relaxed), 3);
        let got: Vec<Vec<u8>> = rx.try_iter().map(|p| p.data).collect();
        assert_eq!(got, vec![vec![0], vec![1]]);
        drop(rx);
        tap.offer(7, src, &[9]);
        assert_eq!(tap.dropped.load(Relaxed), 4);
    }
}
