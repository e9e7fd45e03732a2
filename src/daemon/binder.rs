//! The real port binder: binds RTP/RTCP socket pairs around each NG command (the pairs the
//! command may take, see [`Engine::plan_ports`](crate::session::Engine::plan_ports)) and keeps
//! them until a flow hands them to a worker; the session layer itself binds nothing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use crate::dataplane::bind::bind_pair;
use crate::session::PortBinder;

/// Sockets bound for allocated pairs and not yet handed to a worker.
#[derive(Debug, Default)]
pub struct SocketBinder {
    pending: HashMap<SocketAddr, UdpSocket>,
}

impl SocketBinder {
    /// Takes the socket bound at `local` (RTP or RTCP port) to hand it to a worker.
    pub fn take(&mut self, local: SocketAddr) -> Option<UdpSocket> {
        self.pending.remove(&local)
    }
}

impl PortBinder for SocketBinder {
    fn bind_pair(&mut self, local: IpAddr, rtp_port: u16) -> bool {
        match bind_pair(local, rtp_port) {
            Ok((rtp, rtcp)) => {
                self.pending.insert(SocketAddr::new(local, rtp_port), rtp);
                self.pending
                    .insert(SocketAddr::new(local, rtp_port.wrapping_add(1)), rtcp);
                true
            }
            Err(e) => {
                tracing::debug!(%local, rtp_port, error = %e, "port pair unavailable");
                false
            }
        }
    }

    fn release_pair(&mut self, local: IpAddr, rtp_port: u16) {
        self.pending.remove(&SocketAddr::new(local, rtp_port));
        self.pending
            .remove(&SocketAddr::new(local, rtp_port.wrapping_add(1)));
    }
}
