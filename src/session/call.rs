//! Call state: a call has legs (one per SIP tag, or a pending branch), each leg has media slots,
//! and each slot owns a local RTP/RTCP port pair that its endpoint sends to.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::flow::{FlowId, StreamCounters};
use crate::time::{Millis, Now};

/// One call, keyed by its Call-ID.
#[derive(Debug)]
pub struct Call {
    pub id: String,
    pub created: Now,
    pub last_signal: Now,
    /// Hash of the call-id: every flow of the call lives on the worker this selects.
    pub shard: u64,
    pub legs: Vec<Leg>,
    /// Set by `delete`: the call is destroyed at this time.
    pub destroy_at: Option<Millis>,
    /// Packets are copied to the recorder (`record call`, `start recording`; off again after
    /// `stop`/`pause recording`).
    pub recording: bool,
    /// The call has an open spool entry (closed by `stop recording` or the end of the call).
    pub record_open: bool,
    pub metadata: Option<String>,
    /// `block media` for the whole call: no participant's media is relayed.
    pub block_media: bool,
    /// An SDP endpoint of this call was refused as a media target (logged once per call).
    pub target_refused: bool,
    /// `endpoint learning` given for this call (else the daemon's `--endpoint-learning`).
    pub learning: Option<crate::flow::latch::EndpointLearning>,
    /// The NG client whose offer created the call, when known.
    pub created_from: Option<SocketAddr>,
}

/// One side of a call: a SIP tag (or, before the answer, a branch that has no tag yet).
#[derive(Debug)]
pub struct Leg {
    pub tag: Option<String>,
    pub label: Option<String>,
    pub created: Now,
    /// The via-branch of the offer that created this (untagged) leg.
    pub branch: Option<String>,
    /// The leg whose offer created this one, while it waits for its answer.
    pub created_by: Option<usize>,
    /// The leg this one exchanges media with.
    pub peer: Option<usize>,
    /// Interface name this leg's ports live on.
    pub interface: String,
    pub medias: Vec<MediaSlot>,
    /// `replace: SDP version` state: the last SDP seen from this leg (version masked) and the
    /// version sent for it.
    /// A digest of the SDP stands in for its text: a call keeps as little as it can.
    pub sdp_version: Option<(u64, u64)>,
    /// The o= user name and s= text of this leg's first SDP (`replace: username`,
    /// `replace: session-name`).
    pub first_names: Option<(Option<String>, Option<String>)>,
    /// True once this leg sent an SDP (offer or answer).
    pub has_sdp: bool,
    /// The last SDP this leg sent, as parsed: an answer's codecs are cut down to this offer's.
    /// Kept as text and parsed again when needed (an answer, a recording's codecs): a parsed
    /// body is several times larger, and thousands of calls each keep two.
    pub last_sdp: Option<Box<str>>,
    /// `asymmetric` was given for this leg.
    pub asymmetric: bool,
    /// `strict source` for this leg.
    pub strict: bool,
    /// Where this leg's last SDP came from over SIP (`received-from`): its media source
    /// address ranks as expected when latching.
    pub received_from: Option<IpAddr>,
    /// The leg is on hold or one-way (silent timeout applies).
    pub on_hold: bool,
    /// `block media` for this participant: the media it sends is not relayed. Kept across
    /// re-INVITEs, as rtpengine keeps it per monologue.
    pub block_media: bool,
}

impl Leg {
    /// The last SDP this leg sent, parsed again from its text.
    pub fn last_body(&self) -> Option<crate::sdp::Body> {
        self.last_sdp
            .as_deref()
            .and_then(|t| crate::sdp::Body::parse(t.as_bytes()).ok())
    }

    pub fn new(tag: Option<String>, interface: String, now: Now) -> Leg {
        Leg {
            tag,
            label: None,
            created: now,
            branch: None,
            created_by: None,
            peer: None,
            interface,
            medias: Vec::new(),
            sdp_version: None,
            first_names: None,
            has_sdp: false,
            last_sdp: None,
            asymmetric: false,
            strict: false,
            received_from: None,
            on_hold: false,
            block_media: false,
        }
    }
}

