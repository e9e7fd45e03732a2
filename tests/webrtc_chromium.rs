//! A real WebRTC client through the relay: headless Chromium (Debian's `chromium`, fake microphone) loads
//! tests/e2e/webrtc/call.html from this test's HTTP server and makes an audio-only call. Its offer (ICE,
//! DTLS-SRTP, rtcp-mux, `UDP/TLS/RTP/SAVPF`; sent without candidates, so the relay learns the browser's
//! address from its connectivity checks) goes to the relay as an NG `offer` with the flags that turn it into
//! plain RTP toward the other side (`ICE=remove`, `DTLS=off`, `transport-protocol=RTP/AVP`,
//! `rtcp-mux=demux`); the other side is a plain-RTP endpoint in this test that answers PCMU and sends a
//! 20 ms PCMU stream; its answer goes through the NG `answer` with the flags toward the browser
//! (`ICE=force`, `DTLS=passive`, `transport-protocol=UDP/TLS/RTP/SAVPF`, `rtcp-mux=require`), and the page
//! applies it.
//!
//! Checks: the page's `getStats()` shows at least `WANT` audio packets sent and received, its DTLS transport
//! connected with an SRTP cipher; the plain endpoint received at least `WANT` plain PCMU packets from the
//! relay; the SDP toward the browser has ICE credentials, candidates, a fingerprint and the `a=setup` asked for,
//! the SDP toward the plain side has none of these and `RTP/AVP`; after `delete` the relay lists no call.
//!
//! `webrtc_chromium_call_through_rtpengine` runs it against Debian's rtpengine (the reference);
//! `webrtc_chromium_call_through_relay_under_test` runs it against the relay `RTPRELAY_E2E_RELAY` names
//! (rtprelay by default). The relay, the HTTP server, the plain endpoint and Chromium all live in a
//! fresh network namespace with only a loopback interface (Chromium allowed to use it for WebRTC), so the
//! call runs on 127.0.0.1 and nothing can leave; Chromium runs as root with `--no-sandbox`, its host lookups
//! mapped to nothing and its background networking off. Needs root. Logs (the page's progress, Chromium's
//! output, the three SDPs, the relay's log) stay in the scratch dirs named in a failure message.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rtprelay::testkit::netns::{fresh_name, in_ns, sweep_stale, try_ip, NsGuard};
use serde_json::Value as Json;

/// Prefix of the namespaces this test makes (stale ones of killed runs are swept).
const NS_PREFIX: &str = "rpwc";
/// Audio packets each way the page and the plain endpoint must count (20 ms each: 4 s of audio).
const WANT: u64 = 200;
/// Bound on the whole call, from Chromium's start to the page's result.
const CALL_TIMEOUT: Duration = Duration::from_secs(45);
const CALL_ID: &str = "webrtc-chromium-call";

#[test]
fn webrtc_chromium_call_through_rtpengine() {
    webrtc_call(RelayKind::Rtpengine, Scenario::BrowserOffers);
}

#[test]
fn webrtc_chromium_call_through_relay_under_test() {
    webrtc_call(RelayKind::from_env(), Scenario::BrowserOffers);
}

/// The relay as the DTLS client: the answer to the browser's `actpass` says `active` (no `DTLS` key), so the
/// relay sends the ClientHello once the browser's ICE check nominated its address.
#[test]
fn webrtc_chromium_call_with_the_relay_as_dtls_client() {
    webrtc_call(RelayKind::from_env(), Scenario::RelayIsDtlsClient);
}

/// The plain side calls the browser: the relay offers `actpass` with its ICE-lite candidates, Chromium answers
/// `active` and starts ICE and DTLS as soon as it has answered, before the relay has seen that answer (the
/// relay takes the ClientHello as the provisional passive side and releases keys once the answer brings the
/// browser's fingerprint).
#[test]
fn webrtc_chromium_answers_a_call_from_the_plain_side() {
    webrtc_call(RelayKind::from_env(), Scenario::BrowserAnswers);
}

