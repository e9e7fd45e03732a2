//! An AF_XDP socket on a veth in a fresh namespace pair: relay-port UDP reaches it (and not
//! the UDP socket on that port) only while the AF_XDP flag is on, and frames it transmits,
//! copied or in place, reach the peer. Needs root: without it the tests skip through
//! [`crate::testkit::skip_unless`] (a failure under `RTPRELAY_E2E=1`). Checksums and veth pairs
//! come from [`crate::testkit`].
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use super::*;
use crate::sys::netns::run_in;
use crate::sys::xdp::tests::{can_load, with_skel};
use crate::sys::xdp::{ifindex, XdpError, XdpProgram};
use crate::testkit::checksum::{fold, sum16};
use crate::testkit::netns::ip;
use crate::wire::frame::at;
use crate::wire::frame::field::{eth, ipv4, udp};

use super::test_topology::{peer_caller, topology, PEER, RELAY};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Where the headers of an untagged IPv4/UDP frame without options start, and its payload.
const IP: usize = eth::HEADER_LEN;
const UDP: usize = IP + ipv4::HEADER_LEN;
const PAYLOAD: usize = UDP + udp::HEADER_LEN;

/// Turn a received frame around: swap MACs, addresses and ports, recompute both checksums
/// (the sender's veth leaves a partial UDP checksum).
fn turn_around(f: &mut [u8]) {
    swap(f, eth::DESTINATION, eth::SOURCE);
    swap(f, at(IP, ipv4::SRC_ADDR), at(IP, ipv4::DST_ADDR));
    swap(f, at(UDP, udp::SRC_PORT), at(UDP, udp::DST_PORT));
    f[at(IP, ipv4::CHECKSUM)].fill(0);
    let c = !fold(sum16(&f[IP..UDP]));
    f[at(IP, ipv4::CHECKSUM)].copy_from_slice(&c.to_be_bytes());
    let ulen = u16::from_be_bytes(f[at(UDP, udp::LENGTH)].try_into().unwrap());
    f[at(UDP, udp::CHECKSUM)].fill(0);
    let mut pseudo = f[at(IP, ipv4::SRC_ADDR).start..at(IP, ipv4::DST_ADDR).end].to_vec();
    pseudo.extend_from_slice(&[0, udp::PROTOCOL]);
    pseudo.extend_from_slice(&ulen.to_be_bytes());
    let end = UDP + usize::from(ulen);
    let c = !fold(sum16(&pseudo) + sum16(&f[UDP..end]));
    let c = if c == 0 { 0xffff } else { c };
    f[at(UDP, udp::CHECKSUM)].copy_from_slice(&c.to_be_bytes());
}

/// Swap two fields of the same length.
fn swap(f: &mut [u8], a: std::ops::Range<usize>, b: std::ops::Range<usize>) {
    for (i, j) in a.zip(b) {
        f.swap(i, j);
    }
}

/// Frames (copies) received on `xsk` within `wait`, stopping at the first batch.
fn receive(xsk: &mut XskSocket, wait: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    while got.is_empty() && Instant::now() < deadline {
        xsk.recv(16, |f| got.push(f.to_vec()));
        std::thread::sleep(Duration::from_millis(5));
    }
    got
}

