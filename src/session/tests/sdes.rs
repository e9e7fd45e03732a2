//! SDES bridging: the `a=crypto` lines and protocols the relay writes, and the SRTP parameters
//! each flow gets, per bridge direction and per `SDES`/`OSRTP`/`transport-protocol` option.

use std::collections::HashMap;

use super::*;
use crate::flow::{FlowCrypto, FlowId};
use crate::sdp::Crypto;
use crate::session::actions::MediaAction;
use crate::session::command::{OfferAnswer, Profile, TransportProtocol};
use crate::session::keys::CountingKeys;
use crate::session::ports::AcceptAll;
use crate::session::Engine;
use crate::session::Reply;
use crate::srtp::Suite;

/// Keys of the test endpoints (30 bytes: AES_CM_128 suites).
const KEY_A: &str = "Qk0TvVeyfqfjFd/YebnyyklqSEhJntpVKV1KAhHa";
const KEY_B: &str = "Kl3GFJ5Gqz5x07xYkoyHODkVkSpiplZnXsQIw+Q7";

fn sdes_engine() -> Engine {
    let mut e = engine();
    e.set_key_source(Box::new(CountingKeys::default()));
    e
}

fn media(proto: &str, port: u16, extra: &[&str]) -> String {
    let mut m = format!("audio {port} {proto} 0\r\na=sendrecv\r\n");
    for l in extra {
        m.push_str(l);
        m.push_str("\r\n");
    }
    m
}

fn sdp_a(proto: &str, extra: &[&str]) -> Vec<u8> {
    body("198.51.100.1", &[&media(proto, 3000, extra)])
}

fn sdp_b(proto: &str, extra: &[&str]) -> Vec<u8> {
    body("198.51.100.3", &[&media(proto, 4000, extra)])
}

fn crypto_lines(r: &Reply) -> Vec<Crypto> {
    text(r, "sdp")
        .lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| v.parse().expect("the relay writes lines that parse"))
        .collect()
}

fn proto_of(r: &Reply) -> String {
    let s = text(r, "sdp");
    let m = s.lines().find(|l| l.starts_with("m=")).expect("m=");
    m.split(' ').nth(2).expect("proto").to_owned()
}

/// The last crypto of each flow, by local port.
#[derive(Default)]
struct Flows {
    port: HashMap<FlowId, u16>,
    crypto: HashMap<u16, Vec<FlowCrypto>>,
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
                    self.crypto.entry(local.port()).or_default().push(crypto);
                }
                MediaAction::Update { flow, crypto, .. } => {
                    if let Some(p) = self.port.get(&flow) {
                        self.crypto.entry(*p).or_default().push(crypto);
                    }
                }
                _ => {}
            }
        }
    }

    fn last(&self, port: u16) -> FlowCrypto {
        self.crypto
            .get(&port)
            .and_then(|v| v.last().cloned())
            .unwrap_or_else(|| panic!("no flow on {port}"))
    }
}

fn key_of(c: &Crypto) -> Vec<u8> {
    c.keys[0].key_salt().expect("key")
}

fn suite_names(lines: &[Crypto]) -> Vec<(u32, &str)> {
    lines
        .iter()
        .map(|c| (c.tag, c.suite_name.as_str()))
        .collect()
}

fn to_savp(mut p: OfferAnswer) -> OfferAnswer {
    p.transport_protocol = Some(TransportProtocol::Set(Profile::RtpSavp));
    p
}