/// Who calls whom, and the DTLS roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// The browser offers; the answer towards it has `DTLS: passive` (the browser is the DTLS client).
    BrowserOffers,
    /// The browser offers; no `DTLS` key: the relay answers `a=setup:active` and is the client.
    RelayIsDtlsClient,
    /// The plain side offers to the browser (`ICE: force`, `UDP/TLS/RTP/SAVPF`); the browser answers.
    BrowserAnswers,
}

impl Scenario {
    /// The `a=setup` the relay must write towards the browser, and the browser's role in `getStats`.
    fn expected(self) -> (&'static str, &'static str) {
        match self {
            Scenario::BrowserOffers => ("a=setup:passive", "client"),
            Scenario::RelayIsDtlsClient => ("a=setup:active", "server"),
            Scenario::BrowserAnswers => ("a=setup:actpass", "client"),
        }
    }

    /// The files the signalling wrote the SDP towards the browser and towards the plain side to.
    fn sdp_files(self) -> (&'static str, &'static str) {
        match self {
            Scenario::BrowserAnswers => ("offer-to-browser.sdp", "answer-to-plain.sdp"),
            _ => ("answer-to-browser.sdp", "offer-to-plain.sdp"),
        }
    }

    /// The page's `mode` parameter.
    fn mode(self) -> &'static str {
        match self {
            Scenario::BrowserAnswers => "answer",
            _ => "offer",
        }
    }
}

