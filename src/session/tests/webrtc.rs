//! WebRTC bridging in the session layer: the DTLS and ICE lines the relay writes towards each
//! side, and what each side's flows are told to run (handshake role, the peer's fingerprint,
//! ICE credentials), for browser-to-SIP and SIP-to-browser calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::dtls::{CertCipher, Certificate, DtlsContext, DtlsOptions, Fingerprint, HashFunc, Role};
use crate::flow::{FlowCrypto, FlowId};
use crate::session::actions::MediaAction;
use crate::session::command::{
    DtlsMode, IceLite, IceMode, OfferAnswer, Profile, TransportProtocol,
};
use crate::session::keys::CountingKeys;
use crate::session::ports::AcceptAll;
use crate::session::reply::Reply;
use crate::session::{Engine, EngineConfig};

/// The browser's certificate fingerprint in its SDP.
const BROWSER_FP: &str = "sha-256 0B:30:55:7A:9F:C4:E9:0E:33:58:7D:A2:C7:EC:11:36:5B:80:A5:CA:EF:14:39:5E:83:A8:CD:F2:17:3C:61:86";

fn ctx(passive: bool) -> Arc<DtlsContext> {
    let cert = Certificate::generate(CertCipher::default(), 1_700_000_000).expect("certificate");
    let options = DtlsOptions {
        passive,
        ..DtlsOptions::default()
    };
    DtlsContext::new(cert, options, Instant::now()).expect("context")
}

fn webrtc_engine(dtls: Option<Arc<DtlsContext>>) -> Engine {
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("default", "203.0.113.1")],
        port_min: 30000,
        port_max: 30099,
        dtls,
        ..EngineConfig::default()
    });
    e.set_key_source(Box::new(CountingKeys::default()));
    e
}

/// Chrome's audio offer: no candidates yet, ICE credentials, DTLS actpass, rtcp-mux.
fn browser_sdp(setup: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1237562358473204055 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE 0\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:W77c\r\na=ice-pwd:9VEM3zWAsygAj4umZwbAYA+U\r\na=ice-options:trickle\r\n\
         a=fingerprint:{BROWSER_FP}\r\na=setup:{setup}\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n\
         a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    .into_bytes()
}

fn phone_sdp() -> Vec<u8> {
    body("198.51.100.3", &["audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"])
}

fn to_browser(mut p: OfferAnswer, dtls: DtlsMode) -> OfferAnswer {
    p.ice = IceMode::Force;
    p.transport_protocol = Some(TransportProtocol::Set(Profile::UdpTlsRtpSavpf));
    p.rtcp_mux.require = true;
    p.dtls = dtls;
    p
}

fn to_phone(mut p: OfferAnswer) -> OfferAnswer {
    p.ice = IceMode::Remove;
    p.transport_protocol = Some(TransportProtocol::Set(Profile::RtpAvp));
    p.rtcp_mux.demux = true;
    p
}

fn lines_of<'a>(sdp: &'a str, prefix: &str) -> Vec<&'a str> {
    sdp.lines().filter_map(|l| l.strip_prefix(prefix)).collect()
}

/// The last crypto of each flow, by local port.
#[derive(Default)]
struct Flows {
    port: HashMap<FlowId, u16>,
    crypto: HashMap<u16, FlowCrypto>,
}

impl Flows {
    fn take(&mut self, e: &mut Engine) {
        for a in actions(e) {
            match a {
                MediaAction::Open {
                    flow,
                    local,
                    crypto,
                    ..
                } => {
                    self.port.insert(flow, local.port());
                    self.crypto.insert(local.port(), crypto);
                }
                MediaAction::Update { flow, crypto, .. } => {
                    if let Some(p) = self.port.get(&flow) {
                        self.crypto.insert(*p, crypto);
                    }
                }
                _ => {}
            }
        }
    }

    fn get(&self, port: u16) -> &FlowCrypto {
        self.crypto
            .get(&port)
            .unwrap_or_else(|| panic!("no flow on {port}"))
    }
}

/// The phone answers the browser's offer (call `call`, browser tag `browser`), the relay
/// doing DTLS (`dtls`) and ICE towards the browser; at 1 s.
fn phone_answers(
    e: &mut Engine,
    b: &mut AcceptAll,
    call: &str,
    browser: &str,
    dtls: DtlsMode,
) -> Reply {
    answer(
        e,
        b,
        at(1),
        to_browser(oa(call, browser, Some("phone"), None, phone_sdp()), dtls),
    )
}

/// A WebRTC engine (certificate, not passive by default), a port binder and no flows yet.
fn fresh() -> (Engine, AcceptAll, Flows) {
    (
        webrtc_engine(Some(ctx(false))),
        AcceptAll::default(),
        Flows::default(),
    )
}

/// Browser offers, phone answers: returns the engine, the SDP towards the phone and the one
/// towards the browser, and the flows.
fn browser_to_phone(
    dtls: DtlsMode,
    passive_default: bool,
) -> (String, String, Flows, Arc<DtlsContext>) {
    let ctx = ctx(passive_default);
    let (mut e, mut b, mut f) = (
        webrtc_engine(Some(ctx.clone())),
        AcceptAll::default(),
        Flows::default(),
    );
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        to_phone(oa("w", "browser", None, None, browser_sdp("actpass"))),
    );
    let to_phone_sdp = text(&r, "sdp");
    f.take(&mut e);
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        to_browser(oa("w", "browser", Some("phone"), None, phone_sdp()), dtls),
    );
    let to_browser_sdp = text(&r, "sdp");
    f.take(&mut e);
    (to_phone_sdp, to_browser_sdp, f, ctx)
}

fn port_in(sdp: &str) -> u16 {
    let m = sdp.lines().find(|l| l.starts_with("m=")).expect("m=");
    m.split(' ').nth(1).expect("port").parse().expect("number")
}

