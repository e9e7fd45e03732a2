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
    /// `ICE-lite` (offers only): the sides the relay is an ICE-lite agent towards from now on;
    /// `None` leaves what an earlier offer set (full ICE at first).
    pub ice_lite: Option<IceLite>,
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
    /// `transport-protocol` / `transport protocol`.
    pub transport_protocol: Option<TransportProtocol>,
    /// `SDES` list and `SDES-...` flags.
    pub sdes: Sdes,
    /// `OSRTP` list and `OSRTP-...` flags.
    pub osrtp: Osrtp,
    /// `DTLS`: DTLS-SRTP towards the receiver of the message.
    pub dtls: DtlsMode,
    /// `DTLS-fingerprint`: the hash of the fingerprint the relay announces.
    pub dtls_fingerprint: Option<crate::dtls::HashFunc>,
    /// `DTLS-reverse` (`passive`/`active`), in an offer: the role the relay takes with the
    /// offerer when the answer comes back and the offerer said `actpass`.
    pub dtls_reverse: Option<crate::dtls::Role>,
}

/// The `DTLS` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtlsMode {
    /// No key: DTLS-SRTP where the profile towards a side is `UDP/TLS/...`, roles by default.
    #[default]
    Default,
    /// `off`, `no`, `disable`: the relay does no DTLS; DTLS lines pass through.
    Off,
    /// `passive`: the relay waits for the peer's ClientHello.
    Passive,
    /// `active`: the relay sends the ClientHello.
    Active,
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
    /// `trickle ICE`: announce trickle support (`a=ice-options:trickle`) in an offer.
    pub trickle_ice: bool,
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

/// `ICE-lite`: towards which side of the offer the relay is an ICE-lite agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceLite {
    /// Towards the offer's receiver.
    Forward,
    /// Towards the offer's sender.
    Backward,
    Both,
    /// Full ICE both ways.
    Off,
}

impl IceLite {
    /// Lite towards the offer's (receiver, sender).
    pub fn sides(self) -> (bool, bool) {
        match self {
            IceLite::Forward => (true, false),
            IceLite::Backward => (false, true),
            IceLite::Both => (true, true),
            IceLite::Off => (false, false),
        }
    }
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

/// `transport-protocol` (`transport protocol`): the RTP profile towards the receiver of the
/// message, or (`accept`, in answers) the answerer's own profile passed on to the offerer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportProtocol {
    /// Write this profile into the outgoing SDP and translate (SRTP ↔ RTP) as needed.
    Set(Profile),
    /// Answers: go along with a profile the answerer changed instead of restoring the offered one.
    Accept,
}

/// The RTP profiles `transport-protocol` names (rtpengine's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    RtpAvp,
    RtpAvpf,
    RtpSavp,
    RtpSavpf,
    UdpTlsRtpSavp,
    UdpTlsRtpSavpf,
}

impl Profile {
    /// Every profile, for lookups.
    pub const ALL: [Profile; 6] = [
        Profile::RtpAvp,
        Profile::RtpAvpf,
        Profile::RtpSavp,
        Profile::RtpSavpf,
        Profile::UdpTlsRtpSavp,
        Profile::UdpTlsRtpSavpf,
    ];

    /// The m= line spelling.
    pub fn name(self) -> &'static str {
        match self {
            Profile::RtpAvp => "RTP/AVP",
            Profile::RtpAvpf => "RTP/AVPF",
            Profile::RtpSavp => "RTP/SAVP",
            Profile::RtpSavpf => "RTP/SAVPF",
            Profile::UdpTlsRtpSavp => "UDP/TLS/RTP/SAVP",
            Profile::UdpTlsRtpSavpf => "UDP/TLS/RTP/SAVPF",
        }
    }

    /// The profile of this m= protocol (ASCII case ignored), if it is one of ours.
    pub fn from_name(s: &str) -> Option<Profile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
    }

    /// SRTP profiles (`SAVP`/`SAVPF`, with or without DTLS).
    pub fn is_srtp(self) -> bool {
        !matches!(self, Profile::RtpAvp | Profile::RtpAvpf)
    }

    /// The DTLS forms (`UDP/TLS/...`).
    pub fn is_dtls(self) -> bool {
        matches!(self, Profile::UdpTlsRtpSavp | Profile::UdpTlsRtpSavpf)
    }
}

/// The `SDES` list (and the `SDES-...` flag words): how the relay offers and answers
/// `a=crypto`. Suite names are kept as given (uppercased) so that a suite we do not implement
/// still restricts (`only-SEED_128_CTR_HMAC_SHA1_80` leaves nothing of ours to offer).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdes {
    /// `off`, `no`, `disable`: no SDES is offered.
    pub off: bool,
    /// `no-SUITE`: neither passed on nor added.
    pub no: Vec<String>,
    /// `only-SUITE`: only these are passed on or added (wins over `no-`).
    pub only: Vec<String>,
    /// `nonew`: only the offerer's suites are offered on (wins over `no-` and `only-`).
    pub nonew: bool,
    /// `pad`: keep base64 `=` padding in generated keys (omitted by default).
    pub pad: bool,
    /// `lifetime`: generated keys carry the lifetime `2^31`.
    pub lifetime: bool,
    /// `static`: a re-answer keeps the suite negotiated before.
    pub static_keys: bool,
    /// `unencrypted_srtp` / `encrypted_srtp`: force the session parameter on or off; `None`
    /// copies the offerer's.
    pub unencrypted_srtp: Option<bool>,
    /// `unencrypted_srtcp` / `encrypted_srtcp`.
    pub unencrypted_srtcp: Option<bool>,
    /// `unauthenticated_srtp` / `authenticated_srtp`.
    pub unauthenticated_srtp: Option<bool>,
    /// `order:A;B;...`: these suites first, in this order (tags unchanged).
    pub order: Vec<String>,
    /// `offerer_pref:A;B;...`: the suite answered to the offerer is the first of these it
    /// offered.
    pub offerer_pref: Vec<String>,
}

/// The `OSRTP` list (opportunistic SRTP, RFC 8643: `RTP/AVP` with `a=crypto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Osrtp {
    /// `offer`, `offer-RFC`: turn a plain offer into an OSRTP one.
    pub offer: bool,
    /// `offer-legacy`: accepted; duplicated (best-effort) media sections are not generated.
    pub offer_legacy: bool,
    /// `accept-RFC` (and `accept`): an answer without `a=crypto` to an OSRTP offer still gets
    /// SRTP towards the offerer.
    pub accept_rfc: bool,
    /// `accept-legacy` (and `accept`): accepted; legacy duplicated sections are not merged.
    pub accept_legacy: bool,
}
