//! Render tests: every reply variant's bytes, and a scenario through the engine whose bytes were
//! recorded from the reply dictionaries the session layer built before replies were typed.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::*;
use crate::config::Interface;
use crate::session::command::{CallRef, Command, Delete, OfferAnswer};
use crate::session::engine::Totals;
use crate::session::ports::AcceptAll;
use crate::session::reports::MediaTotals;
use crate::session::{Engine, EngineConfig, MediaAction};
use crate::time::{Millis, Now};

fn bytes(r: Reply) -> Vec<u8> {
    render(&r).encode()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

#[test]
fn plain_replies() {
    assert_eq!(bytes(Reply::Pong), b"d6:result4:ponge");
    assert_eq!(bytes(Reply::Ok), b"d6:result2:oke");
    assert_eq!(
        bytes(Reply::Warning("w".into())),
        b"d6:result2:ok7:warning1:we"
    );
    assert_eq!(
        bytes(Reply::Sdp("v=0\r\n".into())),
        b"d6:result2:ok3:sdp5:v=0\r\ne"
    );
    assert_eq!(
        bytes(Reply::List(vec!["a".into(), "bc".into()])),
        b"d5:callsl1:a2:bce6:result2:oke"
    );
    assert_eq!(bytes(Reply::List(vec![])), b"d5:callsle6:result2:oke");
    assert_eq!(
        bytes(Reply::Error("Unknown call-id".into())),
        b"d12:error-reason15:Unknown call-id6:result5:errore"
    );
    assert_eq!(
        error_reply("Unknown call-id").encode(),
        b"d12:error-reason15:Unknown call-id6:result5:errore"
    );
    assert_eq!(
        bytes(Reply::LoadLimit("m".into())),
        b"d7:message1:m6:result10:load limite"
    );
}

#[test]
fn statistics_reply() {
    let s = Snapshot {
        calls: 2,
        streams: 4,
        uptime_secs: 9,
        totals: Totals {
            calls_created: 5,
            calls_deleted: 2,
            calls_timed_out: 1,
            rejected_session_limit: 3,
            ..Totals::default()
        },
        rtp: Counts {
            packets: 10,
            bytes: 100,
            errors: 1,
        },
        rtcp: Counts {
            packets: 2,
            bytes: 20,
            errors: 1,
        },
        plane: "mmsg",
    };
    assert_eq!(
        bytes(Reply::Statistics(Box::new(s))),
        &b"d6:result2:ok10:statisticsd17:currentstatisticsd12:mediastreamsi4e15:sessionsforeigni0e\
11:sessionsowni2e13:sessionstotali2e15:transcodedmediai0ee9:dataplane4:mmsg\
15:totalstatisticsd12:bytesrelayedi120e15:deletedsessionsi2e6:errorsi2e15:managedsessionsi5e\
14:packetsrelayedi12e16:rejectedsessionsi3e15:timeoutsessionsi1e6:uptimei9eeee"[..]
    );
}

#[test]
fn call_reply() {
    let stream = StreamReport {
        local: addr("[2001:db8::1]:30000"),
        endpoint: Some(addr("192.0.2.1:4000")),
        advertised: None,
        last_packet: 7,
        flags: vec!["RTP"],
        crypto_suite: None,
        ice_state: None,
        dtls_state: None,
        packets: 1,
        bytes: 2,
        errors: 3,
    };
    let report = CallReport {
        created: 5,
        created_us: 6,
        last_signal: 8,
        proxy: None,
        tags: vec![
            TagReport {
                tag: "A".into(),
                label: None,
                created: 5,
                in_dialogue_with: None,
                medias: vec![MediaReport {
                    index: 1,
                    kind: "audio".into(),
                    protocol: "RTP/AVP".into(),
                    streams: vec![stream],
                    flags: vec![],
                }],
            },
            TagReport {
                tag: String::new(),
                label: Some("l".into()),
                created: 6,
                in_dialogue_with: Some("A".into()),
                medias: vec![],
            },
        ],
        totals: MediaTotals::default(),
    };
    assert_eq!(
        bytes(Reply::Call(Box::new(report))),
        &b"d4:SSRCde7:createdi5e10:created_usi6e11:last signali8e6:result2:ok\
4:tagsd0:d7:createdi6e16:in dialogue with1:A5:label1:l6:mediasle3:tag0:e\
1:Ad7:createdi5e6:mediasld5:flagsle5:indexi1e8:protocol7:RTP/AVP7:streamsl\
d19:advertised endpointde8:endpointd7:address9:192.0.2.16:family4:IPv44:porti4000ee\
6:family4:IPv65:flagsl3:RTPe11:last packeti7e13:local address11:2001:db8::1\
10:local porti30000e5:statsd5:bytesi2e6:errorsi3e7:packetsi1eeee4:type5:audioee3:tag1:Aee\
6:totalsd4:RTCPd5:bytesi0e6:errorsi0e7:packetsi0ee3:RTPd5:bytesi0e6:errorsi0e7:packetsi0eeee"[..]
    );
}

/// The port on the m= line of an SDP reply.
fn media_port(reply: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(reply);
    let line = text
        .split("\r\n")
        .find(|l| l.starts_with("m="))
        .expect("m= line");
    line.split(' ')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("port")
}

fn at(secs: u64) -> Now {
    Now {
        mono: Millis(secs * 1000),
        unix_us: 1_700_000_000_000_000 + secs * 1_000_000,
    }
}

fn oa(from: &str, to: Option<&str>, addr: &str, port: u16) -> OfferAnswer {
    OfferAnswer {
        call: CallRef {
            call_id: "c".into(),
            from_tag: Some(from.into()),
            to_tag: to.map(Into::into),
            via_branch: None,
        },
        sdp: format!(
            "v=0\r\no=- 1545997027 1 IN IP4 {addr}\r\ns=tester\r\nc=IN IP4 {addr}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        )
        .into_bytes(),
        ..OfferAnswer::default()
    }
}

/// The bytes of every reply of a call's life, as the untyped replies had them.
#[test]
fn engine_replies_keep_their_bytes() {
    let iface = |ip: &str| Interface {
        name: "default".into(),
        local: ip.parse().expect("ip"),
        advertised: None,
    };
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("203.0.113.1"), iface("2001:db8:4321::1")],
        port_min: 30000,
        port_max: 30099,
        delete_delay: Duration::from_secs(30),
        timeout: Duration::from_secs(60),
        offer_timeout: Duration::from_secs(120),
        ..EngineConfig::default()
    });
    let mut b = AcceptAll::default();
    // As the daemon runs it, with the port binding around each command.
    let mut run = |e: &mut Engine, now: Now, cmd: Command| {
        e.plan_ports(&cmd);
        e.sync_ports(&mut b);
        let reply = render(&e.handle(now, cmd)).encode();
        e.sync_ports(&mut b);
        reply
    };
    let query = |id: &str| {
        Command::Query(CallRef {
            call_id: id.into(),
            ..CallRef::default()
        })
    };
    assert_eq!(run(&mut e, at(0), Command::Ping), PING);
    let mut p = oa("A", None, "192.0.2.10", 4000);
    p.label = Some("caller".into());
    let offer = run(&mut e, at(0), Command::Offer(p));
    let answer = run(
        &mut e,
        at(1),
        Command::Answer(oa("A", Some("B"), "192.0.2.20", 5000)),
    );
    // The ports are random: named by the replies that give them (B's port in the offer,
    // A's in the answer), RTCP one above.
    let ports = [media_port(&offer), media_port(&answer)];
    let named = |bytes: Vec<u8>| {
        let mut text = String::from_utf8(bytes).expect("utf-8");
        for (port, (rtp, rtcp)) in ports.iter().zip([("PORTA", "PORTa"), ("PORTB", "PORTb")]) {
            text = text.replace(&(port + 1).to_string(), rtcp);
            text = text.replace(&port.to_string(), rtp);
        }
        text.into_bytes()
    };
    assert_eq!(named(offer), OFFER);
    assert_eq!(named(answer), ANSWER);
    for a in std::iter::from_fn(|| e.poll_action()) {
        if let MediaAction::Open { counters, .. } = a {
            counters.packets.fetch_add(3, Relaxed);
            counters.bytes.fetch_add(300, Relaxed);
            counters.rtcp_packets.fetch_add(1, Relaxed);
            counters.rtcp_bytes.fetch_add(50, Relaxed);
            counters.errors.fetch_add(1, Relaxed);
            counters.last_packet_ms.store(1500, Relaxed);
        }
    }
    e.on_learned(crate::flow::FlowId(1), addr("192.0.2.99:7777"));
    assert_eq!(named(run(&mut e, at(2), query("c"))), QUERY);
    assert_eq!(run(&mut e, at(2), Command::List { limit: None }), LIST);
    assert_eq!(run(&mut e, at(3), Command::Statistics), STATS);
    let del = Command::Delete(Delete {
        call: CallRef {
            call_id: "c".into(),
            from_tag: Some("A".into()),
            ..CallRef::default()
        },
        delete_delay: Some(0),
        ..Delete::default()
    });
    assert_eq!(named(run(&mut e, at(4), del.clone())), DELETE);
    assert_eq!(run(&mut e, at(4), del), DELETE_AGAIN);
    assert_eq!(run(&mut e, at(4), query("zz")), UNKNOWN);
    assert_eq!(run(&mut e, at(5), Command::Statistics), STATS_AFTER);
}

