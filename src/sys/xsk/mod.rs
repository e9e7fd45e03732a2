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
#[cfg(rtprelay_xdp)]
mod socket;
#[cfg(not(rtprelay_xdp))]
mod stub;
#[cfg(all(test, rtprelay_xdp))]
mod tests;

#[cfg(rtprelay_xdp)]
pub use socket::XskSocket;
#[cfg(not(rtprelay_xdp))]
pub use stub::XskSocket;

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
