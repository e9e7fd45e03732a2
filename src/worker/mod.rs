//! Per-core workers: each owns its flows' sockets and forwards packets with no lock on the
//! packet path.
//!
//! The control thread talks to a worker only through a channel of [`FlowUpdate`]s (plus an
//! eventfd to wake it) and reads its [`StreamCounters`] atomics; the worker reports learned
//! endpoints back as [`FlowEvent`]s. All flows of one call live on one worker (see
//! [`Workers::worker_for`]), so a flow's egress socket is always local. The one exception to
//! "a worker only sees its own flows' packets" is the AF_XDP plane, where the device picks the
//! queue: frames reach the owner through a hand-off queue (see `dataplane::afxdp`).
//!
//! A worker runs one loop (`run`) over whichever [`Plane`](crate::dataplane::Plane) it was
//! given; the per-packet decisions are the flow table's ([`crate::flow::table`]).

mod connect;
mod forward;
mod handshake;
mod health;
mod offload;
mod rules;
mod run;
#[cfg(test)]
mod tests;
mod updates;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, TrySendError};

use crate::dataplane::afxdp::{PortOwners, XskCounters};
use crate::dataplane::mmsg::Readiness;
use crate::dataplane::PlaneKind;
use crate::dtls::DtlsContext;
use crate::flow::latch::LatchConfig;
pub use crate::flow::tap::{RecordTap, TapPacket};
use crate::flow::{FlowCrypto, FlowId, FlowKind, StreamCounters};
use crate::guard::SharedPolicy;
use crate::sys::eventfd::EventFd;
use crate::sys::xdp::{XdpStats, XdpTable};
use crate::time::Clock;
pub use health::{WorkerHealth, PANIC_BUDGET, PANIC_WINDOW};
use run::{PlaneStart, Worker, WorkerConfig};

/// A change to a worker's flow table.
#[derive(Debug)]
pub enum FlowUpdate {
    /// Start relaying on a bound local socket. What arrives here goes out of flow `egress`'s
    /// socket to `egress`'s peer target.
    Open {
        id: FlowId,
        kind: FlowKind,
        socket: UdpSocket,
        egress: Option<FlowId>,
        /// Multiplexed RTCP leaves by this flow instead (see `FlowSpec::rtcp_egress`).
        rtcp_egress: Option<FlowId>,
        latch: LatchConfig,
        counters: Arc<StreamCounters>,
        /// Set when the flow's packets are recorded.
        record: Option<RecordTap>,
        /// SRTP to remove from what arrives and to add to what leaves.
        crypto: FlowCrypto,
    },
    /// New peer endpoint / flags (answer, re-INVITE) or new egress pairing.
    Update {
        id: FlowId,
        /// A re-INVITE may turn audio into T.38 (or back) on the same ports.
        kind: FlowKind,
        egress: Option<FlowId>,
        rtcp_egress: Option<FlowId>,
        latch: LatchConfig,
        record: Option<RecordTap>,
        /// Unchanged keys keep the flow's SRTP state (rollover counters, replay windows).
        crypto: FlowCrypto,
    },
    /// Start (`Some`) or stop recording a flow.
    Tap {
        id: FlowId,
        record: Option<RecordTap>,
    },
    /// Start (`Some`) or stop dropping the media the flow receives (`block media`). Blocked
    /// packets are still checked, latched on, counted as received and recorded; then counted
    /// as dropped instead of forwarded. RTCP passes, and so do the RTP payload types set in the
    /// mask (bit n = type n: the DTMF events rtpengine lets through). `Open` starts unblocked.
    Block { id: FlowId, block: Option<u128> },
    /// Stop relaying and close the socket.
    Close { id: FlowId },
}

/// Worker → control notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowEvent {
    /// The flow's peer was learned at an address other than its SDP one.
    Learned { id: FlowId, addr: SocketAddr },
    /// The flow's ICE or DTLS handshake moved: ICE named its peer, DTLS connected (keys in
    /// place) or failed. For `query` and the logs.
    Handshake {
        id: FlowId,
        state: crate::flow::table::HandshakeState,
    },
}

