//! Prometheus text exposition of the relay's figures, served at `GET /metrics` on the HTTP
//! listener. Pure formatting: the caller takes the snapshot.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::session::Snapshot;

/// Renders the snapshot and the NG command counters in Prometheus' text format.
pub fn render(s: &Snapshot, commands: &BTreeMap<&'static str, u64>, ng_errors: u64) -> String {
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP rtprelay_{name} {help}");
        let _ = writeln!(out, "# TYPE rtprelay_{name} {kind}");
        for (labels, v) in samples {
            if labels.is_empty() {
                let _ = writeln!(out, "rtprelay_{name} {v}");
            } else {
                let _ = writeln!(out, "rtprelay_{name}{{{labels}}} {v}");
            }
        }
    };
    metric(
        "calls",
        "gauge",
        "Calls in the call table.",
        &[("", s.calls)],
    );
    metric(
        "media_streams",
        "gauge",
        "Media streams with allocated ports.",
        &[("", s.streams)],
    );
    metric(
        "uptime_seconds",
        "counter",
        "Seconds since the first control message.",
        &[("", s.uptime_secs)],
    );
    metric(
        "calls_created_total",
        "counter",
        "Calls created.",
        &[("", s.totals.calls_created)],
    );
    metric(
        "calls_deleted_total",
        "counter",
        "Calls deleted over NG.",
        &[("", s.totals.calls_deleted)],
    );
    metric(
        "calls_timed_out_total",
        "counter",
        "Calls ended by a timeout.",
        &[("", s.totals.calls_timed_out)],
    );
    metric(
        "calls_rejected_total",
        "counter",
        "Offers refused by --max-sessions.",
        &[("", s.totals.rejected_session_limit)],
    );
    metric(
        "packets_total",
        "counter",
        "Packets received and relayed.",
        &[
            ("kind=\"rtp\"", s.rtp.packets),
            ("kind=\"rtcp\"", s.rtcp.packets),
        ],
    );
    metric(
        "bytes_total",
        "counter",
        "Bytes received and relayed.",
        &[
            ("kind=\"rtp\"", s.rtp.bytes),
            ("kind=\"rtcp\"", s.rtcp.bytes),
        ],
    );
    metric(
        "packet_errors_total",
        "counter",
        "Packets dropped: malformed, or from a source strict source refused.",
        &[("", s.rtp.errors + s.rtcp.errors)],
    );
    let reasons: Vec<(String, u64)> = crate::guard::Refusal::ALL
        .iter()
        .map(|r| {
            let n = s
                .totals
                .targets_refused
                .get(r.index())
                .copied()
                .unwrap_or(0);
            (format!("reason=\"{}\"", r.label()), n)
        })
        .collect();
    let samples: Vec<(&str, u64)> = reasons.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        "media_target_refused_total",
        "counter",
        "SDP endpoints refused as media targets (the peer is learnt from its packets instead), by reason.",
        &samples,
    );
    let plane = format!("plane=\"{}\"", s.plane);
    metric(
        "dataplane_info",
        "gauge",
        "The data plane in use.",
        &[(plane.as_str(), 1)],
    );
    let labels: Vec<(String, u64)> = commands
        .iter()
        .map(|(c, n)| (format!("command=\"{c}\""), *n))
        .collect();
    let samples: Vec<(&str, u64)> = labels.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        "ng_commands_total",
        "counter",
        "NG commands handled, by command.",
        &samples,
    );
    metric(
        "ng_errors_total",
        "counter",
        "NG messages answered with an error.",
        &[("", ng_errors)],
    );
    out
}

