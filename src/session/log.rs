//! The tracing span every log line about a call runs in: its call-id (and from-tag when the
//! command names one), so text and JSON logs tie each line to its call.

/// The span for work on `call_id` (on behalf of `from_tag`, if known).
pub fn call_span(call_id: &str, from_tag: Option<&str>) -> tracing::Span {
    match from_tag {
        Some(tag) => {
            tracing::info_span!("call", call_id = %Clean(call_id), from_tag = %Clean(tag))
        }
        None => tracing::info_span!("call", call_id = %Clean(call_id)),
    }
}

/// A peer-given string as a log field: control characters escaped, so that a call-id with a
/// line break cannot forge log lines in text logs.
pub struct Clean<'a>(pub &'a str);

impl std::fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        for c in self.0.chars() {
            if c.is_control() {
                for e in c.escape_default() {
                    f.write_char(e)?;
                }
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

use std::sync::atomic::Ordering::Relaxed;

use crate::metrics::quality::{CallEnd, StreamQuality};
use crate::session::call::Call;
use crate::time::Now;

/// The end-of-call record, at info level: how long the call lasted, the RTP packets, bytes and
/// errors of the whole call and, per participant, what it sent through the relay (RTP packets
/// and bytes, errors, packets not forwarded, RTCP packets) and, when its peer sent RTCP
/// reception reports, what they said: loss, jitter and a MOS estimate
/// ([`crate::metrics::quality`]). The call's loss and MOS are the worst of its streams'.
/// Returns what the call adds to the ended calls' figures ([`CallEnd`]).
pub fn end_of_call(now: Now, call: &Call) -> CallEnd {
    let duration_ms = now.mono.since(call.created.mono).as_millis();
    let mut sides = Vec::with_capacity(call.legs.len());
    let mut total = (0u64, 0u64, 0u64);
    let mut qualities = Vec::new();
    for leg in &call.legs {
        let (mut packets, mut bytes, mut errors, mut dropped, mut rtcp) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut side_quality: Option<StreamQuality> = None;
        for m in &leg.medias {
            let (r, c) = (&m.rtp.counters, &m.rtcp.counters);
            packets += r.packets.load(Relaxed);
            bytes += r.bytes.load(Relaxed);
            errors += r.errors.load(Relaxed) + c.errors.load(Relaxed);
            dropped += r.dropped.load(Relaxed) + c.dropped.load(Relaxed);
            // RTCP multiplexed on the RTP port, and on its own port.
            rtcp += r.rtcp_packets.load(Relaxed) + c.rtcp_packets.load(Relaxed);
            // The peer's reports arrive on the RTCP port, or the RTP port when muxed: the
            // latest of the two.
            let report = match (r.rtcp_report(), c.rtcp_report()) {
                (Some(a), Some(b)) => Some(if a.reports >= b.reports { a } else { b }),
                (a, b) => a.or(b),
            };
            if let Some(q) = report.map(|r| StreamQuality::from_report(&r)) {
                qualities.push(q);
                side_quality = Some(match side_quality {
                    Some(w) if w.mos <= q.mos => w,
                    _ => q,
                });
            }
        }
        total = (total.0 + packets, total.1 + bytes, total.2 + errors);
        let quality = side_quality.map_or(String::new(), |q| {
            format!(
                ", reports loss {:.1}% (lost {}), jitter {:.1} ms, MOS {:.2}",
                q.loss_ratio * 100.0,
                q.cumulative_lost,
                q.jitter_secs * 1000.0,
                q.mos
            )
        });
        sides.push(format!(
            "{}: {packets} packets, {bytes} bytes, {errors} errors, {dropped} not forwarded, {rtcp} rtcp{quality}",
            Clean(leg.tag.as_deref().unwrap_or("-"))
        ));
    }
    let worst = qualities
        .iter()
        .copied()
        .min_by(|a, b| a.mos.total_cmp(&b.mos));
    // The callers (NG command, timer, operator) run this in the call's span.
    match worst {
        Some(w) => tracing::info!(
            duration_secs = duration_ms as f64 / 1000.0,
            participants = call.legs.len(),
            packets = total.0,
            bytes = total.1,
            errors = total.2,
            loss_percent = (w.loss_ratio * 1000.0).round() / 10.0,
            jitter_ms = (w.jitter_secs * 10_000.0).round() / 10.0,
            mos = (w.mos * 100.0).round() / 100.0,
            sent = %sides.join("; "),
            "call ended"
        ),
        None => tracing::info!(
            duration_secs = duration_ms as f64 / 1000.0,
            participants = call.legs.len(),
            packets = total.0,
            bytes = total.1,
            errors = total.2,
            sent = %sides.join("; "),
            "call ended"
        ),
    }
    let (one_way_streams, silent) = stream_activity(call);
    CallEnd {
        qualities,
        one_way_streams,
        zero_packet_streams: silent / 2,
    }
}

/// RTP streams that received packets while the stream they feed (the same medium of the peer
/// leg) received none, and streams where neither did, as rtpengine counts them at call end.
fn stream_activity(call: &Call) -> (u64, u64) {
    let (mut one_way, mut silent) = (0u64, 0u64);
    for leg in &call.legs {
        let Some(peer) = leg.peer.and_then(|p| call.legs.get(p)) else {
            continue;
        };
        for (m, sink) in leg.medias.iter().zip(&peer.medias) {
            if m.local.is_none() || !m.is_rtp || sink.local.is_none() {
                continue;
            }
            if sink.rtp.counters.packets.load(Relaxed) == 0 {
                if m.rtp.counters.packets.load(Relaxed) != 0 {
                    one_way += 1;
                } else {
                    silent += 1;
                }
            }
        }
    }
    (one_way, silent)
}

#[cfg(test)]
mod tests {
    use super::Clean;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(Clean("a\nb\r\u{1b}c").to_string(), "a\\nb\\r\\u{1b}c");
        assert_eq!(Clean("plain@host").to_string(), "plain@host");
    }
}
