//! An on-link host that forges a peer's address cannot pull that peer's offloaded media to its own
//! MAC (security issue 11, point 4).
//!
//! The namespace topology of `tests/xdp.rs` (`common::netns`): caller, callee, relay and a spoofer (the
//! injector) on one bridged LAN. Forwarding is off in the relay's namespace, as on most hosts that are
//! not routers, so the kernel's route lookup cannot answer for the XDP program and it sends offloaded
//! media by its fallback next hops (`peers`): the very next hops a spoofer would want to move. Once the
//! call is offloaded the spoofer sends media with the caller's address: from another port, to relay
//! ports that have no flow, and from the caller's exact address and port (which strict source lets
//! through). The callee's media for the caller must keep arriving at the caller, all of it, and none
//! at the spoofer. The spoofer holds the caller's address (so that whatever the relay sent to its MAC
//! would reach its sockets) without ever announcing it: it answers no ARP and has a static entry for
//! the relay, so the relay's neighbour table is never poisoned (that would be ARP spoofing, which no
//! data plane can tell from the truth).
//!
//! Runs on the plane `RTPRELAY_XDP_TESTS_PLANE` names (xdp by default; afxdp, and mmsg or uring as a
//! control of the harness). Needs root, `ip`, `ethtool` and `clang`; skips without them (fails under
//! `RTPRELAY_E2E=1`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::call::{assert_silent, relay_and_expect, wait_until};
use common::netns::{in_ns, Family, Role, Topology, PARTY_IF};
use common::ns_call::{rtcp_of, NsCall, CALLER_PORT};
use common::ns_relay::{NsRelay, PORT_MAX, PORT_MIN};
use common::{MediaEndpoint, RtpPacket};

/// How long a relayed packet may take to arrive.
const WAIT: Duration = Duration::from_secs(2);
/// How long nothing must arrive where nothing is expected.
const QUIET: Duration = Duration::from_millis(300);
/// How long a learned flow may take to be offloaded, and kernel counters to be folded.
const OFFLOAD: Duration = Duration::from_secs(4);
/// Rounds of the callee's media after the forgeries, and the pause before each: together longer
/// than the program's per-CPU next-hop cache (one second), so a moved next hop would show.
const ROUNDS: u16 = 4;
const PAUSE: Duration = Duration::from_millis(500);

const FORWARDED: &str = "rtprelay_xdp_forwarded_packets_total";
const OFFLOADED: &str = "rtprelay_xdp_offloaded_flows";

const SSRC_CALLER: u32 = 0xca11e4;
const SSRC_CALLEE: u32 = 0xca11ee;
const SSRC_SPOOF: u32 = 0x5b00f;

