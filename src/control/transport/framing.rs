//! Message boundaries in an NG byte stream (NG over TCP). Sans-IO.
//!
//! The stream is `<cookie> <value><cookie> <value>...`, optionally with whitespace between
//! messages; a message ends where its bencode value (or JSON object, when the body starts with
//! `{`) ends. [`Framer`] finds those ends incrementally: its scanner keeps its state between
//! reads (nesting, the open token, bytes left in a string, in-string and escape flags for JSON),
//! so each byte is looked at once however the stream is cut, and the full decoder then runs once
//! per complete message. [`next_frame`] is the one-shot version that parses a whole buffer from
//! its start; it is the reference the fuzz target compares the framer against.
//!
//! For bencode the scanner applies the decoder's rules as the bytes arrive (integers, string
//! lengths, keys that must be strings, [`MAX_DEPTH`]), so it says "invalid" exactly where the
//! decoder would. For JSON it only tracks strings and bracket depth: a malformed object is
//! reported once its brackets balance (by the decoder), not earlier.

use crate::control::bencode::{self, MAX_DEPTH};

/// A cookie longer than this (no space yet) means the peer is not speaking NG.
pub const MAX_COOKIE: usize = 256;

/// What the start of a receive buffer holds. `skip` counts leading whitespace to discard.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Frame {
    /// One whole message at `buf[skip..skip + len]`.
    Complete { skip: usize, len: usize },
    /// The message is not complete yet.
    Incomplete { skip: usize },
    /// `buf[skip..]` cannot be an NG message.
    Invalid { skip: usize },
}

/// Finds the first message in `buf` by parsing from its start (one-shot; quadratic if called
/// again after every read, which is why [`Framer`] exists).
pub fn next_frame(buf: &[u8]) -> Frame {
    let skip = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len());
    let rest = buf.get(skip..).unwrap_or_default();
    let Some(space) = rest.iter().position(|&b| b == b' ') else {
        return if rest.len() > MAX_COOKIE {
            Frame::Invalid { skip }
        } else {
            Frame::Incomplete { skip }
        };
    };
    if space > MAX_COOKIE {
        return Frame::Invalid { skip };
    }
    let body = rest.get(space + 1..).unwrap_or_default();
    let body_len = match decode_body_prefix(body) {
        Decoded::Value(n) => n,
        Decoded::Truncated => return Frame::Incomplete { skip },
        Decoded::Invalid => return Frame::Invalid { skip },
    };
    Frame::Complete {
        skip,
        len: space + 1 + body_len,
    }
}

enum Decoded {
    /// A whole value, this many bytes long.
    Value(usize),
    Truncated,
    Invalid,
}

/// Runs the full decoder on the value at the start of `body` (a JSON object if it starts with
/// `{`, else any bencode value: a non-dictionary then gets an error reply from the dispatcher).
fn decode_body_prefix(body: &[u8]) -> Decoded {
    match body.first() {
        None => Decoded::Truncated,
        Some(b'{') => {
            let mut it =
                serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>();
            match it.next() {
                Some(Ok(_)) => Decoded::Value(it.byte_offset()),
                Some(Err(e)) if e.is_eof() => Decoded::Truncated,
                None => Decoded::Truncated,
                Some(Err(_)) => Decoded::Invalid,
            }
        }
        Some(_) => match bencode::decode_prefix(body) {
            Ok((_, used)) => Decoded::Value(used),
            Err(e) if e.is_truncated() => Decoded::Truncated,
            Err(_) => Decoded::Invalid,
        },
    }
}

/// What [`Framer::next_message`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// One whole message (leading whitespace removed).
    Message(Vec<u8>),
    /// More bytes are needed.
    Incomplete,
    /// The stream cannot be NG from here on; the bytes buffered from the message's start.
    Invalid(Vec<u8>),
}

