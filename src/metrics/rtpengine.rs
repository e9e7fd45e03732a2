//! rtpengine's metric families (as rtpengine 10.5 exposes them at `/metrics`), computed from our
//! snapshot so that Grafana dashboards written for rtpengine read the same figures.
//!
//! Mapping: `sessions{type="own"}` is the call table (`foreign` is always 0: no redis);
//! `sessions_total` counts calls that ended; `closed_sessions_total{reason}`: `terminated` for
//! NG deletes, `force_terminated` for operator `terminate`, `timeout` for timed-out calls,
//! `rejected` for offers refused by `--max-sessions` (the `silent_timeout`, `final_timeout` and
//! `offer_timeout` reasons are listed as 0). Traffic forwarded by the XDP program is
//! `type="kernel"` (its bytes estimated from the mean packet size, as the program counts packets
//! only); the rest is `type="userspace"`. `mediastreams{type="kernel"}` is the number of flows
//! offloaded now (at most the active streams); like rtpengine, a stream counts while it received
//! RTP in the last two seconds ([`TableFigures`]). `ports*{name,address}` count single ports
//! of the media range per interface, two per pair held. `mos_*` are sums of the estimate of
//! [`crate::metrics::quality`] over ended streams with RTCP reports.

use crate::metrics::sheet::{label, Labels, Sheet};
use crate::session::{Engine, Snapshot};
use crate::time::Millis;
use crate::worker::PlaneCounters;

/// How recent a stream's last packet must be for rtpengine to count it in `mediastreams`.
const ACTIVE_MS: u64 = 2000;

/// What rtpengine's families need from the call table beyond the snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableFigures {
    /// RTP streams (one per participant and medium) that received a packet in the last two
    /// seconds: what rtpengine counts in `mediastreams`.
    pub active_streams: u64,
    /// Per interface: its name, local address, ports in the range and ports held by calls.
    pub ports: Vec<(String, std::net::IpAddr, u64, u64)>,
}

/// Reads [`TableFigures`] from the call table at `now`.
pub fn table_figures(engine: &Engine, now: Millis) -> TableFigures {
    let mut active_streams = 0;
    for call in engine.calls.values() {
        for leg in &call.legs {
            for m in &leg.medias {
                let last = m
                    .rtp
                    .counters
                    .last_packet_ms
                    .load(std::sync::atomic::Ordering::Relaxed);
                if m.local.is_some() && last != 0 && now.0.saturating_sub(last) < ACTIVE_MS {
                    active_streams += 1;
                }
            }
        }
    }
    let cfg = &engine.cfg;
    let total = u64::from(cfg.port_max.saturating_sub(cfg.port_min)) + 1;
    let ports = cfg
        .interfaces
        .iter()
        .map(|i| {
            // Pairs: an RTP port and its RTCP port.
            let used = engine.ports.in_use(i.local) as u64 * 2;
            (i.name.clone(), i.local, total, used.min(total))
        })
        .collect();
    TableFigures {
        active_streams,
        ports,
    }
}

fn one<T>(v: T) -> Vec<(Labels, T)> {
    vec![(Vec::new(), v)]
}