/// The XDP program and the AF_XDP socket on the relay's veth0; an XDP_PASS program on the
/// peer's veth1, so frames sent into the pair are not dropped.
#[test]
fn relay_ports_reach_the_xsk_only_with_the_flag_and_it_transmits() {
    if !can_load() {
        return;
    }
    let (relay, peer) = topology("rtprelay-xsk");
    let (program, mut xsk, relay_udp, veth0) = run_in(&relay.0, || {
        let veth0 = ifindex("veth0").unwrap();
        let program = XdpProgram::load_and_attach(&[veth0]).unwrap();
        let xsk = XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        let udp = UdpSocket::bind(RELAY).unwrap();
        udp.set_nonblocking(true).unwrap();
        (program, xsk, udp, veth0)
    })
    .unwrap();
    assert_eq!((xsk.ifindex(), xsk.queue()), (veth0, 0));
    // Zero-copy was tried first and refused: veth has copy mode only.
    assert!(!xsk.zero_copy(), "veth has no zero-copy AF_XDP");
    let refused = xsk.zero_copy_refused().unwrap_or_default();
    assert!(refused.contains("zero-copy"), "{refused}");
    assert!(xsk.as_raw_fd() >= 0);
    assert_eq!((xsk.frames(), xsk.umem_bytes()), (64, 64 * 2048));
    // Larger than a frame: refused, nothing queued.
    assert!(!xsk.send(&[0u8; 2049]));
    let table = program.table();
    table.set_port_range(30000, 30099).unwrap();
    table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
    table.set_afxdp(true).unwrap();

    let (caller, _pass) = peer_caller(&peer);
    let mut buf = [0u8; 2048];

    // 1: to the XSK, not the UDP socket; sent back as a copy.
    caller.send_to(b"first", RELAY).unwrap();
    let frames = receive(&mut xsk, Duration::from_secs(2));
    assert_eq!(
        frames.len(),
        1,
        "the datagram did not reach the AF_XDP socket"
    );
    let mut f = frames[0].clone();
    assert_eq!(&f[at(UDP, udp::DST_PORT)], &30000u16.to_be_bytes());
    assert_eq!(&f[PAYLOAD..PAYLOAD + 5], b"first");
    assert!(
        relay_udp.recv_from(&mut buf).is_err(),
        "it reached the UDP socket too"
    );
    turn_around(&mut f);
    assert!(xsk.send(&f));
    // Queued only: in copy mode nothing leaves until the kick.
    caller
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(caller.recv_from(&mut buf).is_err(), "sent before flush");
    caller
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    xsk.flush();
    let (len, from) = caller.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..len], from), (&b"first"[..], sa(RELAY)));

    // 2: turned around in place.
    caller.send_to(b"second", RELAY).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut forwarded = 0;
    while forwarded == 0 && Instant::now() < deadline {
        forwarded = xsk.forward(16, |f| {
            turn_around(f);
            true
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(forwarded, 1);
    let (len, from) = caller.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..len], from), (&b"second"[..], sa(RELAY)));
    assert_eq!(table.stats().unwrap().redirected, 2);

    // Many round trips: frames are recycled and completions reaped (more than the UMEM holds).
    for i in 0..200u32 {
        let msg = i.to_be_bytes();
        caller.send_to(&msg, RELAY).unwrap();
        let frames = receive(&mut xsk, Duration::from_secs(2));
        assert_eq!(frames.len(), 1, "round trip {i}");
        let mut f = frames[0].clone();
        turn_around(&mut f);
        assert!(xsk.send(&f), "round trip {i}: no free frame");
        xsk.flush();
        let (len, _) = caller.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], &msg);
    }

    // Flag off: the same datagram goes to the UDP socket, and the XSK sees nothing.
    table.set_afxdp(false).unwrap();
    caller.send_to(b"third", RELAY).unwrap();
    relay_udp.set_nonblocking(false).unwrap();
    relay_udp
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let (len, from) = relay_udp.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..len], from), (&b"third"[..], sa(PEER)));
    assert!(receive(&mut xsk, Duration::from_millis(100)).is_empty());

    // Flag on but the queue unregistered: the stack again.
    table.set_afxdp(true).unwrap();
    table.unregister_xsk(veth0, 0).unwrap();
    table.unregister_xsk(veth0, 0).unwrap();
    caller.send_to(b"fourth", RELAY).unwrap();
    let (len, _) = relay_udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"fourth");
    assert!(receive(&mut xsk, Duration::from_millis(100)).is_empty());

    // Outside the port range: the stack, even when registered.
    table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
    table.set_port_range(31000, 31099).unwrap();
    caller.send_to(b"fifth", RELAY).unwrap();
    let (len, _) = relay_udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"fifth");
    assert!(receive(&mut xsk, Duration::from_millis(100)).is_empty());
    assert_eq!(table.stats().unwrap().redirected, 202);
    drop(xsk);
    // Detach from inside the namespace: the ifindex means another device outside it.
    run_in(&relay.0, move || drop(program)).unwrap();
}

