//! `query`, `list` and `statistics` replies, in rtpengine's layout (what Kamailio's
//! `rtpengine_query_v()` and monitoring tools read).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;

use crate::control::bencode::{Dict, Value};
use crate::control::reply::ok_reply;
use crate::session::call::{Call, MediaSlot, Stream};
use crate::session::engine::Engine;
use crate::session::error::SessionError;
use crate::session::reply::dict_put;
use crate::time::{Millis, Now};

impl Engine {
    pub(crate) fn query(&self, _now: Now, call_id: &str) -> Result<Value, SessionError> {
        let call = self.calls.get(call_id).ok_or(SessionError::UnknownCall)?;
        let mut d = Dict::new();
        dict_put(&mut d, "result", "ok");
        dict_put(&mut d, "created", now_secs(call.created));
        dict_put(&mut d, "created_us", call.created.unix_us % 1_000_000);
        dict_put(&mut d, "last signal", now_secs(call.last_signal));
        dict_put(&mut d, "SSRC", Dict::new());
        let mut tags = Dict::new();
        let mut totals = MediaTotals::default();
        for leg in &call.legs {
            let mut t = Dict::new();
            let tag = leg.tag.clone().unwrap_or_default();
            dict_put(&mut t, "tag", tag.clone());
            if let Some(l) = &leg.label {
                dict_put(&mut t, "label", l.clone());
            }
            dict_put(&mut t, "created", now_secs(leg.created));
            if let Some(peer) = leg.peer.and_then(|p| call.legs.get(p)) {
                dict_put(
                    &mut t,
                    "in dialogue with",
                    peer.tag.clone().unwrap_or_default(),
                );
            }
            let medias: Vec<Value> = leg
                .medias
                .iter()
                .enumerate()
                .map(|(i, m)| media_report(call.created, i, m, &mut totals))
                .collect();
            dict_put(&mut t, "medias", medias);
            tags.insert(tag.into_bytes(), Value::Dict(t));
        }
        dict_put(&mut d, "tags", tags);
        let mut tot = Dict::new();
        dict_put(&mut tot, "RTP", totals.rtp.to_dict());
        dict_put(&mut tot, "RTCP", totals.rtcp.to_dict());
        dict_put(&mut d, "totals", tot);
        Ok(Value::Dict(d))
    }

    pub(crate) fn list(&self, limit: Option<usize>) -> Value {
        let mut calls: Vec<&Call> = self.calls.values().collect();
        calls.sort_by_key(|c| (c.created.mono, c.id.clone()));
        let ids: Vec<Value> = calls
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|c| Value::Bytes(c.id.clone().into_bytes()))
            .collect();
        let mut r = ok_reply();
        if let Value::Dict(d) = &mut r {
            dict_put(d, "calls", ids);
        }
        r
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

    pub(crate) fn statistics(&self, now: Now) -> Value {
        let s = self.snapshot(now);
        let mut current = Dict::new();
        dict_put(&mut current, "sessionsown", s.calls);
        dict_put(&mut current, "sessionsforeign", 0u64);
        dict_put(&mut current, "sessionstotal", s.calls);
        dict_put(&mut current, "transcodedmedia", 0u64);
        dict_put(&mut current, "mediastreams", s.streams);
        let mut total = Dict::new();
        dict_put(&mut total, "uptime", s.uptime_secs);
        dict_put(&mut total, "managedsessions", s.totals.calls_created);
        dict_put(&mut total, "deletedsessions", s.totals.calls_deleted);
        dict_put(&mut total, "timeoutsessions", s.totals.calls_timed_out);
        dict_put(
            &mut total,
            "rejectedsessions",
            s.totals.rejected_session_limit,
        );
        dict_put(&mut total, "packetsrelayed", s.rtp.packets + s.rtcp.packets);
        dict_put(&mut total, "bytesrelayed", s.rtp.bytes + s.rtcp.bytes);
        dict_put(&mut total, "errors", s.rtp.errors + s.rtcp.errors);
        let mut stats = Dict::new();
        dict_put(&mut stats, "currentstatistics", current);
        dict_put(&mut stats, "totalstatistics", total);
        dict_put(&mut stats, "dataplane", s.plane);
        let mut r = ok_reply();
        if let Value::Dict(d) = &mut r {
            dict_put(d, "statistics", stats);
        }
        r
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
#[derive(Debug, Clone)]
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

    fn to_dict(self) -> Dict {
        let mut d = Dict::new();
        dict_put(&mut d, "packets", self.packets);
        dict_put(&mut d, "bytes", self.bytes);
        dict_put(&mut d, "errors", self.errors);
        d
    }
}

/// RTP and RTCP counts together.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MediaTotals {
    pub rtp: Counts,
    pub rtcp: Counts,
}