/// Splits a byte stream into NG messages; feed it with [`Framer::push`], take messages with
/// [`Framer::next_message`] until it says [`Next::Incomplete`].
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the current message (or the whitespace before it) starts in `buf`.
    start: usize,
    /// How far the scanner has looked, as an index into `buf`.
    scanned: usize,
    scanner: Scanner,
    work: u64,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        // Drop what earlier messages used before growing (amortised: at most once per read).
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete message, if the bytes pushed so far hold one.
    pub fn next_message(&mut self) -> Next {
        while self.scanned < self.buf.len() {
            let Some(&byte) = self.buf.get(self.scanned) else {
                break;
            };
            self.work += 1;
            let step = self.scanner.step(byte);
            self.scanned += 1;
            match step {
                Step::More => {}
                Step::Skip => self.start = self.scanned,
                Step::Invalid => {
                    let rest = self.buf.get(self.start..).unwrap_or_default().to_vec();
                    self.reset_after(self.buf.len());
                    return Next::Invalid(rest);
                }
                Step::End { body_start } => return self.finish(body_start),
            }
        }
        Next::Incomplete
    }

    /// The scanner saw a message end at `scanned`: decode it once, the way [`next_frame`] would.
    fn finish(&mut self, body_start: usize) -> Next {
        let body_from = self.start + body_start;
        let candidate = self.buf.get(body_from..self.scanned).unwrap_or_default();
        self.work += candidate.len() as u64;
        match decode_body_prefix(candidate) {
            Decoded::Value(n) => {
                let end = body_from + n;
                let msg = self.buf.get(self.start..end).unwrap_or_default().to_vec();
                self.reset_after(end);
                Next::Message(msg)
            }
            // The scanner's grammar is the decoder's for bencode and looser for JSON, so a
            // structurally complete value the decoder refuses is garbage, not a short read.
            Decoded::Truncated | Decoded::Invalid => {
                let rest = self.buf.get(self.start..).unwrap_or_default().to_vec();
                self.reset_after(self.buf.len());
                Next::Invalid(rest)
            }
        }
    }

    fn reset_after(&mut self, end: usize) {
        self.start = end;
        self.scanned = end;
        self.scanner = Scanner::default();
    }

    /// Bytes buffered for the message in progress (whitespace before it excluded).
    pub fn pending(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// True when some bytes of a message (not just whitespace) have arrived but not all of it
    /// (asked after [`Framer::next_message`] said [`Next::Incomplete`]).
    pub fn in_message(&self) -> bool {
        !matches!(self.scanner.phase, Phase::Between)
    }

    /// Bytes looked at so far (scanner steps plus bytes decoded): linear in the bytes pushed.
    pub fn work(&self) -> u64 {
        self.work
    }
}

/// One scanner step's outcome.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    More,
    /// Whitespace before a message: not part of it.
    Skip,
    Invalid,
    /// The message's value ended with this byte; its body started `body_start` bytes after the
    /// message's first byte.
    End {
        body_start: usize,
    },
}

#[derive(Debug, Default)]
struct Scanner {
    phase: Phase,
    /// Bytes of the message so far (cookie, space, body).
    len: usize,
}

#[derive(Debug, Default)]
enum Phase {
    /// Whitespace between messages.
    #[default]
    Between,
    /// Cookie bytes, up to the space.
    Cookie,
    /// Just after the space: the first body byte picks bencode or JSON.
    BodyStart,
    Bencode(Bencode),
    Json(Json),
}

impl Scanner {
    fn step(&mut self, b: u8) -> Step {
        if matches!(self.phase, Phase::Between) {
            if b.is_ascii_whitespace() {
                return Step::Skip;
            }
            self.phase = Phase::Cookie;
        }
        self.len += 1;
        let body_start = self.len;
        match &mut self.phase {
            Phase::Between => Step::More,
            Phase::Cookie => {
                if b == b' ' {
                    self.phase = Phase::BodyStart;
                    Step::More
                } else if self.len > MAX_COOKIE {
                    Step::Invalid
                } else {
                    Step::More
                }
            }
            Phase::BodyStart => {
                let (phase, done) = if b == b'{' {
                    (Phase::Json(Json::open()), Ok(false))
                } else {
                    let mut s = Bencode::default();
                    let done = s.step(b);
                    (Phase::Bencode(s), done)
                };
                self.phase = phase;
                self.outcome(done, body_start - 1)
            }
            Phase::Bencode(s) => {
                let done = s.step(b);
                let start = s.body_start;
                self.outcome(done, start)
            }
            Phase::Json(s) => {
                let done = Ok(s.step(b));
                let start = s.body_start;
                self.outcome(done, start)
            }
        }
    }

