//! Typed NG commands: the session layer's input language. The control layer parses them from a
//! bencode dictionary (`control/parse.rs`); these types carry no I/O and no wire format.

use std::net::IpAddr;

use crate::sdp::Family;

/// One NG request, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Ping,
    Offer(OfferAnswer),
    Answer(OfferAnswer),
    Delete(Delete),
    Query(CallRef),
    List {
        limit: Option<usize>,
    },
    Statistics,
    /// `start recording`: record the call from now on (a new spool entry if none is open).
    StartRecording(CallRef),
    /// `stop recording`: stop and finish the call's spool entry.
    StopRecording(CallRef),
    /// `pause recording`: stop writing packets but keep the spool entry open for a later start.
    PauseRecording(CallRef),
    /// `block media`: stop relaying the media a participant (or the whole call) sends.
    BlockMedia(MediaSelect),
    /// `unblock media`: relay it again.
    UnblockMedia(MediaSelect),
    /// Operator: every call with its creation time (rtpengine-ctl's `list sessions`).
    Sessions,
    /// Operator: end calls now, without a delete-delay (rtpengine-ctl's `terminate`).
    Terminate(Terminate),
    /// Operator: read a runtime setting (rtpengine-ctl's `get`).
    GetSetting(Setting),
    /// Operator: change a runtime setting; the value was checked by the caller (rtpengine-ctl's
    /// `set`). Seconds for the timeouts, `-1` for no session limit.
    SetSetting(Setting, i64),
    /// Operator: `drain` (stop taking new calls, keep the others) or `drain status`.
    Drain(DrainOp),
}

/// What the operator's `drain` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOp {
    /// Start draining (again is harmless).
    Start,
    /// Only report.
    Status,
}

impl Command {
    /// The command's name as rtpengine spells it in statistics (`offer`, `answer`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ping => "ping",
            Command::Offer(_) => "offer",
            Command::Answer(_) => "answer",
            Command::Delete(_) => "delete",
            Command::Query(_) => "query",
            Command::List { .. } => "list",
            Command::Statistics => "statistics",
            Command::StartRecording(_) => "start recording",
            Command::StopRecording(_) => "stop recording",
            Command::PauseRecording(_) => "pause recording",
            Command::BlockMedia(_) => "block media",
            Command::UnblockMedia(_) => "unblock media",
            Command::Sessions => "sessions",
            Command::Terminate(_) => "terminate",
            Command::GetSetting(_) => "get",
            Command::SetSetting(..) => "set",
            Command::Drain(_) => "drain",
        }
    }
}

/// Which calls `terminate` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminate {
    /// Every call.
    All,
    /// The call with this call-id.
    Call(String),
}

/// A session setting operators change at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Concurrent calls allowed (`-1`: unlimited).
    MaxSessions,
    /// Seconds without media before an answered call ends.
    Timeout,
    /// Like `Timeout`, for calls on hold.
    SilentTimeout,
    /// Seconds an unanswered offer waits.
    OfferTimeout,
    /// Absolute limit of a call's life in seconds (`0`: none).
    FinalTimeout,
    /// Seconds a deleted call lingers.
    DeleteDelay,
}

impl Command {
    /// The call this command is about, if it names one (its log lines carry the call-id).
    pub fn call_ref(&self) -> Option<&CallRef> {
        match self {
            Command::Offer(p) | Command::Answer(p) => Some(&p.call),
            Command::Delete(d) => Some(&d.call),
            Command::Query(c)
            | Command::StartRecording(c)
            | Command::StopRecording(c)
            | Command::PauseRecording(c) => Some(c),
            Command::BlockMedia(m) | Command::UnblockMedia(m) => Some(&m.call),
            Command::Ping
            | Command::List { .. }
            | Command::Statistics
            | Command::Sessions
            | Command::Terminate(_)
            | Command::GetSetting(_)
            | Command::SetSetting(..)
            | Command::Drain(_) => None,
        }
    }

    /// The tracing span for this command's work: the call's, or none.
    pub fn span(&self) -> tracing::Span {
        match self.call_ref() {
            Some(c) if !c.call_id.is_empty() => {
                crate::session::log::call_span(&c.call_id, c.from_tag.as_deref())
            }
            _ => tracing::Span::none(),
        }
    }
}

/// Identifies a call and optionally a side of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallRef {
    pub call_id: String,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    pub via_branch: Option<String>,
}

/// Which media `block media` / `unblock media` act on, as rtpengine 10.5 selects a participant:
/// by `label`, else by SDP media `address`, else by `from-tag`. With none of these (or with
/// `all`), the whole call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaSelect {
    pub call: CallRef,
    /// `all` flag (or `all: all`): the whole call; on unblock, every participant too.
    pub all: bool,
    pub label: Option<String>,
    pub address: Option<IpAddr>,
}

