//! RTP traffic: each generator thread owns a share of the calls and runs one event loop that
//! both paces their sends and receives what the relay forwards to them.
//!
//! The loop is built to keep the generator off the critical path: level-triggered epoll with
//! one `recvmmsg` per ready socket (no trailing would-block read), sends queued into a
//! `sendmmsg` batch per slot, no socket clones, and shared counters touched once per batch.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtprelay::sys::epoll::{Epoll, Events};
use rtprelay::sys::mmsg::{recv_batch, MmsgBuffers, SendBatch};

pub const HEADER: usize = 12;

/// Bytes of a packet the receiver reads: RTP header plus the send timestamp.
const STAMPED: usize = HEADER + 8;

/// Builds packet `seq` of stream `ssrc`, stamping the send time (ns since `epoch`).
pub fn packet(buf: &mut [u8], ssrc: u32, seq: u16, sent_ns: u64) {
    buf[0] = 0x80;
    buf[1] = 0;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq).wrapping_mul(160)).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..20].copy_from_slice(&sent_ns.to_be_bytes());
}

/// One direction of one call: stream `2i` is caller→callee of call `i`, `2i+1` the reverse.
/// The stream number is the packets' SSRC.
pub struct Stream {
    pub ssrc: u32,
    /// Index of the sending socket in [`Shard::sockets`].
    pub from: usize,
    pub to: SocketAddr,
    /// Index of the socket the relay must deliver this stream to (the other party's).
    pub at: usize,
    /// The source the relay must deliver it from (the relay address the other party sends to).
    pub via: SocketAddr,
}

/// Where a shard's received packet of a stream must arrive: (socket index, source).
type Route = (usize, SocketAddr);

/// Which sequence numbers of one stream arrived, a bit each. Setting a number clears the one
/// half the number space ahead, so the window slides with the stream and a wrap is no repeat.
struct SeenSeqs(Vec<u64>);

impl SeenSeqs {
    fn new() -> SeenSeqs {
        SeenSeqs(vec![0; 1 << 10])
    }

    /// Marks `seq`; whether it is the first time.
    fn first_time(&mut self, seq: u16) -> bool {
        let bit = |n: u16| (usize::from(n / 64), 1u64 << (n % 64));
        let (w, b) = bit(seq);
        let fresh = self.0.get(w).is_some_and(|x| x & b == 0);
        if let Some(x) = self.0.get_mut(w) {
            *x |= b;
        }
        let (w, b) = bit(seq.wrapping_add(0x8000));
        if let Some(x) = self.0.get_mut(w) {
            *x &= !b;
        }
        fresh
    }
}

/// What the receive side knows of each stream the shard receives, indexed by SSRC.
struct Expect {
    route: Vec<Option<Route>>,
    seen: Vec<Option<SeenSeqs>>,
    last_seq: Vec<Option<u16>>,
}

impl Expect {
    fn new(streams: &[Stream], total: usize) -> Expect {
        let mut e = Expect {
            route: vec![None; total],
            seen: (0..total).map(|_| None).collect(),
            last_seq: vec![None; total],
        };
        for s in streams {
            let k = s.ssrc as usize;
            if let (Some(r), Some(seen)) = (e.route.get_mut(k), e.seen.get_mut(k)) {
                *r = Some((s.at, s.via));
                *seen = Some(SeenSeqs::new());
            }
        }
        e
    }
}

/// The calls one thread drives: their sockets and streams.
pub struct Shard {
    pub sockets: Vec<UdpSocket>,
    pub streams: Vec<Stream>,
}

/// Pacing shared by every thread.
#[derive(Clone, Copy)]
pub struct Pacing {
    /// Packets per second per stream.
    pub pps: u32,
    pub size: usize,
    /// Streams in the whole run (for the receive tables).
    pub total_streams: usize,
    /// Connect each socket to its relay port and `send` on it, instead of `sendmmsg` with an
    /// address per packet.
    pub connected: bool,
}

/// Flags and counters shared between the threads and the measuring main thread.
#[derive(Default)]
pub struct Shared {
    /// Cleared to stop sending (receiving goes on, to collect packets still in flight).
    pub sending: AtomicBool,
    /// Cleared to end the loop.
    pub running: AtomicBool,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Sends the kernel refused (e.g. a full socket buffer).
    pub send_failures: AtomicU64,
    /// Slots sent more than one slot late (the generator could not keep its pace).
    pub late_slots: AtomicU64,
}