fn webrtc_call(kind: RelayKind, scenario: Scenario) {
    let mut tools = vec!["chromium", "ip"];
    if kind == RelayKind::Rtpengine {
        tools.push("rtpengine");
    }
    if !tools.iter().all(|t| require_or_skip(t))
        || !require_root_or_skip("a network namespace and Chromium as root")
    {
        return;
    }
    let started = Instant::now();
    let ports = PortBlock::acquire();
    let dir = scratch_dir("webrtc-chromium");
    // Everything lives in a fresh namespace with only a loopback interface: the browser's one candidate is
    // 127.0.0.1, and nothing of the call can leave it.
    sweep_stale(NS_PREFIX);
    let ns = NsGuard(fresh_name(NS_PREFIX, ""));
    ns_ip(&["netns", "add", &ns.0]);
    ns_ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
    let relay = NsRelay::start(&ns.0, kind, &ports);
    let here = format!(
        "(logs in {}, relay log {})",
        dir.display(),
        relay.proc.log_path().display()
    );

    // The plain-RTP side: sends PCMU to the relay once the offer tells where, counts what comes back.
    let peer_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.port(10)));
    let peer = PlainPeer::start(in_ns_or_panic(&ns.0, move || UdpSocket::bind(peer_addr)));
    // An attacker next to the browser (rtprelay runs only): from the moment the relay's browser-facing
    // port is in an SDP until the end, it sends that port a STUN check without valid integrity, a DTLS
    // ClientHello and SRTP-looking junk. None of it may win the ICE or DTLS race or reach the plain side.
    let attacker = (kind != RelayKind::Rtpengine).then(|| {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Attacker::start(in_ns_or_panic(&ns.0, move || UdpSocket::bind(any)))
    });

    // Signalling: the page's HTTP server, which drives the relay over NG.
    let http_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.port(0)));
    let http = in_ns_or_panic(&ns.0, move || TcpListener::bind(http_addr));
    let url = format!("http://{http_addr}/?want={WANT}&mode={}", scenario.mode());
    let (result_tx, result_rx) = mpsc::channel();
    let signalling = Signalling {
        ng: relay.client(),
        dir: dir.clone(),
        peer_addr,
        peer_target: peer.target.clone(),
        browser_port: attacker.as_ref().map(|a| a.target.clone()),
        scenario,
    };
    std::thread::spawn(move || serve(http, &signalling, &result_tx));

    let chromium = start_chromium(&ns.0, &dir, &url);
    let result = result_rx.recv_timeout(CALL_TIMEOUT);
    drop(chromium);
    // The profile (a few MB a run) is of no use afterwards.
    let _ = std::fs::remove_dir_all(dir.join("chromium-profile"));
    let (peer_rx, peer_tx) = peer.stop();
    let attacks = attacker.map(Attacker::stop);
    let query = relay.client().query(CALL_ID);
    let delete = relay.client().delete(CALL_ID, "browser");
    let calls_left = relay.client().list_calls();
    let page_log = std::fs::read_to_string(dir.join("page.log")).unwrap_or_default();

    let result: Json = result.unwrap_or_else(|_| {
        panic!(
            "the page posted no result within {CALL_TIMEOUT:?} {here}\npage log:\n{page_log}\n\
             relay log tail:\n{}",
            relay.log_tail(30)
        )
    });
    let num = |k: &str| result[k].as_u64().unwrap_or(0);
    assert!(
        result["error"].is_null() && num("sent") >= WANT && num("received") >= WANT,
        "page's getStats: {result} (want >= {WANT} audio packets sent and received) {here}\n\
         page log:\n{page_log}\nrelay log tail:\n{}",
        relay.log_tail(30)
    );
    let (setup, browser_role) = scenario.expected();
    let (to_browser_file, to_plain_file) = scenario.sdp_files();
    assert!(
        result["dtls"] == "connected"
            && result["srtpCipher"].as_str().is_some_and(|c| !c.is_empty())
            && result["dtlsRole"] == browser_role,
        "the browser's transport is not DTLS-SRTP with the browser as DTLS {browser_role}: {result} {here}"
    );
    assert!(
        peer_rx >= WANT && peer_tx >= WANT,
        "plain endpoint received {peer_rx} plain PCMU packets from the relay and sent {peer_tx}, want >= \
         {WANT} {here}"
    );

    let to_browser = std::fs::read_to_string(dir.join(to_browser_file)).unwrap_or_default();
    for want in [
        "UDP/TLS/RTP/SAVPF",
        "a=ice-ufrag:",
        "a=candidate:",
        "a=fingerprint:",
        setup,
        "a=rtcp-mux",
    ] {
        assert!(
            to_browser.contains(want),
            "SDP to the browser lacks {want} {here}:\n{to_browser}"
        );
    }
    let to_plain = std::fs::read_to_string(dir.join(to_plain_file)).unwrap_or_default();
    assert!(
        to_plain.contains(" RTP/AVP ")
            && ![
                "a=ice-",
                "a=candidate",
                "a=fingerprint",
                "a=crypto",
                "a=setup"
            ]
            .iter()
            .any(|a| to_plain.contains(a)),
        "SDP to the plain side is not plain RTP/AVP {here}:\n{to_plain}"
    );
    // rtprelay's `query` shows the browser stream's handshakes done, and the attacker's junk counted as
    // errors of that stream (the call above went on regardless).
    if let Some(sent) = attacks {
        let q = expect_ok(query, "query");
        let mut states = Vec::new();
        let mut errors = Vec::new();
        collect_states(&Value::Dict(q), &mut states, &mut errors);
        for want in [("ICE state", "completed"), ("DTLS state", "connected")] {
            assert!(
                states.iter().any(|(k, v)| k == want.0 && v == want.1),
                "query shows no {want:?}: {states:?} {here}"
            );
        }
        assert!(sent >= 30, "the attacker sent only {sent} datagrams {here}");
        assert!(
            errors.iter().any(|e| *e > 0),
            "the attacker's {sent} datagrams are not counted as errors of the browser's stream: \
             {errors:?} {here}"
        );
    }
    expect_ok(delete, "delete");
    assert_eq!(
        calls_left.expect("relay answers list"),
        Vec::<String>::new(),
        "calls left on the relay {here}"
    );
    eprintln!(
        "chromium WebRTC <-> plain RTP through {}: page {result}, plain endpoint rx {peer_rx} tx {peer_tx}, \
         attacker datagrams {}, {:.1}s",
        relay.name(),
        attacks.map_or("none".to_owned(), |n| n.to_string()),
        started.elapsed().as_secs_f64()
    );
}

