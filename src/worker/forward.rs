//! The worker as its plane's [`Forwarder`]: each batch of one flow goes through the flow table,
//! and what it decides is queued on the plane, counted, and reported.

use std::io;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;

use super::run::{Worker, FAULT_PANIC};
use super::{emit, FlowEvent};
use crate::dataplane::{Batch, Forwarder};
use crate::flow::table::Decision;
use crate::flow::FlowId;

impl Forwarder for Worker {
    /// Packets `idx` of `plane`'s current batch all arrived on flow `token`'s socket: the flow
    /// table decides each, the plane queues the forwards.
    fn forward_run<B: Batch + ?Sized>(&mut self, token: u64, idx: Range<usize>, plane: &mut B) {
        let now = self.clock.mono();
        let policy = self.guard.policy.load();
        let Some(mut run) = self.flows.run(token, now, &policy, |io| {
            (io.socket.as_raw_fd(), io.connected)
        }) else {
            return;
        };
        // SRTP on either side: each packet is transformed in its slot; plain flows stay on
        // the read-only, zero-copy path (one branch per batch).
        let transforms = run.transforms();
        for i in idx {
            let decision = if transforms {
                let Some((buf, len, src)) = plane.packet_mut(i) else {
                    run.unusable();
                    continue;
                };
                let d = run.packet_mut(buf, len, src);
                if let Decision::Forward { len, .. } = d {
                    plane.set_len(i, len);
                }
                d
            } else {
                let Some((pkt, src)) = plane.packet(i) else {
                    run.unusable();
                    continue;
                };
                if self.fault_inject && pkt.starts_with(FAULT_PANIC) {
                    panic!("fault injection: worker {} panics on request", self.index);
                }
                run.packet(pkt, src)
            };
            if let Decision::Forward {
                via: (sock, connected),
                dst,
                ..
            } = decision
            {
                // A socket connected to the target sends without naming it (cached route).
                let queued = if connected == Some(dst) {
                    plane.forward_connected(i, sock, dst, token)
                } else {
                    plane.forward(i, sock, dst, token)
                };
                if !queued {
                    run.not_sent();
                }
            }
        }
        let outcome = run.finish();
        self.userspace.fetch_add(outcome.accepted, Relaxed);
        if outcome.refused > 0 {
            self.guard.refused.fetch_add(outcome.refused, Relaxed);
        }
        if outcome.srtp_auth_failures > 0 {
            let n = outcome.srtp_auth_failures;
            self.guard.srtp.auth_failures.fetch_add(n, Relaxed);
        }
        if outcome.srtp_replays > 0 {
            self.guard
                .srtp
                .replays
                .fetch_add(outcome.srtp_replays, Relaxed);
        }
        if outcome.offload {
            self.mark(token);
        }
        if let Some(addr) = outcome.learned {
            emit(
                &self.out,
                FlowEvent::Learned {
                    id: FlowId(token),
                    addr,
                },
            );
        }
    }

    fn recv_failed(&mut self, token: u64, error: &io::Error) {
        tracing::debug!(flow = token, %error, "receive failed");
        // An ICMP error for what a connected socket sent: about the peer, not this flow's input.
        if error
            .raw_os_error()
            .is_some_and(crate::sys::uring::is_peer_error)
        {
            return;
        }
        if let Some(f) = self.flows.get(token) {
            f.counters().errors.fetch_add(1, Relaxed);
        }
    }
}
