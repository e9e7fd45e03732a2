//! Data planes: how a worker moves packets between its sockets and the kernel.
//!
//! The worker owns the sockets and the flow table; a plane only receives batches and sends
//! batches, so a new plane (io_uring, AF_XDP) slots in behind [`DataPlane`] without touching
//! the worker's forwarding logic or the session layer.

pub mod afxdp;
pub mod bind;
pub mod mmsg;
pub mod probe;
pub mod uring;
pub mod xdp;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::str::FromStr;

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

/// The packets of the last receive pass, as the worker's shared forwarding logic sees them.
/// Every plane implements it, whether it is readiness-driven ([`DataPlane`]) or
/// completion-driven ([`uring::UringPlane`]).
pub trait Batch {
    /// Packet `i` of the last receive with its source; `None` when it is unusable (larger
    /// than a slot, or from a non-IP address).
    fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)>;
    /// Queue packet `i` of the last receive, unchanged, to leave socket `sock` towards `dst`.
    /// `sock` must stay open until the next `flush` (the worker closes flows only after
    /// flushing). `tag` comes back through `flush` if the send fails. False when it could not
    /// be queued.
    fn forward(&mut self, i: usize, sock: RawFd, dst: SocketAddr, tag: u64) -> bool;
}

/// Readiness-driven batch I/O for one worker (the worker's epoll says which socket to read).
/// One receive batch is held at a time; forwarded packets are queued and go out on
/// [`flush`](DataPlane::flush).
pub trait DataPlane: Batch {
    fn name(&self) -> &'static str;
    /// Receive what is waiting on `sock`, up to one batch, without blocking. 0 = nothing.
    fn recv(&mut self, sock: BorrowedFd<'_>) -> io::Result<usize>;
    /// Send everything queued; calls `failed` with the tag of each packet the kernel refused.
    /// Returns the number sent.
    fn flush(&mut self, failed: &mut dyn FnMut(u64)) -> usize;
}

/// Make a readiness-driven plane with `batch` receive slots. Call it on the worker thread.
/// Only mmsg is readiness-driven; the worker runs `uring` through [`uring::UringPlane`].
pub fn new_plane(_kind: PlaneKind, batch: usize) -> Box<dyn DataPlane> {
    Box::new(mmsg::MmsgPlane::new(batch))
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
