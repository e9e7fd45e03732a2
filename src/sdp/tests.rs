//! Whole-body tests: fixtures from typical endpoints round-trip unchanged, rewrites produce
//! exactly the text rtpengine's conventions call for, and no input makes the parser panic.

use std::net::{IpAddr, SocketAddr};

use crate::sdp::family::Family;
use crate::sdp::{
    parse, rewrite, CodecFilter, Direction, MediaPlan, RewritePlan, SessionDescription,
};

const LOCAL4: &str = "198.18.0.1";
const LOCAL6: &str = "2001:db8:ff::1";

const FIXTURES: &[(&str, &str)] = &[
    ("desk_phone", include_str!("fixtures/desk_phone.sdp")),
    ("softphone", include_str!("fixtures/softphone.sdp")),
    (
        "webrtc_gateway",
        include_str!("fixtures/webrtc_gateway.sdp"),
    ),
    ("ipv6", include_str!("fixtures/ipv6.sdp")),
    ("audio_video", include_str!("fixtures/audio_video.sdp")),
    ("hold_null", include_str!("fixtures/hold_null.sdp")),
    (
        "rejected_video",
        include_str!("fixtures/rejected_video.sdp"),
    ),
    ("t38", include_str!("fixtures/t38.sdp")),
    (
        "session_bandwidth",
        include_str!("fixtures/session_bandwidth.sdp"),
    ),
];

fn fixture(name: &str) -> &'static str {
    FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// Writes `text` (LF) with CRLF, as rendered.
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

/// A plan like the session layer makes for a plain offer: local address of the media's
/// family, ports 30000, 30002, ... with RTCP on the next port, rtcp-mux and ptime kept if
/// offered.
fn default_plan(sd: &SessionDescription) -> RewritePlan {
    let media = (0..sd.media.len())
        .map(|i| {
            let m = &sd.media[i];
            let port = 30000 + 2 * i as u16;
            MediaPlan {
                address: match sd.media_family(i) {
                    Some(Family::V6) => ip(LOCAL6),
                    _ => ip(LOCAL4),
                },
                keep_null: sd.is_null_address(i) && !sd.is_trickle_ice(i),
                port,
                rtcp_port: m.is_rtp().then_some(port + 1),
                rtcp_mux: m.has_rtcp_mux(),
                ptime: m.ptime(),
                mid: m.mid().map(str::to_owned),
                codecs: CodecFilter::default(),
                proto: None,
                crypto: None,
                strip_dtls: false,
                dtls: Vec::new(),
                ice: None,
            }
        })
        .collect();
    RewritePlan {
        strip_ice: true,
        media,
        ..Default::default()
    }
}

fn rewritten(input: &str, tweak: impl FnOnce(&SessionDescription, &mut RewritePlan)) -> String {
    let mut sd = parse(input.as_bytes()).expect("input parses");
    let mut plan = default_plan(&sd);
    tweak(&sd, &mut plan);
    rewrite(&mut sd, &plan);
    sd.to_string()
}

#[test]
fn fixtures_round_trip_byte_identical() {
    for (name, text) in FIXTURES {
        assert!(text.ends_with("\r\n"), "{name} must use CRLF");
        let sd = parse(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sd.to_string(), *text, "{name}");
    }
}

#[test]
fn lf_input_keeps_its_line_endings_and_generated_lines_are_crlf() {
    let text = fixture("audio_video");
    let lf = text.replace("\r\n", "\n");
    let sd = parse(lf.as_bytes()).expect("parses");
    assert_eq!(sd.to_string(), lf);
    // What rtpengine writes for an LF offer: the lines it keeps or edits (v=, o=, c=, m=,
    // a=foo) end as they came, the ones it generates in CRLF.
    let got = rewritten(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0 8\na=foo\na=ptime:20\n",
        |_, _| {},
    );
    assert_eq!(
        got,
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 198.18.0.1\nt=0 0\nm=audio 30000 RTP/AVP 0 8\na=foo\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\na=rtcp:30001\r\na=ptime:20\r\n"
    );
}