#[test]
fn browser_to_phone_the_phone_sees_plain_rtp_and_nothing_of_dtls_or_ice() {
    let (to_phone_sdp, _, f, _) = browser_to_phone(DtlsMode::Passive, false);
    assert!(to_phone_sdp.contains(" RTP/AVP "), "{to_phone_sdp}");
    for gone in [
        "a=fingerprint",
        "a=setup",
        "a=ice-",
        "a=candidate",
        "a=crypto",
        "a=rtcp-mux",
    ] {
        assert!(!to_phone_sdp.contains(gone), "{gone} in {to_phone_sdp}");
    }
    // The phone's flows are plain.
    let phone = port_in(&to_phone_sdp);
    assert!(f.get(phone).is_plain() && f.get(phone + 1).is_plain());
}

#[test]
fn browser_to_phone_the_browser_gets_the_relays_fingerprint_setup_and_ice_candidates() {
    let (_, sdp, f, ctx) = browser_to_phone(DtlsMode::Passive, false);
    assert!(sdp.contains(" UDP/TLS/RTP/SAVPF "), "{sdp}");
    assert_eq!(lines_of(&sdp, "a=setup:"), vec!["passive"]);
    let ours = ctx
        .certificate()
        .fingerprint_with(HashFunc::Sha256)
        .to_string();
    assert_eq!(lines_of(&sdp, "a=fingerprint:"), vec![ours.as_str()]);
    // Full ICE by default, as rtpengine: no a=ice-lite.
    assert!(lines_of(&sdp, "a=ice-lite").is_empty(), "{sdp}");
    assert!(lines_of(&sdp, "a=crypto:").is_empty());
    assert!(sdp.contains("a=rtcp-mux\r\n"));
    let port = port_in(&sdp);
    let cands = lines_of(&sdp, "a=candidate:");
    assert_eq!(cands.len(), 1, "rtcp-mux: one component: {sdp}");
    assert!(
        cands[0].ends_with(&format!(" 1 UDP 2130706431 203.0.113.1 {port} typ host")),
        "{}",
        cands[0]
    );
    assert_eq!(lines_of(&sdp, "a=end-of-candidates"), vec![""]);
    // The browser's own ICE and DTLS lines never come back to it.
    assert!(!sdp.contains("W77c") && !sdp.contains(BROWSER_FP));

    // Its RTP flow runs the handshake as the passive side against the browser's fingerprint,
    // and answers checks with the credentials the SDP gave.
    let c = f.get(port);
    assert_eq!((&c.inbound, &c.outbound), (&None, &None));
    let dtls = c.dtls.as_ref().expect("DTLS on the browser's flow");
    assert_eq!(dtls.role, Role::Passive);
    assert_eq!(
        dtls.fingerprint,
        Some(Fingerprint::parse(BROWSER_FP).expect("fp"))
    );
    let ice = c.ice.as_ref().expect("ICE on the browser's flow");
    assert_eq!(ice.component, 1);
    assert_eq!(
        lines_of(&sdp, "a=ice-ufrag:"),
        vec![ice.local.ufrag.as_str()]
    );
    assert_eq!(lines_of(&sdp, "a=ice-pwd:"), vec![ice.local.pwd.as_str()]);
    let remote = ice.remote.as_ref().expect("browser credentials");
    assert_eq!(
        (remote.ufrag.as_str(), remote.pwd.as_str()),
        ("W77c", "9VEM3zWAsygAj4umZwbAYA+U")
    );
    // The browser offered: it controls, the relay checks as the controlled full agent.
    let full = ice.full.as_ref().expect("full ICE by default");
    assert!(!full.controlling);
    assert!(full.candidates.is_empty(), "the browser trickles");
}

#[test]
fn query_shows_dtls_and_ice_per_media_as_rtpengine_names_them() {
    let ctx = ctx(false);
    let (mut e, mut b) = (webrtc_engine(Some(ctx)), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        to_phone(oa("q", "browser", None, None, browser_sdp("actpass"))),
    );
    let r = phone_answers(&mut e, &mut b, "q", "browser", DtlsMode::Passive);
    // The browser's RTP worker reports its handshakes done.
    let browser_port = port_in(&text(&r, "sdp"));
    let flow = actions(&mut e)
        .into_iter()
        .find_map(|a| match a {
            MediaAction::Open { flow, local, .. } if local.port() == browser_port => Some(flow),
            _ => None,
        })
        .expect("the browser's RTP flow");
    e.on_handshake(
        flow,
        crate::flow::table::HandshakeState {
            ice: Some(crate::ice::IceState::Completed),
            ice_peer: Some("127.0.0.1:50000".parse().expect("addr")),
            nominated: true,
            dtls: Some(crate::dtls::DtlsState::Connected),
            dtls_peer: Some("127.0.0.1:50000".parse().expect("addr")),
            suite: Some(crate::srtp::Suite::AeadAes256Gcm),
        },
    );
    let q = e.command(
        at(2),
        crate::session::command::Command::Query(crate::session::command::CallRef {
            call_id: "q".into(),
            ..Default::default()
        }),
        &mut b,
    );
    let crate::session::Reply::Call(q) = q else {
        panic!("{q:?}")
    };
    let flags = |tag: &str| {
        q.tags.iter().find(|t| t.tag == tag).expect("tag").medias[0]
            .flags
            .clone()
    };
    let browser = flags("browser");
    for f in ["DTLS-SRTP", "DTLS role passive", "ICE", "rtcp-mux"] {
        assert!(browser.contains(&f), "{f} missing in {browser:?}");
    }
    let phone = flags("phone");
    assert!(
        !phone
            .iter()
            .any(|f| f.contains("DTLS") || f.contains("ICE")),
        "{phone:?}"
    );
    let rtp = &q
        .tags
        .iter()
        .find(|t| t.tag == "browser")
        .expect("tag")
        .medias[0]
        .streams[0];
    assert_eq!(
        (rtp.ice_state, rtp.dtls_state, rtp.crypto_suite),
        (
            Some("completed"),
            Some("connected"),
            Some("AEAD_AES_256_GCM")
        )
    );
}

