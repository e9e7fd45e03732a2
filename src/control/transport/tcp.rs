//! NG over TCP (rtpengine's `--listen-tcp-ng`).
//!
//! rtpengine frames nothing extra on TCP: the stream is a plain concatenation of
//! `<cookie> <bencoded dict>` messages, and a message ends where its dictionary ends (the
//! daemon finds that by parsing). Replies are written back the same way. We do the same, and
//! also accept JSON dictionaries and skip whitespace between messages (clients typing into
//! netcat). A stream that cannot be a message gets one error reply for what was buffered, then
//! the connection is closed, since there is no way to find the next message boundary.
//!
//! Message ends are found by [`Framer`], which looks at each byte once however the stream is
//! cut. Limits ([`TcpLimits`]): at most 64 connections; a message may take 1 MiB and must
//! arrive whole within 10 s of its first byte (a client that trickles a message, or stops
//! halfway, is cut off); a connection with nothing in flight is closed after an hour of silence,
//! and TCP keepalive finds dead peers sooner. The long idle limit is deliberate: a control
//! client may hold one connection open all night with nothing to say, and that must keep working.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{SockRef, TcpKeepalive};

use super::accept::accept_loop;
use super::{call_handler, is_timeout, Framer, Listener, NgHandler, NgPeer, TransportError, POLL};
use crate::control::transport::framing::Next;

/// Connections served at once; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Bytes buffered for one incomplete message before the connection is dropped.
pub const MAX_MESSAGE: usize = 1 << 20;
/// A message must be complete this long after its first byte arrived.
pub const PARTIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no message in flight is closed after this much silence.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// A peer that does not read its replies for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP keepalive: first probe after this much silence, then every [`KEEPALIVE_INTERVAL`].
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 6;