/// Why the workers could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Zero workers requested.
    #[error("at least one worker is needed")]
    NoWorkers,
    /// Creating the worker's epoll/eventfd or thread failed.
    #[error("cannot start worker {index}: {source}")]
    Setup { index: usize, source: io::Error },
}

struct Handle {
    tx: Sender<Vec<FlowUpdate>>,
    wake: Arc<EventFd>,
    join: Option<JoinHandle<()>>,
}

/// The pool of worker threads.
pub struct Workers {
    handles: Vec<Handle>,
    stop: Arc<AtomicBool>,
    plane: PlaneKind,
    /// The XDP program's maps, when the kernel fast path runs.
    offload: Option<Offloading>,
    /// Per worker: packets accepted on the userspace path.
    userspace: Vec<Arc<AtomicU64>>,
    /// Per worker: packets dropped because their source may not be learnt (see [`Guard`]).
    refused_sources: Vec<Arc<AtomicU64>>,
    /// Per worker: panics caught, dead or alive.
    health: Vec<Arc<WorkerHealth>>,
    /// All workers' SRTP drops.
    srtp: Arc<SrtpDrops>,
    /// All workers' handshake totals.
    handshakes: Arc<HandshakeTotals>,
    /// Per worker, with the `afxdp` plane: its AF_XDP counters.
    afxdp: Vec<Arc<XskCounters>>,
    /// With the `afxdp` plane and more than one worker: who owns the flow on each relay port,
    /// written here as flows are handed to workers.
    owners: Option<Arc<PortOwners>>,
}

/// The kernel fast path as the workers use it.
#[derive(Clone)]
pub struct Offloading {
    pub table: Arc<XdpTable>,
    /// Install rules for learned flows (off: the program only redirects to AF_XDP, for
    /// measuring or debugging that path).
    pub install: bool,
}

/// What the kernel fast path did, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlaneCounters {
    /// Packets accepted by the workers' userspace path.
    pub userspace_packets: u64,
    /// Packets dropped because their source is one the relay never sends to (its own ports,
    /// its host...): a stream never learns such a peer.
    pub refused_sources: u64,
    /// Panics caught in the workers.
    pub worker_panics: u64,
    /// SRTP/SRTCP packets that did not authenticate.
    pub srtp_auth_failures: u64,
    /// SRTP/SRTCP packets replayed or too old.
    pub srtp_replays: u64,
    /// DTLS-SRTP handshakes that gave keys, and that failed.
    pub dtls_handshakes: u64,
    pub dtls_failures: u64,
    /// ICE connectivity checks answered, and STUN messages refused (bad integrity, unknown
    /// username, malformed).
    pub stun_answered: u64,
    pub stun_refused: u64,
    /// The XDP program's own counters and the number of rules installed, with the XDP plane.
    pub xdp: Option<(XdpStats, usize)>,
    /// The AF_XDP path's counters, with the afxdp plane.
    pub afxdp: Option<AfxdpCounters>,
}

/// The AF_XDP path's counters summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfxdpCounters {
    /// Frames sent out of AF_XDP sockets.
    pub transmitted: u64,
    /// Frames one worker handed to another: received for the other's flow, or rewritten for
    /// the other to send from its socket on the device (a worker without one there).
    pub handed_off: u64,
    /// Frames dropped because the receiving worker's hand-off queue was full (frames for its
    /// calls, and rewritten frames for it to send).
    pub handoff_dropped: u64,
    /// Frames to a relay port that no flow on the worker that took them had, still none after
    /// one more look in the next pass (a flow closed, or an owner the table could not name).
    pub unmatched: u64,
    /// Frames forwarded (counted by their flow, then as its drops) that could not be sent.
    pub tx_dropped: u64,
    /// The kernel's drop counters of the AF_XDP sockets (ring full, fill ring empty...).
    pub kernel: crate::sys::xsk::XskStats,
}