#[test]
fn plain_offer_to_savp_gets_every_suite_and_the_answerer_key_decrypts() {
    let (mut e, mut b, mut f) = (sdes_engine(), AcceptAll::default(), Flows::default());
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        to_savp(oa("c", "a", None, None, sdp_a("RTP/AVP", &[]))),
    );
    assert_eq!(proto_of(&r), "RTP/SAVP");
    let lines = crypto_lines(&r);
    let want: Vec<(u32, &str)> = Suite::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u32 + 1, s.name()))
        .collect();
    assert_eq!(suite_names(&lines), want);
    for c in &lines {
        let suite = c.suite().expect("ours");
        assert_eq!(key_of(c).len(), suite.inline_key_len());
        assert!(!c.keys[0].key_text.ends_with('='), "unpadded by default");
        assert!(c.session_params.is_empty() && c.keys[0].lifetime.is_none());
    }
    // Fresh keys per suite.
    assert_ne!(key_of(&lines[6]), key_of(&lines[7]));
    let port_b = media_port(&r);

    let ans = format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    assert_eq!(proto_of(&r), "RTP/AVP", "the offerer keeps its profile");
    assert!(crypto_lines(&r).is_empty());
    let port_a = media_port(&r);
    f.take(&mut e);
    for port in [port_b, port_b + 1] {
        let c = f.last(port);
        let inb = c.inbound.expect("B's key decrypts what B sends");
        assert_eq!(inb.suite, Suite::AesCm128HmacSha1_80);
        let mut key_b = inb.master_key.clone();
        key_b.extend(&inb.master_salt);
        assert_eq!(crate::sdp::crypto::KeyParam::inline(&key_b).key_text, KEY_B);
        let out = c.outbound.expect("the relay encrypts towards B");
        let mut ours = out.master_key.clone();
        ours.extend(&out.master_salt);
        assert_eq!(ours, key_of(&lines[6]), "with the key offered under tag 7");
    }
    for port in [port_a, port_a + 1] {
        assert!(f.last(port).is_plain(), "A speaks plain RTP");
    }
}

#[test]
fn savp_to_savp_copies_the_offerer_lines_then_adds_the_rest() {
    let (mut e, mut b, mut f) = (sdes_engine(), AcceptAll::default(), Flows::default());
    let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}");
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "a", None, None, sdp_a("RTP/SAVP", &[&line])),
    );
    assert_eq!(proto_of(&r), "RTP/SAVP");
    let lines = crypto_lines(&r);
    assert_eq!(lines.len(), Suite::ALL.len());
    assert_eq!(lines[0].to_string(), line.trim_start_matches("a=crypto:"));
    assert_eq!(
        suite_names(&lines[1..3]),
        vec![(2, "AEAD_AES_256_GCM"), (3, "AEAD_AES_128_GCM")]
    );
    assert!(!lines[1..]
        .iter()
        .any(|c| c.suite() == Some(Suite::AesCm128HmacSha1_80)));
    let port_b = media_port(&r);

    // The answerer takes another suite: the offerer gets its own suite with a relay key.
    let tag8 = lines.iter().find(|c| c.tag == 8).expect("tag 8").clone();
    assert_eq!(tag8.suite(), Some(Suite::AesCm128HmacSha1_32));
    let ans = format!("a=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}");
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    let back = crypto_lines(&r);
    assert_eq!(suite_names(&back), vec![(1, "AES_CM_128_HMAC_SHA1_80")]);
    assert_ne!(back[0].keys[0].key_text, KEY_A);
    assert_ne!(back[0].keys[0].key_text, KEY_B);
    let port_a = media_port(&r);
    f.take(&mut e);
    let a = f.last(port_a);
    assert_eq!(a.inbound.map(|p| p.suite), Some(Suite::AesCm128HmacSha1_80));
    assert_eq!(a.outbound.as_ref().map(|p| p.master_key.clone()), {
        Some(key_of(&back[0])[..16].to_vec())
    });
    let bc = f.last(port_b);
    assert_eq!(
        bc.inbound.map(|p| p.suite),
        Some(Suite::AesCm128HmacSha1_32)
    );
    assert_eq!(
        bc.outbound.map(|p| p.master_key),
        Some(key_of(&tag8)[..16].to_vec())
    );
    assert_eq!(f.last(port_b + 1), f.last(port_b), "RTCP has the same keys");
}

