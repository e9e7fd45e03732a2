//! NG transports: UDP (`--listen-ng`), TCP (`--listen-tcp-ng`) and HTTP (`--listen-http`).
//!
//! Each one binds, runs on its own plain thread(s) and passes every complete `<cookie> <dict>`
//! message, with the [`NgPeer`] that sent it, to a shared [`NgHandler`]; whatever the handler
//! returns goes back to the sender. The handler is where the lead puts the
//! [`Dispatcher`](crate::control::Dispatcher) and the session engine (behind a mutex). A
//! panicking handler is caught and logged, so one bad request cannot stop a listener.
//! [`Listener`] stops the thread when stopped or dropped; threads poll a stop flag every [`POLL`].
//!
//! Defences live here because they need the socket: the UDP [`SourceFilter`] (datagrams from the
//! relay's own media ports), the stream limits ([`TcpLimits`], [`HttpLimits`]: connection cap,
//! read deadlines, message and body caps) and the HTTP checks (content type, `Host`).

use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

mod accept;
pub mod filter;
pub mod framing;
pub mod http;
mod http_conn;
pub mod http_policy;
pub mod tcp;
pub mod udp;

pub use filter::SourceFilter;
pub use framing::Framer;
pub use http::{spawn_http, HttpLimits, HttpOptions};
pub use tcp::{spawn_tcp, spawn_tcp_with, TcpLimits};
pub use udp::spawn_udp;

/// Who sent an NG message: the retransmit cache scopes cookies by [`NgPeer::key`], so a client
/// that knows or guesses another client's cookie does not get that client's cached reply.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NgPeer {
    addr: Option<SocketAddr>,
    key: Vec<u8>,
}

impl NgPeer {
    /// A peer with an IP address (TCP and HTTP connections, UDP over IP). IPv4-mapped IPv6
    /// addresses count as the IPv4 address, so a dual-stack listener keys them alike.
    pub fn from_addr(addr: SocketAddr) -> NgPeer {
        let ip = addr.ip().to_canonical();
        let mut key = Vec::with_capacity(19);
        match ip {
            IpAddr::V4(v4) => {
                key.push(b'4');
                key.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                key.push(b'6');
                key.extend_from_slice(&v6.octets());
            }
        }
        key.extend_from_slice(&addr.port().to_be_bytes());
        NgPeer {
            addr: Some(SocketAddr::new(ip, addr.port())),
            key,
        }
    }

    /// A datagram peer exactly as `recvmsg` reported it. Under an LD_PRELOAD shim that turns IP
    /// sockets into Unix sockets the address may be opaque: its raw bytes are the key then.
    pub(crate) fn from_datagram(peer: &crate::sys::dgram::PeerAddr) -> NgPeer {
        match peer.ip() {
            Some(addr) => NgPeer::from_addr(addr),
            None => {
                let raw = peer.as_bytes();
                let mut key = Vec::with_capacity(raw.len() + 1);
                key.push(b'r');
                key.extend_from_slice(raw);
                NgPeer { addr: None, key }
            }
        }
    }

    /// The peer's IP address, when it has one.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Bytes that identify the peer (address family, address, port), for keying caches.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl std::fmt::Debug for NgPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            Some(a) => write!(f, "{a}"),
            None => write!(f, "<opaque address, {} bytes>", self.key.len() - 1),
        }
    }
}

/// Takes one NG message (cookie included) and who sent it; returns the reply message, or `None`
/// for no reply.
pub type NgHandler = Arc<dyn Fn(&NgPeer, &[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// Renders the Prometheus text for `GET /metrics`.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

/// Answers `GET /ready`: `Ok` is 200 `ready`, `Err(reason)` is 503 with the reason.
pub type ReadyFn = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// How often listener threads look at their stop flag.
pub const POLL: Duration = Duration::from_millis(100);

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up the socket on {addr}: {source}")]
    Setup {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the listener thread: {0}")]
    Spawn(std::io::Error),
}

/// A running listener: where it is bound, and how to stop it.
#[derive(Debug)]
pub struct Listener {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    pub(crate) fn new(
        local_addr: SocketAddr,
        stop: Arc<AtomicBool>,
        thread: JoinHandle<()>,
    ) -> Self {
        Listener {
            local_addr,
            stop,
            thread: Some(thread),
        }
    }

    /// The bound address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Asks the listener to stop without waiting (e.g. from a signal handler thread).
    pub fn signal_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the listener and waits for its threads (at most about [`POLL`] plus the request in
    /// progress).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(addr = %self.local_addr, "NG listener thread panicked");
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs the handler, turning a panic into "no reply" plus an error log.
pub(crate) fn call_handler(handler: &NgHandler, peer: &NgPeer, msg: &[u8]) -> Option<Vec<u8>> {
    match catch_unwind(AssertUnwindSafe(|| handler(peer, msg))) {
        Ok(r) => r,
        Err(_) => {
            tracing::error!("NG handler panicked; request dropped");
            None
        }
    }
}

/// True for the errors a socket with a read timeout returns when nothing arrived.
pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::NgHandler;
    use std::sync::Arc;

    /// Replies `<cookie> echo:<body>`; no reply without a space (like a real dispatcher).
    pub fn echo_handler() -> NgHandler {
        Arc::new(|_peer: &super::NgPeer, msg: &[u8]| {
            let sp = msg.iter().position(|&b| b == b' ')?;
            let (cookie, body) = msg.split_at(sp);
            let mut out = cookie.to_vec();
            out.extend_from_slice(b" echo:");
            out.extend_from_slice(body.get(1..).unwrap_or_default());
            Some(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Dispatcher;
    use crate::session::{Command, Reply};
    use crate::time::Clock;
    use std::net::UdpSocket;
    use std::sync::Mutex;

    /// The intended wiring: a Dispatcher behind a mutex inside the handler, over UDP.
    #[test]
    fn dispatcher_over_udp() {
        let dispatcher = Mutex::new(Dispatcher::default());
        let clock = Clock::new();
        let handler: NgHandler = Arc::new(move |peer: &NgPeer, msg: &[u8]| {
            let mut d = dispatcher.lock().ok()?;
            let mut exec = |c: Command| match c {
                Command::Ping => Reply::Pong,
                _ => Reply::Ok,
            };
            d.handle(clock.mono(), peer.key(), msg, &mut exec)
        });
        let l = spawn_udp(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            handler,
            Arc::new(SourceFilter::allow_all()),
        )
        .expect("listen");
        let c = UdpSocket::bind("127.0.0.1:0").expect("bind");
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        c.connect(l.local_addr()).expect("connect");
        let mut buf = [0u8; 1500];
        for (req, want) in [
            (&b"1 d7:command4:pinge"[..], &b"1 d6:result4:ponge"[..]),
            (b"2 d7:command4:liste", b"2 d6:result2:oke"),
            (
                b"3 d7:command5:offere",
                b"3 d12:error-reason22:No SDP body in message6:result5:errore",
            ),
        ] {
            c.send(req).expect("send");
            let n = c.recv(&mut buf).expect("recv");
            assert_eq!(&buf[..n], want);
        }
        l.stop();
    }
}
