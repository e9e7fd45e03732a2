//! `GET /metrics`: the relay's figures in the Prometheus text format, written with
//! prometheus-client. Two sets side by side from the same data: ours (`rtprelay_*`) and
//! rtpengine's names and labels (`rtpengine_*`, see [`rtpengine`]), so dashboards built for
//! rtpengine keep working. The caller takes the snapshot; this module only formats.

pub mod ng;
pub mod quality;
pub mod rtpengine;
pub mod sheet;
pub mod store;

use std::collections::BTreeMap;

use crate::session::Snapshot;
use sheet::{label, Labels, Sheet};

fn one(v: u64) -> Vec<(Labels, u64)> {
    vec![(Vec::new(), v)]
}

/// Our figures from the snapshot and the NG command counters.
pub fn render(s: &Snapshot, commands: &BTreeMap<&'static str, u64>, ng_errors: u64) -> String {
    let mut m = Sheet::default();
    m.gauge("rtprelay_calls", "Calls in the call table.", one(s.calls))
        .gauge(
            "rtprelay_media_streams",
            "Media streams with allocated ports.",
            one(s.streams),
        )
        .gauge(
            "rtprelay_uptime_seconds",
            "Seconds since the first control message.",
            one(s.uptime_secs),
        )
        .counter(
            "rtprelay_calls_created_total",
            "Calls created.",
            one(s.totals.calls_created),
        )
        .counter(
            "rtprelay_calls_deleted_total",
            "Calls deleted over NG.",
            one(s.totals.calls_deleted),
        )
        .counter(
            "rtprelay_calls_timed_out_total",
            "Calls ended by a timeout.",
            one(s.totals.calls_timed_out),
        )
        .counter(
            "rtprelay_calls_rejected_total",
            "Offers refused by --max-sessions.",
            one(s.totals.rejected_session_limit),
        )
        .counter(
            "rtprelay_packets_total",
            "Packets received and relayed.",
            vec![
                (label("kind", "rtp"), s.rtp.packets),
                (label("kind", "rtcp"), s.rtcp.packets),
            ],
        )
        .counter(
            "rtprelay_bytes_total",
            "Bytes received and relayed.",
            vec![
                (label("kind", "rtp"), s.rtp.bytes),
                (label("kind", "rtcp"), s.rtcp.bytes),
            ],
        )
        .counter(
            "rtprelay_packet_errors_total",
            "Packets dropped: malformed, or from a source strict source refused.",
            one(s.rtp.errors + s.rtcp.errors),
        );
    let refused = crate::guard::Refusal::ALL
        .iter()
        .map(|r| {
            let n = s
                .totals
                .targets_refused
                .get(r.index())
                .copied()
                .unwrap_or(0);
            (label("reason", r.label()), n)
        })
        .collect();
    m.counter(
        "rtprelay_media_target_refused_total",
        "SDP endpoints refused as media targets (the peer is learnt from its packets instead), by reason.",
        refused,
    )
    .gauge(
        "rtprelay_dataplane_info",
        "The data plane in use.",
        vec![(label("plane", s.plane), 1)],
    )
    .counter(
        "rtprelay_ng_commands_total",
        "NG commands handled, by command.",
        commands
            .iter()
            .map(|(c, n)| (label("command", *c), *n))
            .collect(),
    )
    .counter(
        "rtprelay_ng_errors_total",
        "NG messages answered with an error.",
        one(ng_errors),
    );
    let q = &s.totals.quality;
    m.histogram(
        "rtprelay_stream_jitter_seconds",
        "Interarrival jitter the peer last reported in RTCP, per stream of ended calls (timestamp units read at 8 kHz).",
        &q.jitter,
    )
    .histogram(
        "rtprelay_stream_fraction_lost",
        "Fraction lost the peer last reported in RTCP, per stream of ended calls (0..1).",
        &q.loss,
    );
    m.render()
}

