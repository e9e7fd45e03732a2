//! SDES through the real binary: `transport-protocol: RTP/SAVP` on a plain offer gets the relay's
//! own `a=crypto` lines, with keys from the OS random generator (different per suite and per
//! call), the answer's suite shows in `query`, and the offerer is answered in plain RTP.

mod common;

use common::bencode::{self, Value};
use common::*;

fn plain_sdp(port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=sendrecv\r\n"
    )
}

/// (tag, suite, key text) of each `a=crypto` line.
fn crypto_lines(sdp: &str) -> Vec<(u32, String, String)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| {
            let mut w = v.split(' ');
            let tag = w.next().and_then(|t| t.parse().ok()).expect("tag");
            let suite = w.next().expect("suite").to_owned();
            let key = w
                .next()
                .and_then(|k| k.strip_prefix("inline:"))
                .expect("inline key")
                .to_owned();
            (tag, suite, key)
        })
        .collect()
}

fn savp_offer(ng: &NgClient, call: &str) -> String {
    let reply = expect_ok(
        ng.request(dict([
            ("command", "offer".into()),
            ("call-id", call.into()),
            ("from-tag", "caller".into()),
            ("sdp", plain_sdp(4000).as_str().into()),
            ("transport-protocol", "RTP/SAVP".into()),
            ("SDES", str_list(&["no-NULL_HMAC_SHA1_32"])),
        ])),
        "offer",
    );
    get_str(&reply, "sdp").expect("sdp").to_owned()
}

#[test]
fn a_plain_offer_to_savp_gets_fresh_keys_and_the_answer_suite_shows_in_query() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();

    let sdp = savp_offer(&ng, "sdes-1");
    assert!(sdp.contains(" RTP/SAVP 0\r\n"), "{sdp}");
    let lines = crypto_lines(&sdp);
    let suites: Vec<&str> = lines.iter().map(|(_, s, _)| s.as_str()).collect();
    assert_eq!(
        suites,
        [
            "AEAD_AES_256_GCM",
            "AEAD_AES_128_GCM",
            "AES_256_CM_HMAC_SHA1_80",
            "AES_256_CM_HMAC_SHA1_32",
            "AES_192_CM_HMAC_SHA1_80",
            "AES_192_CM_HMAC_SHA1_32",
            "AES_CM_128_HMAC_SHA1_80",
            "AES_CM_128_HMAC_SHA1_32",
            "F8_128_HMAC_SHA1_80",
            "F8_128_HMAC_SHA1_32",
            "NULL_HMAC_SHA1_80",
        ]
    );
    let tags: Vec<u32> = lines.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(tags, (1..=11).collect::<Vec<u32>>());
    // Unpadded base64 of key and salt: 59, 38, 62, 62, 51, 51, then 40 characters.
    let lens: Vec<usize> = lines.iter().map(|(_, _, k)| k.len()).collect();
    assert_eq!(lens, [59, 38, 62, 62, 51, 51, 40, 40, 40, 40, 40]);
    let mut keys: Vec<&str> = lines.iter().map(|(_, _, k)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), lines.len(), "a fresh key per suite");

    // Another call gets other keys.
    let other = crypto_lines(&savp_offer(&ng, "sdes-2"));
    assert!(other
        .iter()
        .all(|(_, _, k)| !lines.iter().any(|(_, _, l)| l == k)));

    let answer_sdp = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 4002 RTP/SAVP 0\r\na=sendrecv\r\n\
         a=crypto:8 AES_CM_128_HMAC_SHA1_32 inline:Kl3GFJ5Gqz5x07xYkoyHODkVkSpiplZnXsQIw+Q7\r\n";
    let reply = expect_ok(
        ng.answer("sdes-1", "caller", "callee", answer_sdp, &[]),
        "answer",
    );
    let back = get_str(&reply, "sdp").expect("sdp");
    assert!(back.contains(" RTP/AVP 0\r\n"), "{back}");
    assert!(!back.contains("a=crypto"), "{back}");

    let q = expect_ok(ng.query("sdes-1"), "query");
    let raw = bencode::encode(&Value::Dict(q));
    let needle = b"12:crypto suite23:AES_CM_128_HMAC_SHA1_32";
    assert!(
        raw.windows(needle.len()).any(|w| w == needle),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // No key in the log.
    let log = relay.log_text();
    for (_, _, k) in &lines {
        assert!(!log.contains(k.as_str()), "a key in the relay's log");
    }
}
