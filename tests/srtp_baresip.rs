//! A real SRTP client through the relay: baresip (127.0.0.1) with SRTP mandatory (`mediaenc=srtp-mand`, SDES
//! `a=crypto` in an `RTP/SAVP` offer) calls a plain-RTP SIPp callee (127.0.0.3) through Kamailio (127.0.0.2,
//! tests/e2e/kamailio-srtp.cfg), which asks the relay over NG to bridge: `transport-protocol=RTP/AVP` on the
//! offer (plain RTP toward the callee) and `transport-protocol=RTP/SAVP` on the answer (SRTP back toward
//! baresip). baresip sends a 440 Hz tone, SIPp plays sip-tester's g711a.pcap, both PCMA.
//!
//! Checks, for one call of about five seconds:
//! - signalling: baresip got an `RTP/SAVP` answer with `a=crypto` and reports the call secure (its
//!   `CALL_MENC` event names the suite); the INVITE SIPp got is `RTP/AVP` without `a=crypto`;
//! - media both ways on all four legs (loopback capture): baresip → relay → SIPp and SIPp → relay → baresip,
//!   at least `MIN_PACKETS` each; baresip's own RTP statistics count the packets it received (so they passed
//!   its SRTP authentication) and sent;
//! - the relay decrypts and encrypts: the relay → SIPp datagrams are shorter than baresip's by the suite's
//!   authentication tag and carry the tone as plain A-law (few sign changes), while baresip → relay carries
//!   noise-like ciphertext; the relay → baresip datagrams are longer than SIPp's by the tag and none carries
//!   a payload SIPp sent in the clear;
//! - after the hang-up (BYE through Kamailio, `delete`) the relay lists no call.
//!
//! `baresip_srtp_call_through_rtpengine` runs it against Debian's rtpengine, the reference, and always runs.
//! `baresip_srtp_call_through_relay_under_test` runs it against the relay `RTPRELAY_E2E_RELAY` names
//! (rtprelay by default). Needs root (SIPp's pcap play, tcpdump); logs, the capture
//! and baresip's config stay in the scratch dir named in a failure message.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::baresip::{debug_number, Baresip, BaresipPorts};
use common::kamailio::{
    g711a_pcap, prepare_scenarios, sipp, start_kamailio, wait_bound, CALLEE, PROXY,
};
use common::pcap::{flow, usual_len, Capture, UdpPacket};
use common::*;

/// How long the call stays up once established (SIPp's pcap lasts about 4.7 s).
const CALL_TIME: Duration = Duration::from_millis(5500);
/// Packets each leg must show (20 ms packets: about 250 in the call).
const MIN_PACKETS: usize = 100;

#[test]
fn baresip_srtp_call_through_rtpengine() {
    srtp_call(RelayKind::Rtpengine);
}

#[test]
fn baresip_srtp_call_through_relay_under_test() {
    srtp_call(RelayKind::from_env());
}

