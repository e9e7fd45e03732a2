//! The io_uring plane: completion-driven. The plane owns the registration of flow sockets
//! (one multishot receive each) and hands back batches of (flow token, packet, source) across
//! all sockets; forwarded packets go out in one submission per pass.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use super::{check_token, Batch, FlowSocket, Forwarder, Plane};
use crate::sys::eventfd::EventFd;
use crate::sys::uring::{Ring, UringError};

pub struct UringPlane {
    ring: Ring,
    wake: Arc<EventFd>,
    /// Completions of the last wait.
    polled: usize,
    /// The sockets go in the ring's fixed-file table (`--uring-fixed-files`).
    fixed_files: bool,
}

/// The ring as the forwarding logic sees a batch.
struct RingBatch<'a>(&'a mut Ring);

impl UringPlane {
    /// Make the worker's ring, reporting `wake` from `wait`. Call it on the worker thread: the
    /// ring is single-issuer.
    /// With `fixed_files`, its sockets go in a fixed-file table (the kernel then skips a file
    /// lookup per receive and send), or in none when the kernel refuses one.
    pub fn new(wake: Arc<EventFd>, fixed_files: bool) -> Result<UringPlane, UringError> {
        let mut ring = Ring::new()?;
        if fixed_files && !ring.use_fixed_files() {
            tracing::warn!("io_uring fixed-file table refused; sockets are named by descriptor");
        }
        ring.watch_wake(wake.as_raw_fd());
        Ok(UringPlane {
            ring,
            wake,
            polled: 0,
            fixed_files,
        })
    }

    /// Multishot receives that ran out of buffers and were re-armed.
    pub fn rearmed_on_enobufs(&self) -> u64 {
        self.ring.enobufs
    }
}

impl Plane for UringPlane {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn register(&mut self, flow: FlowSocket<'_>) -> io::Result<()> {
        check_token(flow.token)?;
        self.ring.register(flow.token, flow.fd);
        Ok(())
    }

    fn deregister(&mut self, flow: FlowSocket<'_>) {
        // Cancels the receive before the socket is closed.
        self.ring.deregister(flow.token);
    }

    fn wait(&mut self, timeout_ms: u32) -> io::Result<bool> {
        self.polled = 0;
        let (n, woke) = self.ring.poll(timeout_ms)?;
        self.polled = n;
        Ok(woke)
    }

    /// Runs of packets from one flow go to `fwd` together.
    fn pass<F: Forwarder>(&mut self, fwd: &mut F) {
        let n = std::mem::take(&mut self.polled);
        let mut start = 0;
        while start < n {
            let token = self.ring.token(start);
            let mut end = start + 1;
            while end < n && self.ring.token(end) == token {
                end += 1;
            }
            if let Some(token) = token {
                fwd.forward_run(token, start..end, &mut RingBatch(&mut self.ring));
            }
            start = end;
        }
    }

    fn flush(&mut self, failed: &mut dyn FnMut(u64)) -> usize {
        self.ring.flush(failed)
    }

    /// A fresh ring: the old one's state at the panic is not trusted. It goes first (its
    /// receives are cancelled), then the flows are armed on the new one.
    fn reset(&mut self, flows: &mut dyn Iterator<Item = FlowSocket<'_>>) -> io::Result<()> {
        let fresh =
            UringPlane::new(self.wake.clone(), self.fixed_files).map_err(io::Error::other)?;
        *self = fresh;
        for f in flows {
            self.ring.register(f.token, f.fd);
        }
        Ok(())
    }
}

impl Drop for UringPlane {
    fn drop(&mut self) {
        tracing::debug!(
            enobufs_rearms = self.rearmed_on_enobufs(),
            "io_uring closed"
        );
    }
}

impl Batch for RingBatch<'_> {
    fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        self.0.packet(i).map(|(_, pkt, src)| (pkt, src))
    }

    fn packet_mut(&mut self, i: usize) -> Option<(&mut [u8], usize, SocketAddr)> {
        self.0.packet_mut(i)
    }

    fn set_len(&mut self, i: usize, len: usize) {
        self.0.set_len(i, len);
    }

    fn forward(&mut self, i: usize, sock: RawFd, dst: SocketAddr, tag: u64) -> bool {
        self.0.forward(i, sock, dst, tag)
    }

    fn forward_connected(&mut self, i: usize, sock: RawFd, _dst: SocketAddr, tag: u64) -> bool {
        self.0.forward_connected(i, sock, tag)
    }
}
