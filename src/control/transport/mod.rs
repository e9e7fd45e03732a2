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
