//! NG framing: `<cookie> <dictionary>`, where the dictionary is bencode or (if it starts with `{`)
//! JSON. Replies use the request's cookie and the request's format.

use crate::control::bencode::{self, Dict, Value};
use crate::control::error::NgError;

/// The encoding a request arrived in; its reply uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Bencode,
    Json,
}

/// Splits a datagram at its first space into cookie and body. A datagram without a space, or
/// starting with one (an empty cookie), gets no reply at all, as with rtpengine.
pub fn split_cookie(datagram: &[u8]) -> Result<(&[u8], &[u8]), NgError> {
    match datagram.iter().position(|&b| b == b' ') {
        Some(0) | None => Err(NgError::NoCookie),
        Some(i) => Ok((&datagram[..i], &datagram[i + 1..])),
    }
}

/// Decodes a body into its dictionary and the format it used.
///
/// Bencode must be one dictionary; trailing ASCII whitespace is tolerated (hand-typed requests
/// through netcat end in a newline) but other trailing bytes are an error.
pub fn decode_body(body: &[u8]) -> Result<(Dict, Format), NgError> {
    match body.first() {
        None => Err(NgError::NoPayload),
        Some(b'd') => {
            let trimmed = body.trim_ascii_end();
            match bencode::decode(trimmed) {
                Ok(Value::Dict(d)) => Ok((d, Format::Bencode)),
                _ => Err(NgError::BadBencode),
            }
        }
        Some(b'{') => {
            let json: serde_json::Value =
                serde_json::from_slice(body).map_err(|_| NgError::BadJson)?;
            match json_to_value(&json, 0) {
                Some(Value::Dict(d)) => Ok((d, Format::Json)),
                Some(_) => Err(NgError::JsonNotDict),
                None => Err(NgError::BadJson),
            }
        }
        Some(_) => Err(NgError::BadFormat),
    }
}

/// The body of a reply in `format` (without the cookie).
pub fn encode_body(reply: &Value, format: Format) -> Vec<u8> {
    match format {
        Format::Bencode => reply.encode(),
        Format::Json => {
            serde_json::to_vec(&value_to_json(reply)).unwrap_or_else(|_| b"{}".to_vec())
        }
    }
}

/// `<cookie> <bencoded reply>`.
pub fn encode_reply(cookie: &[u8], reply: &Value) -> Vec<u8> {
    encode_reply_as(cookie, reply, Format::Bencode)
}

/// `<cookie> <reply>` in the given format.
pub fn encode_reply_as(cookie: &[u8], reply: &Value, format: Format) -> Vec<u8> {
    let body = encode_body(reply, format);
    let mut out = Vec::with_capacity(cookie.len() + 1 + body.len());
    out.extend_from_slice(cookie);
    out.push(b' ');
    out.extend_from_slice(&body);
    out
}

/// JSON nesting deeper than this is refused, like bencode's depth limit.
const MAX_JSON_DEPTH: usize = bencode::MAX_DEPTH;

