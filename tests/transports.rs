//! NG over TCP (`--listen-tcp-ng`) and HTTP (`--listen-http`) through the real binary: TCP carries messages
//! back to back with no framing, so two in one write and one split across writes must both work; HTTP
//! answers `POST /ng` with the same cookie and `GET /ping` with `pong`; and all transports reach the same
//! calls.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::bencode::{self, Value};
use common::call::*;
use common::*;

const IO_TIMEOUT: Duration = Duration::from_secs(3);

fn framed(cookie: &str, d: common::Dict) -> Vec<u8> {
    let mut msg = format!("{cookie} ").into_bytes();
    msg.extend(bencode::encode(&Value::Dict(d)));
    msg
}

fn ping(cookie: &str) -> Vec<u8> {
    framed(cookie, dict([("command", "ping".into())]))
}

/// Splits complete `<cookie> <dict>` messages off the front of `buf`.
fn take_messages(buf: &mut Vec<u8>) -> Vec<(String, common::Dict)> {
    let mut out = Vec::new();
    loop {
        let Some(space) = buf.iter().position(|&b| b == b' ') else {
            return out;
        };
        let Ok((Value::Dict(d), used)) = bencode::decode_prefix(&buf[space + 1..]) else {
            return out;
        };
        let cookie = String::from_utf8_lossy(&buf[..space]).into_owned();
        out.push((cookie, d));
        buf.drain(..space + 1 + used);
    }
}

/// Reads replies from `s` until `n` complete messages arrived (bounded by `IO_TIMEOUT`).
fn read_replies(s: &mut TcpStream, n: usize) -> Vec<(String, common::Dict)> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut buf = Vec::new();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {} of {n} replies: {got:?}",
            got.len()
        );
        s.set_read_timeout(Some(left)).expect("read timeout");
        match s.read(&mut chunk) {
            Ok(0) => panic!("connection closed after {} of {n} replies", got.len()),
            Ok(k) => {
                buf.extend_from_slice(&chunk[..k]);
                got.extend(take_messages(&mut buf));
            }
            Err(e) => panic!("reading replies: {e} (had {got:?})"),
        }
    }
    got
}

fn tcp_relay(ports: &PortBlock) -> (Relay, SocketAddr) {
    let tcp = SocketAddr::from((LO, ports.port(14)));
    let relay = Relay::start(RelayKind::Rtprelay, ports, &["-N", &tcp.to_string()]);
    (relay, tcp)
}

#[test]
fn tcp_two_messages_in_one_write() {
    let ports = PortBlock::acquire();
    let (_relay, tcp) = tcp_relay(&ports);
    let mut s = TcpStream::connect_timeout(&tcp, IO_TIMEOUT).expect("connect NG TCP");
    let two = [ping("t1"), ping("t2")].concat();
    s.write_all(&two).expect("write");
    let replies = read_replies(&mut s, 2);
    let cookies: Vec<&str> = replies.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(cookies, ["t1", "t2"]);
    for (_, d) in &replies {
        assert_eq!(get_str(d, "result"), Some("pong"));
    }
}

#[test]
fn tcp_one_message_split_across_writes() {
    let ports = PortBlock::acquire();
    let (relay, tcp) = tcp_relay(&ports);
    let mut s = TcpStream::connect_timeout(&tcp, IO_TIMEOUT).expect("connect NG TCP");
    s.set_nodelay(true).expect("nodelay");
    let msg = framed(
        "split-1",
        dict([
            ("command", "offer".into()),
            ("call-id", "tcp-call".into()),
            ("from-tag", "tag-a".into()),
            ("sdp", sdp_offer(LO, ports.port(0)).into()),
        ]),
    );
    // Cut inside the cookie, inside the SDP string, and before the last byte.
    for part in [
        &msg[..3],
        &msg[3..60],
        &msg[60..msg.len() - 1],
        &msg[msg.len() - 1..],
    ] {
        s.write_all(part).expect("write part");
        s.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(60));
    }
    let replies = read_replies(&mut s, 1);
    assert_eq!(replies[0].0, "split-1");
    assert_eq!(
        get_str(&replies[0].1, "result"),
        Some("ok"),
        "{:?}",
        replies[0].1
    );
    assert!(get_str(&replies[0].1, "sdp").is_some_and(|sdp| sdp.starts_with("v=0")));
    // The same connection keeps working, and the call is the one UDP sees.
    s.write_all(&ping("after")).expect("write");
    assert_eq!(read_replies(&mut s, 1)[0].0, "after");
    let udp = relay.client();
    assert_eq!(udp.list_calls().expect("list"), vec!["tcp-call".to_owned()]);
}

/// One HTTP/1.1 request with `Connection: close`; returns (status code, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect HTTP");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-rtpengine-ng\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(&[head.as_bytes(), body].concat())
        .expect("write request");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read response");
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(&resp)));
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    (status, resp[split + 4..].to_vec())
}

fn http_relay(ports: &PortBlock) -> (Relay, SocketAddr) {
    let web = SocketAddr::from((LO, ports.port(15)));
    let relay = Relay::start(
        RelayKind::Rtprelay,
        ports,
        &["--listen-http", &web.to_string()],
    );
    (relay, web)
}