#[test]
fn an_actpass_offer_is_answered_active_unless_passive_is_asked_for() {
    let (_, sdp, f, _) = browser_to_phone(DtlsMode::Default, false);
    assert_eq!(lines_of(&sdp, "a=setup:"), vec!["active"]);
    let dtls = f.get(port_in(&sdp)).dtls.clone().expect("dtls");
    assert_eq!(dtls.role, Role::Active);
    // --dtls-passive makes passive the default.
    let (_, sdp, _, _) = browser_to_phone(DtlsMode::Default, true);
    assert_eq!(lines_of(&sdp, "a=setup:"), vec!["passive"]);
    // DTLS=active wins over it.
    let (_, sdp, _, _) = browser_to_phone(DtlsMode::Active, true);
    assert_eq!(lines_of(&sdp, "a=setup:"), vec!["active"]);
}

#[test]
fn dtls_reverse_in_the_offer_sets_the_role_the_answer_takes_with_the_offerer() {
    let reverse_call = |reverse: Option<Role>, answer_dtls: DtlsMode| {
        let (mut e, mut b, mut f) = fresh();
        let mut p = to_phone(oa("r", "browser", None, None, browser_sdp("actpass")));
        p.dtls_reverse = reverse;
        offer(&mut e, &mut b, at(0), p);
        let sdp = text(
            &phone_answers(&mut e, &mut b, "r", "browser", answer_dtls),
            "sdp",
        );
        f.take(&mut e);
        let role = f.get(port_in(&sdp)).dtls.as_ref().map(|d| d.role);
        (lines_of(&sdp, "a=setup:").join(","), role)
    };
    let passive = (String::from("passive"), Some(Role::Passive));
    let active = (String::from("active"), Some(Role::Active));
    assert_eq!(
        reverse_call(Some(Role::Passive), DtlsMode::Default),
        passive
    );
    assert_eq!(reverse_call(None, DtlsMode::Default), active);
    assert_eq!(reverse_call(Some(Role::Active), DtlsMode::Default), active);
    // The answer's own DTLS key still wins.
    assert_eq!(reverse_call(Some(Role::Passive), DtlsMode::Active), active);
}

#[test]
fn phone_to_browser_offers_actpass_and_settles_on_the_browsers_answer() {
    let ctx = ctx(false);
    let (mut e, mut b, mut f) = (
        webrtc_engine(Some(ctx)),
        AcceptAll::default(),
        Flows::default(),
    );
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        to_browser(oa("s", "phone", None, None, phone_sdp()), DtlsMode::Default),
    );
    let sdp = text(&r, "sdp");
    assert_eq!(lines_of(&sdp, "a=setup:"), vec!["actpass"]);
    assert_eq!(lines_of(&sdp, "a=fingerprint:").len(), 1);
    assert_eq!(lines_of(&sdp, "a=ice-ufrag:").len(), 1);
    f.take(&mut e);
    let port = port_in(&sdp);
    // Until the answer the relay is passive: a ClientHello that beats the answer is taken.
    let early = f.get(port).dtls.clone().expect("provisional DTLS");
    assert_eq!((early.role, early.fingerprint), (Role::Passive, None));

    let r = answer(
        &mut e,
        &mut b,
        at(1),
        to_phone(oa(
            "s",
            "phone",
            Some("browser"),
            None,
            browser_sdp("active"),
        )),
    );
    let back = text(&r, "sdp");
    assert!(
        back.contains(" RTP/AVP ") && !back.contains("a=fingerprint") && !back.contains("a=ice-")
    );
    f.take(&mut e);
    let dtls = f.get(port).dtls.clone().expect("DTLS");
    assert_eq!(dtls.role, Role::Passive);
    assert_eq!(
        dtls.fingerprint,
        Some(Fingerprint::parse(BROWSER_FP).expect("fp"))
    );
    let ice = f.get(port).ice.clone().expect("ICE");
    assert_eq!(ice.remote.expect("browser creds").ufrag, "W77c");

    // A browser that answers passive makes the relay the client.
    let r = answer(
        &mut e,
        &mut b,
        at(2),
        to_phone(oa(
            "s",
            "phone",
            Some("browser"),
            None,
            browser_sdp("passive"),
        )),
    );
    assert_eq!(text(&r, "result"), "ok");
    f.take(&mut e);
    assert_eq!(f.get(port).dtls.clone().expect("DTLS").role, Role::Active);
}

#[test]
fn dtls_off_passes_the_offerers_dtls_lines_on_and_runs_no_handshake() {
    let (mut e, mut b, mut f) = fresh();
    let mut p = oa("o", "browser", None, None, browser_sdp("actpass"));
    p.dtls = DtlsMode::Off;
    let r = offer(&mut e, &mut b, at(0), p);
    let sdp = text(&r, "sdp");
    assert_eq!(lines_of(&sdp, "a=fingerprint:"), vec![BROWSER_FP]);
    assert_eq!(lines_of(&sdp, "a=setup:"), vec!["actpass"]);
    f.take(&mut e);
    assert!(f.crypto.values().all(|c| c.dtls.is_none()));
}

#[test]
fn without_a_certificate_no_dtls_is_offered_and_the_profile_still_follows_the_flags() {
    let (mut e, mut b) = (webrtc_engine(None), AcceptAll::default());
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        to_browser(oa("n", "phone", None, None, phone_sdp()), DtlsMode::Default),
    );
    let sdp = text(&r, "sdp");
    assert!(lines_of(&sdp, "a=fingerprint:").is_empty() && lines_of(&sdp, "a=setup:").is_empty());
}

