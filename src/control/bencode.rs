//! Bencode values and their codec, as NG messages carry them.
//!
//! Decoding is strict about the grammar and never panics: integers are `i<digits>e` with an
//! optional `-`, no leading zeros, no `-0`, and must fit in an `i64` (rtpengine's decoder is
//! laxer here, but no NG client sends such integers). String lengths have the same no-leading-zero
//! rule and are checked against the input before anything is allocated. Nesting is limited to
//! [`MAX_DEPTH`] so a hostile datagram cannot exhaust the stack. Dictionary keys must be strings;
//! they need not be sorted (rtpengine does not sort them either); a repeated key keeps the last
//! value. Encoding writes keys sorted, which the `BTreeMap` gives for free.

use std::collections::BTreeMap;

/// A bencode dictionary; keys are byte strings, kept sorted as rtpengine sends them.
pub type Dict = BTreeMap<Vec<u8>, Value>;

/// One bencode value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Dict),
}

/// How deep lists and dictionaries may nest. NG messages use three or four levels.
pub const MAX_DEPTH: usize = 64;

/// Why a byte string is not one bencode value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    /// The input ended inside a value.
    #[error("truncated bencode at byte {0}")]
    Truncated(usize),
    /// A byte that cannot start or continue a value here.
    #[error("unexpected byte {byte:#04x} at byte {at}")]
    Unexpected { byte: u8, at: usize },
    /// An integer or string length that is malformed or out of range.
    #[error("invalid number at byte {0}")]
    BadNumber(usize),
    /// A string length that runs past the end of the input.
    #[error("string length {len} at byte {at} exceeds the input")]
    TooLong { len: u64, at: usize },
    /// A dictionary key that is not a string.
    #[error("dictionary key at byte {0} is not a string")]
    KeyNotString(usize),
    /// Lists/dictionaries nested deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Bytes after the value.
    #[error("trailing data at byte {0}")]
    Trailing(usize),
}

impl BencodeError {
    /// True when more input could complete the value (used by stream framing).
    pub fn is_truncated(&self) -> bool {
        matches!(
            self,
            BencodeError::Truncated(_) | BencodeError::TooLong { .. }
        )
    }
}

/// Decodes `input`, which must hold exactly one value.
pub fn decode(input: &[u8]) -> Result<Value, BencodeError> {
    let (value, used) = decode_prefix(input)?;
    if used != input.len() {
        return Err(BencodeError::Trailing(used));
    }
    Ok(value)
}

/// Decodes the value at the start of `input` and returns it with the number of bytes it took.
/// Stream transports use this to find where one message ends.
pub fn decode_prefix(input: &[u8]) -> Result<(Value, usize), BencodeError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Truncated(self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Value, BencodeError> {
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.integer(b'e')?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.string()?)),
            b'l' => {
                if depth >= MAX_DEPTH {
                    return Err(BencodeError::TooDeep);
                }
                self.pos += 1;
                let mut list = Vec::new();
                while self.peek()? != b'e' {
                    list.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(list))
            }
            b'd' => {
                if depth >= MAX_DEPTH {
                    return Err(BencodeError::TooDeep);
                }
                self.pos += 1;
                let mut dict = Dict::new();
                while self.peek()? != b'e' {
                    let at = self.pos;
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::KeyNotString(at));
                    }
                    let key = self.string()?;
                    let val = self.value(depth + 1)?;
                    dict.insert(key, val);
                }
                self.pos += 1;
                Ok(Value::Dict(dict))
            }
            byte => Err(BencodeError::Unexpected { byte, at: self.pos }),
        }
    }

    /// Parses `-?digits` up to `end`, consuming `end`. No leading zeros, no `-0`, no overflow.
    fn integer(&mut self, end: u8) -> Result<i64, BencodeError> {
        let start = self.pos;
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        // Accumulate as a negative number so that i64::MIN is representable.
        let mut acc: i64 = 0;
        loop {
            let c = self.peek()?;
            if c == end {
                break;
            }
            if !c.is_ascii_digit() {
                return Err(BencodeError::BadNumber(start));
            }
            acc = acc
                .checked_mul(10)
                .and_then(|a| a.checked_sub(i64::from(c - b'0')))
                .ok_or(BencodeError::BadNumber(start))?;
            self.pos += 1;
        }
        let ndigits = self.pos - digits_start;
        let leading_zero = ndigits > 1 && self.input.get(digits_start) == Some(&b'0');
        if ndigits == 0 || leading_zero || (negative && acc == 0) {
            return Err(BencodeError::BadNumber(start));
        }
        self.pos += 1; // the end byte
        if negative {
            Ok(acc)
        } else {
            acc.checked_neg().ok_or(BencodeError::BadNumber(start))
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, BencodeError> {
        let at = self.pos;
        if self.peek()? == b'-' {
            return Err(BencodeError::BadNumber(at));
        }
        let len = self.integer(b':')?;
        let len = u64::try_from(len).map_err(|_| BencodeError::BadNumber(at))?;
        let remaining = (self.input.len() - self.pos) as u64;
        if len > remaining {
            return Err(BencodeError::TooLong { len, at });
        }
        // len <= remaining, so it fits in usize and the slice is in bounds.
        let end = self.pos + len as usize;
        let bytes = self
            .input
            .get(self.pos..end)
            .ok_or(BencodeError::Truncated(self.pos))?
            .to_vec();
        self.pos = end;
        Ok(bytes)
    }
}

impl Value {
    /// The bencoded form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the bencoded form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    encode_bytes(k, out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The string value if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// An integer, or a string holding a decimal integer (rtpengine accepts both for numeric
    /// keys such as `limit` and `delete-delay`).
    pub fn as_int_or_str(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The value under `key` if this is a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict().and_then(|d| d.get(key.as_bytes()))
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Bytes(s.as_bytes().to_vec())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Bytes(s.into_bytes())
    }
}
impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Int(n.into())
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Int(n.into())
    }
}
impl From<u16> for Value {
    fn from(n: u16) -> Self {
        Value::Int(n.into())
    }
}
/// Saturates at `i64::MAX` (counters never get there).
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
/// Saturates at `i64::MAX`.
impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
impl From<Vec<Value>> for Value {
    fn from(l: Vec<Value>) -> Self {
        Value::List(l)
    }
}
impl From<Dict> for Value {
    fn from(d: Dict) -> Self {
        Value::Dict(d)
    }
}
impl From<DictBuilder> for Value {
    fn from(b: DictBuilder) -> Self {
        Value::Dict(b.0)
    }
}