fn srtp_call(kind: RelayKind) {
    let mut tools = vec!["kamailio", "sipp", "tcpdump", "baresip"];
    if kind == RelayKind::Rtpengine {
        tools.push("rtpengine");
    }
    if !tools.iter().all(|t| require_or_skip(t))
        || !require_root_or_skip("SIPp's pcap play and tcpdump")
    {
        return;
    }
    let Some(pcap) = g711a_pcap() else {
        skip_unless(false, "sip-tester's g711a.pcap was not found");
        return;
    };
    let started = Instant::now();
    let ports = PortBlock::acquire();
    let dir = scratch_dir("srtp-baresip");
    prepare_scenarios(&dir, &pcap);
    let (proxy_sip, uas_sip, uas_media) = (ports.port(2), ports.port(3), ports.port(12));
    let here = format!("(logs in {})", dir.display());

    let relay = Relay::start(kind, &ports, &[]);
    let (min, max) = ports.media_range();
    let capture = Capture::start(&dir, &format!("udp and portrange {min}-{max}"));
    let mut kamailio = start_kamailio(
        &dir,
        "kamailio-srtp.cfg",
        proxy_sip,
        uas_sip,
        &[format!("NG_SOCK=\"udp:{}\"", ports.ng_addr())],
    );
    let mut uas = Proc::spawn(
        "sipp-uas",
        sipp(&dir, "uas", CALLEE, uas_sip, uas_media).args(["-timeout", "60s"]),
        &dir.join("uas.log"),
    )
    .expect("start SIPp callee");
    wait_bound(&mut uas, SocketAddr::from((CALLEE, uas_sip)));

    let mut baresip = Baresip::start(
        &dir,
        &BaresipPorts {
            sip: ports.port(0),
            ctrl: ports.port(5),
            rtp: (ports.port(8), ports.port(11)),
        },
        "srtp-mand",
    );
    baresip.command("dial", &format!("sip:callee@{PROXY}:{proxy_sip}"));
    let established = baresip.wait_event("CALL_ESTABLISHED", Duration::from_secs(10));
    assert!(
        established.is_some(),
        "baresip's call was not established {here}\nbaresip events: {:?}\nkamailio:\n{}\nrelay:\n{}",
        baresip.events,
        kamailio.log_tail(20),
        relay.log_tail(30)
    );
    std::thread::sleep(CALL_TIME);
    let audio = baresip.command("audio_debug", "");
    let callstat = baresip.command("callstat", "");
    baresip.command("hangup", "");
    let closed = baresip.wait_event("CALL_CLOSED", Duration::from_secs(5));
    baresip.command("quit", "");
    baresip.proc.wait_timeout(Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(500));
    let calls_left = relay.client().list_calls();
    uas.stop(Duration::from_secs(2));
    kamailio.stop(Duration::from_secs(3));
    let packets = capture.finish();

    // 1. Signalling: SRTP toward baresip, plain RTP toward SIPp.
    assert!(
        closed.is_some(),
        "baresip's hang-up did not close the call {here}"
    );
    let menc = baresip
        .events
        .iter()
        .find(|e| e["type"] == "CALL_MENC")
        .and_then(|e| e["param"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("baresip reported no media encryption {here}"));
    let suite = menc.rsplit(',').next().unwrap_or_default().to_owned();
    let tag = srtp_overhead(&suite)
        .unwrap_or_else(|| panic!("unexpected SRTP suite {suite:?} (CALL_MENC {menc:?}) {here}"));
    assert!(
        audio.contains("menc: srtp-mand (secure=yes)"),
        "baresip's audio is not secure {here}:\n{audio}"
    );
    assert!(
        callstat.contains("audio RTP/SAVP"),
        "baresip's media is not RTP/SAVP {here}:\n{callstat}"
    );
    let remote_attrs = callstat
        .rsplit("remote attributes:")
        .next()
        .unwrap_or_default();
    assert!(
        remote_attrs.contains("crypto='"),
        "the answer baresip got has no a=crypto {here}:\n{callstat}"
    );
    let invite = received_invite(&dir.join("uas_msg.log"))
        .unwrap_or_else(|| panic!("SIPp's trace has no INVITE {here}"));
    let m_line = invite
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .unwrap_or_else(|| panic!("the INVITE SIPp got has no m=audio {here}:\n{invite}"));
    assert!(
        m_line.split_whitespace().nth(2) == Some("RTP/AVP") && !invite.contains("a=crypto"),
        "the INVITE SIPp got is not plain RTP/AVP {here}:\n{invite}"
    );

    // 2. The four legs, from the addresses in the SDPs.
    let relay_a = remote_rtp(&audio).unwrap_or_else(|| {
        panic!("no remote RTP address in baresip's audio_debug {here}:\n{audio}")
    });
    let caller = local_rtp(&audio)
        .unwrap_or_else(|| panic!("no local RTP port in baresip's audio_debug {here}:\n{audio}"));
    let relay_b = sdp_media_endpoint(&invite)
        .unwrap_or_else(|| panic!("no media address in SIPp's INVITE {here}:\n{invite}"));
    let callee = SocketAddr::from((CALLEE, uas_media));
    let up_in = flow(&packets, caller, relay_a);
    let up_out = flow(&packets, relay_b, callee);
    let down_in = flow(&packets, callee, relay_b);
    let down_out = flow(&packets, relay_a, caller);
    let legs = [
        ("baresip -> relay (SRTP)", up_in.len()),
        ("relay -> SIPp (RTP)", up_out.len()),
        ("SIPp -> relay (RTP)", down_in.len()),
        ("relay -> baresip (SRTP)", down_out.len()),
    ];
    assert!(
        legs.iter().all(|(_, n)| *n >= MIN_PACKETS),
        "packets per leg {legs:?} (relay {relay_a} / {relay_b}), want >= {MIN_PACKETS} each {here}\n\
         relay log tail:\n{}",
        relay.log_tail(30)
    );
    let rcvd = debug_number(&audio, "rcvd=").unwrap_or(0);
    let sent = debug_number(&audio, "TX: packets=").unwrap_or(0);
    assert!(
        rcvd >= MIN_PACKETS as u64 && sent >= MIN_PACKETS as u64,
        "baresip received {rcvd} (after SRTP authentication) and sent {sent} RTP packets, want >= \
         {MIN_PACKETS} {here}:\n{audio}"
    );

    // 3. What is on the wire: SRTP on baresip's side, plain RTP on SIPp's.
    let lens = [
        usual_len(&up_in),
        usual_len(&up_out),
        usual_len(&down_in),
        usual_len(&down_out),
    ];
    assert!(
        lens[0] == lens[1] + tag && lens[3] == lens[2] + tag,
        "datagram lengths {lens:?} (baresip->relay, relay->SIPp, SIPp->relay, relay->baresip): the \
         relay must strip and add the {tag}-byte SRTP overhead of {suite} {here}"
    );
    let tone = sign_changes(&up_out);
    let cipher = sign_changes(&up_in);
    assert!(
        tone < 40.0 && cipher > 60.0,
        "sign changes per packet: relay->SIPp {tone:.1} (a 440 Hz A-law tone has ~18), baresip->relay \
         {cipher:.1} (ciphertext ~80): the relay must decrypt toward SIPp {here}"
    );
    let clear: std::collections::HashSet<&[u8]> = down_in
        .iter()
        .filter_map(|p| rtp_payload(&p.payload))
        .collect();
    let leaked = down_out
        .iter()
        .filter_map(|p| rtp_payload(&p.payload))
        .filter(|body| clear.iter().any(|c| body.starts_with(c)))
        .count();
    assert_eq!(
        leaked, 0,
        "relay -> baresip datagrams carrying SIPp's clear payload (must be encrypted) {here}"
    );

    // 4. The hang-up freed the call.
    assert_eq!(
        calls_left.expect("relay answers list"),
        Vec::<String>::new(),
        "calls left on the relay {here}"
    );
    eprintln!(
        "baresip SRTP ({suite}) <-> SIPp RTP through {}: legs {legs:?}, lengths {lens:?}, baresip \
         rcvd {rcvd} sent {sent}, sign changes tone {tone:.1} / cipher {cipher:.1}, {:.1}s",
        relay.name(),
        started.elapsed().as_secs_f64()
    );
}

/// Bytes SRTP adds to an RTP packet with `suite` (the authentication tag, or the AEAD tag).
fn srtp_overhead(suite: &str) -> Option<usize> {
    if suite.starts_with("AEAD_AES_") {
        Some(16)
    } else if suite.ends_with("_80") {
        Some(10)
    } else if suite.ends_with("_32") {
        Some(4)
    } else {
        None
    }
}

/// The RTP payload of a datagram (after the fixed header, CSRCs and any header extension).
fn rtp_payload(b: &[u8]) -> Option<&[u8]> {
    let first = *b.first()?;
    if first >> 6 != 2 {
        return None;
    }
    let mut at = 12 + usize::from(first & 0x0f) * 4;
    if first & 0x10 != 0 {
        let words = u16::from_be_bytes([*b.get(at + 2)?, *b.get(at + 3)?]);
        at += 4 + usize::from(words) * 4;
    }
    b.get(at..)
}

/// Mean number of sign flips between consecutive A-law samples per packet (the top bit of each byte is the
/// sign): a low tone flips a few times per 20 ms, random bytes about half the time.
fn sign_changes(packets: &[&UdpPacket]) -> f64 {
    let flips: Vec<usize> = packets
        .iter()
        .filter_map(|p| rtp_payload(&p.payload))
        .map(|body| {
            body.windows(2)
                .filter(|w| (w[0] ^ w[1]) & 0x80 != 0)
                .count()
        })
        .collect();
    if flips.is_empty() {
        return 0.0;
    }
    flips.iter().sum::<usize>() as f64 / flips.len() as f64
}

/// The INVITE (with its SDP) from a SIPp `-trace_msg` log.
fn received_invite(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let block = text
        .split("-----------------------------------------------")
        .find(|b| b.contains("message received") && b.contains("INVITE sip:"))?;
    let start = block.find("INVITE sip:")?;
    Some(block.get(start..)?.replace('\r', ""))
}

/// `remote: 127.0.0.1:30166/127.0.0.1:30167` in baresip's audio_debug: the RTP address it sends to.
fn remote_rtp(audio: &str) -> Option<SocketAddr> {
    let rest = audio.split_once("remote: ")?.1;
    rest.split(['/', ' ', '\n']).next()?.parse().ok()
}

/// `local: 0.0.0.0:30022` in baresip's audio_debug: its RTP port, on 127.0.0.1 on the wire.
fn local_rtp(audio: &str) -> Option<SocketAddr> {
    let rest = audio.split_once("local: ")?.1;
    let addr: SocketAddr = rest.split([',', ' ', '\n']).next()?.parse().ok()?;
    Some(SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port())))
}
