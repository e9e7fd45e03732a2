//! Dictionary → [`Command`], with rtpengine's key names, flag words and error texts.
//!
//! Spelling: keys and flag words are compared after [`normalize`] (lowercase; space and `_` read
//! as `-`), so `strict source`, `strict-source` and `Strict_Source` are one flag, and
//! `transport protocol` is `transport-protocol`. Values that name things (codecs, interfaces,
//! labels, tags) keep their case. Command names are exact and case-sensitive, as in rtpengine.
//!
//! Unknown keys are ignored; unknown flag words are kept in [`Flags::unknown`]. A key whose
//! normalized name is one of the boolean flags (e.g. `"strict source": "yes"`) also sets that flag
//! when its value is true-ish; rtpengine ignores such keys, so this only widens what we accept.
//!
//! Commands rtpengine has and we answer with `Unrecognized command` for now: `block DTMF`,
//! `unblock DTMF`, `silence media`, `unsilence media`,
//! `start forwarding`, `stop forwarding`, `play media`, `stop media`, `play DTMF`, `publish`,
//! `subscribe request`, `subscribe answer`, `unsubscribe`, `inject start`, `inject stop`,
//! `connect`, `create`, `create answer`, `mesh`.

use std::net::IpAddr;

use crate::control::bencode::{Dict, Value};
use crate::control::error::NgError;
use crate::control::parse_srtp;
use crate::sdp::Family;
use crate::session::command::{
    CallRef, CodecOps, Command, Delete, DtlsMode, Flags, IceLite, IceMode, MediaEcho, MediaSelect,
    OfferAnswer, Replace, RtcpMux,
};

impl Command {
    /// Parses a decoded NG request. Fuzz entry point: never panics.
    pub fn from_dict(d: &Dict) -> Result<Command, NgError> {
        let cmd = d
            .get(&b"command"[..])
            .and_then(Value::as_bytes)
            .ok_or(NgError::NoCommand)?;
        Ok(match cmd {
            b"ping" => Command::Ping,
            b"offer" => Command::Offer(offer_answer(d, Op::Offer)?),
            b"answer" => Command::Answer(offer_answer(d, Op::Answer)?),
            b"delete" => Command::Delete(delete(d)?),
            b"query" => Command::Query(required_call(d)?),
            b"list" => Command::List {
                limit: list_limit(d)?,
            },
            b"statistics" => Command::Statistics,
            b"start recording" => Command::StartRecording(required_call(d)?),
            b"stop recording" => Command::StopRecording(required_call(d)?),
            b"pause recording" => Command::PauseRecording(required_call(d)?),
            b"block media" => Command::BlockMedia(media_select(d)?),
            b"unblock media" => Command::UnblockMedia(media_select(d)?),
            _ => return Err(NgError::UnknownCommand),
        })
    }
}

/// The spelling-insensitive form of a key or flag word: lowercase, with ` ` and `_` as `-`.
pub fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' | '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Offer,
    Answer,
}