/// The data plane's own counters: what the workers' userspace path accepted and, with the
/// XDP plane, what the kernel program forwarded, passed up and dropped. Comparing the two shows
/// whether calls are really offloaded.
pub fn render_plane(c: &crate::worker::PlaneCounters) -> String {
    let mut out = String::with_capacity(1024);
    let mut metric = |name: &str, kind: &str, help: &str, v: u64| {
        let _ = writeln!(out, "# HELP rtprelay_{name} {help}");
        let _ = writeln!(out, "# TYPE rtprelay_{name} {kind}");
        let _ = writeln!(out, "rtprelay_{name} {v}");
    };
    metric(
        "userspace_packets_total",
        "counter",
        "Packets accepted on the workers' userspace path.",
        c.userspace_packets,
    );
    metric(
        "worker_panics_total",
        "counter",
        "Panics caught in the forwarding workers (each worker is restarted with its flows).",
        c.worker_panics,
    );
    metric(
        "media_source_refused_total",
        "counter",
        "Packets dropped because their source is never a peer: one of the relay's own ports (a loop), its host, a denied network.",
        c.refused_sources,
    );
    if let Some(a) = c.afxdp {
        metric(
            "afxdp_transmitted_packets_total",
            "counter",
            "Packets the AF_XDP path rewrote and sent back out of its sockets.",
            a.transmitted,
        );
        metric(
            "afxdp_handed_off_packets_total",
            "counter",
            "AF_XDP frames one worker handed to another: for the other's call, or to send from its socket.",
            a.handed_off,
        );
        metric(
            "afxdp_handoff_dropped_packets_total",
            "counter",
            "AF_XDP frames dropped because the receiving worker's hand-off queue was full (frames for its calls, and frames to send from its socket).",
            a.handoff_dropped,
        );
        metric(
            "afxdp_unmatched_dropped_packets_total",
            "counter",
            "AF_XDP frames dropped because the worker that took them had no flow on their port.",
            a.unmatched,
        );
        metric(
            "afxdp_tx_dropped_packets_total",
            "counter",
            "AF_XDP frames forwarded but not sent (no free frame, no socket on the device); also counted as their stream's drops.",
            a.tx_dropped,
        );
        let k = a.kernel;
        metric(
            "afxdp_rx_dropped_total",
            "counter",
            "Frames the kernel dropped before an AF_XDP socket got them (no room, rx ring full included).",
            k.rx_dropped,
        );
        metric(
            "afxdp_rx_ring_full_total",
            "counter",
            "Frames the kernel dropped because an AF_XDP socket's rx ring was full.",
            k.rx_ring_full,
        );
        metric(
            "afxdp_rx_fill_ring_empty_descs_total",
            "counter",
            "Times the kernel found an AF_XDP socket's fill ring empty.",
            k.rx_fill_ring_empty_descs,
        );
        metric(
            "afxdp_tx_invalid_descs_total",
            "counter",
            "Invalid descriptors on AF_XDP tx rings.",
            k.tx_invalid_descs,
        );
    }
    if let Some((x, installed)) = c.xdp {
        metric(
            "xdp_forwarded_packets_total",
            "counter",
            "Packets the XDP program rewrote and sent on.",
            x.forwarded,
        );
        metric(
            "xdp_passed_packets_total",
            "counter",
            "Packets the XDP program handed to the socket path.",
            x.passed,
        );
        metric(
            "xdp_dropped_packets_total",
            "counter",
            "Packets the XDP program dropped (strict source, block media).",
            x.dropped,
        );
        metric(
            "xdp_redirected_packets_total",
            "counter",
            "Packets the XDP program handed to AF_XDP sockets (afxdp plane).",
            x.redirected,
        );
        metric(
            "xdp_aborted_packets_total",
            "counter",
            "Packets the XDP program could not send (redirect failures).",
            x.aborted,
        );
        metric(
            "xdp_offloaded_flows",
            "gauge",
            "Flows forwarded in the kernel now.",
            installed as u64,
        );
    }
    out
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
            xdp: None,
            afxdp: None,
        };
        let t = render_plane(&user);
        assert!(t.contains("rtprelay_userspace_packets_total 7\n"), "{t}");
        assert!(t.contains("rtprelay_media_source_refused_total 2\n"), "{t}");
        assert!(t.contains("rtprelay_worker_panics_total 0\n"), "{t}");
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