    fn outcome(&mut self, done: Result<bool, ()>, body_start: usize) -> Step {
        match (&mut self.phase, done) {
            (_, Err(())) => Step::Invalid,
            (_, Ok(true)) => Step::End { body_start },
            (Phase::Bencode(s), Ok(false)) => {
                s.body_start = body_start;
                Step::More
            }
            (Phase::Json(s), Ok(false)) => {
                s.body_start = body_start;
                Step::More
            }
            (_, Ok(false)) => Step::More,
        }
    }
}

/// An open container in bencode.
#[derive(Debug, Clone, Copy)]
enum Container {
    List,
    /// `key_next`: the next item is a key (or the closing `e`), else a value.
    Dict {
        key_next: bool,
    },
}

/// The token being read.
#[derive(Debug, Default, Clone, Copy)]
enum Token {
    /// Between tokens: a value (or a closing `e`, or a key, as the container allows) is next.
    #[default]
    Next,
    /// `i...e`. The decoder's rules: optional `-`, digits, no leading zero, no `-0`, fits i64.
    Int(Number),
    /// `<len>:` of a string.
    Len(Number),
    /// This many string bytes still to come.
    Bytes(u64),
}

/// Digits read so far, accumulated as a negative number like the decoder does (so that
/// `i64::MIN` fits).
#[derive(Debug, Default, Clone, Copy)]
struct Number {
    signed: bool,
    negative: bool,
    acc: i64,
    digits: usize,
    leading_zero: bool,
}

impl Number {
    /// A digit or the sign; `Err` when the decoder would refuse it.
    fn push(&mut self, b: u8, allow_sign: bool) -> Result<(), ()> {
        if !self.signed {
            self.signed = true;
            if allow_sign && b == b'-' {
                self.negative = true;
                return Ok(());
            }
        }
        if !b.is_ascii_digit() {
            return Err(());
        }
        self.acc = self
            .acc
            .checked_mul(10)
            .and_then(|a| a.checked_sub(i64::from(b - b'0')))
            .ok_or(())?;
        if self.digits == 0 && b == b'0' {
            self.leading_zero = true;
        }
        self.digits += 1;
        Ok(())
    }

    /// The value at its end byte.
    fn finish(&self) -> Result<i64, ()> {
        if self.digits == 0
            || (self.digits > 1 && self.leading_zero)
            || (self.negative && self.acc == 0)
        {
            return Err(());
        }
        if self.negative {
            Ok(self.acc)
        } else {
            self.acc.checked_neg().ok_or(())
        }
    }
}

#[derive(Debug, Default)]
struct Bencode {
    stack: Vec<Container>,
    token: Token,
    body_start: usize,
}

impl Bencode {
    /// One body byte: `Ok(true)` when the top-level value ended with it, `Err` when the decoder
    /// would refuse the value here.
    fn step(&mut self, b: u8) -> Result<bool, ()> {
        match &mut self.token {
            Token::Next => self.start_token(b),
            Token::Int(n) => {
                if b == b'e' {
                    n.finish()?;
                    self.token = Token::Next;
                    Ok(self.value_done())
                } else {
                    n.push(b, true).map(|()| false)
                }
            }
            Token::Len(n) => {
                if b == b':' {
                    let len = u64::try_from(n.finish()?).map_err(|_| ())?;
                    if len == 0 {
                        self.token = Token::Next;
                        Ok(self.value_done())
                    } else {
                        self.token = Token::Bytes(len);
                        Ok(false)
                    }
                } else {
                    n.push(b, false).map(|()| false)
                }
            }
            Token::Bytes(left) => {
                *left -= 1;
                if *left == 0 {
                    self.token = Token::Next;
                    Ok(self.value_done())
                } else {
                    Ok(false)
                }
            }
        }
    }

