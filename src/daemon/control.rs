//! The control side of the running daemon: one lock around the dispatcher, the session engine
//! and the socket binder, shared by the NG transports and the timer tick. Workers never take it.
//!
//! The engine handles commands without I/O; the port binding they need happens here, around each
//! command and after each tick ([`Engine::plan_ports`], [`Engine::sync_ports`]).

use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;

use crate::control::dispatch::{Dispatcher, Step};
use crate::daemon::binder::SocketBinder;
use crate::daemon::recorder::{RecordCtl, Recorder};
use crate::session::{Engine, MediaAction};
use crate::time::Clock;
use crate::worker::{FlowEvent, FlowUpdate, Workers};

/// Passes over calls whose ports are still held (see [`Control::restore`]), and the pause
/// between them.
const RESTORE_ATTEMPTS: usize = 10;
const RESTORE_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Everything the control plane changes, behind one lock.
pub struct ControlState {
    pub dispatcher: Dispatcher,
    pub engine: Engine,
    pub binder: SocketBinder,
    pub workers: Workers,
    /// The spool writer, when `--recording-dir` is set.
    pub recorder: Option<Recorder>,
}

/// Shared handle used by the transports and the tick loop.
#[derive(Clone)]
pub struct Control {
    state: Arc<Mutex<ControlState>>,
    clock: Clock,
    events: Receiver<FlowEvent>,
    /// NG request counts and latency for `/metrics`.
    ng_stats: crate::metrics::ng::NgStats,
    /// The Redis call store, when `--redis` is given.
    store: Option<Arc<crate::daemon::store::CallStore>>,
    /// A hot standby's takeover flag (`--redis-follow`): the CLI's `takeover` sets it.
    takeover: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Control {
    pub fn new(state: ControlState, clock: Clock, events: Receiver<FlowEvent>) -> Control {
        Control {
            state: Arc::new(Mutex::new(state)),
            clock,
            events,
            ng_stats: Default::default(),
            store: None,
            takeover: None,
        }
    }

    /// Lets the CLI's `takeover` set `flag` (a hot standby's).
    pub fn with_takeover(mut self, flag: Option<Arc<std::sync::atomic::AtomicBool>>) -> Control {
        self.takeover = flag;
        self
    }

    /// `takeover`: `false` when this relay is no standby.
    pub fn request_takeover(&self) -> bool {
        match &self.takeover {
            Some(f) => {
                f.store(true, std::sync::atomic::Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Writes calls to `store` after each command that changes them.
    pub fn with_store(mut self, store: Option<crate::daemon::store::CallStore>) -> Control {
        self.store = store.map(Arc::new);
        self
    }

    /// Answers one NG message (`<cookie> <body>`) from `peer`; `None` means no reply is due.
    /// Retransmissions are recognised per peer (see [`crate::control::CookieCache`]).
    pub fn handle_message(
        &self,
        peer: &crate::control::transport::NgPeer,
        msg: &[u8],
    ) -> Option<Vec<u8>> {
        let started_us = self.clock.mono_us();
        let now = self.clock.now();
        let proxy = peer.addr().map(|a| a.ip());
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ControlState {
            dispatcher,
            engine,
            binder,
            workers,
            recorder,
        } = &mut *guard;
        let errors_before = dispatcher.error_count();
        let (mut cmd, pending) = match dispatcher.begin(now.mono, peer.key(), msg) {
            Step::Answer(out) => {
                if dispatcher.error_count() > errors_before {
                    self.ng_stats.error(proxy);
                }
                return out;
            }
            Step::Run(cmd, pending) => (*cmd, pending),
        };
        let name = cmd.name();
        if let crate::session::Command::Offer(p) = &mut cmd {
            p.proxy = peer.addr();
        }
        // Everything the command logs, in the session layer and on its media, carries its call.
        let span = cmd.span();
        let _in_call = span.enter();
        let stored = (self.store.as_ref())
            .and_then(|_| cmd.call_ref())
            .map(|c| c.call_id.clone());
        let reply = run(engine, binder, workers, recorder.as_ref(), now, cmd);
        if let (Some(store), Some(call_id)) = (&self.store, stored) {
            store.after(engine, name, &call_id);
        }
        let out = dispatcher.finish(now.mono, pending, &reply);
        // From the message's arrival at the control side (lock wait included) to its answer.
        let secs = self.clock.mono_us().saturating_sub(started_us) as f64 / 1e6;
        self.ng_stats.request(proxy, name, secs);
        if dispatcher.error_count() > errors_before {
            self.ng_stats.error(proxy);
        }
        Some(out)
    }

    /// Runs one operator command (from the CLI) through the engine, like an NG command: the
    /// media actions it queues (closing terminated calls' flows) go to the workers at once.
    pub fn handle_admin(&self, cmd: crate::session::Command) -> crate::session::Reply {
        let now = self.clock.now();
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ControlState {
            engine,
            binder,
            workers,
            recorder,
            ..
        } = &mut *guard;
        run(engine, binder, workers, recorder.as_ref(), now, cmd)
    }

    /// The Prometheus text for `GET /metrics`: ours, then rtpengine's names, then the NG
    /// request families.
    pub fn metrics(&self) -> String {
        let now = self.clock.now();
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let snap = guard.engine.snapshot(now);
        let plane = guard.workers.counters();
        let table = crate::metrics::rtpengine::table_figures(&guard.engine, now.mono);
        let mut text = crate::metrics::render(
            &snap,
            guard.dispatcher.command_counts(),
            guard.dispatcher.error_count(),
        );
        text.push_str(&crate::metrics::render_plane(&plane));
        text.push_str(&crate::metrics::render_draining(guard.engine.is_draining()));
        if let Some(r) = &guard.recorder {
            text.push_str(&crate::metrics::render_recording(r.dropped()));
        }
        drop(guard);
        text.push_str(&crate::metrics::rtpengine::render(&snap, &plane, &table));
        let mut registry = prometheus_client::registry::Registry::default();
        self.ng_stats.register(&mut registry);
        if let Some(store) = &self.store {
            store.stats().register(&mut registry);
        }
        text.push_str(&crate::metrics::sheet::encode(&registry));
        text
    }

    /// `/ready`: every worker alive, and not draining (a draining relay takes no new calls).
    pub fn ready(&self) -> Result<(), String> {
        if let Some(w) = self.dead_worker() {
            return Err(format!("worker {w} stopped after too many panics"));
        }
        match self.drain_state() {
            (true, calls) => Err(format!("draining, {calls} calls left")),
            (false, _) => Ok(()),
        }
    }

    /// Makes stored calls live again (at start, before NG is served, or at a takeover), as one
    /// batch of flow updates per worker. Calls whose ports cannot be bound yet are tried again
    /// for a moment: the sockets of a relay that was just killed close a little after it exits
    /// (io_uring tears its ring down in the background). Then the restored calls are written
    /// under this node, and the ones that still failed are deleted.
    pub fn restore(&self, records: &[crate::store::CallRecord]) -> crate::session::Restored {
        let mut total = crate::session::Restored::default();
        let mut pending: Vec<crate::store::CallRecord> = records.to_vec();
        for attempt in 1..=RESTORE_ATTEMPTS {
            let r = self.restore_once(&pending);
            total.calls += r.calls;
            total.present += r.present;
            let (retry, failed): (Vec<_>, Vec<_>) = r.failed.into_iter().partition(|(_, e)| {
                matches!(e, crate::session::RestoreError::Unbound(..)) && attempt < RESTORE_ATTEMPTS
            });
            total.failed.extend(failed);
            if retry.is_empty() {
                break;
            }
            let ids: std::collections::HashSet<String> =
                retry.into_iter().map(|(id, _)| id).collect();
            pending.retain(|r| ids.contains(&r.call_id));
            std::thread::sleep(RESTORE_RETRY);
        }
        for (call_id, why) in &total.failed {
            tracing::warn!(call_id = ?call_id, error = %why, "stored call not restored");
        }
        if let Some(store) = &self.store {
            let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<&str> = records.iter().map(|r| r.call_id.as_str()).collect();
            store.after_restore(&guard.engine, &total, &ids);
        }
        total
    }

    fn restore_once(&self, records: &[crate::store::CallRecord]) -> crate::session::Restored {
        let now = self.clock.now();
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ControlState {
            engine,
            binder,
            workers,
            recorder,
            ..
        } = &mut *guard;
        let t0 = self.clock.mono_us();
        let restored = engine.restore(now, records, binder);
        let t1 = self.clock.mono_us();
        apply_actions(engine, binder, workers, recorder.as_ref());
        engine.sync_ports(binder);
        tracing::debug!(
            calls = restored.calls,
            failed = restored.failed.len(),
            bind_us = t1 - t0,
            open_us = self.clock.mono_us() - t1,
            "restore pass"
        );
        restored
    }

    /// Starts draining (SIGTERM with a grace period; the CLI's `drain` goes through the engine).
    pub fn start_drain(&self) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        guard.engine.start_drain();
    }

    /// Whether the relay drains, and the calls not deleted yet.
    pub fn drain_state(&self) -> (bool, usize) {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (guard.engine.is_draining(), guard.engine.live_calls())
    }

    /// The first worker that gave up after too many panics, if any.
    pub fn dead_worker(&self) -> Option<usize> {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        guard.workers.dead()
    }

    /// Runs timers and takes in what the workers learned. Called periodically.
    pub fn tick(&self) {
        let now = self.clock.now();
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ControlState {
            engine,
            binder,
            workers,
            recorder,
            ..
        } = &mut *guard;
        let mut latched = Vec::new();
        for ev in self.events.try_iter() {
            match ev {
                FlowEvent::Learned { id, addr } => {
                    engine.on_learned(id, addr);
                    if self.store.is_some() {
                        latched.extend(engine.call_of_flow(id).map(String::from));
                    }
                }
                FlowEvent::Handshake { id, state } => {
                    let call = engine.call_of_flow(id).unwrap_or("?");
                    match &state.dtls {
                        Some(crate::dtls::DtlsState::Failed(error)) => {
                            tracing::info!(call, flow = id.0, %error, "DTLS-SRTP handshake failed")
                        }
                        _ => tracing::debug!(call, flow = id.0, ice = ?state.ice,
                            peer = ?state.ice_peer, dtls = ?state.dtls, suite = ?state.suite,
                            "media handshake progressed"),
                    }
                    engine.on_handshake(id, state);
                }
            }
        }
        engine.tick(now);
        apply_actions(engine, binder, workers, recorder.as_ref());
        engine.sync_ports(binder);
        if let Some(store) = &self.store {
            store.after_tick(engine, &latched, now.mono);
        }
    }

    /// Stops the workers (after the transports have stopped).
    pub fn shutdown(self) {
        if let Some(store) = &self.store {
            store.finish();
        }
        if let Ok(m) = Arc::try_unwrap(self.state) {
            let state = m.into_inner().unwrap_or_else(|p| p.into_inner());
            state.workers.shutdown();
            // After the workers: the writer finishes every open entry with all copied packets.
            drop(state.recorder);
        }
    }
}

/// Runs one command on the engine and carries out what it asked for. The engine binds nothing:
/// the pairs the command may take are bound first; after the flows took their sockets, what was
/// freed, parked or not taken is closed.
fn run(
    engine: &mut Engine,
    binder: &mut SocketBinder,
    workers: &Workers,
    recorder: Option<&Recorder>,
    now: crate::time::Now,
    cmd: crate::session::Command,
) -> crate::session::Reply {
    engine.plan_ports(&cmd);
    engine.sync_ports(binder);
    let reply = engine.handle(now, cmd);
    apply_actions(engine, binder, workers, recorder);
    engine.sync_ports(binder);
    reply
}

/// Hands the engine's queued media actions to the workers, one batch per worker, so that all
/// flows of a negotiation become live together.
fn apply_actions(
    engine: &mut Engine,
    binder: &mut SocketBinder,
    workers: &Workers,
    recorder: Option<&Recorder>,
) {
    let mut batches: Vec<Vec<FlowUpdate>> = (0..workers.len()).map(|_| Vec::new()).collect();
    // Without a spool, `record call` and the recording commands change nothing on the flows.
    let tap = |flow: crate::flow::FlowId, record: bool| {
        recorder.filter(|_| record).map(|r| r.tap(flow.0))
    };
    while let Some(action) = engine.poll_action() {
        let (shard, update) = match action {
            MediaAction::Open {
                shard,
                flow,
                kind,
                local,
                egress,
                rtcp_egress,
                latch,
                counters,
                record,
                crypto,
            } => {
                let Some(socket) = binder.take(local) else {
                    tracing::warn!(%local, "no bound socket for a new flow");
                    continue;
                };
                let open = FlowUpdate::Open {
                    id: flow,
                    kind,
                    socket,
                    egress,
                    rtcp_egress,
                    latch,
                    counters,
                    record: tap(flow, record),
                    crypto,
                };
                (shard, open)
            }
            MediaAction::Update {
                shard,
                flow,
                kind,
                egress,
                rtcp_egress,
                latch,
                record,
                crypto,
            } => (
                shard,
                FlowUpdate::Update {
                    id: flow,
                    kind,
                    egress,
                    rtcp_egress,
                    latch,
                    record: tap(flow, record),
                    crypto,
                },
            ),
            MediaAction::Tap {
                shard,
                flow,
                record,
            } => (
                shard,
                FlowUpdate::Tap {
                    id: flow,
                    record: tap(flow, record),
                },
            ),
            MediaAction::Block { shard, flow, block } => {
                (shard, FlowUpdate::Block { id: flow, block })
            }
            MediaAction::Record {
                call_id,
                metadata,
                streams,
            } => {
                if let Some(r) = recorder {
                    r.send(RecordCtl::Record {
                        call_id,
                        metadata,
                        streams,
                    });
                }
                continue;
            }
            MediaAction::RecordEnd { call_id } => {
                if let Some(r) = recorder {
                    // Flow updates queued so far go out first: no tap outlives the entry by
                    // more than the packets already in the queue.
                    flush(&mut batches, workers);
                    r.send(RecordCtl::End { call_id });
                }
                continue;
            }
            MediaAction::Close { shard, flow } => (shard, FlowUpdate::Close { id: flow }),
        };
        if let Some(batch) = batches.get_mut(workers.worker_for(shard)) {
            batch.push(update);
        }
    }
    flush(&mut batches, workers);
}

fn flush(batches: &mut [Vec<FlowUpdate>], workers: &Workers) {
    for (worker, batch) in batches.iter_mut().enumerate() {
        if !batch.is_empty() {
            workers.send_batch(worker, std::mem::take(batch));
        }
    }
}
