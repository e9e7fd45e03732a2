//! The versioned call record: what a relay needs to restore a call (its legs, tags, SDP
//! endpoints, local ports, flags, latched peers), and nothing that changes per packet.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};

use crate::flow::StreamCounters;
use crate::sdp::crypto::{Crypto, KeyParam};
use crate::session::call::{Call, Leg, MediaSlot};
use crate::session::sdes::SdesSlot;
use crate::srtp::Suite;

/// Bumped when a field changes meaning; a reader refuses records of a newer schema.
pub const SCHEMA_VERSION: u32 = 2;

/// The schema of records without SDES keys: written as before, so that a relay of the previous
/// version still restores plain calls during a rolling upgrade (and refuses calls whose keys it
/// could not use).
pub const PLAIN_SCHEMA_VERSION: u32 = 1;

/// Longest record text read back: a call holds at most 32 legs of a few KiB of SDP, so anything
/// longer was not written by a relay (whoever can write to Redis can write anything).
pub const MAX_RECORD_BYTES: usize = 512 * 1024;

/// One call as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub schema: u32,
    /// The node that owns the call (its key's hash tag).
    pub owner: String,
    /// Grows with every change of the call; a write with a lower one is stale.
    pub generation: u64,
    pub call_id: String,
    /// Unix microseconds.
    pub created_us: u64,
    pub last_signal_us: u64,
    pub recording: bool,
    pub block_media: bool,
    pub metadata: Option<String>,
    pub legs: Vec<LegRecord>,
}

/// One leg (SIP tag) of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegRecord {
    pub tag: Option<String>,
    pub label: Option<String>,
    pub branch: Option<String>,
    /// Index of the leg this one exchanges media with.
    pub peer: Option<usize>,
    pub created_by: Option<usize>,
    pub interface: String,
    pub asymmetric: bool,
    pub strict: bool,
    pub on_hold: bool,
    pub block_media: bool,
    pub received_from: Option<IpAddr>,
    /// The last SDP this leg sent (the answer to a re-INVITE is cut down against it).
    pub last_sdp: Option<String>,
    pub medias: Vec<MediaRecord>,
}

/// One m= section of a leg: its local ports and where media goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaRecord {
    pub kind: String,
    pub proto: String,
    /// Local address the pair is bound on, the address advertised in SDP, and the RTP port
    /// (RTCP is the next one).
    pub local: Option<(IpAddr, IpAddr, u16)>,
    pub far_end: Option<SocketAddr>,
    pub remote_rtp: Option<SocketAddr>,
    pub remote_rtcp: Option<SocketAddr>,
    pub rtcp_mux: bool,
    /// The relay muxes towards the offerer and demuxes towards this leg (`rtcp-mux: demux`).
    #[serde(default)]
    pub demuxed: bool,
    pub rejected: bool,
    pub is_rtp: bool,
    pub ptime: Option<u32>,
    pub mid: Option<String>,
    /// The sources the relay latched on (RTP, RTCP).
    pub learned_rtp: Option<SocketAddr>,
    pub learned_rtcp: Option<SocketAddr>,
    /// The counters of the RTP and the RTCP socket when the record was written: a restored
    /// call counts on from them.
    #[serde(default)]
    pub rtp_totals: StreamTotals,
    #[serde(default)]
    pub rtcp_totals: StreamTotals,
    /// SDES keys (schema 2). Secret: whoever reads the store can decrypt the call's media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdes: Option<SdesRecord>,
    /// DTLS and ICE state (schema 2). Secret: the ICE passwords.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webrtc: Option<super::record_webrtc::WebrtcRecord>,
}

/// The SDES state of one media of one leg, its `a=crypto` lines as text (see
/// `session/sdes.rs`); restored lines are parsed and checked like received ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SdesRecord {
    pub theirs: Vec<String>,
    pub ours: Vec<String>,
    /// (suite name, base64 key and salt) the relay generated towards this side.
    pub generated: Vec<(String, String)>,
    pub their_key: Option<String>,
    pub our_key: Option<String>,
    pub offerer_pref: Vec<String>,
}

impl SdesRecord {
    fn of(s: &SdesSlot) -> Option<SdesRecord> {
        if *s == SdesSlot::default() {
            return None;
        }
        let text = |v: &[Crypto]| v.iter().map(ToString::to_string).collect();
        Some(SdesRecord {
            theirs: text(&s.theirs),
            ours: text(&s.ours),
            generated: s
                .generated
                .iter()
                .map(|(suite, k)| (suite.name().to_owned(), KeyParam::inline(k).key_text))
                .collect(),
            their_key: s.their_key.as_ref().map(ToString::to_string),
            our_key: s.our_key.as_ref().map(ToString::to_string),
            offerer_pref: s.offerer_pref.clone(),
        })
    }

