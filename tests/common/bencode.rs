//! A minimal bencode encoder/decoder for the tests, written apart from the crate's own codec so that a bug
//! shared by both sides of a round trip cannot hide. Decoding is lenient about dict key order (rtpengine's
//! clients are) but strict about structure; encoding sorts dict keys as bencode requires.

use std::collections::BTreeMap;
use std::fmt;

/// A dict: byte-string keys, kept sorted.
pub type Dict = BTreeMap<Vec<u8>, Value>;

/// One bencode value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Dict),
}

impl Value {
    /// The value as UTF-8 text, if it is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
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

    /// Follows a path of dict keys, e.g. `v.path(&["totals", "RTP", "packets"])`.
    pub fn path(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter()
            .try_fold(self, |v, k| v.as_dict()?.get(k.as_bytes()))
    }
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

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
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

/// Builds a dict from `(key, value)` pairs.
pub fn dict<const N: usize>(pairs: [(&str, Value); N]) -> Dict {
    pairs
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v))
        .collect()
}

/// A list of byte strings, e.g. NG `flags`.
pub fn str_list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|s| Value::from(*s)).collect())
}

/// Looks up a text value in a dict.
pub fn get_str<'a>(d: &'a Dict, key: &str) -> Option<&'a str> {
    d.get(key.as_bytes()).and_then(Value::as_str)
}

/// Encodes a value.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
        Value::Bytes(b) => encode_bytes(b, out),
        Value::List(l) => {
            out.push(b'l');
            l.iter().for_each(|x| encode_into(x, out));
            out.push(b'e');
        }
        Value::Dict(d) => {
            out.push(b'd');
            for (k, x) in d {
                encode_bytes(k, out);
                encode_into(x, out);
            }
            out.push(b'e');
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{}:", b.len()).as_bytes());
    out.extend_from_slice(b);
}

/// Why a buffer is not one bencode value.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bencode: {} at byte {}", self.what, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes exactly one value filling the whole buffer.
pub fn decode(buf: &[u8]) -> Result<Value, DecodeError> {
    let (v, used) = decode_prefix(buf)?;
    if used != buf.len() {
        return Err(DecodeError {
            offset: used,
            what: "trailing bytes",
        });
    }
    Ok(v)
}

/// Decodes one value from the start of the buffer; returns it and the bytes it used.
pub fn decode_prefix(buf: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut p = Parser {
        buf,
        pos: 0,
        depth: 0,
    };
    let v = p.value()?;
    Ok((v, p.pos))
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

/// Nesting bound, so a hostile reply cannot overflow the stack.
const MAX_DEPTH: usize = 64;

impl Parser<'_> {
    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            what,
        }
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err("unexpected end"))
    }

    fn value(&mut self) -> Result<Value, DecodeError> {
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.number(b'e')?;
                Ok(Value::Int(n))
            }
            b'l' | b'd' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.err("nested too deep"));
                }
                let is_dict = self.peek()? == b'd';
                self.pos += 1;
                let v = if is_dict { self.dict()? } else { self.list()? };
                self.depth -= 1;
                Ok(v)
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            _ => Err(self.err("unexpected byte")),
        }
    }

    fn list(&mut self) -> Result<Value, DecodeError> {
        let mut items = Vec::new();
        while self.peek()? != b'e' {
            items.push(self.value()?);
        }
        self.pos += 1;
        Ok(Value::List(items))
    }

    fn dict(&mut self) -> Result<Value, DecodeError> {
        let mut d = Dict::new();
        while self.peek()? != b'e' {
            if !self.peek()?.is_ascii_digit() {
                return Err(self.err("dict key is not a string"));
            }
            let k = self.bytes()?;
            let v = self.value()?;
            d.insert(k, v);
        }
        self.pos += 1;
        Ok(Value::Dict(d))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let len = usize::try_from(self.number(b':')?).map_err(|_| self.err("negative length"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("string past end"))?;
        let b = self.buf[self.pos..end].to_vec();
        self.pos = end;
        Ok(b)
    }

    /// Reads a decimal integer up to `term` (consumed).
    fn number(&mut self, term: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        let end = self.buf[start..]
            .iter()
            .position(|&c| c == term)
            .map(|i| start + i)
            .ok_or_else(|| self.err("unterminated number"))?;
        let text =
            std::str::from_utf8(&self.buf[start..end]).map_err(|_| self.err("bad number"))?;
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty()
            || !digits.bytes().all(|c| c.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
            || text == "-0"
        {
            return Err(self.err("bad number"));
        }
        let n = text.parse().map_err(|_| self.err("number out of range"))?;
        self.pos = end + 1;
        Ok(n)
    }
}