    fn start_token(&mut self, b: u8) -> Result<bool, ()> {
        match self.stack.last().copied() {
            Some(Container::List) | Some(Container::Dict { key_next: true }) if b == b'e' => {
                self.stack.pop();
                return Ok(self.value_done());
            }
            Some(Container::Dict { key_next: true }) if !b.is_ascii_digit() => return Err(()),
            _ => {}
        }
        match b {
            b'i' => self.token = Token::Int(Number::default()),
            b'0'..=b'9' => {
                let mut n = Number::default();
                n.push(b, false)?;
                self.token = Token::Len(n);
            }
            b'l' | b'd' => {
                if self.stack.len() >= MAX_DEPTH {
                    return Err(());
                }
                self.stack.push(if b == b'l' {
                    Container::List
                } else {
                    Container::Dict { key_next: true }
                });
            }
            _ => return Err(()),
        }
        Ok(false)
    }

    /// A value (or key) just ended: true if it was the top-level one.
    fn value_done(&mut self) -> bool {
        match self.stack.last_mut() {
            None => true,
            Some(Container::List) => false,
            Some(Container::Dict { key_next }) => {
                *key_next = !*key_next;
                false
            }
        }
    }
}

/// A JSON object's extent: bracket depth outside strings, and where a string's escape is.
#[derive(Debug)]
struct Json {
    depth: usize,
    in_string: bool,
    escaped: bool,
    body_start: usize,
}

impl Json {
    fn open() -> Json {
        Json {
            depth: 1,
            in_string: false,
            escaped: false,
            body_start: 0,
        }
    }

    /// One byte after the opening `{`: true when the object closed with it.
    fn step(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return false;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth -= 1;
                return self.depth == 0;
            }
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message the framer finds when `data` arrives in pieces of `piece` bytes, and how it
    /// ends: `Ok` (incomplete) or `Err` (invalid, with the rest).
    fn frame_in_pieces(data: &[u8], piece: usize) -> (Vec<Vec<u8>>, Result<(), Vec<u8>>, u64) {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for chunk in data.chunks(piece.max(1)) {
            f.push(chunk);
            loop {
                match f.next_message() {
                    Next::Message(m) => out.push(m),
                    Next::Incomplete => break,
                    Next::Invalid(rest) => return (out, Err(rest), f.work()),
                }
            }
        }
        (out, Ok(()), f.work())
    }

