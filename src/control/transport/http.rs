//! NG over HTTP (rtpengine's `--listen-http`), plus `/ping`, `/metrics` and `/ready`.
//!
//! - `POST /ng`: the body is a `<cookie> <dict>` message; the reply message is the response body
//!   (`application/x-rtpengine-ng`, or `application/json` if the request said so).
//! - `POST /ng-plain`: the body is a bare dictionary, and so is the reply. We give the request a
//!   unique internal cookie so it goes through the same handler, then strip it from the reply.
//! - `GET /ping`: `pong`. `GET /metrics`: the metrics callback's text, or 404 without one.
//!   `GET /ready`: 200 `ready`, or 503 and the reason the readiness callback gives (404 without
//!   one).
//!
//! Every request must name an allowed `Host` (403 otherwise; see [`HostPolicy`]); NG requests
//! must be labelled with an NG content type (415 otherwise, see
//! [`http_policy`](super::http_policy)). Limits ([`HttpLimits`]): 64 connections at once (more
//! get 503), a request head within 5 s of the connection or of its first byte, a body within
//! 10 s, 15 s of silence between keep-alive requests, 16 KiB of head and 1 MiB of body. A
//! message without a cookie gets 400 (rtpengine sends a non-standard 600).
//!
//! The server is ours, on `httparse` (`http_conn.rs`): the crate it replaces
//! (tiny_http 0.12) had no read timeouts and started a thread for every connection without
//! limit, and a few routes with bounded bodies do not need an async stack.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::accept::accept_loop;
use super::http_conn::{reason, Conn, Head, NoRequest};
use super::http_policy::{ng_content_type, HostPolicy, NgContentType, CT_JSON, CT_NG};
use super::{call_handler, Listener, MetricsFn, NgHandler, NgPeer, ReadyFn, TransportError};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Connections served at once; more get 503 and are closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 16 << 10;
/// A request head must be complete this long after the connection opened (first request) or
/// after its first byte (later requests).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A request body must be complete this long after its head.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection is closed after this long without a new request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// A client that does not read its response for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

const CT_TEXT: &str = "text/plain";
const CT_METRICS: &str = "text/plain; version=0.0.4";

/// What one HTTP listener allows.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub max_body: usize,
    pub max_head: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            max_connections: MAX_CONNECTIONS,
            max_body: MAX_BODY,
            max_head: MAX_HEAD,
            head_timeout: HEAD_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
        }
    }
}

/// Everything besides the NG handler that an HTTP listener serves or enforces.
#[derive(Clone, Default)]
pub struct HttpOptions {
    /// `GET /metrics`; 404 without it.
    pub metrics: Option<MetricsFn>,
    /// `GET /ready`; 404 without it.
    pub ready: Option<ReadyFn>,
    /// The `Host` names accepted besides IP literals and `localhost`.
    pub hosts: HostPolicy,
    pub limits: HttpLimits,
}

/// What the connection threads share.
struct Ctx {
    handler: NgHandler,
    opts: HttpOptions,
    plain: PlainCookies,
}

/// Binds `addr` and serves HTTP: one accept thread, one thread per connection (capped).
pub fn spawn_http(
    addr: SocketAddr,
    handler: NgHandler,
    opts: HttpOptions,
) -> Result<Listener, TransportError> {
    let (listener, local_addr) = super::accept::bind(addr)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let max = opts.limits.max_connections;
    let ctx = Arc::new(Ctx {
        handler,
        opts,
        plain: PlainCookies::new(),
    });
    let thread = std::thread::Builder::new()
        .name("ng-http".into())
        .spawn(move || {
            let serve = move |stream: TcpStream, peer: SocketAddr, stop: &AtomicBool| {
                serve(stream, peer, &ctx, stop);
            };
            accept_loop(&listener, "ng-http-conn", max, &flag, serve, refuse);
            tracing::info!("NG HTTP listener stopped");
        })
        .map_err(TransportError::Spawn)?;
    tracing::info!(%local_addr, "NG HTTP listener up");
    Ok(Listener::new(local_addr, stop, thread))
}