/// Builds reply dictionaries: `DictBuilder::new().put("result", "ok").put("sdp", sdp).build()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DictBuilder(Dict);

impl DictBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `key` (replacing an earlier value).
    pub fn put(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.as_bytes().to_vec(), value.into());
        self
    }
    /// Sets `key` only when `value` is `Some`.
    pub fn put_opt(self, key: &str, value: Option<impl Into<Value>>) -> Self {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }
    pub fn build_dict(self) -> Dict {
        self.0
    }
    pub fn build(self) -> Value {
        Value::Dict(self.0)
    }
}

/// `dict! { "result" => "ok", "sdp" => sdp }` builds a [`Value::Dict`].
#[macro_export]
macro_rules! ng_dict {
    ($($k:expr => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut d = $crate::control::bencode::Dict::new();
        $( d.insert(::std::vec::Vec::from(::std::convert::AsRef::<[u8]>::as_ref($k)),
                    $crate::control::bencode::Value::from($v)); )*
        $crate::control::bencode::Value::Dict(d)
    }};
}
pub use crate::ng_dict as dict;

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Value {
        match decode(s.as_bytes()) {
            Ok(v) => v,
            Err(e) => panic!("{s:?} failed: {e}"),
        }
    }

    #[test]
    fn decodes_scalars() {
        assert_eq!(ok("i0e"), Value::Int(0));
        assert_eq!(ok("i42e"), Value::Int(42));
        assert_eq!(ok("i-7e"), Value::Int(-7));
        assert_eq!(ok("i9223372036854775807e"), Value::Int(i64::MAX));
        assert_eq!(ok("i-9223372036854775808e"), Value::Int(i64::MIN));
        assert_eq!(ok("0:"), Value::Bytes(vec![]));
        assert_eq!(ok("4:spam"), Value::from("spam"));
    }

    #[test]
    fn decodes_binary_strings() {
        let v = decode(b"3:\x00\xff ").unwrap_or(Value::Int(-1));
        assert_eq!(v, Value::Bytes(vec![0, 0xff, b' ']));
        assert_eq!(v.as_str(), None);
        assert_eq!(v.as_bytes(), Some(&[0u8, 0xff, b' '][..]));
    }

    #[test]
    fn decodes_nested() {
        let v = ok("d7:command5:offer5:flagsl13:trust address5:SIP-xe3:numi5ee");
        assert_eq!(v.get("command").and_then(Value::as_str), Some("offer"));
        assert_eq!(v.get("num").and_then(Value::as_int), Some(5));
        let flags = v.get("flags").and_then(Value::as_list).map(|l| l.len());
        assert_eq!(flags, Some(2));
        assert_eq!(v.get("missing"), None);
        assert_eq!(Value::Int(1).get("command"), None);
    }

    #[test]
    fn unsorted_keys_are_accepted_and_sorted_on_output() {
        let v = ok("d1:bi1e1:ai2ee");
        assert_eq!(v.encode(), b"d1:ai2e1:bi1ee".to_vec());
    }

    #[test]
    fn repeated_key_keeps_last() {
        assert_eq!(ok("d1:ai1e1:ai2ee").get("a"), Some(&Value::Int(2)));
    }

    #[test]
    fn round_trips() {
        let samples = [
            "i0e",
            "i-1e",
            "le",
            "de",
            "l4:spami42ee",
            "d3:bar4:spam3:fooi42ee",
            "d4:listld1:xlleeee1:zi-99ee",
        ];
        for s in samples {
            assert_eq!(ok(s).encode(), s.as_bytes().to_vec(), "{s}");
        }
        let built = dict! { "result" => "ok", "n" => 3u32, "l" => vec![Value::from("a")] };
        assert_eq!(decode(&built.encode()), Ok(built.clone()));
        assert_eq!(built.encode(), b"d1:ll1:ae1:ni3e6:result2:oke".to_vec());
    }

    #[test]
    fn rejects_bad_integers() {
        for s in [
            "ie", "i-e", "i01e", "i-0e", "i00e", "i+1e", "i 1e", "i1.5e", "i1", "i", "i-",
        ] {
            assert!(decode(s.as_bytes()).is_err(), "{s} should fail");
        }
        // One past the i64 range either way.
        assert_eq!(
            decode(b"i9223372036854775808e"),
            Err(BencodeError::BadNumber(1))
        );
        assert!(decode(b"i-9223372036854775809e").is_err());
        assert!(decode(b"i99999999999999999999999999999e").is_err());
    }

    #[test]
    fn rejects_bad_strings() {
        assert_eq!(
            decode(b"5:abc"),
            Err(BencodeError::TooLong { len: 5, at: 0 })
        );
        assert!(decode(b"01:a").is_err());
        assert!(decode(b"-1:a").is_err());
        assert!(decode(b"3").is_err());
        assert!(decode(b"3x").is_err());
        // A huge length must fail cleanly, not allocate.
        assert!(matches!(
            decode(b"18446744073709551615:a"),
            Err(BencodeError::BadNumber(_))
        ));
        assert!(matches!(
            decode(b"9223372036854775807:a"),
            Err(BencodeError::TooLong { .. })
        ));
    }

    #[test]
    fn rejects_truncation_everywhere() {
        let full = b"d7:command5:offer5:flagsl13:trust addressee";
        assert!(decode(full).is_ok());
        for n in 0..full.len() {
            let r = decode(&full[..n]);
            assert!(
                matches!(&r, Err(e) if e.is_truncated()),
                "prefix {n}: {r:?}"
            );
        }
    }

    #[test]
    fn rejects_trailing_garbage_but_prefix_reports_length() {
        assert_eq!(decode(b"i1ex"), Err(BencodeError::Trailing(3)));
        assert_eq!(decode(b"dei1e"), Err(BencodeError::Trailing(2)));
        assert_eq!(
            decode_prefix(b"d1:ai1ee5:other"),
            Ok((dict! {"a" => 1i64}, 8))
        );
    }

    #[test]
    fn rejects_structural_errors() {
        assert!(decode(b"").is_err());
        assert!(matches!(
            decode(b"e"),
            Err(BencodeError::Unexpected { byte: b'e', at: 0 })
        ));
        assert!(matches!(decode(b"x"), Err(BencodeError::Unexpected { .. })));
        assert_eq!(decode(b"di1ei2ee"), Err(BencodeError::KeyNotString(1)));
        assert_eq!(decode(b"dlei1ee"), Err(BencodeError::KeyNotString(1)));
        assert!(decode(b"d1:ae").is_err()); // key without value
        assert!(decode(b"l").is_err());
    }

    #[test]
    fn limits_depth() {
        let ok_depth = "l".repeat(MAX_DEPTH) + &"e".repeat(MAX_DEPTH);
        assert!(decode(ok_depth.as_bytes()).is_ok());
        let too_deep = "l".repeat(MAX_DEPTH + 1) + &"e".repeat(MAX_DEPTH + 1);
        assert_eq!(decode(too_deep.as_bytes()), Err(BencodeError::TooDeep));
        // Far deeper input must not overflow the stack.
        let huge = "l".repeat(1_000_000);
        assert_eq!(decode(huge.as_bytes()), Err(BencodeError::TooDeep));
        let huge_d = "d1:a".repeat(100_000);
        assert_eq!(decode(huge_d.as_bytes()), Err(BencodeError::TooDeep));
    }

    #[test]
    fn accessors_and_conversions() {
        assert_eq!(Value::from("12").as_int_or_str(), Some(12));
        assert_eq!(Value::from(" -3 ").as_int_or_str(), Some(-3));
        assert_eq!(Value::from("x").as_int_or_str(), None);
        assert_eq!(Value::from(7u64).as_int(), Some(7));
        assert_eq!(Value::from(u64::MAX).as_int(), Some(i64::MAX));
        assert_eq!(Value::from(5usize), Value::Int(5));
        assert_eq!(Value::from(String::from("s")).as_str(), Some("s"));
        assert_eq!(Value::from(vec![1u8, 2]).as_bytes(), Some(&[1u8, 2][..]));
        assert_eq!(Value::Int(1).as_list(), None);
        assert_eq!(Value::from(Dict::new()).as_dict().map(|d| d.len()), Some(0));
        let b = DictBuilder::new()
            .put("a", 1i64)
            .put_opt("b", None::<&str>)
            .put_opt("c", Some("x"));
        assert_eq!(b.build(), dict! {"a" => 1i64, "c" => "x"});
    }
}
