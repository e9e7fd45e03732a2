//! The attacks of the security issue, each played against a running relay over real sockets in a
//! namespace topology: the relay on its own LAN address (a production setup, not loopback), an
//! attacker who controls the SDP of its own calls (as any SIP account does), an injector on the
//! LAN, and a victim call that streams after every attack and must lose nothing.
//!
//! Against rtprelay every test asserts that the attack failed. With `RTPRELAY_E2E_RELAY=rtpengine`
//! the same attacks run against Debian's rtpengine and only print `ATTACK <name> vs rtpengine:
//! EXPOSED|refused` (the README's security table comes from those lines).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::attack::*;
use common::netns::Role;
use common::ns_relay::{metric_sum, NG_PORT};
use common::{get_str, RelayKind, RtpPacket};

const WAIT: Duration = Duration::from_secs(1);
const VICTIM_PORT: u16 = 7000;

/// The victim call: set up before the attack, streamed after it.
fn victim(stage: &Stage) -> Legs {
    stage.plain_call(&call_id("victim"), VICTIM_PORT)
}

/// After an attack: the victim call still carries every packet both ways.
fn victim_unharmed(stage: &Stage, v: &Legs, ssrc: u32) {
    let (to_callee, to_caller) = v.stream(25, ssrc);
    stage.verdict(
        "victim-call-keeps-its-media",
        (to_callee, to_caller) != (25, 25),
        &format!("{to_callee}/25 and {to_caller}/25 packets arrived"),
    );
}

/// The NG reflection of the issue: the attacker's SDP aims its own call's media at the relay's
/// NG port; "media" that is an NG message (`<cookie> <dict>`) then reaches the control socket,
/// and the reply (here a `list` of every call) comes back as media.
fn ng_reflection(media_line: &str, payload: Vec<u8>, name: &str) {
    let Some(stage) = Stage::start(&[]) else {
        return;
    };
    let v = victim(&stage);
    let evil = call_id("evil");
    let caller = stage.endpoint(Role::Caller, 4000);
    let callee = stage.endpoint(Role::Callee, 5000);
    let offer = sdp("127.0.0.1".parse().expect("ip"), NG_PORT, media_line);
    let answer = sdp(stage.ip(Role::Callee), 5000, media_line);
    let legs = stage.call(&evil, caller, callee, &offer, &answer);
    for _ in 0..5 {
        let _ = legs.callee.send_to(&payload, legs.callee_to);
        std::thread::sleep(Duration::from_millis(50));
    }
    let reply = wait_for(&legs.callee, WAIT, |p| p.windows(6).any(|w| w == b"result"));
    let leaked = reply
        .as_deref()
        .is_some_and(|p| p.windows(v.id.len()).any(|w| w == v.id.as_bytes()));
    stage.verdict(
        name,
        reply.is_some(),
        &match &reply {
            Some(r) => format!(
                "NG reply came back as media ({} bytes{})",
                r.len(),
                if leaked {
                    ", listing the victim call"
                } else {
                    ""
                }
            ),
            None => "no NG reply reached the attacker".into(),
        },
    );
    if let Some(ours) = stage.ours() {
        let refused = metric_sum(&ours.metrics(), "rtprelay_media_target_refused_total");
        assert!(refused.unwrap_or(0.0) >= 1.0, "the refusal is counted");
    }
    victim_unharmed(&stage, &v, 0x0101_0000);
}

#[test]
fn sdp_aimed_at_the_ng_port_cannot_drive_ng_audio() {
    let mut payload = rtp_cookie();
    payload.extend_from_slice(b" d7:command4:liste");
    ng_reflection(AUDIO, payload, "ng-port-reflection-audio");
}

#[test]
fn sdp_aimed_at_the_ng_port_cannot_drive_ng_t38() {
    ng_reflection(
        T38,
        b"t38cookie d7:command4:liste".to_vec(),
        "ng-port-reflection-t38",
    );
}

