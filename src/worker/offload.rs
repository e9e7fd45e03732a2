//! Offload after learning, as rtpengine kernelises a stream: a flow's first packets take the
//! userspace path (latching, strict-source checks); once its endpoint is fixed and its egress
//! peer is known, the worker installs a rule in the XDP program's map and the kernel forwards
//! the rest. Signalling changes, re-latching, recording, `block media` and close update or
//! remove the rule at once, and the kernel's per-flow counters are folded into the stream
//! counters, so an offloaded call reports like a userspace one.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::flow::latch::Latch;
use crate::flow::{FlowKind, StreamCounters};
use crate::sys::xdp::{FlowTotals, Rule, RuleKind, SlotTotals, XdpTable};
use crate::time::Millis;

/// How often a worker folds kernel counters and re-checks every flow's rule. Counters in
/// `query` and the timeouts see kernel-forwarded packets with at most this delay.
pub(super) const SWEEP: Duration = Duration::from_secs(1);
/// A sweep reads the worker's counter slots in batches (a few syscalls) but still re-checks every
/// flow: past this many flows a second, the sweep slows down in proportion...
const FOLDS_PER_SECOND: u64 = 2000;
/// ...but never below one every few seconds (timeouts are tens of seconds).
const SWEEP_MAX: Duration = Duration::from_secs(5);

/// The sweep interval for a worker holding `installed` kernel rules.
pub(super) fn sweep_interval(installed: usize) -> Duration {
    let ms = (installed as u64).saturating_mul(1000) / FOLDS_PER_SECOND;
    Duration::from_millis(ms).clamp(SWEEP, SWEEP_MAX)
}

/// A flow's rule as it is in the kernel map.
#[derive(Debug)]
pub(super) struct Installed {
    local: SocketAddr,
    rule: Rule,
    slot: u32,
    /// The slot's totals at the last fold.
    seen: FlowTotals,
}

/// The egress side of a flow as the rule needs it: the relay's sending socket address and
/// where packets go.
#[derive(Debug, Clone, Copy)]
pub(super) struct EgressView {
    pub local: SocketAddr,
    pub target: Option<SocketAddr>,
}

/// The rule a flow should have in the kernel now, or `None` while it must stay in userspace.
///
/// Stays in userspace: a flow still learning (the latch needs every packet), a flow the caller
/// keeps there (`userspace`: recorded, as the recorder copies packets; SRTP, as BPF cannot do
/// AES), a flow with no egress peer yet, and a flow that bridges address families (the program
/// rewrites headers in place).
///
/// A `blocked` flow (`block media`; the payload types that still pass) is offloaded like any
/// other, with a rule that has the kernel drop its media (counted as received) and forward only
/// its RTCP and DTMF events: unlike rtpengine, which takes blocked streams out of the kernel,
/// the drop then costs no trip to userspace.
pub(super) fn desired_rule(
    kind: FlowKind,
    local: SocketAddr,
    latch: &Latch,
    userspace: bool,
    blocked: Option<u128>,
    egress: Option<EgressView>,
) -> Option<Rule> {
    if userspace || !latch.is_settled() {
        return None;
    }
    let egress = egress?;
    let dest = egress.target?;
    if local.ip().is_unspecified() || egress.local.ip().is_unspecified() {
        return None;
    }
    if local.is_ipv4() != dest.is_ipv4() || egress.local.is_ipv4() != dest.is_ipv4() {
        return None;
    }
    let expect = if latch.config().strict {
        Some(latch.source()?)
    } else {
        None
    };
    if expect.is_some_and(|e| e.is_ipv4() != local.is_ipv4()) {
        return None;
    }
    Some(Rule {
        source: egress.local,
        dest,
        expect,
        kind: match kind {
            FlowKind::Rtp => RuleKind::Rtp,
            FlowKind::Rtcp => RuleKind::Rtcp,
            FlowKind::Opaque => RuleKind::Opaque,
        },
        block: blocked,
    })
}

/// One worker's side of the kernel fast path.
pub(super) struct Offload {
    table: Arc<XdpTable>,
    /// Flows whose rule may have to change, checked after the current pass.
    dirty: Vec<u64>,
    next_sweep: Millis,
    /// Installs the map refused (full, or an error); those flows stay in userspace.
    refused: u64,
    /// Rules this worker has in the kernel now.
    installed: usize,
    /// False: never install rules (`--xdp-no-offload`).
    install: bool,
    /// This worker's partition of the counter slots.
    part: usize,
    /// The partition's totals, read at once at the start of a sweep (buffers kept between
    /// sweeps); `fresh` while a sweep uses them.
    snapshot: SlotTotals,
    fresh: bool,
}

impl Offload {
    pub(super) fn new(table: Arc<XdpTable>, now: Millis, install: bool) -> Offload {
        Offload {
            dirty: Vec::new(),
            next_sweep: now.plus(SWEEP),
            refused: 0,
            installed: 0,
            install,
            part: table.claim_partition(),
            snapshot: SlotTotals::default(),
            fresh: false,
            table,
        }
    }