/// The machine's host name (the kernel's, as `hostname` prints it), for [`HostPolicy`].
pub fn machine_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// A connection over the cap: a short 503 (best effort), then close. What the client already
/// sent is read first (briefly: this runs on the accept thread), so that it gets the 503 and not
/// a connection reset.
fn refuse(mut stream: TcpStream, _peer: SocketAddr) {
    use std::io::{Read, Write};
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = stream.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    for _ in 0..3 {
        if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
            break;
        }
    }
}

fn serve(stream: TcpStream, addr: SocketAddr, ctx: &Ctx, stop: &AtomicBool) {
    let peer = NgPeer::from_addr(addr);
    let mut conn = match Conn::new(stream, &ctx.opts.limits, stop) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%addr, "cannot set up an HTTP connection: {e}");
            return;
        }
    };
    let mut first = true;
    loop {
        let head = match conn.read_head(first) {
            Ok(h) => h,
            Err(NoRequest::Gone) => return,
            Err(NoRequest::Refuse(status)) => {
                let _ = conn.respond(status, CT_TEXT, &status_body(status), false, false);
                conn.linger_close();
                return;
            }
        };
        first = false;
        let head_only = head.method == "HEAD";
        let (reply, body_read) = route(&mut conn, &head, &peer, ctx);
        let reply = match reply {
            Ok(r) => r,
            Err(NoRequest::Gone) => return,
            Err(NoRequest::Refuse(status)) => Reply::text(status),
        };
        let keep = body_read && head.keep_alive();
        if let Err(e) = conn.respond(reply.status, reply.ct, &reply.body, keep, head_only) {
            tracing::debug!(%addr, "cannot send HTTP response: {e}");
            return;
        }
        if !keep {
            if !body_read {
                conn.linger_close();
            }
            return;
        }
    }
}

/// A response.
struct Reply {
    status: u16,
    ct: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, ct: &'static str, body: Vec<u8>) -> Reply {
        Reply { status, ct, body }
    }

    /// A plain-text response saying what the status means.
    fn text(status: u16) -> Reply {
        Reply::new(status, CT_TEXT, status_body(status))
    }
}

fn status_body(status: u16) -> Vec<u8> {
    let what = match status {
        403 => "host not allowed",
        415 => "content type must be application/x-rtpengine-ng or application/json",
        400 => "bad request",
        _ => reason(status),
    };
    format!("{}\n", what.to_ascii_lowercase()).into_bytes()
}