#[test]
fn desk_phone_plain_offer() {
    let got = rewritten(fixture("desk_phone"), |_, _| {});
    let want = crlf(
        "v=0
o=- 20518 0 IN IP4 192.0.2.50
s=SDP data
c=IN IP4 198.18.0.1
t=0 0
m=audio 30000 RTP/AVP 9 0 8 18 101
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30001
a=ptime:20
",
    );
    assert_eq!(got, want);
}

#[test]
fn desk_phone_origin_version_and_strip() {
    let got = rewritten(fixture("desk_phone"), |_, p| {
        p.origin_address = Some(ip(LOCAL4));
        p.origin_version = Some(7);
        p.media[0].codecs.strip = vec!["pcmu".into(), "18".into()];
    });
    let want = crlf(
        "v=0
o=- 20518 7 IN IP4 198.18.0.1
s=SDP data
c=IN IP4 198.18.0.1
t=0 0
m=audio 30000 RTP/AVP 9 8 101
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30001
a=ptime:20
",
    );
    assert_eq!(got, want);
}

#[test]
fn strip_all_except_one_drops_dtmf_too() {
    let got = rewritten(fixture("desk_phone"), |_, p| {
        p.media[0].codecs.strip = vec!["all".into()];
        p.media[0].codecs.except = vec!["PCMA".into()];
    });
    assert!(got.contains("m=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"));
    assert!(!got.contains("fmtp"), "{got}");
}

#[test]
fn softphone_mask_opus_prunes_its_dtmf() {
    let got = rewritten(fixture("softphone"), |_, p| {
        p.media[0].codecs.mask = vec!["opus".into()];
    });
    let want = crlf(
        "v=0
o=alice 3144 1204 IN IP4 198.51.100.23
s=Talk
c=IN IP4 198.18.0.1
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 30000 RTP/AVP 97 98 0 8 99 100
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=sendrecv
a=rtcp:30001
",
    );
    assert_eq!(got, want);
}

#[test]
fn webrtc_gateway_offer() {
    let got = rewritten(fixture("webrtc_gateway"), |_, p| {
        p.strip_extmap = true;
    });
    let want = crlf(
        "v=0
o=- 6418350220925311462 2 IN IP4 127.0.0.1
s=-
t=0 0
a=extmap-allow-mixed
a=msid-semantic: WMS 5c3a1e2f
m=audio 30000 RTP/AVPF 111 63 9 0 8 13 110 126
c=IN IP4 198.18.0.1
a=msid:5c3a1e2f 9d1f0c3b-77aa-4c1e-9a57-2f1f0a3c8e21
a=ssrc:1357924680 cname:q2w3e4r5t6y7u8i9
a=ssrc:1357924680 msid:5c3a1e2f 9d1f0c3b-77aa-4c1e-9a57-2f1f0a3c8e21
a=mid:0
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtcp-fb:111 transport-cc
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=sendrecv
a=rtcp:30001
a=rtcp-mux
",
    );
    assert_eq!(got, want);
}

#[test]
fn ipv6_offer_with_origin_replaced() {
    let got = rewritten(fixture("ipv6"), |_, p| {
        p.origin_address = Some(ip(LOCAL6));
    });
    let want = crlf(
        "v=0
o=bob 2890844526 2890844526 IN IP6 2001:db8:ff::1
s=-
c=IN IP6 2001:db8:ff::1
t=0 0
m=audio 30000 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
a=rtcp:30001
a=ptime:20
",
    );
    assert_eq!(got, want);
}

#[test]
fn ipv6_to_ipv4_family_switch() {
    let got = rewritten(fixture("ipv6"), |_, p| {
        p.media[0].address = ip(LOCAL4);
    });
    assert!(got.contains("\r\nc=IN IP4 198.18.0.1\r\n"), "{got}");
    assert!(got.contains("o=bob 2890844526 2890844526 IN IP6 2001:db8:100::20\r\n"));
}

