//! Data planes: how a worker moves packets between its sockets and the kernel.
//!
//! The worker owns the sockets and the flow table; a [`Plane`] receives batches of packets,
//! hands each batch of one flow to the worker's [`Forwarder`] (the flow table's decisions), and
//! sends what it was asked to. Whether the plane is readiness-driven (epoll, then `recvmmsg`
//! per ready socket), completion-driven (io_uring) or frame-driven (AF_XDP, with its hand-off
//! queues between workers) stays inside it: one worker loop runs them all, and a test plane
//! (`loopback`, or `fault` around any plane) drives that loop without sockets.

pub mod afxdp;
pub mod bind;
#[cfg(test)]
pub mod fault;
#[cfg(test)]
pub mod loopback;
pub mod mmsg;
pub mod probe;
pub mod uring;
pub mod xdp;

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::RawFd;
use std::str::FromStr;
use std::sync::Arc;

use crate::flow::StreamCounters;
use crate::time::Millis;

pub use bind::bind_pair;
pub use probe::choose;

/// The plane a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneKind {
    /// `recvmmsg`/`sendmmsg` on plain UDP sockets.
    Mmsg,
    /// io_uring: multishot receives and batched sends, one ring per worker.
    Uring,
}

impl PlaneKind {
    pub fn name(self) -> &'static str {
        match self {
            PlaneKind::Mmsg => "mmsg",
            PlaneKind::Uring => "uring",
        }
    }
}

/// What the operator asked for (`--dataplane`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataplaneRequest {
    /// The best plane the host supports.
    #[default]
    Auto,
    Mmsg,
    Uring,
    Xdp,
    /// XDP for offloaded flows, AF_XDP sockets (not the socket layer) for the rest.
    Afxdp,
}

/// A `--dataplane` value that is not one of `auto`, `mmsg`, `uring`, `xdp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown data plane {0:?} (expected auto, mmsg, uring, xdp or afxdp)")]
pub struct UnknownPlane(pub String);

impl FromStr for DataplaneRequest {
    type Err = UnknownPlane;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DataplaneRequest::Auto),
            "mmsg" => Ok(DataplaneRequest::Mmsg),
            "uring" | "io_uring" | "io-uring" => Ok(DataplaneRequest::Uring),
            "xdp" => Ok(DataplaneRequest::Xdp),
            "afxdp" | "af_xdp" | "af-xdp" => Ok(DataplaneRequest::Afxdp),
            _ => Err(UnknownPlane(s.to_string())),
        }
    }
}

/// The highest flow token a plane accepts: the ones above name the planes' own descriptors
/// (the wake eventfd, AF_XDP sockets).
pub const TOKEN_MAX: u64 = u64::MAX - 1 - 1024;

/// A token above [`TOKEN_MAX`] cannot be registered.
fn check_token(token: u64) -> io::Result<()> {
    if token > TOKEN_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "flow ids this high are reserved",
        ));
    }
    Ok(())
}

/// One flow's socket, as the worker registers it with its plane.
#[derive(Clone, Copy)]
pub struct FlowSocket<'a> {
    /// The flow's id: its packets come back to the [`Forwarder`] with it.
    pub token: u64,
    pub fd: RawFd,
    /// The socket's own address (AF_XDP finds a frame's flow by it).
    pub local: Option<SocketAddr>,
    /// The flow's counters (AF_XDP counts the frames it forwarded but could not send).
    pub counters: &'a Arc<StreamCounters>,
}

/// Bytes a receive slot keeps past the largest packet of a 1500-byte MTU, for what SRTP adds
/// (a 16-byte tag, an MKI, the SRTCP index): every plane's slots are 2048 bytes or more.
pub const SLOT_ROOM: usize = 2048 - 1500;

