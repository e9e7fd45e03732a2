//! The operator's control tool: `--listen-cli` with `rtprelay-ctl` (and Debian's `rtpengine-ctl`, when
//! installed) against a running relay, each verb; side by side with Debian's `rtpengine` given the same state,
//! the answers compared after normalising what legitimately differs (times, ports, the NG peer); hostile
//! input on the CLI port; and `--log-format=json`, whose every line parses and whose lines about a call carry
//! its call-id.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::call::{Call, LO};
use common::ctl::{ctl, ctl_with};
use common::*;

/// A relay with its CLI on a spare port of the block.
fn start(kind: RelayKind, ports: &PortBlock, extra: &[&str]) -> (Relay, SocketAddr) {
    let cli = SocketAddr::from((LO, ports.port(17)));
    let mut args = vec![format!("--listen-cli={cli}")];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let relay = Relay::start(kind, ports, &args);
    // The CLI listener may come up just after NG.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(cli).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} CLI on {cli} not up",
            kind.name()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (relay, cli)
}

fn offer_only(ng: &NgClient, ports: &PortBlock, call_id: &str) {
    let sdp = sdp_offer(LO, ports.port(10));
    expect_ok(ng.offer(call_id, "caller", &sdp, &[]), "offer");
}

#[test]
fn every_verb_against_a_running_relay() {
    let ports = PortBlock::acquire();
    let (relay, cli) = start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();

    assert_eq!(
        ctl(cli, "list numsessions"),
        "Current sessions own: 0\nCurrent sessions foreign: 0\nCurrent sessions total: 0\n\
         Current transcoded media: 0\nCurrent sessions ipv4 only media: 0\n\
         Current sessions ipv6 only media: 0\nCurrent sessions ip mixed  media: 0\n"
    );
    assert_eq!(
        ctl(cli, "list sessions all"),
        "No sessions on this media relay.\n"
    );
    assert_eq!(
        ctl(cli, "list sessions own"),
        "No own sessions on this media relay.\n"
    );

    let call = Call::setup(&ng, &ports, &[]);
    assert!(ctl(cli, "list numsessions").starts_with("Current sessions own: 1\n"));
    let all = ctl(cli, "list sessions all");
    assert!(
        all.starts_with("callid: ")
            && all.contains(&format!(" {} | deletionmark:  no | created:", call.id))
            && all.contains("| proxy:127.0.0.1:"),
        "{all}"
    );
    assert_eq!(ctl(cli, "list sessions own"), all);
    let detail = ctl(cli, &format!("list sessions {}", call.id));
    assert!(
        detail.contains(&format!("callid: {}\n", call.id)) && detail.contains("--- Tag 'tag-a'"),
        "{detail}"
    );
    let totals = ctl(cli, "list totals");
    assert!(
        totals.starts_with("\nStatistics over currently running sessions:\n\n"),
        "{totals}"
    );
    assert!(
        totals.contains(&format!(" {:<48}:1\n", "Owned sessions")),
        "{totals}"
    );

    // Settings.
    assert_eq!(
        ctl(cli, "get maxsessions"),
        "Maximum sessions configured on rtpengine: -1\n"
    );
    assert_eq!(
        ctl(cli, "set maxsessions 1"),
        "Success setting maxsessions to 1\n"
    );
    assert_eq!(
        ctl(cli, "get maxsessions"),
        "Maximum sessions configured on rtpengine: 1\n"
    );
    let refused = ng
        .offer("second", "caller", &sdp_offer(LO, ports.port(12)), &[])
        .expect("offer reply");
    assert_eq!(
        get_str(&refused, "result"),
        Some("error"),
        "limit applies: {refused:?}"
    );
    assert_eq!(
        ctl(cli, "set maxsessions -1"),
        "Success setting maxsessions to -1; disable feature\n"
    );
    assert_eq!(
        ctl(cli, "set maxsessions -5"),
        "Fail setting maxsessions to -5; either positive or -1 values allowed\n"
    );
    assert_eq!(ctl(cli, "get timeout"), "TIMEOUT=60\n");
    assert_eq!(
        ctl(cli, "set timeout 90"),
        "Success setting timeout to 90\n"
    );
    assert_eq!(ctl(cli, "get timeout"), "TIMEOUT=90\n");
    assert_eq!(ctl(cli, "get loglevel"), "core = 7\n");
    assert_eq!(
        ctl(cli, "set loglevel 6"),
        "Success setting loglevel to 6\n"
    );
    assert_eq!(ctl(cli, "get loglevel core"), "6\n");

    // terminate one call, then all.
    assert_eq!(
        ctl(cli, "terminate nosuch"),
        "\nCall Id not found (nosuch).\n\n"
    );
    assert_eq!(
        ctl(cli, &format!("terminate {}", call.id)),
        format!(
            "\nCall Id ({}) successfully terminated by operator.\n\n",
            call.id
        )
    );
    let q = ng.query(&call.id).expect("query reply");
    assert_eq!(
        get_str(&q, "result"),
        Some("error"),
        "the call is gone: {q:?}"
    );
    offer_only(&ng, &ports, "one");
    offer_only(&ng, &ports, "two");
    assert_eq!(
        ctl(cli, "terminate all"),
        "All calls terminated by operator.\n"
    );
    assert!(ctl(cli, "list numsessions").starts_with("Current sessions own: 0\n"));
    let totals = ctl(cli, "list totals");
    assert!(
        totals.contains(&format!(" {:<48}:3\n", "Total forced terminated sessions")),
        "{totals}"
    );
    assert!(
        !totals.contains(&format!(
            " {:<48}:0.000000 seconds\n",
            "Total calls duration"
        )),
        "three calls ended, their durations add up: {totals}"
    );

    // Refusals in rtpengine's words.
    assert_eq!(ctl(cli, "list"), "More parameters required.\n");
    assert_eq!(ctl(cli, "bogus"), "Unknown or incomplete command::bogus\n");
    drop(relay);
}