#[test]
fn audio_video_with_feedback() {
    let got = rewritten(fixture("audio_video"), |_, _| {});
    let want = crlf(
        "v=0
o=carol 1712 1713 IN IP4 192.0.2.91
s=video call
t=0 0
m=audio 30000 RTP/AVP 0 101
c=IN IP4 198.18.0.1
b=AS:64
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30001
m=video 30002 RTP/AVPF 102 103
c=IN IP4 198.18.0.1
b=AS:1920
a=rtcp-fb:* goog-remb
a=content:main
a=rtpmap:102 H264/90000
a=fmtp:102 profile-level-id=42e01f;packetization-mode=1
a=rtcp-fb:102 nack
a=rtcp-fb:102 nack pli
a=rtcp-fb:102 ccm fir
a=rtpmap:103 VP8/90000
a=rtcp-fb:103 nack
a=sendrecv
a=rtcp:30003
",
    );
    assert_eq!(got, want);
}

#[test]
fn strip_video_codec_takes_its_feedback_along() {
    let got = rewritten(fixture("audio_video"), |_, p| {
        p.media[1].codecs.strip = vec!["VP8".into()];
    });
    assert!(got.contains("m=video 30002 RTP/AVPF 102\r\n"), "{got}");
    assert!(!got.contains("103"), "{got}");
    assert!(
        got.contains("a=rtcp-fb:102 ccm fir\r\na=sendrecv\r\n"),
        "{got}"
    );
}

const HOLD_WANT: &str = "v=0
o=- 20518 1 IN IP4 192.0.2.50
s=SDP data
c=IN IP4 NULL
t=0 0
m=audio 30000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendonly
a=rtcp:30001
a=ptime:20
";

#[test]
fn old_hold_keeps_null_and_goes_sendonly() {
    let sd = parse(fixture("hold_null").as_bytes()).expect("parses");
    assert!(sd.is_null_address(0));
    let got = rewritten(fixture("hold_null"), |_, _| {});
    assert_eq!(got, crlf(&HOLD_WANT.replace("NULL", "0.0.0.0")));
}

#[test]
fn old_hold_with_zero_address_replaced_is_still_sendonly() {
    let got = rewritten(fixture("hold_null"), |_, p| p.media[0].keep_null = false);
    assert_eq!(got, crlf(&HOLD_WANT.replace("NULL", LOCAL4)));
}

#[test]
fn null_hold_in_other_family_stays_null() {
    let got = rewritten(fixture("hold_null"), |_, p| p.media[0].address = ip(LOCAL6));
    assert!(got.contains("\r\nc=IN IP6 ::\r\n"), "{got}");
}

#[test]
fn rejected_media_keeps_its_m_line_and_loses_interpreted_attributes() {
    let got = rewritten(fixture("rejected_video"), |_, _| {});
    let want = crlf(
        "v=0
o=dave 55 56 IN IP4 198.51.100.140
s=-
c=IN IP4 198.18.0.1
t=0 0
m=audio 30000 RTP/AVP 8 96
a=rtpmap:8 PCMA/8000
a=rtpmap:96 telephone-event/8000
a=fmtp:96 0-15
a=sendrecv
a=rtcp:30001
m=video 0 RTP/AVP 97
",
    );
    assert_eq!(got, want);
}