/// Every `ICE state` and `DTLS state` text anywhere in a `query` reply, and the `errors` of the streams
/// that have an `ICE state`.
fn collect_states(v: &Value, out: &mut Vec<(String, String)>, errors: &mut Vec<i64>) {
    match v {
        Value::Dict(d) => {
            if d.contains_key(b"ICE state".as_slice()) {
                if let Some(Value::Dict(stats)) = d.get(b"stats".as_slice()) {
                    if let Some(Value::Int(n)) = stats.get(b"errors".as_slice()) {
                        errors.push(*n);
                    }
                }
            }
            for (k, v) in d {
                let key = String::from_utf8_lossy(k);
                match v.as_str() {
                    Some(text) if key == "ICE state" || key == "DTLS state" => {
                        out.push((key.into_owned(), text.to_owned()));
                    }
                    _ => collect_states(v, out, errors),
                }
            }
        }
        Value::List(l) => l.iter().for_each(|v| collect_states(v, out, errors)),
        _ => {}
    }
}

/// Sends junk to the relay's browser-facing socket every 10 ms once `target` is set.
struct Attacker {
    target: Arc<Mutex<Option<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Attacker {
    fn start(sock: UdpSocket) -> Attacker {
        let target = Arc::new(Mutex::new(None::<SocketAddr>));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (target.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut sent = 0u64;
            let mut n = 0u8;
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                let Some(to) = t.lock().ok().and_then(|g| *g) else {
                    continue;
                };
                n = n.wrapping_add(1);
                let junk = match n % 3 {
                    0 => stun_with_bad_integrity(n),
                    1 => dtls_client_hello(n),
                    _ => srtp_looking(n),
                };
                if sock.send_to(&junk, to).is_ok() {
                    sent += 1;
                }
            }
            sent
        });
        Attacker {
            target,
            stop,
            thread,
        }
    }

    /// Datagrams sent.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// A Binding request with USE-CANDIDATE, a USERNAME and a MESSAGE-INTEGRITY nobody computed.
fn stun_with_bad_integrity(n: u8) -> Vec<u8> {
    let mut attrs = Vec::new();
    let user = b"abcdefgh:W77c";
    attrs.extend([0x00, 0x06, 0x00, user.len() as u8]);
    attrs.extend(user);
    attrs.extend([0, 0, 0]); // padding to 4
    attrs.extend([0x00, 0x25, 0x00, 0x00]); // USE-CANDIDATE
    attrs.extend([0x00, 0x08, 0x00, 0x14]);
    attrs.extend([n; 20]); // MESSAGE-INTEGRITY
    let mut m = vec![0x00, 0x01];
    m.extend((attrs.len() as u16).to_be_bytes());
    m.extend([0x21, 0x12, 0xa4, 0x42]);
    m.extend([n; 12]);
    m.extend(attrs);
    m
}

/// A DTLS 1.2 handshake record that starts like a ClientHello.
fn dtls_client_hello(n: u8) -> Vec<u8> {
    let mut r = vec![0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, n, 0, 60];
    r.extend([0x01, 0, 0, 48, 0, 0, 0, 0, 0, 0, 0, 0, 48, 0xfe, 0xfd]);
    r.extend([n; 45]);
    r
}

/// An RTP header with junk after it, as forged SRTP would look.
fn srtp_looking(n: u8) -> Vec<u8> {
    let mut p = vec![0x80, 0x6f, 0, n, 0, 0, 0, n, 0xde, 0xad, 0xbe, 0xef];
    p.extend([n; 100]);
    p
}

/// Headless Chromium on `url` in namespace `ns`, as root, fake audio device, loopback candidates allowed.
fn start_chromium(ns: &str, dir: &Path, url: &str) -> Proc {
    let profile = dir.join("chromium-profile");
    Proc::spawn(
        "chromium",
        Command::new("ip")
            .args(["netns", "exec", ns, "chromium"])
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                // A container's /dev/shm can be too small for Chromium's shared memory.
                "--disable-dev-shm-usage",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                // The namespace has loopback only, which WebRTC leaves out of its networks by default.
                "--allow-loopback-in-peer-connection",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-domain-reliability",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                // No mDNS candidates and no local-network discovery.
                "--disable-features=WebRtcHideLocalIpsWithMdns,MediaRouter,DialMediaRouteProvider",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url),
        &dir.join("chromium.log"),
    )
    .expect("start chromium")
}

