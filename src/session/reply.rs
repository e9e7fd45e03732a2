//! What the engine answers to a command, typed. The control layer renders it into rtpengine's
//! reply dictionary (`control/render.rs`); nothing here knows bencode or JSON.

use std::net::SocketAddr;

use crate::session::error::SessionError;
use crate::session::reports::{MediaTotals, Snapshot};

/// The reply to one [`Command`](crate::session::Command).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `ping`.
    Pong,
    /// A command that changed something and has nothing to report.
    Ok,
    /// `result: ok` with a non-fatal problem, e.g. deleting an unknown call.
    Warning(String),
    /// `offer` / `answer`: the SDP for the other side.
    Sdp(String),
    /// `query`, and `delete` of a live call: the call's report.
    Call(Box<CallReport>),
    /// `list`: call-ids, oldest first.
    List(Vec<String>),
    /// `statistics`.
    Statistics(Box<Snapshot>),
    /// `result: error`; the text is rtpengine's `error-reason`.
    Error(String),
    /// `result: load limit` for clients that sent `supports: [load limit]`.
    LoadLimit(String),
    /// The operator's `drain`: where the drain stands.
    Drain(DrainStatus),
    /// `sessions`: every call, oldest first.
    Sessions(Vec<SessionSummary>),
    /// `terminate`: how many calls ended.
    Terminated(usize),
    /// `get`: the setting's value (seconds for timeouts, `-1` for no limit).
    Setting(i64),
}

/// One call as the operator's session list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub call_id: String,
    /// `delete` was received; the call lingers for its delete-delay.
    pub deleted: bool,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// Being recorded.
    pub recording: bool,
    /// The NG client whose offer created the call, when known.
    pub proxy: Option<SocketAddr>,
}

impl Reply {
    /// The error reply for a session error (its `Display` is the `error-reason`).
    pub fn error(e: &SessionError) -> Reply {
        Reply::Error(e.to_string())
    }

    /// The `result` value this reply carries.
    pub fn result(&self) -> &'static str {
        match self {
            Reply::Pong => "pong",
            Reply::Error(_) => "error",
            Reply::LoadLimit(_) => "load limit",
            Reply::Ok
            | Reply::Warning(_)
            | Reply::Sdp(_)
            | Reply::Call(_)
            | Reply::List(_)
            | Reply::Statistics(_)
            | Reply::Sessions(_)
            | Reply::Terminated(_)
            | Reply::Setting(_)
            | Reply::Drain(_) => "ok",
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

/// Where a drain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainStatus {
    pub draining: bool,
    /// Calls not deleted yet.
    pub calls: usize,
}

/// A call as `query` reports it (rtpengine's layout; times in wall-clock seconds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallReport {
    pub created: u64,
    /// Microseconds part of the creation time.
    pub created_us: u64,
    pub last_signal: u64,
    /// The NG client whose offer created the call, when known.
    pub proxy: Option<SocketAddr>,
    /// One entry per participant, in the call's order (rendered as a dict keyed by tag).
    pub tags: Vec<TagReport>,
    pub totals: MediaTotals,
}

/// One participant of a call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TagReport {
    /// Empty when the participant has no tag yet.
    pub tag: String,
    pub label: Option<String>,
    pub created: u64,
    /// The peer's tag, when the participant has a peer.
    pub in_dialogue_with: Option<String>,
    pub medias: Vec<MediaReport>,
}

/// One media section of a participant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaReport {
    /// From 1.
    pub index: u64,
    pub kind: String,
    pub protocol: String,
    /// RTP then RTCP, when the section has local ports.
    pub streams: Vec<StreamReport>,
    pub flags: Vec<&'static str>,
}

/// One local port of a media section.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamReport {
    pub local: SocketAddr,
    /// Where packets come from: the learned source, else the advertised address.
    pub endpoint: Option<SocketAddr>,
    /// The address the SDP gave.
    pub advertised: Option<SocketAddr>,
    pub last_packet: u64,
    pub flags: Vec<&'static str>,
    /// The SRTP suite in effect with this participant (`crypto suite`), when SDES was
    /// negotiated.
    pub crypto_suite: Option<&'static str>,
    /// The ICE agent's state on this socket (`ICE state`), when the relay does ICE here.
    pub ice_state: Option<&'static str>,
    /// The DTLS-SRTP handshake's state on this socket (`DTLS state`).
    pub dtls_state: Option<&'static str>,
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}
