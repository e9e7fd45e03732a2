//! End to end through real SIP: a SIPp caller (127.0.0.1) calls a SIPp callee (127.0.0.3) through Kamailio
//! (127.0.0.2, tests/e2e/kamailio.cfg), which drives the relay under test over NG (rtpengine_offer / answer /
//! delete). Both SIPp sides play sip-tester's g711a.pcap to the relay, so media flows both ways. The relay is
//! chosen by `RTPRELAY_E2E_RELAY`: `rtprelay` (default, our binary) or `rtpengine` (Debian's, the reference).
//!
//! Checks: every call succeeds in SIPp's statistics and exit code; for every call, a loopback capture
//! (`tcpdump -i lo` on the relay's port range) shows media caller → relay → callee and callee → relay → caller
//! on the ports the relay put in that call's SDPs (read from SIPp's message traces); after the run the
//! relay's `list` is empty. Needs root (raw sockets, capture); bounded to well under a minute. All ports come
//! from one `PortBlock`, so parallel runs do not collide. Logs and traces stay in the scratch dir named in a
//! failure message.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::kamailio::{
    g711a_pcap, prepare_scenarios, sipp, start_kamailio, uac_stats, wait_bound, CALLEE, CALLER,
    PROXY,
};
use common::*;

const CALLS: usize = 20;
const CONCURRENT: usize = 5;
/// Packets each of the four flows of a call must show (a call carries ~3 s of 30 ms packets: ~100).
const MIN_PACKETS: usize = 50;
/// SIPp caller's own bound on the whole run; the test waits a little longer.
const UAC_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn sipp_calls_through_kamailio_relay_media_both_ways() {
    let kind = RelayKind::from_env();
    let mut tools = vec!["kamailio", "sipp", "tcpdump"];
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

    let ports = PortBlock::acquire();
    let dir = scratch_dir("e2e-kamailio");
    prepare_scenarios(&dir, &pcap);
    let sip = |i| ports.port(i);
    let (uac_sip, proxy_sip, uas_sip, uac_media, uas_media) =
        (sip(0), sip(1), sip(2), sip(4), sip(6));

    let relay = Relay::start(kind, &ports, &[]);
    let mut capture = start_capture(&dir, ports.media_range());
    let mut kamailio = start_kamailio(
        &dir,
        "kamailio.cfg",
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

    let mut uac = Proc::spawn(
        "sipp-uac",
        sipp(&dir, "uac", CALLER, uac_sip, uac_media)
            .args([
                "-m",
                &CALLS.to_string(),
                "-l",
                &CONCURRENT.to_string(),
                "-r",
                &CONCURRENT.to_string(),
            ])
            .args(["-trace_stat", "-stf", "uac_stat.csv", "-fd", "1"])
            .args([
                "-timeout",
                &format!("{}s", UAC_TIMEOUT.as_secs()),
                "-timeout_error",
            ])
            .args(["-s", "callee", &format!("{PROXY}:{proxy_sip}")]),
        &dir.join("uac.log"),
    )
    .expect("start SIPp caller");
    let uac_status = uac.wait_timeout(UAC_TIMEOUT + Duration::from_secs(5));

    // Let the last BYEs settle, then stop the SIP side and the capture before reading results.
    std::thread::sleep(Duration::from_millis(500));
    let calls_left = relay.client().list_calls();
    uas.stop(Duration::from_secs(2));
    kamailio.stop(Duration::from_secs(3));
    capture.signal("INT");
    capture.wait_timeout(Duration::from_secs(3));
    let here = format!("(logs in {})", dir.display());

    // 1. SIPp: every call completed.
    let stats = uac_stats(&dir.join("uac_stat.csv"));
    let ok = stats.get("SuccessfulCall(C)").cloned().unwrap_or_default();
    let failed = stats.get("FailedCall(C)").cloned().unwrap_or_default();
    assert!(
        uac_status.is_some_and(|s| s.success()) && ok == CALLS.to_string() && failed == "0",
        "SIPp caller: exit {uac_status:?}, {ok:?} successful / {failed:?} failed of {CALLS} {here}\n\
         kamailio log tail:\n{}\nrelay log tail:\n{}",
        kamailio.log_tail(20),
        relay.log_tail(20)
    );

    // 2. Media through the relay, both ways, for every call, counted while that call was up (the relay may
    // reuse a freed port for a later call).
    let caller_trace = read_trace(&dir.join("uac_msg.log"));
    let callee_trace = read_trace(&dir.join("uas_msg.log"));
    let answered = sdp_by_call(&caller_trace, true, "SIP/2.0 200");
    let invited = sdp_by_call(&callee_trace, true, "INVITE ");
    let hung_up: HashMap<&str, &str> = caller_trace
        .iter()
        .filter(|m| !m.received && m.first_line.starts_with("BYE "))
        .map(|m| (m.call_id.as_str(), m.time.as_str()))
        .collect();
    assert_eq!(
        answered.len(),
        CALLS,
        "caller saw a 200 with SDP for each call {here}"
    );
    assert_eq!(
        invited.len(),
        CALLS,
        "callee saw an INVITE with SDP for each call {here}"
    );
    let packets = read_capture(&capture.log_text());
    let (min, max) = ports.media_range();
    let caller_media = SocketAddr::from((CALLER, uac_media));
    let callee_media = SocketAddr::from((CALLEE, uas_media));
    let mut fewest = [usize::MAX; 4];
    for (&call_id, &(relay_a, start)) in &answered {
        let (relay_b, _) = *invited
            .get(call_id)
            .unwrap_or_else(|| panic!("call {call_id} never reached the callee {here}"));
        let end = *hung_up
            .get(call_id)
            .unwrap_or_else(|| panic!("call {call_id} sent no BYE {here}"));
        assert_ne!(relay_a, relay_b, "{call_id}: one relay port for both sides");
        for p in [relay_a, relay_b] {
            assert!(
                (min..=max).contains(&p.port()),
                "{call_id}: relay port {p} outside {min}-{max}"
            );
        }
        let count = |from, to| {
            packets
                .iter()
                .filter(|p| {
                    p.src == from
                        && p.dst == to
                        && start <= p.time.as_str()
                        && p.time.as_str() <= end
                })
                .count()
        };
        let legs = [
            ("caller -> relay", count(caller_media, relay_a)),
            ("relay -> callee", count(relay_b, callee_media)),
            ("callee -> relay", count(callee_media, relay_b)),
            ("relay -> caller", count(relay_a, caller_media)),
        ];
        assert!(
            legs.iter().all(|(_, n)| *n >= MIN_PACKETS),
            "{call_id}: packets per flow {legs:?} (relay {relay_a} / {relay_b}, {start} .. {end}), \
             want >= {MIN_PACKETS} each {here}"
        );
        for (f, (_, n)) in fewest.iter_mut().zip(legs) {
            *f = (*f).min(n);
        }
    }
    eprintln!(
        "{CALLS} calls through {}: fewest packets per call caller->relay {}, relay->callee {}, \
         callee->relay {}, relay->caller {}",
        relay.name(),
        fewest[0],
        fewest[1],
        fewest[2],
        fewest[3]
    );

    // 3. No call left on the relay.
    assert_eq!(
        calls_left.expect("relay answers list"),
        Vec::<String>::new(),
        "calls left on the relay {here}"
    );
}

/// tcpdump on loopback for UDP within the relay's port range, one line per packet with its date and time;
/// waits until it listens.
fn start_capture(dir: &Path, (min, max): (u16, u16)) -> Proc {
    let mut cap = Proc::spawn(
        "tcpdump",
        Command::new("tcpdump").args([
            "-i",
            "lo",
            "-n",
            "-l",
            "-q",
            "-tttt",
            &format!("udp and portrange {min}-{max}"),
        ]),
        &dir.join("capture.txt"),
    )
    .expect("start tcpdump");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cap.log_text().contains("listening on") {
        assert!(
            cap.try_wait().is_none(),
            "tcpdump exited:\n{}",
            cap.log_tail(10)
        );
        assert!(Instant::now() < deadline, "tcpdump did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    cap
}

/// One SIP message from a SIPp `-trace_msg` log.
struct TraceMsg {
    /// `YYYY-MM-DD HH:MM:SS.uuuuuu`, local time (same format as `tcpdump -tttt`).
    time: String,
    received: bool,
    first_line: String,
    call_id: String,
    /// Where the message's SDP says to send audio.
    sdp: Option<SocketAddr>,
}

/// Parses a SIPp `-trace_msg` log: blocks of `----...---- <time>`, `UDP message sent|received ...`, blank,
/// then the message.
fn read_trace(path: &Path) -> Vec<TraceMsg> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for block in text.split("-----------------------------------------------") {
        let mut lines = block.lines().map(str::trim_end);
        let (Some(time), Some(what)) = (lines.next(), lines.next()) else {
            continue;
        };
        let body: Vec<&str> = lines.skip_while(|l| l.is_empty()).collect();
        let Some(first_line) = body.first() else {
            continue;
        };
        let call_id = body
            .iter()
            .find_map(|l| l.strip_prefix("Call-ID:"))
            .map(str::trim);
        out.push(TraceMsg {
            time: time.trim().to_owned(),
            received: what.contains("message received"),
            first_line: (*first_line).to_owned(),
            call_id: call_id.unwrap_or_default().to_owned(),
            sdp: sdp_media_endpoint(&body.join("\r\n")),
        });
    }
    out
}

/// For each call, the SDP media address (and time) of the first message received/sent whose first line starts
/// with `first_line`.
fn sdp_by_call<'a>(
    trace: &'a [TraceMsg],
    received: bool,
    first_line: &str,
) -> HashMap<&'a str, (SocketAddr, &'a str)> {
    let mut out = HashMap::new();
    for m in trace
        .iter()
        .filter(|m| m.received == received && m.first_line.starts_with(first_line))
    {
        if let Some(sdp) = m.sdp {
            out.entry(m.call_id.as_str())
                .or_insert((sdp, m.time.as_str()));
        }
    }
    out
}

/// One captured UDP packet.
struct Packet {
    time: String,
    src: SocketAddr,
    dst: SocketAddr,
}

/// Parses `tcpdump -tttt -n -q` lines:
/// `2024-01-01 12:00:00.000000 IP 127.0.0.1.6000 > 127.0.0.1.20010: UDP, length 172`.
fn read_capture(capture: &str) -> Vec<Packet> {
    capture
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(2) != Some(&"IP") || f.get(4) != Some(&">") {
                return None;
            }
            Some(Packet {
                time: format!("{} {}", f.first()?, f.get(1)?),
                src: dotted_addr(f.get(3)?)?,
                dst: dotted_addr(f.get(5)?.trim_end_matches(':'))?,
            })
        })
        .collect()
}

/// `127.0.0.1.6000` -> 127.0.0.1:6000.
fn dotted_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.rsplit_once('.')?;
    Some(SocketAddr::new(
        ip.parse::<IpAddr>().ok()?,
        port.parse().ok()?,
    ))
}
