//! Keeping the kernel fast path's rules in line with a worker's flows (see `offload`).

use super::offload::{desired_rule, EgressView};
use super::run::Worker;
use crate::time::Millis;

impl Worker {
    /// Note that flow `id` (and so the flow that sends to its peer) may need a new kernel rule.
    pub(super) fn mark(&mut self, id: u64) {
        if let Some(off) = self.offload.as_mut() {
            off.mark(id);
        }
        if self.connect {
            self.connect_dirty.push(id);
        }
    }

    /// After a pass: bring the kernel rules of changed flows up to date, and once a second
    /// (less often with thousands of rules) fold the kernel's counters and re-check every flow.
    pub(super) fn sync_offload(&mut self) {
        let Some(off) = self.offload.as_mut() else {
            return;
        };
        let now = self.clock.mono();
        let mut ids = off.take_dirty();
        let sweep = off.sweep_due(now);
        if sweep {
            off.begin_sweep();
            ids = self.flows.ids().collect();
        } else if ids.is_empty() {
            return;
        } else {
            // A flow's rule sends to its egress flow's peer: when a flow's endpoint moves, the
            // flow that forwards to it changes too (its egress is this flow's egress, as calls
            // pair flows both ways).
            let extra: Vec<u64> = ids
                .iter()
                .filter_map(|id| self.flows.get(*id).and_then(|f| f.egress()).map(|e| e.0))
                .collect();
            ids.extend(extra);
            ids.sort_unstable();
            ids.dedup();
        }
        for id in ids {
            self.sync_flow(id, now);
        }
        if sweep {
            if let Some(off) = self.offload.as_mut() {
                off.end_sweep();
            }
        }
    }

    fn sync_flow(&mut self, id: u64, now: Millis) {
        let Some(flow) = self.flows.get(id) else {
            return;
        };
        let egress = flow
            .egress()
            .and_then(|e| self.flows.get(e.0))
            .and_then(|e| {
                e.local().map(|local| EgressView {
                    local,
                    target: e.latch().target(),
                })
            });
        let want = flow.local().and_then(|l| {
            desired_rule(
                flow.kind(),
                l,
                flow.latch(),
                // The recorder copies packets; SRTP needs AES; demuxed RTCP leaves by another
                // socket than the flow's egress: all stay in userspace.
                flow.recorded() || self.flows.transforms(id) || flow.rtcp_egress().is_some(),
                flow.blocked(),
                egress,
            )
        });
        let (Some(off), Some(flow)) = (self.offload.as_mut(), self.flows.get_mut(id)) else {
            return;
        };
        let local = flow.local();
        let (io, counters) = flow.io_and_counters();
        off.reconcile(id, &mut io.offloaded, local, want, counters, now);
    }

    /// Removes every kernel rule of this worker's flows, and marks the flows for the next sync.
    pub(super) fn clear_kernel_rules(&mut self, now: Millis) {
        let Some(off) = self.offload.as_mut() else {
            return;
        };
        for (id, f) in self.flows.iter_mut() {
            let (io, counters) = f.io_and_counters();
            off.remove(id, &mut io.offloaded, counters, now);
            off.mark(id);
        }
    }
}