#[test]
fn same_suite_both_sides_passes_the_keys_through() {
    let (mut e, mut b, mut f) = (sdes_engine(), AcceptAll::default(), Flows::default());
    let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}");
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "a", None, None, sdp_a("RTP/SAVP", &[&line])),
    );
    let port_b = media_port(&r);
    let ans = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    let back = crypto_lines(&r);
    assert_eq!(back.len(), 1);
    assert_eq!(
        back[0].keys[0].key_text, KEY_B,
        "rtpengine answers B's own key"
    );
    f.take(&mut e);
    let (a, bc) = (f.last(media_port(&r)), f.last(port_b));
    // Each side's packets are still authenticated on the way in.
    assert_eq!(a.inbound, bc.outbound);
    assert_eq!(bc.inbound, a.outbound);
    assert!(a.inbound.is_some() && bc.inbound.is_some());
}

#[test]
fn savp_to_avp_strips_the_lines_and_answers_the_offerer_with_a_relay_key() {
    let (mut e, mut b, mut f) = (sdes_engine(), AcceptAll::default(), Flows::default());
    let lines = [
        format!("a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}"),
        format!("a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}"),
    ];
    let mut p = oa(
        "c",
        "a",
        None,
        None,
        sdp_a("RTP/SAVP", &[&lines[0], &lines[1]]),
    );
    p.transport_protocol = Some(TransportProtocol::Set(Profile::RtpAvp));
    let r = offer(&mut e, &mut b, at(0), p);
    assert_eq!(proto_of(&r), "RTP/AVP");
    assert!(crypto_lines(&r).is_empty());
    let port_b = media_port(&r);
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/AVP", &[])),
    );
    assert_eq!(proto_of(&r), "RTP/SAVP");
    let back = crypto_lines(&r);
    assert_eq!(suite_names(&back), vec![(3, "AES_CM_128_HMAC_SHA1_32")]);
    f.take(&mut e);
    let a = f.last(media_port(&r));
    assert_eq!(a.inbound.map(|p| p.suite), Some(Suite::AesCm128HmacSha1_32));
    assert!(a.outbound.is_some());
    assert!(f.last(port_b).is_plain());
}

#[test]
fn a_reinvite_keeps_every_key() {
    let (mut e, mut b, mut f) = (sdes_engine(), AcceptAll::default(), Flows::default());
    let run = |e: &mut Engine, b: &mut AcceptAll, t: u64| {
        let r1 = offer(
            e,
            b,
            at(t),
            to_savp(oa("c", "a", None, None, sdp_a("RTP/AVP", &[]))),
        );
        let ans = format!("a=crypto:1 AEAD_AES_256_GCM inline:{}", "A".repeat(59));
        answer(
            e,
            b,
            at(t + 1),
            oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
        );
        (crypto_lines(&r1), media_port(&r1))
    };
    let (first, port_b) = run(&mut e, &mut b, 0);
    f.take(&mut e);
    let before = f.last(port_b);
    assert_eq!(
        before.inbound.as_ref().map(|p| p.suite),
        Some(Suite::AeadAes256Gcm)
    );
    let (second, _) = run(&mut e, &mut b, 10);
    f.take(&mut e);
    assert_eq!(first, second, "the same keys are offered again");
    assert_eq!(f.last(port_b), before);

    // The peer changes its key: only that direction changes.
    let ans = format!("a=crypto:1 AEAD_AES_256_GCM inline:{}", "B".repeat(59));
    offer(
        &mut e,
        &mut b,
        at(20),
        to_savp(oa("c", "a", None, None, sdp_a("RTP/AVP", &[]))),
    );
    answer(
        &mut e,
        &mut b,
        at(21),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    f.take(&mut e);
    let after = f.last(port_b);
    assert_eq!(after.outbound, before.outbound);
    assert_ne!(after.inbound, before.inbound);
}

#[test]
fn bad_lines_are_skipped_never_fatal() {
    let (mut e, mut b) = (sdes_engine(), AcceptAll::default());
    let good = format!("a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}");
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa(
            "c",
            "a",
            None,
            None,
            sdp_a(
                "RTP/SAVP",
                &[
                    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:!!!notbase64",
                    "a=crypto:2 SEED_128_CTR_HMAC_SHA1_80 inline:Qk0TvVeyfqfjFd/YebnyyklqSEhJntpVKV1KAhHa",
                    "a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:Qk0TvVeyfqfjFd/YebnyyklqSEhJntpVKV1KAhHa",
                    "a=crypto:garbage",
                    &good,
                ],
            ),
        ),
    );
    let lines = crypto_lines(&r);
    assert_eq!(lines[0].to_string(), good.trim_start_matches("a=crypto:"));
    assert_eq!(lines.len(), Suite::ALL.len());
    assert_eq!(lines[1].tag, 6, "new tags follow the highest usable one");

    // No usable line at all on an SRTP offer: the answer towards it has none either.
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa(
            "d",
            "a",
            None,
            None,
            sdp_a(
                "RTP/SAVP",
                &["a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD"],
            ),
        ),
    );
    assert_eq!(crypto_lines(&r).len(), Suite::ALL.len());
    let ans = format!("a=crypto:1 AEAD_AES_256_GCM inline:{}", "A".repeat(59));
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("d", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    assert_eq!(text(&r, "result"), "ok");
    assert!(crypto_lines(&r).is_empty());
}