const PING: &[u8] = b"d6:result4:ponge";
const OFFER: &[u8] = b"d6:result2:ok3:sdp216:v=0\r\no=- 1545997027 1 IN IP4 192.0.2.10\r\ns=tester\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio PORTA RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\na=rtcp:PORTa\r\ne";
const ANSWER: &[u8] = b"d6:result2:ok3:sdp216:v=0\r\no=- 1545997027 1 IN IP4 192.0.2.20\r\ns=tester\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio PORTB RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\na=rtcp:PORTb\r\ne";
const QUERY: &[u8] = b"d4:SSRCde7:createdi1700000000e10:created_usi0e11:last signali1700000001e6:result2:ok4:tagsd1:Ad7:createdi1700000000e16:in dialogue with1:B5:label6:caller6:mediasld5:flagsl11:initializede5:indexi1e8:protocol7:RTP/AVP7:streamsld19:advertised endpointd7:address10:192.0.2.106:family4:IPv44:porti4000ee8:endpointd7:address10:192.0.2.996:family4:IPv44:porti7777ee6:family4:IPv45:flagsl3:RTP6:fillede11:last packeti1700000001e13:local address11:203.0.113.110:local portiPORTBe5:statsd5:bytesi350e6:errorsi1e7:packetsi4eeed19:advertised endpointd7:address10:192.0.2.106:family4:IPv44:porti4001ee8:endpointd7:address10:192.0.2.106:family4:IPv44:porti4001ee6:family4:IPv45:flagsl4:RTCP6:fillede11:last packeti1700000001e13:local address11:203.0.113.110:local portiPORTbe5:statsd5:bytesi350e6:errorsi1e7:packetsi4eeee4:type5:audioee3:tag1:Ae1:Bd7:createdi1700000000e16:in dialogue with1:A6:mediasld5:flagsl11:initializede5:indexi1e8:protocol7:RTP/AVP7:streamsld19:advertised endpointd7:address10:192.0.2.206:family4:IPv44:porti5000ee8:endpointd7:address10:192.0.2.206:family4:IPv44:porti5000ee6:family4:IPv45:flagsl3:RTP6:fillede11:last packeti1700000001e13:local address11:203.0.113.110:local portiPORTAe5:statsd5:bytesi350e6:errorsi1e7:packetsi4eeed19:advertised endpointd7:address10:192.0.2.206:family4:IPv44:porti5001ee8:endpointd7:address10:192.0.2.206:family4:IPv44:porti5001ee6:family4:IPv45:flagsl4:RTCP6:fillede11:last packeti1700000001e13:local address11:203.0.113.110:local portiPORTae5:statsd5:bytesi350e6:errorsi1e7:packetsi4eeee4:type5:audioee3:tag1:Bee6:totalsd4:RTCPd5:bytesi200e6:errorsi2e7:packetsi4ee3:RTPd5:bytesi600e6:errorsi2e7:packetsi6eeee";
const LIST: &[u8] = b"d5:callsl1:ce6:result2:oke";
const STATS: &[u8] = b"d6:result2:ok10:statisticsd17:currentstatisticsd12:mediastreamsi2e15:sessionsforeigni0e11:sessionsowni1e13:sessionstotali1e15:transcodedmediai0ee9:dataplane4:mmsg15:totalstatisticsd12:bytesrelayedi800e15:deletedsessionsi0e6:errorsi4e15:managedsessionsi1e14:packetsrelayedi10e16:rejectedsessionsi0e15:timeoutsessionsi0e6:uptimei3eeee";
const DELETE: &[u8] = b"d4:SSRCde7:createdi1700000000e10:created_usi0e11:last signali1700000004e6:result2:ok4:tagsd1:Ad7:createdi1700000000e16:in dialogue with1:B5:label6:caller6:mediasld5:flagsl11:initializede5:indexi1e8:protocol7:RTP/AVP7:streamsld19:advertised endpointd7:address10:192.0.2.106:family4:IPv44:porti4000ee8:endpointd7:address10:192.0.2.996:family4:IPv44:porti7777ee6:family4:IPv45:flagsl3:RTP6:fillede11:last packeti1700000001e13:local address11:203.0.113.110:local portiPORTBe5:statsd5:bytesi350e6:errorsi1e7:packetsi4eeed19:advertised endpointd7:address10:192.0.2.106:family4:IPv44:porti4001ee8:endpointd7:address10:192.0.2.106:family4:IPv44:porti4001ee6:family4:IPv45:flagsl4:RTCP6:fillede11:last packeti1700000001e13:local address11:203.0.113.110:local portiPORTbe5:statsd5:bytesi350e6:errorsi1e7:packetsi4eeee4:type5:audioee3:tag1:Ae1:Bd7:createdi1700000000e16:in dialogue with1:A6:mediasld5:flagsl11:initializede5:indexi1e8:protocol7:RTP/AVP7:streamsld19:advertised endpointd7:address10:192.0.2.206:family4:IPv44:porti5000ee8:endpointd7:address10:192.0.2.206:family4:IPv44:porti5000ee6:family4:IPv45:flagsl3:RTP6:fillede11:last packeti1700000001e13:local address11:203.0.113.110:local portiPORTAe5:statsd5:bytesi350e6:errorsi1e7:packetsi4eeed19:advertised endpointd7:address10:192.0.2.206:family4:IPv44:porti5001ee8:endpointd7:address10:192.0.2.206:family4:IPv44:porti5001ee6:family4:IPv45:flagsl4:RTCP6:fillede11:last packeti1700000001e13:local address11:203.0.113.110:local portiPORTae5:statsd5:bytesi350e6:errorsi1e7:packetsi4eeee4:type5:audioee3:tag1:Bee6:totalsd4:RTCPd5:bytesi200e6:errorsi2e7:packetsi4ee3:RTPd5:bytesi600e6:errorsi2e7:packetsi6eeee";
const DELETE_AGAIN: &[u8] = b"d6:result2:ok7:warning38:Call-ID not found or tags didn't matche";
const UNKNOWN: &[u8] = b"d12:error-reason15:Unknown call-id6:result5:errore";
const STATS_AFTER: &[u8] = b"d6:result2:ok10:statisticsd17:currentstatisticsd12:mediastreamsi0e15:sessionsforeigni0e11:sessionsowni0e13:sessionstotali0e15:transcodedmediai0ee9:dataplane4:mmsg15:totalstatisticsd12:bytesrelayedi800e15:deletedsessionsi1e6:errorsi4e15:managedsessionsi1e14:packetsrelayedi10e16:rejectedsessionsi0e15:timeoutsessionsi0e6:uptimei5eeee";
