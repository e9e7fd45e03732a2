//! Binding RTP/RTCP socket pairs.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Socket buffer size asked for; the kernel caps it at `net.core.{r,w}mem_max`.
const SOCKET_BUFFER: usize = 1 << 20;

fn bind_one(local: IpAddr, port: u16) -> io::Result<UdpSocket> {
    let addr = SocketAddr::new(local, port);
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // IP-level and buffer options are best effort: under a test shim the socket may not be
    // an IP socket at all, and a small buffer only costs drops under load.
    if local.is_ipv6() {
        let _ = sock.set_only_v6(true);
    }
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// Bind RTP on `rtp_port` (must be even) and RTCP on `rtp_port + 1`, both or neither,
/// non-blocking.
pub fn bind_pair(local: IpAddr, rtp_port: u16) -> io::Result<(UdpSocket, UdpSocket)> {
    if rtp_port % 2 != 0 || rtp_port == u16::MAX - 1 || rtp_port == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("RTP port {rtp_port} must be even, non-zero and leave room for RTCP"),
        ));
    }
    let rtp = bind_one(local, rtp_port)?;
    // On failure `rtp` is dropped here, so the pair is released together.
    let rtcp = bind_one(local, rtp_port + 1)?;
    Ok((rtp, rtcp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Find a free even port by binding pairs upward from a pseudo-random start.
    pub(crate) fn free_pair(local: IpAddr) -> (UdpSocket, UdpSocket) {
        let start = 20000 + (std::process::id() % 5000) as u16 * 2;
        for k in 0..500u16 {
            if let Ok(p) = bind_pair(local, start + 2 * k) {
                return p;
            }
        }
        panic!("no free port pair");
    }

    #[test]
    fn binds_even_and_odd() {
        let (rtp, rtcp) = free_pair(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let p = rtp.local_addr().expect("addr").port();
        assert_eq!(p % 2, 0);
        assert_eq!(rtcp.local_addr().expect("addr").port(), p + 1);
    }

    #[test]
    fn both_or_neither() {
        let (rtp, rtcp) = free_pair(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let p = rtp.local_addr().expect("addr").port();
        drop(rtp);
        // RTP port is free again, RTCP is held: the pair fails and releases the RTP port.
        assert!(bind_pair(IpAddr::V4(Ipv4Addr::LOCALHOST), p).is_err());
        assert!(UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).is_ok());
        drop(rtcp);
    }

    #[test]
    fn rejects_odd_port() {
        assert!(bind_pair(IpAddr::V4(Ipv4Addr::LOCALHOST), 30001).is_err());
    }

    #[test]
    fn binds_v6_when_available() {
        let local: IpAddr = "::1".parse().expect("addr");
        let v6 = UdpSocket::bind((local, 0)).is_ok();
        if !crate::testkit::skip_unless(v6, "no IPv6 loopback on this host") {
            return;
        }
        let (rtp, _rtcp) = free_pair(local);
        assert!(rtp.local_addr().expect("addr").is_ipv6());
    }
}
