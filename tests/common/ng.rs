//! An NG-protocol client over UDP, as Kamailio's rtpengine module speaks it: `<cookie> <bencoded dict>` with a
//! random cookie per request, a 1 s wait per try and a couple of retransmissions with the same cookie (the relay
//! answers a retransmission from its cookie cache).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::bencode::{self, dict, get_str, str_list, Dict, Value};

/// Why an NG request got no usable reply.
#[derive(Debug)]
pub enum NgError {
    Io(io::Error),
    /// No reply with our cookie after all tries.
    Timeout,
    /// A reply with our cookie that is not a bencoded dict.
    BadReply(String),
}

impl fmt::Display for NgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NgError::Io(e) => write!(f, "NG socket: {e}"),
            NgError::Timeout => write!(f, "NG request timed out"),
            NgError::BadReply(s) => write!(f, "NG reply unreadable: {s}"),
        }
    }
}

impl std::error::Error for NgError {}

impl From<io::Error> for NgError {
    fn from(e: io::Error) -> Self {
        NgError::Io(e)
    }
}

/// A random cookie: a per-process random hasher over a counter, so concurrent tests never share one.
pub fn random_cookie() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// An NG client bound to an ephemeral loopback port.
pub struct NgClient {
    sock: UdpSocket,
    addr: SocketAddr,
    /// Wait per try.
    pub timeout: Duration,
    /// Tries after the first.
    pub retries: u32,
}

impl NgClient {
    pub fn new(addr: SocketAddr) -> io::Result<Self> {
        let sock = UdpSocket::bind(SocketAddr::new(addr.ip(), 0))?;
        Ok(NgClient {
            sock,
            addr,
            timeout: Duration::from_secs(1),
            retries: 2,
        })
    }

    /// Where requests go.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `dict` and returns the reply dict (whatever its `result`).
    pub fn request(&self, req: Dict) -> Result<Dict, NgError> {
        let cookie = random_cookie();
        let mut msg = format!("{cookie} ").into_bytes();
        msg.extend(bencode::encode(&Value::Dict(req)));
        for _ in 0..=self.retries {
            self.sock.send_to(&msg, self.addr)?;
            if let Some(body) = self.wait_reply(Some(cookie.as_bytes()))? {
                return match bencode::decode(&body) {
                    Ok(Value::Dict(d)) => Ok(d),
                    Ok(other) => Err(NgError::BadReply(format!("not a dict: {other:?}"))),
                    Err(e) => Err(NgError::BadReply(format!(
                        "{e}: {}",
                        String::from_utf8_lossy(&body)
                    ))),
                };
            }
        }
        Err(NgError::Timeout)
    }

    /// Sends `bytes` as they are, once, and returns the first datagram that comes back within the timeout.
    /// For malformed-input tests: the reply is not parsed.
    pub fn raw(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.sock.send_to(bytes, self.addr).ok()?;
        self.wait_reply(None).ok().flatten()
    }

    /// Waits up to `timeout` for a datagram from the relay; with a cookie, skips stale replies to other
    /// cookies and returns only the body after `<cookie> `.
    fn wait_reply(&self, cookie: Option<&[u8]>) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + self.timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sock.set_read_timeout(Some(left))?;
            let (n, from) = match self.sock.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                // ICMP port unreachable from an earlier send: nobody listens yet; keep waiting.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::thread::sleep(left.min(Duration::from_millis(20)));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if from != self.addr {
                continue;
            }
            let Some(data) = buf.get(..n) else { continue };
            match cookie {
                None => return Ok(Some(data.to_vec())),
                Some(c) => {
                    if let Some(body) = data.strip_prefix(c).and_then(|r| r.strip_prefix(b" ")) {
                        return Ok(Some(body.to_vec()));
                    }
                }
            }
        }
    }

    pub fn ping(&self) -> Result<Dict, NgError> {
        self.request(dict([("command", "ping".into())]))
    }

    /// `offer` with the given SDP and `flags` list.
    pub fn offer(
        &self,
        call_id: &str,
        from_tag: &str,
        sdp: &str,
        flags: &[&str],
    ) -> Result<Dict, NgError> {
        self.request(dict([
            ("command", "offer".into()),
            ("call-id", call_id.into()),
            ("from-tag", from_tag.into()),
            ("sdp", sdp.into()),
            ("flags", str_list(flags)),
        ]))
    }

    /// `answer` from the callee (`to_tag`) to the caller's offer (`from_tag`).
    pub fn answer(
        &self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        sdp: &str,
        flags: &[&str],
    ) -> Result<Dict, NgError> {
        self.request(dict([
            ("command", "answer".into()),
            ("call-id", call_id.into()),
            ("from-tag", from_tag.into()),
            ("to-tag", to_tag.into()),
            ("sdp", sdp.into()),
            ("flags", str_list(flags)),
        ]))
    }

    pub fn delete(&self, call_id: &str, from_tag: &str) -> Result<Dict, NgError> {
        self.request(dict([
            ("command", "delete".into()),
            ("call-id", call_id.into()),
            ("from-tag", from_tag.into()),
        ]))
    }

    pub fn query(&self, call_id: &str) -> Result<Dict, NgError> {
        self.request(dict([
            ("command", "query".into()),
            ("call-id", call_id.into()),
        ]))
    }

    pub fn list(&self) -> Result<Dict, NgError> {
        self.request(dict([("command", "list".into())]))
    }

    /// The call-ids `list` reports.
    pub fn list_calls(&self) -> Result<Vec<String>, NgError> {
        let reply = self.list()?;
        let calls = reply
            .get(b"calls".as_slice())
            .and_then(Value::as_list)
            .ok_or_else(|| NgError::BadReply(format!("list without calls: {reply:?}")))?;
        Ok(calls
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect())
    }
}

/// Panics with the reply unless its `result` is `ok` (or `pong` for ping); returns the reply for chaining.
pub fn expect_ok(reply: Result<Dict, NgError>, what: &str) -> Dict {
    match reply {
        Ok(d) if matches!(get_str(&d, "result"), Some("ok" | "pong")) => d,
        Ok(d) => panic!(
            "{what}: result {:?}, error-reason {:?}",
            get_str(&d, "result"),
            get_str(&d, "error-reason")
        ),
        Err(e) => panic!("{what}: {e}"),
    }
}