    /// Read this worker's counter slots at once for the folds of the sweep that starts now.
    pub(super) fn begin_sweep(&mut self) {
        self.fresh = match self.table.totals_all(self.part, &mut self.snapshot) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "batched counter read failed; reading slots one by one");
                false
            }
        };
    }

    pub(super) fn end_sweep(&mut self) {
        self.fresh = false;
    }

    /// A slot (re)starting from zero: what the snapshot holds for it is some earlier flow's.
    fn forget(&mut self, slot: u32) {
        if let Some(t) = self.snapshot.get_mut(slot) {
            *t = FlowTotals::default();
        }
    }

    pub(super) fn mark(&mut self, id: u64) {
        self.dirty.push(id);
    }

    /// The flows marked since the last call (possibly repeated).
    pub(super) fn take_dirty(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.dirty)
    }

    /// True once per sweep interval (see [`sweep_interval`]).
    pub(super) fn sweep_due(&mut self, now: Millis) -> bool {
        if now < self.next_sweep {
            return false;
        }
        self.next_sweep = now.plus(sweep_interval(self.installed));
        true
    }

    /// Bring a flow's kernel rule in line with `want`, folding its counters first so that
    /// nothing the kernel counted is lost.
    pub(super) fn reconcile(
        &mut self,
        flow: u64,
        current: &mut Option<Installed>,
        local: Option<SocketAddr>,
        want: Option<Rule>,
        counters: &StreamCounters,
        now: Millis,
    ) {
        if let Some(inst) = current.as_mut() {
            self.fold(inst, counters, now);
        }
        let (Some(rule), Some(l), true) = (want, local, self.install) else {
            self.remove(flow, current, counters, now);
            return;
        };
        match current.as_mut() {
            Some(inst) if inst.local == l && inst.rule == rule => {}
            Some(inst) if inst.local == l => match self.table.install(self.part, l, &rule) {
                Ok(slot) => {
                    inst.rule = rule;
                    if slot != inst.slot {
                        self.forget(slot);
                        inst.slot = slot;
                        inst.seen = FlowTotals::default();
                    }
                    tracing::debug!(flow, ?rule, "kernel rule updated");
                }
                Err(e) => {
                    tracing::warn!(flow, error = %e, "cannot update kernel rule; flow back to userspace");
                    self.remove(flow, current, counters, now);
                }
            },
            Some(_) => self.remove(flow, current, counters, now),
            None => match self.table.install(self.part, l, &rule) {
                Ok(slot) => {
                    tracing::debug!(flow, ?rule, slot, "flow offloaded to XDP");
                    self.forget(slot);
                    self.installed += 1;
                    *current = Some(Installed {
                        local: l,
                        rule,
                        slot,
                        seen: FlowTotals::default(),
                    });
                }
                Err(e) => {
                    self.refused += 1;
                    if self.refused.is_power_of_two() {
                        tracing::warn!(flow, error = %e, refused = self.refused,
                            "cannot offload flow; it stays in userspace");
                    }
                }
            },
        }
    }

    /// Take the flow's rule out of the kernel, folding what it counted up to its removal.
    pub(super) fn remove(
        &mut self,
        flow: u64,
        current: &mut Option<Installed>,
        c: &StreamCounters,
        now: Millis,
    ) {
        if let Some(mut inst) = current.take() {
            self.installed = self.installed.saturating_sub(1);
            match self.table.remove(inst.local) {
                Ok(last) => {
                    if let Some(t) = last {
                        add_since(&mut inst, t, c, now);
                    }
                    tracing::debug!(flow, "kernel rule removed");
                }
                Err(e) => tracing::warn!(flow, error = %e, "cannot remove kernel rule"),
            }
        }
    }

    /// Add what the kernel counted since the last fold to the stream's counters.
    pub(super) fn fold(&self, inst: &mut Installed, c: &StreamCounters, now: Millis) {
        let snap = self.fresh.then(|| self.snapshot.get(inst.slot)).flatten();
        let t = match snap {
            Some(t) => *t,
            None => match self.table.totals(inst.slot) {
                Ok(t) => t,
                Err(_) => return,
            },
        };
        add_since(inst, t, c, now);
    }
}

