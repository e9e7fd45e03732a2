//! `/metrics` after a real call: rtpengine's metric names with the right values next to ours,
//! the NG latency histogram, RTCP quality from the peers' reports (histograms, MOS sums and the
//! end-of-call log record), and every query of the example Grafana dashboard naming a metric
//! the exposition has.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::call::{wait_until, Call, LO};
use common::*;

/// GET `path`; the body.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect HTTP");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// Samples of a Prometheus text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

fn value(s: &BTreeMap<String, f64>, key: &str) -> f64 {
    *s.get(key)
        .unwrap_or_else(|| panic!("{key} missing in {:#?}", s.keys().collect::<Vec<_>>()))
}

/// The metric names of an exposition (sample names without labels).
fn names(s: &BTreeMap<String, f64>) -> BTreeSet<String> {
    s.keys()
        .map(|k| k.split('{').next().unwrap_or(k).to_owned())
        .collect()
}

/// An RR from `ssrc` with one report block: `fraction` lost (1/256), `lost` in all, `jitter`.
fn rr(ssrc: u32, fraction: u8, lost: u32, jitter: u32) -> Vec<u8> {
    let mut v = vec![0x81, 201, 0, 7];
    v.extend(ssrc.to_be_bytes());
    v.extend(0x5eed_u32.to_be_bytes());
    v.push(fraction);
    v.extend(&lost.to_be_bytes()[1..]);
    v.extend(1000u32.to_be_bytes());
    v.extend(jitter.to_be_bytes());
    v.extend([0u8; 8]);
    v
}

fn rtcp_port(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port() + 1)
}

/// A call through `kind` with media and one RR each way, then a ping: the relay, its HTTP
/// address and the call.
fn call_with_reports(kind: RelayKind, ports: &PortBlock) -> (Relay, SocketAddr, Call) {
    let web = SocketAddr::from((LO, ports.port(15)));
    let relay = Relay::start(kind, ports, &["--listen-http", &web.to_string()]);
    let ng = relay.client();
    let call = Call::setup(&ng, ports, &[]);
    // Media both ways, then one receiver report each way.
    call.a
        .rtp
        .send_rtp(call.a_to, 0xa, 20, Duration::ZERO)
        .expect("send A");
    call.b
        .rtp
        .send_rtp(call.b_to, 0xb, 20, Duration::ZERO)
        .expect("send B");
    assert_eq!(call.b.rtp.collect(20, Duration::from_secs(3)).len(), 20);
    assert_eq!(call.a.rtp.collect(20, Duration::from_secs(3)).len(), 20);
    call.a
        .rtcp
        .send_to(&rr(0xa, 26, 3, 160), rtcp_port(call.a_to))
        .expect("RR from A");
    call.b
        .rtcp
        .send_to(&rr(0xb, 0, 0, 40), rtcp_port(call.b_to))
        .expect("RR from B");
    assert!(call.b.rtcp.recv_timeout(Duration::from_secs(3)).is_some());
    assert!(call.a.rtcp.recv_timeout(Duration::from_secs(3)).is_some());
    ng.ping().expect("ping");

    (relay, web, call)
}

/// Deletes the call and waits until it has ended (no delete delay): the scrape then.
fn delete_and_scrape(relay: &Relay, web: SocketAddr, call: &Call) -> String {
    expect_ok(relay.client().delete(&call.id, &call.a.tag), "delete");
    let mut last = String::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            last = get(web, "/metrics");
            samples(&last).get("rtpengine_sessions_total") == Some(&1.0)
        }),
        "{} never ended the call: {last}",
        relay.name()
    );
    last
}