/// One m= section of one leg.
#[derive(Debug)]
pub struct MediaSlot {
    pub kind: String,
    pub proto: String,
    /// The local pair this leg's endpoint sends to, once allocated.
    pub local: Option<LocalPair>,
    /// The far-end endpoint `local` relays to (see `follow.rs`).
    pub far_end: Option<SocketAddr>,
    /// Pairs this slot used for earlier far ends: still reserved, sockets closed.
    pub parked: Vec<(SocketAddr, LocalPair)>,
    /// Where this leg's endpoint said (in its SDP) it receives RTP; `None` for a null address.
    pub remote_rtp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    /// This leg's endpoint uses (or, in an offer, offers) RTCP multiplexed on the RTP port.
    pub rtcp_mux: bool,
    /// The offer towards this leg dropped the offerer's rtcp-mux (`rtcp-mux: demux`): the relay
    /// then muxes towards the offerer itself and demuxes towards this leg.
    pub demuxed: bool,
    /// The m= line was rejected (port 0) in this leg's last SDP.
    pub rejected: bool,
    /// Carries RTP (false for e.g. `m=image udptl`).
    pub is_rtp: bool,
    /// The packet time written as `a=ptime` in SDP sent to this leg. As rtpengine keeps it per
    /// media: set on both sides whenever either side's SDP announces one, and kept until the
    /// next announcement (so a re-offer without ptime still carries the answerer's).
    pub ptime: Option<u32>,
    /// What the last offer towards this leg carried (RTP media): its answer is cut down to
    /// these codecs and follows the offer's codec filter (see `sdp::answer`).
    pub offered: Option<Offered>,
    /// `media echo` for the media this leg sends: relayed to the other leg (the default),
    /// sent back to this leg, or dropped. Kept until a later `media echo` changes it.
    pub echo: Echo,
    /// The `a=mid` written in SDP sent to this leg, as rtpengine keeps a media ID per side:
    /// the sender's own, updated by each offer it sends that has one; the receiver's, copied
    /// from the sender's by the first offer that reaches it and kept from then on.
    pub mid: Option<String>,
    /// SDES keys with this leg (see `sdes.rs`).
    pub sdes: crate::session::sdes::SdesSlot,
    /// DTLS-SRTP with this leg (see `dtls.rs`).
    pub dtls: crate::session::dtls::DtlsSlot,
    /// ICE with this leg (see `ice.rs`).
    pub ice: crate::session::ice::IceSlot,
    pub rtp: Stream,
    pub rtcp: Stream,
}

/// Where the media a leg sends goes (see `media echo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Echo {
    /// To the other leg.
    #[default]
    Relay,
    /// Back to the sender, out of the relay port it sent to.
    Echo,
    /// Nowhere.
    Blackhole,
}

/// One m= line of an offer as the receiving leg got it.
#[derive(Debug, Clone, Default)]
pub struct Offered {
    /// The format list of the m= line sent.
    pub formats: Vec<String>,
    /// The clock rates the offer's codec filter touched.
    pub touched: crate::sdp::Touched,
}

/// A local RTP/RTCP port pair on one interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPair {
    pub local: IpAddr,
    pub advertised: IpAddr,
    pub rtp_port: u16,
}

impl LocalPair {
    pub fn rtp(&self) -> SocketAddr {
        SocketAddr::new(self.local, self.rtp_port)
    }
    pub fn rtcp(&self) -> SocketAddr {
        SocketAddr::new(self.local, self.rtp_port.wrapping_add(1))
    }
}

/// One receiving local socket, as the session layer tracks it.
#[derive(Debug)]
pub struct Stream {
    pub flow: FlowId,
    pub counters: Arc<StreamCounters>,
    /// The source the worker latched on, when it differs from or completes the SDP.
    pub learned: Option<SocketAddr>,
    /// The worker was told to open this flow.
    pub opened: bool,
    /// Where the stream's ICE and DTLS handshakes are, as its worker last reported.
    pub handshake: Option<crate::flow::table::HandshakeState>,
}

impl Stream {
    pub fn new(flow: FlowId) -> Stream {
        Stream {
            flow,
            handshake: None,
            counters: Arc::new(StreamCounters::default()),
            learned: None,
            opened: false,
        }
    }
}

impl Call {
    /// The leg with this tag.
    pub fn leg_by_tag(&self, tag: &str) -> Option<usize> {
        self.legs.iter().position(|l| l.tag.as_deref() == Some(tag))
    }

    /// Latest packet time over all streams of the call, if any packet arrived.
    pub fn last_packet(&self) -> Option<Millis> {
        use std::sync::atomic::Ordering::Relaxed;
        self.legs
            .iter()
            .flat_map(|l| &l.medias)
            .flat_map(|m| [&m.rtp, &m.rtcp])
            .map(|s| s.counters.last_packet_ms.load(Relaxed))
            .filter(|&t| t != 0)
            .max()
            .map(Millis)
    }

    /// Whether the media leg `leg` sends is blocked, by the call or by the leg itself.
    pub fn blocks(&self, leg: usize) -> bool {
        self.block_media || self.legs.get(leg).is_some_and(|l| l.block_media)
    }

    /// An answer has been seen: at least two legs have sent SDP.
    pub fn answered(&self) -> bool {
        self.legs.iter().filter(|l| l.has_sdp).count() >= 2
    }
}