fn text(v: &Value) -> Option<String> {
    v.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A list of strings; a lone string counts as a one-element list. Non-strings are skipped.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().filter_map(text).collect(),
        Value::Bytes(_) => text(v).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn is_true(v: &Value) -> bool {
    match v {
        Value::Int(n) => *n != 0,
        Value::Bytes(b) => {
            let s = normalize(&String::from_utf8_lossy(b));
            !matches!(
                s.as_str(),
                "" | "0" | "no" | "off" | "false" | "disable" | "disabled"
            )
        }
        _ => false,
    }
}

/// `call-id`, `from-tag`, `to-tag`, `via-branch`, in any of their spellings.
fn call_ref(d: &Dict) -> CallRef {
    let mut c = CallRef::default();
    for (k, v) in d {
        match normalize(&String::from_utf8_lossy(k)).as_str() {
            "call-id" => c.call_id = text(v).unwrap_or_default(),
            "from-tag" => c.from_tag = text(v),
            "to-tag" => c.to_tag = text(v),
            "via-branch" => c.via_branch = text(v),
            _ => {}
        }
    }
    c
}

/// A call reference that must name a call (an empty call-id counts as none).
fn required_call(d: &Dict) -> Result<CallRef, NgError> {
    let c = call_ref(d);
    if c.call_id.is_empty() {
        return Err(NgError::NoCallId);
    }
    Ok(c)
}

fn list_limit(d: &Dict) -> Result<Option<usize>, NgError> {
    match d.get(&b"limit"[..]).and_then(Value::as_int_or_str) {
        None => Ok(None),
        Some(n) if n < 0 => Err(NgError::InvalidLimit),
        Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
    }
}

/// `delete-delay` / `delete delay`: seconds, integer or numeric string; negative = default.
fn delete_delay(v: &Value) -> Option<u32> {
    v.as_int_or_str()
        .filter(|n| *n >= 0)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn delete(d: &Dict) -> Result<Delete, NgError> {
    let call = required_call(d)?;
    let mut del = Delete {
        call,
        ..Delete::default()
    };
    for (k, v) in d {
        match normalize(&String::from_utf8_lossy(k)).as_str() {
            "flags" => del.fatal |= strings(v).iter().any(|f| normalize(f) == "fatal"),
            "delete-delay" => del.delete_delay = delete_delay(v),
            "fatal" => del.fatal |= is_true(v),
            _ => {}
        }
    }
    Ok(del)
}

/// The participant selection of `block media` / `unblock media`, as rtpengine 10.5 reads it.
/// Later rtpengines (12.4 on) read `from-tag` only with the `directional` flag, and `to-tag`,
/// `to-label` and `all` values other than `all` for `subscribe` forks; here `directional` is
/// accepted and changes nothing, and those keys are ignored (see `session/block.rs`).
fn media_select(d: &Dict) -> Result<MediaSelect, NgError> {
    let mut m = MediaSelect {
        call: required_call(d)?,
        ..MediaSelect::default()
    };
    for (k, v) in d {
        match normalize(&String::from_utf8_lossy(k)).as_str() {
            "flags" => m.all |= strings(v).iter().any(|f| normalize(f) == "all"),
            "all" => match text(v).map(|t| normalize(&t)).as_deref() {
                Some("all") => m.all = true,
                Some("none") => m.all = false,
                _ => {}
            },
            "label" => m.label = text(v).filter(|l| !l.is_empty()),
            "address" => match text(v) {
                Some(a) if !a.is_empty() => m.address = Some(ip(&a).ok_or(NgError::BadAddress)?),
                _ => {}
            },
            _ => {}
        }
    }
    Ok(m)
}

fn offer_answer(d: &Dict, op: Op) -> Result<OfferAnswer, NgError> {
    let mut oa = OfferAnswer {
        call: call_ref(d),
        ..OfferAnswer::default()
    };
    let mut sdp = None;
    let (mut dir_from, mut dir_to) = (None, None);
    for (k, v) in d {
        let key = normalize(&String::from_utf8_lossy(k));
        match key.as_str() {
            "command" | "call-id" | "from-tag" | "to-tag" | "via-branch" => {}
            "sdp" => sdp = v.as_bytes().map(<[u8]>::to_vec),
            "flags" => {
                for f in strings(v) {
                    apply_flag(&mut oa, &f, op);
                }
            }
            "replace" => {
                for r in strings(v) {
                    apply_replace(&mut oa.replace, &r);
                }
            }
            "rtcp-mux" => {
                for r in strings(v) {
                    apply_rtcp_mux(&mut oa.rtcp_mux, &r);
                }
            }
            "ice" => {
                for i in strings(v) {
                    apply_ice(&mut oa.ice, &i);
                }
            }
            "ice-lite" => {
                oa.ice_lite = text(v).and_then(|t| ice_lite(&t)).or(oa.ice_lite);
            }
            "codec" | "codecs" => {
                if let Some(cd) = v.as_dict() {
                    for (ck, cv) in cd {
                        let op_name = normalize(&String::from_utf8_lossy(ck));
                        for c in strings(cv) {
                            apply_codec(&mut oa.codec, &op_name, &c, op);
                        }
                    }
                }
            }
            "direction" => {
                if let Some(l) = v.as_list() {
                    dir_from = l.first().and_then(text);
                    dir_to = l.get(1).and_then(text);
                }
            }
            "from-interface" => dir_from = text(v),
            "to-interface" => dir_to = text(v),
            "address-family" => oa.address_family = text(v).and_then(|s| family(&s)),
            "media-address" => oa.media_address = text(v).and_then(|s| ip(&s)),
            "received-from" => {
                let addr = match v {
                    Value::List(l) => l.get(1).and_then(text),
                    _ => text(v),
                };
                oa.received_from = addr.and_then(|s| ip(&s));
            }
            "label" | "from-label" => oa.label = text(v),
            "delete-delay" => oa.delete_delay = delete_delay(v),
            "supports" => {
                oa.supports_load_limit |= strings(v).iter().any(|s| normalize(s) == "load-limit");
            }
            "metadata" => oa.metadata = text(v),
            "record-call" => oa.flags.record_call = is_true(v),
            "endpoint-learning" => {
                oa.endpoint_learning = text(v).and_then(|t| endpoint_learning(&t));
            }
            "transport-protocol" => {
                if let Some(t) = text(v).and_then(|t| parse_srtp::transport_protocol(&t)) {
                    oa.transport_protocol = Some(t);
                }
            }
            "sdes" => {
                for w in strings(v) {
                    parse_srtp::apply_sdes(&mut oa.sdes, &w);
                }
            }
            "osrtp" => {
                for w in strings(v) {
                    parse_srtp::apply_osrtp(&mut oa.osrtp, &w);
                }
            }
            "dtls" => {
                if let Some(mode) = text(v).and_then(|t| parse_srtp::dtls_mode(&t)) {
                    oa.dtls = mode;
                }
            }
            "dtls-reverse" => {
                oa.dtls_reverse = match text(v).and_then(|t| parse_srtp::dtls_mode(&t)) {
                    Some(DtlsMode::Passive) => Some(crate::dtls::Role::Passive),
                    Some(DtlsMode::Active) => Some(crate::dtls::Role::Active),
                    _ => None,
                };
            }
            "dtls-fingerprint" => {
                if let Some(h) = text(v).and_then(|t| crate::session::dtls::hash_named(&t)) {
                    oa.dtls_fingerprint = Some(h);
                }
            }
            "media-echo" => {
                if let Some(mode) = text(v).and_then(|t| media_echo(&t)) {
                    oa.media_echo = Some(mode);
                }
            }
            other => {
                if is_true(v) {
                    set_bool_flag(&mut oa.flags, other);
                }
            }
        }
    }
    if dir_from.is_some() || dir_to.is_some() {
        oa.direction = Some((dir_from.unwrap_or_default(), dir_to.unwrap_or_default()));
    }
    // rtpengine checks in this order, so a request missing several gets the same error text.
    oa.sdp = sdp.ok_or(NgError::NoSdp)?;
    if oa.call.call_id.is_empty() {
        return Err(NgError::NoCallId);
    }
    if oa.call.from_tag.is_none() {
        return Err(NgError::NoFromTag);
    }
    if op == Op::Answer && oa.call.to_tag.is_none() {
        return Err(NgError::NoToTag);
    }
    Ok(oa)
}

/// Sets a boolean flag by its normalized name; false if `name` is not one.
fn set_bool_flag(f: &mut Flags, name: &str) -> bool {
    match name {
        "trust-address" => {
            f.trust_address = true;
            f.sip_source_address = false;
        }
        "sip-source-address" => {
            f.sip_source_address = true;
            f.trust_address = false;
        }
        "symmetric" => f.symmetric = true,
        "asymmetric" => f.asymmetric = true,
        "strict-source" => f.strict_source = true,
        "media-handover" => f.media_handover = true,
        "record-call" => f.record_call = true,
        "fatal" => f.fatal = true,
        "port-latching" => f.port_latching = true,
        "no-rtcp-attribute" => f.no_rtcp_attribute = true,
        "full-rtcp-attribute" => f.full_rtcp_attribute = true,
        "loop-protect" => f.loop_protect = true,
        "strip-extmap" => f.strip_extmap = true,
        "original-sendrecv" => f.original_sendrecv = true,
        "generate-mid" => f.generate_mid = true,
        "trickle-ice" => f.trickle_ice = true,
        _ => return false,
    }
    true
}

/// One word of the `flags` list.
fn apply_flag(oa: &mut OfferAnswer, flag: &str, op: Op) {
    let norm = normalize(flag);
    if set_bool_flag(&mut oa.flags, &norm) {
        return;
    }
    if norm == "always-transcode" {
        // rtpengine's legacy alias for `codec-accept-all`.
        apply_codec(&mut oa.codec, "accept", "all", op);
        return;
    }
    // Prefix forms: the prefix is spelling-insensitive, the rest keeps its case (codec names).
    // `norm` has the same length in bytes as `flag` only for ASCII, so slice the hyphenated form.
    let hyphenated: String = flag
        .chars()
        .map(|c| if c == ' ' { '-' } else { c })
        .collect();
    let rest_after = |prefix: &str| -> Option<&str> {
        let head = hyphenated.get(..prefix.len())?;
        (normalize(head) == prefix)
            .then(|| hyphenated.get(prefix.len()..))
            .flatten()
    };
    const CODEC_PREFIXES: [(&str, &str); 9] = [
        ("codec-strip-", "strip"),
        ("codec-mask-", "mask"),
        ("codec-offer-", "offer"),
        ("codec-transcode-", "transcode"),
        ("transcode-", "transcode"),
        ("codec-except-", "except"),
        ("codec-set-", "set"),
        ("codec-accept-", "accept"),
        ("codec-consume-", "consume"),
    ];
    for (prefix, codec_op) in CODEC_PREFIXES {
        if let Some(rest) = rest_after(prefix) {
            if !rest.is_empty() {
                apply_codec(&mut oa.codec, codec_op, rest, op);
                return;
            }
        }
    }
    if let Some(rest) = rest_after("replace-") {
        apply_replace(&mut oa.replace, rest);
        return;
    }
    if let Some(rest) = rest_after("rtcp-mux-") {
        apply_rtcp_mux(&mut oa.rtcp_mux, rest);
        return;
    }
    if let Some(rest) = rest_after("sdes-") {
        parse_srtp::apply_sdes(&mut oa.sdes, rest);
        return;
    }
    if let Some(rest) = rest_after("osrtp-") {
        parse_srtp::apply_osrtp(&mut oa.osrtp, rest);
        return;
    }
    if norm == "pad-crypto" {
        oa.sdes.pad = true;
        return;
    }
    oa.flags.unknown.push(flag.to_owned());
}

fn apply_replace(r: &mut Replace, word: &str) {
    match normalize(word).as_str() {
        "origin" | "origin-full" => r.origin = true,
        "session-connection" => r.session_connection = true,
        "sdp-version" => r.sdp_version = true,
        "zero-address" => r.zero_address = true,
        "username" => r.username = true,
        "session-name" => r.session_name = true,
        _ => {}
    }
}

fn apply_rtcp_mux(m: &mut RtcpMux, word: &str) {
    match normalize(word).as_str() {
        "offer" => m.offer = true,
        "demux" => m.demux = true,
        "accept" => m.accept = true,
        "reject" => m.reject = true,
        "require" => m.require = true,
        _ => {}
    }
}

fn apply_ice(ice: &mut IceMode, word: &str) {
    *ice = match normalize(word).as_str() {
        "remove" => IceMode::Remove,
        "force" => IceMode::Force,
        "force-relay" => IceMode::ForceRelay,
        "optional" => IceMode::Optional,
        "default" => IceMode::Default,
        // `trickle`, `lite-*`, `ice2` and unknown words leave the mode alone.
        _ => return,
    };
}

/// `ICE-lite` values; an unknown one is ignored (as rtpengine does).
fn ice_lite(word: &str) -> Option<IceLite> {
    Some(match normalize(word).as_str() {
        "forward" => IceLite::Forward,
        "backward" => IceLite::Backward,
        "both" => IceLite::Both,
        "off" => IceLite::Off,
        _ => return None,
    })
}

/// Adds one codec to a `codec` operation. `--` in the codec string stands for `=` (rtpengine's
/// escape for fmtp parameters in flag words). As in rtpengine, `mask`, `transcode`, `set`,
/// `accept` and `consume` only count in offers; `transcode` lands in [`CodecOps::offer`].
fn apply_codec(c: &mut CodecOps, codec_op: &str, codec: &str, op: Op) {
    let codec = codec.replace("--", "=");
    if codec.is_empty() {
        return;
    }
    let list = match (codec_op, op) {
        ("strip", _) => &mut c.strip,
        ("offer", _) => &mut c.offer,
        ("except", _) => &mut c.except,
        ("mask", Op::Offer) => &mut c.mask,
        ("transcode", Op::Offer) => &mut c.offer,
        ("set", Op::Offer) => &mut c.set,
        ("accept", Op::Offer) => &mut c.accept,
        ("consume", Op::Offer) => &mut c.consume,
        _ => return,
    };
    list.push(codec);
}

/// A `media echo` value, spelled exactly as rtpengine spells it (it ignores others, as we do).
/// The learning modes of `--endpoint-learning`, by the same names.
fn endpoint_learning(s: &str) -> Option<crate::flow::latch::EndpointLearning> {
    use crate::flow::latch::EndpointLearning as L;
    match s.trim().to_ascii_lowercase().as_str() {
        "delayed" => Some(L::Delayed),
        "immediate" => Some(L::Immediate),
        "off" => Some(L::Off),
        "heuristic" => Some(L::Heuristic),
        _ => None,
    }
}

fn media_echo(s: &str) -> Option<MediaEcho> {
    Some(match s {
        "blackhole" | "sinkhole" => MediaEcho::Blackhole,
        "forward" | "fwd" | "fw" => MediaEcho::Forward,
        "backwards" | "backward" | "reverse" | "back" | "bkw" | "bk" => MediaEcho::Backwards,
        "both" => MediaEcho::Both,
        _ => return None,
    })
}

fn family(s: &str) -> Option<Family> {
    match s.to_ascii_lowercase().as_str() {
        "ip4" | "ipv4" => Some(Family::V4),
        "ip6" | "ipv6" => Some(Family::V6),
        _ => None,
    }
}

/// An address as NG sends it; IPv6 may come in brackets.
fn ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::bencode::{decode, dict};
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn parse(v: Value) -> Result<Command, NgError> {
        match v {
            Value::Dict(d) => Command::from_dict(&d),
            _ => panic!("test input must be a dict"),
        }
    }

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

    fn flags(words: &[&str]) -> OfferAnswer {
        offer_with(vec![(
            "flags",
            Value::List(words.iter().map(|w| Value::from(*w)).collect()),
        )])
    }

    fn list(words: &[&str]) -> Value {
        Value::List(words.iter().map(|w| Value::from(*w)).collect())
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse(dict! {"command" => "ping"}), Ok(Command::Ping));
        assert_eq!(
            parse(dict! {"command" => "statistics"}),
            Ok(Command::Statistics)
        );
        assert_eq!(
            parse(dict! {"command" => "list"}),
            Ok(Command::List { limit: None })
        );
        assert_eq!(
            parse(dict! {"command" => "list", "limit" => 5i64}),
            Ok(Command::List { limit: Some(5) })
        );
        assert_eq!(
            parse(dict! {"command" => "list", "limit" => "7"}),
            Ok(Command::List { limit: Some(7) })
        );
        assert_eq!(
            parse(dict! {"command" => "list", "limit" => -1i64}),
            Err(NgError::InvalidLimit)
        );
        let q = parse(dict! {"command" => "query", "call-id" => "abc", "from-tag" => "f"});
        let want = CallRef {
            call_id: "abc".into(),
            from_tag: Some("f".into()),
            ..CallRef::default()
        };
        assert_eq!(q, Ok(Command::Query(want.clone())));
        let r =
            parse(dict! {"command" => "start recording", "call-id" => "abc", "from-tag" => "f"});
        assert_eq!(r, Ok(Command::StartRecording(want.clone())));
        let r = parse(dict! {"command" => "stop recording", "call-id" => "abc", "from-tag" => "f"});
        assert_eq!(r, Ok(Command::StopRecording(want.clone())));
        let r =
            parse(dict! {"command" => "pause recording", "call-id" => "abc", "from-tag" => "f"});
        assert_eq!(r, Ok(Command::PauseRecording(want)));
        assert_eq!(
            parse(dict! {"command" => "start recording"}),
            Err(NgError::NoCallId)
        );
    }

    #[test]
    fn block_media_selects_like_rtpengine() {
        let sel = |v: Value| match parse(v) {
            Ok(Command::BlockMedia(m)) => m,
            other => panic!("not block media: {other:?}"),
        };
        let m = sel(
            dict! {"command" => "block media", "call-id" => "c", "from-tag" => "a",
            "flags" => list(&["directional"])},
        );
        assert_eq!(m.call.call_id, "c");
        assert_eq!(m.call.from_tag.as_deref(), Some("a"));
        assert!(!m.all);
        let m =
            sel(dict! {"command" => "block media", "call-id" => "c", "flags" => list(&["All"])});
        assert!(m.all);
        let m = sel(dict! {"command" => "block media", "call-id" => "c", "all" => "all"});
        assert!(m.all);
        let m = sel(dict! {"command" => "block media", "call-id" => "c", "all" => "offer-answer"});
        assert!(!m.all);
        let m = sel(
            dict! {"command" => "block media", "call-id" => "c", "label" => "caller",
            "address" => "[2001:db8::5]"},
        );
        assert_eq!(m.label.as_deref(), Some("caller"));
        assert_eq!(
            m.address,
            Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5)))
        );
        match parse(
            dict! {"command" => "unblock media", "call-id" => "c", "address" => "192.0.2.7"},
        ) {
            Ok(Command::UnblockMedia(m)) => {
                assert_eq!(m.address, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))))
            }
            other => panic!("not unblock media: {other:?}"),
        }
        assert_eq!(
            parse(dict! {"command" => "block media", "from-tag" => "a"}),
            Err(NgError::NoCallId)
        );
        assert_eq!(
            parse(dict! {"command" => "unblock media", "call-id" => "c", "address" => "nope"}),
            Err(NgError::BadAddress)
        );
        assert_eq!(
            parse(dict! {"command" => "block DTMF", "call-id" => "c"}),
            Err(NgError::UnknownCommand)
        );
    }

    #[test]
    fn error_texts_are_rtpengines() {
        let cases: Vec<(Value, &str)> = vec![
            (
                dict! {"call-id" => "x"},
                "Dictionary contains no key \"command\"",
            ),
            (
                dict! {"command" => 5i64},
                "Dictionary contains no key \"command\"",
            ),
            (dict! {"command" => "bogus"}, "Unrecognized command"),
            (dict! {"command" => "Ping"}, "Unrecognized command"),
            (
                dict! {"command" => "block DTMF", "call-id" => "x"},
                "Unrecognized command",
            ),
            (dict! {"command" => "query"}, "No call-id in message"),
            (
                dict! {"command" => "delete", "call-id" => ""},
                "No call-id in message",
            ),
            (
                dict! {"command" => "offer", "call-id" => "c", "from-tag" => "f"},
                "No SDP body in message",
            ),
            // SDP is checked before call-id, as in rtpengine.
            (dict! {"command" => "offer"}, "No SDP body in message"),
            (
                dict! {"command" => "offer", "sdp" => "v=0"},
                "No call-id in message",
            ),
            (
                dict! {"command" => "offer", "sdp" => "v=0", "call-id" => "c"},
                "No from-tag in message",
            ),
            (
                dict! {"command" => "answer", "sdp" => "v=0", "call-id" => "c"},
                "No from-tag in message",
            ),
            (
                dict! {"command" => "answer", "sdp" => "v=0", "call-id" => "c", "from-tag" => "f"},
                "No to-tag in message",
            ),
            (
                dict! {"command" => "offer", "sdp" => 1i64, "call-id" => "c", "from-tag" => "f"},
                "No SDP body in message",
            ),
            (
                dict! {"command" => "list", "limit" => -3i64},
                "invalid limit, must be >= 0",
            ),
        ];
        for (req, want) in cases {
            match parse(req.clone()) {
                Err(e) => assert_eq!(e.to_string(), want, "{req:?}"),
                Ok(c) => panic!("{req:?} parsed to {c:?}"),
            }
        }
    }

    #[test]
    fn offer_and_answer_basics() {
        let d = decode(
            b"d7:call-id3:cid7:command6:answer8:from-tag2:ft3:sdp4:v=0\n6:to-tag2:tt10:via-branch2:vbe",
        )
        .unwrap_or(Value::Int(0));
        match parse(d) {
            Ok(Command::Answer(oa)) => {
                assert_eq!(oa.call.call_id, "cid");
                assert_eq!(oa.call.from_tag.as_deref(), Some("ft"));
                assert_eq!(oa.call.to_tag.as_deref(), Some("tt"));
                assert_eq!(oa.call.via_branch.as_deref(), Some("vb"));
                assert_eq!(oa.sdp, b"v=0\n".to_vec());
                assert_eq!(oa.ice, IceMode::Default);
            }
            other => panic!("{other:?}"),
        }
        // `call ID` spelling.
        match parse(dict! {"command" => "query", "call ID" => "other", "From Tag" => "f"}) {
            Ok(Command::Query(c)) => {
                assert_eq!(c.call_id, "other");
                assert_eq!(c.from_tag.as_deref(), Some("f"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn boolean_flags_in_all_spellings() {
        type Case<'a> = (&'a [&'a str], fn(&Flags) -> bool);
        let cases: &[Case] = &[
            (&["trust address", "trust-address", "Trust_Address"], |f| {
                f.trust_address
            }),
            (
                &[
                    "SIP source address",
                    "SIP-source-address",
                    "sip-source-address",
                ],
                |f| f.sip_source_address,
            ),
            (&["symmetric"], |f| f.symmetric),
            (&["asymmetric"], |f| f.asymmetric),
            (&["strict source", "strict-source", "STRICT SOURCE"], |f| {
                f.strict_source
            }),
            (&["media handover", "media-handover"], |f| f.media_handover),
            (&["record call", "record-call"], |f| f.record_call),
            (&["fatal"], |f| f.fatal),
            (&["port latching", "port-latching"], |f| f.port_latching),
            (
                &[
                    "no rtcp attribute",
                    "no-rtcp-attribute",
                    "no-RTCP-attribute",
                ],
                |f| f.no_rtcp_attribute,
            ),
            (&["full rtcp attribute", "full-RTCP-attribute"], |f| {
                f.full_rtcp_attribute
            }),
            (&["loop protect", "loop-protect"], |f| f.loop_protect),
            (&["strip extmap", "strip-extmap"], |f| f.strip_extmap),
            (&["original sendrecv", "original-sendrecv"], |f| {
                f.original_sendrecv
            }),
        ];
        for (spellings, get) in cases {
            for s in *spellings {
                let oa = flags(&[s]);
                assert!(get(&oa.flags), "{s}");
                assert!(oa.flags.unknown.is_empty(), "{s}");
            }
        }
        let none = flags(&[]);
        assert_eq!(none.flags, Flags::default());
    }

    #[test]
    fn trust_and_sip_source_exclude_each_other() {
        let f = flags(&["trust address", "SIP source address"]).flags;
        assert!(f.sip_source_address && !f.trust_address);
        let f = flags(&["SIP source address", "trust address"]).flags;
        assert!(f.trust_address && !f.sip_source_address);
    }

    #[test]
    fn unknown_flags_are_kept() {
        let oa = flags(&[
            "generate mid",
            "reject ICE",
            "no port latching",
            "codec-strip-",
            "x",
        ]);
        assert!(oa.flags.generate_mid);
        assert_eq!(
            oa.flags.unknown,
            vec!["reject ICE", "no port latching", "codec-strip-", "x"]
        );
    }

    #[test]
    fn codec_flag_forms() {
        let oa = flags(&[
            "codec-strip-PCMA",
            "codec strip G722",
            "CODEC-MASK-opus",
            "codec-mask-all",
            "codec-offer-PCMU",
            "codec-transcode-G729",
            "transcode-AMR",
            "codec-except-telephone-event",
            "codec-set-opus/48000/2/32000",
            "codec-accept-all",
            "codec-consume-EVS",
            "codec-strip-all",
            "codec-offer-iLBC/8000/1///mode--30",
        ]);
        let c = oa.codec;
        assert_eq!(c.strip, vec!["PCMA", "G722", "all"]);
        assert_eq!(c.mask, vec!["opus", "all"]);
        assert_eq!(
            c.offer,
            vec!["PCMU", "G729", "AMR", "iLBC/8000/1///mode=30"]
        );
        assert_eq!(c.except, vec!["telephone-event"]);
        assert_eq!(c.set, vec!["opus/48000/2/32000"]);
        assert_eq!(c.accept, vec!["all"]);
        assert_eq!(c.consume, vec!["EVS"]);
        assert!(oa.flags.unknown.is_empty());
    }

    #[test]
    fn codec_dict() {
        let codec = dict! {
            "strip" => list(&["PCMA", "all"]),
            "mask" => list(&["opus"]),
            "offer" => list(&["PCMU"]),
            "transcode" => list(&["G722"]),
            "except" => list(&["PCMU"]),
            "set" => list(&["AMR/8000/1/7400"]),
            "accept" => list(&["AMR-WB"]),
            "consume" => list(&["EVS"]),
            "ignore" => list(&["x"]),
        };
        let c = offer_with(vec![("codec", codec.clone())]).codec;
        assert_eq!(c.strip, vec!["PCMA", "all"]);
        assert_eq!(c.mask, vec!["opus"]);
        assert_eq!(c.offer, vec!["PCMU", "G722"]);
        assert_eq!(c.except, vec!["PCMU"]);
        assert_eq!(c.set, vec!["AMR/8000/1/7400"]);
        assert_eq!(c.accept, vec!["AMR-WB"]);
        assert_eq!(c.consume, vec!["EVS"]);
        // In an answer only strip/offer/except count, as in rtpengine.
        let req = dict! {"command" => "answer", "call-id" => "c", "from-tag" => "f", "to-tag" => "t",
        "sdp" => "v=0", "codec" => codec, "flags" => list(&["codec-mask-PCMU", "always transcode"])};
        match parse(req) {
            Ok(Command::Answer(oa)) => {
                assert_eq!(oa.codec.strip, vec!["PCMA", "all"]);
                assert_eq!(oa.codec.offer, vec!["PCMU"]);
                assert!(
                    oa.codec.mask.is_empty()
                        && oa.codec.accept.is_empty()
                        && oa.codec.set.is_empty()
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn always_transcode_means_accept_all() {
        let oa = flags(&["always transcode"]);
        assert_eq!(oa.codec.accept, vec!["all"]);
        assert!(oa.flags.unknown.is_empty());
    }

    #[test]
    fn replace_words_and_flag_forms() {
        let r = offer_with(vec![(
            "replace",
            list(&[
                "origin",
                "session connection",
                "SDP version",
                "zero-address",
                "username",
                "session-name",
            ]),
        )])
        .replace;
        assert_eq!(
            r,
            Replace {
                origin: true,
                session_connection: true,
                sdp_version: true,
                zero_address: true,
                username: true,
                session_name: true
            }
        );
        let r = offer_with(vec![(
            "replace",
            list(&["session-connection", "SDP-version", "zero address"]),
        )])
        .replace;
        assert!(r.session_connection && r.sdp_version && r.zero_address && !r.origin);
        let oa = flags(&[
            "replace-origin",
            "replace-SDP-version",
            "replace-zero address",
        ]);
        assert!(oa.replace.origin && oa.replace.sdp_version && oa.replace.zero_address);
        assert!(oa.flags.unknown.is_empty());
    }

    #[test]
    fn rtcp_mux_list_and_flags() {
        let m = offer_with(vec![(
            "rtcp-mux",
            list(&["offer", "demux", "accept", "reject", "require"]),
        )])
        .rtcp_mux;
        assert!(m.offer && m.demux && m.accept && m.reject && m.require);
        let m = offer_with(vec![("RTCP mux", list(&["demux"]))]).rtcp_mux;
        assert!(m.demux && !m.offer);
        let m = flags(&["rtcp-mux-offer", "rtcp-mux-require"]).rtcp_mux;
        assert!(m.offer && m.require && !m.demux);
    }

    #[test]
    fn ice_values() {
        for (word, want) in [
            ("remove", IceMode::Remove),
            ("force", IceMode::Force),
            ("force-relay", IceMode::ForceRelay),
            ("force_relay", IceMode::ForceRelay),
            ("force relay", IceMode::ForceRelay),
            ("optional", IceMode::Optional),
            ("default", IceMode::Default),
            ("bogus", IceMode::Default),
        ] {
            assert_eq!(offer_with(vec![("ICE", word.into())]).ice, want, "{word}");
        }
        assert_eq!(
            offer_with(vec![("ice", list(&["trickle", "remove"]))]).ice,
            IceMode::Remove
        );
    }

    #[test]
    fn ice_lite_values() {
        for (word, want) in [
            ("forward", Some(IceLite::Forward)),
            ("backward", Some(IceLite::Backward)),
            ("Both", Some(IceLite::Both)),
            ("off", Some(IceLite::Off)),
            ("bogus", None),
        ] {
            assert_eq!(
                offer_with(vec![("ICE-lite", word.into())]).ice_lite,
                want,
                "{word}"
            );
        }
        assert_eq!(offer_with(vec![]).ice_lite, None);
    }

    #[test]
    fn direction_and_interfaces() {
        let oa = offer_with(vec![("direction", list(&["priv", "pub"]))]);
        assert_eq!(oa.direction, Some(("priv".into(), "pub".into())));
        let oa = offer_with(vec![
            ("from-interface", "a".into()),
            ("to-interface", "b".into()),
        ]);
        assert_eq!(oa.direction, Some(("a".into(), "b".into())));
        let oa = offer_with(vec![("to interface", "b".into())]);
        assert_eq!(oa.direction, Some((String::new(), "b".into())));
        let oa = offer_with(vec![("direction", list(&["only"]))]);
        assert_eq!(oa.direction, Some(("only".into(), String::new())));
        assert_eq!(offer_with(vec![]).direction, None);
        assert_eq!(
            offer_with(vec![("direction", "notalist".into())]).direction,
            None
        );
    }

    #[test]
    fn endpoint_learning_per_call() {
        use crate::flow::latch::EndpointLearning as L;
        let el = |k: &str, v: &str| offer_with(vec![(k, v.into())]).endpoint_learning;
        assert_eq!(el("endpoint learning", "off"), Some(L::Off));
        assert_eq!(el("endpoint-learning", "Immediate"), Some(L::Immediate));
        assert_eq!(el("endpoint-learning", "sometimes"), None);
    }

    #[test]
    fn media_echo_values() {
        let echo = |k: &str, v: &str| offer_with(vec![(k, v.into())]).media_echo;
        assert_eq!(echo("media-echo", "fw"), Some(MediaEcho::Forward));
        assert_eq!(echo("media echo", "forward"), Some(MediaEcho::Forward));
        assert_eq!(echo("media-echo", "bk"), Some(MediaEcho::Backwards));
        assert_eq!(echo("media-echo", "reverse"), Some(MediaEcho::Backwards));
        assert_eq!(echo("media-echo", "both"), Some(MediaEcho::Both));
        assert_eq!(echo("media-echo", "sinkhole"), Some(MediaEcho::Blackhole));
        assert_eq!(echo("media-echo", "FWD"), None);
        assert_eq!(echo("media-echo", "off"), None);
        assert_eq!(offer_with(vec![]).media_echo, None);
    }

    #[test]
    fn addresses_and_family() {
        let oa = offer_with(vec![
            ("address family", "IP6".into()),
            ("media address", "2001:db8::1".into()),
            ("received from", list(&["IP4", "10.65.31.43"])),
        ]);
        assert_eq!(oa.address_family, Some(Family::V6));
        assert_eq!(
            oa.media_address,
            Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)))
        );
        assert_eq!(
            oa.received_from,
            Some(IpAddr::V4(Ipv4Addr::new(10, 65, 31, 43)))
        );
        let oa = offer_with(vec![
            ("address-family", "ip4".into()),
            ("media-address", "[::1]".into()),
            ("received-from", "192.0.2.1".into()),
        ]);
        assert_eq!(oa.address_family, Some(Family::V4));
        assert_eq!(oa.media_address, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(
            oa.received_from,
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        let oa = offer_with(vec![
            ("address-family", "IPX".into()),
            ("media-address", "nope".into()),
        ]);
        assert_eq!((oa.address_family, oa.media_address), (None, None));
    }

    #[test]
    fn other_keys() {
        let oa = offer_with(vec![
            ("label", "caller".into()),
            ("delete delay", "30".into()),
            ("supports", list(&["load limit"])),
            ("metadata", "k:v|x:y".into()),
            ("record call", "yes".into()),
            ("strict source", "yes".into()),
            ("asymmetric", 0i64.into()),
            ("unknown key", "whatever".into()),
        ]);
        assert_eq!(oa.label.as_deref(), Some("caller"));
        assert_eq!(oa.delete_delay, Some(30));
        assert!(oa.supports_load_limit);
        assert_eq!(oa.metadata.as_deref(), Some("k:v|x:y"));
        assert!(oa.flags.record_call);
        assert!(oa.flags.strict_source);
        assert!(!oa.flags.asymmetric);
        assert!(oa.flags.unknown.is_empty());
        let oa = offer_with(vec![
            ("from-label", "x".into()),
            ("delete-delay", (-1i64).into()),
        ]);
        assert_eq!(oa.label.as_deref(), Some("x"));
        assert_eq!(oa.delete_delay, None);
        let oa = offer_with(vec![
            ("record-call", "off".into()),
            ("supports", list(&["load-limit"])),
        ]);
        assert!(!oa.flags.record_call && oa.supports_load_limit);
    }

    #[test]
    fn delete_parsing() {
        let d = parse(
            dict! {"command" => "delete", "call-id" => "c", "from-tag" => "f",
            "flags" => list(&["fatal"]), "delete-delay" => 0i64},
        );
        let want = Delete {
            call: CallRef {
                call_id: "c".into(),
                from_tag: Some("f".into()),
                ..CallRef::default()
            },
            delete_delay: Some(0),
            fatal: true,
        };
        assert_eq!(d, Ok(Command::Delete(want)));
        match parse(dict! {"command" => "delete", "call-id" => "c", "delete delay" => "12"}) {
            Ok(Command::Delete(d)) => {
                assert_eq!(d.delete_delay, Some(12));
                assert!(!d.fatal);
                assert_eq!(d.call.from_tag, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_string_values_are_ignored() {
        let oa = offer_with(vec![
            ("flags", list(&["strict source"])),
            ("label", 5i64.into()),
            ("direction", Value::List(vec![1i64.into(), "pub".into()])),
            ("codec", "notadict".into()),
            ("replace", 3i64.into()),
        ]);
        assert!(oa.flags.strict_source);
        assert_eq!(oa.label, None);
        assert_eq!(oa.direction, Some((String::new(), "pub".into())));
        assert_eq!(oa.codec, CodecOps::default());
    }

    #[test]
    fn normalize_spellings() {
        assert_eq!(normalize("Transport Protocol"), "transport-protocol");
        assert_eq!(normalize("delete_delay"), "delete-delay");
        assert_eq!(normalize("SDP version"), "sdp-version");
    }
}
