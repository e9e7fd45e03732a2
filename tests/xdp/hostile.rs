//! Hostile input: malformed UDP neither crashes the relay nor leaks, and an on-link spoofer of a
//! peer's address gets none of its offloaded media.

use super::*;

/// A hand-made UDP header (length and checksum as given) and payload, cut to `header_bytes` of header.
pub(super) struct RawUdp<'a> {
    pub(super) len: u16,
    pub(super) checksum: u16,
    pub(super) payload: &'a [u8],
    pub(super) header_bytes: usize,
}

/// Sends `dgram` over a raw socket from the caller's namespace, with the caller's RTP port as source (so
/// it matches the caller's flow): headers the socket API cannot make.
pub(super) fn send_raw_udp(topo: &Topology, to: SocketAddr, dgram: RawUdp) {
    let SocketAddr::V4(to) = to else {
        panic!("raw UDP is sent over IPv4 only")
    };
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&CALLER_PORT.to_be_bytes());
    bytes.extend_from_slice(&to.port().to_be_bytes());
    bytes.extend_from_slice(&dgram.len.to_be_bytes());
    bytes.extend_from_slice(&dgram.checksum.to_be_bytes());
    bytes.truncate(dgram.header_bytes);
    bytes.extend_from_slice(dgram.payload);
    let dest = SocketAddrV4::new(*to.ip(), 0);
    in_ns(&topo.ns(Role::Caller), move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP))?;
        s.send_to(&bytes, &dest.into()).map(|_| ())
    })
    .and_then(|r| r)
    .unwrap_or_else(|e| panic!("raw UDP to {to}: {e}"));
}

/// A well-formed header (no checksum) with `len` bytes claimed, cut to `header_bytes`.
fn raw(len: u16, payload: &[u8], header_bytes: usize) -> RawUdp<'_> {
    RawUdp {
        len,
        checksum: 0,
        payload,
        header_bytes,
    }
}

#[test]
fn xdp_malformed_packets_neither_crash_nor_leak() {
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    let mut relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    warm_up(&call);
    if mode.xdp() {
        wait_offloaded(&relay, 4.0);
    }
    let good = RtpPacket::pcmu(SSRC_CALLER, 7).to_bytes();
    let with_first = |b: u8| {
        let mut p = good.clone();
        p[0] = b;
        p
    };
    let mut bad_rtcp = rtcp_sr(SSRC_CALLER, 1);
    bad_rtcp[0] = 0x40; // version 1
    let mut long_rtcp = rtcp_rr(SSRC_CALLER);
    long_rtcp[3] = 60; // length beyond the datagram
    let garbage: Vec<(SocketAddr, Vec<u8>)> = [
        Vec::new(),
        vec![0x80],
        good[..11].to_vec(),
        b"not RTP at all, just some bytes from a confused peer".to_vec(),
        with_first(0x00), // version 0
        with_first(0x40), // version 1
        with_first(0xc0), // version 3
    ]
    .into_iter()
    .map(|p| (call.caller_to, p))
    .chain([
        (rtcp_of(call.caller_to), Vec::new()),
        (rtcp_of(call.caller_to), vec![0x80, 200, 0]),
        (rtcp_of(call.caller_to), bad_rtcp),
        (rtcp_of(call.caller_to), long_rtcp),
        (rtcp_of(call.caller_to), good.clone()), // RTP on the RTCP port: no RTCP type
    ])
    .collect();
    for (to, p) in &garbage {
        let from = if to.port() == call.caller_to.port() {
            &call.caller.rtp
        } else {
            &call.caller.rtcp
        };
        from.send_to(p, *to).expect("send garbage");
    }
    // Headers no socket would make, from the caller's own address and port (so the flow key matches).
    let payload = &good[..20];
    send_raw_udp(&topo, call.caller_to, raw(200, payload, 8)); // UDP length beyond the packet
    send_raw_udp(&topo, call.caller_to, raw(4, payload, 8)); // UDP length below its header
    send_raw_udp(&topo, call.caller_to, raw(8, &[], 8)); // no payload at all
    send_raw_udp(&topo, call.caller_to, raw(0, &[], 4)); // a truncated UDP header
    assert_silent(&call.callee.rtp, QUIET, "malformed RTP leaked through");
    assert_silent(&call.callee.rtcp, QUIET, "malformed RTCP leaked through");
    assert!(relay.is_running(), "relay died:\n{}", relay.log_tail(30));
    common::expect_ok(relay.ng().ping(), "ping after malformed input");
    exchange(&call, 1, 5, 5, 1);
}

