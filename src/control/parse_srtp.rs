//! The SRTP options of `offer`/`answer`: `transport-protocol`, the `SDES` list and the `OSRTP`
//! list, with their `SDES-...`/`OSRTP-...` flag forms. Unknown words are ignored, as rtpengine
//! ignores them.

use crate::control::parse::normalize;
use crate::session::command::{DtlsMode, Osrtp, Profile, Sdes, TransportProtocol};

/// A `transport-protocol` value; `None` for one we do not know (ignored).
pub(crate) fn transport_protocol(value: &str) -> Option<TransportProtocol> {
    if value.trim().eq_ignore_ascii_case("accept") {
        return Some(TransportProtocol::Accept);
    }
    Profile::from_name(value).map(TransportProtocol::Set)
}

/// A list of suite names (`A;B;...`, commas also separate), uppercased.
fn suite_list(s: &str) -> Vec<String> {
    s.split([';', ','])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_ascii_uppercase)
        .collect()
}

/// The `DTLS` key's value; unknown words change nothing.
pub(crate) fn dtls_mode(value: &str) -> Option<DtlsMode> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "no" | "disable" | "disabled" => Some(DtlsMode::Off),
        "passive" => Some(DtlsMode::Passive),
        "active" => Some(DtlsMode::Active),
        _ => None,
    }
}

/// One word of the `SDES` list (or what follows `SDES-` in a flag).
pub(crate) fn apply_sdes(s: &mut Sdes, word: &str) {
    let word = word.trim();
    // Forms with a suite name: the prefix is spelling-insensitive, the name is uppercased.
    let prefixed = |prefix: &str| -> Option<&str> {
        let head = word.get(..prefix.len())?;
        (normalize(head) == prefix)
            .then(|| word.get(prefix.len()..))
            .flatten()
    };
    if let Some(rest) = prefixed("order:") {
        s.order = suite_list(rest);
        return;
    }
    if let Some(rest) = prefixed("offerer-pref:") {
        s.offerer_pref = suite_list(rest);
        return;
    }
    if let Some(rest) = prefixed("no-") {
        if !rest.is_empty() {
            s.no.push(rest.to_ascii_uppercase());
        }
        return;
    }
    if let Some(rest) = prefixed("only-") {
        if !rest.is_empty() {
            s.only.push(rest.to_ascii_uppercase());
        }
        return;
    }
    match normalize(word).as_str() {
        "off" | "no" | "disable" => s.off = true,
        "nonew" => s.nonew = true,
        "pad" => s.pad = true,
        "lifetime" => s.lifetime = true,
        "static" => s.static_keys = true,
        "unencrypted-srtp" => s.unencrypted_srtp = Some(true),
        "unencrypted-srtcp" => s.unencrypted_srtcp = Some(true),
        "unauthenticated-srtp" => s.unauthenticated_srtp = Some(true),
        "encrypted-srtp" => s.unencrypted_srtp = Some(false),
        "encrypted-srtcp" => s.unencrypted_srtcp = Some(false),
        "authenticated-srtp" => s.unauthenticated_srtp = Some(false),
        _ => {}
    }
}