#[test]
fn hostile_dtls_and_ice_lines_are_ignored_not_fatal() {
    let (mut e, mut b, mut f) = fresh();
    let bad = String::from_utf8(browser_sdp("actpass"))
        .expect("utf8")
        .replace(BROWSER_FP, "sha-256 ZZ:00")
        .replace("a=setup:actpass", "a=setup:sideways")
        .replace("a=ice-pwd:9VEM3zWAsygAj4umZwbAYA+U", "a=ice-pwd:short");
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        to_phone(oa("h", "browser", None, None, bad.into_bytes())),
    );
    assert_eq!(text(&r, "result"), "ok");
    let r = phone_answers(&mut e, &mut b, "h", "browser", DtlsMode::Passive);
    let sdp = text(&r, "sdp");
    // No usable fingerprint from the browser: the relay cannot authenticate it, so it does
    // not claim DTLS-SRTP towards it.
    assert!(lines_of(&sdp, "a=fingerprint:").is_empty(), "{sdp}");
    f.take(&mut e);
    assert!(f.crypto.values().all(|c| c.dtls.is_none()));
    // ICE was still asked for: the browser's unusable password is not taken.
    let with_ice: Vec<_> = f.crypto.values().filter_map(|c| c.ice.as_ref()).collect();
    assert!(with_ice.iter().all(|i| i.remote.is_none()));
}

#[test]
fn the_browsers_muxed_rtcp_goes_to_the_phones_rtcp_port() {
    let (mut e, mut b) = (webrtc_engine(Some(ctx(false))), AcceptAll::default());
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        to_phone(oa("m", "browser", None, None, browser_sdp("actpass"))),
    );
    let phone_port = port_in(&text(&r, "sdp"));
    let r = phone_answers(&mut e, &mut b, "m", "browser", DtlsMode::Passive);
    let browser_port = port_in(&text(&r, "sdp"));
    // Flows by local port, with their egress and RTCP egress ids.
    let mut by_port: HashMap<u16, (FlowId, Option<FlowId>, Option<FlowId>)> = HashMap::new();
    for a in actions(&mut e) {
        match a {
            MediaAction::Open {
                flow,
                local,
                egress,
                rtcp_egress,
                ..
            } => {
                by_port.insert(local.port(), (flow, egress, rtcp_egress));
            }
            MediaAction::Update {
                flow,
                egress,
                rtcp_egress,
                ..
            } => {
                if let Some(v) = by_port.values_mut().find(|v| v.0 == flow) {
                    *v = (flow, egress, rtcp_egress);
                }
            }
            _ => {}
        }
    }
    let phone_rtp = by_port[&phone_port].0;
    let phone_rtcp = by_port[&(phone_port + 1)].0;
    let (_, egress, rtcp_egress) = by_port[&browser_port];
    assert_eq!((egress, rtcp_egress), (Some(phone_rtp), Some(phone_rtcp)));
    // The phone does not mux: its RTP flow has no RTCP egress of its own, its RTCP flow goes to
    // the browser's one socket.
    assert_eq!(by_port[&phone_port].2, None);
    assert_eq!(by_port[&(phone_port + 1)].1, Some(by_port[&browser_port].0));
}

/// A gateway that is ICE-lite itself offers to a phone; its answer goes out with `ice_lite`
/// as the `ICE-lite` key of the offer. Returns the SDP towards the gateway and its flow.
fn lite_gateway_call(ice_lite: Option<IceLite>) -> (String, FlowCrypto) {
    let (mut e, mut b, mut f) = fresh();
    let lite = String::from_utf8(browser_sdp("actpass"))
        .expect("utf8")
        .replace("t=0 0\r\n", "t=0 0\r\na=ice-lite\r\n")
        .replace(
            "a=mid:0\r\n",
            "a=mid:0\r\na=candidate:1 1 udp 2130706431 198.51.100.20 5000 typ host\r\n",
        );
    let mut o = to_phone(oa("l", "gw", None, None, lite.into_bytes()));
    o.ice_lite = ice_lite;
    offer(&mut e, &mut b, at(0), o);
    f.take(&mut e);
    let r = phone_answers(&mut e, &mut b, "l", "gw", DtlsMode::Passive);
    let sdp = text(&r, "sdp");
    assert_eq!(lines_of(&sdp, "a=ice-ufrag:").len(), 1, "{sdp}");
    f.take(&mut e);
    let c = f.get(port_in(&sdp)).clone();
    assert!(c.dtls.is_some(), "DTLS still runs");
    (sdp, c)
}

#[test]
fn an_ice_lite_peer_is_checked_by_the_relay_as_the_controlling_agent() {
    // The relay answers the gateway (which offered), yet controls: a lite peer never does.
    let (sdp, c) = lite_gateway_call(None);
    assert!(lines_of(&sdp, "a=ice-lite").is_empty(), "{sdp}");
    let ice = c.ice.expect("the relay checks the lite gateway");
    let full = ice.full.expect("full ICE towards a lite peer");
    assert!(full.controlling);
    assert_eq!(full.candidates.len(), 1);
    assert_eq!(full.candidates[0].address, "198.51.100.20");
}

#[test]
fn an_ice_lite_peer_of_a_relay_asked_to_be_lite_is_latched() {
    // Two ICE-lite agents send no checks (RFC 8445 6.1.1): waiting for one would drop the call.
    let (sdp, c) = lite_gateway_call(Some(IceLite::Backward));
    assert_eq!(lines_of(&sdp, "a=ice-lite"), vec![""], "{sdp}");
    assert!(c.ice.is_none(), "no ICE checks required from a lite peer");
}

#[test]
fn ice_lite_forward_makes_the_relay_lite_towards_the_offers_receiver_and_sticks() {
    let (mut e, mut b, mut f) = fresh();
    let mut o = to_browser(oa("f", "phone", None, None, phone_sdp()), DtlsMode::Default);
    o.ice_lite = Some(IceLite::Forward);
    let r = offer(&mut e, &mut b, at(0), o);
    let sdp = text(&r, "sdp");
    assert_eq!(lines_of(&sdp, "a=ice-lite"), vec![""], "{sdp}");
    f.take(&mut e);
    let ice = f.get(port_in(&sdp)).ice.clone().expect("ICE");
    assert!(
        ice.full.is_none(),
        "lite: only the browser's checks answered"
    );
    // The browser's answer (its own lines) and a re-offer without the key: still lite.
    answer(
        &mut e,
        &mut b,
        at(1),
        to_phone(oa(
            "f",
            "phone",
            Some("browser"),
            None,
            browser_sdp("active"),
        )),
    );
    let r = offer(
        &mut e,
        &mut b,
        at(2),
        to_browser(oa("f", "phone", None, None, phone_sdp()), DtlsMode::Default),
    );
    let again = text(&r, "sdp");
    assert_eq!(lines_of(&again, "a=ice-lite"), vec![""], "{again}");
    // `off` goes back to full ICE (the relay sent the offer: it controls).
    let mut o = to_browser(oa("f", "phone", None, None, phone_sdp()), DtlsMode::Default);
    o.ice_lite = Some(IceLite::Off);
    let r = offer(&mut e, &mut b, at(3), o);
    let full = text(&r, "sdp");
    assert!(lines_of(&full, "a=ice-lite").is_empty(), "{full}");
    f.take(&mut e);
    let ice = f.get(port_in(&full)).ice.clone().expect("ICE");
    assert!(ice.full.expect("full").controlling);
}