/// Answers one request. The flag says whether its body (if any) was read, i.e. whether the
/// connection is still in step and may carry another request.
fn route(
    conn: &mut Conn<'_>,
    head: &Head,
    peer: &NgPeer,
    ctx: &Ctx,
) -> (Result<Reply, NoRequest>, bool) {
    let opts = &ctx.opts;
    match head.header("host") {
        Some(h) if !opts.hosts.allows(h) => {
            tracing::warn!(
                ?peer,
                host = %String::from_utf8_lossy(h).escape_debug(),
                "HTTP request for a host name not served; refused"
            );
            return (Ok(Reply::text(403)), false);
        }
        // HTTP/1.1 requires Host; browsers always send it, so only tools can leave it out.
        None if head.minor >= 1 => return (Ok(Reply::text(400)), false),
        _ => {}
    }
    let body_len = match head.body_len() {
        Ok(n) => n,
        Err(status) => return (Ok(Reply::text(status)), false),
    };
    let path = head.path.split('?').next().unwrap_or_default();
    let ng = matches!(path, "/ng" | "/ng-plain");
    let known = ng || matches!(path, "/ping" | "/metrics" | "/ready");
    let method_ok = match head.method.as_str() {
        "POST" => ng,
        "GET" | "HEAD" => !ng,
        _ => false,
    };
    if !known || !method_ok {
        let status = if known { 405 } else { 404 };
        return finish_without_body(conn, head, body_len, Reply::text(status));
    }
    if !ng {
        let reply = match path {
            "/ping" => Reply::new(200, CT_TEXT, b"pong\n".to_vec()),
            "/metrics" => match &opts.metrics {
                Some(m) => Reply::new(200, CT_METRICS, m().into_bytes()),
                None => Reply::text(404),
            },
            _ => match &opts.ready {
                Some(r) => match r() {
                    Ok(()) => Reply::new(200, CT_TEXT, b"ready\n".to_vec()),
                    Err(why) => Reply::new(503, CT_TEXT, format!("{why}\n").into_bytes()),
                },
                None => Reply::text(404),
            },
        };
        return finish_without_body(conn, head, body_len, reply);
    }
    let Some(ct) = ng_content_type(head.header("content-type")) else {
        tracing::debug!(
            ?peer,
            path,
            "NG over HTTP without an NG content type; refused"
        );
        return (Ok(Reply::text(415)), body_len == 0);
    };
    if body_len > opts.limits.max_body {
        return (
            Ok(Reply::new(413, CT_TEXT, b"request too large\n".to_vec())),
            false,
        );
    }
    let body = match conn.read_body(head, body_len) {
        Ok(b) => b,
        Err(e) => return (Err(e), false),
    };
    let json = ct == NgContentType::Json;
    let reply = if path == "/ng" {
        match call_handler(&ctx.handler, peer, &body) {
            Some(reply) => Reply::new(200, if json { CT_JSON } else { CT_NG }, reply),
            None => Reply::new(400, CT_TEXT, b"error\n".to_vec()),
        }
    } else {
        let cookie = ctx.plain.next();
        let mut msg = Vec::with_capacity(cookie.len() + 1 + body.len());
        msg.extend_from_slice(&cookie);
        msg.push(b' ');
        msg.extend_from_slice(&body);
        let reply = call_handler(&ctx.handler, peer, &msg)
            .and_then(|r| r.get(cookie.len() + 1..).map(<[u8]>::to_vec));
        let ct = if json || body.first() == Some(&b'{') {
            CT_JSON
        } else {
            CT_NG
        };
        match reply {
            Some(r) => Reply::new(200, ct, r),
            None => Reply::new(400, CT_TEXT, b"error\n".to_vec()),
        }
    };
    (Ok(reply), true)
}

/// A route that takes no body: a small one is read and dropped to keep the connection in step;
/// a large one ends the connection after the reply.
fn finish_without_body(
    conn: &mut Conn<'_>,
    head: &Head,
    body_len: usize,
    reply: Reply,
) -> (Result<Reply, NoRequest>, bool) {
    if body_len == 0 {
        return (Ok(reply), true);
    }
    if body_len > conn_small_body() {
        return (Ok(reply), false);
    }
    match conn.read_body(head, body_len) {
        Ok(_) => (Ok(reply), true),
        Err(e) => (Err(e), false),
    }
}

/// Bodies up to this size on routes that take none are read and dropped.
const fn conn_small_body() -> usize {
    4096
}

/// Unique cookies for `/ng-plain` requests, so the retransmit cache never matches them.
struct PlainCookies {
    prefix: u64,
    next: AtomicU64,
}

