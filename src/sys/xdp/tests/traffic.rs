//! Real datagrams through an attached program between two namespaces.

#![allow(clippy::unwrap_used)]

use std::os::fd::AsRawFd;

use super::*;

#[test]
fn attached_program_relays_real_datagrams() {
    use std::net::UdpSocket;
    use std::time::Duration;

    if !can_load() {
        return;
    }
    // veth0 (relay) <-> veth1 (peer, two addresses: the caller .2 and the callee .3). The
    // sender keeps TX checksum offload on, so frames arrive with a partial checksum.
    let (relay, peer) = veth_pair("rtprelay-xdp");
    ip(&["-n", &peer.0, "addr", "add", "192.0.2.2/24", "dev", "veth1"]);
    ip(&["-n", &peer.0, "addr", "add", "192.0.2.3/24", "dev", "veth1"]);
    ip(&["-n", &peer.0, "link", "set", "veth1", "up"]);
    ip(&[
        "-n",
        &relay.0,
        "neigh",
        "add",
        "192.0.2.3",
        "lladdr",
        "02:00:00:00:01:02",
        "dev",
        "veth0",
        "nud",
        "permanent",
    ]);
    ip(&[
        "netns",
        "exec",
        &relay.0,
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.conf.all.forwarding=1",
    ]);

    let program = crate::sys::netns::run_in(&relay.0, || {
        XdpProgram::load_and_attach(&[ifindex("veth0").unwrap()]).unwrap()
    })
    .unwrap();
    assert_eq!(program.attachments()[0].mode, AttachMode::Native);
    let table = program.table();
    let slot = table
        .install(
            0,
            sa("192.0.2.1:30000"),
            &Rule {
                source: sa("192.0.2.1:30002"),
                dest: sa("192.0.2.3:5000"),
                expect: Some(sa("192.0.2.2:4000")),
                kind: RuleKind::Rtp,
                block: None,
            },
        )
        .unwrap();
    // Frames XDP_TXed into a veth are dropped unless its peer runs XDP: a pass program there.
    let (caller, callee, _pass) = crate::sys::netns::run_in(&peer.0, || {
        let pass = foreign_pass_program();
        xdp_attach_raw(ifindex("veth1").unwrap(), pass.as_raw_fd());
        let caller = UdpSocket::bind("192.0.2.2:4000").unwrap();
        let callee = UdpSocket::bind("192.0.2.3:5000").unwrap();
        callee
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        (caller, callee, pass)
    })
    .unwrap();

    let mut buf = [0u8; 2048];
    for i in 0..3u8 {
        let mut pkt = rtp();
        pkt[3] = i;
        caller.send_to(&pkt, "192.0.2.1:30000").unwrap();
        // The kernel checks the UDP checksum before delivering: arriving proves it valid.
        let (len, from) = callee.recv_from(&mut buf).unwrap();
        assert_eq!(from, sa("192.0.2.1:30002"));
        assert_eq!(&buf[..len], &pkt[..]);
    }
    let t = table.totals(slot).unwrap();
    assert_eq!((t.packets, t.bytes), (3, 3 * rtp().len() as u64));
    assert_eq!(table.stats().unwrap().forwarded, 3);
    drop(program);
}