#[test]
fn a_media_added_later_keeps_the_legs_ice_lite_mode() {
    let (mut e, mut b, mut f) = fresh();
    let mut o = to_browser(oa("v", "phone", None, None, phone_sdp()), DtlsMode::Default);
    o.ice_lite = Some(IceLite::Forward);
    offer(&mut e, &mut b, at(0), o);
    answer(
        &mut e,
        &mut b,
        at(1),
        to_phone(oa(
            "v",
            "phone",
            Some("browser"),
            None,
            browser_sdp("active"),
        )),
    );
    f.take(&mut e);
    // A re-offer adds video, without the key.
    let both = body(
        "198.51.100.3",
        &[
            "audio 4000 RTP/AVP 0\r\na=sendrecv\r\n",
            "video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=sendrecv\r\n",
        ],
    );
    let r = offer(
        &mut e,
        &mut b,
        at(2),
        to_browser(oa("v", "phone", None, None, both), DtlsMode::Default),
    );
    let sdp = text(&r, "sdp");
    f.take(&mut e);
    assert_eq!(lines_of(&sdp, "a=ice-lite"), vec![""], "{sdp}");
    let video = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=video "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("video port");
    let ice = f.get(video).ice.clone().expect("ICE on the video");
    assert!(ice.full.is_none(), "the new media is lite like the leg");
}

#[test]
fn trickle_is_announced_back_to_a_side_that_announced_it_or_when_asked() {
    let (_, to_browser_sdp, _, _) = browser_to_phone(DtlsMode::Passive, false);
    assert_eq!(
        lines_of(&to_browser_sdp, "a=ice-options:"),
        vec!["trickle"],
        "{to_browser_sdp}"
    );
    let mut e = webrtc_engine(Some(ctx(false)));
    let mut b = AcceptAll::default();
    let plain = offer(
        &mut e,
        &mut b,
        at(0),
        to_browser(
            oa("t1", "phone", None, None, phone_sdp()),
            DtlsMode::Default,
        ),
    );
    let plain = text(&plain, "sdp");
    assert!(lines_of(&plain, "a=ice-options:").is_empty());
    assert!(
        lines_of(&plain, "a=end-of-candidates").is_empty(),
        "no trickle, no end-of-candidates (as rtpengine): {plain}"
    );
    let mut o = to_browser(
        oa("t2", "phone", None, None, phone_sdp()),
        DtlsMode::Default,
    );
    o.flags.trickle_ice = true;
    let asked = text(&offer(&mut e, &mut b, at(1), o), "sdp");
    assert_eq!(
        lines_of(&asked, "a=ice-options:"),
        vec!["trickle"],
        "{asked}"
    );
    assert_eq!(lines_of(&asked, "a=end-of-candidates"), vec![""], "{asked}");
}

#[test]
fn ice_optional_adds_the_relays_ice_to_a_plain_sdp() {
    let mut e = webrtc_engine(Some(ctx(false)));
    let mut b = AcceptAll::default();
    for (mode, want) in [(IceMode::Optional, 1), (IceMode::Default, 0)] {
        let mut o = oa(&format!("o{want}"), "phone", None, None, phone_sdp());
        o.ice = mode;
        let sdp = text(&offer(&mut e, &mut b, at(0), o), "sdp");
        assert_eq!(
            lines_of(&sdp, "a=ice-ufrag:").len(),
            want,
            "{mode:?}: {sdp}"
        );
    }
}

#[test]
fn ice_with_a_side_goes_on_in_a_reoffer_without_the_key() {
    let (mut e, mut b, mut f) = fresh();
    offer(
        &mut e,
        &mut b,
        at(0),
        to_browser(oa("r", "phone", None, None, phone_sdp()), DtlsMode::Default),
    );
    answer(
        &mut e,
        &mut b,
        at(1),
        to_phone(oa(
            "r",
            "phone",
            Some("browser"),
            None,
            browser_sdp("active"),
        )),
    );
    // The phone re-offers (plain, no ICE key): the browser still gets the relay's ICE.
    let mut o = oa("r", "phone", None, None, phone_sdp());
    o.transport_protocol = Some(TransportProtocol::Set(Profile::UdpTlsRtpSavpf));
    let sdp = text(&offer(&mut e, &mut b, at(2), o), "sdp");
    f.take(&mut e);
    assert_eq!(lines_of(&sdp, "a=ice-ufrag:").len(), 1, "{sdp}");
    assert!(
        f.get(port_in(&sdp)).ice.is_some(),
        "the browser's flow keeps ICE"
    );
}

