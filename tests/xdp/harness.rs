//! The harness itself: the topology joins every party and is removed, checksums and XDP_TX
//! frames behave as the tests assume, `metric_sum` adds samples; and the mmsg control.

use super::hostile::{send_raw_udp, RawUdp};
use super::offload::query_counts_match;
use super::*;
use rtprelay::testkit::checksum::udp_checksum;

#[test]
fn mmsg_control_forwards_in_the_topology() {
    let mode = Mode::userspace("mmsg");
    forwards_both_ways(&mode, Family::V4);
    forwards_both_ways(&mode, Family::V6);
    query_counts_match(&mode);
}

#[test]
fn topology_joins_every_party_and_is_removed_on_drop() {
    let Some(topo) = Topology::new() else { return };
    for family in [Family::V4, Family::V6] {
        let parties: Vec<(Role, MediaEndpoint)> =
            [Role::Caller, Role::Callee, Role::Relay, Role::Injector]
                .into_iter()
                .map(|r| (r, topo.media(r, family, 41000)))
                .collect();
        for (i, (role, ep)) in parties.iter().enumerate() {
            let (next_role, next) = &parties[(i + 1) % parties.len()];
            let msg = format!("{role:?} to {next_role:?}");
            ep.send_to(msg.as_bytes(), next.local_addr()).expect("send");
            let got = next.recv_timeout(WAIT);
            assert_eq!(
                got,
                Some((msg.into_bytes(), ep.local_addr())),
                "{role:?} -> {next_role:?} over {family:?}"
            );
        }
    }
    // A socket opened in a namespace stays there: the caller's address is not on the host.
    assert!(
        std::net::UdpSocket::bind((topo.v4(Role::Caller), 0)).is_err(),
        "the caller's address is on the host"
    );
    let out = topo
        .run_in(
            &topo.lan(),
            "ip",
            &["-d", "link", "show", &Topology::lan_ifname(Role::Relay)],
        )
        .expect("ip link show");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("xdp"),
        "no XDP_PASS program on the relay's bridge port: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let names: Vec<String> = std::iter::once(topo.lan())
        .chain(Role::ALL.map(|r| topo.ns(r)))
        .collect();
    for n in &names {
        assert!(Path::new("/run/netns").join(n).exists(), "{n} missing");
    }
    drop(topo);
    for n in &names {
        assert!(!Path::new("/run/netns").join(n).exists(), "{n} left behind");
    }
}

#[test]
fn metric_sum_adds_the_labelled_samples_of_one_name() {
    let text = "# HELP x_total y\nx_total{a=\"1\"} 2\nx_total{a=\"2\"} 3\nx_total_more 7\nx 9\n";
    assert_eq!(metric_sum(text, "x_total"), Some(5.0));
    assert_eq!(metric_sum(text, "x"), Some(9.0));
    assert_eq!(metric_sum(text, "y"), None);
}

/// The premise of "arrival proves a valid checksum": in this topology the receiving kernel drops a UDP
/// datagram whose checksum is wrong (and takes one without a checksum, which IPv4 allows).
#[test]
fn topology_drops_a_bad_udp_checksum_at_the_far_end() {
    let Some(topo) = Topology::new() else { return };
    let callee = topo.media(Role::Callee, Family::V4, CALLER_PORT);
    let to = callee.local_addr();
    let payload = b"abcd";
    let udp = |checksum| RawUdp {
        len: 8 + payload.len() as u16,
        checksum,
        payload,
        header_bytes: 8,
    };
    // The right checksum, computed from scratch by the test kit, and a wrong one that cannot be
    // right by chance.
    let mut header = Vec::new();
    for w in [CALLER_PORT, to.port(), 8 + payload.len() as u16, 0] {
        header.extend_from_slice(&w.to_be_bytes());
    }
    let from = topo.addr(Role::Caller, Family::V4);
    let good = udp_checksum(from, to.ip(), &[header, payload.to_vec()].concat());
    // One bit flipped: the sum is off by 0x100 (never 0 modulo 0xffff), and never 0 itself
    // (which means "no checksum").
    let bad = good ^ if good == 0x0100 { 0x0200 } else { 0x0100 };
    send_raw_udp(&topo, to, udp(bad));
    assert_silent(&callee, QUIET, "a datagram with a bad checksum arrived");
    send_raw_udp(&topo, to, udp(good));
    let got = callee.recv_timeout(WAIT).map(|(d, _)| d);
    assert_eq!(
        got.as_deref(),
        Some(&payload[..]),
        "a datagram with the right checksum"
    );
    send_raw_udp(&topo, to, udp(0));
    let got = callee.recv_timeout(WAIT).map(|(d, _)| d);
    assert_eq!(
        got.as_deref(),
        Some(&payload[..]),
        "a datagram without checksum"
    );
}

/// The XDP pitfalls are handled: a frame sent back with `XDP_TX` from the relay's veth reaches the
/// caller (the bridge-side peer runs `XDP_PASS`), with valid checksums, over IPv4 and IPv6. Uses a tiny
/// reflector program of the harness, not the relay's.
#[test]
fn topology_delivers_frames_sent_with_xdp_tx_from_the_relays_veth() {
    let Some(topo) = Topology::new() else { return };
    let obj = common::netns::bpf_object("xdp_reflect").unwrap_or_else(|e| panic!("{e}"));
    topo.attach_xdp(&topo.ns(Role::Relay), PARTY_IF, &obj)
        .unwrap_or_else(|e| panic!("{e}"));
    for family in [Family::V4, Family::V6] {
        let caller = topo.media(Role::Caller, family, CALLER_PORT);
        let relay = SocketAddr::new(topo.addr(Role::Relay, family), 7777);
        let pkts = rtp_batch(SSRC_CALLER, 0, 20);
        relay_and_expect(&caller, relay, &pkts, &caller, relay, "reflected by XDP_TX");
    }
}