fn offer_lines(e: &mut Engine, p: OfferAnswer) -> Vec<Crypto> {
    let mut b = AcceptAll::default();
    crypto_lines(&offer(e, &mut b, at(0), p))
}

fn savp_offer(call: &str, sdes: &[&str]) -> OfferAnswer {
    let l1 = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}");
    let l2 = format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}");
    let mut p = oa(call, "a", None, None, sdp_a("RTP/SAVP", &[&l1, &l2]));
    for w in sdes {
        crate::control::parse_srtp::apply_sdes(&mut p.sdes, w);
    }
    p
}

#[test]
fn sdes_no_only_and_nonew_filter_the_offer() {
    let mut e = sdes_engine();
    let lines = offer_lines(
        &mut e,
        savp_offer("n", &["no-AES_CM_128_HMAC_SHA1_32", "no-AEAD_AES_256_GCM"]),
    );
    let names: Vec<_> = lines.iter().map(|c| c.suite_name.as_str()).collect();
    assert_eq!(names[0], "AES_CM_128_HMAC_SHA1_80");
    assert!(!names.contains(&"AES_CM_128_HMAC_SHA1_32") && !names.contains(&"AEAD_AES_256_GCM"));
    assert_eq!(lines.len(), Suite::ALL.len() - 2);

    let lines = offer_lines(
        &mut e,
        savp_offer(
            "o",
            &[
                "only-AES_CM_128_HMAC_SHA1_32",
                "only-AEAD_AES_128_GCM",
                "no-AEAD_AES_128_GCM",
            ],
        ),
    );
    assert_eq!(
        suite_names(&lines),
        vec![(2, "AES_CM_128_HMAC_SHA1_32"), (3, "AEAD_AES_128_GCM")]
    );

    let lines = offer_lines(&mut e, savp_offer("w", &["nonew"]));
    assert_eq!(
        suite_names(&lines),
        vec![
            (1, "AES_CM_128_HMAC_SHA1_80"),
            (2, "AES_CM_128_HMAC_SHA1_32")
        ]
    );

    let lines = offer_lines(&mut e, savp_offer("x", &["off"]));
    assert!(lines.is_empty(), "SDES off: no lines towards the receiver");
}

#[test]
fn sdes_order_moves_suites_without_renumbering() {
    let mut e = sdes_engine();
    let lines = offer_lines(
        &mut e,
        savp_offer(
            "r",
            &["order:AES_192_CM_HMAC_SHA1_32;AES_CM_128_HMAC_SHA1_32"],
        ),
    );
    assert_eq!(
        suite_names(&lines[..3]),
        vec![
            (8, "AES_192_CM_HMAC_SHA1_32"),
            (2, "AES_CM_128_HMAC_SHA1_32"),
            (1, "AES_CM_128_HMAC_SHA1_80")
        ]
    );
}

