//! RTP packets and a media endpoint for the tests: build/parse a plain RTP header (RFC 3550, no CSRCs or
//! extensions needed on the send side), and a UDP socket that sends streams to an address and collects what
//! comes back, always within a time bound.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A plain RTP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

impl RtpPacket {
    /// Packet `n` of a PCMU stream: 20 ms / 160 samples apart, payload bytes tagged with `n`.
    pub fn pcmu(ssrc: u32, n: u16) -> RtpPacket {
        RtpPacket {
            payload_type: 0,
            marker: n == 0,
            seq: 1000u16.wrapping_add(n),
            timestamp: 8000u32.wrapping_add(u32::from(n) * 160),
            ssrc,
            payload: vec![(n & 0xff) as u8; 160],
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(12 + self.payload.len());
        b.push(0x80);
        b.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7f));
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.timestamp.to_be_bytes());
        b.extend_from_slice(&self.ssrc.to_be_bytes());
        b.extend_from_slice(&self.payload);
        b
    }

    /// Parses version 2 RTP with CSRCs, extension and padding skipped/removed; `None` if malformed.
    pub fn parse(b: &[u8]) -> Option<RtpPacket> {
        let first = *b.first()?;
        if first >> 6 != 2 {
            return None;
        }
        let second = *b.get(1)?;
        let mut off = 12 + 4 * usize::from(first & 0x0f);
        if first & 0x10 != 0 {
            let words = u16::from_be_bytes([*b.get(off + 2)?, *b.get(off + 3)?]);
            off += 4 + 4 * usize::from(words);
        }
        let mut end = b.len();
        if first & 0x20 != 0 {
            end = end.checked_sub(usize::from(*b.last()?))?;
        }
        Some(RtpPacket {
            payload_type: second & 0x7f,
            marker: second & 0x80 != 0,
            seq: u16::from_be_bytes([*b.get(2)?, *b.get(3)?]),
            timestamp: u32::from_be_bytes(b.get(4..8)?.try_into().ok()?),
            ssrc: u32::from_be_bytes(b.get(8..12)?.try_into().ok()?),
            payload: b.get(off..end)?.to_vec(),
        })
    }
}

/// A UDP socket playing one side of a media stream.
pub struct MediaEndpoint {
    sock: UdpSocket,
}

impl MediaEndpoint {
    /// Binds `addr` (port 0 for any).
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Ok(MediaEndpoint {
            sock: UdpSocket::bind(addr)?,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.sock
            .local_addr()
            .unwrap_or_else(|e| panic!("media socket has no address: {e}"))
    }

    pub fn send_to(&self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        self.sock.send_to(data, to).map(|_| ())
    }

    /// Sends `count` PCMU packets of stream `ssrc` to `to`, `gap` apart; returns them as sent.
    pub fn send_rtp(
        &self,
        to: SocketAddr,
        ssrc: u32,
        count: u16,
        gap: Duration,
    ) -> io::Result<Vec<Vec<u8>>> {
        let mut sent = Vec::with_capacity(usize::from(count));
        for n in 0..count {
            let pkt = RtpPacket::pcmu(ssrc, n).to_bytes();
            self.send_to(&pkt, to)?;
            sent.push(pkt);
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
        }
        Ok(sent)
    }

    /// The next datagram within `timeout`, with its source.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.sock.set_read_timeout(Some(left)).is_err() {
                return None;
            }
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => return Some((buf.get(..n)?.to_vec(), from)),
                // A port-unreachable from an earlier send to a closed port; not data.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(_) => return None,
            }
        }
    }

    /// Collects datagrams until `count` arrived or `timeout` passed since the call.
    pub fn collect(&self, count: usize, timeout: Duration) -> Vec<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::with_capacity(count);
        while got.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_timeout(left) {
                Some(d) => got.push(d),
                None => break,
            }
        }
        got
    }
}