#[test]
fn http_post_ng_and_get_ping() {
    let ports = PortBlock::acquire();
    let (_relay, web) = http_relay(&ports);
    let (status, body) = http(web, "GET", "/ping", b"");
    assert_eq!(
        (status, String::from_utf8_lossy(&body).trim()),
        (200, "pong")
    );

    let (status, body) = http(web, "POST", "/ng", &ping("h77"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut buf = body.clone();
    let replies = take_messages(&mut buf);
    assert_eq!(replies.len(), 1, "{}", String::from_utf8_lossy(&body));
    assert_eq!(replies[0].0, "h77", "reply carries the request's cookie");
    assert_eq!(get_str(&replies[0].1, "result"), Some("pong"));
}

#[test]
fn http_metrics_count_calls_and_commands() {
    let ports = PortBlock::acquire();
    let (relay, web) = http_relay(&ports);
    let ng = relay.client();
    let _call = Call::setup(&ng, &ports, &[]);
    let (status, body) = http(web, "GET", "/metrics", b"");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("rtprelay_calls 1\n"), "{text}");
    assert!(
        text.contains("rtprelay_ng_commands_total{command=\"offer\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("rtprelay_dataplane_info{plane="), "{text}");
}

#[test]
fn offer_over_http_answer_over_udp_is_one_call() {
    let ports = PortBlock::acquire();
    let (relay, web) = http_relay(&ports);
    let a = Party::bind(&ports, 0, "tag-a");
    let b = Party::bind(&ports, 2, "tag-b");
    let offer = framed(
        "web-offer",
        dict([
            ("command", "offer".into()),
            ("call-id", "mixed".into()),
            ("from-tag", "tag-a".into()),
            ("sdp", sdp_offer(LO, a.port()).into()),
        ]),
    );
    let (status, body) = http(web, "POST", "/ng", &offer);
    assert_eq!(status, 200);
    let mut buf = body;
    let reply = take_messages(&mut buf).pop().expect("offer reply").1;
    assert_eq!(get_str(&reply, "result"), Some("ok"), "{reply:?}");
    let b_to = sdp_media_endpoint(get_str(&reply, "sdp").expect("sdp")).expect("endpoint");

    let ng = relay.client();
    let ans = expect_ok(
        ng.answer("mixed", "tag-a", "tag-b", &sdp_answer(LO, b.port()), &[]),
        "answer",
    );
    let a_to = sdp_media_endpoint(get_str(&ans, "sdp").expect("sdp")).expect("endpoint");
    assert_eq!(ng.list_calls().expect("list"), vec!["mixed".to_owned()]);

    let pkt = RtpPacket::pcmu(0xa, 0).to_bytes();
    a.rtp.send_to(&pkt, a_to).expect("send");
    assert_eq!(
        b.rtp.recv_timeout(Duration::from_secs(2)),
        Some((pkt, b_to))
    );
}

#[test]
fn tcp_garbage_closes_only_that_connection() {
    let ports = PortBlock::acquire();
    let (relay, tcp) = tcp_relay(&ports);
    let mut bad = TcpStream::connect_timeout(&tcp, IO_TIMEOUT).expect("connect");
    bad.write_all(b"junk dXYZ not bencode at all")
        .expect("write");
    bad.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut rest = Vec::new();
    // One error reply (or none), then the relay closes the connection: read_to_end reaches EOF
    // (a timeout means the connection stayed open). A reset, when the relay closes with our junk
    // unread, is a close too.
    match bad.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the relay kept the connection open after garbage: {e}"),
    }
    if !rest.is_empty() {
        let replies = take_messages(&mut rest);
        assert_eq!(replies.len(), 1, "{}", String::from_utf8_lossy(&rest));
        assert_eq!(get_str(&replies[0].1, "result"), Some("error"));
    }
    let mut good = TcpStream::connect_timeout(&tcp, IO_TIMEOUT).expect("connect");
    good.write_all(&ping("ok-1")).expect("write");
    assert_eq!(read_replies(&mut good, 1)[0].0, "ok-1");
    expect_ok(relay.client().ping(), "UDP ping");
}

#[test]
fn http_ng_without_a_cookie_is_refused() {
    let ports = PortBlock::acquire();
    let (_relay, web) = http_relay(&ports);
    let (status, _) = http(web, "POST", "/ng", b"d7:command4:pinge");
    assert!(
        (400..=600).contains(&status),
        "a body without a cookie got {status}"
    );
    let (status, body) = http(web, "POST", "/ng", &ping("still-ok"));
    assert_eq!(status, 200);
    assert!(body.starts_with(b"still-ok "));
}

/// A client that sends another client's cookie (guessed, or seen on the wire) runs its own command: it does
/// not get the other client's cached reply (here the list of calls).
#[test]
fn another_clients_cookie_does_not_read_its_cached_reply() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let owner = relay.client();
    let _call = Call::setup(&owner, &ports, &[]);
    let list = framed("shared-77", dict([("command", "list".into())]));
    let reply = owner.raw(&list).expect("list reply");
    assert!(
        String::from_utf8_lossy(&reply).contains("calls"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // The same cookie from another socket, with another command: a fresh answer to that command.
    let other = relay.client();
    let reply = other.raw(&ping("shared-77")).expect("ping reply");
    let mut buf = reply.clone();
    let msgs = take_messages(&mut buf);
    assert_eq!(msgs.len(), 1, "{}", String::from_utf8_lossy(&reply));
    assert_eq!(
        get_str(&msgs[0].1, "result"),
        Some("pong"),
        "{:?}",
        msgs[0].1
    );
    // The owner's retransmission still gets its cached reply (the same list, not a new command).
    let again = owner.raw(&list).expect("retransmission reply");
    assert!(String::from_utf8_lossy(&again).contains("calls"));
}

/// A datagram to the NG port from one of the relay's media ports (as a media stream aimed at the NG
/// port would arrive) is dropped unanswered and counted in /metrics; clients keep being answered. The
/// relay holds that port itself, so the datagram is forged with a raw socket (root).
#[test]
fn ng_from_a_media_port_is_dropped_and_counted() {
    if !common::require_root_or_skip("a raw socket forges the source port") {
        return;
    }
    let ports = PortBlock::acquire();
    let (relay, web) = http_relay(&ports);
    let ng = relay.client();
    let call = Call::setup(&ng, &ports, &[]);
    // From the relay's caller-facing port, to its NG port.
    let raw = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(libc_ipproto_raw())),
    )
    .expect("raw socket");
    let msg = framed("m1", dict([("command", "list".into())]));
    let packet = udp4(call.a_to, ports.ng_addr(), &msg);
    raw.send_to(&packet, &ports.ng_addr().into())
        .expect("send the forged datagram");
    expect_ok(ng.ping(), "a client's ping");
    let (status, body) = http(web, "GET", "/metrics", b"");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("rtprelay_ng_dropped_total{reason=\"media_source\"} 1\n"),
        "{text}"
    );
    // A client that merely uses a port of the media range the relay does not hold is answered.
    let (min, max) = ports.media_range();
    // Any port of the range this test can bind is one the relay does not hold.
    let bystander = (min..=max)
        .rev()
        .find_map(|p| std::net::UdpSocket::bind((LO, p)).ok())
        .expect("bind a media-range port");
    bystander
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    bystander
        .send_to(&ping("m2"), ports.ng_addr())
        .expect("send");
    let mut buf = [0u8; 2048];
    assert!(
        bystander.recv_from(&mut buf).is_ok(),
        "a bystander got no answer"
    );
}

/// IPPROTO_RAW: a raw socket that sends whole IP packets.
fn libc_ipproto_raw() -> i32 {
    255
}

/// An IPv4/UDP packet from `src` to `dst` (the kernel fills in the IP checksum; a zero UDP
/// checksum means none).
fn udp4(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 only");
    };
    let udp_len = (8 + payload.len()) as u16;
    let total = 20 + udp_len;
    let mut p = vec![0x45, 0];
    p.extend(total.to_be_bytes());
    p.extend([0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend(s.ip().octets());
    p.extend(d.ip().octets());
    p.extend(s.port().to_be_bytes());
    p.extend(d.port().to_be_bytes());
    p.extend(udp_len.to_be_bytes());
    p.extend([0, 0]);
    p.extend_from_slice(payload);
    p
}

/// What a web page on another site can make a browser send is refused: a form-type or text/plain POST
/// (CSRF), and any request naming a host that is not the relay's (DNS rebinding).
#[test]
fn http_refuses_cross_site_requests() {
    let ports = PortBlock::acquire();
    let (relay, web) = http_relay(&ports);
    let ng = relay.client();
    let call = Call::setup(&ng, &ports, &[]);
    let send = |host: &str, ct: &str, body: &[u8]| {
        let mut s = TcpStream::connect_timeout(&web, IO_TIMEOUT).expect("connect HTTP");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
        let head = format!(
            "POST /ng HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        );
        s.write_all(&[head.as_bytes(), body].concat())
            .expect("write");
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).expect("read");
        String::from_utf8_lossy(&resp).into_owned()
    };
    let delete = framed(
        "x1",
        dict([
            ("command", "delete".into()),
            ("call-id", call.id.as_str().into()),
            ("from-tag", "tag-a".into()),
        ]),
    );
    let calls = ng.list_calls().expect("list");
    assert_eq!(calls.len(), 1);
    let host = web.to_string();
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let resp = send(&host, ct, &delete);
        assert!(resp.starts_with("HTTP/1.1 415"), "{ct}: {resp}");
    }
    let resp = send(
        &format!("attacker.example.com:{}", web.port()),
        "application/x-rtpengine-ng",
        &delete,
    );
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert_eq!(
        ng.list_calls().expect("list"),
        calls,
        "a refused request changed the calls"
    );
    let resp = send(&host, "application/x-rtpengine-ng", &ping("ok"));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}