#[test]
fn the_relay_checks_only_candidates_the_target_policy_admits() {
    // The production engine's guard: NG port, relay ports and host services refused.
    let mut e = Engine::new(EngineConfig {
        interfaces: vec![iface("default", "203.0.113.1")],
        port_min: 30000,
        port_max: 30099,
        dtls: Some(ctx(false)),
        policy: production().cfg.policy.clone(),
        ..EngineConfig::default()
    });
    e.set_key_source(Box::new(CountingKeys::default()));
    let (mut b, mut f) = (AcceptAll::default(), Flows::default());
    // A hostile browser: candidates on the NG port, the relay's own port range, the host's
    // services, over TCP and as an mDNS name; one usable.
    let sdp = String::from_utf8(browser_sdp("actpass"))
        .expect("utf8")
        .replace(
            "a=mid:0\r\n",
            "a=mid:0\r\n\
         a=candidate:1 1 udp 2122260223 127.0.0.1 22222 typ host\r\n\
         a=candidate:2 1 udp 2122260223 203.0.113.1 30010 typ host\r\n\
         a=candidate:3 1 udp 2122260223 203.0.113.1 22 typ host\r\n\
         a=candidate:4 1 tcp 1518280447 198.51.100.20 9 typ host tcptype active\r\n\
         a=candidate:5 1 udp 2122260223 0b6c4a1e-5a3f.local 5002 typ host\r\n\
         a=candidate:6 1 udp 1686052607 198.51.100.20 5000 typ srflx raddr 10.0.0.2 rport 5000\r\n",
        );
    offer(
        &mut e,
        &mut b,
        at(0),
        to_phone(oa("p", "browser", None, None, sdp.into_bytes())),
    );
    f.take(&mut e);
    let r = phone_answers(&mut e, &mut b, "p", "browser", DtlsMode::Default);
    let to_browser_sdp = text(&r, "sdp");
    f.take(&mut e);
    let ice = f.get(port_in(&to_browser_sdp)).ice.clone().expect("ICE");
    let full = ice.full.expect("full ICE");
    let admitted: Vec<(&str, u16)> = full
        .candidates
        .iter()
        .map(|c| (c.address.as_str(), c.port))
        .collect();
    assert_eq!(admitted, vec![("198.51.100.20", 5000)]);
}

#[test]
fn a_browser_reoffer_without_dtls_flags_keeps_the_settled_role_and_keys() {
    let ctx = ctx(false);
    let (mut e, mut b, mut f) = (
        webrtc_engine(Some(ctx)),
        AcceptAll::default(),
        Flows::default(),
    );
    offer(
        &mut e,
        &mut b,
        at(0),
        to_phone(oa("r", "browser", None, None, browser_sdp("actpass"))),
    );
    let r = phone_answers(&mut e, &mut b, "r", "browser", DtlsMode::Passive);
    let first = text(&r, "sdp");
    f.take(&mut e);
    let port = port_in(&first);
    let settled = f.get(port).clone();
    // The re-INVITE's answer comes without `DTLS: passive` (another route in the proxy).
    offer(
        &mut e,
        &mut b,
        at(5),
        to_phone(oa(
            "r",
            "browser",
            Some("phone"),
            None,
            browser_sdp("actpass"),
        )),
    );
    let r = answer(
        &mut e,
        &mut b,
        at(6),
        to_browser(
            oa("r", "browser", Some("phone"), None, phone_sdp()),
            DtlsMode::Default,
        ),
    );
    let again = text(&r, "sdp");
    assert_eq!(lines_of(&again, "a=setup:"), vec!["passive"], "{again}");
    assert_eq!(
        lines_of(&again, "a=ice-ufrag:"),
        lines_of(&first, "a=ice-ufrag:")
    );
    f.take(&mut e);
    assert_eq!(
        f.get(port),
        &settled,
        "same DTLS and ICE parameters: the worker keeps its keys"
    );
}

/// A browser's SDP towards another browser, as the relay passed it on.
fn browser_b_answer(setup: &str) -> Vec<u8> {
    String::from_utf8(browser_sdp(setup))
        .expect("utf8")
        .replace("W77c", "Bb22")
        .replace("9VEM3zWAsygAj4umZwbAYA+U", "QzXy8VEM3zWAsygAj4umZwbA")
        .into_bytes()
}

#[test]
fn two_browsers_without_ice_flags_each_get_the_relays_ice() {
    let (mut e, mut b, mut f) = fresh();
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("bb", "a", None, None, browser_sdp("actpass")),
    );
    let to_b = text(&r, "sdp");
    assert_eq!(lines_of(&to_b, "a=ice-ufrag:").len(), 1, "{to_b}");
    assert!(!to_b.contains("W77c"), "A's credentials are not passed on");
    assert_eq!(lines_of(&to_b, "a=setup:"), vec!["actpass"]);
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("bb", "a", Some("b"), None, browser_b_answer("active")),
    );
    let to_a = text(&r, "sdp");
    assert_eq!(lines_of(&to_a, "a=ice-ufrag:").len(), 1, "{to_a}");
    f.take(&mut e);
    for (sdp, peer_ufrag) in [(&to_a, "W77c"), (&to_b, "Bb22")] {
        let c = f.get(port_in(sdp));
        let ice = c.ice.as_ref().expect("ICE with each browser");
        assert_eq!(
            ice.remote.as_ref().map(|r| r.ufrag.as_str()),
            Some(peer_ufrag)
        );
        assert!(c.dtls.is_some(), "DTLS terminated with each browser");
    }
}

#[test]
fn a_side_that_answers_without_ice_is_latched_as_usual() {
    // A phone with ICE calls a trunk without it (no ICE key): the relay offers its ICE lines to
    // the trunk, the trunk answers plain, and its flows then take media without checks.
    let (mut e, mut b, mut f) = fresh();
    let phone_with_ice = body(
        "198.51.100.1",
        &["audio 3000 RTP/AVP 0\r\na=ice-ufrag:Ph0n\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=sendrecv\r\n"],
    );
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("t", "phone", None, None, phone_with_ice),
    );
    let to_trunk = text(&r, "sdp");
    assert_eq!(lines_of(&to_trunk, "a=ice-ufrag:").len(), 1);
    f.take(&mut e);
    let trunk_port = port_in(&to_trunk);
    assert!(f.get(trunk_port).ice.is_some(), "until the trunk answers");
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("t", "phone", Some("trunk"), None, phone_sdp()),
    );
    let to_phone = text(&r, "sdp");
    f.take(&mut e);
    assert!(f.get(trunk_port).ice.is_none(), "the trunk declined ICE");
    assert!(
        f.get(port_in(&to_phone)).ice.is_some(),
        "the phone does ICE with the relay"
    );
}

