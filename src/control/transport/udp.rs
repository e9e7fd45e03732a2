//! NG over UDP: one datagram is one message, the reply goes back to the sender's address.
//! Datagrams the [`SourceFilter`] refuses (the relay's own media sockets, port 0) are dropped
//! unanswered before the handler sees them.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::sys::dgram;

use super::{
    call_handler, is_timeout, Listener, NgHandler, NgPeer, SourceFilter, TransportError, POLL,
};

/// The largest UDP payload; NG requests carrying big SDP bodies can come close.
const MAX_DATAGRAM: usize = 65_536;
/// Socket receive buffer asked for, so bursts of offers are not dropped (the kernel may cap it).
const RECV_BUFFER: usize = 4 << 20;

/// Binds `addr` and answers NG datagrams on a new thread, except those `filter` refuses.
pub fn spawn_udp(
    addr: SocketAddr,
    handler: NgHandler,
    filter: Arc<SourceFilter>,
) -> Result<Listener, TransportError> {
    let socket = bind(addr)?;
    let local_addr = socket
        .local_addr()
        .map_err(|source| TransportError::Setup { addr, source })?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ng-udp".into())
        .spawn(move || run(&socket, &handler, &filter, &flag))
        .map_err(TransportError::Spawn)?;
    tracing::info!(%local_addr, "NG UDP listener up");
    Ok(Listener::new(local_addr, stop, thread))
}

fn bind(addr: SocketAddr) -> Result<UdpSocket, TransportError> {
    let setup = |source| TransportError::Setup { addr, source };
    let socket =
        Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(setup)?;
    if let Err(e) = socket.set_recv_buffer_size(RECV_BUFFER) {
        tracing::debug!(%addr, "cannot enlarge the NG receive buffer: {e}");
    }
    socket
        .bind(&addr.into())
        .map_err(|source| TransportError::Bind { addr, source })?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(POLL)).map_err(setup)?;
    Ok(socket)
}

fn run(socket: &UdpSocket, handler: &NgHandler, filter: &SourceFilter, stop: &AtomicBool) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !stop.load(Ordering::Relaxed) {
        // The peer address stays opaque: replies go back to exactly what recvmsg reported.
        let (n, peer) = match dgram::recv_from(socket.as_fd(), &mut buf) {
            Ok(x) => x,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => {
                // E.g. ECONNREFUSED left by an ICMP error for an earlier reply: not fatal.
                tracing::debug!("NG UDP receive error: {e}");
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        let Some(msg) = buf.get(..n) else { continue };
        let from = NgPeer::from_datagram(&peer);
        if !filter.admit(&from) {
            continue;
        }
        if let Some(reply) = call_handler(handler, &from, msg) {
            if let Err(e) = dgram::send_to(socket.as_fd(), &reply, &peer) {
                tracing::warn!(?peer, len = reply.len(), "cannot send NG reply: {e}");
            }
        }
    }
    tracing::info!("NG UDP listener stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::transport::test_util::echo_handler;
    use std::time::Instant;

    fn client(server: SocketAddr) -> UdpSocket {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap_or_else(|e| panic!("{e}"));
        c.connect(server).unwrap_or_else(|e| panic!("connect: {e}"));
        c
    }

    fn ask(c: &UdpSocket, msg: &[u8]) -> Vec<u8> {
        c.send(msg).unwrap_or_else(|e| panic!("send: {e}"));
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let n = c.recv(&mut buf).unwrap_or_else(|e| panic!("recv: {e}"));
        buf.truncate(n);
        buf
    }

    #[test]
    fn echoes_and_survives_garbage() {
        let l = spawn_udp(
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            echo_handler(),
            Arc::new(SourceFilter::allow_all()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = client(l.local_addr());
        assert_eq!(
            ask(&c, b"k1 d7:command4:pinge"),
            b"k1 echo:d7:command4:pinge".to_vec()
        );
        // No cookie: no reply; then garbage and an empty datagram; the loop must go on.
        c.send(b"nocookie").unwrap_or_else(|e| panic!("{e}"));
        c.send(&[0xff; 3000]).unwrap_or_else(|e| panic!("{e}"));
        c.send(b"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ask(&c, b"k2 x"), b"k2 echo:x".to_vec());
        // A large datagram near the limit.
        let mut big = b"k3 ".to_vec();
        big.resize(60_000, b'a');
        let r = ask(&c, &big);
        assert_eq!(r.len(), 60_000 + 5);
        let start = Instant::now();
        l.stop();
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn handler_panic_does_not_kill_the_loop() {
        let handler: NgHandler = Arc::new(|_: &NgPeer, m: &[u8]| {
            if m.starts_with(b"boom") {
                panic!("test panic");
            }
            Some(m.to_vec())
        });
        let l = spawn_udp(
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            handler,
            Arc::new(SourceFilter::allow_all()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = client(l.local_addr());
        c.send(b"boom x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ask(&c, b"ok y"), b"ok y".to_vec());
    }

    #[test]
    fn bind_conflict_is_an_error() {
        let l = spawn_udp(
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            echo_handler(),
            Arc::new(SourceFilter::allow_all()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let again = spawn_udp(
            l.local_addr(),
            echo_handler(),
            Arc::new(SourceFilter::allow_all()),
        );
        assert!(
            matches!(again, Err(TransportError::Bind { .. })),
            "{again:?}"
        );
    }

    /// A datagram from a socket on a relay address with a port in the media range (here: a
    /// socket standing in for a media socket) gets no reply and is counted; a client outside the
    /// range on the same address is answered.
    #[test]
    fn datagrams_from_media_ports_are_dropped_and_counted() {
        let media = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let media_port = media.local_addr().map(|a| a.port()).unwrap_or(0);
        let filter = Arc::new(SourceFilter::new(
            [std::net::IpAddr::from([127, 0, 0, 1])],
            media_port,
            media_port,
        ));
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = seen.clone();
        let handler: NgHandler = Arc::new(move |_: &NgPeer, m: &[u8]| {
            counted.fetch_add(1, Ordering::Relaxed);
            Some(m.to_vec())
        });
        let l = spawn_udp(
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            handler,
            filter.clone(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        media
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap_or_else(|e| panic!("{e}"));
        media
            .send_to(b"m1 d7:command4:liste", l.local_addr())
            .unwrap_or_else(|e| panic!("send: {e}"));
        let mut buf = [0u8; 64];
        assert!(
            media.recv_from(&mut buf).is_err(),
            "the media socket got a reply"
        );
        // A client is still answered, and (being after the media datagram on the same socket
        // queue) proves the media datagram was seen and dropped.
        let c = client(l.local_addr());
        assert_eq!(ask(&c, b"c1 x"), b"c1 x".to_vec());
        assert_eq!(filter.dropped_from_media(), 1);
        assert_eq!(seen.load(Ordering::Relaxed), 1);
    }
}
