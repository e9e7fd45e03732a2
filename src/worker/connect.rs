//! `connect()`ed media sockets (`--connect-latched`): once a flow's peer is fixed for good, its
//! socket is connected to that peer, so the kernel caches the route for what the socket sends
//! (a packet sent without a destination skips the per-packet route lookup), demultiplexes what
//! arrives on the full 4-tuple, and drops other sources by itself, as strict source would.
//!
//! A connected socket only receives from its peer, so a socket is connected only where the
//! flow would refuse everything else anyway: its latch is settled, strict, and the peer it
//! accepts is the one the relay sends to (symmetric). Anything that reopens learning (new
//! signalling that moves the SDP endpoint or the mode, a window that restarts) disconnects the
//! socket first, so a NAT'd peer's new source reaches the latch again. Only the socket planes
//! do it (the XDP and AF_XDP planes never see the socket's packets).
//!
//! What changes for an operator: a packet from another source is dropped by the kernel, which
//! answers it with ICMP port unreachable like any closed port, instead of by the latch (so it
//! is not in the stream's error count), and an ICMP error for what the socket sent is reported
//! once on the socket (one receive or send fails; the receive goes on).

use std::net::SocketAddr;
use std::os::fd::AsFd;

use super::run::Worker;
use crate::flow::latch::Latch;

/// The peer a flow's socket should be connected to now, or `None` while it must take packets
/// from anyone (learning, not strict, asymmetric, or a socket bound to a wildcard address,
/// whose local address a connect would pin to the route's).
pub(super) fn connect_target(latch: &Latch, local: Option<SocketAddr>) -> Option<SocketAddr> {
    if !latch.is_settled() || !latch.config().strict {
        return None;
    }
    let peer = latch.source()?;
    let local = local?;
    if latch.target() != Some(peer)
        || local.ip().is_unspecified()
        || local.is_ipv4() != peer.is_ipv4()
    {
        return None;
    }
    Some(peer)
}

impl Worker {
    /// Connect or disconnect the sockets of the flows marked since the last call. Call it only
    /// with the plane's send queue empty: a packet queued for a connected socket carries no
    /// destination.
    pub(super) fn sync_connect(&mut self) {
        if self.connect_dirty.is_empty() {
            return;
        }
        let mut ids = std::mem::take(&mut self.connect_dirty);
        ids.sort_unstable();
        ids.dedup();
        for &id in &ids {
            let Some(f) = self.flows.get_mut(id) else {
                continue;
            };
            // ICE may move the peer to another checked pair: its socket takes every source.
            let want = if f.crypto().ice.is_some() {
                None
            } else {
                connect_target(f.latch(), f.local())
            };
            let io = &mut f.io;
            if io.connected == want {
                continue;
            }
            let done = match want {
                Some(peer) => io.socket.connect(peer),
                None => crate::sys::dgram::disconnect(io.socket.as_fd()),
            };
            match done {
                Ok(()) => {
                    tracing::trace!(flow = id, peer = ?want, "socket connected");
                    io.connected = want;
                }
                Err(e) => {
                    // Whatever it was connected to, it takes every source again.
                    let undone = crate::sys::dgram::disconnect(io.socket.as_fd());
                    tracing::debug!(flow = id, peer = ?want, error = %e, ?undone,
                        "cannot connect the flow's socket; it stays unconnected");
                    io.connected = None;
                }
            }
        }
        ids.clear();
        self.connect_dirty = ids;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::latch::{EndpointLearning, LatchConfig, DEFAULT_WINDOW};
    use crate::time::Millis;

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    const SDP: &str = "198.51.100.3:2000";
    const LOCAL: &str = "192.0.2.1:30000";

    fn cfg(strict: bool, asymmetric: bool) -> LatchConfig {
        LatchConfig {
            expected: Some(a(SDP)),
            learning: EndpointLearning::Heuristic,
            strict,
            asymmetric,
            window: DEFAULT_WINDOW,
            signalled_from: None,
            sdp_unreachable: false,
            restored: None,
        }
    }

    #[test]
    fn only_settled_strict_symmetric_flows_connect() {
        let local = Some(a(LOCAL));
        let mut l = Latch::new(cfg(true, false), Millis(0));
        assert_eq!(connect_target(&l, local), None, "learning");
        l.on_packet(a(SDP), Millis(5));
        assert_eq!(connect_target(&l, local), Some(a(SDP)));
        assert_eq!(connect_target(&l, Some(a("0.0.0.0:30000"))), None);
        assert_eq!(connect_target(&l, Some(a("[2001:db8::1]:30000"))), None);
        // New signalling moves the peer: learning again, so not connected.
        l.update(
            LatchConfig {
                expected: Some(a("198.51.100.4:2000")),
                ..cfg(true, false)
            },
            Millis(10),
        );
        assert_eq!(connect_target(&l, local), None);

        let mut loose = Latch::new(cfg(false, false), Millis(0));
        loose.on_packet(a(SDP), Millis(5));
        assert!(loose.is_settled());
        assert_eq!(connect_target(&loose, local), None, "not strict");

        // Asymmetric: the peer sends from elsewhere than where media goes.
        let mut asym = Latch::new(cfg(true, true), Millis(0));
        asym.on_packet(a("198.51.100.3:5000"), Millis(3100));
        assert!(asym.is_settled());
        assert_eq!(asym.target(), Some(a(SDP)));
        assert_eq!(connect_target(&asym, local), None, "asymmetric");
    }
}
