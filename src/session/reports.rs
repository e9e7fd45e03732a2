//! What `query`, `list` and `statistics` report, as typed structs with rtpengine's figures (what
//! Kamailio's `rtpengine_query_v()` and monitoring tools read); `control/render.rs` lays them out.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use crate::session::call::{Call, MediaSlot, Stream};
use crate::session::engine::Engine;
use crate::session::error::SessionError;
use crate::session::reply::{CallReport, MediaReport, StreamReport, TagReport};
use crate::time::{Millis, Now};

impl Engine {
    pub(crate) fn query(&self, _now: Now, call_id: &str) -> Result<CallReport, SessionError> {
        let call = self.calls.get(call_id).ok_or(SessionError::UnknownCall)?;
        let mut totals = MediaTotals::default();
        let tags = call
            .legs
            .iter()
            .map(|leg| TagReport {
                tag: leg.tag.clone().unwrap_or_default(),
                label: leg.label.clone(),
                created: now_secs(leg.created),
                in_dialogue_with: leg
                    .peer
                    .and_then(|p| call.legs.get(p))
                    .map(|peer| peer.tag.clone().unwrap_or_default()),
                medias: leg
                    .medias
                    .iter()
                    .enumerate()
                    .map(|(i, m)| media_report(call.created, i, m, &mut totals))
                    .collect(),
            })
            .collect();
        Ok(CallReport {
            created: now_secs(call.created),
            created_us: call.created.unix_us % 1_000_000,
            last_signal: now_secs(call.last_signal),
            proxy: call.created_from,
            tags,
            totals,
        })
    }

    /// Call-ids, oldest first, at most `limit`.
    pub(crate) fn list(&self, limit: Option<usize>) -> Vec<String> {
        let mut calls: Vec<&Call> = self.calls.values().collect();
        calls.sort_by_key(|c| (c.created.mono, c.id.clone()));
        calls
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|c| c.id.clone())
            .collect()
    }

    /// Current figures for `statistics` and `/metrics`. Packet counters include calls that
    /// have ended, so they only grow.
    pub fn snapshot(&self, now: Now) -> Snapshot {
        let mut live = MediaTotals::default();
        let mut streams = 0u64;
        for call in self.calls.values() {
            for leg in &call.legs {
                for (i, m) in leg.medias.iter().enumerate() {
                    media_report(call.created, i, m, &mut live);
                    streams += u64::from(m.local.is_some());
                }
            }
        }
        let ended = &self.totals.ended_media;
        Snapshot {
            calls: self.calls.len() as u64,
            streams,
            uptime_secs: self.started.map_or(0, |s| now.mono.since(s.mono).as_secs()),
            totals: self.totals.clone(),
            rtp: live.rtp.plus(&ended.rtp),
            rtcp: live.rtcp.plus(&ended.rtcp),
            plane: self.cfg.plane,
        }
    }

    /// Folds an ending call's packet counters into the running totals.
    pub(crate) fn account_ended(&mut self, call: &Call) {
        let mut t = MediaTotals::default();
        for leg in &call.legs {
            for (i, m) in leg.medias.iter().enumerate() {
                media_report(call.created, i, m, &mut t);
            }
        }
        let e = &mut self.totals.ended_media;
        e.rtp = e.rtp.plus(&t.rtp);
        e.rtcp = e.rtcp.plus(&t.rtcp);
    }
}

/// Figures of the whole relay at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub calls: u64,
    pub streams: u64,
    pub uptime_secs: u64,
    pub totals: crate::session::engine::Totals,
    pub rtp: Counts,
    pub rtcp: Counts,
    pub plane: &'static str,
}

/// Packets, bytes and errors of one kind of traffic.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub packets: u64,
    pub bytes: u64,
    pub errors: u64,
}

impl Counts {
    fn plus(self, o: &Counts) -> Counts {
        Counts {
            packets: self.packets + o.packets,
            bytes: self.bytes + o.bytes,
            errors: self.errors + o.errors,
        }
    }
}

/// RTP and RTCP counts together.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MediaTotals {
    pub rtp: Counts,
    pub rtcp: Counts,
}