/// The packets of one receive, as the worker's forwarding logic sees them.
pub trait Batch {
    /// Packet `i` with its source; `None` when it is unusable (larger than a slot, or from a
    /// non-IP address).
    fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)>;
    /// Packet `i`'s slot to rewrite in place (SRTP): the whole slot (its length is the room
    /// the packet may grow into, at least [`SLOT_ROOM`] past a 1500-byte packet), the packet's
    /// length in it, and its source; `None` as for [`Batch::packet`]. Only flows with SRTP ask.
    fn packet_mut(&mut self, i: usize) -> Option<(&mut [u8], usize, SocketAddr)>;
    /// Packet `i` is now the first `len` bytes of its slot (after [`Batch::packet_mut`]):
    /// what [`Batch::forward`] sends.
    fn set_len(&mut self, i: usize, len: usize);
    /// Queue packet `i`, unchanged, to leave socket `sock` towards `dst`. `sock` must stay
    /// open until the next `flush` (the worker closes flows only after flushing). `tag` comes
    /// back through `flush` if the send fails. False when it could not be queued.
    fn forward(&mut self, i: usize, sock: RawFd, dst: SocketAddr, tag: u64) -> bool;
    /// As [`forward`](Batch::forward), out of a socket `connect()`ed to `dst`: a plane that can
    /// sends it without a destination address (the kernel then skips its per-packet route
    /// lookup); the others send it to `dst` as usual, which a connected socket accepts too.
    fn forward_connected(&mut self, i: usize, sock: RawFd, dst: SocketAddr, tag: u64) -> bool {
        self.forward(i, sock, dst, tag)
    }
}

/// What a plane hands its packets to: the worker, with its flow table.
pub trait Forwarder {
    /// Packets `idx` of `batch` all arrived on flow `token`: decide each and queue the
    /// forwards through [`Batch::forward`].
    fn forward_run<B: Batch + ?Sized>(&mut self, token: u64, idx: Range<usize>, batch: &mut B);
    /// Receiving on flow `token`'s socket failed.
    fn recv_failed(&mut self, token: u64, error: &io::Error);
}

/// One worker's packet I/O. A pass is: [`wait`](Plane::wait), (the worker applies flow
/// updates, registering sockets), [`pass`](Plane::pass), [`flush`](Plane::flush),
/// [`after_pass`](Plane::after_pass). Dispatch is static: the worker loop is generic over it.
pub trait Plane {
    fn name(&self) -> &'static str;
    /// Receive for `flow` from now on. On an error the flow must not be opened; the plane
    /// has undone what it did.
    fn register(&mut self, flow: FlowSocket<'_>) -> io::Result<()>;
    /// Stop receiving for `flow`; its socket may be closed right after.
    fn deregister(&mut self, flow: FlowSocket<'_>);
    /// Wait up to `timeout_ms` for packets or the worker's wake. True when the wake fired (the
    /// worker drains it before it reads what the wake announced).
    fn wait(&mut self, timeout_ms: u32) -> io::Result<bool>;
    /// Receive what the last wait found and hand it to `fwd`, one batch of one flow at a time.
    fn pass<F: Forwarder>(&mut self, fwd: &mut F);
    /// Send everything queued; calls `failed` with the tag of each packet that could not be
    /// sent. Returns the number sent.
    fn flush(&mut self, failed: &mut dyn FnMut(u64)) -> usize;
    /// Housekeeping after a pass (AF_XDP copies its sockets' kernel counters).
    fn after_pass(&mut self, _now: Millis) {}
    /// After a panic in a pass: drop what the pass held and start clean, with `flows` receiving
    /// again. An error means the plane cannot go on.
    fn reset(&mut self, flows: &mut dyn Iterator<Item = FlowSocket<'_>>) -> io::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        assert_eq!("auto".parse(), Ok(DataplaneRequest::Auto));
        assert_eq!("MMSG".parse(), Ok(DataplaneRequest::Mmsg));
        assert_eq!("io_uring".parse(), Ok(DataplaneRequest::Uring));
        assert_eq!("xdp".parse(), Ok(DataplaneRequest::Xdp));
        assert!("dpdk".parse::<DataplaneRequest>().is_err());
    }
}