/// What one NG TCP listener allows.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub max_message: usize,
    pub partial_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for TcpLimits {
    fn default() -> TcpLimits {
        TcpLimits {
            max_connections: MAX_CONNECTIONS,
            max_message: MAX_MESSAGE,
            partial_timeout: PARTIAL_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// Binds `addr` and serves NG over TCP with the default [`TcpLimits`].
pub fn spawn_tcp(addr: SocketAddr, handler: NgHandler) -> Result<Listener, TransportError> {
    spawn_tcp_with(addr, handler, TcpLimits::default())
}

/// Binds `addr` and serves NG over TCP, one thread per connection.
pub fn spawn_tcp_with(
    addr: SocketAddr,
    handler: NgHandler,
    limits: TcpLimits,
) -> Result<Listener, TransportError> {
    let (listener, local_addr) = super::accept::bind(addr)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ng-tcp".into())
        .spawn(move || {
            let serve = move |stream: TcpStream, peer: SocketAddr, stop: &AtomicBool| {
                if let Err(e) = serve(stream, peer, &handler, &limits, stop) {
                    tracing::debug!(%peer, "NG TCP connection error: {e}");
                }
            };
            accept_loop(
                &listener,
                "ng-tcp-conn",
                limits.max_connections,
                &flag,
                serve,
                |_, _| {},
            );
            tracing::info!("NG TCP listener stopped");
        })
        .map_err(TransportError::Spawn)?;
    tracing::info!(%local_addr, "NG TCP listener up");
    Ok(Listener::new(local_addr, stop, thread))
}

fn serve(
    mut stream: TcpStream,
    addr: SocketAddr,
    handler: &NgHandler,
    limits: &TcpLimits,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    if let Err(e) = SockRef::from(&stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%addr, "cannot enable TCP keepalive: {e}");
    }
    let peer = NgPeer::from_addr(addr);
    let mut framer = Framer::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut last_read = Instant::now();
    // When the message now in flight started to arrive.
    let mut message_since: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                framer.push(chunk.get(..n).unwrap_or_default());
                last_read = Instant::now();
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
        let mut completed = false;
        loop {
            match framer.next_message() {
                Next::Message(msg) => {
                    completed = true;
                    if let Some(reply) = call_handler(handler, &peer, &msg) {
                        stream.write_all(&reply)?;
                    }
                }
                Next::Incomplete => break,
                Next::Invalid(rest) => {
                    if let Some(reply) = call_handler(handler, &peer, &rest) {
                        stream.write_all(&reply)?;
                    }
                    tracing::warn!(%addr, "unparsable NG TCP stream; closing");
                    return Ok(());
                }
            }
        }
        if framer.pending() > limits.max_message {
            tracing::warn!(%addr, "NG TCP message larger than {} bytes; closing", limits.max_message);
            return Ok(());
        }
        message_since = match (framer.in_message(), message_since) {
            (false, _) => None,
            (true, Some(t)) if !completed => Some(t),
            (true, _) => Some(last_read),
        };
        if message_since.is_some_and(|t| t.elapsed() > limits.partial_timeout) {
            tracing::warn!(
                %addr,
                buffered = framer.pending(),
                "NG TCP message not complete after {:?}; closing",
                limits.partial_timeout
            );
            return Ok(());
        }
        if message_since.is_none() && last_read.elapsed() > limits.idle_timeout {
            tracing::info!(%addr, "NG TCP connection idle for {:?}; closing", limits.idle_timeout);
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::transport::test_util::echo_handler;

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        s
    }

    fn read_exact_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).expect("read reply");
        buf
    }

    fn local() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[test]
    fn split_and_coalesced_messages() {
        let l = spawn_tcp(local(), echo_handler()).expect("listen");
        let mut s = connect(l.local_addr());
        // One message in three pieces.
        for part in [&b"a1 d7:comm"[..], b"and4:pi", b"nge"] {
            s.write_all(part).expect("write");
            std::thread::sleep(Duration::from_millis(20));
        }
        let want = b"a1 echo:d7:command4:pinge";
        assert_eq!(read_exact_n(&mut s, want.len()), want.to_vec());
        // Two messages in one write, plus a JSON one.
        s.write_all(b"b1 d1:xi1eeb2 le\nb3 {\"a\":[1,2]}")
            .expect("write");
        let want = b"b1 echo:d1:xi1eeb2 echo:leb3 echo:{\"a\":[1,2]}";
        assert_eq!(read_exact_n(&mut s, want.len()), want.to_vec());
        l.stop();
    }

    #[test]
    fn several_clients_at_once() {
        let l = spawn_tcp(local(), echo_handler()).expect("listen");
        let addr = l.local_addr();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut s = connect(addr);
                    for j in 0..20 {
                        let msg = format!("c{i}_{j} d1:ni{j}ee");
                        s.write_all(msg.as_bytes()).expect("write");
                        let want = format!("c{i}_{j} echo:d1:ni{j}ee");
                        assert_eq!(read_exact_n(&mut s, want.len()), want.into_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("client thread");
        }
        l.stop();
    }

    #[test]
    fn garbage_gets_error_then_close_and_listener_lives() {
        let l = spawn_tcp(local(), echo_handler()).expect("listen");
        let mut s = connect(l.local_addr());
        s.write_all(b"g1 hello there").expect("write");
        let mut all = Vec::new();
        s.read_to_end(&mut all).expect("read until close");
        assert_eq!(all, b"g1 echo:hello there".to_vec());
        // A new connection still works.
        let mut s = connect(l.local_addr());
        s.write_all(b"ok de").expect("write");
        assert_eq!(read_exact_n(&mut s, 10), b"ok echo:de".to_vec());
        let start = Instant::now();
        l.stop();
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn oversized_message_closes_the_connection() {
        let l = spawn_tcp(local(), echo_handler()).expect("listen");
        let mut s = connect(l.local_addr());
        let head = format!("big d3:sdp{}:", MAX_MESSAGE * 2);
        s.write_all(head.as_bytes()).expect("write");
        let chunk = vec![b'a'; 64 * 1024];
        let mut closed = false;
        for _ in 0..40 {
            if s.write_all(&chunk).is_err() {
                closed = true;
                break;
            }
        }
        if !closed {
            let mut b = [0u8; 16];
            closed = matches!(s.read(&mut b), Ok(0) | Err(_));
        }
        assert!(closed);
        drop(l);
    }

    fn quick(partial_ms: u64, idle_ms: u64, max_connections: usize) -> TcpLimits {
        TcpLimits {
            max_connections,
            max_message: MAX_MESSAGE,
            partial_timeout: Duration::from_millis(partial_ms),
            idle_timeout: Duration::from_millis(idle_ms),
        }
    }

    /// True if the server closes `s` before `within` runs out (a bound, not a timing claim).
    fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
        s.set_read_timeout(Some(within)).expect("timeout");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).is_ok()
    }

    #[test]
    fn a_message_left_half_sent_is_cut_off_while_others_go_on() {
        let l = spawn_tcp_with(local(), echo_handler(), quick(300, 3_600_000, 8)).expect("listen");
        let mut slow = connect(l.local_addr());
        slow.write_all(b"s1 d7:comm").expect("write");
        // A normal client on another connection is served meanwhile.
        let mut good = connect(l.local_addr());
        good.write_all(b"g1 de").expect("write");
        assert_eq!(read_exact_n(&mut good, 10), b"g1 echo:de".to_vec());
        assert!(closed_by_server(&mut slow, Duration::from_secs(10)));
        // Trickling one byte at a time does not keep a message alive either.
        let mut trickle = connect(l.local_addr());
        let mut cut = false;
        for b in b"t1 d3:sdp100000:".iter().chain([b'a'; 200].iter()) {
            if trickle.write_all(&[*b]).is_err() {
                cut = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(cut || closed_by_server(&mut trickle, Duration::from_secs(10)));
        good.write_all(b"g2 de").expect("write");
        assert_eq!(read_exact_n(&mut good, 10), b"g2 echo:de".to_vec());
    }

    #[test]
    fn a_quiet_connection_between_messages_stays_open() {
        // The partial-message limit does not apply between messages.
        let l = spawn_tcp_with(local(), echo_handler(), quick(100, 3_600_000, 8)).expect("listen");
        let mut s = connect(l.local_addr());
        s.write_all(b"q1 de").expect("write");
        assert_eq!(read_exact_n(&mut s, 10), b"q1 echo:de".to_vec());
        std::thread::sleep(Duration::from_millis(500));
        s.write_all(b"q2 de").expect("write");
        assert_eq!(read_exact_n(&mut s, 10), b"q2 echo:de".to_vec());
    }

    #[test]
    fn an_idle_connection_is_closed_after_the_idle_limit() {
        let l = spawn_tcp_with(local(), echo_handler(), quick(10_000, 300, 8)).expect("listen");
        let mut s = connect(l.local_addr());
        s.write_all(b"i1 de").expect("write");
        assert_eq!(read_exact_n(&mut s, 10), b"i1 echo:de".to_vec());
        assert!(closed_by_server(&mut s, Duration::from_secs(10)));
    }

    #[test]
    fn connections_over_the_cap_are_closed() {
        let l =
            spawn_tcp_with(local(), echo_handler(), quick(10_000, 3_600_000, 2)).expect("listen");
        let mut held = Vec::new();
        for i in 0..2 {
            let mut s = connect(l.local_addr());
            s.write_all(format!("h{i} de").as_bytes()).expect("write");
            assert_eq!(
                read_exact_n(&mut s, 10),
                format!("h{i} echo:de").into_bytes()
            );
            held.push(s);
        }
        let mut third = connect(l.local_addr());
        let _ = third.write_all(b"x1 de");
        let mut got = Vec::new();
        let _ = third.read_to_end(&mut got);
        assert!(got.is_empty(), "a connection over the cap was served");
        // A freed slot is usable again.
        held.pop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut s = connect(l.local_addr());
            let _ = s.write_all(b"n1 de");
            let mut buf = [0u8; 10];
            if s.read_exact(&mut buf).is_ok() {
                assert_eq!(&buf, b"n1 echo:de");
                break;
            }
            assert!(Instant::now() < deadline, "the freed slot never came back");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_megabyte_in_100_byte_writes_gets_through() {
        let l = spawn_tcp(local(), echo_handler()).expect("listen");
        let mut s = connect(l.local_addr());
        let body_len = MAX_MESSAGE - 100;
        let mut msg = format!("m1 d3:sdp{body_len}:").into_bytes();
        msg.resize(msg.len() + body_len, b'v');
        msg.extend_from_slice(b"e");
        let reader = {
            let mut r = s.try_clone().expect("clone");
            let want = msg.len() + 5;
            std::thread::spawn(move || {
                r.set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                let mut buf = vec![0u8; want];
                r.read_exact(&mut buf).map(|()| buf)
            })
        };
        for piece in msg.chunks(100) {
            s.write_all(piece).expect("write");
        }
        let reply = reader.join().expect("reader").expect("reply");
        assert!(reply.starts_with(b"m1 echo:d3:sdp"));
        assert_eq!(reply.len(), msg.len() + 5);
    }
}