/// SRTP/SRTCP packets the workers dropped, for `/metrics` (per stream in the flows' counters).
#[derive(Debug, Default)]
pub struct SrtpDrops {
    /// Not authenticated under the peer's key.
    pub auth_failures: AtomicU64,
    /// Replayed, or older than the replay window.
    pub replays: AtomicU64,
}

/// Handshake totals of all the workers, for `/metrics` (added after each pass that had any).
#[derive(Debug, Default)]
pub struct HandshakeTotals {
    pub dtls_completed: AtomicU64,
    pub dtls_failed: AtomicU64,
    pub stun_answered: AtomicU64,
    pub stun_refused: AtomicU64,
    /// Handshake datagrams that could not be sent (outbox full, or the socket refused).
    pub send_failures: AtomicU64,
}

/// What a worker shares with the daemon beyond its flows.
pub(crate) struct Guard {
    /// What a new packet source is checked against before a stream may learn it: a source the
    /// relay would not send to (one of its own media ports: a loop; its host; a denied network)
    /// is dropped and counted, never latched onto.
    pub policy: SharedPolicy,
    /// This worker's count of refused sources.
    pub refused: Arc<AtomicU64>,
    /// SRTP drops of all the workers (rare: written only when a packet fails).
    pub srtp: Arc<SrtpDrops>,
    /// Handshake totals of all the workers.
    pub handshakes: Arc<HandshakeTotals>,
    /// Panics caught, and whether the worker gave up (see `health.rs`).
    pub health: Arc<WorkerHealth>,
}

/// What the pool of workers starts with.
pub struct WorkersConfig {
    /// How many workers (at least one).
    pub workers: usize,
    /// Worker `i` is pinned to `cpus[i % len]` if given, else to core `i mod ncores`.
    pub cpus: Option<Vec<usize>>,
    pub plane: PlaneKind,
    pub clock: Clock,
    /// Where workers report learned endpoints.
    pub events: Sender<FlowEvent>,
    /// With the kernel fast path: workers move learned flows into the XDP program's map.
    pub offload: Option<Offloading>,
    /// AF_XDP sockets, one per receive queue, dealt out round robin (socket `j` to worker
    /// `j % n`); with several workers each hands the frames of other workers' flows over.
    /// Empty without the AF_XDP plane.
    pub xsks: Vec<crate::sys::xsk::XskSocket>,
    /// What new packet sources are checked against (see `Guard`).
    pub policy: SharedPolicy,
    /// Options of the socket planes.
    pub tuning: SocketTuning,
    /// The relay's DTLS certificate and options: flows with DTLS-SRTP make their endpoints
    /// from it. Without it such flows drop their media.
    pub dtls: Option<Arc<DtlsContext>>,
}

/// Options of the socket planes that cut the kernel's share of a forward, each measured on and
/// off (bench/README.md, "Connected sockets and fixed files").
#[derive(Debug, Clone, Copy, Default)]
pub struct SocketTuning {
    /// `--connect-latched`: connect a flow's socket to its peer once latched (see `connect`).
    pub connect_latched: bool,
    /// `--uring-fixed-files`: the uring plane puts its sockets in a fixed-file table.
    pub uring_fixed_files: bool,
}

/// Receive slots per socket read.
const BATCH: usize = 32;