/// Runs `f` (which makes a socket) inside namespace `ns`; the socket stays there.
fn in_ns_or_panic<T, F>(ns: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    in_ns(ns, f)
        .and_then(|r| r)
        .unwrap_or_else(|e| panic!("socket in namespace {ns}: {e}"))
}

/// `ip ARGS`, panicking with its error.
fn ns_ip(args: &[&str]) {
    if let Err(e) = try_ip(args) {
        panic!("{e}");
    }
}

/// The relay under test started inside a namespace (`ip netns exec` execs it, so the PID is the relay's),
/// with NG clients whose sockets are in that namespace too.
struct NsRelay {
    proc: Proc,
    ns: String,
    ng: SocketAddr,
    name: &'static str,
}

impl NsRelay {
    fn start(ns: &str, kind: RelayKind, ports: &PortBlock) -> NsRelay {
        let log = scratch_dir(kind.name()).join("relay.log");
        let mut proc = Proc::spawn(
            kind.name(),
            Command::new("ip")
                .args(["netns", "exec", ns])
                .arg(kind.program())
                .args(relay_args(ports, &[])),
            &log,
        )
        .expect("start relay");
        let ng = ports.ng_addr();
        let mut client = in_ns_or_panic(ns, move || NgClient::new(ng));
        client.timeout = Duration::from_millis(200);
        client.retries = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(
                proc.try_wait().is_none(),
                "{} exited before answering ping; log {}:\n{}",
                kind.name(),
                log.display(),
                proc.log_tail(30)
            );
            if client
                .ping()
                .is_ok_and(|r| get_str(&r, "result") == Some("pong"))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer ping; log {}:\n{}",
                kind.name(),
                log.display(),
                proc.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        NsRelay {
            proc,
            ns: ns.to_owned(),
            ng,
            name: kind.name(),
        }
    }

    /// An NG client (1 s timeout, 2 retries) with its socket in the relay's namespace.
    fn client(&self) -> NgClient {
        let ng = self.ng;
        in_ns_or_panic(&self.ns, move || NgClient::new(ng))
    }

    fn name(&self) -> &str {
        self.name
    }

    fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }
}

/// What the signalling server needs: the relay, where to log, and the plain endpoint.
struct Signalling {
    ng: NgClient,
    dir: PathBuf,
    peer_addr: SocketAddr,
    peer_target: Arc<Mutex<Option<SocketAddr>>>,
    /// Where the attacker aims: the relay's socket in the SDP towards the browser.
    browser_port: Option<Arc<Mutex<Option<SocketAddr>>>>,
    scenario: Scenario,
}