#[test]
fn a_call_shows_in_rtpengines_metrics_and_the_dashboard_queries_exist() {
    let ports = PortBlock::acquire();
    let (relay, web, call) = call_with_reports(RelayKind::Rtprelay, &ports);
    let text = get(web, "/metrics");
    let s = samples(&text);
    assert_eq!(value(&s, "rtpengine_sessions{type=\"own\"}"), 1.0, "{text}");
    assert_eq!(value(&s, "rtpengine_sessions{type=\"foreign\"}"), 0.0);
    // Both sides sent RTP in the last two seconds.
    assert_eq!(value(&s, "rtpengine_mediastreams{type=\"userspace\"}"), 2.0);
    assert_eq!(value(&s, "rtpengine_mediastreams{type=\"kernel\"}"), 0.0);
    // 40 RTP and 2 RTCP packets, all on the userspace path; the same figures as ours.
    assert_eq!(
        value(&s, "rtpengine_packets_total{type=\"userspace\"}"),
        42.0
    );
    assert_eq!(value(&s, "rtpengine_packets_total{type=\"kernel\"}"), 0.0);
    assert_eq!(
        value(&s, "rtpengine_bytes_total{type=\"userspace\"}"),
        value(&s, "rtprelay_bytes_total{kind=\"rtp\"}")
            + value(&s, "rtprelay_bytes_total{kind=\"rtcp\"}")
    );
    assert_eq!(
        value(&s, "rtpengine_packet_errors_total{type=\"userspace\"}"),
        0.0
    );
    for (request, n) in [("offer", 1.0), ("answer", 1.0), ("ping", 2.0)] {
        let key = format!("rtpengine_requests_total{{proxy=\"127.0.0.1\",request=\"{request}\"}}");
        assert_eq!(value(&s, &key), n, "{key}");
        let count = format!("rtprelay_ng_request_duration_seconds_count{{command=\"{request}\"}}");
        assert_eq!(value(&s, &count), n, "{count}");
        let inf = format!(
            "rtprelay_ng_request_duration_seconds_bucket{{command=\"{request}\",le=\"+Inf\"}}"
        );
        assert_eq!(value(&s, &inf), n, "{inf}\n{text}");
    }
    assert!(
        value(
            &s,
            "rtpengine_request_seconds_total{proxy=\"127.0.0.1\",request=\"offer\"}"
        ) > 0.0
    );
    assert!(text.contains("# TYPE rtpengine_requests_total counter\n"));
    assert!(text.contains("# TYPE rtprelay_ng_request_duration_seconds histogram\n"));
    // Ours unchanged beside them.
    assert_eq!(value(&s, "rtprelay_calls"), 1.0);
    assert_eq!(value(&s, "rtprelay_packets_total{kind=\"rtp\"}"), 40.0);
    assert_eq!(
        value(&s, "rtprelay_ng_commands_total{command=\"offer\"}"),
        1.0
    );

    // Delete: the call ends (no delete delay), closed as rtpengine's "terminated".
    let last = delete_and_scrape(&relay, web, &call);
    let s = samples(&last);
    assert_eq!(value(&s, "rtpengine_sessions{type=\"own\"}"), 0.0);
    assert_eq!(
        value(&s, "rtpengine_closed_sessions_total{reason=\"terminated\"}"),
        1.0
    );
    for reason in ["timeout", "force_terminated", "rejected"] {
        let key = format!("rtpengine_closed_sessions_total{{reason=\"{reason}\"}}");
        assert_eq!(value(&s, &key), 0.0, "{key}");
    }
    assert_eq!(
        value(
            &s,
            "rtpengine_requests_total{proxy=\"127.0.0.1\",request=\"delete\"}"
        ),
        1.0
    );
    // Counters keep the ended call's traffic.
    assert_eq!(
        value(&s, "rtpengine_packets_total{type=\"userspace\"}"),
        42.0
    );
    // Both streams had reports: two quality samples, one with 26/256 lost and 20 ms jitter.
    assert_eq!(value(&s, "rtpengine_mos_samples_total"), 2.0);
    let mos = value(&s, "rtpengine_mos_total");
    assert!(mos > 2.0 * 1.0 && mos < 2.0 * 4.5, "{mos}");
    assert_eq!(value(&s, "rtprelay_stream_jitter_seconds_count"), 2.0);
    assert_eq!(
        value(&s, "rtprelay_stream_jitter_seconds_bucket{le=\"0.02\"}"),
        2.0,
        "{last}"
    );
    assert_eq!(
        value(&s, "rtprelay_stream_jitter_seconds_bucket{le=\"0.005\"}"),
        1.0
    );
    assert_eq!(
        value(&s, "rtprelay_stream_fraction_lost_bucket{le=\"0\"}"),
        1.0
    );
    assert_eq!(
        value(&s, "rtprelay_stream_fraction_lost_bucket{le=\"0.1\"}"),
        1.0
    );
    assert_eq!(
        value(&s, "rtprelay_stream_fraction_lost_bucket{le=\"0.2\"}"),
        2.0
    );

    // The end-of-call record carries the worst stream's loss and MOS.
    assert!(
        wait_until(Duration::from_secs(3), || relay.log_text().lines().any(
            |l| l.contains("call ended") && l.contains("loss_percent=10.2") && l.contains("mos=")
        )),
        "{}",
        relay.log_tail(20)
    );

    // Every metric a dashboard query names is in the exposition.
    let have = names(&s);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docker/examples/grafana-dashboard.json"
    );
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dash, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut used = BTreeSet::new();
    for e in &exprs {
        for name in metric_names(e) {
            assert!(
                have.contains(&name),
                "dashboard query {e:?} names {name}, not exposed"
            );
            used.insert(name);
        }
    }
    for family in [
        "rtpengine_sessions",
        "rtpengine_mediastreams",
        "rtpengine_packets_total",
        "rtpengine_bytes_total",
        "rtpengine_packet_errors_total",
        "rtpengine_closed_sessions_total",
        "rtpengine_requests_total",
        "rtprelay_ng_request_duration_seconds_bucket",
        "rtprelay_stream_jitter_seconds_bucket",
    ] {
        assert!(
            used.contains(family),
            "the dashboard does not show {family}"
        );
    }
}