/// What one thread (or, merged, the whole run) sent and received.
#[derive(Default, Debug)]
pub struct Received {
    pub sent_per_stream: Vec<u64>,
    /// Distinct packets received per stream (a duplicate never stands in for a lost one).
    pub per_stream: Vec<u64>,
    pub out_of_order: u64,
    pub foreign: u64,
    /// Packets of a stream that arrived a second time.
    pub duplicates: u64,
    /// Packets of a stream that arrived on the wrong socket or from the wrong source.
    pub misrouted: u64,
    /// One-way latency samples in microseconds.
    pub latency_us: Vec<u32>,
}

impl Received {
    fn new(streams: usize) -> Received {
        Received {
            sent_per_stream: vec![0; streams],
            per_stream: vec![0; streams],
            ..Received::default()
        }
    }

    /// Adds another thread's figures to these.
    pub fn merge(&mut self, other: Received) {
        let add = |a: &mut Vec<u64>, b: Vec<u64>| {
            a.resize(a.len().max(b.len()), 0);
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        };
        add(&mut self.sent_per_stream, other.sent_per_stream);
        add(&mut self.per_stream, other.per_stream);
        self.out_of_order += other.out_of_order;
        self.foreign += other.foreign;
        self.duplicates += other.duplicates;
        self.misrouted += other.misrouted;
        self.latency_us.extend(other.latency_us);
    }
}

/// Receive slots per `recvmmsg`.
const RECV_BATCH: usize = 64;
/// Longest epoll wait, so the stop flags are seen promptly.
const MAX_WAIT_MS: i32 = 50;