/// A service on the relay's host (its own LAN address, or loopback) as the media target: a
/// public SDP must not reach Kamailio, Redis or sshd next to the relay.
fn host_service(stage: Stage, target: SocketAddr, name: &str) {
    let v = victim(&stage);
    let service = stage.topo.udp_socket(&stage.topo.ns(Role::Relay), target);
    service
        .set_read_timeout(Some(WAIT))
        .expect("service timeout");
    let caller = stage.endpoint(Role::Caller, 4000);
    let callee = stage.endpoint(Role::Callee, 5000);
    let legs = stage.call(
        &call_id("host"),
        caller,
        callee,
        &sdp(target.ip(), target.port(), AUDIO),
        &sdp(stage.ip(Role::Callee), 5000, AUDIO),
    );
    for k in 0..5 {
        let _ = legs
            .callee
            .send_to(&RtpPacket::pcmu(0x4040_4040, k).to_bytes(), legs.callee_to);
    }
    let mut buf = [0u8; 2048];
    let got = service.recv_from(&mut buf).ok();
    stage.verdict(
        name,
        got.is_some(),
        &match got {
            Some((n, from)) => format!("{target} received {n} bytes from {from}"),
            None => format!("{target} received nothing"),
        },
    );
    victim_unharmed(&stage, &v, 0x0202_0000);
}

#[test]
fn sdp_cannot_aim_media_at_a_service_on_the_relays_address() {
    let Some(stage) = Stage::start(&[]) else {
        return;
    };
    let target = SocketAddr::new(stage.relay_ip(), 5353);
    host_service(stage, target, "host-service-on-relay-address");
}

#[test]
fn sdp_cannot_aim_media_at_a_loopback_service() {
    let Some(stage) = Stage::start(&[]) else {
        return;
    };
    host_service(stage, loopback(6379), "loopback-service");
}

/// Two calls whose callees name each other's caller-facing relay ports (ports an attacker can
/// learn, here from `query`): one packet must not circulate between them.
#[test]
fn calls_that_name_each_others_relay_ports_make_no_loop() {
    let Some(stage) = Stage::start(&[]) else {
        return;
    };
    let v = victim(&stage);
    let (caller_ip, callee_ip, relay) = (
        stage.ip(Role::Caller),
        stage.ip(Role::Callee),
        stage.relay_ip(),
    );
    let (x, y) = (call_id("loop-x"), call_id("loop-y"));
    for (id, port) in [(&x, 4000), (&y, 4002)] {
        let o = stage.offer(id, "A", &sdp(caller_ip, port, AUDIO), caller_ip);
        assert_eq!(get_str(&o, "result"), Some("ok"), "{o:?}");
    }
    // Both pairs of a call exist from its offer on: the caller-facing ones are in `query`.
    let caller_facing = |id: &str| {
        let q = stage
            .ng()
            .query(id)
            .unwrap_or_else(|e| panic!("query: {e}"));
        local_rtp_port(&q, "A")
    };
    let (x_pa, y_pa) = (caller_facing(&x), caller_facing(&y));
    let xa = stage.answer(&x, "A", "B", &sdp(relay, y_pa, AUDIO), callee_ip);
    let ya = stage.answer(&y, "A", "B", &sdp(relay, x_pa, AUDIO), callee_ip);
    let x_to = endpoint(get_str(&xa, "sdp").unwrap_or(""));
    let _ = ya;
    // One packet from a stranger, while both calls still learn their peers.
    let stranger = stage.endpoint(Role::Injector, 0);
    let before = relayed(&stage, &x) + relayed(&stage, &y);
    let _ = stranger.send_to(&RtpPacket::pcmu(0x5050_5050, 1).to_bytes(), x_to);
    std::thread::sleep(WAIT);
    let after = relayed(&stage, &x) + relayed(&stage, &y);
    stage.verdict(
        "media-loop-through-own-ports",
        after - before > 20,
        &format!("{} packets counted for 1 sent", after - before),
    );
    victim_unharmed(&stage, &v, 0x0303_0000);
}

