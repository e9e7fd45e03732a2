//! The XDP API of a binary built without the program: loading always fails with `NotBuilt`,
//! so no `XdpTable` ever exists.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Attachment, FlowTotals, Rule, SlotTotals, XdpError, XdpStats};

/// Never constructed in this build.
pub struct XdpProgram {
    _never: std::convert::Infallible,
}

impl XdpProgram {
    /// Always `Err(XdpError::NotBuilt)`.
    pub fn load_and_attach(_ifindexes: &[u32]) -> Result<XdpProgram, XdpError> {
        Err(XdpError::NotBuilt)
    }
    pub fn attachments(&self) -> &[Attachment] {
        match self._never {}
    }
    pub fn table(&self) -> Arc<XdpTable> {
        match self._never {}
    }
}

/// Never constructed in this build.
pub struct XdpTable {
    _never: std::convert::Infallible,
}

impl XdpTable {
    pub fn set_partitions(&self, _n: usize) -> Result<(), XdpError> {
        match self._never {}
    }
    pub fn claim_partition(&self) -> usize {
        match self._never {}
    }
    pub fn install(&self, _part: usize, _local: SocketAddr, _rule: &Rule) -> Result<u32, XdpError> {
        match self._never {}
    }
    pub fn remove(&self, _local: SocketAddr) -> Result<Option<FlowTotals>, XdpError> {
        match self._never {}
    }
    pub fn totals(&self, _slot: u32) -> Result<FlowTotals, XdpError> {
        match self._never {}
    }
    pub fn totals_all(&self, _part: usize, _out: &mut SlotTotals) -> Result<(), XdpError> {
        match self._never {}
    }
    pub fn stats(&self) -> Result<XdpStats, XdpError> {
        match self._never {}
    }
    pub fn set_port_range(&self, _min: u16, _max: u16) -> Result<(), XdpError> {
        match self._never {}
    }
    pub fn set_local_addrs(&self, _addrs: &[std::net::IpAddr]) -> Result<(), XdpError> {
        match self._never {}
    }
    pub fn set_afxdp(&self, _on: bool) -> Result<(), XdpError> {
        match self._never {}
    }
    pub fn register_xsk(
        &self,
        _ifindex: u32,
        _queue: u32,
        _fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), XdpError> {
        match self._never {}
    }
    pub fn unregister_xsk(&self, _ifindex: u32, _queue: u32) -> Result<(), XdpError> {
        match self._never {}
    }
    pub fn installed(&self) -> usize {
        match self._never {}
    }
    pub fn add_device(&self, _ifindex: u32) -> Result<(), XdpError> {
        match self._never {}
    }
}

/// A next hop (see the real module): never found in this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelHop {
    pub ifindex: u32,
    pub our_mac: [u8; 6],
    pub peer_mac: [u8; 6],
}

/// Without the XDP build there is no AF_XDP path to resolve hops for.
pub struct Neighbours;

impl Neighbours {
    pub fn open() -> std::io::Result<Neighbours> {
        Err(std::io::Error::other("built without XDP"))
    }
    pub fn hop(&mut self, _src: std::net::IpAddr, _dst: std::net::IpAddr) -> Option<KernelHop> {
        None
    }
}
