//! Under a seccomp filter that refuses `io_uring_setup` with EPERM (as Docker's default profile
//! does), the relay asked for `auto` or `uring` falls back to mmsg, logs why, and forwards.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::call::*;
use common::*;

fn start_confined(ports: &PortBlock, name: &str, plane: &str) -> (Proc, NgClient) {
    let log = scratch_dir(name).join("relay.log");
    let mut cmd = Command::new(RelayKind::Rtprelay.program());
    cmd.args(relay_args(ports, &[&format!("--dataplane={plane}")]));
    rtprelay::sys::seccomp::deny_io_uring_on_exec(&mut cmd);
    let mut proc = Proc::spawn(name, &mut cmd, &log).expect("spawn relay");
    let ng = NgClient::new(ports.ng_addr()).expect("NG client");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ng.ping().is_err() {
        assert!(
            proc.try_wait().is_none(),
            "relay exited:\n{}",
            proc.log_tail(30)
        );
        assert!(Instant::now() < deadline, "no pong:\n{}", proc.log_tail(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    (proc, ng)
}

fn falls_back_and_forwards(plane: &str) {
    let ports = PortBlock::acquire();
    let (mut proc, ng) = start_confined(&ports, &format!("seccomp-{plane}"), plane);
    let log = proc.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("data plane chosen"))
        .unwrap_or_else(|| panic!("no plane line in log:\n{log}"));
    assert!(line.contains("mmsg"), "{line}");
    assert!(line.contains("io_uring_setup"), "{line}");
    assert!(line.contains("Operation not permitted"), "{line}");
    assert!(line.contains("falling back to mmsg"), "{line}");
    if plane == "uring" {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains("cannot run here")),
            "an explicit uring request that falls back warns:\n{log}"
        );
    }
    assert_eq!(
        log.matches("data plane chosen").count(),
        1,
        "logged once:\n{log}"
    );

    let c = Call::setup(&ng, &ports, &[]);
    let pkts: Vec<Vec<u8>> = (0..10)
        .map(|n| RtpPacket::pcmu(0x5ecc, n).to_bytes())
        .collect();
    for p in &pkts {
        c.a.rtp.send_to(p, c.a_to).expect("send");
    }
    let got = c.b.rtp.collect(pkts.len(), Duration::from_secs(3));
    assert_eq!(got.len(), pkts.len(), "forwarded under seccomp");
    assert!(got
        .iter()
        .zip(&pkts)
        .all(|((d, from), s)| d == s && *from == c.b_to));
    let back = RtpPacket::pcmu(0xbacc, 1).to_bytes();
    c.b.rtp.send_to(&back, c.b_to).expect("send");
    assert_eq!(
        c.a.rtp.recv_timeout(Duration::from_secs(3)),
        Some((back, c.a_to))
    );
    proc.stop(Duration::from_secs(3));
}

#[test]
fn auto_falls_back_to_mmsg_when_io_uring_is_refused() {
    falls_back_and_forwards("auto");
}

#[test]
fn uring_request_falls_back_to_mmsg_when_io_uring_is_refused() {
    falls_back_and_forwards("uring");
}