/// The data plane's own counters: what the workers' userspace path accepted and, with the
/// XDP plane, what the kernel program forwarded, passed up and dropped. Comparing the two shows
/// whether calls are really offloaded.
pub fn render_plane(c: &crate::worker::PlaneCounters) -> String {
    let mut m = Sheet::default();
    m.counter(
        "rtprelay_userspace_packets_total",
        "Packets accepted on the workers' userspace path.",
        one(c.userspace_packets),
    )
    .counter(
        "rtprelay_worker_panics_total",
        "Panics caught in the forwarding workers (each worker is restarted with its flows).",
        one(c.worker_panics),
    )
    .counter(
        "rtprelay_srtp_auth_failures_total",
        "SRTP/SRTCP packets dropped because they did not authenticate under the peer's key (wrong key, forged, damaged, unknown MKI).",
        one(c.srtp_auth_failures),
    )
    .counter(
        "rtprelay_srtp_replays_total",
        "SRTP/SRTCP packets dropped as replayed or older than the replay window.",
        one(c.srtp_replays),
    )
    .counter(
        "rtprelay_dtls_handshakes_total",
        "DTLS-SRTP handshakes completed with the peer's fingerprint checked (keys in place).",
        one(c.dtls_handshakes),
    )
    .counter(
        "rtprelay_dtls_handshake_failures_total",
        "DTLS-SRTP handshakes that failed for good (timeout, alert, fingerprint mismatch, no SRTP profile).",
        one(c.dtls_failures),
    )
    .counter(
        "rtprelay_stun_checks_answered_total",
        "ICE connectivity checks (STUN Binding requests) the relay answered.",
        one(c.stun_answered),
    )
    .counter(
        "rtprelay_stun_checks_refused_total",
        "STUN messages refused on media ports with ICE: bad integrity or fingerprint, unknown username, malformed.",
        one(c.stun_refused),
    )
    .counter(
        "rtprelay_media_source_refused_total",
        "Packets dropped because their source is never a peer: one of the relay's own ports (a loop), its host, a denied network.",
        one(c.refused_sources),
    );
    if let Some(a) = c.afxdp {
        let k = a.kernel;
        for (name, help, v) in [
            ("rtprelay_afxdp_transmitted_packets_total", "Packets the AF_XDP path rewrote and sent back out of its sockets.", a.transmitted),
            ("rtprelay_afxdp_handed_off_packets_total", "AF_XDP frames one worker handed to another: for the other's call, or to send from its socket.", a.handed_off),
            ("rtprelay_afxdp_handoff_dropped_packets_total", "AF_XDP frames dropped because the receiving worker's hand-off queue was full (frames for its calls, and frames to send from its socket).", a.handoff_dropped),
            ("rtprelay_afxdp_unmatched_dropped_packets_total", "AF_XDP frames dropped because the worker that took them had no flow on their port.", a.unmatched),
            ("rtprelay_afxdp_tx_dropped_packets_total", "AF_XDP frames forwarded but not sent (no free frame, no socket on the device); also counted as their stream's drops.", a.tx_dropped),
            ("rtprelay_afxdp_rx_dropped_total", "Frames the kernel dropped before an AF_XDP socket got them (no room, rx ring full included).", k.rx_dropped),
            ("rtprelay_afxdp_rx_ring_full_total", "Frames the kernel dropped because an AF_XDP socket's rx ring was full.", k.rx_ring_full),
            ("rtprelay_afxdp_rx_fill_ring_empty_descs_total", "Times the kernel found an AF_XDP socket's fill ring empty.", k.rx_fill_ring_empty_descs),
            ("rtprelay_afxdp_tx_invalid_descs_total", "Invalid descriptors on AF_XDP tx rings.", k.tx_invalid_descs),
        ] {
            m.counter(name, help, one(v));
        }
    }
    if let Some((x, installed)) = c.xdp {
        for (name, help, v) in [
            (
                "rtprelay_xdp_forwarded_packets_total",
                "Packets the XDP program rewrote and sent on.",
                x.forwarded,
            ),
            (
                "rtprelay_xdp_passed_packets_total",
                "Packets the XDP program handed to the socket path.",
                x.passed,
            ),
            (
                "rtprelay_xdp_dropped_packets_total",
                "Packets the XDP program dropped (strict source, block media).",
                x.dropped,
            ),
            (
                "rtprelay_xdp_redirected_packets_total",
                "Packets the XDP program handed to AF_XDP sockets (afxdp plane).",
                x.redirected,
            ),
            (
                "rtprelay_xdp_aborted_packets_total",
                "Packets the XDP program could not send (redirect failures).",
                x.aborted,
            ),
        ] {
            m.counter(name, help, one(v));
        }
        m.gauge(
            "rtprelay_xdp_offloaded_flows",
            "Flows forwarded in the kernel now.",
            one(installed as u64),
        );
    }
    m.render()
}

/// The spool writer's drops, with `--recording-dir`.
pub fn render_recording(dropped: u64) -> String {
    let mut m = Sheet::default();
    m.counter(
        "rtprelay_recording_dropped_total",
        "Recording packets dropped because the spool writer fell behind.",
        one(dropped),
    );
    m.render()
}