impl PlainCookies {
    fn new() -> Self {
        let prefix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        PlainCookies {
            prefix,
            next: AtomicU64::new(0),
        }
    }
    fn next(&self) -> Vec<u8> {
        format!(
            "http-plain-{:x}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::transport::test_util::echo_handler;
    use std::io::{Read, Write};
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// Splits a raw response into (status, head, body).
    fn split_response(resp: &[u8]) -> (u16, String, Vec<u8>) {
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end: {:?}", String::from_utf8_lossy(resp)));
        let head = String::from_utf8_lossy(&resp[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line: {head}"));
        (status, head, resp[split + 4..].to_vec())
    }

    /// Sends `raw` on a new connection and reads until the server closes.
    fn exchange(addr: SocketAddr, raw: &[u8]) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(raw).expect("write");
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).expect("read");
        split_response(&resp)
    }

    /// One request with `Connection: close`, Host `127.0.0.1`.
    fn http(
        addr: SocketAddr,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Length: {}\r\n",
            addr.port(),
            body.len()
        );
        if let Some(ct) = ct {
            req.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        req.push_str("\r\n");
        exchange(addr, &[req.as_bytes(), body].concat())
    }

    fn local() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// An echo handler that counts its calls.
    fn counting() -> (NgHandler, Arc<AtomicUsize>) {
        let n = Arc::new(AtomicUsize::new(0));
        let seen = n.clone();
        let echo = echo_handler();
        let h: NgHandler = Arc::new(move |p: &NgPeer, m: &[u8]| {
            seen.fetch_add(1, Ordering::Relaxed);
            echo(p, m)
        });
        (h, n)
    }

    fn quick(limits: impl FnOnce(&mut HttpLimits)) -> HttpOptions {
        let mut opts = HttpOptions::default();
        limits(&mut opts.limits);
        opts
    }

    #[test]
    fn routes() {
        let metrics: MetricsFn = Arc::new(|| "rtprelay_up 1\n".to_string());
        let opts = HttpOptions {
            metrics: Some(metrics),
            ..HttpOptions::default()
        };
        let l = spawn_http(local(), echo_handler(), opts).expect("listen");
        let a = l.local_addr();
        assert_ne!(a.port(), 0);

        let (st, _, body) = http(a, "GET", "/ping", None, b"");
        assert_eq!((st, body), (200, b"pong\n".to_vec()));
        let (st, _, body) = http(a, "HEAD", "/ping", None, b"");
        assert_eq!((st, body), (200, Vec::new()));

        let (st, head, body) = http(a, "GET", "/metrics", None, b"");
        assert_eq!((st, body), (200, b"rtprelay_up 1\n".to_vec()));
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain"),
            "{head}"
        );

        let (st, head, body) = http(a, "POST", "/ng", Some(CT_NG), b"5323_1 d7:command4:pinge");
        assert_eq!((st, body), (200, b"5323_1 echo:d7:command4:pinge".to_vec()));
        assert!(head.contains(CT_NG), "{head}");

        let (st, head, _) = http(
            a,
            "POST",
            "/ng",
            Some("application/json; charset=utf-8"),
            b"j {}",
        );
        assert_eq!(st, 200);
        assert!(head.contains(CT_JSON), "{head}");

        let (st, _, _) = http(a, "POST", "/ng", Some(CT_NG), b"nocookie");
        assert_eq!(st, 400);

        let (st, head, body) = http(
            a,
            "POST",
            "/ng-plain",
            Some(CT_JSON),
            b"{\"command\":\"ping\"}",
        );
        assert_eq!((st, body), (200, b"echo:{\"command\":\"ping\"}".to_vec()));
        assert!(head.contains(CT_JSON), "{head}");

        let (st, _, _) = http(a, "GET", "/nope", None, b"");
        assert_eq!(st, 404);
        let (st, _, _) = http(a, "GET", "/ng", None, b"");
        assert_eq!(st, 405);
        let (st, _, _) = http(a, "DELETE", "/ping", None, b"");
        assert_eq!(st, 405);
        let (st, _, _) = http(a, "GET", "/ready", None, b"");
        assert_eq!(st, 404);

        let big = vec![b'a'; MAX_BODY + 10];
        let (st, _, _) = http(a, "POST", "/ng", Some(CT_NG), &big);
        assert_eq!(st, 413);
        l.stop();
    }

    #[test]
    fn plain_cookies_are_unique_and_metrics_optional() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
        let s2 = seen.clone();
        let handler: NgHandler = Arc::new(move |_: &NgPeer, m: &[u8]| {
            let sp = m.iter().position(|&b| b == b' ')?;
            if let Ok(mut v) = s2.lock() {
                v.push(m[..sp].to_vec());
            }
            let mut r = m[..sp].to_vec();
            r.extend_from_slice(b" de");
            Some(r)
        });
        let l = spawn_http(local(), handler, HttpOptions::default()).expect("listen");
        for _ in 0..3 {
            let (st, _, body) = http(
                l.local_addr(),
                "POST",
                "/ng-plain",
                Some(CT_NG),
                b"d7:command4:pinge",
            );
            assert_eq!((st, body), (200, b"de".to_vec()));
        }
        let cookies = seen.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(cookies.len(), 3);
        assert!(cookies[0] != cookies[1] && cookies[1] != cookies[2]);
        let (st, _, _) = http(l.local_addr(), "GET", "/metrics", None, b"");
        assert_eq!(st, 404);
        l.stop();
    }