impl Signalling {
    /// The browser's offer through the relay to the plain side and the plain answer back; returns the SDP
    /// for the browser.
    fn offer(&self, browser_sdp: &str) -> Result<String, String> {
        std::fs::write(self.dir.join("offer-from-browser.sdp"), browser_sdp).ok();
        let offer = self
            .ng
            .request(dict([
                ("command", "offer".into()),
                ("call-id", CALL_ID.into()),
                ("from-tag", "browser".into()),
                ("sdp", browser_sdp.into()),
                ("ICE", "remove".into()),
                ("DTLS", "off".into()),
                ("transport-protocol", "RTP/AVP".into()),
                ("rtcp-mux", str_list(&["demux"])),
            ]))
            .map_err(|e| format!("NG offer: {e}"))?;
        let plain = get_str(&offer, "sdp").ok_or_else(|| format!("offer reply: {offer:?}"))?;
        std::fs::write(self.dir.join("offer-to-plain.sdp"), plain).ok();
        let target = sdp_media_endpoint(plain).ok_or("no media address in the plain offer")?;
        *self.peer_target.lock().map_err(|e| e.to_string())? = Some(target);

        let plain_answer = self.plain_sdp();
        let mut request: Vec<(&str, Value)> = vec![
            ("command", "answer".into()),
            ("call-id", CALL_ID.into()),
            ("from-tag", "browser".into()),
            ("to-tag", "plain".into()),
            ("sdp", plain_answer.as_str().into()),
            ("ICE", "force".into()),
            ("transport-protocol", "UDP/TLS/RTP/SAVPF".into()),
            ("rtcp-mux", str_list(&["require"])),
        ];
        if self.scenario == Scenario::BrowserOffers {
            request.push(("DTLS", "passive".into()));
        }
        let answer = self
            .ng
            .request(
                request
                    .into_iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v))
                    .collect(),
            )
            .map_err(|e| format!("NG answer: {e}"))?;
        let sdp = get_str(&answer, "sdp").ok_or_else(|| format!("answer reply: {answer:?}"))?;
        std::fs::write(self.dir.join("answer-to-browser.sdp"), sdp).ok();
        self.aim_attacker(sdp);
        Ok(sdp.to_owned())
    }

    /// The plain side's SDP (offer or answer): PCMU at the plain endpoint.
    fn plain_sdp(&self) -> String {
        [
            "v=0".to_owned(),
            format!("o=- 2002 1 IN IP4 {}", self.peer_addr.ip()),
            "s=plain".to_owned(),
            format!("c=IN IP4 {}", self.peer_addr.ip()),
            "t=0 0".to_owned(),
            format!("m=audio {} RTP/AVP 0", self.peer_addr.port()),
            "a=rtpmap:0 PCMU/8000".to_owned(),
            "a=ptime:20".to_owned(),
            "a=sendrecv".to_owned(),
            String::new(),
        ]
        .join("\r\n")
    }

    /// The plain side's offer through the relay towards the browser; returns the SDP for the browser.
    fn incoming(&self) -> Result<String, String> {
        let offer = self
            .ng
            .request(dict([
                ("command", "offer".into()),
                ("call-id", CALL_ID.into()),
                ("from-tag", "plain".into()),
                ("sdp", self.plain_sdp().as_str().into()),
                ("ICE", "force".into()),
                ("transport-protocol", "UDP/TLS/RTP/SAVPF".into()),
                ("rtcp-mux", str_list(&["require"])),
            ]))
            .map_err(|e| format!("NG offer: {e}"))?;
        let sdp = get_str(&offer, "sdp").ok_or_else(|| format!("offer reply: {offer:?}"))?;
        std::fs::write(self.dir.join("offer-to-browser.sdp"), sdp).ok();
        self.aim_attacker(sdp);
        Ok(sdp.to_owned())
    }

    /// The browser's answer through the relay back to the plain side, which then starts sending.
    fn browser_answered(&self, browser_sdp: &str) -> Result<String, String> {
        std::fs::write(self.dir.join("answer-from-browser.sdp"), browser_sdp).ok();
        let answer = self
            .ng
            .request(dict([
                ("command", "answer".into()),
                ("call-id", CALL_ID.into()),
                ("from-tag", "plain".into()),
                ("to-tag", "browser".into()),
                ("sdp", browser_sdp.into()),
                ("ICE", "remove".into()),
                ("transport-protocol", "RTP/AVP".into()),
                ("rtcp-mux", str_list(&["demux"])),
            ]))
            .map_err(|e| format!("NG answer: {e}"))?;
        let plain = get_str(&answer, "sdp").ok_or_else(|| format!("answer reply: {answer:?}"))?;
        std::fs::write(self.dir.join("answer-to-plain.sdp"), plain).ok();
        let target = sdp_media_endpoint(plain).ok_or("no media address in the plain answer")?;
        *self.peer_target.lock().map_err(|e| e.to_string())? = Some(target);
        Ok(String::new())
    }

    /// Points the attacker at the relay's socket in `sdp_to_browser`.
    fn aim_attacker(&self, sdp_to_browser: &str) {
        if let (Some(t), Some(at)) = (&self.browser_port, sdp_media_endpoint(sdp_to_browser)) {
            if let Ok(mut g) = t.lock() {
                *g = Some(at);
            }
        }
    }

    fn log(&self, line: &str) {
        if let Ok(mut f) = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("page.log"))
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// A minimal HTTP/1.1 server for the page: `GET /` (the page), `POST /offer`, `POST /log`, `POST /result`
/// (sent on `results`, then the server stops). One request per connection.
fn serve(listener: TcpListener, sig: &Signalling, results: &mpsc::Sender<Json>) {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/webrtc/call.html");
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let Some((method, path, body)) = read_request(&mut conn) else {
            continue;
        };
        let route = path.split('?').next().unwrap_or_default();
        let (status, ctype, reply) = match (method.as_str(), route) {
            ("GET", "/") => match std::fs::read_to_string(&page) {
                Ok(html) => ("200 OK", "text/html", html),
                Err(e) => ("500 Error", "text/plain", e.to_string()),
            },
            ("POST", "/offer") => match sig.offer(&body) {
                Ok(sdp) => ("200 OK", "application/sdp", sdp),
                Err(e) => {
                    sig.log(&format!("signalling error: {e}"));
                    ("502 Bad Gateway", "text/plain", e)
                }
            },
            ("GET", "/incoming") => match sig.incoming() {
                Ok(sdp) => ("200 OK", "application/sdp", sdp),
                Err(e) => {
                    sig.log(&format!("signalling error: {e}"));
                    ("502 Bad Gateway", "text/plain", e)
                }
            },
            ("POST", "/answer") => match sig.browser_answered(&body) {
                Ok(_) => ("200 OK", "text/plain", String::new()),
                Err(e) => {
                    sig.log(&format!("signalling error: {e}"));
                    ("502 Bad Gateway", "text/plain", e)
                }
            },
            ("POST", "/log") => {
                sig.log(&body);
                ("200 OK", "text/plain", String::new())
            }
            ("POST", "/result") => {
                sig.log(&format!("result {body}"));
                let json = serde_json::from_str(&body).unwrap_or_else(
                    |e| serde_json::json!({"error": format!("bad result {body:?}: {e}")}),
                );
                respond(&mut conn, "200 OK", "text/plain", "");
                let _ = results.send(json);
                return;
            }
            _ => ("404 Not Found", "text/plain", String::new()),
        };
        respond(&mut conn, status, ctype, &reply);
    }
}