/// 1 while the relay drains (refuses new calls, waits for the others to end), else 0.
pub fn render_draining(draining: bool) -> String {
    let mut m = Sheet::default();
    m.gauge(
        "rtprelay_draining",
        "1 while the relay drains: ping fails and new calls are refused.",
        one(u64::from(draining)),
    );
    m.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::reports::Counts;

    #[test]
    fn renders_counters_with_labels() {
        let s = Snapshot {
            calls: 2,
            streams: 8,
            uptime_secs: 5,
            totals: crate::session::engine::Totals {
                targets_refused: [0, 0, 0, 4, 0, 0, 0, 0, 0],
                ..Default::default()
            },
            rtp: Counts {
                packets: 10,
                bytes: 1720,
                errors: 1,
            },
            rtcp: Counts {
                packets: 2,
                bytes: 100,
                errors: 0,
            },
            plane: "mmsg",
        };
        let mut cmds = BTreeMap::new();
        cmds.insert("offer", 3);
        let text = render(&s, &cmds, 4);
        assert!(text.contains("rtprelay_calls 2\n"), "{text}");
        assert!(text.contains("rtprelay_packets_total{kind=\"rtp\"} 10\n"));
        assert!(text.contains("rtprelay_packet_errors_total 1\n"));
        assert!(text.contains("rtprelay_ng_commands_total{command=\"offer\"} 3\n"));
        assert!(text.contains("rtprelay_dataplane_info{plane=\"mmsg\"} 1\n"));
        assert!(text.contains("# TYPE rtprelay_bytes_total counter\n"));
        assert!(
            text.contains("rtprelay_media_target_refused_total{reason=\"loopback\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("rtprelay_media_target_refused_total{reason=\"own_control_socket\"} 0\n")
        );
    }

    #[test]
    fn plane_counters_only_show_xdp_when_it_runs() {
        let user = crate::worker::PlaneCounters {
            userspace_packets: 7,
            refused_sources: 2,
            worker_panics: 0,
            srtp_auth_failures: 3,
            srtp_replays: 1,
            dtls_handshakes: 5,
            dtls_failures: 2,
            stun_answered: 11,
            stun_refused: 4,
            xdp: None,
            afxdp: None,
        };
        let t = render_plane(&user);
        assert!(t.contains("rtprelay_userspace_packets_total 7\n"), "{t}");
        assert!(t.contains("rtprelay_media_source_refused_total 2\n"), "{t}");
        assert!(t.contains("rtprelay_worker_panics_total 0\n"), "{t}");
        assert!(t.contains("rtprelay_srtp_auth_failures_total 3\n"), "{t}");
        assert!(t.contains("rtprelay_srtp_replays_total 1\n"), "{t}");
        assert!(t.contains("rtprelay_dtls_handshakes_total 5\n"), "{t}");
        assert!(
            t.contains("rtprelay_dtls_handshake_failures_total 2\n"),
            "{t}"
        );
        assert!(
            t.contains("rtprelay_stun_checks_answered_total 11\n"),
            "{t}"
        );
        assert!(t.contains("rtprelay_stun_checks_refused_total 4\n"), "{t}");
        assert!(!t.contains("xdp"), "{t}");
        let stats = crate::sys::xdp::XdpStats {
            forwarded: 100,
            passed: 3,
            dropped: 2,
            aborted: 0,
            redirected: 0,
        };
        let t = render_plane(&crate::worker::PlaneCounters {
            userspace_packets: 7,
            refused_sources: 0,
            worker_panics: 1,
            srtp_auth_failures: 0,
            srtp_replays: 0,
            dtls_handshakes: 0,
            dtls_failures: 0,
            stun_answered: 0,
            stun_refused: 0,
            xdp: Some((stats, 4)),
            afxdp: None,
        });
        assert!(
            t.contains("rtprelay_xdp_forwarded_packets_total 100\n"),
            "{t}"
        );
        assert!(t.contains("rtprelay_xdp_dropped_packets_total 2\n"), "{t}");
        assert!(t.contains("rtprelay_xdp_offloaded_flows 4\n"), "{t}");
        assert!(!t.contains("rtprelay_afxdp_"), "{t}");
        let t = render_plane(&crate::worker::PlaneCounters {
            userspace_packets: 7,
            refused_sources: 0,
            worker_panics: 0,
            srtp_auth_failures: 0,
            srtp_replays: 0,
            dtls_handshakes: 0,
            dtls_failures: 0,
            stun_answered: 0,
            stun_refused: 0,
            xdp: Some((stats, 4)),
            afxdp: Some(crate::worker::AfxdpCounters {
                transmitted: 50,
                handed_off: 20,
                handoff_dropped: 1,
                unmatched: 3,
                tx_dropped: 4,
                kernel: crate::sys::xsk::XskStats {
                    rx_dropped: 5,
                    rx_ring_full: 6,
                    rx_fill_ring_empty_descs: 7,
                    tx_invalid_descs: 8,
                },
            }),
        });
        assert!(
            t.contains("rtprelay_afxdp_transmitted_packets_total 50\n"),
            "{t}"
        );
        assert!(
            t.contains("rtprelay_afxdp_handed_off_packets_total 20\n"),
            "{t}"
        );
        assert!(
            t.contains("rtprelay_afxdp_handoff_dropped_packets_total 1\n"),
            "{t}"
        );
        assert!(
            t.contains("rtprelay_afxdp_unmatched_dropped_packets_total 3\n"),
            "{t}"
        );
        assert!(
            t.contains("rtprelay_afxdp_tx_dropped_packets_total 4\n"),
            "{t}"
        );
        for (name, v) in [
            ("rx_dropped", 5),
            ("rx_ring_full", 6),
            ("rx_fill_ring_empty_descs", 7),
            ("tx_invalid_descs", 8),
        ] {
            let line = format!("rtprelay_afxdp_{name}_total {v}\n");
            assert!(t.contains(&line), "{t}");
        }
    }
}