#[test]
fn a_plain_call_without_mux_has_no_rtcp_egress() {
    // Every flow with an RTCP egress stays out of the kernel path: plain calls must have none.
    let (mut e, mut b) = (webrtc_engine(None), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("p", "a", None, None, sdp("198.51.100.1", 3000)),
    );
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("p", "a", Some("b"), None, phone_sdp()),
    );
    for a in actions(&mut e) {
        match a {
            MediaAction::Open { rtcp_egress, .. } | MediaAction::Update { rtcp_egress, .. } => {
                assert_eq!(rtcp_egress, None);
            }
            _ => {}
        }
    }
}

/// A plain SRTP (`RTP/SAVP`) side with the given lines, at `addr`:4000.
fn savp_sdp(addr: &str, lines: &[&str]) -> Vec<u8> {
    let mut m = String::from("audio 4000 RTP/SAVP 0\r\na=sendrecv\r\n");
    for l in lines {
        m.push_str(l);
        m.push_str("\r\n");
    }
    body(addr, &[&m])
}

const SDES_LINE: &str =
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:Qk0TvVeyfqfjFd/YebnyyklqSEhJntpVKV1KAhHa";

/// A plain phone calls an SRTP trunk (`transport-protocol: RTP/SAVP`) that answers with
/// `answer_lines`: the offer's DTLS lines, and what the trunk-facing flow runs.
fn savp_trunk_call(answer_lines: &[&str]) -> (String, FlowCrypto) {
    let (mut e, mut b, mut f) = fresh();
    let mut p = oa("s", "phone", None, None, phone_sdp());
    p.transport_protocol = Some(TransportProtocol::Set(Profile::RtpSavp));
    let offered = text(&offer(&mut e, &mut b, at(0), p), "sdp");
    f.take(&mut e);
    let trunk = oa(
        "s",
        "phone",
        Some("trunk"),
        None,
        savp_sdp("198.51.100.9", answer_lines),
    );
    answer(&mut e, &mut b, at(1), trunk);
    f.take(&mut e);
    (offered.clone(), f.get(port_in(&offered)).clone())
}

#[test]
fn a_savp_offer_carries_dtls_after_its_crypto_lines_and_the_answer_picks_one() {
    let (sdp, crypto) = savp_trunk_call(&[SDES_LINE]);
    let attrs: Vec<&str> = sdp.lines().filter(|l| l.starts_with("a=")).collect();
    let first_crypto = attrs.iter().position(|l| l.starts_with("a=crypto:"));
    let setup = attrs.iter().position(|l| *l == "a=setup:actpass");
    assert!(
        first_crypto.is_some() && setup > first_crypto,
        "crypto, then DTLS: {sdp}"
    );
    assert_eq!(lines_of(&sdp, "a=fingerprint:").len(), 1);
    // An a=crypto answer: SDES, no handshake.
    assert!(crypto.dtls.is_none() && crypto.inbound.is_some() && crypto.outbound.is_some());
    // A fingerprint answer: DTLS, no SDES key.
    let setup_line = "a=setup:passive";
    let fp = format!("a=fingerprint:{BROWSER_FP}");
    let (_, crypto) = savp_trunk_call(&[setup_line, &fp]);
    let dtls = crypto.dtls.expect("DTLS with the trunk");
    assert_eq!(dtls.role, Role::Active);
    assert!(crypto.inbound.is_none() && crypto.outbound.is_none());
}

#[test]
fn an_srtp_offerer_with_a_fingerprint_is_answered_with_dtls_and_no_crypto() {
    let (mut e, mut b, mut f) = fresh();
    let fp = format!("a=fingerprint:{BROWSER_FP}");
    let mut p = oa(
        "o",
        "trunk",
        None,
        None,
        savp_sdp("198.51.100.9", &[SDES_LINE, "a=setup:actpass", &fp]),
    );
    p.transport_protocol = Some(TransportProtocol::Set(Profile::RtpAvp));
    let to_phone_sdp = text(&offer(&mut e, &mut b, at(0), p), "sdp");
    assert!(lines_of(&to_phone_sdp, "a=fingerprint:").is_empty());
    assert!(lines_of(&to_phone_sdp, "a=crypto:").is_empty());
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("o", "trunk", Some("phone"), None, phone_sdp()),
    );
    let sdp = text(&r, "sdp");
    f.take(&mut e);
    assert!(sdp.contains(" RTP/SAVP "), "{sdp}");
    assert_eq!(lines_of(&sdp, "a=setup:"), vec!["active"]);
    assert_eq!(lines_of(&sdp, "a=fingerprint:").len(), 1);
    assert!(
        lines_of(&sdp, "a=crypto:").is_empty(),
        "DTLS favoured: {sdp}"
    );
    let crypto = f.get(port_in(&sdp));
    assert_eq!(crypto.dtls.as_ref().map(|d| d.role), Some(Role::Active));
    assert!(crypto.inbound.is_none() && crypto.outbound.is_none());
}

#[test]
fn dtls_off_keeps_a_savp_offer_to_sdes_alone() {
    let (mut e, mut b, _) = fresh();
    let mut p = oa("d", "phone", None, None, phone_sdp());
    p.transport_protocol = Some(TransportProtocol::Set(Profile::RtpSavp));
    p.dtls = DtlsMode::Off;
    let sdp = text(&offer(&mut e, &mut b, at(0), p), "sdp");
    assert!(!lines_of(&sdp, "a=crypto:").is_empty());
    assert!(lines_of(&sdp, "a=fingerprint:").is_empty() && lines_of(&sdp, "a=setup:").is_empty());
}