/// Reads one request: method, path and body (by Content-Length).
fn read_request(conn: &mut TcpStream) -> Option<(String, String, String)> {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut len = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                len = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, String::from_utf8_lossy(&body).into_owned()))
}

fn respond(conn: &mut TcpStream, status: &str, ctype: &str, body: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The plain-RTP peer: one UDP socket that sends a PCMU stream (20 ms) to `target` once it is known and
/// counts the plain PCMU packets (RTP version 2, payload type 0, 160 bytes of audio) it receives.
struct PlainPeer {
    target: Arc<Mutex<Option<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl PlainPeer {
    fn start(sock: UdpSocket) -> PlainPeer {
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .expect("peer timeout");
        let target = Arc::new(Mutex::new(None::<SocketAddr>));
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let (t, s, r, n) = (target.clone(), stop.clone(), received.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut next_send = Instant::now();
            let mut seq = 0u16;
            while !s.load(Ordering::Relaxed) {
                if let Ok((len, _)) = sock.recv_from(&mut buf) {
                    if let Some(p) = buf.get(..len).and_then(RtpPacket::parse) {
                        if p.payload_type == 0 && p.payload.len() == 160 {
                            r.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                let to = t.lock().ok().and_then(|g| *g);
                if let Some(to) = to {
                    if Instant::now() >= next_send {
                        let pkt = RtpPacket::pcmu(0x5eed_0001, seq).to_bytes();
                        if sock.send_to(&pkt, to).is_ok() {
                            n.fetch_add(1, Ordering::Relaxed);
                        }
                        seq = seq.wrapping_add(1);
                        next_send += Duration::from_millis(20);
                    }
                } else {
                    next_send = Instant::now();
                }
            }
        });
        PlainPeer {
            target,
            stop,
            received,
            sent,
            thread,
        }
    }

    /// Stops the peer; returns (packets received, packets sent).
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (
            self.received.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
        )
    }
}
