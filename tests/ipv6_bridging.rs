//! IPv4 ↔ IPv6 bridging over real sockets: the caller speaks IPv4, the callee IPv6, and the relay
//! (with one IPv4 and one IPv6 interface address under the same name) joins them when the offer
//! asks for `address family: IP6`.

mod common;

use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use common::bencode::{dict, get_str};
use common::call::*;
use common::media::{MediaEndpoint, RtpPacket};
use common::ng::expect_ok;
use common::ports::PortBlock;
use common::relay::{Relay, RelayKind};
use common::sdp::sdp_media_endpoint;

fn sdp(family: &str, addr: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN {family} {addr}\r\ns=-\r\nc=IN {family} {addr}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=sendrecv\r\n"
    )
}

#[test]
fn ipv4_caller_and_ipv6_callee_exchange_media() {
    if std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this host");
        return;
    }
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &["-i", "::1"]);
    let ng = relay.client();
    let a = MediaEndpoint::bind(SocketAddr::new(LO.into(), ports.port(0))).expect("bind A");
    let b = MediaEndpoint::bind(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), ports.port(2)))
        .expect("bind B");

    let offer = expect_ok(
        ng.request(dict([
            ("command", "offer".into()),
            ("call-id", "v4v6".into()),
            ("from-tag", "tag-a".into()),
            ("address family", "IP6".into()),
            ("sdp", sdp("IP4", "127.0.0.1", a.local_addr().port()).into()),
        ])),
        "offer",
    );
    let offer_sdp = get_str(&offer, "sdp").expect("sdp").to_owned();
    assert!(offer_sdp.contains("c=IN IP6 ::1\r\n"), "{offer_sdp}");
    let b_to = sdp_media_endpoint(&offer_sdp).expect("endpoint");
    assert!(b_to.is_ipv6());

    let answer = expect_ok(
        ng.request(dict([
            ("command", "answer".into()),
            ("call-id", "v4v6".into()),
            ("from-tag", "tag-a".into()),
            ("to-tag", "tag-b".into()),
            ("sdp", sdp("IP6", "::1", b.local_addr().port()).into()),
        ])),
        "answer",
    );
    let answer_sdp = get_str(&answer, "sdp").expect("sdp").to_owned();
    assert!(
        answer_sdp.contains("c=IN IP4 127.0.0.1\r\n"),
        "{answer_sdp}"
    );
    let a_to = sdp_media_endpoint(&answer_sdp).expect("endpoint");
    assert!(a_to.is_ipv4());

    let wait = Duration::from_secs(2);
    let to_b: Vec<Vec<u8>> = (0..5)
        .map(|n| RtpPacket::pcmu(0x4646, n).to_bytes())
        .collect();
    relay_and_expect(&a, a_to, &to_b, &b, b_to, wait, "IPv4 -> IPv6");
    let to_a: Vec<Vec<u8>> = (0..5)
        .map(|n| RtpPacket::pcmu(0x6464, n).to_bytes())
        .collect();
    relay_and_expect(&b, b_to, &to_a, &a, a_to, wait, "IPv6 -> IPv4");
}
