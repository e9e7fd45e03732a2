//! The session engine: executes NG commands against the call table (sans-IO).
//!
//! `handle` takes a command and the current time and returns the reply; media work it implies is
//! queued as [`MediaAction`]s for the runtime to carry out (`poll_action`). Timers run in `tick`.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use crate::flow::{FlowId, FlowKind};
use crate::session::actions::MediaAction;
use crate::session::call::Call;
use crate::session::command::{Command, Delete};
use crate::session::engine_config::EngineConfig;
use crate::session::error::SessionError;
use crate::session::ports::{PortAllocator, PortBinder};
use crate::session::recording::RecordOp;
use crate::session::reply::Reply;
use crate::time::Now;

/// Where a flow lives in the call table.
#[derive(Debug, Clone)]
pub(crate) struct FlowRef {
    pub call: String,
    pub leg: usize,
    pub media: usize,
    pub kind: FlowKind,
}

/// Running totals for `statistics`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub calls_created: u64,
    pub calls_deleted: u64,
    pub calls_timed_out: u64,
    pub rejected_session_limit: u64,
    /// Calls an operator ended (`terminate`).
    pub calls_terminated: u64,
    /// Calls that ended (destroyed after their delete-delay, timed out or terminated), with the
    /// sum of their durations and of the squares, in seconds.
    pub calls_ended: u64,
    pub calls_duration_secs: f64,
    pub calls_duration_squared: f64,
    /// Media counters of calls that have ended.
    pub ended_media: crate::session::reports::MediaTotals,
    /// SDP endpoints refused as media targets, per [`Refusal`](crate::guard::Refusal) index.
    pub targets_refused: [u64; crate::guard::Refusal::ALL.len()],
    /// RTCP quality of the streams of ended calls (jitter, loss, MOS estimate).
    pub quality: crate::metrics::quality::EndedQuality,
}