#[test]
fn sdes_pad_lifetime_and_session_parameters() {
    let mut e = sdes_engine();
    let mut p = to_savp(oa("p", "a", None, None, sdp_a("RTP/AVP", &[])));
    for w in [
        "pad",
        "lifetime",
        "UNENCRYPTED_SRTCP",
        "unauthenticated_srtp",
    ] {
        crate::control::parse_srtp::apply_sdes(&mut p.sdes, w);
    }
    let lines = offer_lines(&mut e, p);
    let gcm256 = &lines[0];
    assert!(
        gcm256.keys[0].key_text.ends_with('='),
        "44 bytes pad to 60 chars"
    );
    assert_eq!(gcm256.keys[0].key_text.len(), 60);
    assert_eq!(
        gcm256.keys[0].lifetime,
        Some(crate::sdp::crypto::Lifetime::PowerOfTwo(31))
    );
    assert!(gcm256.unencrypted_srtcp() && gcm256.unauthenticated_srtp());
    assert!(!gcm256.unencrypted_srtp());

    // `encrypted_srtcp` takes the offerer's parameter away on the copied line.
    let l = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A} UNENCRYPTED_SRTCP");
    let mut p = oa("q", "a", None, None, sdp_a("RTP/SAVP", &[&l]));
    crate::control::parse_srtp::apply_sdes(&mut p.sdes, "encrypted_srtcp");
    let lines = offer_lines(&mut e, p);
    assert!(!lines[0].unencrypted_srtcp());
    assert_eq!(lines[0].keys[0].key_text, KEY_A);
}

#[test]
fn offerer_pref_picks_the_suite_answered_to_the_offerer() {
    let (mut e, mut b) = (sdes_engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        savp_offer("c", &["offerer_pref:AES_CM_128_HMAC_SHA1_32"]),
    );
    let ans = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    assert_eq!(
        suite_names(&crypto_lines(&r)),
        vec![(2, "AES_CM_128_HMAC_SHA1_32")]
    );
}

#[test]
fn osrtp_offer_is_passed_on_and_accepted_or_rejected() {
    let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}");
    // Accepted: SRTP both sides, the profile stays RTP/AVP.
    let (mut e, mut b) = (sdes_engine(), AcceptAll::default());
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "a", None, None, sdp_a("RTP/AVP", &[&line])),
    );
    assert_eq!(proto_of(&r), "RTP/AVP");
    assert_eq!(crypto_lines(&r).len(), Suite::ALL.len());
    let ans = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/AVP", &[&ans])),
    );
    assert_eq!(proto_of(&r), "RTP/AVP");
    assert_eq!(crypto_lines(&r)[0].keys[0].key_text, KEY_B);

    // Rejected (no a=crypto in the answer): plain both sides.
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("d", "a", None, None, sdp_a("RTP/AVP", &[&line])),
    );
    assert!(!crypto_lines(&r).is_empty());
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("d", "a", Some("b"), None, sdp_b("RTP/AVP", &[])),
    );
    assert!(crypto_lines(&r).is_empty());

    // Rejected, but `OSRTP: accept`: SRTP towards the offerer anyway.
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("f", "a", None, None, sdp_a("RTP/AVP", &[&line])),
    );
    let mut p = oa("f", "a", Some("b"), None, sdp_b("RTP/AVP", &[]));
    p.osrtp.accept_rfc = true;
    let r = answer(&mut e, &mut b, at(1), p);
    assert_eq!(
        suite_names(&crypto_lines(&r)),
        vec![(1, "AES_CM_128_HMAC_SHA1_80")]
    );
    assert_eq!(proto_of(&r), "RTP/AVP");
}

