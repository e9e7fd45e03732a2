//! The accept loop the stream transports (NG over TCP, HTTP) share: one thread per connection
//! and at most a fixed number of them at once. A connection over the cap is handed to a refusal
//! function (an HTTP 503, or just a close) on the accept thread and dropped, so a client that
//! opens connections and keeps them silent cannot make the relay spawn threads without bound.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{is_timeout, TransportError, POLL};

/// Binds a non-blocking listener on `addr` (the accept loop polls it) and its real address.
pub(crate) fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), TransportError> {
    let listener =
        TcpListener::bind(addr).map_err(|source| TransportError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| TransportError::Setup { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| TransportError::Setup { addr, source })?;
    Ok((listener, local_addr))
}

/// Counts a connection as active until dropped (also when its thread unwinds).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts on the non-blocking `listener` until `stop`, serving each connection on its own
/// thread named `name` with `serve(stream, peer, stop)`, and passing connections beyond `max`
/// at once to `refuse`. Waits for the connection threads before returning.
pub(crate) fn accept_loop<S, R>(
    listener: &TcpListener,
    name: &'static str,
    max: usize,
    stop: &Arc<AtomicBool>,
    serve: S,
    refuse: R,
) where
    S: Fn(TcpStream, SocketAddr, &AtomicBool) + Clone + Send + 'static,
    R: Fn(TcpStream, SocketAddr),
{
    let active = Arc::new(AtomicUsize::new(0));
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if is_timeout(&e) => {
                conns.retain(|t| !t.is_finished());
                std::thread::sleep(POLL / 4);
                continue;
            }
            Err(e) => {
                // E.g. EMFILE: back off instead of spinning.
                tracing::warn!(name, "accept error: {e}");
                std::thread::sleep(POLL / 4);
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= max {
            tracing::warn!(name, %peer, max, "too many connections; refusing the new one");
            refuse(stream, peer);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(active.clone());
        let (serve, stop) = (serve.clone(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _slot = slot;
                tracing::debug!(name, %peer, "connection");
                serve(stream, peer, &stop);
                tracing::debug!(name, %peer, "connection closed");
            });
        match spawned {
            Ok(t) => conns.push(t),
            // The closure (and its slot) was dropped: the count is already back.
            Err(e) => tracing::warn!(name, %peer, "cannot start a connection thread: {e}"),
        }
    }
    for t in conns {
        let _ = t.join();
    }
}
