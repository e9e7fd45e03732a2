//! One HTTP/1.x connection: reading requests under deadlines, writing responses. Request heads
//! are parsed by `httparse`; bodies must have a `Content-Length` (NG clients send one; chunked
//! bodies get 411). A client that sends its head or body too slowly, or goes quiet between
//! requests, is cut off (slowloris), and a head or body larger than its cap is refused without
//! being read into memory.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::http::HttpLimits;
use super::{is_timeout, POLL};

/// Headers one request may carry.
const MAX_HEADERS: usize = 32;
/// How long an error response waits for the client to finish sending before closing, so the
/// client reads the response instead of a reset.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 2 << 20;

/// A request head, parsed.
#[derive(Debug)]
pub(crate) struct Head {
    pub method: String,
    pub path: String,
    /// HTTP/1.`minor`.
    pub minor: u8,
    headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether the connection may carry another request after this one.
    pub fn keep_alive(&self) -> bool {
        let has = |token: &str| {
            self.headers_named("connection").any(|v| {
                String::from_utf8_lossy(v)
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        };
        if self.minor == 0 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }

    /// The body length the head announces: `Ok(0)` without a body, `Err(status)` when it cannot
    /// be served (a chunked body: 411; conflicting or bad lengths: 400).
    pub fn body_len(&self) -> Result<usize, u16> {
        if self.header("transfer-encoding").is_some() {
            return Err(411);
        }
        let mut len = None;
        for v in self.headers_named("content-length") {
            let n = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or(400u16)?;
            if len.is_some_and(|l| l != n) {
                return Err(400);
            }
            len = Some(n);
        }
        Ok(len.unwrap_or(0))
    }
}

/// Why no request came.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoRequest {
    /// The client closed, went quiet between requests, or the listener stops: close quietly.
    Gone,
    /// Answer with this status, then close.
    Refuse(u16),
}

/// A connection and the bytes read past the last request.
pub(crate) struct Conn<'a> {
    stream: TcpStream,
    buf: Vec<u8>,
    limits: &'a HttpLimits,
    stop: &'a AtomicBool,
}

impl<'a> Conn<'a> {
    pub fn new(
        stream: TcpStream,
        limits: &'a HttpLimits,
        stop: &'a AtomicBool,
    ) -> std::io::Result<Conn<'a>> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(limits.write_timeout))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            buf: Vec::new(),
            limits,
            stop,
        })
    }

    /// Reads the next request head. `first`: the connection's first request, whose head must
    /// arrive within the head timeout of the accept; later ones may wait the idle timeout for
    /// their first byte, then get the head timeout.
    pub fn read_head(&mut self, first: bool) -> Result<Head, NoRequest> {
        let start = Instant::now();
        let mut deadline = if first || !self.buf.is_empty() {
            start + self.limits.head_timeout
        } else {
            start + self.limits.idle_timeout
        };
        let mut started = !self.buf.is_empty();
        loop {
            if !self.buf.is_empty() {
                if !started {
                    started = true;
                    deadline = Instant::now() + self.limits.head_timeout;
                }
                match parse_head(&self.buf) {
                    Ok(Some((head, used))) => {
                        self.buf.drain(..used);
                        return Ok(head);
                    }
                    Ok(None) if self.buf.len() > self.limits.max_head => {
                        return Err(NoRequest::Refuse(431))
                    }
                    Ok(None) => {}
                    Err(status) => return Err(NoRequest::Refuse(status)),
                }
            }
            if Instant::now() >= deadline {
                // Nothing at all since the last response: an idle keep-alive connection.
                return Err(if started || first {
                    tracing::debug!("HTTP request head not complete in time");
                    NoRequest::Refuse(408)
                } else {
                    NoRequest::Gone
                });
            }
            if !self.fill() {
                return Err(NoRequest::Gone);
            }
        }
    }

    /// Reads a body of `len` bytes (at most the body cap; the caller checked) within the body
    /// timeout, answering `Expect: 100-continue` first.
    pub fn read_body(&mut self, head: &Head, len: usize) -> Result<Vec<u8>, NoRequest> {
        let expects = head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        if expects && self.buf.len() < len && head.minor >= 1 {
            if let Err(e) = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n") {
                tracing::debug!("cannot send 100 Continue: {e}");
                return Err(NoRequest::Gone);
            }
        }
        let deadline = Instant::now() + self.limits.body_timeout;
        while self.buf.len() < len {
            if Instant::now() >= deadline {
                tracing::debug!("HTTP request body not complete in time");
                return Err(NoRequest::Refuse(408));
            }
            if !self.fill() {
                return Err(NoRequest::Gone);
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    /// One read (of at most [`POLL`]); false when the peer closed or the listener stops.
    fn fill(&mut self) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                true
            }
            Err(e) if is_timeout(&e) => true,
            Err(e) => {
                tracing::debug!("HTTP read error: {e}");
                false
            }
        }
    }

    /// Writes one response. `head_only` leaves the body out (HEAD requests).
    pub fn respond(
        &mut self,
        status: u16,
        content_type: &str,
        body: &[u8],
        keep_alive: bool,
        head_only: bool,
    ) -> std::io::Result<()> {
        let mut out = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            reason(status),
            body.len()
        )
        .into_bytes();
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(body);
        }
        self.stream.write_all(&out)
    }

    /// Closes after an error response: stops sending, then reads and drops what the client is
    /// still sending (bounded), so that it gets the response rather than a connection reset.
    pub fn linger_close(mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LINGER;
        let mut drained = 0usize;
        let mut chunk = [0u8; 16 * 1024];
        while Instant::now() < deadline && drained < LINGER_BYTES {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => drained += n,
                Err(e) if is_timeout(&e) => {}
                Err(_) => break,
            }
        }
    }
}

/// Parses a complete head at the start of `buf`: `Ok(None)` if more bytes are needed,
/// `Err(status)` for a malformed one.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, u16> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(431),
        Err(e) => {
            tracing::debug!("bad HTTP request head: {e}");
            return Err(400);
        }
    };
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(400);
    };
    let head = Head {
        method: method.to_owned(),
        path: path.to_owned(),
        minor,
        headers: req
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect(),
    };
    Ok(Some((head, used)))
}

/// The reason phrase for the statuses we send.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        match parse_head(raw.as_bytes()) {
            Ok(Some((h, used))) => {
                assert_eq!(used, raw.len());
                h
            }
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    #[test]
    fn heads() {
        assert!(matches!(
            parse_head(b"GET /ping HTTP/1.1\r\nHost: x\r\n"),
            Ok(None)
        ));
        assert!(matches!(
            parse_head(b"GET /ping HTTP/1.1\r\nHo st: x\r\n\r\n"),
            Err(400)
        ));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        assert!(matches!(
            parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
            Err(431)
        ));
        let h = head("POST /ng HTTP/1.1\r\nhost: a\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(
            (h.method.as_str(), h.path.as_str(), h.minor),
            ("POST", "/ng", 1)
        );
        assert_eq!(h.header("Host"), Some(&b"a"[..]));
        assert_eq!(h.body_len(), Ok(12));
        assert!(h.keep_alive());
        let h = head("POST /ng HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(h.body_len(), Err(400));
        let h = head("POST /ng HTTP/1.1\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(h.body_len(), Err(400));
        let h = head("POST /ng HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.body_len(), Err(411));
        let h = head("GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n");
        assert!(!h.keep_alive());
        let h = head("GET / HTTP/1.0\r\n\r\n");
        assert!(!h.keep_alive());
        assert_eq!(h.body_len(), Ok(0));
        let h = head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.keep_alive());
    }
}
