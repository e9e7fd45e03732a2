//! The XDP plane's kernel side: loading `bpf/relay.bpf.c`, attaching it to interfaces, and the
//! rule/counter maps the workers fill once a flow has been learned in userspace.
//!
//! The program forwards only what it fully understands (a rule for the destination ip:port,
//! RTP-like payload, a next hop the kernel already knows); everything else is `XDP_PASS`ed to
//! the socket path unchanged, so the userspace planes stay the reference and the fallback.
//! With the AF_XDP plane on ([`XdpTable::set_afxdp`]), what it would pass for the relay's
//! ports goes to the AF_XDP socket of the packet's device and rx queue instead
//! ([`crate::sys::xsk`]).
//!
//! Deployment notes:
//! - The next hop comes from `bpf_fib_lookup()`, which answers only where forwarding is enabled
//!   on the receiving device (`net.ipv4.conf.DEV.forwarding`, and the IPv6 one). Elsewhere, and
//!   for a peer without a neighbour entry, the program uses the next hop userspace copied from
//!   the kernel's routing and neighbour tables for the rule (module `nexthop`); never one learnt from
//!   packets. A peer the kernel has not resolved yet is passed, until userspace traffic has
//!   resolved it.
//! - The program sends only out of the devices it is attached to; a next hop on another device
//!   is left to the stack.
//! - Packets sent with XDP_TX/redirect into a veth are dropped unless the peer end has an XDP
//!   program (or GRO) too.
//!
//! Built only with the `xdp` feature and a working clang at build time (`cfg(rtprelay_xdp)`);
//! otherwise the same API exists, [`built`] is false and [`XdpProgram::load_and_attach`] says so.

use std::net::SocketAddr;

#[cfg(rtprelay_xdp)]
mod abi;
#[cfg(rtprelay_xdp)]
mod loader;
#[cfg(rtprelay_xdp)]
mod neighbours;
#[cfg(rtprelay_xdp)]
mod nexthop;
#[cfg(rtprelay_xdp)]
mod rtnl;
#[cfg(rtprelay_xdp)]
mod skel;
#[cfg(rtprelay_xdp)]
mod table;
#[cfg(all(test, rtprelay_xdp))]
pub(crate) mod tests;

#[cfg(rtprelay_xdp)]
pub use loader::XdpProgram;
#[cfg(rtprelay_xdp)]
pub use neighbours::{KernelHop, Neighbours};
#[cfg(rtprelay_xdp)]
pub use table::XdpTable;

#[cfg(not(rtprelay_xdp))]
mod stub;
#[cfg(not(rtprelay_xdp))]
pub use stub::{KernelHop, Neighbours, XdpProgram, XdpTable};

/// Whether this binary carries the XDP program (false when built without clang or without the
/// `xdp` feature).
pub fn built() -> bool {
    cfg!(rtprelay_xdp)
}

/// The index of interface `name` (`if_nametoindex`), for resolving `--interface` devices.
pub fn ifindex(name: &str) -> std::io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        )
    })?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(index)
}

/// The name of interface `index` (`if_indextoname`).
pub fn ifname(index: u32) -> std::io::Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write, NUL included.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: on success if_indextoname wrote a NUL-terminated name into `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

/// How the program is attached to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver, before any socket buffer is allocated.
    Native,
    /// After the socket buffer is built (`xdpgeneric`): works on any device, costs more.
    Generic,
}

/// One device the program is attached to.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub ifindex: u32,
    pub ifname: String,
    pub mode: AttachMode,
}

/// Why the XDP plane could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// This binary has no XDP program.
    #[error("the XDP plane was not built into this binary (no clang at build time)")]
    NotBuilt,
    /// The kernel refused for lack of privilege.
    #[error(
        "not permitted to load or attach the XDP program ({0}): it needs CAP_BPF and \
         CAP_NET_ADMIN (or CAP_SYS_ADMIN)"
    )]
    Permission(String),
    /// The object could not be opened or loaded (e.g. the verifier refused it).
    #[error("loading the XDP program failed: {0}")]
    Load(String),
    /// Attaching to a device failed.
    #[error("attaching the XDP program to {ifname} failed: {reason}")]
    Attach { ifname: String, reason: String },
    /// Another program is attached to the device; it is never replaced.
    #[error("{ifname} already runs another XDP program ({program}): not replacing it")]
    Busy { ifname: String, program: String },
    /// A map operation failed, or the rule cannot be expressed.
    #[error("XDP map operation failed: {0}")]
    Map(String),
}

/// What a rule forwards, which decides how payloads are checked and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// RTP, with RTCP muxed on the same port (RFC 5761) counted as RTCP; anything that does not
    /// look like RTP/RTCP is passed to userspace.
    Rtp,
    /// RTCP only: every forwarded packet is counted as RTCP.
    Rtcp,
    /// Any datagram (e.g. T.38/UDPTL).
    Opaque,
}

/// How packets arriving at one local ip:port are forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// New source: the relay's own egress socket address (local ip:port of the flow that sends).
    pub source: SocketAddr,
    /// New destination: the peer the packets go to.
    pub dest: SocketAddr,
    /// Strict source: only packets from exactly this ip:port are forwarded; others are
    /// XDP_DROPped and counted as errors. None = any source is forwarded.
    pub expect: Option<SocketAddr>,
    pub kind: RuleKind,
    /// `block media`: RTP (or opaque) packets that pass the source check are counted as for a
    /// forwarded packet (and as blocked) and XDP_DROPped, except RTCP and the RTP payload types
    /// set in the mask (bit n = type n: DTMF events), which are still forwarded.
    pub block: Option<u128>,
}

/// A rule's counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTotals {
    /// RTP (or opaque) packets forwarded (or dropped by a blocking rule), and their UDP
    /// payload bytes.
    pub packets: u64,
    pub bytes: u64,
    /// RTCP packets forwarded, and their UDP payload bytes.
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
    /// strict-source drops in the kernel
    pub errors: u64,
    /// `block media` drops in the kernel (also in `packets`/`bytes`).
    pub blocked: u64,
}

/// The totals of one partition's counter slots, read at once by [`XdpTable::totals_all`];
/// kept between reads so that a sweep reuses its buffers.
#[derive(Debug, Default)]
pub struct SlotTotals {
    /// The partition's first slot: `totals[i]` is slot `first + i`.
    first: u32,
    totals: Vec<FlowTotals>,
    /// Batch buffers: slot keys, and per-CPU values as the kernel lays them out.
    #[cfg_attr(not(rtprelay_xdp), allow(dead_code))]
    keys: Vec<u32>,
    #[cfg_attr(not(rtprelay_xdp), allow(dead_code))]
    raw: Vec<u8>,
}

impl SlotTotals {
    /// The totals of `slot`, if it was read.
    pub fn get(&self, slot: u32) -> Option<&FlowTotals> {
        self.totals.get(slot.checked_sub(self.first)? as usize)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut FlowTotals> {
        self.totals.get_mut(slot.checked_sub(self.first)? as usize)
    }

    /// Slots read.
    pub fn len(&self) -> usize {
        self.totals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }
}

/// What the program did with every packet it saw, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpStats {
    /// XDP_TX + redirect.
    pub forwarded: u64,
    /// Handed to the socket path (no rule, not RTP-like, fib miss, fragments, options…).
    pub passed: u64,
    /// Strict-source drops and media of blocked flows (`block media`).
    pub dropped: u64,
    /// Redirect failures etc.
    pub aborted: u64,
    /// Handed to an AF_XDP socket (the AF_XDP plane).
    pub redirected: u64,
}