    /// The slot back; lines that do not parse or cannot be used are dropped.
    pub fn slot(&self) -> SdesSlot {
        let line = |t: &String| t.parse::<Crypto>().ok().filter(|c| c.srtp_params().is_ok());
        let lines = |v: &[String]| v.iter().filter_map(line).collect();
        SdesSlot {
            theirs: lines(&self.theirs),
            ours: lines(&self.ours),
            generated: self
                .generated
                .iter()
                .filter_map(|(name, key)| {
                    let suite = Suite::from_name(name)?;
                    let k = KeyParam {
                        key_text: key.clone(),
                        lifetime: None,
                        mki: None,
                    }
                    .key_salt()
                    .ok()?;
                    (k.len() == suite.inline_key_len()).then_some((suite, k))
                })
                .collect(),
            their_key: self.their_key.as_ref().and_then(line),
            our_key: self.our_key.as_ref().and_then(line),
            offerer_pref: self.offerer_pref.clone(),
        }
    }
}

/// A stream's counters, as stored (refreshed with every write of the call, and at least every
/// [`COUNTERS_REFRESH`](crate::daemon::store::COUNTERS_REFRESH) while it has media).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTotals {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
    pub dropped: u64,
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
}

impl StreamTotals {
    /// Sets `c` to these figures (a restored stream counts on from them).
    pub fn seed(&self, c: &StreamCounters) {
        c.packets.store(self.packets, Relaxed);
        c.bytes.store(self.bytes, Relaxed);
        c.errors.store(self.errors, Relaxed);
        c.dropped.store(self.dropped, Relaxed);
        c.rtcp_packets.store(self.rtcp_packets, Relaxed);
        c.rtcp_bytes.store(self.rtcp_bytes, Relaxed);
    }

    fn of(c: &StreamCounters) -> StreamTotals {
        StreamTotals {
            packets: c.packets.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
            errors: c.errors.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            rtcp_packets: c.rtcp_packets.load(Relaxed),
            rtcp_bytes: c.rtcp_bytes.load(Relaxed),
        }
    }
}

impl CallRecord {
    /// The record of `call` as it is now, owned by `owner`, at `generation`.
    pub fn from_call(call: &Call, owner: &str, generation: u64) -> CallRecord {
        CallRecord {
            schema: if call.legs.iter().any(|l| {
                l.medias.iter().any(|m| {
                    m.sdes != SdesSlot::default() || m.dtls.role.is_some() || m.ice.enabled
                })
            }) {
                SCHEMA_VERSION
            } else {
                PLAIN_SCHEMA_VERSION
            },
            owner: owner.to_string(),
            generation,
            call_id: call.id.clone(),
            created_us: call.created.unix_us,
            last_signal_us: call.last_signal.unix_us,
            recording: call.recording,
            block_media: call.block_media,
            metadata: call.metadata.clone(),
            legs: call.legs.iter().map(LegRecord::from_leg).collect(),
        }
    }