/// One word of the `OSRTP` list (or what follows `OSRTP-` in a flag).
pub(crate) fn apply_osrtp(o: &mut Osrtp, word: &str) {
    match normalize(word.trim()).as_str() {
        "offer" | "offer-rfc" => o.offer = true,
        "offer-legacy" => o.offer_legacy = true,
        "accept-rfc" => o.accept_rfc = true,
        "accept-legacy" => o.accept_legacy = true,
        "accept" => {
            o.accept_rfc = true;
            o.accept_legacy = true;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::bencode::{Dict, Value};
    use crate::session::command::{Command, OfferAnswer};

    fn offer_with(extra: Vec<(&str, Value)>) -> OfferAnswer {
        let mut d = Dict::new();
        d.insert(b"command".to_vec(), "offer".into());
        d.insert(b"call-id".to_vec(), "c1".into());
        d.insert(b"from-tag".to_vec(), "ft".into());
        d.insert(b"sdp".to_vec(), "v=0\r\n".into());
        for (k, v) in extra {
            d.insert(k.as_bytes().to_vec(), v);
        }
        match Command::from_dict(&d) {
            Ok(Command::Offer(oa)) => oa,
            other => panic!("not an offer: {other:?}"),
        }
    }

    fn list(words: &[&str]) -> Value {
        Value::List(words.iter().map(|w| (*w).into()).collect())
    }

    #[test]
    fn transport_protocol_in_both_spellings_and_accept() {
        for (key, value, want) in [
            (
                "transport-protocol",
                "RTP/SAVP",
                Some(TransportProtocol::Set(Profile::RtpSavp)),
            ),
            (
                "transport protocol",
                "RTP/AVPF",
                Some(TransportProtocol::Set(Profile::RtpAvpf)),
            ),
            (
                "transport-protocol",
                "UDP/TLS/RTP/SAVPF",
                Some(TransportProtocol::Set(Profile::UdpTlsRtpSavpf)),
            ),
            (
                "transport-protocol",
                "accept",
                Some(TransportProtocol::Accept),
            ),
            ("transport-protocol", "RTP/XYZ", None),
        ] {
            let oa = offer_with(vec![(key, value.into())]);
            assert_eq!(oa.transport_protocol, want, "{key}: {value}");
        }
    }

    #[test]
    fn sdes_list_words() {
        let oa = offer_with(vec![(
            "SDES",
            list(&[
                "no-AES_CM_128_HMAC_SHA1_32",
                "only-aead_aes_256_gcm",
                "nonew",
                "pad",
                "lifetime",
                "UNENCRYPTED_SRTP",
                "unencrypted_srtcp",
                "unauthenticated_srtp",
                "order:AES_256_CM_HMAC_SHA1_80;AEAD_AES_128_GCM",
                "offerer_pref:AES_CM_128_HMAC_SHA1_80",
                "static",
                "whatever",
            ]),
        )]);
        let s = oa.sdes;
        assert!(!s.off && s.nonew && s.pad && s.lifetime && s.static_keys);
        assert_eq!(s.no, vec!["AES_CM_128_HMAC_SHA1_32"]);
        assert_eq!(s.only, vec!["AEAD_AES_256_GCM"]);
        assert_eq!(
            (
                s.unencrypted_srtp,
                s.unencrypted_srtcp,
                s.unauthenticated_srtp
            ),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(s.order, vec!["AES_256_CM_HMAC_SHA1_80", "AEAD_AES_128_GCM"]);
        assert_eq!(s.offerer_pref, vec!["AES_CM_128_HMAC_SHA1_80"]);
    }

    #[test]
    fn sdes_off_forms_and_a_lone_string() {
        for w in ["off", "no", "disable", "OFF"] {
            assert!(offer_with(vec![("SDES", w.into())]).sdes.off, "{w}");
        }
        let s = offer_with(vec![(
            "SDES",
            list(&["encrypted_srtp", "authenticated_srtp", "encrypted_srtcp"]),
        )])
        .sdes;
        assert_eq!(
            (
                s.unencrypted_srtp,
                s.unencrypted_srtcp,
                s.unauthenticated_srtp
            ),
            (Some(false), Some(false), Some(false))
        );
    }

    #[test]
    fn sdes_and_osrtp_flag_forms() {
        let oa = offer_with(vec![(
            "flags",
            list(&[
                "SDES-no-NULL_HMAC_SHA1_32",
                "SDES-off",
                "sdes-pad",
                "pad crypto",
                "SDES-order:AEAD_AES_128_GCM",
                "OSRTP-offer",
                "OSRTP-accept",
            ]),
        )]);
        assert!(oa.sdes.off && oa.sdes.pad);
        assert_eq!(oa.sdes.no, vec!["NULL_HMAC_SHA1_32"]);
        assert_eq!(oa.sdes.order, vec!["AEAD_AES_128_GCM"]);
        assert!(oa.osrtp.offer && oa.osrtp.accept_rfc && oa.osrtp.accept_legacy);
        assert!(oa.flags.unknown.is_empty(), "{:?}", oa.flags.unknown);
    }

    #[test]
    fn osrtp_list_words() {
        let o = offer_with(vec![("OSRTP", list(&["offer-RFC", "accept-RFC", "bogus"]))]).osrtp;
        assert!(o.offer && o.accept_rfc && !o.accept_legacy && !o.offer_legacy);
        let o = offer_with(vec![("OSRTP", list(&["offer-legacy", "accept-legacy"]))]).osrtp;
        assert!(!o.offer && o.offer_legacy && o.accept_legacy && !o.accept_rfc);
        assert_eq!(offer_with(vec![]).osrtp, Osrtp::default());
    }

    #[test]
    fn dtls_reverse_takes_a_role_and_ignores_anything_else() {
        use crate::dtls::Role;
        for (value, want) in [
            ("passive", Some(Role::Passive)),
            ("Active", Some(Role::Active)),
            ("off", None),
            ("sideways", None),
        ] {
            let oa = offer_with(vec![("DTLS-reverse", value.into())]);
            assert_eq!(oa.dtls_reverse, want, "{value}");
        }
    }
}