#[test]
fn osrtp_offer_flag_turns_a_plain_offer_opportunistic() {
    let (mut e, mut b) = (sdes_engine(), AcceptAll::default());
    let mut p = oa("c", "a", None, None, sdp_a("RTP/AVP", &[]));
    p.osrtp.offer = true;
    let r = offer(&mut e, &mut b, at(0), p);
    assert_eq!(proto_of(&r), "RTP/AVP");
    assert_eq!(crypto_lines(&r).len(), Suite::ALL.len());
    let port_b = media_port(&r);
    let ans = format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/AVP", &[&ans])),
    );
    assert!(crypto_lines(&r).is_empty(), "the offerer stays plain");
    let mut f = Flows::default();
    f.take(&mut e);
    assert!(f.last(port_b).inbound.is_some());
    assert!(f.last(media_port(&r)).is_plain());
}

#[test]
fn rtcp_mux_flows_share_the_keys() {
    let (mut e, mut b, mut f) = (sdes_engine(), AcceptAll::default(), Flows::default());
    let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}");
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa(
            "c",
            "a",
            None,
            None,
            sdp_a("RTP/SAVPF", &[&line, "a=rtcp-mux"]),
        ),
    );
    assert_eq!(proto_of(&r), "RTP/SAVPF");
    let ans = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    let r = answer(
        &mut e,
        &mut b,
        at(1),
        oa(
            "c",
            "a",
            Some("b"),
            None,
            sdp_b("RTP/SAVPF", &[&ans, "a=rtcp-mux"]),
        ),
    );
    let port_a = media_port(&r);
    f.take(&mut e);
    assert!(f.last(port_a).inbound.is_some());
    assert_eq!(f.last(port_a), f.last(port_a + 1));
}

#[test]
fn plain_calls_stay_plain_and_without_a_key_source_nothing_is_generated() {
    let (mut e, mut b, mut f) = (sdes_engine(), AcceptAll::default(), Flows::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "a", None, None, sdp_a("RTP/AVP", &[])),
    );
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/AVP", &[])),
    );
    f.take(&mut e);
    assert!(f.crypto.values().flatten().all(FlowCrypto::is_plain));

    let mut e = engine();
    let lines = offer_lines(
        &mut e,
        to_savp(oa("c", "a", None, None, sdp_a("RTP/AVP", &[]))),
    );
    assert!(lines.is_empty());
}

