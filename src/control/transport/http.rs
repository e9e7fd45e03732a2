//! NG over HTTP (rtpengine's `--listen-http`), plus `/ping` and `/metrics`.
//!
//! - `POST /ng`: the body is a `<cookie> <dict>` message; the reply message is the response body
//!   (`application/x-rtpengine-ng`, or `application/json` if the request said so).
//! - `POST /ng-plain`: the body is a bare dictionary, and so is the reply. We give the request a
//!   unique internal cookie so it goes through the same handler, then strip it from the reply.
//! - `GET /ping`: `pong`. `GET /metrics`: the metrics callback's text, or 404 without one.
//!
//! rtpengine insists on the content type for `/ng`; we accept any. A message without a cookie
//! gets 400 (rtpengine sends a non-standard 600).

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tiny_http::{Header, Method, Request, Response, Server};

use super::{call_handler, Listener, MetricsFn, NgHandler, TransportError, POLL};

/// Largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

const CT_NG: &str = "application/x-rtpengine-ng";
const CT_JSON: &str = "application/json";
const CT_TEXT: &str = "text/plain";
const CT_METRICS: &str = "text/plain; version=0.0.4";

/// Binds `addr` and serves HTTP on a new thread (tiny_http adds its own connection threads).
pub fn spawn_http(
    addr: SocketAddr,
    handler: NgHandler,
    metrics: Option<MetricsFn>,
) -> Result<Listener, TransportError> {
    let server = Server::http(addr).map_err(|e| TransportError::Http {
        addr,
        reason: e.to_string(),
    })?;
    let local_addr = server.server_addr().to_ip().unwrap_or(addr);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ng-http".into())
        .spawn(move || run(&server, &handler, metrics.as_ref(), &flag))
        .map_err(TransportError::Spawn)?;
    tracing::info!(%local_addr, "NG HTTP listener up");
    Ok(Listener::new(local_addr, stop, thread))
}

fn run(server: &Server, handler: &NgHandler, metrics: Option<&MetricsFn>, stop: &AtomicBool) {
    let plain = PlainCookies::new();
    while !stop.load(Ordering::Relaxed) {
        match server.recv_timeout(POLL) {
            Ok(Some(req)) => respond(req, handler, metrics, &plain),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!("HTTP receive error: {e}");
                std::thread::sleep(POLL / 4);
            }
        }
    }
    tracing::info!("NG HTTP listener stopped");
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

fn respond(
    mut req: Request,
    handler: &NgHandler,
    metrics: Option<&MetricsFn>,
    plain: &PlainCookies,
) {
    let url = req.url().to_owned();
    let path = url.split('?').next().unwrap_or_default();
    let method = req.method().clone();
    tracing::debug!(%method, path, "HTTP request");
    let (status, ct, body): (u16, &str, Vec<u8>) = match (&method, path) {
        (Method::Get, "/ping") => (200, CT_TEXT, b"pong\n".to_vec()),
        (Method::Get, "/metrics") => match metrics {
            Some(m) => (200, CT_METRICS, m().into_bytes()),
            None => (404, CT_TEXT, b"not found\n".to_vec()),
        },
        (Method::Post, "/ng") | (Method::Post, "/ng-plain") => {
            let json_ct = req.headers().iter().any(|h| {
                h.field.equiv("Content-Type")
                    && h.value.as_str().to_ascii_lowercase().starts_with(CT_JSON)
            });
            match read_body(&mut req) {
                None => (413, CT_TEXT, b"request too large\n".to_vec()),
                Some(body) if path == "/ng" => match call_handler(handler, &body) {
                    Some(reply) => (200, if json_ct { CT_JSON } else { CT_NG }, reply),
                    None => (400, CT_TEXT, b"error\n".to_vec()),
                },
                Some(body) => {
                    let cookie = plain.next();
                    let mut msg = Vec::with_capacity(cookie.len() + 1 + body.len());
                    msg.extend_from_slice(&cookie);
                    msg.push(b' ');
                    msg.extend_from_slice(&body);
                    let reply = call_handler(handler, &msg)
                        .and_then(|r| r.get(cookie.len() + 1..).map(<[u8]>::to_vec));
                    let ct = if json_ct || body.first() == Some(&b'{') {
                        CT_JSON
                    } else {
                        CT_NG
                    };
                    match reply {
                        Some(r) => (200, ct, r),
                        None => (400, CT_TEXT, b"error\n".to_vec()),
                    }
                }
            }
        }
        _ => (404, CT_TEXT, b"not found\n".to_vec()),
    };
    let mut resp = Response::from_data(body).with_status_code(status);
    if let Ok(h) = Header::from_bytes(&b"Content-Type"[..], ct.as_bytes()) {
        resp = resp.with_header(h);
    }
    if let Err(e) = req.respond(resp) {
        tracing::debug!("cannot send HTTP response: {e}");
    }
}

/// The request body, or `None` if it is larger than [`MAX_BODY`].
fn read_body(req: &mut Request) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let limit = MAX_BODY as u64 + 1;
    if let Err(e) = req.as_reader().take(limit).read_to_end(&mut body) {
        tracing::debug!("cannot read HTTP body: {e}");
    }
    (body.len() <= MAX_BODY).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::transport::test_util::echo_handler;
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::Duration;

    /// A minimal HTTP/1.0 client: sends one request, returns (status, headers, body).
    fn http(
        addr: SocketAddr,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let mut req = format!(
            "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(ct) = ct {
            req.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("write head");
        s.write_all(body).expect("write body");
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).expect("read");
        let split = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header end");
        let head = String::from_utf8_lossy(&resp[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, head, resp[split + 4..].to_vec())
    }

    fn local() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[test]
    fn routes() {
        let metrics: MetricsFn = Arc::new(|| "rtprelay_up 1\n".to_string());
        let l = spawn_http(local(), echo_handler(), Some(metrics)).expect("listen");
        let a = l.local_addr();
        assert_ne!(a.port(), 0);

        let (st, _, body) = http(a, "GET", "/ping", None, b"");
        assert_eq!((st, body), (200, b"pong\n".to_vec()));

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

        let (st, head, _) = http(a, "POST", "/ng", Some(CT_JSON), b"j {}");
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
        let handler: NgHandler = Arc::new(move |m: &[u8]| {
            let sp = m.iter().position(|&b| b == b' ')?;
            if let Ok(mut v) = s2.lock() {
                v.push(m[..sp].to_vec());
            }
            let mut r = m[..sp].to_vec();
            r.extend_from_slice(b" de");
            Some(r)
        });
        let l = spawn_http(local(), handler, None).expect("listen");
        for _ in 0..3 {
            let (st, _, body) = http(
                l.local_addr(),
                "POST",
                "/ng-plain",
                None,
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
}