#[test]
fn rejected_media_with_own_connection_and_mid() {
    let input = crlf(
        "v=0
o=- 1 1 IN IP4 192.0.2.7
s=-
t=0 0
m=audio 4000 RTP/AVP 8
c=IN IP4 192.0.2.7
a=mid:a
m=audio 0 RTP/AVP 8
c=IN IP4 192.0.2.7
a=x-custom:1
a=sendrecv
a=mid:b
",
    );
    let got = rewritten(&input, |_, _| {});
    let want = crlf(
        "v=0
o=- 1 1 IN IP4 192.0.2.7
s=-
t=0 0
m=audio 30000 RTP/AVP 8
c=IN IP4 198.18.0.1
a=mid:a
a=rtpmap:8 PCMA/8000
a=sendrecv
a=rtcp:30001
m=audio 0 RTP/AVP 8
c=IN IP4 198.18.0.1
a=x-custom:1
a=mid:b
",
    );
    assert_eq!(got, want);
}

#[test]
fn t38_image_gets_port_and_sendrecv_only() {
    let got = rewritten(fixture("t38"), |_, _| {});
    let want = crlf(
        "v=0
o=fax 1001 1002 IN IP4 192.0.2.200
s=T38 re-INVITE
c=IN IP4 198.18.0.1
t=0 0
m=image 30000 udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
a=T38FaxMaxBuffer:2000
a=T38FaxMaxDatagram:400
a=T38FaxUdpEC:t38UDPRedundancy
a=sendrecv
",
    );
    assert_eq!(got, want);
}

#[test]
fn session_bandwidth_and_lines_stay_in_place() {
    let got = rewritten(fixture("session_bandwidth"), |_, p| {
        p.media[0].codecs.strip = vec!["G729".into()];
    });
    let want = crlf(
        "v=0
o=gw 4242 4242 IN IP4 198.51.100.9
s=media gateway
i=trunk 7
c=IN IP4 198.18.0.1
b=AS:84
t=0 0
a=tool:example-gw 1.2
m=audio 30000 RTP/AVP 8 13 101
b=TIAS:64000
a=maxptime:40
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=rtcp:30001
a=ptime:20
",
    );
    assert_eq!(got, want);
}

#[test]
fn session_connection_untouched_when_every_media_has_its_own() {
    let input = crlf(
        "v=0
o=- 9 9 IN IP4 192.0.2.8
s=-
c=IN IP4 192.0.2.8
t=0 0
m=audio 5000 RTP/AVP 0
c=IN IP4 192.0.2.9
",
    );
    let got = rewritten(&input, |_, _| {});
    assert!(
        got.contains("s=-\r\nc=IN IP4 192.0.2.8\r\nt=0 0\r\n"),
        "{got}"
    );
    assert!(got.contains("m=audio 30000 RTP/AVP 0\r\nc=IN IP4 198.18.0.1\r\n"));
    let got = rewritten(&input, |_, p| p.session_connection = true);
    assert!(
        got.contains("s=-\r\nc=IN IP4 198.18.0.1\r\nt=0 0\r\n"),
        "{got}"
    );
}

#[test]
fn session_direction_ice_and_bundle_handling() {
    let input = crlf(
        "v=0
o=- 9 9 IN IP4 192.0.2.8
s=-
t=0 0
a=group:BUNDLE a
a=group:LS a
a=ice-ufrag:Zx12
a=ice-pwd:abcdefghijklmnopqrstuv
a=sendonly
m=audio 5000 RTP/AVP 8
c=IN IP4 192.0.2.8
a=ice-options:trickle
a=candidate:1 1 UDP 2130706431 192.0.2.8 5000 typ host
a=rtcp-mux
a=end-of-candidates
",
    );
    let got = rewritten(&input, |_, _| {});
    let want = crlf(
        "v=0
o=- 9 9 IN IP4 192.0.2.8
s=-
t=0 0
a=group:LS a
m=audio 30000 RTP/AVP 8
c=IN IP4 198.18.0.1
a=rtpmap:8 PCMA/8000
a=sendonly
a=rtcp:30001
a=rtcp-mux
a=end-of-candidates
",
    );
    assert_eq!(got, want);
    // Without ICE removal the ICE lines pass through in place.
    let got = rewritten(&input, |_, p| p.strip_ice = false);
    assert!(got.contains("a=ice-ufrag:Zx12\r\n"), "{got}");
    assert!(got.contains("c=IN IP4 198.18.0.1\r\na=ice-options:trickle\r\na=candidate:1 1"));
}

