//! The XDP program's loader and maps (interface stub: the program is not built yet).

use std::net::SocketAddr;
use std::sync::Arc;

/// Whether this binary carries the XDP program.
pub fn built() -> bool {
    false
}

/// `if_nametoindex`.
pub fn ifindex(name: &str) -> std::io::Result<u32> {
    let _ = name;
    Err(std::io::Error::other("not built"))
}

/// `if_indextoname`.
pub fn ifname(index: u32) -> std::io::Result<String> {
    let _ = index;
    Err(std::io::Error::other("not built"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    Native,
    Generic,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub ifindex: u32,
    pub ifname: String,
    pub mode: AttachMode,
}

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("the XDP plane was not built into this binary (no clang at build time)")]
    NotBuilt,
    #[error("{0}")]
    Permission(String),
    #[error("cannot load the XDP program: {0}")]
    Load(String),
    #[error("cannot attach XDP to {ifname}: {reason}")]
    Attach { ifname: String, reason: String },
    #[error("{ifname} already runs another XDP program ({program})")]
    Busy { ifname: String, program: String },
    #[error("XDP map: {0}")]
    Map(String),
}

pub struct XdpProgram {
    attachments: Vec<Attachment>,
    table: Arc<XdpTable>,
}

impl XdpProgram {
    pub fn load_and_attach(ifindexes: &[u32]) -> Result<XdpProgram, XdpError> {
        let _ = ifindexes;
        Err(XdpError::NotBuilt)
    }
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }
    pub fn table(&self) -> Arc<XdpTable> {
        self.table.clone()
    }
}

pub struct XdpTable {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Rtp,
    Rtcp,
    Opaque,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub source: SocketAddr,
    pub dest: SocketAddr,
    pub expect: Option<SocketAddr>,
    pub kind: RuleKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTotals {
    pub packets: u64,
    pub bytes: u64,
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XdpStats {
    pub forwarded: u64,
    pub passed: u64,
    pub dropped: u64,
    pub aborted: u64,
}

impl XdpTable {
    pub fn install(&self, local: SocketAddr, rule: &Rule) -> Result<u32, XdpError> {
        let _ = (local, rule);
        Err(XdpError::NotBuilt)
    }
    pub fn remove(&self, local: SocketAddr) -> Result<(), XdpError> {
        let _ = local;
        Ok(())
    }
    pub fn totals(&self, slot: u32) -> Result<FlowTotals, XdpError> {
        let _ = slot;
        Ok(FlowTotals::default())
    }
    pub fn stats(&self) -> Result<XdpStats, XdpError> {
        Ok(XdpStats::default())
    }
    pub fn installed(&self) -> usize {
        0
    }
}
