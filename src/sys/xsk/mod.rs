//! The AF_XDP plane's sockets: one [`XskSocket`] per rx queue receives the relay-port packets
//! the XDP program does not forward itself (through its `xsks` map, see
//! [`crate::sys::xdp::XdpTable::set_afxdp`]) and sends frames straight to the device, with no
//! socket layer in between.
//!
//! Each socket owns its UMEM (the frame memory shared with the kernel), its fill/completion
//! and rx/tx rings. Binding asks for zero-copy mode first and falls back to copy mode where the
//! driver refuses it (veth, most virtual devices). Built over `xdpilone` (pure Rust, no libxdp);
//! without the XDP plane in the binary, [`XskSocket::bind`] fails with [`XskError::NotBuilt`].

#[cfg(rtprelay_xdp)]
mod area;
#[cfg(all(test, rtprelay_xdp))]
mod batch_tests;
#[cfg(rtprelay_xdp)]
mod socket;
#[cfg(not(rtprelay_xdp))]
mod stub;
#[cfg(all(test, rtprelay_xdp))]
pub(crate) mod test_topology;
#[cfg(all(test, rtprelay_xdp))]
mod tests;

#[cfg(rtprelay_xdp)]
pub use socket::{RxBatch, XskSocket};
#[cfg(not(rtprelay_xdp))]
pub use stub::{RxBatch, XskSocket};

/// What becomes of a received frame when its [`RxBatch`] is released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Verdict {
    /// Back to the fill ring, to receive into again.
    #[default]
    Recycle,
    /// Out of the same socket, in place: as the batch left its bytes, at its received length.
    Transmit,
}

/// The kernel's drop counters of one AF_XDP socket (`XDP_STATISTICS`), since it was bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames dropped for lack of room or memory (rx ring full included).
    pub rx_dropped: u64,
    /// Frames dropped because the rx ring was full (Linux 5.9 on; 0 before).
    pub rx_ring_full: u64,
    /// Times the device found the fill ring empty (Linux 5.9 on).
    pub rx_fill_ring_empty_descs: u64,
    /// Bad descriptors on the tx ring.
    pub tx_invalid_descs: u64,
}

impl std::ops::AddAssign for XskStats {
    fn add_assign(&mut self, o: XskStats) {
        self.rx_dropped += o.rx_dropped;
        self.rx_ring_full += o.rx_ring_full;
        self.rx_fill_ring_empty_descs += o.rx_fill_ring_empty_descs;
        self.tx_invalid_descs += o.tx_invalid_descs;
    }
}

/// Why an AF_XDP socket could not be set up or registered.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// This binary has no XDP plane.
    #[error("the AF_XDP plane was not built into this binary (no clang at build time)")]
    NotBuilt,
    /// The frame count or size cannot make a UMEM.
    #[error("bad AF_XDP socket configuration: {0}")]
    Config(String),
    /// A system call failed.
    #[error("AF_XDP {what} failed: {source}")]
    Sys {
        what: &'static str,
        source: std::io::Error,
    },
}