#[test]
fn query_reports_the_suite_per_stream() {
    let (mut e, mut b) = (sdes_engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        to_savp(oa("c", "a", None, None, sdp_a("RTP/AVP", &[]))),
    );
    let ans = format!("a=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}");
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    let q = e.command(
        at(2),
        crate::session::Command::Query(crate::session::command::CallRef {
            call_id: "c".into(),
            ..Default::default()
        }),
        &mut b,
    );
    let Reply::Call(q) = q else { panic!("{q:?}") };
    let tag = |t: &str| q.tags.iter().find(|x| x.tag == t).expect("tag").medias[0].clone();
    let (a, bm) = (tag("a"), tag("b"));
    assert!(a.streams.iter().all(|s| s.crypto_suite.is_none()));
    assert!(!a.flags.contains(&"SDES"));
    assert!(bm
        .streams
        .iter()
        .all(|s| s.crypto_suite == Some("AES_CM_128_HMAC_SHA1_32")));
    assert!(bm.flags.contains(&"SDES"));
    let rendered = crate::control::render::render(&Reply::Call(q)).encode();
    let needle = b"12:crypto suite23:AES_CM_128_HMAC_SHA1_32";
    assert!(rendered.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn a_restored_call_decrypts_with_the_same_keys() {
    let (mut old, mut b, mut f) = (sdes_engine(), AcceptAll::default(), Flows::default());
    let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}");
    let r = offer(
        &mut old,
        &mut b,
        at(0),
        oa("c", "a", None, None, sdp_a("RTP/SAVP", &[&line])),
    );
    let port_b = media_port(&r);
    let ans = format!("a=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}");
    let r = answer(
        &mut old,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    let port_a = media_port(&r);
    f.take(&mut old);
    let rec = crate::store::CallRecord::from_call(old.call("c").expect("call"), "n", 1);
    assert_eq!(rec.schema, crate::store::record::SCHEMA_VERSION);
    let text = rec.encode();

    let (mut new, mut b2, mut g) = (sdes_engine(), AcceptAll::default(), Flows::default());
    let rec = crate::store::CallRecord::decode(&text).expect("decodes");
    let r = new.restore(at(100), &[rec], &mut b2);
    assert_eq!(r.calls, 1);
    g.take(&mut new);
    for port in [port_a, port_a + 1, port_b, port_b + 1] {
        assert_eq!(g.last(port), f.last(port), "port {port}");
        assert!(!g.last(port).is_plain());
    }
    // A re-INVITE after the restore offers the same relay keys as before.
    let again = crypto_lines(&offer(
        &mut new,
        &mut b2,
        at(101),
        oa("c", "a", None, None, sdp_a("RTP/SAVP", &[&line])),
    ));
    let first = crypto_lines(&offer(
        &mut old,
        &mut b,
        at(101),
        oa("c", "a", None, None, sdp_a("RTP/SAVP", &[&line])),
    ));
    assert_eq!(again, first);
}

#[test]
fn a_passed_on_key_is_written_unpadded_unless_pad() {
    let padded = "8AbZePWwsKhLGX3GlXA+yHYPQ3cgraer/9DkFJYCOPZZy3o9wC0NIbIFYZfyHw==";
    let line = format!("a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:{padded}|2^20");
    let mut e = sdes_engine();
    let lines = offer_lines(
        &mut e,
        oa("c", "a", None, None, sdp_a("RTP/SAVP", &[&line])),
    );
    assert_eq!(lines[0].keys[0].key_text, padded.trim_end_matches('='));
    assert_eq!(
        lines[0].keys[0].lifetime,
        Some(crate::sdp::crypto::Lifetime::PowerOfTwo(20))
    );
    let mut p = oa("d", "a", None, None, sdp_a("RTP/SAVP", &[&line]));
    p.sdes.pad = true;
    let lines = offer_lines(&mut e, p);
    assert_eq!(lines[0].keys[0].key_text, padded);
}

#[test]
fn a_reoffer_puts_the_negotiated_line_first() {
    let (mut e, mut b) = (sdes_engine(), AcceptAll::default());
    let first = crypto_lines(&offer(
        &mut e,
        &mut b,
        at(0),
        to_savp(oa("c", "a", None, None, sdp_a("RTP/AVP", &[]))),
    ));
    let ans = format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    let again = crypto_lines(&offer(
        &mut e,
        &mut b,
        at(2),
        to_savp(oa("c", "a", None, None, sdp_a("RTP/AVP", &[]))),
    ));
    assert_eq!(again[0], first[6], "tag 7, same key");
    let rest: Vec<(u32, &str)> = suite_names(&again[1..]);
    assert_eq!(rest[0], (8, "AEAD_AES_256_GCM"));
    assert_eq!(rest[6], (14, "AES_CM_128_HMAC_SHA1_32"));
    assert_eq!(again.len(), Suite::ALL.len());
    // Same suites, same keys as before.
    for c in &again[1..] {
        let before = first
            .iter()
            .find(|f| f.suite_name == c.suite_name)
            .expect("suite");
        assert_eq!(c.keys, before.keys);
    }
}

#[test]
fn a_reoffer_keeps_the_offerers_order_when_it_offers_the_negotiated_suite() {
    // rtpengine 10.5's SDES=static control case: the offerer's own lines are passed on in its
    // order, even when the suite negotiated with the receiver is not its first.
    let (mut e, mut b) = (sdes_engine(), AcceptAll::default());
    let mine = [
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}"),
        format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}"),
    ];
    let mine: Vec<&str> = mine.iter().map(String::as_str).collect();
    let first = crypto_lines(&offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "a", None, None, sdp_a("RTP/SAVP", &mine)),
    ));
    let ans = format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    let again = crypto_lines(&offer(
        &mut e,
        &mut b,
        at(2),
        oa("c", "a", None, None, sdp_a("RTP/SAVP", &mine)),
    ));
    assert_eq!(suite_names(&again[..2]), suite_names(&first[..2]));
    assert_eq!(
        suite_names(&again[..2]),
        [
            (1, "AES_CM_128_HMAC_SHA1_32"),
            (2, "AES_CM_128_HMAC_SHA1_80")
        ]
    );
    assert_eq!(again, first);
}