#[test]
fn a_reoffer_offers_only_the_keying_the_trunk_settled_on_and_the_same_hash() {
    let fp = format!("a=fingerprint:{BROWSER_FP}");
    for (answered, dtls) in [
        (vec![SDES_LINE], false),
        (vec!["a=setup:passive", &fp], true),
    ] {
        let (mut e, mut b, mut f) = fresh();
        let to_trunk = |mut p: OfferAnswer, hash: Option<HashFunc>| {
            p.transport_protocol = Some(TransportProtocol::Set(Profile::RtpSavp));
            p.dtls_fingerprint = hash;
            p
        };
        let first = oa("h", "phone", None, None, phone_sdp());
        offer(&mut e, &mut b, at(0), to_trunk(first, Some(HashFunc::Sha1)));
        let trunk_sdp = savp_sdp("198.51.100.9", &answered);
        answer(
            &mut e,
            &mut b,
            at(1),
            oa("h", "phone", Some("trunk"), None, trunk_sdp),
        );
        f.take(&mut e);
        let again = oa("h", "phone", Some("trunk"), None, phone_sdp());
        let sdp = text(&offer(&mut e, &mut b, at(10), to_trunk(again, None)), "sdp");
        f.take(&mut e);
        let crypto = f.get(port_in(&sdp));
        if dtls {
            assert!(lines_of(&sdp, "a=crypto:").is_empty(), "{sdp}");
            assert_eq!(lines_of(&sdp, "a=setup:"), vec!["actpass"]);
            let fingerprint = lines_of(&sdp, "a=fingerprint:");
            assert!(fingerprint[0].starts_with("sha-1 "), "{sdp}");
            assert_eq!(crypto.dtls.as_ref().map(|d| d.role), Some(Role::Active));
        } else {
            assert!(!lines_of(&sdp, "a=crypto:").is_empty());
            assert!(lines_of(&sdp, "a=setup:").is_empty(), "{sdp}");
            // The trunk's SDES keys stay in force while the re-offer is out.
            assert!(crypto.dtls.is_none() && crypto.inbound.is_some());
        }
    }
}

/// An SRTP trunk offers `lines` (`RTP/SAVP`) to a plain phone, which answers; the answer
/// towards the trunk, with `answer_hash` as `DTLS-fingerprint`.
fn trunk_offers(
    e: &mut Engine,
    b: &mut AcceptAll,
    t: u64,
    lines: &[&str],
    answer_hash: Option<HashFunc>,
) -> String {
    let mut p = oa("t", "trunk", None, None, savp_sdp("198.51.100.9", lines));
    p.transport_protocol = Some(TransportProtocol::Set(Profile::RtpAvp));
    offer(e, b, at(t), p);
    let mut a = oa("t", "trunk", Some("phone"), None, phone_sdp());
    a.dtls_fingerprint = answer_hash;
    text(&answer(e, b, at(t + 1), a), "sdp")
}

#[test]
fn a_trunk_settled_on_sdes_stays_sdes_when_it_adds_a_fingerprint() {
    let (mut e, mut b, _) = fresh();
    let sdp = trunk_offers(&mut e, &mut b, 0, &[SDES_LINE], None);
    assert_eq!(lines_of(&sdp, "a=crypto:").len(), 1);
    let fp = format!("a=fingerprint:{BROWSER_FP}");
    let sdp = trunk_offers(
        &mut e,
        &mut b,
        10,
        &[SDES_LINE, "a=setup:actpass", &fp],
        None,
    );
    assert_eq!(lines_of(&sdp, "a=crypto:").len(), 1, "{sdp}");
    assert!(lines_of(&sdp, "a=fingerprint:").is_empty(), "{sdp}");
}

#[test]
fn a_dtls_fingerprint_hash_given_in_an_answer_is_kept_and_dtls_off_brings_sdes_back() {
    let (mut e, mut b, _) = fresh();
    let fp = format!("a=fingerprint:{BROWSER_FP}");
    let sdp = trunk_offers(
        &mut e,
        &mut b,
        0,
        &[SDES_LINE, "a=setup:actpass", &fp],
        Some(HashFunc::Sha1),
    );
    assert!(
        lines_of(&sdp, "a=fingerprint:")[0].starts_with("sha-1 "),
        "{sdp}"
    );
    // The phone re-offers: towards the trunk (DTLS settled) the same hash, no a=crypto.
    let reoffer = |e: &mut Engine, b: &mut AcceptAll, t: u64, dtls: DtlsMode| {
        let mut p = oa("t", "phone", Some("trunk"), None, phone_sdp());
        p.dtls = dtls;
        text(&offer(e, b, at(t), p), "sdp")
    };
    let sdp = reoffer(&mut e, &mut b, 10, DtlsMode::Default);
    assert!(sdp.contains(" RTP/SAVP "), "{sdp}");
    assert!(
        lines_of(&sdp, "a=fingerprint:")[0].starts_with("sha-1 "),
        "{sdp}"
    );
    assert!(lines_of(&sdp, "a=crypto:").is_empty());
    // DTLS=off: the re-offer keys with SDES rather than with nothing.
    let sdp = reoffer(&mut e, &mut b, 20, DtlsMode::Off);
    assert!(!lines_of(&sdp, "a=crypto:").is_empty(), "{sdp}");
}

#[test]
fn an_opportunistic_srtp_offer_gets_dtls_lines_too_and_a_plain_answer_stays_plain() {
    let (mut e, mut b, mut f) = fresh();
    let avp_crypto = body(
        "198.51.100.9",
        &[&format!(
            "audio 4000 RTP/AVP 0\r\na=sendrecv\r\n{SDES_LINE}\r\n"
        )],
    );
    let sdp = text(
        &offer(
            &mut e,
            &mut b,
            at(0),
            oa("p", "polycom", None, None, avp_crypto),
        ),
        "sdp",
    );
    assert!(sdp.contains(" RTP/AVP "), "{sdp}");
    assert!(!lines_of(&sdp, "a=crypto:").is_empty());
    assert_eq!(lines_of(&sdp, "a=setup:"), vec!["actpass"], "{sdp}");
    f.take(&mut e);
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("p", "polycom", Some("phone"), None, phone_sdp()),
    );
    f.take(&mut e);
    assert!(
        f.get(port_in(&sdp)).dtls.is_none(),
        "a plain answer runs no handshake"
    );
}