/// `delete`: the whole call, or one side/branch of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delete {
    pub call: CallRef,
    /// `delete-delay` key (seconds); `None` means the daemon default.
    pub delete_delay: Option<u32>,
    /// `fatal` flag: a missing call is an error instead of a warning.
    pub fatal: bool,
}

/// `offer` and `answer` share their parameters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OfferAnswer {
    pub call: CallRef,
    /// The SDP body, raw bytes.
    pub sdp: Vec<u8>,
    pub flags: Flags,
    pub replace: Replace,
    pub ice: IceMode,
    pub rtcp_mux: RtcpMux,
    pub codec: CodecOps,
    /// `direction`: two interface names, from-side first.
    pub direction: Option<(String, String)>,
    /// `address family`: the family to use towards the receiving side.
    pub address_family: Option<Family>,
    /// `media address`: put this in c= instead of the interface address.
    pub media_address: Option<IpAddr>,
    /// `received from`: the address the SIP message came from (used with `SIP-source-address`).
    pub received_from: Option<IpAddr>,
    /// `label` of the side sending this message.
    pub label: Option<String>,
    pub delete_delay: Option<u32>,
    /// `supports` list contains `load limit`.
    pub supports_load_limit: bool,
    /// `metadata` string, stored with the call.
    pub metadata: Option<String>,
    /// `media echo` / `media-echo`: send media back to where it came from, or drop it.
    pub media_echo: Option<MediaEcho>,
    /// `endpoint learning` / `endpoint-learning`: this call's learning mode instead of the
    /// daemon's `--endpoint-learning`.
    pub endpoint_learning: Option<crate::flow::latch::EndpointLearning>,
    /// The NG client the message came from (set by the daemon, not by the message): a call
    /// remembers who created it, for the operator's session list.
    pub proxy: Option<std::net::SocketAddr>,
}

/// Boolean flags from the `flags` list (and their key forms).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Flags {
    pub trust_address: bool,
    pub sip_source_address: bool,
    pub symmetric: bool,
    pub asymmetric: bool,
    pub strict_source: bool,
    pub media_handover: bool,
    pub record_call: bool,
    pub fatal: bool,
    pub port_latching: bool,
    pub no_rtcp_attribute: bool,
    pub full_rtcp_attribute: bool,
    pub loop_protect: bool,
    pub strip_extmap: bool,
    pub original_sendrecv: bool,
    /// `generate mid`: give media sections without `a=mid` one (their position, from 1).
    pub generate_mid: bool,
    /// `always transcode` and the like are accepted and ignored.
    pub unknown: Vec<String>,
}

/// `replace` list entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Replace {
    pub origin: bool,
    pub session_connection: bool,
    pub sdp_version: bool,
    pub zero_address: bool,
    pub username: bool,
    pub session_name: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IceMode {
    /// No `ICE` key: a non-ICE offer stays non-ICE.
    #[default]
    Default,
    Remove,
    Force,
    ForceRelay,
    Optional,
}

/// `rtcp-mux` list entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RtcpMux {
    pub offer: bool,
    pub demux: bool,
    pub accept: bool,
    pub reject: bool,
    pub require: bool,
}

/// The `codec` dictionary (and the `codec-strip-X` style flags), as pure SDP filtering.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CodecOps {
    /// Encoding names (case-insensitive) or payload type numbers; `all` is allowed.
    pub strip: Vec<String>,
    pub mask: Vec<String>,
    /// `offer`/`transcode`: codecs to add; without transcoding only already-present ones matter.
    pub offer: Vec<String>,
    /// `except`: codecs kept when `strip: [all]` is given.
    pub except: Vec<String>,
    pub set: Vec<String>,
    pub accept: Vec<String>,
    pub consume: Vec<String>,
}

/// The `media echo` modes, named from the message's point of view: the receiver of an offer is
/// the callee. A side that echoes gets its own media back (from the relay's port it sends to);
/// the other side's media is dropped, except with `Both`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEcho {
    /// `blackhole`, `sinkhole`: media from both sides is dropped.
    Blackhole,
    /// `forward`, `fwd`, `fw`: the receiver of this message gets its media back; the sender's
    /// is dropped.
    Forward,
    /// `backwards`, `backward`, `reverse`, `back`, `bkw`, `bk`: the sender of this message gets
    /// its media back; the receiver's is dropped.
    Backwards,
    /// `both`: each side gets its own media back.
    Both,
}
