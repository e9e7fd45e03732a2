//! NG over TCP (rtpengine's `--listen-tcp-ng`).
//!
//! rtpengine frames nothing extra on TCP: the stream is a plain concatenation of
//! `<cookie> <bencoded dict>` messages, and a message ends where its dictionary ends (the
//! daemon finds that by parsing). Replies are written back the same way. We do the same, and
//! also accept JSON dictionaries and skip whitespace between messages (clients typing into
//! netcat). A stream that cannot be a message gets one error reply for what was buffered, then
//! the connection is closed, since there is no way to find the next message boundary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{call_handler, is_timeout, Listener, NgHandler, TransportError, POLL};
use crate::control::bencode;

/// Connections served at once; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Bytes buffered for one incomplete message before the connection is dropped.
pub const MAX_MESSAGE: usize = 1 << 20;
/// A cookie longer than this (no space yet) means the peer is not speaking NG.
const MAX_COOKIE: usize = 256;
/// A peer that does not read its replies for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds `addr` and serves NG over TCP, one thread per connection.
pub fn spawn_tcp(addr: SocketAddr, handler: NgHandler) -> Result<Listener, TransportError> {
    let listener =
        TcpListener::bind(addr).map_err(|source| TransportError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| TransportError::Setup { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| TransportError::Setup { addr, source })?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ng-tcp".into())
        .spawn(move || accept_loop(&listener, &handler, &flag))
        .map_err(TransportError::Spawn)?;
    tracing::info!(%local_addr, "NG TCP listener up");
    Ok(Listener::new(local_addr, stop, thread))
}

fn accept_loop(listener: &TcpListener, handler: &NgHandler, stop: &Arc<AtomicBool>) {
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
                tracing::warn!("NG TCP accept error: {e}");
                std::thread::sleep(POLL / 4);
                continue;
            }
        };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            tracing::warn!(%peer, "too many NG TCP connections; closing the new one");
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (h, s, a) = (handler.clone(), stop.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("ng-tcp-conn".into())
            .spawn(move || {
                tracing::info!(%peer, "NG TCP connection");
                if let Err(e) = serve(stream, &h, &s) {
                    tracing::debug!(%peer, "NG TCP connection error: {e}");
                }
                tracing::info!(%peer, "NG TCP connection closed");
                a.fetch_sub(1, Ordering::Relaxed);
            });
        match spawned {
            Ok(t) => conns.push(t),
            Err(e) => {
                active.fetch_sub(1, Ordering::Relaxed);
                tracing::warn!(%peer, "cannot start an NG TCP connection thread: {e}");
            }
        }
    }
    for t in conns {
        let _ = t.join();
    }
    tracing::info!("NG TCP listener stopped");
}

fn serve(mut stream: TcpStream, handler: &NgHandler, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        loop {
            match next_frame(&buf) {
                Frame::Complete { skip, len } => {
                    let msg = buf.get(skip..skip + len).unwrap_or_default();
                    if let Some(reply) = call_handler(handler, msg) {
                        stream.write_all(&reply)?;
                    }
                    buf.drain(..skip + len);
                }
                Frame::Incomplete { skip } => {
                    buf.drain(..skip);
                    if buf.len() > MAX_MESSAGE {
                        tracing::warn!("NG TCP message larger than {MAX_MESSAGE} bytes; closing");
                        return Ok(());
                    }
                    break;
                }
                Frame::Invalid { skip } => {
                    let msg = buf.get(skip..).unwrap_or_default();
                    if let Some(reply) = call_handler(handler, msg) {
                        stream.write_all(&reply)?;
                    }
                    tracing::warn!("unparsable NG TCP stream; closing");
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// What the start of a TCP receive buffer holds. `skip` counts leading whitespace to discard.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// One whole message at `buf[skip..skip + len]`.
    Complete { skip: usize, len: usize },
    /// The message is not complete yet.
    Incomplete { skip: usize },
    /// `buf[skip..]` cannot be an NG message.
    Invalid { skip: usize },
}

/// Finds the first message in a TCP receive buffer.
pub(crate) fn next_frame(buf: &[u8]) -> Frame {
    let skip = buf
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(buf.len());
    let rest = buf.get(skip..).unwrap_or_default();
    let Some(space) = rest.iter().position(|&b| b == b' ') else {
        return if rest.len() > MAX_COOKIE {
            Frame::Invalid { skip }
        } else {
            Frame::Incomplete { skip }
        };
    };
    if space > MAX_COOKIE {
        return Frame::Invalid { skip };
    }
    let body = rest.get(space + 1..).unwrap_or_default();
    let body_len = match body.first() {
        None => return Frame::Incomplete { skip },
        Some(b'{') => {
            let mut it =
                serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>();
            match it.next() {
                Some(Ok(_)) => it.byte_offset(),
                Some(Err(e)) if e.is_eof() => return Frame::Incomplete { skip },
                None => return Frame::Incomplete { skip },
                Some(Err(_)) => return Frame::Invalid { skip },
            }
        }
        // Any bencode value delimits itself; a non-dictionary then gets an error reply.
        Some(_) => match bencode::decode_prefix(body) {
            Ok((_, used)) => used,
            Err(e) if e.is_truncated() => return Frame::Incomplete { skip },
            Err(_) => return Frame::Invalid { skip },
        },
    };
    Frame::Complete {
        skip,
        len: space + 1 + body_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::transport::test_util::echo_handler;
    use std::time::Instant;

    #[test]
    fn framing() {
        let msg = b"c1 d7:command4:pinge";
        assert_eq!(
            next_frame(msg),
            Frame::Complete {
                skip: 0,
                len: msg.len()
            }
        );
        for n in 0..msg.len() {
            assert_eq!(
                next_frame(&msg[..n]),
                Frame::Incomplete { skip: 0 },
                "prefix {n}"
            );
        }
        let two = b"\r\n c1 d1:ai1ee c2 de";
        assert_eq!(next_frame(two), Frame::Complete { skip: 3, len: 11 });
        assert_eq!(
            next_frame(b"j {\"command\":\"ping\"}x y"),
            Frame::Complete { skip: 0, len: 20 }
        );
        assert_eq!(
            next_frame(b"j {\"command\":"),
            Frame::Incomplete { skip: 0 }
        );
        assert_eq!(next_frame(b"c hello"), Frame::Invalid { skip: 0 });
        assert_eq!(next_frame(b"c d1:ai01ee"), Frame::Invalid { skip: 0 });
        assert_eq!(next_frame(b"c i5ex"), Frame::Complete { skip: 0, len: 5 });
        assert_eq!(next_frame(b"j {]"), Frame::Invalid { skip: 0 });
        assert_eq!(
            next_frame(&[b'x'; MAX_COOKIE + 1]),
            Frame::Invalid { skip: 0 }
        );
        assert_eq!(next_frame(b"   "), Frame::Incomplete { skip: 3 });
        // A string length far past the buffer is just incomplete (bounded by MAX_MESSAGE).
        assert_eq!(
            next_frame(b"c d3:sdp99999999:v=0"),
            Frame::Incomplete { skip: 0 }
        );
    }

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
}