#[test]
fn no_key_material_in_debug_output() {
    let (mut e, mut b) = (sdes_engine(), AcceptAll::default());
    let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}");
    let r = offer(
        &mut e,
        &mut b,
        at(0),
        oa("c", "a", None, None, sdp_a("RTP/SAVP", &[&line])),
    );
    let ours = crypto_lines(&r);
    let ans = format!("a=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}");
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("c", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    // The media actions (to the workers) and the SDES state; a leg's stored SDP text holds the
    // peers' lines as they came, as the SDP itself does.
    let acts = format!("{:?}", actions(&mut e));
    let call = e.call("c").expect("call");
    let slots: Vec<String> = call
        .legs
        .iter()
        .flat_map(|l| l.medias.iter().map(|m| format!("{:?}", m.sdes)))
        .collect();
    let dump = format!("{slots:?} {acts}");
    assert!(dump.contains("AesCm128HmacSha1_32"), "{dump}");
    let key_hex = |k: &[u8]| format!("{:?}", &k[..8]).trim_end_matches(']').to_owned();
    for secret in [KEY_A.to_owned(), KEY_B.to_owned()]
        .into_iter()
        .chain(ours.iter().map(|c| c.keys[0].key_text.clone()))
    {
        assert!(!dump.contains(&secret), "a key in Debug output");
    }
    for c in &ours {
        assert!(
            !dump.contains(&key_hex(&key_of(c))),
            "key bytes in Debug output"
        );
    }
}

#[test]
fn a_reoffer_without_transport_protocol_keeps_the_receivers_profile() {
    let (mut e, mut b) = (sdes_engine(), AcceptAll::default());
    offer(
        &mut e,
        &mut b,
        at(0),
        to_savp(oa("k", "a", None, None, sdp_a("RTP/AVP", &[]))),
    );
    let ans = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}");
    answer(
        &mut e,
        &mut b,
        at(1),
        oa("k", "a", Some("b"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    // The plain phone re-offers without the key: its SRTP trunk stays SRTP.
    let r = offer(
        &mut e,
        &mut b,
        at(10),
        oa("k", "a", Some("b"), None, sdp_a("RTP/AVP", &[])),
    );
    assert_eq!(proto_of(&r), "RTP/SAVP");
    assert!(!crypto_lines(&r).is_empty());
    // The trunk re-offers (its own SRTP profile, no key): the phone stays plain.
    let r = offer(
        &mut e,
        &mut b,
        at(20),
        oa("k", "b", Some("a"), None, sdp_b("RTP/SAVP", &[&ans])),
    );
    assert_eq!(proto_of(&r), "RTP/AVP");
    assert!(crypto_lines(&r).is_empty());
    // An offerer that changes its profile is followed; the key still wins.
    let r = offer(
        &mut e,
        &mut b,
        at(30),
        oa("k", "b", Some("a"), None, sdp_b("RTP/AVP", &[])),
    );
    assert_eq!(proto_of(&r), "RTP/AVP");
    let r = offer(
        &mut e,
        &mut b,
        at(40),
        to_savp(oa("k", "b", Some("a"), None, sdp_b("RTP/AVP", &[]))),
    );
    assert_eq!(proto_of(&r), "RTP/SAVP");
}