/// Every `expr` string in the dashboard, panels and variables alike.
fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// Identifiers in a PromQL expression that are our or rtpengine's metric names.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("rtpengine_") || w.starts_with("rtprelay_"))
        .map(str::to_owned)
        .collect()
}

/// The rtpengine_* samples we serve after a call are ones Debian's rtpengine 10.5 serves after
/// the same call (same names, same labels), and the figures both relays know agree.
#[test]
fn rtpengine_names_and_labels_match_debians_rtpengine() {
    if !require_or_skip("rtpengine") {
        return;
    }
    let (mut during, mut after, mut later) = (Vec::new(), Vec::new(), Vec::new());
    for kind in [RelayKind::Rtprelay, RelayKind::Rtpengine] {
        let ports = PortBlock::acquire();
        let (relay, web, call) = call_with_reports(kind, &ports);
        // Both streams sent RTP just now. rtpengine counts its active streams on a timer, so its
        // figure may lag the packets by a tick: scrape until both streams show (or 3 s passed,
        // and the comparison below says what differs).
        let mut now = BTreeMap::new();
        wait_until(Duration::from_secs(3), || {
            now = samples(&get(web, "/metrics"));
            value(&now, "rtpengine_mediastreams{type=\"userspace\"}") >= 2.0
        });
        during.push(now);
        after.push(samples(&delete_and_scrape(&relay, web, &call)));
        // A one-way call (only A speaks) and a silent one, then both end.
        let ng = relay.client();
        let one_way = Call::setup_at(&ng, &ports, 4, &[]);
        one_way
            .a
            .rtp
            .send_rtp(one_way.a_to, 0xc, 5, Duration::ZERO)
            .expect("send");
        assert_eq!(one_way.b.rtp.collect(5, Duration::from_secs(3)).len(), 5);
        let silent = Call::setup_at(&ng, &ports, 8, &[]);
        for c in [&one_way, &silent] {
            expect_ok(ng.delete(&c.id, &c.a.tag), "delete");
        }
        let mut last = BTreeMap::new();
        assert!(
            wait_until(Duration::from_secs(5), || {
                last = samples(&get(web, "/metrics"));
                last.get("rtpengine_sessions_total") == Some(&3.0)
            }),
            "{} never ended the calls",
            relay.name()
        );
        later.push(last);
    }
    for key in [
        "rtpengine_one_way_sessions_total",
        "rtpengine_zero_packet_streams_total",
        "rtpengine_closed_sessions_total{reason=\"terminated\"}",
    ] {
        assert_eq!(value(&later[0], key), value(&later[1], key), "{key}");
    }
    assert_eq!(value(&later[0], "rtpengine_one_way_sessions_total"), 1.0);
    assert_eq!(value(&later[0], "rtpengine_zero_packet_streams_total"), 1.0);
    for key in [
        "rtpengine_sessions{type=\"own\"}",
        "rtpengine_mediastreams{type=\"userspace\"}",
        "rtpengine_mediastreams{type=\"kernel\"}",
        "rtpengine_packets_total{type=\"userspace\"}",
        "rtpengine_ports_used{name=\"default\",address=\"127.0.0.1\"}",
        "rtpengine_ports{name=\"default\",address=\"127.0.0.1\"}",
    ] {
        assert_eq!(value(&during[0], key), value(&during[1], key), "{key}");
    }
    let (ours, theirs) = (&after[0], &after[1]);
    // The reference is really rtpengine: it lists commands never sent.
    assert!(theirs.contains_key("rtpengine_requests_total{proxy=\"127.0.0.1\",request=\"list\"}"));
    for key in ours.keys().filter(|k| k.starts_with("rtpengine_")) {
        assert!(
            theirs.contains_key(key),
            "{key} is not what rtpengine serves: {:#?}",
            theirs.keys().collect::<Vec<_>>()
        );
    }
    for key in [
        "rtpengine_sessions{type=\"own\"}",
        "rtpengine_sessions_total",
        "rtpengine_closed_sessions_total{reason=\"terminated\"}",
        "rtpengine_closed_sessions_total{reason=\"timeout\"}",
        "rtpengine_requests_total{proxy=\"127.0.0.1\",request=\"offer\"}",
        "rtpengine_requests_total{proxy=\"127.0.0.1\",request=\"answer\"}",
        "rtpengine_requests_total{proxy=\"127.0.0.1\",request=\"delete\"}",
        "rtpengine_errors_total{proxy=\"127.0.0.1\"}",
        "rtpengine_packets_total{type=\"userspace\"}",
        "rtpengine_packet_errors_total{type=\"userspace\"}",
    ] {
        assert_eq!(value(ours, key), value(theirs, key), "{key}");
    }
}
