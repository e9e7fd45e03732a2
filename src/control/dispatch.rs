//! Datagram in, reply datagram out: cookie, retransmit cache, decode, parse, then (after the
//! caller ran the command) render and encode. Sans-IO and one way: [`Dispatcher::begin`] turns a
//! datagram into a [`Command`] (or an answer that needs none), the caller hands the command to the
//! session engine, and [`Dispatcher::finish`] turns the engine's typed [`Reply`] into the datagram.
//! Nothing here calls back into the caller.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::control::bencode::{Dict, Value};
use crate::control::cookie_cache::CookieCache;
use crate::control::ng::{decode_body, encode_reply_as, split_cookie, Format};
use crate::control::render::{error_reply, render};
use crate::session::{Command, Reply};
use crate::time::Millis;

/// Protocol-error warnings allowed per second; the rest are counted and summarized.
const WARNINGS_PER_SEC: u32 = 10;

/// Turns NG requests into replies and counts them.
#[derive(Debug)]
pub struct Dispatcher {
    cache: CookieCache,
    counts: BTreeMap<&'static str, u64>,
    errors: u64,
    retransmits: u64,
    warn_window: Millis,
    warned: u32,
    suppressed: u64,
}

/// What [`Dispatcher::begin`] made of a datagram.
#[derive(Debug)]
pub enum Step {
    /// Send this (a cached reply, or the error for a request that did not parse), or nothing.
    Answer(Option<Vec<u8>>),
    /// Run the command, then give its reply to [`Dispatcher::finish`] with this.
    Run(Box<Command>, Pending),
}

/// Where the reply to a command goes: the client, its cookie and the request's format.
#[derive(Debug)]
pub struct Pending {
    client: Vec<u8>,
    cookie: Vec<u8>,
    format: Format,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher::new(CookieCache::default())
    }
}

impl Dispatcher {
    pub fn new(cache: CookieCache) -> Self {
        Dispatcher {
            cache,
            counts: BTreeMap::new(),
            errors: 0,
            retransmits: 0,
            warn_window: Millis(0),
            warned: 0,
            suppressed: 0,
        }
    }

    /// Takes one `<cookie> <dict>` message from `client` (the transport's peer key,
    /// [`NgPeer::key`](crate::control::transport::NgPeer::key)).
    ///
    /// A cookie this client sent within the cache TTL gets the cached reply and no command; the
    /// same cookie from another client is a new request. Otherwise the body is decoded
    /// (bencode, or JSON if it starts with `{`) and parsed into a [`Command`] for the caller to
    /// run; decode and parse errors are answered here with `{result: error, error-reason: ...}`.
    /// No cookie: nothing is sent.
    pub fn begin(&mut self, now: Millis, client: &[u8], datagram: &[u8]) -> Step {
        let Ok((cookie, body)) = split_cookie(datagram) else {
            self.warn(now, "no cookie", "");
            return Step::Answer(None);
        };
        if let Some(cached) = self.cache.get(now, client, cookie) {
            self.retransmits += 1;
            tracing::debug!(cookie = ?String::from_utf8_lossy(cookie), "NG retransmission, cached reply");
            return Step::Answer(Some(cached));
        }
        let to = Pending {
            client: client.to_vec(),
            cookie: cookie.to_vec(),
            format: Format::Bencode,
        };
        match self.parse(now, body) {
            Ok((cmd, format)) => Step::Run(Box::new(cmd), Pending { format, ..to }),
            Err((reply, format)) => {
                Step::Answer(Some(self.encode(now, Pending { format, ..to }, &reply)))
            }
        }
    }

    /// The datagram answering a command from [`begin`](Self::begin): the engine's reply rendered
    /// ([`render`]) in the request's format, behind its cookie, and cached for retransmissions.
    pub fn finish(&mut self, now: Millis, pending: Pending, reply: &Reply) -> Vec<u8> {
        if reply.is_error() {
            self.errors += 1;
        }
        self.encode(now, pending, &render(reply))
    }

