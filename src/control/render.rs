//! Typed session replies → rtpengine's reply dictionaries (bencode, and JSON through the same
//! [`Value`]). Key names, value types and nesting are what rtpengine sends, because Kamailio's
//! `rtpengine_query_v()` and monitoring tools read them.

use std::net::{IpAddr, SocketAddr};

use crate::control::bencode::{Dict, DictBuilder, Value};
use crate::session::reply::{CallReport, MediaReport, Reply, StreamReport, TagReport};
use crate::session::reports::{Counts, Snapshot};

/// The reply dictionary of `reply`.
pub fn render(reply: &Reply) -> Value {
    let d = DictBuilder::new().put("result", reply.result());
    match reply {
        // Operator replies never come from NG; NG sees them as a plain `ok`.
        Reply::Pong
        | Reply::Ok
        | Reply::Drain(_)
        | Reply::Sessions(_)
        | Reply::Terminated(_)
        | Reply::Setting(_) => d,
        Reply::Warning(text) => d.put("warning", text.as_str()),
        Reply::Sdp(sdp) => d.put("sdp", sdp.as_str()),
        Reply::Call(report) => call(d, report),
        Reply::List(ids) => d.put(
            "calls",
            ids.iter()
                .map(|id| Value::from(id.as_str()))
                .collect::<Vec<_>>(),
        ),
        Reply::Statistics(s) => d.put("statistics", statistics(s)),
        Reply::Error(reason) => d.put("error-reason", reason.as_str()),
        Reply::LoadLimit(message) => d.put("message", message.as_str()),
    }
    .build()
}

/// `{result: error, error-reason: reason}`, for requests that never reach the session layer.
pub fn error_reply(reason: &str) -> Value {
    render(&Reply::Error(reason.to_owned()))
}

fn call(d: DictBuilder, r: &CallReport) -> DictBuilder {
    let mut tags = Dict::new();
    for t in &r.tags {
        tags.insert(t.tag.clone().into_bytes(), tag(t));
    }
    let totals = DictBuilder::new()
        .put("RTP", counts(&r.totals.rtp))
        .put("RTCP", counts(&r.totals.rtcp));
    d.put("created", r.created)
        .put("created_us", r.created_us)
        .put("last signal", r.last_signal)
        .put("SSRC", Dict::new())
        .put("tags", tags)
        .put("totals", totals)
}

fn tag(t: &TagReport) -> Value {
    DictBuilder::new()
        .put("tag", t.tag.as_str())
        .put_opt("label", t.label.as_deref())
        .put("created", t.created)
        .put_opt("in dialogue with", t.in_dialogue_with.as_deref())
        .put("medias", t.medias.iter().map(media).collect::<Vec<_>>())
        .build()
}

fn media(m: &MediaReport) -> Value {
    DictBuilder::new()
        .put("index", m.index)
        .put("type", m.kind.as_str())
        .put("protocol", m.protocol.as_str())
        .put("streams", m.streams.iter().map(stream).collect::<Vec<_>>())
        .put("flags", words(&m.flags))
        .build()
}

fn stream(s: &StreamReport) -> Value {
    let stats = DictBuilder::new()
        .put("packets", s.packets)
        .put("bytes", s.bytes)
        .put("errors", s.errors);
    DictBuilder::new()
        .put("local port", s.local.port())
        .put("local address", s.local.ip().to_string())
        .put("family", family_name(s.local.ip()))
        .put("endpoint", endpoint(s.endpoint))
        .put("advertised endpoint", endpoint(s.advertised))
        .put("last packet", s.last_packet)
        .put("flags", words(&s.flags))
        .put_opt("crypto suite", s.crypto_suite)
        .put_opt("ICE state", s.ice_state)
        .put_opt("DTLS state", s.dtls_state)
        .put("stats", stats)
        .build()
}

fn endpoint(a: Option<SocketAddr>) -> Value {
    match a {
        Some(a) => DictBuilder::new()
            .put("family", family_name(a.ip()))
            .put("address", a.ip().to_string())
            .put("port", a.port())
            .build(),
        None => Value::Dict(Dict::new()),
    }
}

fn counts(c: &Counts) -> Value {
    DictBuilder::new()
        .put("packets", c.packets)
        .put("bytes", c.bytes)
        .put("errors", c.errors)
        .build()
}

fn words(w: &[&str]) -> Vec<Value> {
    w.iter().map(|w| Value::from(*w)).collect()
}

fn family_name(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn statistics(s: &Snapshot) -> Value {
    let current = DictBuilder::new()
        .put("sessionsown", s.calls)
        .put("sessionsforeign", 0u64)
        .put("sessionstotal", s.calls)
        .put("transcodedmedia", 0u64)
        .put("mediastreams", s.streams);
    let total = DictBuilder::new()
        .put("uptime", s.uptime_secs)
        .put("managedsessions", s.totals.calls_created)
        .put("deletedsessions", s.totals.calls_deleted)
        .put("timeoutsessions", s.totals.calls_timed_out)
        .put("rejectedsessions", s.totals.rejected_session_limit)
        .put("packetsrelayed", s.rtp.packets + s.rtcp.packets)
        .put("bytesrelayed", s.rtp.bytes + s.rtcp.bytes)
        .put("errors", s.rtp.errors + s.rtcp.errors);
    DictBuilder::new()
        .put("currentstatistics", current)
        .put("totalstatistics", total)
        .put("dataplane", s.plane)
        .build()
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