#[test]
fn message_media_is_left_alone_but_keeps_its_peer_address() {
    let input = crlf(
        "v=0
o=- 5 5 IN IP4 192.0.2.8
s=-
c=IN IP4 192.0.2.8
t=0 0
m=audio 5000 RTP/AVP 0
m=message 5002 TCP/MSRP *
a=path:msrp://192.0.2.8:5002/s1;tcp
",
    );
    let got = rewritten(&input, |_, _| {});
    assert!(
        got.ends_with("m=message 5002 TCP/MSRP *\r\nc=IN IP4 192.0.2.8\r\na=path:msrp://192.0.2.8:5002/s1;tcp\r\n"),
        "{got}"
    );
    assert!(got.contains("s=-\r\nc=IN IP4 198.18.0.1\r\n"));
}

#[test]
fn queries() {
    let sd = parse(fixture("softphone").as_bytes()).expect("parses");
    let a: SocketAddr = "198.51.100.23:7078".parse().expect("addr");
    assert_eq!(sd.rtp_endpoint(0), Some(a));
    assert_eq!(
        sd.rtcp_endpoint(0),
        Some("198.51.100.23:7079".parse().expect("addr"))
    );
    assert_eq!(sd.media_family(0), Some(Family::V4));
    assert!(!sd.is_null_address(0));
    assert_eq!(sd.media[0].direction(), None);
    assert!(sd.media[0].is_rtp());
    assert_eq!(sd.rtp_endpoint(1), None);

    let sd = parse(fixture("webrtc_gateway").as_bytes()).expect("parses");
    assert_eq!(
        sd.rtp_endpoint(0),
        Some("203.0.113.77:40376".parse().expect("addr"))
    );
    assert_eq!(
        sd.rtcp_endpoint(0),
        Some("203.0.113.77:40376".parse().expect("addr"))
    );
    assert!(sd.media[0].has_rtcp_mux());
    assert_eq!(sd.media[0].direction(), Some(Direction::SendRecv));

    let sd = parse(fixture("ipv6").as_bytes()).expect("parses");
    assert_eq!(sd.media_family(0), Some(Family::V6));
    assert_eq!(
        sd.rtcp_endpoint(0),
        Some("[2001:db8:100::20]:49171".parse().expect("addr"))
    );

    let sd = parse(fixture("rejected_video").as_bytes()).expect("parses");
    assert!(sd.media[1].is_rejected());
    assert_eq!(sd.media[1].direction(), Some(Direction::Inactive));

    let sd = parse(fixture("t38").as_bytes()).expect("parses");
    assert!(!sd.media[0].is_rtp());

    let sd = parse(fixture("hold_null").as_bytes()).expect("parses");
    assert!(sd.is_null_address(0));

    // A hostname in c= is refused, as rtpengine refuses it (in o= it is fine).
    let host =
        "v=0\r\no=- 1 1 IN IP4 pbx.example\r\nc=IN IP4 pbx.example\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert!(parse(host.as_bytes()).is_err());

    let rtcp_addr = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4111 IN IP4 192.0.2.99\r\n";
    let sd = parse(rtcp_addr.as_bytes()).expect("parses");
    assert_eq!(
        sd.rtcp_endpoint(0),
        Some("192.0.2.99:4111".parse().expect("addr"))
    );
}