    /// `begin`, the command run by `exec`, then `finish`: for callers that run the command in
    /// place (tests, the fuzz target).
    pub fn handle(
        &mut self,
        now: Millis,
        client: &[u8],
        datagram: &[u8],
        exec: &mut dyn FnMut(Command) -> Reply,
    ) -> Option<Vec<u8>> {
        match self.begin(now, client, datagram) {
            Step::Answer(out) => out,
            Step::Run(cmd, pending) => {
                let reply = exec(*cmd);
                Some(self.finish(now, pending, &reply))
            }
        }
    }

    fn encode(&mut self, now: Millis, to: Pending, reply: &Value) -> Vec<u8> {
        let out = encode_reply_as(&to.cookie, reply, to.format);
        self.cache.insert(now, &to.client, &to.cookie, out.clone());
        out
    }

    /// Commands handled so far, by name (`offer`, `answer`, ...), for `statistics`.
    pub fn command_counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// Requests answered with `result: error` (decode, parse or command errors).
    pub fn error_count(&self) -> u64 {
        self.errors
    }

    /// Requests answered from the cookie cache.
    pub fn retransmit_count(&self) -> u64 {
        self.retransmits
    }

    /// The command in `body` and the request's format, or the error reply (already counted).
    fn parse(&mut self, now: Millis, body: &[u8]) -> Result<(Command, Format), (Value, Format)> {
        let (dict, format) = match decode_body(body) {
            Ok(x) => x,
            Err(e) => {
                self.errors += 1;
                self.warn(now, &e.to_string(), "");
                let format = if body.first() == Some(&b'{') {
                    Format::Json
                } else {
                    Format::Bencode
                };
                return Err((error_reply(&e.to_string()), format));
            }
        };
        let call_id = lossy(&dict, "call-id");
        let cmd = match Command::from_dict(&dict) {
            Ok(cmd) => cmd,
            Err(e) => {
                self.errors += 1;
                self.warn(now, &e.to_string(), &call_id);
                return Err((error_reply(&e.to_string()), format));
            }
        };
        let name = cmd.name();
        *self.counts.entry(name).or_default() += 1;
        // In the command's call span, as everything the command logs (the daemon enters it too).
        cmd.span()
            .in_scope(|| tracing::debug!(command = name, call_id = ?call_id, "NG request"));
        Ok((cmd, format))
    }

    /// A protocol-error warning, at most [`WARNINGS_PER_SEC`] per second: a peer can send
    /// garbage in a loop.
    fn warn(&mut self, now: Millis, what: &str, call_id: &str) {
        if now.since(self.warn_window) >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "NG protocol errors not logged"
                );
            }
            self.warn_window = now;
            self.warned = 0;
            self.suppressed = 0;
        }
        if self.warned < WARNINGS_PER_SEC {
            self.warned += 1;
            tracing::warn!(call_id = ?call_id, error = ?what, "NG protocol error");
        } else {
            self.suppressed += 1;
        }
    }
}