/// The local RTP port of tag `tag`'s first stream in a `query` reply.
fn local_rtp_port(q: &common::Dict, tag: &str) -> u16 {
    let v = common::Value::Dict(q.clone());
    v.path(&["tags", tag, "medias"])
        .and_then(common::Value::as_list)
        .and_then(|m| m.first())
        .and_then(|m| m.path(&["streams"]))
        .and_then(common::Value::as_list)
        .and_then(|s| s.first())
        .and_then(|s| s.path(&["local port"]))
        .and_then(common::Value::as_int)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("no local port for {tag} in {q:?}"))
}

/// RTP packets the relay counted for `call` (all streams).
fn relayed(stage: &Stage, call: &str) -> i64 {
    stage
        .ng()
        .query(call)
        .map(|q| int_at(&q, &["totals", "RTP", "packets"]))
        .unwrap_or(0)
}

/// Packets of stream `ssrc` that reach `ep` within half a second.
fn count(ep: &common::MediaEndpoint, ssrc: u32) -> usize {
    ep.collect(5000, Duration::from_millis(500))
        .into_iter()
        .filter(|(p, _)| RtpPacket::parse(p).is_some_and(|r| r.ssrc == ssrc))
        .count()
}

/// An injector that starts before the caller, from the caller's SDP port on its own address and
/// from another port, while the callee already streams: it must receive none of the call's media
/// and must not keep the caller out, whether the caller speaks within the learning window or
/// after it.
fn injector_first(caller_starts_after: Duration, name: &str) {
    let Some(stage) = Stage::start(&[]) else {
        return;
    };
    let legs = stage.plain_call(&call_id("inject"), 4000);
    let same_port = stage.endpoint(Role::Injector, 4000);
    let other_port = stage.endpoint(Role::Injector, 0);
    let started = Instant::now();
    let (mut k, mut caller_sent) = (0u16, 0u16);
    let (mut to_callee, mut stolen) = (0, 0);
    // The callee and the injector stream from the start; the caller joins later and then sends
    // 30 packets. Every socket is read as it goes (a full receive buffer would lose packets).
    while caller_sent < 30 {
        let _ = legs
            .callee
            .send_to(&RtpPacket::pcmu(0xbbbb_0000, k).to_bytes(), legs.callee_to);
        for inj in [&same_port, &other_port] {
            let _ = inj.send_to(&RtpPacket::pcmu(0x6666_0000, k).to_bytes(), legs.caller_to);
        }
        if started.elapsed() >= caller_starts_after {
            let pkt = RtpPacket::pcmu(0xaaaa_0000, caller_sent).to_bytes();
            let _ = legs.caller.send_to(&pkt, legs.caller_to);
            caller_sent += 1;
        }
        k = k.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(20));
        to_callee += drain(&legs.callee, 0xaaaa_0000, Duration::from_millis(1));
        stolen += drain(&same_port, 0xbbbb_0000, Duration::from_millis(1));
        stolen += drain(&other_port, 0xbbbb_0000, Duration::from_millis(1));
        let _ = drain(&legs.caller, 0, Duration::from_millis(1));
    }
    to_callee += drain(&legs.callee, 0xaaaa_0000, WAIT);
    stolen += drain(&same_port, 0xbbbb_0000, Duration::from_millis(100));
    stolen += drain(&other_port, 0xbbbb_0000, Duration::from_millis(100));
    stage.verdict(
        &format!("{name}-receives-media"),
        stolen > 0,
        &format!("the injector received {stolen} of the callee's packets"),
    );
    stage.verdict(
        &format!("{name}-blocks-the-peer"),
        to_callee < 30,
        &format!("{to_callee}/30 of the caller's packets reached the callee"),
    );
}

