//! Frames between workers. Each worker owns the AF_XDP sockets of some rx queues, but the
//! device's RSS, not the call's sharding, picks a frame's queue: a frame for another worker's
//! flow is copied into that worker's bounded hand-off queue ([`PortOwners`] names the owner),
//! and the owner forwards it like its own and sends it from one of its own sockets
//! (transmission does not depend on the rx queue). A full queue drops the frame and counts it.
//! With more workers than queues, a worker without a socket on the device hands the rewritten
//! frame to one with a socket there, which only transmits it.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::counters::XskCounters;
use super::owners::PortOwners;
use super::plane::XskState;
use crate::flow::StreamCounters;
use crate::sys::eventfd::EventFd;
use crate::sys::xsk::XskSocket;

/// Frames a worker's hand-off queue holds: a few passes of every other worker's sockets.
pub const HANDOFF_MAX: usize = 4096;

/// A copy of a frame received by another worker for one of this worker's flows, or (with
/// `transmit`) one forwarded by a worker without a socket on the device, to send as it is.
pub(super) struct Handed {
    pub ifindex: u32,
    pub frame: Vec<u8>,
    /// `Some` (the counters of the flow that forwarded it) for a frame to send as it is.
    pub transmit: Option<Arc<StreamCounters>>,
}

/// What a worker needs to hand frames to the others and take theirs.
pub(super) struct Handoff {
    pub owners: Arc<PortOwners>,
    /// Every worker's hand-off queue and wake, by worker index.
    peers: Vec<(Sender<Handed>, Arc<EventFd>)>,
    pub inbox: Receiver<Handed>,
    /// For each device (ifindex), a worker with an AF_XDP socket on it, to transmit for the
    /// workers with none (more workers than queues).
    pub transmitters: Arc<[(u32, usize)]>,
    /// Workers handed a frame during this pass: woken once, at its end.
    to_wake: Vec<bool>,
}

/// Each worker's AF_XDP state and counters, for workers woken by `wakes`: socket `j` goes to
/// worker `j % n`; with `owners` (several workers), every worker gets a hand-off queue.
pub fn deal(
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
        .zip(wakes)
        .enumerate()
        .map(|(index, ((sockets, inbox), wake))| {
            let handoff = owners.zip(inbox.take()).map(|(owners, inbox)| Handoff {
                owners: owners.clone(),
                peers: peers.clone(),
                inbox,
                transmitters: transmitters.clone(),
                to_wake: vec![false; peers.len()],
            });
            let counters = Arc::new(XskCounters::default());
            let state = XskState::new(index, wake.clone(), sockets, counters.clone(), handoff);
            (state, counters)
        })
        .collect()
}

impl Handoff {
    /// Queue a copy of `f` for `worker`. A dropped transmit hand-off also counts as its flow's
    /// drop (the flow counted it as forwarded).
    pub(super) fn hand(
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

    /// Wake the workers this pass handed frames to, once each.
    pub(super) fn wake_peers(&mut self) {
        for (w, wake) in self.to_wake.iter_mut().enumerate() {
            if std::mem::take(wake) {
                if let Some((_, fd)) = self.peers.get(w) {
                    fd.notify();
                }
            }
        }
    }
}