/// Maps JSON onto bencode: objects → dicts, arrays → lists, strings → bytes, integers → ints,
/// booleans → 0/1. Floats become their decimal text. `null` members of objects are dropped (as if
/// absent); `null` in arrays becomes an empty string so positions stay put. `None` = too deep.
fn json_to_value(j: &serde_json::Value, depth: usize) -> Option<Value> {
    use serde_json::Value as J;
    Some(match j {
        J::Null => Value::Bytes(Vec::new()),
        J::Bool(b) => Value::Int(i64::from(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => match n.as_u64() {
                Some(u) => Value::from(u),
                None => Value::Bytes(n.to_string().into_bytes()),
            },
        },
        J::String(s) => Value::Bytes(s.as_bytes().to_vec()),
        J::Array(a) => {
            if depth >= MAX_JSON_DEPTH {
                return None;
            }
            let mut l = Vec::with_capacity(a.len());
            for x in a {
                l.push(json_to_value(x, depth + 1)?);
            }
            Value::List(l)
        }
        J::Object(o) => {
            if depth >= MAX_JSON_DEPTH {
                return None;
            }
            let mut d = Dict::new();
            for (k, v) in o {
                if v.is_null() {
                    continue;
                }
                d.insert(k.as_bytes().to_vec(), json_to_value(v, depth + 1)?);
            }
            Value::Dict(d)
        }
    })
}

/// Maps a reply onto JSON; byte strings that are not UTF-8 are converted lossily (SDP and our
/// own replies are ASCII).
fn value_to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Int(n) => J::from(*n),
        Value::Bytes(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        Value::List(l) => J::Array(l.iter().map(value_to_json).collect()),
        Value::Dict(d) => J::Object(
            d.iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), value_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::bencode::dict;

    #[test]
    fn splits_at_first_space() {
        assert_eq!(
            split_cookie(b"abc d7:command4:pinge"),
            Ok((&b"abc"[..], &b"d7:command4:pinge"[..]))
        );
        assert_eq!(split_cookie(b"c x y"), Ok((&b"c"[..], &b"x y"[..])));
        assert_eq!(split_cookie(b"c "), Ok((&b"c"[..], &b""[..])));
        assert_eq!(split_cookie(b"nospace"), Err(NgError::NoCookie));
        assert_eq!(split_cookie(b" d4:x"), Err(NgError::NoCookie));
        assert_eq!(split_cookie(b""), Err(NgError::NoCookie));
    }

    #[test]
    fn encodes_reply_with_cookie() {
        let r = dict! {"result" => "pong"};
        assert_eq!(
            encode_reply(b"5323_1", &r),
            b"5323_1 d6:result4:ponge".to_vec()
        );
        assert_eq!(
            encode_reply_as(b"k", &r, Format::Json),
            b"k {\"result\":\"pong\"}".to_vec()
        );
    }

    #[test]
    fn decodes_bencode_bodies() {
        let (d, f) = decode_body(b"d7:command4:pinge").unwrap_or_default();
        assert_eq!(f, Format::Bencode);
        assert_eq!(d.get(&b"command"[..]), Some(&Value::from("ping")));
        assert!(decode_body(b"d7:command4:pinge\r\n").is_ok());
        assert_eq!(
            decode_body(b"d7:command4:pingexx"),
            Err(NgError::BadBencode)
        );
        assert_eq!(decode_body(b"d7:command"), Err(NgError::BadBencode));
        assert_eq!(decode_body(b""), Err(NgError::NoPayload));
        assert_eq!(decode_body(b"l4:pinge"), Err(NgError::BadFormat));
        assert_eq!(decode_body(b"i1e"), Err(NgError::BadFormat));
    }

    #[test]
    fn decodes_json_bodies() {
        let body = br#"{"command":"offer","flags":["trust address",null],"n":5,"b":true,"f":1.5,"x":null,"big":18446744073709551615}"#;
        let (d, f) = decode_body(body).unwrap_or_default();
        assert_eq!(f, Format::Json);
        let v = Value::Dict(d);
        assert_eq!(v.get("command").and_then(Value::as_str), Some("offer"));
        assert_eq!(v.get("n"), Some(&Value::Int(5)));
        assert_eq!(v.get("b"), Some(&Value::Int(1)));
        assert_eq!(v.get("f"), Some(&Value::from("1.5")));
        assert_eq!(v.get("x"), None);
        assert_eq!(v.get("big"), Some(&Value::Int(i64::MAX)));
        assert_eq!(
            v.get("flags"),
            Some(&Value::List(vec![
                Value::from("trust address"),
                Value::from("")
            ]))
        );
        assert_eq!(decode_body(b"{\"a\":"), Err(NgError::BadJson));
        assert_eq!(decode_body(b"{} x"), Err(NgError::BadJson));
        let deep = "{\"a\":".repeat(100) + "1" + &"}".repeat(100);
        assert_eq!(decode_body(deep.as_bytes()), Err(NgError::BadJson));
    }

    #[test]
    fn json_reply_round_trip() {
        let r = dict! {"result" => "ok", "sdp" => "v=0\r\n", "n" => 3i64, "l" => vec![Value::from("a")]};
        let body = encode_body(&r, Format::Json);
        let (d, _) = decode_body(&body).unwrap_or_default();
        assert_eq!(Value::Dict(d), r);
    }
}