/// xorshift64*: deterministic, no crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    const INTERESTING: &[u8] = b"=: /\r\n\t0123456789amcvob-*\xff\xc3";
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        let pos = rng.below(len + 1);
        match rng.below(6) {
            0 if len > 0 => out[pos.min(len - 1)] = rng.next() as u8,
            1 => out.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
            2 if len > 0 => {
                let end = (pos + rng.below(40)).min(len);
                out.drain(pos.min(end)..end);
            }
            3 => out.truncate(pos),
            4 => {
                // Duplicate a chunk elsewhere (repeats lines such as m= or c=).
                let start = rng.below(len + 1);
                let end = (start + rng.below(60)).min(len);
                let chunk = out[start..end].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, chunk);
            }
            _ => {
                if let Some(b) = out.get_mut(pos) {
                    *b = INTERESTING[rng.below(INTERESTING.len())];
                }
            }
        }
    }
    out
}

#[test]
fn never_panics_on_mutated_fixtures() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0;
    for (_, text) in FIXTURES {
        for _ in 0..400 {
            let input = mutate(&mut rng, text.as_bytes());
            let Ok(mut sd) = parse(&input) else { continue };
            parsed += 1;
            for i in 0..=sd.media.len() {
                let _ = (sd.rtp_endpoint(i), sd.rtcp_endpoint(i), sd.media_family(i));
                let _ = (sd.is_null_address(i), sd.is_trickle_ice(i));
            }
            let mut plan = default_plan(&sd);
            plan.origin_address = Some(ip(LOCAL6));
            plan.origin_version = Some(rng.next());
            if let Some(m) = plan.media.first_mut() {
                m.codecs.strip = vec!["PCMU".into(), "all".into()];
                m.codecs.except = vec!["8".into()];
            }
            rewrite(&mut sd, &plan);
            let out = sd.to_string();
            // What we write must be readable again.
            assert!(parse(out.as_bytes()).is_ok(), "unparsable output:\n{out}");
        }
    }
    // The mutations must leave enough inputs valid to exercise rewrite.
    assert!(parsed > 500, "only {parsed} mutated inputs parsed");
}

#[test]
fn never_panics_on_random_bytes() {
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let len = rng.below(300);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 {
            buf.splice(0..0, b"v=0\no=- 1 1 IN IP4 192.0.2.1\n".iter().copied());
        }
        if let Ok(mut sd) = parse(&buf) {
            let plan = default_plan(&sd);
            rewrite(&mut sd, &plan);
            let _ = sd.to_string();
        }
    }
}

#[test]
fn plain_answer_keeps_only_offered_types_and_its_own_attributes() {
    let offer = parse(fixture("desk_phone").as_bytes()).expect("offer parses");
    let input = crlf(
        "v=0
o=callee 77 78 IN IP4 198.51.100.60
s=-
c=IN IP4 198.51.100.60
t=0 0
m=audio 42000 RTP/AVP 8 101 96
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:96 opus/48000/2
a=ptime:30
",
    );
    let mut sd = parse(input.as_bytes()).expect("answer parses");
    crate::sdp::align_answer_codecs(&offer.media[0].formats, &mut sd.media[0]);
    let plan = default_plan(&sd);
    rewrite(&mut sd, &plan);
    let want = crlf(
        "v=0
o=callee 77 78 IN IP4 198.51.100.60
s=-
c=IN IP4 198.18.0.1
t=0 0
m=audio 30000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
a=rtcp:30001
a=ptime:30
",
    );
    assert_eq!(sd.to_string(), want);
}

#[test]
fn rtpmap_lines_are_written_in_rtpengines_form() {
    let input = crlf(
        "v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 96 97 0 98 99
a=rtpmap:96 AMR-WB/16000/1
a=fmtp:96 mode-set=0
a=fmtp:96 mode-set=2
a=rtpmap:97 foo
a=x-keep
a=rtpmap:0 PCMU/8000/1
a=rtpmap:98 opus/48000/2
a=rtpmap:99 AMR/8000
a=rtpmap:99 EVS/16000
",
    );
    let want = crlf(
        "v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 198.18.0.1
t=0 0
m=audio 30000 RTP/AVP 96 97 0 98 99
a=rtpmap:97 foo
a=x-keep
a=rtpmap:96 AMR-WB/16000
a=fmtp:96 mode-set=2
a=rtpmap:0 PCMU/8000
a=rtpmap:98 opus/48000/2
a=rtpmap:99 EVS/16000
a=sendrecv
a=rtcp:30001
",
    );
    assert_eq!(rewritten(&input, |_, _| {}), want);
}