/// The call table and everything that changes it.
#[derive(Debug)]
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) calls: HashMap<String, Call>,
    pub(crate) ports: PortAllocator,
    pub(crate) flows: HashMap<FlowId, FlowRef>,
    next_flow: u64,
    actions: VecDeque<MediaAction>,
    pub(crate) totals: Totals,
    pub(crate) started: Option<Now>,
    /// When `tick` looks at the calls again (see timers.rs).
    pub(crate) next_scan: Option<crate::time::Millis>,
    /// Limits the log lines of refused media targets.
    pub(crate) refusal_log: crate::session::targets::LogLimit,
    /// Limits the log lines of interface names the relay does not have.
    pub(crate) interface_log: crate::session::targets::LogLimit,
    /// Set by a drain (see drain.rs): `ping` fails and new calls are refused.
    pub(crate) draining: bool,
    /// Where SDES keys of the relay's own come from (none until the daemon sets a source).
    pub(crate) keys: Box<dyn crate::session::keys::KeySource>,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        let ports = PortAllocator::new(
            cfg.port_min,
            cfg.port_max,
            cfg.port_seed,
            cfg.policy.load().ports().clone(),
            cfg.interfaces.iter().map(|i| i.local),
        );
        Engine {
            cfg,
            calls: HashMap::new(),
            ports,
            flows: HashMap::new(),
            next_flow: 1,
            actions: VecDeque::new(),
            totals: Totals::default(),
            started: None,
            next_scan: None,
            refusal_log: Default::default(),
            interface_log: Default::default(),
            draining: false,
            keys: Box::new(crate::session::keys::NoKeys),
        }
    }

    /// Sets where the relay's SDES keys come from: the daemon's reads the OS random generator.
    pub fn set_key_source(&mut self, keys: Box<dyn crate::session::keys::KeySource>) {
        self.keys = keys;
    }

    /// Executes one command and returns its reply. No I/O: the port pairs it takes were bound
    /// for it by the daemon ([`plan_ports`](Self::plan_ports), then [`sync_ports`](Self::sync_ports)).
    pub fn handle(&mut self, now: Now, cmd: Command) -> Reply {
        let reply = self.execute(now, cmd);
        self.ports.done();
        reply
    }

    fn execute(&mut self, now: Now, cmd: Command) -> Reply {
        self.started.get_or_insert(now);
        let result = match cmd {
            // Kamailio's rtpengine module takes anything but `pong` as a failed ping and stops
            // sending new calls here.
            Command::Ping if self.draining => Err(SessionError::Draining),
            Command::Ping => Ok(Reply::Pong),
            Command::Offer(p) => {
                let load_limit = p.supports_load_limit;
                match self.offer(now, p) {
                    // Clients that said `supports: [load limit]` get rtpengine's soft refusal.
                    // A draining relay refuses the same way: Kamailio's rtpengine module then
                    // tries the next relay of the set with this very offer.
                    Err(e @ (SessionError::SessionLimit | SessionError::Draining))
                        if load_limit =>
                    {
                        return Reply::LoadLimit(e.to_string())
                    }
                    other => other,
                }
            }
            Command::Answer(p) => self.answer(now, p),
            Command::Delete(d) => self.delete(now, d),
            Command::Query(c) => self
                .query(now, &c.call_id)
                .map(|r| Reply::Call(Box::new(r))),
            Command::List { limit } => Ok(Reply::List(self.list(limit))),
            Command::Statistics => Ok(Reply::Statistics(Box::new(self.snapshot(now)))),
            Command::StartRecording(c) => self.recording_command(&c, RecordOp::Start),
            Command::StopRecording(c) => self.recording_command(&c, RecordOp::Stop),
            Command::PauseRecording(c) => self.recording_command(&c, RecordOp::Pause),
            Command::BlockMedia(m) => self.block_media(&m, true),
            Command::UnblockMedia(m) => self.block_media(&m, false),
            Command::Sessions => Ok(self.sessions()),
            Command::Terminate(t) => self.terminate(now, &t),
            Command::GetSetting(s) => Ok(self.get_setting(s)),
            Command::SetSetting(s, v) => Ok(self.set_setting(s, v)),
            Command::Drain(op) => Ok(self.drain_command(op)),
        };
        result.unwrap_or_else(|e| Reply::error(&e))
    }

    /// Before [`handle`](Self::handle): what `cmd` may take from the port pools. An `offer` or
    /// `answer` takes at most three pairs a media section (each side's, and a new one for a far
    /// end that moved) on whichever address, and may use its call's parked pairs again.
    pub fn plan_ports(&mut self, cmd: &Command) {
        let (Command::Offer(p) | Command::Answer(p)) = cmd else {
            self.ports.plan(0, []);
            return;
        };
        let sections = p
            .sdp
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"m="))
            .count()
            .min(crate::session::negotiate::MAX_MEDIA);
        let parked = self.calls.get(&p.call.call_id).into_iter().flat_map(|c| {
            c.legs
                .iter()
                .flat_map(|l| &l.medias)
                .flat_map(|m| &m.parked)
                .map(|(_, pair)| (pair.local, pair.rtp_port))
        });
        let parked: Vec<_> = parked.collect();
        self.ports.plan(3 * sections, parked);
    }

    /// The port I/O, for the daemon to run before and after every command (after
    /// [`plan_ports`](Self::plan_ports)) and after every tick: closes the sockets of pairs that
    /// were freed, parked or not taken, and binds what the planned command may take.
    pub fn sync_ports(&mut self, binder: &mut dyn PortBinder) {
        self.ports.sync(binder);
    }

    /// One call as it is now (read only: the call store copies it after each command).
    pub fn call(&self, call_id: &str) -> Option<&Call> {
        self.calls.get(call_id)
    }

    /// The call a flow belongs to (read only: the call store rewrites a call whose flow latched).
    pub fn call_of_flow(&self, flow: FlowId) -> Option<&str> {
        self.flows.get(&flow).map(|r| r.call.as_str())
    }

    /// The next media action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<MediaAction> {
        self.actions.pop_front()
    }

    /// A worker latched a flow onto a source address.
    pub fn on_learned(&mut self, flow: FlowId, addr: SocketAddr) {
        let Some(r) = self.flows.get(&flow) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&r.call) else {
            return;
        };
        let _in_call = crate::session::log::call_span(&call.id, None).entered();
        tracing::debug!(flow = flow.0, kind = ?r.kind, %addr, "media source learned");
        let Some(slot) = call
            .legs
            .get_mut(r.leg)
            .and_then(|l| l.medias.get_mut(r.media))
        else {
            return;
        };
        match r.kind {
            FlowKind::Rtp | FlowKind::Opaque => slot.rtp.learned = Some(addr),
            FlowKind::Rtcp => slot.rtcp.learned = Some(addr),
        }
    }

    /// A worker reports where a flow's ICE and DTLS handshakes are (for `query`).
    pub fn on_handshake(&mut self, flow: FlowId, state: crate::flow::table::HandshakeState) {
        let Some(r) = self.flows.get(&flow) else {
            return;
        };
        let Some(slot) = self
            .calls
            .get_mut(&r.call)
            .and_then(|c| c.legs.get_mut(r.leg))
            .and_then(|l| l.medias.get_mut(r.media))
        else {
            return;
        };
        match r.kind {
            FlowKind::Rtp | FlowKind::Opaque => slot.rtp.handshake = Some(state),
            FlowKind::Rtcp => slot.rtcp.handshake = Some(state),
        }
    }

    /// Number of calls in the table (including deleted ones waiting for their delete-delay).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    pub(crate) fn push(&mut self, a: MediaAction) {
        self.actions.push_back(a);
    }

    fn new_flow(&mut self, r: FlowRef) -> FlowId {
        let id = FlowId(self.next_flow);
        self.next_flow += 1;
        self.flows.insert(id, r);
        id
    }

    /// New RTP and RTCP flow ids for media slot `media` of `leg`.
    pub(crate) fn new_stream_flows(
        &mut self,
        call: &str,
        leg: usize,
        media: usize,
    ) -> (FlowId, FlowId) {
        let mut flow = |kind| {
            self.new_flow(FlowRef {
                call: call.to_owned(),
                leg,
                media,
                kind,
            })
        };
        (flow(FlowKind::Rtp), flow(FlowKind::Rtcp))
    }

    /// `delete`: schedules destruction after the delete-delay and reports the call's stats.
    fn delete(&mut self, now: Now, d: Delete) -> Result<Reply, SessionError> {
        let Some(call) = self.calls.get_mut(&d.call.call_id) else {
            if d.fatal {
                return Err(SessionError::DeleteNotFound);
            }
            return Ok(Reply::Warning(
                "Call-ID not found or tags didn't match".into(),
            ));
        };
        if call.destroy_at.is_some() {
            return Ok(Reply::Ok);
        }
        let delay = d
            .delete_delay
            .map(|s| std::time::Duration::from_secs(u64::from(s)))
            .unwrap_or(self.cfg.delete_delay);
        call.destroy_at = Some(now.mono.plus(delay));
        call.last_signal = now;
        let reply = self
            .query(now, &d.call.call_id)
            .map(|r| Reply::Call(Box::new(r)));
        self.totals.calls_deleted += 1;
        if delay.is_zero() {
            self.destroy(now, &d.call.call_id);
        }
        reply
    }

    /// Removes a call that never came to be (its first offer failed), without counting it.
    pub(crate) fn discard(&mut self, call_id: &str) {
        self.remove(call_id);
    }

    /// Removes a call now: closes its flows and frees its ports.
    pub(crate) fn destroy(&mut self, now: Now, call_id: &str) {
        if let Some(call) = self.calls.get(call_id) {
            let ended = crate::session::log::end_of_call(now, call);
            self.totals.quality.observe_call(&ended);
            let secs = now.mono.since(call.created.mono).as_secs_f64();
            self.totals.calls_ended += 1;
            self.totals.calls_duration_secs += secs;
            self.totals.calls_duration_squared += secs * secs;
        }
        if self.remove(call_id) {
            tracing::info!(call_id = ?call_id, "call destroyed");
        }
    }

    fn remove(&mut self, call_id: &str) -> bool {
        let Some(call) = self.calls.remove(call_id) else {
            return false;
        };
        self.account_ended(&call);
        for leg in &call.legs {
            for slot in &leg.medias {
                for s in [&slot.rtp, &slot.rtcp] {
                    self.flows.remove(&s.flow);
                    if s.opened {
                        self.actions.push_back(MediaAction::Close {
                            shard: call.shard,
                            flow: s.flow,
                        });
                    }
                }
                for p in slot.local.iter().chain(slot.parked.iter().map(|(_, p)| p)) {
                    self.ports.release(p.local, p.rtp_port);
                }
            }
        }
        // After the closes: the writer finishes the entry with every packet copied so far.
        if call.record_open {
            self.actions.push_back(MediaAction::RecordEnd {
                call_id: call.id.clone(),
            });
        }
        true
    }
}

/// Stable shard key of a call-id (public so tests can tell which worker a call lands on).
pub fn shard_of(call_id: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    call_id.hash(&mut h);
    h.finish()
}