// ---- an on-link spoofer (security issue 11, point 4) ----

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
fn endpoint_in(ns: &str, addr: SocketAddr) -> MediaEndpoint {
    in_ns(ns, move || MediaEndpoint::bind(addr))
        .and_then(|r| r)
        .unwrap_or_else(|e| panic!("bind {addr} in {ns}: {e}"))
}

/// Datagrams waiting on `ep` are thrown away.
fn drain(ep: &MediaEndpoint) {
    while ep.recv_timeout(Duration::from_millis(50)).is_some() {}
}

/// The spoofer (the injector's namespace) takes the caller's address without ever announcing it:
/// it answers no ARP and has a static entry for the relay, so that it never asks either. (Poisoning
/// the relay's neighbour table would be ARP spoofing, which no data plane can tell from the truth.)
/// Whatever the relay sent to the spoofer's MAC for the caller would then reach its sockets.
fn silently_take_the_callers_address(topo: &Topology, caller: std::net::IpAddr) {
    let ns = topo.ns(Role::Injector);
    must_run(
        topo,
        &ns,
        "sysctl",
        &["-q", "-w", "net.ipv4.conf.all.arp_ignore=8"],
    );
    let relay = topo.v4(Role::Relay).to_string();
    let relay_mac = mac_of(topo, Role::Relay);
    must_run(
        topo,
        &ns,
        "ip",
        &[
            "neigh",
            "replace",
            &relay,
            "lladdr",
            &relay_mac,
            "dev",
            PARTY_IF,
            "nud",
            "permanent",
        ],
    );
    let addr = format!("{caller}/32");
    must_run(topo, &ns, "ip", &["addr", "add", &addr, "dev", PARTY_IF]);
}

