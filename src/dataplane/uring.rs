//! The io_uring plane: completion-driven. The plane owns the registration of flow sockets
//! (one multishot receive each) and hands back batches of (flow token, packet, source) across
//! all sockets; forwarded packets go out in one submission per pass.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::Batch;
use crate::sys::uring::{Ring, UringError};

pub struct UringPlane {
    ring: Ring,
}

impl UringPlane {
    /// Make the worker's ring. Call it on the worker thread: the ring is single-issuer.
    pub fn new() -> Result<UringPlane, UringError> {
        Ok(UringPlane { ring: Ring::new()? })
    }

    /// Have `poll` report when `fd` (the worker's wake eventfd) becomes readable.
    pub fn watch_wake(&mut self, fd: RawFd) {
        self.ring.watch_wake(fd);
    }

    /// Receive on `sock` for flow `token` until `deregister`. `sock` must stay open until then.
    pub fn register(&mut self, token: u64, sock: RawFd) {
        self.ring.register(token, sock);
    }

    /// Stop receiving for `token`; the socket may be closed right after.
    pub fn deregister(&mut self, token: u64) {
        self.ring.deregister(token);
    }

    /// Submit queued work, wait up to `timeout_ms` for completions and make them the current
    /// batch. Returns the number of packets and whether the wake fd fired.
    pub fn poll(&mut self, timeout_ms: u32) -> io::Result<(usize, bool)> {
        self.ring.poll(timeout_ms)
    }

    /// The flow token of packet `i` (present even when the packet itself is unusable).
    pub fn token(&self, i: usize) -> Option<u64> {
        self.ring.token(i)
    }

    /// Submit the queued sends; calls `failed` with the tag of each send the kernel refused
    /// since the last flush. Returns the number queued since the last flush.
    pub fn flush(&mut self, failed: &mut dyn FnMut(u64)) -> usize {
        self.ring.flush(failed)
    }

    /// Multishot receives that ran out of buffers and were re-armed.
    pub fn rearmed_on_enobufs(&self) -> u64 {
        self.ring.enobufs
    }
}

impl Batch for UringPlane {
    fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        self.ring.packet(i).map(|(_, pkt, src)| (pkt, src))
    }

    fn forward(&mut self, i: usize, sock: RawFd, dst: SocketAddr, tag: u64) -> bool {
        self.ring.forward(i, sock, dst, tag)
    }
}
