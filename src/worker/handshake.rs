//! The worker's side of the flows' handshakes (ICE checks, DTLS-SRTP): their timers run once
//! per pass (a pass comes at least every 100 ms), and what they have to send goes out of the
//! flow's own socket with a plain `send_to`, whatever the plane: the peer must see the answers
//! come from the address it checked.
//!
//! The kernel planes: a flow with a handshake is never offloaded (it always transforms, see
//! `FlowTable::transforms`). The XDP program passes to the stack what is not RTP version 2
//! (STUN, DTLS), even on an offloaded flow's port, so with the `xdp` plane handshake datagrams
//! reach the socket as on the socket planes; with `afxdp`, what matches no rule is redirected
//! to the AF_XDP socket and reaches the flow table through that plane's slots, the same way.
//! Either way the answers leave by the flow's UDP socket, through the kernel's stack.

use std::sync::atomic::Ordering::Relaxed;

use super::run::Worker;

impl Worker {
    /// Drive the handshakes' timers, send their datagrams, add their totals.
    pub(super) fn handshakes(&mut self) {
        self.flows.poll_handshakes(self.clock.mono());
        let mut failed = 0;
        while let Some(t) = self.flows.pop_transmit() {
            let Some(f) = self.flows.get(t.flow) else {
                continue;
            };
            // Nonblocking: a full socket buffer loses the datagram; STUN and DTLS retransmit.
            if let Err(error) = f.io.socket.send_to(&t.bytes, t.dst) {
                failed += 1;
                tracing::debug!(flow = t.flow, dst = %t.dst, %error, "handshake datagram not sent");
            }
        }
        for (id, state) in self.flows.take_handshake_changes() {
            super::emit(
                &self.out,
                super::FlowEvent::Handshake {
                    id: crate::flow::FlowId(id),
                    state,
                },
            );
        }
        let s = self.flows.take_handshake_stats();
        if s == Default::default() && failed == 0 {
            return;
        }
        let h = &self.guard.handshakes;
        h.dtls_completed.fetch_add(s.dtls_completed, Relaxed);
        h.dtls_failed.fetch_add(s.dtls_failed, Relaxed);
        h.stun_answered.fetch_add(s.stun_answered, Relaxed);
        h.stun_refused.fetch_add(s.stun_refused, Relaxed);
        h.send_failures
            .fetch_add(failed + s.outbox_dropped, Relaxed);
    }
}