/// Sends raw bytes to the CLI and reads whatever comes back before the relay closes (bounded).
fn raw(cli: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(cli).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn hostile_input_on_the_cli_port_is_refused_and_the_relay_lives() {
    let ports = PortBlock::acquire();
    let (relay, cli) = start(RelayKind::Rtprelay, &ports, &[]);
    // A line longer than the limit: closed without an answer.
    assert!(raw(cli, &vec![b'a'; 20_000]).is_empty());
    // Binary garbage with a newline: an answer, no crash.
    let answer = raw(cli, b"\xff\xfe\x00set maxsessions \xc3\n");
    assert!(String::from_utf8_lossy(&answer).starts_with("Unknown or incomplete command::"));
    // More idle connections than the listener serves at once: the CLI still answers afterwards.
    let idle: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect(cli).ok())
        .collect();
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = raw(cli, b"get maxsessions\n");
        if out == b"Maximum sessions configured on rtpengine: -1\n" {
            break;
        }
        assert!(Instant::now() < deadline, "CLI did not recover: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    expect_ok(relay.client().ping(), "ping");
}

#[test]
fn debians_rtpengine_ctl_drives_rtprelay() {
    if !require_or_skip("rtpengine-ctl") {
        return;
    }
    let prog = find_program("rtpengine-ctl").expect("rtpengine-ctl");
    let ports = PortBlock::acquire();
    let (relay, cli) = start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    offer_only(&ng, &ports, "via-rtpengine-ctl");
    for verb in [
        "list numsessions",
        "list sessions all",
        "list totals",
        "get maxsessions",
        "get timeout",
    ] {
        assert_eq!(ctl_with(&prog, cli, verb), ctl(cli, verb), "{verb}");
    }
    assert_eq!(
        ctl_with(&prog, cli, "terminate all"),
        "All calls terminated by operator.\n"
    );
    assert!(ctl(cli, "list numsessions").starts_with("Current sessions own: 0\n"));
}

/// What may differ between the two relays for the same state: times, the NG peer, local ports.
fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut l = line.to_owned();
        for key in ["created:", "last_signal:", "created: ", "last_signal: "] {
            if let Some(at) = l.find(key) {
                let start = at + key.len();
                let end = l[start..].find(" |").map_or(l.len(), |e| start + e);
                l.replace_range(start..end, "N");
            }
        }
        // The NG client's address stays; its source port differs.
        for key in ["proxy:", "proxy: "] {
            if let Some(at) = l.find(key) {
                let start = at + key.len();
                let end = l[start..].find(" |").map_or(l.len(), |e| start + e);
                if let Some(colon) = l[start..end].rfind(':') {
                    l.replace_range(start + colon..end, ":PORT");
                }
            }
        }
        if l.starts_with("-------- Port") || l.contains("callduration") {
            l = l
                .split(',')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// The ` label :value` lines' labels, in order.
fn labels(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            l.strip_prefix(' ')
                .and_then(|l| l.split_once(':'))
                .map(|(k, _)| k.trim().to_owned())
        })
        .collect()
}

