//! Drain through the real binary: the CLI's `drain` (with `rtprelay-ctl`) and SIGTERM with
//! `--drain-grace`. While draining, `ping` fails (Kamailio's rtpengine module then disables the
//! node), new calls are refused, the calls already up go on, `/ready` answers 503 and
//! `rtprelay_draining` is 1; the relay exits 0 once its last call is deleted or the grace is over.
//! Then the real thing: SIPp calls through Kamailio with an rtpengine set of two relays, one drained
//! mid-run: no call fails, new calls land on the other relay, the drained one exits 0 when empty.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::call::{Call, LO};
use common::ctl::ctl;
use common::kamailio;
use common::ns_relay::{http_get, metric_sum};
use common::*;

/// A relay with its CLI and HTTP on spare ports of the block.
fn start(ports: &PortBlock, extra: &[&str]) -> (Relay, SocketAddr, SocketAddr) {
    let cli = SocketAddr::from((LO, ports.port(17)));
    let web = SocketAddr::from((LO, ports.port(16)));
    let mut args = vec![
        format!("--listen-cli={cli}"),
        format!("--listen-http={web}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let relay = Relay::start(RelayKind::Rtprelay, ports, &args);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(cli).is_err() || TcpStream::connect(web).is_err() {
        assert!(Instant::now() < deadline, "CLI/HTTP not up");
        std::thread::sleep(Duration::from_millis(20));
    }
    (relay, cli, web)
}

fn result_of(reply: &Dict) -> (String, String) {
    (
        get_str(reply, "result").unwrap_or_default().to_owned(),
        get_str(reply, "error-reason")
            .unwrap_or_default()
            .to_owned(),
    )
}

/// While draining: ping fails, a new call is refused, the old call still answers `query`.
fn assert_draining(relay: &Relay, ports: &PortBlock, web: SocketAddr, old: &Call) {
    let ng = relay.client();
    let (result, reason) = result_of(&ng.ping().expect("ping"));
    assert_eq!(result, "error", "ping while draining");
    assert_eq!(reason, "Relay is draining, not accepting new calls");
    let sdp = sdp_offer(LO, ports.port(10));
    let (result, reason) = result_of(&ng.offer("new-call", "caller", &sdp, &[]).expect("offer"));
    assert_eq!(
        (result.as_str(), reason.as_str()),
        ("error", "Relay is draining, not accepting new calls")
    );
    expect_ok(ng.query(&old.id), "query of the call already up");
    let (status, body) = http_get(web, "/ready").expect("/ready");
    assert_eq!(status, 503, "/ready while draining: {body}");
    assert!(body.contains("draining"), "{body}");
    let (_, metrics) = http_get(web, "/metrics").expect("/metrics");
    assert_eq!(metric_sum(&metrics, "rtprelay_draining"), Some(1.0));
}

#[test]
fn cli_drain_keeps_the_call_and_exits_zero_when_it_ends() {
    let ports = PortBlock::acquire();
    let (mut relay, cli, web) = start(&ports, &[]);
    let ng = relay.client();
    let call = Call::setup(&ng, &ports, &[]);
    assert_eq!(http_get(web, "/ready").expect("/ready").0, 200);
    assert_eq!(ctl(cli, "drain status"), "Not draining: 1 calls.\n");

    assert_eq!(ctl(cli, "drain"), "Draining: 1 calls left.\n");
    assert_draining(&relay, &ports, web, &call);
    std::thread::sleep(Duration::from_millis(500));
    assert!(relay.is_running(), "a call is up: the relay waits");
    assert_eq!(ctl(cli, "drain status"), "Draining: 1 calls left.\n");

    expect_ok(ng.delete(&call.id, "tag-a"), "delete");
    let status = relay.wait_timeout(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after the last call: {status:?}\n{}",
        relay.log_tail(20)
    );
}

#[test]
fn sigterm_with_a_grace_drains_and_exits_zero_when_the_call_ends() {
    let ports = PortBlock::acquire();
    let (mut relay, _cli, web) = start(&ports, &["--drain-grace=30"]);
    let ng = relay.client();
    let call = Call::setup(&ng, &ports, &[]);
    relay.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        relay.is_running(),
        "SIGTERM with a grace: still up for the call"
    );
    assert_draining(&relay, &ports, web, &call);
    expect_ok(ng.delete(&call.id, "tag-a"), "delete");
    let status = relay.wait_timeout(Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn a_second_sigterm_or_the_end_of_the_grace_exits_zero_with_calls_left() {
    let ports = PortBlock::acquire();
    let (mut relay, _cli, _web) = start(&ports, &["--drain-grace=30"]);
    Call::setup(&relay.client(), &ports, &[]);
    relay.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(relay.is_running());
    relay.signal("TERM");
    let status = relay.wait_timeout(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "second SIGTERM: {status:?}"
    );

    let ports = PortBlock::acquire();
    let (mut relay, _cli, _web) = start(&ports, &["--drain-grace=1"]);
    Call::setup(&relay.client(), &ports, &[]);
    let t0 = Instant::now();
    relay.signal("TERM");
    let status = relay.wait_timeout(Duration::from_secs(6));
    assert!(
        status.is_some_and(|s| s.success()),
        "grace over: {status:?}"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "left before the grace"
    );
}

#[test]
fn without_a_grace_sigterm_exits_at_once() {
    let ports = PortBlock::acquire();
    let (mut relay, _cli, _web) = start(&ports, &[]);
    Call::setup(&relay.client(), &ports, &[]);
    relay.signal("TERM");
    let status = relay.wait_timeout(Duration::from_secs(3));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// Calls the relay at `web` has created so far.
fn calls_created(web: SocketAddr) -> Option<f64> {
    let (_, text) = http_get(web, "/metrics").ok()?;
    metric_sum(&text, "rtprelay_calls_created_total")
}

const KAM_CALLS: usize = 24;
/// Calls started a second (each lasts ~3 s of media, see tests/e2e/uac.xml).
const KAM_RATE: usize = 4;

#[test]
fn kamailio_two_relays_one_drained_mid_run_no_call_fails() {
    use kamailio::*;
    if !["kamailio", "sipp"].iter().all(|t| require_or_skip(t))
        || !require_root_or_skip("SIPp's pcap play")
    {
        return;
    }
    let Some(pcap) = g711a_pcap() else {
        skip_unless(false, "sip-tester's g711a.pcap was not found");
        return;
    };
    let (ports_a, ports_b) = (PortBlock::acquire(), PortBlock::acquire());
    let dir = scratch_dir("drain-kamailio");
    prepare_scenarios(&dir, &pcap);
    let (mut relay_a, cli_a, web_a) = start(&ports_a, &[]);
    let (relay_b, _cli_b, web_b) = start(&ports_b, &[]);
    let sip = |i| ports_b.port(i);
    let (uac_sip, proxy_sip, uas_sip, uac_media, uas_media) =
        (sip(5), sip(6), sip(7), sip(8), sip(10));
    let socks = format!(
        "NG_SOCKS=\"udp:{} udp:{}\"",
        relay_a.ng_addr(),
        relay_b.ng_addr()
    );
    let mut kam = start_kamailio(
        &dir,
        "kamailio-two-relays.cfg",
        proxy_sip,
        uas_sip,
        &[socks],
    );

    let mut uas = Proc::spawn(
        "sipp-uas",
        sipp(&dir, "uas", CALLEE, uas_sip, uas_media).args(["-timeout", "60s"]),
        &dir.join("uas.log"),
    )
    .expect("start SIPp callee");
    wait_bound(&mut uas, SocketAddr::from((CALLEE, uas_sip)));
    let mut uac = Proc::spawn(
        "sipp-uac",
        sipp(&dir, "uac", CALLER, uac_sip, uac_media)
            .args(["-m", &KAM_CALLS.to_string(), "-r", &KAM_RATE.to_string()])
            .args([
                "-l",
                "20",
                "-trace_stat",
                "-stf",
                "uac_stat.csv",
                "-fd",
                "1",
            ])
            .args(["-timeout", "40s", "-timeout_error"])
            .args(["-s", "callee", &format!("{PROXY}:{proxy_sip}")]),
        &dir.join("uac.log"),
    )
    .expect("start SIPp caller");
    let here = format!("(logs in {})", dir.display());

    // Drain A once it carries calls (Call-ID hashing spreads them over both relays).
    let deadline = Instant::now() + Duration::from_secs(8);
    while calls_created(web_a).unwrap_or(0.0) < 1.0 {
        assert!(Instant::now() < deadline, "relay A got no call {here}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let drained = ctl(cli_a, "drain");
    assert!(drained.starts_with("Draining: "), "{drained}");
    let a_at_drain = calls_created(web_a).expect("A's metrics");
    let b_at_drain = calls_created(web_b).expect("B's metrics");

    // A takes no new call and exits 0 once its calls have ended.
    let mut a_last = a_at_drain;
    let a_deadline = Instant::now() + Duration::from_secs(30);
    let a_status = loop {
        if let Some(s) = relay_a.wait_timeout(Duration::from_millis(200)) {
            break Some(s);
        }
        if let Some(n) = calls_created(web_a) {
            a_last = n;
        }
        if Instant::now() >= a_deadline {
            break None;
        }
    };
    let uac_status = uac.wait_timeout(Duration::from_secs(45));
    let b_total = calls_created(web_b).expect("B's metrics");
    uas.stop(Duration::from_secs(2));
    kam.stop(Duration::from_secs(3));

    let stats = uac_stats(&dir.join("uac_stat.csv"));
    let ok = stats.get("SuccessfulCall(C)").cloned().unwrap_or_default();
    let failed = stats.get("FailedCall(C)").cloned().unwrap_or_default();
    assert!(
        uac_status.is_some_and(|s| s.success()) && ok == KAM_CALLS.to_string() && failed == "0",
        "SIPp caller: exit {uac_status:?}, {ok:?} successful / {failed:?} failed of {KAM_CALLS} {here}\n\
         kamailio log tail:\n{}",
        kam.log_tail(20)
    );
    assert!(
        a_status.is_some_and(|s| s.success()),
        "drained relay A: {a_status:?} {here}\n{}",
        relay_a.log_tail(20)
    );
    assert_eq!(
        a_last, a_at_drain,
        "relay A created calls after the drain {here}"
    );
    assert!(b_total > b_at_drain, "no new call landed on relay B {here}");
    assert_eq!(
        a_at_drain + b_total,
        KAM_CALLS as f64,
        "every call on exactly one relay {here}"
    );
    eprintln!(
        "{KAM_CALLS} calls: relay A {a_at_drain} (all before its drain), relay B {b_total} \
         ({} after the drain)",
        b_total - b_at_drain
    );
}