    /// What a cross-site form or `fetch` without a preflight can send is refused before the
    /// handler runs.
    #[test]
    fn ng_needs_an_ng_content_type() {
        let (handler, calls) = counting();
        let l = spawn_http(local(), handler, HttpOptions::default()).expect("listen");
        let a = l.local_addr();
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            for path in ["/ng", "/ng-plain"] {
                let (st, _, _) = http(a, "POST", path, ct, b"c1 d7:command6:deletee");
                assert_eq!(st, 415, "{path} with {ct:?}");
            }
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        let (st, _, _) = http(a, "POST", "/ng", Some(CT_NG), b"c1 d7:command4:pinge");
        assert_eq!(st, 200);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    /// A page on another domain rebound to the relay's address names its own host: refused, on
    /// every route.
    #[test]
    fn unknown_host_names_are_refused() {
        let (handler, calls) = counting();
        let opts = HttpOptions {
            hosts: HostPolicy::new(["relay.example.net".to_string()]),
            ..HttpOptions::default()
        };
        let l = spawn_http(local(), handler, opts).expect("listen");
        let a = l.local_addr();
        let req = |host: &str, path: &str| {
            let body = b"c1 d7:command4:liste";
            let raw = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {CT_NG}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            exchange(a, &[raw.as_bytes(), body].concat()).0
        };
        assert_eq!(req("attacker.example.com", "/ng"), 403);
        assert_eq!(req("attacker.example.com:2225", "/ng"), 403);
        let get = |host: &str, path: &str| {
            exchange(
                a,
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .0
        };
        assert_eq!(get("attacker.example.com", "/metrics"), 403);
        assert_eq!(get("attacker.example.com", "/ping"), 403);
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        // HTTP/1.1 without Host is malformed; HTTP/1.0 without one is a tool, not a browser.
        let (st, _, _) = exchange(a, b"GET /ping HTTP/1.1\r\n\r\n");
        assert_eq!(st, 400);
        let (st, _, _) = exchange(a, b"GET /ping HTTP/1.0\r\n\r\n");
        assert_eq!(st, 200);
        assert_eq!(req("relay.example.net:2225", "/ng"), 200);
        assert_eq!(req("127.0.0.1", "/ng"), 200);
        assert_eq!(req("[::1]:2225", "/ng"), 200);
        assert_eq!(req("localhost", "/ng"), 200);
        assert_eq!(calls.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn ready_reports_the_callbacks_answer() {
        let healthy = Arc::new(AtomicBool::new(true));
        let h = healthy.clone();
        let ready: ReadyFn = Arc::new(move || {
            if h.load(Ordering::Relaxed) {
                Ok(())
            } else {
                Err("worker 1 is dead".into())
            }
        });
        let opts = HttpOptions {
            ready: Some(ready),
            ..HttpOptions::default()
        };
        let l = spawn_http(local(), echo_handler(), opts).expect("listen");
        let (st, _, body) = http(l.local_addr(), "GET", "/ready", None, b"");
        assert_eq!((st, body), (200, b"ready\n".to_vec()));
        healthy.store(false, Ordering::Relaxed);
        let (st, _, body) = http(l.local_addr(), "GET", "/ready", None, b"");
        assert_eq!((st, body), (503, b"worker 1 is dead\n".to_vec()));
    }

    #[test]
    fn keep_alive_and_expect_continue() {
        let l = spawn_http(local(), echo_handler(), HttpOptions::default()).expect("listen");
        let mut s = TcpStream::connect(l.local_addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let read_one = |s: &mut TcpStream| {
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).expect("head byte");
                buf.push(byte[0]);
            }
            let (st, head, _) = split_response(&buf);
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).expect("body");
            (st, body)
        };
        for i in 0..3 {
            s.write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .expect("write");
            assert_eq!(read_one(&mut s), (200, b"pong\n".to_vec()), "request {i}");
        }
        let body = b"e1 d7:command4:pinge";
        let head = format!(
            "POST /ng HTTP/1.1\r\nHost: localhost\r\nContent-Type: {CT_NG}\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).expect("write");
        assert_eq!(read_one(&mut s), (100, Vec::new()));
        s.write_all(body).expect("write body");
        assert_eq!(
            read_one(&mut s),
            (200, b"e1 echo:d7:command4:pinge".to_vec())
        );
    }

    /// A client that sends its head (or body) a byte at a time is cut off at the deadline, with
    /// 408, while another client is served.
    #[test]
    fn slow_clients_are_cut_off_and_others_served() {
        let opts = quick(|l| {
            l.head_timeout = Duration::from_millis(300);
            l.body_timeout = Duration::from_millis(300);
        });
        let l = spawn_http(local(), echo_handler(), opts).expect("listen");
        let a = l.local_addr();
        let slow_head = {
            let s = TcpStream::connect(a).expect("connect");
            s.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            s
        };
        let slow_body = {
            let mut s = TcpStream::connect(a).expect("connect");
            s.write_all(
                format!(
                    "POST /ng HTTP/1.1\r\nHost: localhost\r\nContent-Type: {CT_NG}\r\n\
                     Content-Length: 1000\r\n\r\nc1 "
                )
                .as_bytes(),
            )
            .expect("write");
            s
        };
        // The slow head: a header byte every 50 ms, until the server gives up (bounded).
        let mut s = slow_head;
        let mut got = Vec::new();
        let mut served_other = false;
        let deadline = Instant::now() + Duration::from_secs(10);
        let line = b"POST /ng HTTP/1.1\r\nHost: localhost\r\nX-Slow: ".to_vec();
        for b in line.iter().copied().chain(std::iter::repeat(b'a')) {
            assert!(Instant::now() < deadline, "the slow head was never cut off");
            if s.write_all(&[b]).is_err() {
                break;
            }
            let mut buf = [0u8; 256];
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
            if !served_other {
                // A normal client while the slow one holds its connection.
                let (st, _, _) = http(a, "GET", "/ping", None, b"");
                assert_eq!(st, 200);
                served_other = true;
            }
        }
        if !got.is_empty() {
            assert!(
                got.starts_with(b"HTTP/1.1 408"),
                "{:?}",
                String::from_utf8_lossy(&got)
            );
        }
        // The slow body never completes: 408 and closed.
        let mut s = slow_body;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        assert!(
            resp.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&resp)
        );
        // A connection that never sends anything is closed too.
        let mut silent = TcpStream::connect(a).expect("connect");
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut resp = Vec::new();
        assert!(
            silent.read_to_end(&mut resp).is_ok(),
            "the silent connection stayed open"
        );
        let (st, _, _) = http(a, "GET", "/ping", None, b"");
        assert_eq!(st, 200);
    }

    #[test]
    fn connections_over_the_cap_get_503() {
        let opts = quick(|l| l.max_connections = 2);
        let l = spawn_http(local(), echo_handler(), opts).expect("listen");
        let a = l.local_addr();
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(a).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            s.write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .expect("write");
            let mut buf = [0u8; 12];
            s.read_exact(&mut buf).expect("response");
            assert_eq!(&buf, b"HTTP/1.1 200");
            held.push(s);
        }
        let (st, _, _) = exchange(a, b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert_eq!(st, 503);
        held.pop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (st, _, _) = http(a, "GET", "/ping", None, b"");
            if st == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "the freed slot never came back");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
