//! NG transports: UDP (`--listen-ng`), TCP (`--listen-tcp-ng`) and HTTP (`--listen-http`).
//!
//! Each one binds, runs on its own plain thread(s) and passes every complete `<cookie> <dict>`
//! message to a shared [`NgHandler`]; whatever the handler returns goes back to the sender. The
//! handler is where the lead puts the [`Dispatcher`](crate::control::Dispatcher) and the session
//! engine (behind a mutex). A panicking handler is caught and logged, so one bad request cannot
//! stop a listener. [`Listener`] stops the thread when stopped or dropped; threads poll a stop
//! flag every [`POLL`].

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub mod http;
pub mod tcp;
pub mod udp;

pub use http::spawn_http;
pub use tcp::spawn_tcp;
pub use udp::spawn_udp;

/// Takes one NG message (cookie included) and returns the reply message, or `None` for no reply.
pub type NgHandler = Arc<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// Renders the Prometheus text for `GET /metrics`.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

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
    #[error("cannot start the HTTP listener on {addr}: {reason}")]
    Http { addr: SocketAddr, reason: String },
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
pub(crate) fn call_handler(handler: &NgHandler, msg: &[u8]) -> Option<Vec<u8>> {
    match catch_unwind(AssertUnwindSafe(|| handler(msg))) {
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
        Arc::new(|msg: &[u8]| {
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
    use crate::control::reply::pong_reply;
    use crate::control::{Command, Dispatcher, Value};
    use crate::time::Clock;
    use std::net::UdpSocket;
    use std::sync::Mutex;

    /// The intended wiring: a Dispatcher behind a mutex inside the handler, over UDP.
    #[test]
    fn dispatcher_over_udp() {
        let dispatcher = Mutex::new(Dispatcher::default());
        let clock = Clock::new();
        let handler: NgHandler = Arc::new(move |msg: &[u8]| {
            let mut d = dispatcher.lock().ok()?;
            let mut exec = |c: Command| match c {
                Command::Ping => pong_reply(),
                _ => Value::Dict(Default::default()),
            };
            d.handle(clock.mono(), msg, &mut exec)
        });
        let l = spawn_udp(SocketAddr::from(([127, 0, 0, 1], 0)), handler).expect("listen");
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