impl Shard {
    /// Sends one packet per stream per interval while `shared.sending`, receiving all along,
    /// until `shared.running` is cleared. Each interval is cut into slots of about a
    /// millisecond and the streams spread over them, so the relay sees a steady flow rather
    /// than one burst per interval.
    pub fn run(self, p: Pacing, epoch: Instant, shared: &Shared) -> io::Result<Received> {
        let epoll = Epoll::new()?;
        for (i, s) in self.sockets.iter().enumerate() {
            s.set_nonblocking(true)?;
            epoll.add(s.as_raw_fd(), i as u64)?;
        }
        if p.connected {
            for st in &self.streams {
                if let Some(sock) = self.sockets.get(st.from) {
                    sock.connect(st.to)?;
                }
            }
        }
        let fds: Vec<RawFd> = self.sockets.iter().map(|s| s.as_raw_fd()).collect();
        let mut events = Events::with_capacity(1024);
        let mut rbufs = MmsgBuffers::new(RECV_BATCH);
        let mut r = Received::new(p.total_streams);
        let mut expect = Expect::new(&self.streams, p.total_streams);

        let interval = Duration::from_secs_f64(1.0 / f64::from(p.pps.max(1)));
        let slots = (interval.as_millis() as usize).clamp(1, 20);
        let n = self.streams.len();
        let per_slot = n.div_ceil(slots).max(1);
        let mut sbatch = SendBatch::new(per_slot.min(1024));
        let mut buf = vec![0u8; p.size.max(STAMPED)];
        let mut tick = Instant::now();
        let mut slot = 0usize;
        let mut seq: u16 = 0;
        let due = |tick: Instant, slot: usize| tick + interval * slot as u32 / slots as u32;

        while shared.running.load(Ordering::Relaxed) {
            let sending = shared.sending.load(Ordering::Relaxed);
            let mut now = Instant::now();
            while sending && due(tick, slot) <= now {
                let (lo, hi) = (slot * n / slots, (slot + 1) * n / slots);
                let mut queued = 0u64;
                for s in self.streams.get(lo..hi).unwrap_or(&[]) {
                    let Some(&fd) = fds.get(s.from) else { continue };
                    packet(&mut buf, s.ssrc, seq, epoch.elapsed().as_nanos() as u64);
                    if p.connected {
                        let sock = self.sockets.get(s.from);
                        if sock.is_some_and(|k| k.send(&buf).is_ok()) {
                            queued += 1;
                            if let Some(c) = r.sent_per_stream.get_mut(s.ssrc as usize) {
                                *c += 1;
                            }
                        } else {
                            shared.send_failures.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    if sbatch.is_full() {
                        queued += flush(&mut sbatch, &mut r.sent_per_stream, shared);
                    }
                    if sbatch.push(fd, s.to, &buf, u64::from(s.ssrc)) {
                        if let Some(c) = r.sent_per_stream.get_mut(s.ssrc as usize) {
                            *c += 1; // corrected below for packets the kernel refused
                        }
                    }
                }
                queued += flush(&mut sbatch, &mut r.sent_per_stream, shared);
                let late = now.saturating_duration_since(due(tick, slot));
                if late > interval / slots as u32 {
                    shared.late_slots.fetch_add(1, Ordering::Relaxed);
                }
                shared.sent.fetch_add(queued, Ordering::Relaxed);
                slot += 1;
                if slot == slots {
                    slot = 0;
                    seq = seq.wrapping_add(1);
                    tick += interval;
                    now = Instant::now();
                    if now > tick && now - tick > interval * 10 {
                        tick = now; // fell behind: do not burst to catch up
                    }
                }
            }
            let wait_ms = if sending {
                let left = due(tick, slot).saturating_duration_since(Instant::now());
                // Round up: waking up to a millisecond late delays a slot, not a timestamp.
                (left.as_micros().div_ceil(1000) as i32).min(MAX_WAIT_MS)
            } else {
                MAX_WAIT_MS
            };
            epoll.wait(&mut events, wait_ms)?;
            let mut got = 0u64;
            for token in events.tokens() {
                let Some(&fd) = fds.get(token as usize) else {
                    continue;
                };
                let k = recv_batch(fd, &mut rbufs)?;
                if k == 0 {
                    continue;
                }
                let now_ns = epoch.elapsed().as_nanos() as u64;
                for i in 0..k {
                    let Some((pkt, src)) = rbufs.packet(i) else {
                        r.foreign += 1;
                        continue;
                    };
                    let arrival = (token as usize, src);
                    got += u64::from(check(pkt, arrival, now_ns, &mut r, &mut expect));
                }
            }
            if got > 0 {
                shared.received.fetch_add(got, Ordering::Relaxed);
            }
        }
        Ok(r)
    }
}

/// Sends what is queued; takes packets the kernel refused back off their stream's count.
fn flush(batch: &mut SendBatch, sent_per_stream: &mut [u64], shared: &Shared) -> u64 {
    let st = batch.flush(|ssrc, _| {
        if let Some(c) = sent_per_stream.get_mut(ssrc as usize) {
            *c = c.saturating_sub(1);
        }
    });
    if st.failed > 0 {
        shared
            .send_failures
            .fetch_add(st.failed as u64, Ordering::Relaxed);
    }
    st.sent as u64
}

/// Books one packet received on socket `arrival.0` from `arrival.1`; returns whether it was
/// one of ours, where it belongs, for the first time.
fn check(pkt: &[u8], arrival: Route, now_ns: u64, r: &mut Received, e: &mut Expect) -> bool {
    let (Some(ssrc), Some(seq), Some(sent)) = (
        pkt.get(8..12).and_then(|b| b.try_into().ok()),
        pkt.get(2..4).and_then(|b| b.try_into().ok()),
        pkt.get(HEADER..STAMPED).and_then(|b| b.try_into().ok()),
    ) else {
        r.foreign += 1;
        return false;
    };
    let ssrc = u32::from_be_bytes(ssrc) as usize;
    let seq = u16::from_be_bytes(seq);
    let (Some(count), Some(last), Some(Some(route)), Some(Some(seen))) = (
        r.per_stream.get_mut(ssrc),
        e.last_seq.get_mut(ssrc),
        e.route.get(ssrc),
        e.seen.get_mut(ssrc),
    ) else {
        r.foreign += 1;
        return false;
    };
    if *route != arrival {
        r.misrouted += 1;
        return false;
    }
    if !seen.first_time(seq) {
        r.duplicates += 1;
        return false;
    }
    *count += 1;
    if let Some(prev) = *last {
        if seq.wrapping_sub(prev) > 0x8000 {
            r.out_of_order += 1;
        }
    }
    *last = Some(seq);
    let sent_ns = u64::from_be_bytes(sent);
    r.latency_us
        .push((now_ns.saturating_sub(sent_ns) / 1000) as u32);
    true
}

/// The `q` quantile (0..=1) of sorted samples.
pub fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Stream 1 is delivered to socket 0 from 127.0.0.1:2000.
    fn expect_stream_1() -> Expect {
        let s = Stream {
            ssrc: 1,
            from: 1,
            to: addr("127.0.0.1:1000"),
            at: 0,
            via: addr("127.0.0.1:2000"),
        };
        Expect::new(&[s], 2)
    }

    #[test]
    fn check_counts_reordering_and_rejects_foreign_packets() {
        let mut r = Received::new(2);
        let mut e = expect_stream_1();
        let right = (0, addr("127.0.0.1:2000"));
        let mut buf = [0u8; 40];
        for seq in [1u16, 2, 4, 3] {
            packet(&mut buf, 1, seq, 1_000);
            assert!(check(&buf, right, 3_000, &mut r, &mut e));
        }
        packet(&mut buf, 7, 1, 0);
        assert!(!check(&buf, right, 0, &mut r, &mut e), "unknown SSRC");
        packet(&mut buf, 0, 1, 0);
        assert!(
            !check(&buf, right, 0, &mut r, &mut e),
            "a stream sent, not received here"
        );
        assert!(!check(&buf[..10], right, 0, &mut r, &mut e), "too short");
        assert_eq!(r.per_stream, vec![0, 4]);
        assert_eq!(r.out_of_order, 1);
        assert_eq!(r.foreign, 3);
        assert_eq!(r.latency_us, vec![2; 4]);
    }

    /// A packet on the wrong socket, from the wrong source or a second time is not counted as
    /// received: loss cannot hide behind it.
    #[test]
    fn check_refuses_misrouted_and_duplicate_packets() {
        let mut r = Received::new(2);
        let mut e = expect_stream_1();
        let mut buf = [0u8; 40];
        packet(&mut buf, 1, 5, 0);
        assert!(
            !check(&buf, (1, addr("127.0.0.1:2000")), 0, &mut r, &mut e),
            "wrong socket"
        );
        assert!(
            !check(&buf, (0, addr("127.0.0.1:2001")), 0, &mut r, &mut e),
            "wrong source"
        );
        assert!(check(&buf, (0, addr("127.0.0.1:2000")), 0, &mut r, &mut e));
        assert!(
            !check(&buf, (0, addr("127.0.0.1:2000")), 0, &mut r, &mut e),
            "duplicate"
        );
        assert_eq!((r.misrouted, r.duplicates, r.per_stream[1]), (2, 1, 1));
        // A whole wrap of the sequence numbers later, 5 is new again.
        for seq in (6..=u16::MAX).chain(0..5) {
            packet(&mut buf, 1, seq, 0);
            assert!(
                check(&buf, (0, addr("127.0.0.1:2000")), 0, &mut r, &mut e),
                "{seq}"
            );
        }
        packet(&mut buf, 1, 5, 0);
        assert!(check(&buf, (0, addr("127.0.0.1:2000")), 0, &mut r, &mut e));
        assert_eq!(r.duplicates, 1);
    }

    /// Two sockets sending to each other stand in for a call through a relay.
    fn pace_for_300ms(connected: bool) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let shard = Shard {
            sockets: vec![a, b],
            streams: vec![
                Stream {
                    ssrc: 0,
                    from: 0,
                    to: ba,
                    at: 1,
                    via: aa,
                },
                Stream {
                    ssrc: 1,
                    from: 1,
                    to: aa,
                    at: 0,
                    via: ba,
                },
            ],
        };
        let p = Pacing {
            pps: 100,
            size: 172,
            total_streams: 2,
            connected,
        };
        let shared = Shared::default();
        shared.sending.store(true, Ordering::Relaxed);
        shared.running.store(true, Ordering::Relaxed);
        let r = std::thread::scope(|s| {
            let h = s.spawn(|| shard.run(p, Instant::now(), &shared));
            std::thread::sleep(Duration::from_millis(300));
            shared.sending.store(false, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(100));
            shared.running.store(false, Ordering::Relaxed);
            h.join().unwrap().unwrap()
        });
        let sent: u64 = r.sent_per_stream.iter().sum();
        assert!(
            (40..=80).contains(&sent),
            "about 30 per stream in 0.3 s: {sent}"
        );
        assert_eq!(r.per_stream, r.sent_per_stream);
        assert_eq!(shared.sent.load(Ordering::Relaxed), sent);
        assert_eq!(shared.received.load(Ordering::Relaxed), sent);
        assert_eq!(shared.send_failures.load(Ordering::Relaxed), 0);
        assert_eq!(r.out_of_order, 0);
        assert_eq!((r.misrouted, r.duplicates), (0, 0));
    }

    #[test]
    fn a_shard_paces_and_receives_its_own_streams() {
        pace_for_300ms(false);
    }

    #[test]
    fn a_shard_paces_on_connected_sockets() {
        pace_for_300ms(true);
    }
}