/// Reads what is queued on `ep` (waiting up to `quiet` for more) and counts stream `ssrc`.
fn drain(ep: &common::MediaEndpoint, ssrc: u32, quiet: Duration) -> usize {
    let mut n = 0;
    while let Some((p, _)) = ep.recv_timeout(quiet) {
        n += usize::from(RtpPacket::parse(&p).is_some_and(|r| r.ssrc == ssrc));
    }
    n
}

#[test]
fn an_injector_that_starts_first_never_wins() {
    injector_first(Duration::from_millis(300), "injector-first");
}

#[test]
fn an_injector_cannot_keep_out_a_caller_that_speaks_after_the_window() {
    injector_first(Duration::from_millis(3500), "injector-first-late-caller");
}

/// A caller behind NAT: its SDP names a private address, its SIP and media come from its public
/// one (Kamailio passes that as `received-from`). An injector at the SDP port of another address
/// starts first; the caller must still get its media, and the injector none.
#[test]
fn a_natted_caller_beats_an_injector_through_its_sip_source_address() {
    let Some(stage) = Stage::start(&[]) else {
        return;
    };
    let private: IpAddr = "192.168.1.10".parse().expect("ip");
    let caller = stage.endpoint(Role::Caller, 4002);
    let callee = stage.endpoint(Role::Callee, 5000);
    let legs = stage.call(
        &call_id("nat"),
        caller,
        callee,
        &sdp(private, 4000, AUDIO),
        &sdp(stage.ip(Role::Callee), 5000, AUDIO),
    );
    let inj = stage.endpoint(Role::Injector, 4000);
    for k in 0..5 {
        let _ = inj.send_to(&RtpPacket::pcmu(0x6666_0000, k).to_bytes(), legs.caller_to);
    }
    for k in 0..30u16 {
        let _ = legs
            .caller
            .send_to(&RtpPacket::pcmu(0xaaaa_0000, k).to_bytes(), legs.caller_to);
        let _ = legs
            .callee
            .send_to(&RtpPacket::pcmu(0xbbbb_0000, k).to_bytes(), legs.callee_to);
        let _ = inj.send_to(
            &RtpPacket::pcmu(0x6666_0000, 100 + k).to_bytes(),
            legs.caller_to,
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let to_caller = count(&legs.caller, 0xbbbb_0000);
    let stolen = count(&inj, 0xbbbb_0000);
    stage.verdict(
        "natted-caller-loses-to-injector",
        stolen > 0 || to_caller < 20,
        &format!("the caller got {to_caller}/30 of the callee's packets, the injector {stolen}"),
    );
}

/// The next call's ports cannot be told from the last call's.
#[test]
fn ports_are_not_sequential() {
    let Some(stage) = Stage::start(&[]) else {
        return;
    };
    let caller_ip = stage.ip(Role::Caller);
    let ports: Vec<u16> = (0..20)
        .map(|k| {
            let body = sdp(caller_ip, 4000 + 2 * k, AUDIO);
            let o = stage.offer(&call_id("seq"), "A", &body, caller_ip);
            endpoint(get_str(&o, "sdp").unwrap_or("")).port()
        })
        .collect();
    let steps: Vec<i32> = ports
        .windows(2)
        .map(|w| i32::from(w[1]) - i32::from(w[0]))
        .collect();
    let most = steps
        .iter()
        .map(|s| steps.iter().filter(|t| *t == s).count())
        .max()
        .unwrap_or(0);
    stage.verdict(
        "predictable-ports",
        most >= 10,
        &format!("the most common step between consecutive calls' ports occurs {most}/19 times"),
    );
}

/// A re-INVITE storm that moves the far end each time must not take the port range.
#[test]
fn a_reinvite_storm_does_not_exhaust_the_port_range() {
    let Some(stage) = Stage::start(&[]) else {
        return;
    };
    let v = victim(&stage);
    let legs = stage.plain_call(&call_id("storm"), 4000);
    let caller_ip = stage.ip(Role::Caller);
    // The range holds 500 pairs; each moved far end would take a new one.
    for k in 0..700u16 {
        let _ = stage.offer(
            &legs.id,
            "A",
            &sdp(caller_ip, 10000 + 2 * k, AUDIO),
            caller_ip,
        );
    }
    let body = sdp(caller_ip, 4100, AUDIO);
    let fresh = stage.offer(&call_id("after-storm"), "X", &body, caller_ip);
    let result = get_str(&fresh, "result").unwrap_or("").to_owned();
    stage.verdict(
        "reinvite-storm-exhausts-ports",
        result != "ok",
        &format!(
            "a new call after 700 re-INVITEs: {result} {}",
            get_str(&fresh, "error-reason").unwrap_or("")
        ),
    );
    victim_unharmed(&stage, &v, 0x0404_0000);
}

/// A call-id with a line break must not forge a log line.
#[test]
fn a_call_id_cannot_forge_log_lines() {
    let Some(stage) = Stage::start(&[]) else {
        return;
    };
    let id = "evil\nFORGED-LINE relay compromised\r\nFORGED-LINE-2";
    let caller_ip = stage.ip(Role::Caller);
    let _ = stage.offer(id, "A", &sdp(caller_ip, 4000, AUDIO), caller_ip);
    let _ = stage.ng().delete(id, "A");
    std::thread::sleep(Duration::from_millis(200));
    let log = stage.log_text();
    let forged = log.lines().any(|l| l.starts_with("FORGED-LINE"));
    stage.verdict(
        "log-forging-through-call-id",
        forged,
        if forged {
            "a line of the log starts with the attacker's text"
        } else {
            "the call-id is logged escaped"
        },
    );
}

/// A worker that panics (a debug build's fault injection stands in for a bug a packet finds) is
/// restarted with its flows; one that keeps panicking makes the relay exit non-zero.
#[test]
fn a_panicking_worker_is_restarted_and_a_crash_loop_is_loud() {
    if RelayKind::from_env() != RelayKind::Rtprelay {
        println!("ATTACK worker-panic vs rtpengine: n/a (needs rtprelay's fault injection)");
        return;
    }
    let wrapper = ["/usr/bin/env", "RTPRELAY_FAULT_INJECT=1"];
    let Some(mut stage) = Stage::start_wrapped(&wrapper, &[]) else {
        return;
    };
    let v = victim(&stage);
    v.assert_whole(10, 0x0505_0000, "before the panic");
    let _ = v.caller.send_to(b"RTPRELAY-FAULT-PANIC", v.caller_to);
    let ours = stage.ours().expect("ours");
    let deadline = Instant::now() + Duration::from_secs(3);
    while metric_sum(&ours.metrics(), "rtprelay_worker_panics_total") != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the panic was not counted:\n{}",
            ours.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    v.assert_whole(25, 0x0505_1000, "after the panic");
    let ready = common::netns::in_ns(&stage.topo.ns(Role::Relay), || {
        common::ns_relay::http_get(common::ns_relay::http_addr(), "/ready")
    });
    assert!(
        matches!(ready, Ok(Ok((200, _)))),
        "/ready after a survived panic: {ready:?}"
    );
    for _ in 0..rtprelay::worker::PANIC_BUDGET {
        let _ = v.caller.send_to(b"RTPRELAY-FAULT-PANIC", v.caller_to);
        std::thread::sleep(Duration::from_millis(30));
    }
    let Relay::Ours(relay) = &mut stage.relay else {
        unreachable!("checked above")
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while relay.is_running() {
        assert!(
            Instant::now() < deadline,
            "the relay kept running after its worker died"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = relay.stop(Duration::from_secs(1));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the relay must exit non-zero: {status:?}"
    );
    assert!(relay.log_text().contains("panicked too often"));
}