/// Frames left unread fill the socket's rings: the kernel's counters say so.
#[test]
fn the_kernel_counts_what_a_full_socket_drops() {
    if !can_load() {
        return;
    }
    let (relay, peer) = topology("rtprelay-xsk");
    let (program, mut xsk, veth0) = run_in(&relay.0, || {
        let veth0 = ifindex("veth0").unwrap();
        let program = XdpProgram::load_and_attach(&[veth0]).unwrap();
        let xsk = XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        (program, xsk, veth0)
    })
    .unwrap();
    assert_eq!(xsk.stats(), Some(XskStats::default()));
    let table = program.table();
    table.set_port_range(30000, 30099).unwrap();
    table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
    table.set_afxdp(true).unwrap();
    let (caller, _pass) = peer_caller(&peer);
    for _ in 0..300 {
        caller.send_to(b"unread", RELAY).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut st = XskStats::default();
    while st.rx_dropped == 0 && Instant::now() < deadline {
        st = xsk.stats().unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(st.rx_dropped > 0, "{st:?}");
    assert!(st.rx_fill_ring_empty_descs + st.rx_ring_full > 0, "{st:?}");
    // Reading frees room again.
    assert!(!receive(&mut xsk, Duration::from_secs(1)).is_empty());
    drop(xsk);
    run_in(&relay.0, move || drop(program)).unwrap();
}

#[test]
fn bad_configuration_is_refused() {
    for (frames, size) in [(63, 2048), (1, 2048), (64, 1000), (64, 8192)] {
        assert!(matches!(
            XskSocket::bind(1, 0, frames, size),
            Err(XskError::Config(_))
        ));
    }
}

#[test]
fn register_checks_queue_and_socket() {
    with_skel(|_, table| {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Past RTPRELAY_MAX_QUEUES: refused before the kernel is asked.
        assert!(matches!(
            table.register_xsk(1, 64, sock.as_fd()),
            Err(XdpError::Map(m)) if m.contains("beyond")
        ));
        // Not an AF_XDP socket: the kernel refuses.
        assert!(table.register_xsk(1, 0, sock.as_fd()).is_err());
        assert!(table.unregister_xsk(1, 64).is_ok());
        assert!(table.unregister_xsk(1, 0).is_ok());
        assert!(
            table.unregister_xsk(999, 0).is_ok(),
            "a device never registered"
        );
        // RTPRELAY_MAX_DEVICES devices get a slot (device 1 has one already); the next not.
        for dev in 2..=16 {
            assert!(table.register_xsk(dev, 0, sock.as_fd()).is_err());
        }
        assert!(matches!(
            table.register_xsk(17, 0, sock.as_fd()),
            Err(XdpError::Map(m)) if m.contains("at most 16 devices")
        ));
        table.set_afxdp(true).unwrap();
        table.set_port_range(1, 2).unwrap();
        table.set_afxdp(false).unwrap();
    });
}

/// IPv6 datagrams to the relay's ports take the same way.
#[test]
fn ipv6_relay_ports_reach_the_xsk() {
    if !can_load() {
        return;
    }
    let (relay, peer) = topology("rtprelay-xsk");
    let (program, mut xsk, relay_udp, veth0) = run_in(&relay.0, || {
        let veth0 = ifindex("veth0").unwrap();
        let program = XdpProgram::load_and_attach(&[veth0]).unwrap();
        let xsk = XskSocket::bind(veth0, 0, 64, 4096).unwrap();
        let udp = UdpSocket::bind("[2001:db8:1::1]:30000").unwrap();
        udp.set_nonblocking(true).unwrap();
        (program, xsk, udp, veth0)
    })
    .unwrap();
    let table = program.table();
    table.set_port_range(30000, 30099).unwrap();
    table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
    table.set_afxdp(true).unwrap();
    let caller = run_in(&peer.0, || UdpSocket::bind("[2001:db8:1::2]:4000").unwrap()).unwrap();
    caller.send_to(b"six", "[2001:db8:1::1]:30000").unwrap();
    let frames = receive(&mut xsk, Duration::from_secs(2));
    assert_eq!(
        frames.len(),
        1,
        "the datagram did not reach the AF_XDP socket"
    );
    let f = &frames[0];
    // Ethernet, IPv6 (40 bytes), UDP to port 30000, the payload.
    assert_eq!(&f[12..14], &[0x86, 0xdd]);
    assert_eq!(&f[14 + 40 + 2..14 + 40 + 4], &30000u16.to_be_bytes());
    assert_eq!(&f[14 + 48..], b"six");
    let mut buf = [0u8; 64];
    assert!(
        relay_udp.recv_from(&mut buf).is_err(),
        "it reached the UDP socket too"
    );
    assert_eq!(table.stats().unwrap().redirected, 1);
    drop(xsk);
    run_in(&relay.0, move || drop(program)).unwrap();
}

/// Two devices under one program: each device's sockets get that device's frames only (the
/// socket map is keyed by device slot and queue), and a device with no socket registered
/// passes its relay-port packets to the stack.
#[test]
fn each_device_reaches_its_own_sockets() {
    if !can_load() {
        return;
    }
    let (relay, peer) = topology("rtprelay-xsk");
    // A second link between the same namespaces: veth2 (relay) <-> veth3 (peer).
    ip(&[
        "-n", &relay.0, "link", "add", "veth2", "type", "veth", "peer", "name", "veth3", "netns",
        &peer.0,
    ]);
    ip(&[
        "-n",
        &relay.0,
        "addr",
        "add",
        "198.51.100.1/24",
        "dev",
        "veth2",
    ]);
    ip(&[
        "-n",
        &peer.0,
        "addr",
        "add",
        "198.51.100.2/24",
        "dev",
        "veth3",
    ]);
    ip(&["-n", &relay.0, "link", "set", "veth2", "up"]);
    ip(&["-n", &peer.0, "link", "set", "veth3", "up"]);
    const RELAY2: &str = "198.51.100.1:30000";
    let (program, mut xsk0, mut xsk2, udp2, devs) = run_in(&relay.0, || {
        let (veth0, veth2) = (ifindex("veth0").unwrap(), ifindex("veth2").unwrap());
        let program = XdpProgram::load_and_attach(&[veth0, veth2]).unwrap();
        let xsk0 = XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        let xsk2 = XskSocket::bind(veth2, 0, 64, 2048).unwrap();
        let udp2 = UdpSocket::bind(RELAY2).unwrap();
        udp2.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        (program, xsk0, xsk2, udp2, (veth0, veth2))
    })
    .unwrap();
    let table = program.table();
    table.set_port_range(30000, 30099).unwrap();
    table.register_xsk(devs.0, 0, xsk0.as_fd()).unwrap();
    table.set_afxdp(true).unwrap();
    let caller = run_in(&peer.0, || UdpSocket::bind("0.0.0.0:4000").unwrap()).unwrap();
    let mut buf = [0u8; 64];

    // veth2 has no socket yet: its relay-port packets go to the stack, not to veth0's socket.
    caller.send_to(b"to-2-stack", RELAY2).unwrap();
    let (len, _) = udp2.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"to-2-stack");
    assert!(receive(&mut xsk0, Duration::from_millis(100)).is_empty());

    table.register_xsk(devs.1, 0, xsk2.as_fd()).unwrap();
    for (to, payload) in [(RELAY, &b"to-0"[..]), (RELAY2, &b"to-2"[..])] {
        caller.send_to(payload, to).unwrap();
    }
    let got0 = receive(&mut xsk0, Duration::from_secs(2));
    let got2 = receive(&mut xsk2, Duration::from_secs(2));
    assert_eq!(got0.len(), 1, "veth0's socket: {got0:?}");
    assert_eq!(&got0[0][PAYLOAD..], b"to-0");
    assert_eq!(got2.len(), 1, "veth2's socket: {got2:?}");
    assert_eq!(&got2[0][PAYLOAD..], b"to-2");
    assert!(receive(&mut xsk0, Duration::from_millis(100)).is_empty());
    assert_eq!(table.stats().unwrap().redirected, 2);
    drop((xsk0, xsk2));
    run_in(&relay.0, move || drop(program)).unwrap();
}