/// The plane under test: `RTPRELAY_XDP_TESTS_PLANE`, xdp when unset.
fn plane() -> String {
    std::env::var("RTPRELAY_XDP_TESTS_PLANE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "xdp".into())
}

fn rtp_batch(ssrc: u32, first: u16, count: u16) -> Vec<Vec<u8>> {
    (first..first + count)
        .map(|n| RtpPacket::pcmu(ssrc, n).to_bytes())
        .collect()
}

/// `cmd args` in namespace `ns`, which must succeed.
fn must_run(topo: &Topology, ns: &str, cmd: &str, args: &[&str]) {
    topo.run_in(ns, cmd, args)
        .unwrap_or_else(|e| panic!("{cmd} {args:?} in {ns}: {e}"));
}

/// The MAC of `role`'s veth, from `ip link show`.
fn mac_of(topo: &Topology, role: Role) -> String {
    let text = topo.link_show(&topo.ns(role), PARTY_IF);
    text.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in:\n{text}"))
        .to_owned()
}

/// A socket bound to `addr` in namespace `ns`.
fn endpoint(ns: &str, addr: SocketAddr) -> MediaEndpoint {
    in_ns(ns, move || MediaEndpoint::bind(addr))
        .and_then(|r| r)
        .unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"))
}

/// Datagrams waiting on `ep` are thrown away.
fn drain(ep: &MediaEndpoint) {
    while ep.recv_timeout(Duration::from_millis(50)).is_some() {}
}

#[test]
fn an_on_link_spoofer_of_a_peers_address_gets_none_of_its_offloaded_media() {
    let plane = plane();
    let offloads = matches!(plane.as_str(), "xdp" | "afxdp");
    let Some(topo) = Topology::new() else { return };
    let (relay_ns, spoof_ns) = (topo.ns(Role::Relay), topo.ns(Role::Injector));
    // A relay host that is not a router: bpf_fib_lookup() answers nothing there.
    must_run(
        &topo,
        &relay_ns,
        "sysctl",
        &["-q", "-w", "net.ipv4.conf.all.forwarding=0"],
    );
    let relay = NsRelay::start(&topo, &[&format!("--dataplane={plane}")]);
    assert_eq!(relay.statistics_plane(), plane, "plane in statistics");
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    let (caller, callee) = (&call.caller, &call.callee);
    let to_callee_rtcp = rtcp_of(call.callee_to);

    // Both sides speak (every flow fixes on its peer), then the kernel takes the call over.
    let send = |n: u16, first: u16| {
        let pkts = rtp_batch(SSRC_CALLEE, first, n);
        relay_and_expect(
            &callee.rtp,
            call.callee_to,
            &pkts,
            &caller.rtp,
            call.caller_to,
            WAIT,
            "RTP callee->caller",
        );
        pkts.len() as f64
    };
    relay_and_expect(
        &caller.rtp,
        call.caller_to,
        &rtp_batch(SSRC_CALLER, 0, 1),
        &callee.rtp,
        call.callee_to,
        WAIT,
        "RTP caller->callee",
    );
    send(1, 0);
    relay_and_expect(
        &caller.rtcp,
        rtcp_of(call.caller_to),
        &[common::call::rtcp_rr(SSRC_CALLER)],
        &callee.rtcp,
        to_callee_rtcp,
        WAIT,
        "RTCP caller->callee",
    );
    relay_and_expect(
        &callee.rtcp,
        to_callee_rtcp,
        &[common::call::rtcp_rr(SSRC_CALLEE)],
        &caller.rtcp,
        rtcp_of(call.caller_to),
        WAIT,
        "RTCP callee->caller",
    );
    if offloads {
        assert!(
            wait_until(OFFLOAD, || relay.metric(OFFLOADED) >= 4.0),
            "the call was not offloaded:\n{}\n{}",
            relay.metrics(),
            relay.log_tail(30)
        );
        // With forwarding off, what the kernel forwards it sends by its fallback next hops.
        let f0 = relay.metric(FORWARDED);
        let sent = send(20, 100);
        assert!(
            wait_until(OFFLOAD, || relay.metric(FORWARDED) - f0 >= sent),
            "the kernel did not forward the callee's media by its fallback next hop:\n{}",
            relay.metrics()
        );
    } else {
        send(20, 100);
    }

    // The spoofer takes the caller's address without announcing it: no ARP replies, and a static
    // entry for the relay so that it never asks either.
    let caller_ip = call.caller.addr().ip();
    let relay_ip = topo.v4(Role::Relay).to_string();
    must_run(
        &topo,
        &spoof_ns,
        "sysctl",
        &["-q", "-w", "net.ipv4.conf.all.arp_ignore=8"],
    );
    must_run(
        &topo,
        &spoof_ns,
        "ip",
        &[
            "neigh",
            "replace",
            &relay_ip,
            "lladdr",
            &mac_of(&topo, Role::Relay),
            "dev",
            PARTY_IF,
            "nud",
            "permanent",
        ],
    );
    must_run(
        &topo,
        &spoof_ns,
        "ip",
        &["addr", "add", &format!("{caller_ip}/32"), "dev", PARTY_IF],
    );
    let at = |port| SocketAddr::new(caller_ip, port);
    let spoof_rtp = endpoint(&spoof_ns, at(CALLER_PORT));
    let spoof_rtcp = endpoint(&spoof_ns, at(CALLER_PORT + 1));
    let spoof_other = endpoint(&spoof_ns, at(CALLER_PORT + 7));
    let forged = rtp_batch(SSRC_SPOOF, 0, 5);
    let call_ports = [
        call.caller_to.port(),
        call.caller_to.port() + 1,
        call.callee_to.port(),
        call.callee_to.port() + 1,
    ];
    let no_flow: Vec<SocketAddr> = (PORT_MIN..=PORT_MAX)
        .filter(|p| !call_ports.contains(p))
        .step_by(97)
        .map(|p| SocketAddr::new(call.caller_to.ip(), p))
        .collect();
    for p in &forged {
        // The caller's address, another port: strict source refuses it.
        spoof_other.send_to(p, call.caller_to).expect("forge");
        // The caller's address and port, to relay ports that have no flow.
        for &to in &no_flow {
            spoof_rtp.send_to(p, to).expect("forge");
        }
        // The caller's exact address and port: indistinguishable from the caller by address,
        // relayed to the callee as the caller's media would be.
        spoof_rtp.send_to(p, call.caller_to).expect("forge");
        spoof_rtcp
            .send_to(&common::call::rtcp_rr(SSRC_SPOOF), rtcp_of(call.caller_to))
            .expect("forge");
    }

    // The callee's media keeps going to the caller, all of it, for longer than the program caches a
    // next hop; none of it reaches the spoofer.
    let f0 = if offloads {
        relay.metric(FORWARDED)
    } else {
        0.0
    };
    let mut sent = 0.0;
    for round in 0..ROUNDS {
        std::thread::sleep(PAUSE);
        sent += send(10, 1000 + 10 * round);
        relay_and_expect(
            &callee.rtcp,
            to_callee_rtcp,
            &[common::call::rtcp_rr(SSRC_CALLEE + u32::from(round))],
            &caller.rtcp,
            rtcp_of(call.caller_to),
            WAIT,
            "RTCP callee->caller",
        );
        sent += 1.0;
    }
    for (ep, what) in [
        (&spoof_rtp, "RTP"),
        (&spoof_rtcp, "RTCP"),
        (&spoof_other, "other port"),
    ] {
        assert_silent(
            ep,
            QUIET,
            &format!("the spoofer got the caller's media ({what})"),
        );
    }
    if offloads {
        assert!(
            wait_until(OFFLOAD, || relay.metric(FORWARDED) - f0 >= sent),
            "the callee's media left the kernel path after the forgeries:\n{}",
            relay.metrics()
        );
    }
    // The caller's own media still reaches the callee (past what the forgeries injected).
    drain(&callee.rtp);
    drain(&callee.rtcp);
    relay_and_expect(
        &caller.rtp,
        call.caller_to,
        &rtp_batch(SSRC_CALLER, 2000, 10),
        &callee.rtp,
        call.callee_to,
        WAIT,
        "RTP caller->callee after the forgeries",
    );
}