#[test]
fn side_by_side_with_rtpengine() {
    if !require_or_skip("rtpengine") {
        return;
    }
    let (ours_ports, theirs_ports) = (PortBlock::acquire(), PortBlock::acquire());
    let (ours, our_cli) = start(RelayKind::Rtprelay, &ours_ports, &[]);
    let (theirs, their_cli) = start(RelayKind::Rtpengine, &theirs_ports, &[]);
    offer_only(&ours.client(), &ours_ports, "side-by-side");
    offer_only(&theirs.client(), &theirs_ports, "side-by-side");
    let same = [
        "list numsessions",
        "list sessions all",
        "list sessions own",
        "list sessions foreign",
        "list sessions nosuch",
        "get maxsessions",
        "set maxsessions 10",
        "get maxsessions",
        "set maxsessions -1",
        "set maxsessions -5",
        "set maxsessions 12abc",
        "set maxsessions -1",
        "get timeout",
        "set timeout 90",
        "get timeout",
        "set timeout -3",
        "get silenttimeout",
        "get offertimeout",
        "get finaltimeout",
        "get deletedelay",
        "set loglevel 6",
        "get loglevel core",
        "set loglevel 7",
        "terminate nosuch",
        "list",
        "get",
        "set",
        "terminate",
        "bogus",
        "list bogus",
        "set bogus 1",
        "terminate side-by-side",
        "list numsessions",
        "list sessions all",
        "terminate all",
        "terminate own",
        "terminate foreign",
    ];
    let mut diffs = Vec::new();
    for verb in same {
        let (a, b) = (
            normalise(&ctl(our_cli, verb)),
            normalise(&ctl(their_cli, verb)),
        );
        if a != b {
            diffs.push(format!("`{verb}`:\n--- rtprelay\n{a}--- rtpengine\n{b}"));
        }
        if verb == "list sessions own" {
            // One call each, created just now: the detail views agree in shape.
            let (a, b) = (
                normalise(&ctl(our_cli, "list sessions side-by-side")),
                normalise(&ctl(their_cli, "list sessions side-by-side")),
            );
            let head = |t: &str| t.lines().take(9).map(str::to_owned).collect::<Vec<_>>();
            if head(&a) != head(&b) {
                diffs.push(format!(
                    "`list sessions CALLID` header:\n--- rtprelay\n{a}--- rtpengine\n{b}"
                ));
            }
        }
    }
    // `list totals`: ours prints rtpengine's first two sections, its labels in its order.
    let (a, b) = (
        labels(&ctl(our_cli, "list totals")),
        labels(&ctl(their_cli, "list totals")),
    );
    if b.get(..a.len()) != Some(&a[..]) {
        diffs.push(format!(
            "`list totals` labels:\n--- rtprelay\n{a:#?}\n--- rtpengine\n{b:#?}"
        ));
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn json_logs_parse_and_a_calls_lines_carry_its_call_id() {
    let ports = PortBlock::acquire();
    let (mut relay, cli) = start(RelayKind::Rtprelay, &ports, &["--log-format=json"]);
    let ng = relay.client();
    let call = Call::setup(&ng, &ports, &[]);
    expect_ok(ng.delete(&call.id, "tag-a"), "delete");
    // A second call ends through the operator: its lines too carry its call-id.
    offer_only(&ng, &ports, "ended-by-operator");
    ctl(cli, "terminate ended-by-operator");
    std::thread::sleep(Duration::from_millis(300));
    relay.stop(Duration::from_secs(5));
    let log = relay.log_text();
    let mut lines_of = std::collections::HashMap::<String, usize>::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let span_call = v
            .pointer("/span/call_id")
            .and_then(|c| c.as_str())
            .map(str::to_owned);
        for id in [call.id.as_str(), "ended-by-operator"] {
            if line.contains(id) {
                assert_eq!(
                    span_call.as_deref(),
                    Some(id),
                    "a line about {id} outside its span: {line}"
                );
            }
        }
        if let Some(id) = span_call {
            *lines_of.entry(id).or_default() += 1;
        }
    }
    let ours = lines_of.get(&call.id).copied().unwrap_or(0);
    assert!(
        ours >= 4,
        "the call's lines (new call, requests, end record, destroyed): {ours}\n{log}"
    );
    assert!(
        log.contains("\"message\":\"call ended\""),
        "end-of-call record:\n{log}"
    );
    assert!(
        lines_of.get("ended-by-operator").copied().unwrap_or(0) >= 2,
        "{log}"
    );
}