    /// The stable encoding (JSON; the schema field versions it).
    pub fn encode(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a record back; `None` for text that is not one, of a newer schema, or too long.
    pub fn decode(text: &str) -> Option<CallRecord> {
        if text.len() > MAX_RECORD_BYTES {
            return None;
        }
        serde_json::from_str::<CallRecord>(text)
            .ok()
            .filter(|r| r.schema <= SCHEMA_VERSION)
    }
}

impl LegRecord {
    fn from_leg(leg: &Leg) -> LegRecord {
        LegRecord {
            tag: leg.tag.clone(),
            label: leg.label.clone(),
            branch: leg.branch.clone(),
            peer: leg.peer,
            created_by: leg.created_by,
            interface: leg.interface.clone(),
            asymmetric: leg.asymmetric,
            strict: leg.strict,
            on_hold: leg.on_hold,
            block_media: leg.block_media,
            received_from: leg.received_from,
            last_sdp: leg.last_sdp.as_deref().map(String::from),
            medias: leg.medias.iter().map(MediaRecord::from_slot).collect(),
        }
    }
}

impl MediaRecord {
    fn from_slot(m: &MediaSlot) -> MediaRecord {
        MediaRecord {
            kind: m.kind.clone(),
            proto: m.proto.clone(),
            local: m.local.map(|p| (p.local, p.advertised, p.rtp_port)),
            far_end: m.far_end,
            remote_rtp: m.remote_rtp,
            remote_rtcp: m.remote_rtcp,
            rtcp_mux: m.rtcp_mux,
            demuxed: m.demuxed,
            rejected: m.rejected,
            is_rtp: m.is_rtp,
            ptime: m.ptime,
            mid: m.mid.clone(),
            learned_rtp: m.rtp.learned,
            learned_rtcp: m.rtcp.learned,
            rtp_totals: StreamTotals::of(&m.rtp.counters),
            rtcp_totals: StreamTotals::of(&m.rtcp.counters),
            sdes: SdesRecord::of(&m.sdes),
            webrtc: super::record_webrtc::WebrtcRecord::of(&m.dtls, &m.ice),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(generation: u64) -> CallRecord {
        CallRecord {
            schema: PLAIN_SCHEMA_VERSION,
            owner: "node-a".into(),
            generation,
            call_id: "c1@example".into(),
            created_us: 1,
            last_signal_us: 2,
            recording: false,
            block_media: false,
            metadata: None,
            legs: vec![LegRecord {
                tag: Some("from".into()),
                label: None,
                branch: None,
                peer: Some(1),
                created_by: None,
                interface: "default".into(),
                asymmetric: false,
                strict: true,
                on_hold: false,
                block_media: false,
                received_from: None,
                last_sdp: Some("v=0\r\n".into()),
                medias: vec![MediaRecord {
                    kind: "audio".into(),
                    proto: "RTP/AVP".into(),
                    local: Some((
                        "192.0.2.1".parse().unwrap(),
                        "192.0.2.1".parse().unwrap(),
                        30000,
                    )),
                    far_end: Some("198.51.100.7:4000".parse().unwrap()),
                    remote_rtp: Some("198.51.100.7:4000".parse().unwrap()),
                    remote_rtcp: None,
                    rtcp_mux: false,
                    demuxed: false,
                    rejected: false,
                    is_rtp: true,
                    ptime: Some(20),
                    mid: None,
                    learned_rtp: Some("198.51.100.7:4002".parse().unwrap()),
                    learned_rtcp: None,
                    rtp_totals: StreamTotals::default(),
                    rtcp_totals: StreamTotals::default(),
                    sdes: None,
                    webrtc: None,
                }],
            }],
        }
    }

    #[test]
    fn a_record_survives_its_encoding() {
        let r = sample(7);
        let text = r.encode();
        assert!(text.starts_with("{\"schema\":1,"), "{text}");
        assert_eq!(CallRecord::decode(&text), Some(r));
    }

    #[test]
    fn sdes_keys_survive_and_bad_stored_lines_are_dropped() {
        let line = "1 AES_CM_128_HMAC_SHA1_80 inline:Qk0TvVeyfqfjFd/YebnyyklqSEhJntpVKV1KAhHa";
        let mut r = sample(3);
        r.schema = SCHEMA_VERSION;
        r.legs[0].medias[0].sdes = Some(SdesRecord {
            theirs: vec![line.into(), "2 F8_128_HMAC_SHA1_80 inline:QUJD".into()],
            ours: vec![line.into()],
            generated: vec![
                ("AEAD_AES_128_GCM".into(), "A".repeat(38)),
                ("AEAD_AES_256_GCM".into(), "short".into()),
            ],
            their_key: Some(line.into()),
            our_key: Some("garbage".into()),
            offerer_pref: vec!["AES_CM_128_HMAC_SHA1_80".into()],
        });
        let text = r.encode();
        assert!(text.starts_with("{\"schema\":2,"), "{text}");
        let back = CallRecord::decode(&text).unwrap();
        assert_eq!(back, r);
        let slot = back.legs[0].medias[0].sdes.as_ref().unwrap().slot();
        assert_eq!(slot.theirs.len(), 1);
        assert_eq!(slot.generated.len(), 1);
        assert_eq!(slot.generated[0].0, Suite::AeadAes128Gcm);
        assert!(slot.their_key.is_some() && slot.our_key.is_none());
        // A record of the plain schema (no sdes field) still loads.
        let plain = sample(4).encode();
        assert!(!plain.contains("sdes"));
        assert_eq!(CallRecord::decode(&plain), Some(sample(4)));
    }

    #[test]
    fn a_newer_schema_or_garbage_is_refused() {
        let mut r = sample(1);
        r.schema = SCHEMA_VERSION + 1;
        assert_eq!(CallRecord::decode(&r.encode()), None);
        assert_eq!(CallRecord::decode("not json"), None);
        let mut big = sample(1);
        big.legs[0].last_sdp = Some("x".repeat(MAX_RECORD_BYTES));
        assert_eq!(CallRecord::decode(&big.encode()), None);
    }
}
