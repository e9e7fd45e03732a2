//! The namespace pair the AF_XDP tests run on (here and in the AF_XDP plane's tests): a veth
//! with addresses and static neighbours both ways, the relay's program and AF_XDP socket on
//! veth0, and a caller on the peer side.
#![allow(clippy::unwrap_used)]

use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::XskSocket;
use crate::sys::netns::run_in;
use crate::sys::xdp::tests::{foreign_pass_program, xdp_attach_raw};
use crate::sys::xdp::{ifindex, XdpProgram};
use crate::testkit::netns::{ip, veth_pair, NsGuard};

/// The relay's address and first media port.
pub(crate) const RELAY: &str = "192.0.2.1:30000";
/// The caller, on the peer side.
pub(crate) const PEER: &str = "192.0.2.2:4000";

/// relay ns: veth0 192.0.2.1, 2001:db8:1::1; peer ns: veth1 192.0.2.2, 2001:db8:1::2; static
/// neighbours both ways. Both namespaces are deleted on drop.
pub(crate) fn topology(prefix: &str) -> (NsGuard, NsGuard) {
    let (relay, peer) = veth_pair(prefix);
    ip(&[
        "-n",
        &relay.0,
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "veth0",
        "nodad",
    ]);
    ip(&[
        "-n",
        &peer.0,
        "addr",
        "add",
        "2001:db8:1::2/64",
        "dev",
        "veth1",
        "nodad",
    ]);
    ip(&["-n", &peer.0, "addr", "add", "192.0.2.2/24", "dev", "veth1"]);
    ip(&["-n", &peer.0, "link", "set", "veth1", "up"]);
    for (ns, addr, mac, dev) in [
        (&relay.0, "192.0.2.2", "02:00:00:00:01:02", "veth0"),
        (&peer.0, "192.0.2.1", "02:00:00:00:01:01", "veth1"),
        (&relay.0, "2001:db8:1::2", "02:00:00:00:01:02", "veth0"),
        (&peer.0, "2001:db8:1::1", "02:00:00:00:01:01", "veth1"),
    ] {
        ip(&[
            "-n",
            ns,
            "neigh",
            "add",
            addr,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }

    (relay, peer)
}

/// In the relay namespace: the XDP program on veth0 with an AF_XDP socket on its queue 0 that
/// takes relay ports 30000-30099.
pub(crate) fn relay_afxdp(relay: &NsGuard) -> (XdpProgram, XskSocket) {
    run_in(&relay.0, || {
        let veth0 = ifindex("veth0").unwrap();
        let program = XdpProgram::load_and_attach(&[veth0]).unwrap();
        let xsk = XskSocket::bind(veth0, 0, 64, 2048).unwrap();
        let table = program.table();
        table.set_port_range(30000, 30099).unwrap();
        table.register_xsk(veth0, 0, xsk.as_fd()).unwrap();
        table.set_afxdp(true).unwrap();
        (program, xsk)
    })
    .unwrap()
}

/// In the peer namespace: a caller bound at [`PEER`] (2 s read timeout), and the XDP_PASS
/// program on veth1 that keeps frames sent into the pair from being dropped (hold it).
pub(crate) fn peer_caller(peer: &NsGuard) -> (UdpSocket, OwnedFd) {
    run_in(&peer.0, || {
        let pass = foreign_pass_program();
        xdp_attach_raw(ifindex("veth1").unwrap(), pass.as_raw_fd());
        let caller = UdpSocket::bind(PEER).unwrap();
        caller
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        (caller, pass)
    })
    .unwrap()
}

/// Waits until `n` frames are in the socket's rx ring (they are not taken off it).
pub(crate) fn wait_for(xsk: &XskSocket, n: u32, wait: Duration) {
    let deadline = Instant::now() + wait;
    while xsk.rx_available() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