    /// The one-shot reference over the whole buffer.
    fn frame_at_once(data: &[u8]) -> (Vec<Vec<u8>>, Result<(), Vec<u8>>) {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let rest = &data[at..];
            match next_frame(rest) {
                Frame::Complete { skip, len } => {
                    out.push(rest[skip..skip + len].to_vec());
                    at += skip + len;
                }
                Frame::Incomplete { .. } => return (out, Ok(())),
                Frame::Invalid { skip } => return (out, Err(rest[skip..].to_vec())),
            }
        }
    }

    #[test]
    fn one_shot_framing() {
        let msg = b"c1 d7:command4:pinge";
        assert_eq!(
            next_frame(msg),
            Frame::Complete {
                skip: 0,
                len: msg.len()
            }
        );
        for n in 0..msg.len() {
            assert_eq!(
                next_frame(&msg[..n]),
                Frame::Incomplete { skip: 0 },
                "prefix {n}"
            );
        }
        let two = b"\r\n c1 d1:ai1ee c2 de";
        assert_eq!(next_frame(two), Frame::Complete { skip: 3, len: 11 });
        assert_eq!(
            next_frame(b"j {\"command\":\"ping\"}x y"),
            Frame::Complete { skip: 0, len: 20 }
        );
        assert_eq!(
            next_frame(b"j {\"command\":"),
            Frame::Incomplete { skip: 0 }
        );
        assert_eq!(next_frame(b"c hello"), Frame::Invalid { skip: 0 });
        assert_eq!(next_frame(b"c d1:ai01ee"), Frame::Invalid { skip: 0 });
        assert_eq!(next_frame(b"c i5ex"), Frame::Complete { skip: 0, len: 5 });
        assert_eq!(next_frame(b"j {]"), Frame::Invalid { skip: 0 });
        assert_eq!(
            next_frame(&[b'x'; MAX_COOKIE + 1]),
            Frame::Invalid { skip: 0 }
        );
        assert_eq!(next_frame(b"   "), Frame::Incomplete { skip: 3 });
        // A string length far past the buffer is just incomplete (bounded by the caller).
        assert_eq!(
            next_frame(b"c d3:sdp99999999:v=0"),
            Frame::Incomplete { skip: 0 }
        );
    }

    /// The framer agrees with the one-shot parser on every cut of these streams.
    #[test]
    fn framer_matches_one_shot_on_every_cut() {
        let cases: &[&[u8]] = &[
            b"c1 d7:command4:pinge",
            b"\r\n c1 d1:ai1ee c2 de  c3 le",
            b"j {\"command\":\"ping\",\"x\":[1,{\"y\":\"}\\\"]\"}]}k de",
            b"c i5ex",
            b"c i-5e c2 i0e c3 0: c4 3:abc",
            b"c hello",
            b"c d1:ai01ee",
            b"c i-0e",
            b"c i-e",
            b"c ie",
            b"c 01:a",
            b"c d i1e 1:ae",
            b"c di1e1:ae",
            b"c d1:ae",
            b"c d1:a1:be",
            b"c le",
            b"c e",
            b"j {]",
            b"j {\"a\":1 \"b\":2}",
            b"c i9223372036854775807e d i-9223372036854775808e",
            b"c i9223372036854775808e",
            b"c 9223372036854775808:x",
            b"c d3:sdp99999999:v=0",
            b"   ",
            b"x ",
            b"c  de",
        ];
        let long_cookie = [b'x'; MAX_COOKIE + 1];
        let ok_cookie = [[b'x'; MAX_COOKIE].as_slice(), b" de"].concat();
        let deep = [b"c ".as_slice(), &[b'l'; MAX_DEPTH + 1]].concat();
        let deep_ok = [b"c ".as_slice(), &[b'l'; MAX_DEPTH], &[b'e'; MAX_DEPTH]].concat();
        let extra = [long_cookie.as_slice(), &ok_cookie, &deep, &deep_ok];
        for case in cases.iter().copied().chain(extra) {
            let want = frame_at_once(case);
            for piece in 1..=case.len().max(1) {
                let (msgs, end, _) = frame_in_pieces(case, piece);
                assert_eq!(
                    (&msgs, end.is_err()),
                    (&want.0, want.1.is_err()),
                    "{:?} in pieces of {piece}",
                    String::from_utf8_lossy(case)
                );
            }
        }
    }

    /// A 1 MiB message arriving in 100-byte pieces: each byte is scanned once and decoded once,
    /// where re-parsing the buffer after every piece would cost about 5 * 10^9 steps.
    #[test]
    fn a_megabyte_in_small_pieces_costs_linear_work() {
        let sdp = vec![b'a'; 1 << 20];
        let mut msg = format!("big d3:sdp{}:", sdp.len()).into_bytes();
        msg.extend_from_slice(&sdp);
        msg.extend_from_slice(b"7:command5:offere");
        let (msgs, end, work) = frame_in_pieces(&msg, 100);
        assert_eq!(msgs, vec![msg.clone()]);
        assert!(end.is_ok());
        assert!(
            work <= 2 * msg.len() as u64 + 16,
            "work {work} for {} bytes",
            msg.len()
        );
    }

    #[test]
    fn pending_and_in_message() {
        let mut f = Framer::new();
        f.push(b"\r\n  ");
        assert_eq!(f.next_message(), Next::Incomplete);
        assert!(!f.in_message());
        f.push(b"c1 d1:a");
        assert_eq!(f.next_message(), Next::Incomplete);
        assert!(f.in_message());
        assert_eq!(f.pending(), 7);
        f.push(b"i1ee");
        assert_eq!(f.next_message(), Next::Message(b"c1 d1:ai1ee".to_vec()));
        assert!(!f.in_message());
        assert_eq!(f.pending(), 0);
    }
}