/// `created` stands in for `last packet` until a packet arrives, as rtpengine reports it.
fn media_report(created: Now, i: usize, m: &MediaSlot, totals: &mut MediaTotals) -> Value {
    let mut d = Dict::new();
    dict_put(&mut d, "index", (i + 1) as u64);
    dict_put(&mut d, "type", m.kind.clone());
    dict_put(&mut d, "protocol", m.proto.clone());
    let mut streams = Vec::new();
    if let Some(local) = m.local {
        let rtp = stream_report(created, &m.rtp, local.rtp(), m.remote_rtp, "RTP");
        let rtcp = stream_report(created, &m.rtcp, local.rtcp(), m.remote_rtcp, "RTCP");
        streams.push(rtp);
        streams.push(rtcp);
        add(&mut totals.rtp, &m.rtp, Part::Rtp);
        add(&mut totals.rtcp, &m.rtp, Part::MuxedRtcp);
        add(&mut totals.rtcp, &m.rtcp, Part::Rtcp);
    }
    dict_put(&mut d, "streams", streams);
    let mut flags = vec![Value::Bytes(b"initialized".to_vec())];
    if m.rejected {
        flags.clear();
    }
    if m.rtcp_mux {
        flags.push(Value::Bytes(b"rtcp-mux".to_vec()));
    }
    dict_put(&mut d, "flags", flags);
    Value::Dict(d)
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
    kind: &str,
) -> Value {
    let mut d = Dict::new();
    dict_put(&mut d, "local port", u64::from(local.port()));
    dict_put(&mut d, "local address", local.ip().to_string());
    dict_put(&mut d, "family", family_name(local.ip()));
    let endpoint = s.learned.or(remote);
    dict_put(&mut d, "endpoint", endpoint_dict(endpoint));
    dict_put(&mut d, "advertised endpoint", endpoint_dict(remote));
    let k = &s.counters;
    let last = k.last_packet_ms.load(Relaxed);
    dict_put(
        &mut d,
        "last packet",
        if last == 0 {
            now_secs(created)
        } else {
            unix_secs_of(created, Millis(last))
        },
    );
    let mut flags = vec![Value::Bytes(kind.as_bytes().to_vec())];
    if remote.is_some() {
        flags.push(Value::Bytes(b"filled".to_vec()));
    }
    dict_put(&mut d, "flags", flags);
    let mut st = Dict::new();
    dict_put(
        &mut st,
        "packets",
        k.packets.load(Relaxed) + k.rtcp_packets.load(Relaxed),
    );
    dict_put(
        &mut st,
        "bytes",
        k.bytes.load(Relaxed) + k.rtcp_bytes.load(Relaxed),
    );
    dict_put(&mut st, "errors", k.errors.load(Relaxed));
    dict_put(&mut d, "stats", st);
    Value::Dict(d)
}

fn endpoint_dict(a: Option<SocketAddr>) -> Dict {
    let mut d = Dict::new();
    if let Some(a) = a {
        dict_put(&mut d, "family", family_name(a.ip()));
        dict_put(&mut d, "address", a.ip().to_string());
        dict_put(&mut d, "port", u64::from(a.port()));
    }
    d
}

fn family_name(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
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