/// An on-link host that forges a peer's address cannot pull that peer's offloaded media to its own
/// MAC. Forwarding is off in the relay's namespace, as on most hosts that are not routers, so the
/// kernel's route lookup cannot answer for the XDP program and it sends by its fallback next hops:
/// the very next hops a spoofer would want to move. Once the call is offloaded, the spoofer sends
/// media with the caller's address from another port, to relay ports without a flow, and from the
/// caller's exact address and port (which strict source lets through). The callee's media for the
/// caller keeps arriving at the caller, all of it, for longer than the program caches a next hop;
/// none reaches the spoofer.
#[test]
fn xdp_an_on_link_spoofer_of_a_peers_address_gets_none_of_its_media() {
    const SSRC_SPOOF: u32 = 0x5b00f;
    // Rounds of the callee's media after the forgeries, each after a pause: together longer than
    // the program's per-CPU next-hop cache (one second), so a moved next hop would show.
    const ROUNDS: u16 = 4;
    const PAUSE: Duration = Duration::from_millis(500);
    let mode = Mode::from_env();
    let Some(topo) = Topology::new() else { return };
    must_run(
        &topo,
        &topo.ns(Role::Relay),
        "sysctl",
        &["-q", "-w", "net.ipv4.conf.all.forwarding=0"],
    );
    let relay = mode.start(&topo, "--dataplane=xdp", &[]);
    let call = NsCall::setup(relay.ng(), &topo, Family::V4, &[]);
    let (caller, callee) = (&call.caller, &call.callee);
    let (caller_rtcp_to, callee_rtcp_to) = (rtcp_of(call.caller_to), rtcp_of(call.callee_to));
    // The callee's media for the caller: RTP batch `n` of `count`, and one RTCP report.
    let to_caller = |n: u16, count: u16| {
        let pkts = rtp_batch(SSRC_CALLEE, 1000 * n, count);
        relay_and_expect(
            &callee.rtp,
            call.callee_to,
            &pkts,
            &caller.rtp,
            call.caller_to,
            "RTP callee->caller",
        );
        let rtcp = [rtcp_rr(SSRC_CALLEE + u32::from(n))];
        relay_and_expect(
            &callee.rtcp,
            callee_rtcp_to,
            &rtcp,
            &caller.rtcp,
            caller_rtcp_to,
            "RTCP callee->caller",
        );
        f64::from(count) + 1.0
    };
    warm_up(&call);
    if mode.offloads() {
        wait_offloaded(&relay, 4.0);
        // With forwarding off, the kernel forwards by its fallback next hops.
        let f0 = relay.metric(FORWARDED);
        let sent = to_caller(1, 20);
        assert_eq!(
            wait_growth(&relay, FORWARDED, f0, sent),
            sent,
            "not forwarded by the kernel's fallback next hops"
        );
    } else {
        to_caller(1, 20);
    }

    let caller_ip = caller.addr().ip();
    silently_take_the_callers_address(&topo, caller_ip);
    let spoof_ns = topo.ns(Role::Injector);
    let at = |port| SocketAddr::new(caller_ip, port);
    let spoof_rtp = endpoint_in(&spoof_ns, at(CALLER_PORT));
    let spoof_rtcp = endpoint_in(&spoof_ns, at(CALLER_PORT + 1));
    let spoof_other = endpoint_in(&spoof_ns, at(CALLER_PORT + 7));
    let call_ports = [
        call.caller_to.port(),
        caller_rtcp_to.port(),
        call.callee_to.port(),
        callee_rtcp_to.port(),
    ];
    let no_flow: Vec<SocketAddr> = (common::ns_relay::PORT_MIN..=common::ns_relay::PORT_MAX)
        .filter(|p| !call_ports.contains(p))
        .step_by(97)
        .map(|p| SocketAddr::new(call.caller_to.ip(), p))
        .collect();
    for p in rtp_batch(SSRC_SPOOF, 0, 5) {
        // The caller's address, another port: strict source refuses it.
        spoof_other.send_to(&p, call.caller_to).expect("forge");
        // The caller's address and port, to relay ports without a flow.
        for &to in &no_flow {
            spoof_rtp.send_to(&p, to).expect("forge");
        }
        // The caller's exact address and port: by address no different from the caller, relayed
        // to the callee as the caller's media would be.
        spoof_rtp.send_to(&p, call.caller_to).expect("forge");
        spoof_rtcp
            .send_to(&rtcp_rr(SSRC_SPOOF), caller_rtcp_to)
            .expect("forge");
    }

    let f0 = if mode.offloads() {
        relay.metric(FORWARDED)
    } else {
        0.0
    };
    let mut sent = 0.0;
    for round in 0..ROUNDS {
        std::thread::sleep(PAUSE);
        sent += to_caller(2 + round, 10);
    }
    for (ep, what) in [
        (&spoof_rtp, "RTP"),
        (&spoof_rtcp, "RTCP"),
        (&spoof_other, "another port"),
    ] {
        assert_silent(
            ep,
            QUIET,
            &format!("the spoofer got the caller's media ({what})"),
        );
    }
    if mode.offloads() {
        let forwarded = wait_growth(&relay, FORWARDED, f0, sent);
        assert!(
            forwarded >= sent,
            "the callee's media left the kernel path after the forgeries ({forwarded} of {sent})"
        );
    }
    // The caller's own media still reaches the callee, past what the forgeries injected.
    drain(&callee.rtp);
    drain(&callee.rtcp);
    relay_and_expect(
        &caller.rtp,
        call.caller_to,
        &rtp_batch(SSRC_CALLER, 9000, 10),
        &callee.rtp,
        call.callee_to,
        "RTP caller->callee after the forgeries",
    );
}