/// Add the slot's totals `t` less what was folded already to the stream's counters.
fn add_since(inst: &mut Installed, t: FlowTotals, c: &StreamCounters, now: Millis) {
    let d = |new: u64, old: u64| new.saturating_sub(old);
    let packets = d(t.packets, inst.seen.packets);
    let rtcp = d(t.rtcp_packets, inst.seen.rtcp_packets);
    c.packets.fetch_add(packets, Relaxed);
    c.bytes.fetch_add(d(t.bytes, inst.seen.bytes), Relaxed);
    c.rtcp_packets.fetch_add(rtcp, Relaxed);
    c.rtcp_bytes
        .fetch_add(d(t.rtcp_bytes, inst.seen.rtcp_bytes), Relaxed);
    c.errors.fetch_add(d(t.errors, inst.seen.errors), Relaxed);
    c.dropped
        .fetch_add(d(t.blocked, inst.seen.blocked), Relaxed);
    if packets + rtcp > 0 {
        c.last_packet_ms.store(now.0.max(1), Relaxed);
    }
    inst.seen = t;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::latch::{EndpointLearning, LatchConfig, DEFAULT_WINDOW};

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn latch(strict: bool, learning: EndpointLearning) -> Latch {
        Latch::new(
            LatchConfig {
                expected: Some(a("198.51.100.3:2000")),
                learning,
                strict,
                asymmetric: false,
                window: DEFAULT_WINDOW,
                signalled_from: None,
                sdp_unreachable: false,
                restored: None,
            },
            Millis(0),
        )
    }

    const LOCAL: &str = "192.0.2.1:30000";

    fn egress(target: &str) -> Option<EgressView> {
        Some(EgressView {
            local: a("192.0.2.1:30002"),
            target: Some(a(target)),
        })
    }

    #[test]
    fn sweeps_slow_down_with_many_rules_within_bounds() {
        assert_eq!(sweep_interval(0), SWEEP);
        assert_eq!(sweep_interval(2000), SWEEP);
        assert_eq!(sweep_interval(6000), Duration::from_secs(3));
        assert_eq!(sweep_interval(1_000_000), SWEEP_MAX);
    }

    #[test]
    fn learning_flows_stay_in_userspace() {
        let l = latch(true, EndpointLearning::Heuristic);
        assert!(!l.is_fixed());
        assert_eq!(
            desired_rule(
                FlowKind::Rtp,
                a(LOCAL),
                &l,
                false,
                None,
                egress("203.0.113.9:4000")
            ),
            None
        );
    }

    #[test]
    fn fixed_strict_flow_gets_a_rule_with_its_source() {
        let mut l = latch(true, EndpointLearning::Heuristic);
        l.on_packet(a("198.51.100.3:2000"), Millis(5));
        assert!(l.is_fixed());
        let r = desired_rule(
            FlowKind::Rtp,
            a(LOCAL),
            &l,
            false,
            None,
            egress("203.0.113.9:4000"),
        );
        assert_eq!(
            r,
            Some(Rule {
                source: a("192.0.2.1:30002"),
                dest: a("203.0.113.9:4000"),
                expect: Some(a("198.51.100.3:2000")),
                kind: RuleKind::Rtp,
                block: None,
            })
        );
    }

    #[test]
    fn blocked_flow_keeps_its_rule_with_the_block_flag() {
        let l = latch(false, EndpointLearning::Off);
        let dtmf = Some(1u128 << 101);
        let r = desired_rule(
            FlowKind::Rtp,
            a(LOCAL),
            &l,
            false,
            dtmf,
            egress("203.0.113.9:4000"),
        );
        assert_eq!(
            r.map(|r| (r.block, r.dest)),
            Some((dtmf, a("203.0.113.9:4000")))
        );
        // Recording still wins: the recorder needs the packets in userspace.
        let r = desired_rule(
            FlowKind::Rtp,
            a(LOCAL),
            &l,
            true,
            dtmf,
            egress("203.0.113.9:4000"),
        );
        assert_eq!(r, None);
    }

    #[test]
    fn non_strict_rule_accepts_any_source() {
        let l = latch(false, EndpointLearning::Off);
        let r = desired_rule(
            FlowKind::Rtcp,
            a(LOCAL),
            &l,
            false,
            None,
            egress("203.0.113.9:4001"),
        );
        assert_eq!(r.map(|r| (r.expect, r.kind)), Some((None, RuleKind::Rtcp)));
    }

    #[test]
    fn recorded_bridged_or_unpaired_flows_stay_in_userspace() {
        let l = latch(false, EndpointLearning::Off);
        let k = FlowKind::Rtp;
        assert_eq!(
            desired_rule(k, a(LOCAL), &l, true, None, egress("203.0.113.9:4000")),
            None
        );
        assert_eq!(desired_rule(k, a(LOCAL), &l, false, None, None), None);
        let no_target = Some(EgressView {
            local: a("192.0.2.1:30002"),
            target: None,
        });
        assert_eq!(desired_rule(k, a(LOCAL), &l, false, None, no_target), None);
        let v6 = Some(EgressView {
            local: a("[2001:db8::1]:30002"),
            target: Some(a("[2001:db8::9]:4000")),
        });
        assert_eq!(desired_rule(k, a(LOCAL), &l, false, None, v6), None);
        assert_eq!(
            desired_rule(
                k,
                a("0.0.0.0:30000"),
                &l,
                false,
                None,
                egress("203.0.113.9:4000")
            ),
            None
        );
    }
}
