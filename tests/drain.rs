//! Drain through the real binary: the CLI's `drain` (with `rtprelay-ctl`) and SIGTERM with
//! `--drain-grace`. While draining, `ping` fails (Kamailio's rtpengine module then disables the
//! node), new calls are refused, the calls already up go on, `/ready` answers 503 and
//! `rtprelay_draining` is 1; the relay exits 0 once its last call is deleted or the grace is over.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::call::{Call, LO};
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

/// `rtprelay-ctl COMMAND` against `cli`, bounded.
fn ctl(cli: SocketAddr, command: &str) -> String {
    let mut child = Command::new(Path::new(env!("CARGO_BIN_EXE_rtprelay-ctl")))
        .args([
            "-ip",
            &cli.ip().to_string(),
            "-port",
            &cli.port().to_string(),
        ])
        .args(command.split(' '))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtprelay-ctl");
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("rtprelay-ctl {command} did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "rtprelay-ctl {command}: {}",
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