impl Workers {
    /// Start the workers (see [`WorkersConfig`]).
    pub fn spawn(cfg: WorkersConfig) -> Result<Workers, WorkerError> {
        let WorkersConfig {
            workers: n,
            cpus,
            plane,
            clock,
            events,
            offload,
            xsks,
            policy,
            tuning,
            dtls,
        } = cfg;
        if n == 0 {
            return Err(WorkerError::NoWorkers);
        }
        let afxdp = !xsks.is_empty();
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Workers {
            handles: Vec::with_capacity(n),
            stop,
            plane,
            offload,
            userspace: Vec::with_capacity(n),
            refused_sources: Vec::with_capacity(n),
            health: Vec::with_capacity(n),
            srtp: Arc::default(),
            handshakes: Arc::default(),
            afxdp: Vec::new(),
            owners: (afxdp && n > 1).then(|| Arc::new(PortOwners::default())),
        };
        let mut wakes = Vec::with_capacity(n);
        for index in 0..n {
            let wake = EventFd::new().map_err(|e| WorkerError::Setup { index, source: e })?;
            wakes.push(Arc::new(wake));
        }
        let mut xsk_states: Vec<Option<_>> = if afxdp {
            crate::dataplane::afxdp::deal(xsks, &wakes, workers.owners.as_ref())
                .into_iter()
                .map(|(state, counters)| {
                    workers.afxdp.push(counters);
                    Some(state)
                })
                .collect()
        } else {
            Vec::new()
        };
        xsk_states.resize_with(n, || None);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        for (index, (wake, xsk)) in wakes.into_iter().zip(xsk_states).enumerate() {
            let setup = |e| WorkerError::Setup { index, source: e };
            let ready = Readiness::new(&wake).map_err(setup)?;
            let start = match (xsk, plane) {
                (Some(xsk), _) => {
                    xsk.watch(&ready).map_err(setup)?;
                    PlaneStart::Afxdp(ready, Box::new(xsk))
                }
                (None, PlaneKind::Uring) => PlaneStart::Uring(ready, tuning.uring_fixed_files),
                (None, PlaneKind::Mmsg) => PlaneStart::Mmsg(ready),
            };
            let (tx, rx) = crossbeam_channel::unbounded();
            let userspace = Arc::new(AtomicU64::new(0));
            workers.userspace.push(userspace.clone());
            let refused = Arc::new(AtomicU64::new(0));
            workers.refused_sources.push(refused.clone());
            let health = Arc::new(WorkerHealth::default());
            workers.health.push(health.clone());
            let cpu = match &cpus {
                Some(list) if !list.is_empty() => list.get(index % list.len()).copied(),
                _ if !cores.is_empty() => cores.get(index % cores.len()).map(|c| c.id),
                _ => None,
            };
            let w = Worker::new(WorkerConfig {
                index,
                wake: wake.clone(),
                updates: rx,
                clock,
                events: events.clone(),
                stop: workers.stop.clone(),
                offload: workers.offload.clone(),
                userspace,
                guard: Guard {
                    policy: policy.clone(),
                    refused,
                    srtp: workers.srtp.clone(),
                    handshakes: workers.handshakes.clone(),
                    health,
                },
                connect: tuning.connect_latched && workers.offload.is_none(),
                dtls: dtls.clone(),
            });
            let join = std::thread::Builder::new()
                .name(format!("rtprelay-w{index}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                            tracing::warn!(worker = index, cpu, "could not pin worker to CPU");
                        }
                    }
                    w.run(start);
                })
                .map_err(setup)?;
            workers.handles.push(Handle {
                tx,
                wake,
                join: Some(join),
            });
        }
        Ok(workers)
    }

    /// The worker for a call: `shard_key` is a hash of the call-id.
    pub fn worker_for(&self, shard_key: u64) -> usize {
        worker_index(shard_key, self.handles.len())
    }

    /// Hand `update` to `worker` and wake it, so the change is live within about a millisecond.
    pub fn send(&self, worker: usize, update: FlowUpdate) {
        self.send_batch(worker, vec![update]);
    }

    /// Hand several updates to `worker` at once: it applies them together, so a packet never
    /// finds one flow of a call open and its egress flow not yet.
    pub fn send_batch(&self, worker: usize, updates: Vec<FlowUpdate>) {
        let Some(h) = self.handles.get(worker) else {
            tracing::error!(worker, "flow update for a worker that does not exist");
            return;
        };
        // Before the update (and so before the NG reply): a frame for the flow that another
        // worker receives right after must find its owner.
        if let Some(owners) = &self.owners {
            for u in &updates {
                if let FlowUpdate::Open { socket, .. } = u {
                    if let Ok(local) = socket.local_addr() {
                        owners.set(local, worker);
                    }
                }
            }
        }
        if h.tx.send(updates).is_err() {
            tracing::error!(worker, "worker is gone; flow update lost");
        }
        h.wake.notify();
    }

    /// Stop all workers and wait for them.
    pub fn shutdown(self) {
        drop(self);
    }

    /// The plane reported to operators: `xdp` when the kernel fast path runs (the userspace
    /// plane then serves only what is not offloaded), else the userspace plane.
    pub fn plane_name(&self) -> &'static str {
        match (&self.offload, !self.afxdp.is_empty()) {
            (Some(_), true) => "afxdp",
            (Some(_), false) => "xdp",
            (None, _) => self.plane.name(),
        }
    }

    pub fn counters(&self) -> PlaneCounters {
        PlaneCounters {
            userspace_packets: self
                .userspace
                .iter()
                .map(|u| u.load(Ordering::Relaxed))
                .sum(),
            refused_sources: self
                .refused_sources
                .iter()
                .map(|u| u.load(Ordering::Relaxed))
                .sum(),
            worker_panics: self.panics(),
            srtp_auth_failures: self.srtp.auth_failures.load(Ordering::Relaxed),
            srtp_replays: self.srtp.replays.load(Ordering::Relaxed),
            dtls_handshakes: self.handshakes.dtls_completed.load(Ordering::Relaxed),
            dtls_failures: self.handshakes.dtls_failed.load(Ordering::Relaxed),
            stun_answered: self.handshakes.stun_answered.load(Ordering::Relaxed),
            stun_refused: self.handshakes.stun_refused.load(Ordering::Relaxed),
            xdp: self.offload.as_ref().map(|Offloading { table: t, .. }| {
                (
                    t.stats().unwrap_or_else(|e| {
                        tracing::debug!(error = %e, "cannot read XDP stats");
                        XdpStats::default()
                    }),
                    t.installed(),
                )
            }),
            afxdp: (!self.afxdp.is_empty()).then(|| {
                let sum = |f: fn(&XskCounters) -> &AtomicU64| {
                    self.afxdp
                        .iter()
                        .map(|c| f(c).load(Ordering::Relaxed))
                        .sum()
                };
                AfxdpCounters {
                    transmitted: sum(|c| &c.transmitted),
                    handed_off: sum(|c| &c.handed_off),
                    handoff_dropped: sum(|c| &c.handoff_dropped),
                    unmatched: sum(|c| &c.unmatched),
                    tx_dropped: sum(|c| &c.tx_dropped),
                    kernel: self.afxdp.iter().fold(Default::default(), |mut t, c| {
                        t += c.kernel();
                        t
                    }),
                }
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Panics caught in the workers so far.
    pub fn panics(&self) -> u64 {
        self.health.iter().map(|h| h.panics()).sum()
    }

    /// The first worker that gave up after too many panics, if any.
    pub fn dead(&self) -> Option<usize> {
        self.health.iter().position(|h| h.is_dead())
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for h in &self.handles {
            h.wake.notify();
        }
        for h in &mut self.handles {
            if let Some(j) = h.join.take() {
                if j.join().is_err() {
                    tracing::error!("worker thread panicked");
                }
            }
        }
    }
}

/// The worker, of `workers`, that owns calls with `shard_key` (see [`Workers::worker_for`]).
/// Public so integration tests can place calls on chosen workers.
pub fn worker_index(shard_key: u64, workers: usize) -> usize {
    let n = workers.max(1) as u64;
    // Mix, so keys that differ only in high bits still spread.
    let mixed = shard_key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    (mixed % n) as usize
}

/// Report an event without ever blocking the packet path.
fn emit(events: &Sender<FlowEvent>, ev: FlowEvent) {
    match events.try_send(ev) {
        Ok(()) | Err(TrySendError::Disconnected(_)) => {}
        Err(TrySendError::Full(_)) => tracing::debug!("flow event channel full, event dropped"),
    }
}