/// `created` stands in for `last packet` until a packet arrives, as rtpengine reports it.
fn media_report(created: Now, i: usize, m: &MediaSlot, totals: &mut MediaTotals) -> MediaReport {
    let mut streams = Vec::new();
    if let Some(local) = m.local {
        let suite = m.sdes.suite().map(crate::srtp::Suite::name);
        let rtp = stream_report(created, &m.rtp, local.rtp(), m.remote_rtp, "RTP");
        let rtcp = stream_report(created, &m.rtcp, local.rtcp(), m.remote_rtcp, "RTCP");
        for mut s in [rtp, rtcp] {
            s.crypto_suite = s.crypto_suite.or(suite);
            streams.push(s);
        }
        add(&mut totals.rtp, &m.rtp, Part::Rtp);
        add(&mut totals.rtcp, &m.rtp, Part::MuxedRtcp);
        add(&mut totals.rtcp, &m.rtcp, Part::Rtcp);
    }
    let mut flags = vec!["initialized"];
    if m.rejected {
        flags.clear();
    }
    if m.sdes.suite().is_some() {
        flags.push("SDES");
    }
    // rtpengine's media flags for DTLS-SRTP and ICE.
    match m.dtls.role {
        Some(crate::dtls::Role::Active) => flags.extend(["DTLS-SRTP", "DTLS role active"]),
        Some(crate::dtls::Role::Passive) => flags.extend(["DTLS-SRTP", "DTLS role passive"]),
        None => {}
    }
    if m.ice.enabled {
        flags.push("ICE");
        if m.ice.lite {
            flags.push("ICE-lite self");
        } else if m.ice.controlling || m.ice.their_lite {
            flags.push("ICE controlling");
        }
        if m.ice.their_lite {
            flags.push("ICE-lite peer");
        }
    }
    if m.rtcp_mux {
        flags.push("rtcp-mux");
    }
    MediaReport {
        index: (i + 1) as u64,
        kind: m.kind.clone(),
        protocol: m.proto.clone(),
        streams,
        flags,
    }
}

/// Which of a stream's counters go into a total.
enum Part {
    /// RTP received on the RTP port (with its errors).
    Rtp,
    /// RTCP multiplexed on the RTP port (its errors are already in the RTP total).
    MuxedRtcp,
    /// The RTCP port: everything, errors included.
    Rtcp,
}

fn add(c: &mut Counts, s: &Stream, part: Part) {
    let k = &s.counters;
    match part {
        Part::Rtp => {
            c.packets += k.packets.load(Relaxed);
            c.bytes += k.bytes.load(Relaxed);
            c.errors += k.errors.load(Relaxed);
        }
        Part::MuxedRtcp => {
            c.packets += k.rtcp_packets.load(Relaxed);
            c.bytes += k.rtcp_bytes.load(Relaxed);
        }
        Part::Rtcp => {
            c.packets += k.rtcp_packets.load(Relaxed);
            c.bytes += k.rtcp_bytes.load(Relaxed);
            c.errors += k.errors.load(Relaxed);
        }
    }
}

fn stream_report(
    created: Now,
    s: &Stream,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    kind: &'static str,
) -> StreamReport {
    let k = &s.counters;
    let last = k.last_packet_ms.load(Relaxed);
    let mut flags = vec![kind];
    if remote.is_some() {
        flags.push("filled");
    }
    StreamReport {
        local,
        endpoint: s.learned.or(remote),
        advertised: remote,
        last_packet: if last == 0 {
            now_secs(created)
        } else {
            unix_secs_of(created, Millis(last))
        },
        flags,
        // A DTLS stream's suite is the one its handshake negotiated.
        crypto_suite: s
            .handshake
            .as_ref()
            .and_then(|h| h.suite)
            .map(crate::srtp::Suite::name),
        ice_state: s.handshake.as_ref().and_then(|h| h.ice).map(ice_state_name),
        dtls_state: s
            .handshake
            .as_ref()
            .and_then(|h| h.dtls.as_ref())
            .map(dtls_state_name),
        packets: k.packets.load(Relaxed) + k.rtcp_packets.load(Relaxed),
        bytes: k.bytes.load(Relaxed) + k.rtcp_bytes.load(Relaxed),
        errors: k.errors.load(Relaxed),
    }
}

fn ice_state_name(s: crate::ice::IceState) -> &'static str {
    use crate::ice::IceState;
    match s {
        IceState::New => "new",
        IceState::Checking => "checking",
        IceState::Connected => "connected",
        IceState::Completed => "completed",
        IceState::Failed => "failed",
    }
}

fn dtls_state_name(s: &crate::dtls::DtlsState) -> &'static str {
    use crate::dtls::DtlsState;
    match s {
        DtlsState::Handshaking => "handshaking",
        DtlsState::AwaitingFingerprint => "awaiting fingerprint",
        DtlsState::Connected => "connected",
        DtlsState::Failed(_) => "failed",
    }
}

fn now_secs(t: Now) -> u64 {
    t.unix_us / 1_000_000
}

/// Wall-clock seconds of a monotonic instant, using a known (monotonic, wall) pair.
fn unix_secs_of(known: Now, t: Millis) -> u64 {
    let known_ms = known.unix_us / 1000;
    if t >= known.mono {
        (known_ms + (t.0 - known.mono.0)) / 1000
    } else {
        known_ms.saturating_sub(known.mono.0 - t.0) / 1000
    }
}