fn lossy(d: &Dict, key: &str) -> String {
    d.get(key.as_bytes())
        .and_then(Value::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client of the tests that are not about clients.
    const C: &[u8] = b"client";

    /// Pong, an error for `query`, and the command's name as a warning for the rest.
    fn echo_exec(calls: &mut Vec<Command>) -> impl FnMut(Command) -> Reply + '_ {
        move |c: Command| {
            let reply = match &c {
                Command::Ping => Reply::Pong,
                Command::Query(_) => Reply::Error("Unknown call-id".into()),
                other => Reply::Warning(other.name().into()),
            };
            calls.push(c);
            reply
        }
    }

    #[test]
    fn ping_pong_and_cache() {
        let mut d = Dispatcher::default();
        let mut calls = Vec::new();
        let mut exec = echo_exec(&mut calls);
        let r = d.handle(Millis(0), C, b"5323_1 d7:command4:pinge", &mut exec);
        assert_eq!(r, Some(b"5323_1 d6:result4:ponge".to_vec()));
        // Retransmission: same reply, exec not called again.
        let r = d.handle(Millis(10), C, b"5323_1 d7:command4:pinge", &mut exec);
        assert_eq!(r, Some(b"5323_1 d6:result4:ponge".to_vec()));
        drop(exec);
        assert_eq!(calls.len(), 1);
        assert_eq!(d.retransmit_count(), 1);
        assert_eq!(d.command_counts().get("ping"), Some(&1));
    }

    #[test]
    fn cache_is_keyed_by_cookie_and_expires() {
        let mut d = Dispatcher::new(CookieCache::new(Duration::from_secs(30), 100));
        let mut n = 0;
        let mut exec = |_c: Command| {
            n += 1;
            Reply::Pong
        };
        d.handle(Millis(0), C, b"a d7:command4:pinge", &mut exec);
        d.handle(Millis(0), C, b"b d7:command4:pinge", &mut exec);
        d.handle(Millis(29_000), C, b"a d7:command4:pinge", &mut exec);
        d.handle(Millis(30_000), C, b"a d7:command4:pinge", &mut exec);
        assert_eq!(n, 3);
    }

    #[test]
    fn another_client_with_the_same_cookie_runs_its_own_command() {
        let mut d = Dispatcher::default();
        let mut calls = Vec::new();
        let mut exec = echo_exec(&mut calls);
        let owner = d.handle(Millis(0), b"kamailio", b"77 d7:command4:liste", &mut exec);
        assert_eq!(owner, Some(b"77 d6:result2:ok7:warning4:liste".to_vec()));
        // Another client replays the cookie with a different command: it gets its own answer.
        let other = d.handle(Millis(1), b"attacker", b"77 d7:command4:pinge", &mut exec);
        assert_eq!(other, Some(b"77 d6:result4:ponge".to_vec()));
        // The owner's retransmission still hits its cached reply.
        let again = d.handle(Millis(2), b"kamailio", b"77 d7:command4:liste", &mut exec);
        assert_eq!(again, owner);
        drop(exec);
        assert_eq!(calls.len(), 2);
        assert_eq!(d.retransmit_count(), 1);
    }

    #[test]
    fn renders_the_typed_reply() {
        let mut d = Dispatcher::default();
        let mut calls = Vec::new();
        let r = d.handle(
            Millis(0),
            C,
            b"c d7:command10:statisticse",
            &mut echo_exec(&mut calls),
        );
        assert_eq!(r, Some(b"c d6:result2:ok7:warning10:statisticse".to_vec()));
    }

    #[test]
    fn no_cookie_no_reply() {
        let mut d = Dispatcher::default();
        let mut calls = Vec::new();
        assert_eq!(
            d.handle(
                Millis(0),
                C,
                b"d7:command4:pinge",
                &mut echo_exec(&mut calls)
            ),
            None
        );
        assert_eq!(
            d.handle(
                Millis(0),
                C,
                b" d7:command4:pinge",
                &mut echo_exec(&mut calls)
            ),
            None
        );
        assert!(calls.is_empty());
    }

    #[test]
    fn errors_reply_with_reason() {
        let mut d = Dispatcher::default();
        let mut calls = Vec::new();
        let cases: [(&[u8], &[u8]); 6] = [
            (
                b"k1 d7:commande",
                b"k1 d12:error-reason35:Could not decode bencode dictionary6:result5:errore",
            ),
            (
                b"k2 ",
                b"k2 d12:error-reason25:Invalid data (no payload)6:result5:errore",
            ),
            (
                b"k3 hello",
                b"k3 d12:error-reason22:Invalid NG data format6:result5:errore",
            ),
            (
                b"k4 de",
                b"k4 d12:error-reason36:Dictionary contains no key \"command\"6:result5:errore",
            ),
            (
                b"k5 d7:command3:fooe",
                b"k5 d12:error-reason20:Unrecognized command6:result5:errore",
            ),
            (
                b"k6 d7:command5:querye",
                b"k6 d12:error-reason21:No call-id in message6:result5:errore",
            ),
        ];
        for (req, want) in cases {
            let got = d.handle(Millis(0), C, req, &mut echo_exec(&mut calls));
            assert_eq!(
                got.as_deref(),
                Some(want),
                "{}",
                String::from_utf8_lossy(req)
            );
        }
        assert!(calls.is_empty());
        assert_eq!(d.error_count(), 6);
        // An error reply from exec counts too, and is cached like any other.
        let r = d.handle(
            Millis(0),
            C,
            b"q d7:call-id1:x7:command5:querye",
            &mut echo_exec(&mut calls),
        );
        assert_eq!(
            r,
            Some(b"q d12:error-reason15:Unknown call-id6:result5:errore".to_vec())
        );
        assert_eq!(d.error_count(), 7);
        assert_eq!(d.command_counts().get("query"), Some(&1));
    }

    #[test]
    fn json_in_json_out() {
        let mut d = Dispatcher::default();
        let mut calls = Vec::new();
        let r = d.handle(
            Millis(0),
            C,
            br#"j1 {"command":"ping"}"#,
            &mut echo_exec(&mut calls),
        );
        assert_eq!(r, Some(br#"j1 {"result":"pong"}"#.to_vec()));
        let r = d.handle(
            Millis(0),
            C,
            br#"j2 {"command":"#,
            &mut echo_exec(&mut calls),
        );
        assert_eq!(
            r,
            Some(
                br#"j2 {"error-reason":"Failed to parse JSON document","result":"error"}"#.to_vec()
            )
        );
        let r = d.handle(
            Millis(0),
            C,
            br#"j3 {"command":"list","limit":"x"}"#,
            &mut echo_exec(&mut calls),
        );
        assert_eq!(r, Some(br#"j3 {"result":"ok","warning":"list"}"#.to_vec()));
    }

    /// A tiny xorshift generator: deterministic, no crate needed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn byte(&mut self) -> u8 {
            self.next().to_le_bytes()[0]
        }
    }

    #[test]
    fn a_megabyte_of_random_bytes_never_panics() {
        let mut d = Dispatcher::new(CookieCache::new(Duration::from_secs(30), 1000));
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut exec = |_c: Command| Reply::Pong;
        // Bias towards bencode/NG-looking bytes so the parser gets past the first byte often.
        const ALPHABET: &[u8] = b"dlie0123456789:- {}\"ab,";
        let mut total = 0usize;
        let mut replies = 0usize;
        let mut i = 0u64;
        while total < 1 << 20 {
            let len = (rng.next() % 300) as usize;
            let mut msg = format!("{i} ").into_bytes();
            for _ in 0..len {
                let b = rng.byte();
                msg.push(if b & 1 == 0 {
                    ALPHABET[usize::from(b >> 1) % ALPHABET.len()]
                } else {
                    b
                });
            }
            total += msg.len();
            if d.handle(Millis(i), C, &msg, &mut exec).is_some() {
                replies += 1;
            }
            // Raw garbage without the cookie prefix too.
            let raw: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            total += raw.len();
            let _ = d.handle(Millis(i), C, &raw, &mut exec);
            i += 1;
        }
        // Every message with a cookie got some reply.
        assert_eq!(replies as u64, i);
    }

    #[test]
    fn mutated_valid_requests_never_panic() {
        let base = b"c1 d7:call-id3:abc7:command5:offer5:flagsl13:trust address13:strict sourcee8:from-tag2:ft3:sdp5:v=0\r\n7:replacel6:origine5:codecd5:stripl4:PCMAeee";
        let mut d = Dispatcher::new(CookieCache::new(Duration::from_secs(30), 0));
        let mut offers = 0;
        let mut exec = |c: Command| {
            if matches!(c, Command::Offer(_)) {
                offers += 1;
            }
            Reply::Pong
        };
        assert!(d.handle(Millis(0), C, base, &mut exec).is_some());
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let mut m = base.to_vec();
            for _ in 0..(rng.next() % 4 + 1) {
                let pos = (rng.next() as usize) % m.len();
                match rng.next() % 3 {
                    0 => m[pos] = rng.byte(),
                    1 => {
                        m.remove(pos);
                    }
                    _ => m.insert(pos, rng.byte()),
                }
            }
            let _ = d.handle(Millis(0), C, &m, &mut exec);
        }
        assert!(offers >= 1);
    }
}
