//! RTP traffic: a paced sender and an epoll-driven receiver that checks every packet.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket as MioSocket;
use mio::{Events, Interest, Poll, Token};

/// Packets sent on each stream: stream `2i` is caller→callee of call `i`, `2i+1` the reverse.
pub struct Sender {
    /// (socket, destination) per stream.
    pub streams: Vec<(UdpSocket, SocketAddr)>,
    pub pps: u32,
    pub size: usize,
}

pub const HEADER: usize = 12;

/// Builds packet `seq` of stream `ssrc`, stamping the send time (ns since `epoch`).
pub fn packet(buf: &mut [u8], ssrc: u32, seq: u16, epoch: Instant) {
    buf[0] = 0x80;
    buf[1] = 0;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq).wrapping_mul(160)).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let ns = epoch.elapsed().as_nanos() as u64;
    buf[12..20].copy_from_slice(&ns.to_be_bytes());
}

impl Sender {
    /// Sends one packet per stream per tick until `stop`; returns packets sent per stream.
    /// Each tick is cut into slots of about a millisecond and the streams are spread over
    /// them, so the relay sees a steady flow rather than one burst per tick.
    pub fn run(self, epoch: Instant, stop: Arc<AtomicBool>) -> Vec<u64> {
        let interval = Duration::from_secs_f64(1.0 / f64::from(self.pps.max(1)));
        let slots = (interval.as_millis() as usize).clamp(1, 20);
        let n = self.streams.len();
        let mut sent = vec![0u64; n];
        let mut buf = vec![0u8; self.size.max(HEADER + 8)];
        let mut next = Instant::now();
        let mut seq: u16 = 0;
        while !stop.load(Ordering::Relaxed) {
            for slot in 0..slots {
                let due = next + interval * slot as u32 / slots as u32;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let (from, to) = (slot * n / slots, (slot + 1) * n / slots);
                let streams = self.streams.iter().zip(sent.iter_mut()).enumerate();
                for (i, ((sock, dst), count)) in streams.skip(from).take(to - from) {
                    packet(&mut buf, i as u32, seq, epoch);
                    if sock.send_to(&buf, dst).is_ok() {
                        *count += 1;
                    }
                }
            }
            seq = seq.wrapping_add(1);
            next += interval;
            let now = Instant::now();
            if now > next && now - next > interval * 10 {
                next = now; // the generator fell behind: do not burst to catch up
            }
        }
        sent
    }
}

/// What the receiver saw.
#[derive(Default, Debug)]
pub struct Received {
    pub per_stream: Vec<u64>,
    pub out_of_order: u64,
    pub foreign: u64,
    /// One-way latency samples in microseconds.
    pub latency_us: Vec<u32>,
}

/// Receives on every socket until `stop`, counting into `total` as it goes.
pub fn receive(
    sockets: Vec<UdpSocket>,
    streams: usize,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    total: Arc<AtomicU64>,
) -> std::io::Result<Received> {
    let mut poll = Poll::new()?;
    let mut socks = Vec::with_capacity(sockets.len());
    for (i, s) in sockets.into_iter().enumerate() {
        s.set_nonblocking(true)?;
        let mut m = MioSocket::from_std(s);
        poll.registry()
            .register(&mut m, Token(i), Interest::READABLE)?;
        socks.push(m);
    }
    let mut events = Events::with_capacity(1024);
    let mut r = Received {
        per_stream: vec![0; streams],
        ..Received::default()
    };
    let mut last_seq: Vec<Option<u16>> = vec![None; streams];
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let Some(sock) = socks.get(ev.token().0) else {
                continue;
            };
            while let Ok(n) = sock.recv(&mut buf) {
                let pkt = &buf[..n];
                if n < HEADER + 8 {
                    r.foreign += 1;
                    continue;
                }
                let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]) as usize;
                let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
                let Some(count) = r.per_stream.get_mut(ssrc) else {
                    r.foreign += 1;
                    continue;
                };
                *count += 1;
                total.fetch_add(1, Ordering::Relaxed);
                if let Some(prev) = last_seq[ssrc] {
                    if seq.wrapping_sub(prev) > 0x8000 {
                        r.out_of_order += 1;
                    }
                }
                last_seq[ssrc] = Some(seq);
                let sent_ns = u64::from_be_bytes(pkt[12..20].try_into().unwrap_or([0; 8]));
                let now_ns = epoch.elapsed().as_nanos() as u64;
                r.latency_us
                    .push((now_ns.saturating_sub(sent_ns) / 1000) as u32);
            }
        }
    }
    Ok(r)
}

/// The `q` quantile (0..=1) of sorted samples.
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}
