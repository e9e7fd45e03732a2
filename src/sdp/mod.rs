//! SDP contract stub (replaced by the SDP change).
#![allow(unused, clippy::all)]
use std::net::{IpAddr, SocketAddr};

use crate::control::command::Family;

#[derive(Debug, thiserror::Error)]
#[error("sdp error")]
pub struct SdpError;

#[derive(Debug, Clone)]
pub struct Origin {
    pub version: u64,
}
#[derive(Debug, Clone)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}
#[derive(Debug, Clone)]
pub struct SessionDescription {
    pub origin: Origin,
    pub media: Vec<Media>,
}
impl SessionDescription {
    pub fn rtp_endpoint(&self, idx: usize) -> Option<SocketAddr> {
        todo!()
    }
    pub fn rtcp_endpoint(&self, idx: usize) -> Option<SocketAddr> {
        todo!()
    }
    pub fn is_null_address(&self, idx: usize) -> bool {
        todo!()
    }
    pub fn media_family(&self, idx: usize) -> Option<Family> {
        todo!()
    }
}
impl Media {
    pub fn is_rtp(&self) -> bool {
        todo!()
    }
    pub fn has_rtcp_mux(&self) -> bool {
        todo!()
    }
    pub fn direction(&self) -> Option<Direction> {
        todo!()
    }
    pub fn is_rejected(&self) -> bool {
        todo!()
    }
}
impl std::fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        todo!()
    }
}
pub fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
    todo!()
}
#[derive(Debug, Clone, Default)]
pub struct RewritePlan {
    pub origin_address: Option<IpAddr>,
    pub origin_version: Option<u64>,
    pub strip_ice: bool,
    pub strip_extmap: bool,
    pub media: Vec<MediaPlan>,
}
#[derive(Debug, Clone)]
pub struct MediaPlan {
    pub address: IpAddr,
    pub keep_null: bool,
    pub port: u16,
    pub rtcp_port: Option<u16>,
    pub rtcp_mux: bool,
    pub codecs: CodecFilter,
}
#[derive(Debug, Clone, Default)]
pub struct CodecFilter {
    pub strip: Vec<String>,
    pub mask: Vec<String>,
    pub except: Vec<String>,
}
pub fn rewrite(sd: &mut SessionDescription, plan: &RewritePlan) {
    todo!()
}