/// rtpengine's families from the snapshot, the data plane's counters and the call table's
/// [`TableFigures`].
pub fn render(s: &Snapshot, plane: &PlaneCounters, table: &TableFigures) -> String {
    let active = table.active_streams;
    let t = &s.totals;
    let mut m = Sheet::default();
    m.gauge(
        "rtpengine_sessions",
        "Current sessions (own: in this relay's call table; foreign: always 0).",
        vec![
            (label("type", "own"), s.calls),
            (label("type", "foreign"), 0),
        ],
    )
    .gauge(
        "rtpengine_transcoded_media",
        "Transcoded media (always 0: the relay does not transcode).",
        one(0),
    );
    let (kernel_flows, kernel_packets) = plane
        .xdp
        .map_or((0, 0), |(x, installed)| (installed as u64, x.forwarded));
    let kernel_streams = kernel_flows.min(active);
    m.gauge(
        "rtpengine_mediastreams",
        "Media streams with RTP in the last two seconds, by where they are forwarded.",
        vec![
            (label("type", "userspace"), active - kernel_streams),
            (label("type", "kernel"), kernel_streams),
            (label("type", "mixed"), 0),
        ],
    )
    .gauge(
        "rtpengine_uptime_seconds",
        "Seconds since the relay took its first control message.",
        one(s.uptime_secs),
    )
    .counter(
        "rtpengine_sessions_total",
        "Sessions that ended.",
        one(t.calls_ended),
    );
    let closed = [
        ("rejected", t.rejected_session_limit),
        ("timeout", t.calls_timed_out),
        ("silent_timeout", 0),
        ("final_timeout", 0),
        ("offer_timeout", 0),
        ("terminated", t.calls_deleted),
        ("force_terminated", t.calls_terminated),
    ];
    m.counter(
        "rtpengine_closed_sessions_total",
        "Sessions closed or refused, by reason.",
        closed
            .iter()
            .map(|(r, n)| (label("reason", *r), *n))
            .collect(),
    );
    let packets = s.rtp.packets + s.rtcp.packets;
    let bytes = s.rtp.bytes + s.rtcp.bytes;
    let errors = s.rtp.errors + s.rtcp.errors;
    // The stream counters include offloaded traffic (synced from the kernel's per-flow
    // figures); the program's own counter can run ahead of that sync.
    let kernel_packets = kernel_packets.min(packets);
    let kernel_bytes = if packets == 0 {
        0
    } else {
        (bytes as u128 * kernel_packets as u128 / packets as u128) as u64
    };
    let kernel_errors = plane.xdp.map_or(0, |(x, _)| x.aborted);
    let split = |user: u64, kernel: u64| {
        vec![
            (label("type", "userspace"), user),
            (label("type", "kernel"), kernel),
        ]
    };
    m.counter(
        "rtpengine_packets_total",
        "Relayed packets, by path (kernel: forwarded by the XDP program).",
        split(packets - kernel_packets, kernel_packets),
    )
    .counter(
        "rtpengine_bytes_total",
        "Relayed bytes, by path (kernel: estimated from the XDP program's packets).",
        split(bytes - kernel_bytes, kernel_bytes),
    )
    .counter(
        "rtpengine_packet_errors_total",
        "Packet errors, by path (userspace: malformed or refused; kernel: sends the XDP program could not make).",
        split(errors, kernel_errors),
    );
    m.counter(
        "rtpengine_zero_packet_streams_total",
        "Pairs of RTP streams of ended calls where neither side received a packet.",
        one(t.quality.zero_packet_streams),
    )
    .counter(
        "rtpengine_one_way_sessions_total",
        "RTP streams of ended calls that received packets while their peer's received none.",
        one(t.quality.one_way_streams),
    );
    let ended = t.calls_ended as f64;
    m.gauge_f64(
        "rtpengine_call_duration_avg",
        "Mean duration of ended calls, seconds.",
        one(if ended > 0.0 {
            t.calls_duration_secs / ended
        } else {
            0.0
        }),
    )
    .counter_f64(
        "rtpengine_call_duration_total",
        "Sum of the durations of ended calls, seconds.",
        one(t.calls_duration_secs),
    )
    .counter_f64(
        "rtpengine_call_duration2_total",
        "Sum of the squared durations of ended calls, seconds squared.",
        one(t.calls_duration_squared),
    );
    let q = &t.quality;
    m.counter_f64(
        "rtpengine_mos_total",
        "Sum of the MOS estimates of ended streams with RTCP reports.",
        one(q.mos_sum),
    )
    .counter_f64(
        "rtpengine_mos2_total",
        "Sum of the squared MOS estimates of ended streams with RTCP reports.",
        one(q.mos_squared_sum),
    )
    .counter(
        "rtpengine_mos_samples_total",
        "Ended streams with RTCP reports (MOS samples).",
        one(q.mos_samples),
    );
    let by_interface = |f: fn(u64, u64) -> u64| {
        table
            .ports
            .iter()
            .map(|(name, address, total, used)| {
                let labels = vec![("name", name.clone()), ("address", address.to_string())];
                (labels, f(*total, *used))
            })
            .collect::<Vec<_>>()
    };
    m.gauge(
        "rtpengine_ports_used",
        "Media ports held by calls, per interface.",
        by_interface(|_, used| used),
    )
    .gauge(
        "rtpengine_ports_free",
        "Media ports not held by calls, per interface.",
        by_interface(|total, used| total - used),
    )
    .gauge(
        "rtpengine_ports",
        "Media ports in the range, per interface.",
        by_interface(|total, _| total),
    );
    m.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::reports::Counts;

    fn snapshot() -> Snapshot {
        Snapshot {
            calls: 3,
            streams: 4,
            uptime_secs: 9,
            totals: crate::session::engine::Totals {
                calls_deleted: 2,
                calls_timed_out: 1,
                calls_terminated: 1,
                rejected_session_limit: 5,
                calls_ended: 4,
                calls_duration_secs: 20.0,
                ..Default::default()
            },
            rtp: Counts {
                packets: 100,
                bytes: 17200,
                errors: 2,
            },
            rtcp: Counts {
                packets: 0,
                bytes: 0,
                errors: 0,
            },
            plane: "xdp",
        }
    }

    #[test]
    fn rtpengine_names_labels_and_values() {
        let plane = PlaneCounters {
            userspace_packets: 40,
            refused_sources: 0,
            worker_panics: 0,
            srtp_auth_failures: 0,
            srtp_replays: 0,
            dtls_handshakes: 0,
            dtls_failures: 0,
            stun_answered: 0,
            stun_refused: 0,
            xdp: Some((
                crate::sys::xdp::XdpStats {
                    forwarded: 60,
                    passed: 40,
                    dropped: 0,
                    aborted: 1,
                    redirected: 0,
                },
                2,
            )),
            afxdp: None,
        };
        let table = TableFigures {
            active_streams: 4,
            ports: vec![("default".into(), [10, 0, 0, 1].into(), 100, 8)],
        };
        let t = render(&snapshot(), &plane, &table);
        for line in [
            "rtpengine_sessions{type=\"own\"} 3\n",
            "rtpengine_sessions{type=\"foreign\"} 0\n",
            "rtpengine_mediastreams{type=\"userspace\"} 2\n",
            "rtpengine_mediastreams{type=\"kernel\"} 2\n",
            "rtpengine_sessions_total 4\n",
            "rtpengine_closed_sessions_total{reason=\"terminated\"} 2\n",
            "rtpengine_closed_sessions_total{reason=\"force_terminated\"} 1\n",
            "rtpengine_closed_sessions_total{reason=\"timeout\"} 1\n",
            "rtpengine_closed_sessions_total{reason=\"rejected\"} 5\n",
            "rtpengine_packets_total{type=\"userspace\"} 40\n",
            "rtpengine_packets_total{type=\"kernel\"} 60\n",
            "rtpengine_bytes_total{type=\"kernel\"} 10320\n",
            "rtpengine_bytes_total{type=\"userspace\"} 6880\n",
            "rtpengine_packet_errors_total{type=\"userspace\"} 2\n",
            "rtpengine_call_duration_avg 5.0\n",
            "# TYPE rtpengine_packets_total counter\n",
            "# TYPE rtpengine_sessions gauge\n",
            "rtpengine_mos_samples_total 0\n",
            "rtpengine_ports_used{name=\"default\",address=\"10.0.0.1\"} 8\n",
            "rtpengine_ports_free{name=\"default\",address=\"10.0.0.1\"} 92\n",
            "rtpengine_ports{name=\"default\",address=\"10.0.0.1\"} 100\n",
        ] {
            assert!(t.contains(line), "{line} missing in\n{t}");
        }
    }
}