#[test]
fn message_media_gets_its_address_where_rtpengine_puts_it() {
    let input = crlf(
        "v=0
o=- 5 5 IN IP4 192.0.2.8
s=-
c=IN IP4 192.0.2.8
t=0 0
m=audio 5000 RTP/AVP 0
m=message 5002 TCP/MSRP *
i=file transfer
a=path:msrp://192.0.2.8:5002/s1;tcp
",
    );
    let got = rewritten(&input, |_, _| {});
    assert!(
        got.ends_with("m=message 5002 TCP/MSRP *\r\ni=file transfer\r\nc=IN IP4 192.0.2.8\r\na=path:msrp://192.0.2.8:5002/s1;tcp\r\n"),
        "{got}"
    );
}

#[test]
fn fmtp_parameters_are_written_back_as_received() {
    let input = crlf(
        "v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 0 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16 
",
    );
    let got = rewritten(&input, |_, _| {});
    assert!(got.contains("a=fmtp:101 0-16 \r\n"), "{got}");
}

#[test]
fn crypto_lines_replace_the_input_ones_after_rtcp_mux_and_before_ptime() {
    let input = crlf(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
         m=audio 4000 RTP/AVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD\na=rtcp-mux\n\
         a=ptime:20\na=x-other\n",
    );
    let out = rewritten(&input, |_, plan| {
        plan.media[0].proto = Some("RTP/SAVP".into());
        plan.media[0].crypto = Some(vec![
            crate::sdp::Attribute::new("crypto", Some("2 AEAD_AES_256_GCM inline:AAAA".into())),
            crate::sdp::Attribute::new("crypto", Some("3 NULL_HMAC_SHA1_32 inline:BBBB".into())),
        ]);
    });
    let media: Vec<&str> = out
        .split("\r\n")
        .skip_while(|l| !l.starts_with("m="))
        .collect();
    assert_eq!(
        media,
        vec![
            "m=audio 30000 RTP/SAVP 0",
            "a=x-other",
            "a=rtpmap:0 PCMU/8000",
            "a=sendrecv",
            "a=rtcp:30001",
            "a=rtcp-mux",
            "a=crypto:2 AEAD_AES_256_GCM inline:AAAA",
            "a=crypto:3 NULL_HMAC_SHA1_32 inline:BBBB",
            "a=ptime:20",
            "",
        ]
    );
    // No plan for crypto: the input's lines and protocol stay.
    let out = rewritten(&input, |_, _| {});
    assert!(out.contains("m=audio 30000 RTP/AVP 0\r\n"));
    assert!(out.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD\r\n"));
}

#[test]
fn a_last_line_ending_in_a_lone_cr_reads_the_same_after_rendering() {
    // Found by the `sdp` fuzz target: the CR stayed in the m= line's protocol, and the
    // rendered line (value + CRLF) then lost it and no longer parsed.
    let input =
        b"v=0\r\nz=\x1198\nz=\x1198 101\r\na=rtpmap:9 G722/p0/AVP =rtpmap:\nm=audio 11780 \r";
    if let Ok(sd) = parse(input) {
        let again = parse(sd.to_string().as_bytes());
        assert!(again.is_ok(), "rendered SDP does not parse: {again:?}");
    }
    let ok = parse(b"v=0\r\nm=audio 1 RTP/AVP 0\r").expect("parses");
    assert_eq!(ok.media[0].proto, "RTP/AVP");
    assert_eq!(parse(ok.to_string().as_bytes()).expect("again"), ok);
}
