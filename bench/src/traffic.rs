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

use rtprelay::srtp::{SrtpContext, SrtpError};
use rtprelay::sys::epoll::{Epoll, Events};
use rtprelay::sys::mmsg::{recv_batch, MmsgBuffers, SendBatch};

pub const HEADER: usize = 12;

/// Room after a packet for the longest SRTP trailer the generator uses (a GCM tag).
const SRTP_ROOM: usize = 16;

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
    /// SRTP: protects what this stream sends (the sender's own key).
    pub tx: Option<SrtpContext>,
    /// SRTP: checks and decrypts what the relay delivers of this stream (the relay's key).
    pub rx: Option<SrtpContext>,
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
    /// The SRTP context of each stream that arrives protected (taken from its [`Stream`]).
    srtp: Vec<Option<SrtpContext>>,
    /// Length of every packet as sent in RTP (0: any). An SRTP packet the relay forwarded to
    /// a plain side without decrypting it is longer by its tag, and is not counted.
    len: usize,
}

impl Expect {
    fn new(streams: &mut [Stream], total: usize, len: usize) -> Expect {
        let mut e = Expect {
            route: vec![None; total],
            seen: (0..total).map(|_| None).collect(),
            last_seq: vec![None; total],
            srtp: (0..total).map(|_| None).collect(),
            len,
        };
        for s in streams {
            let k = s.ssrc as usize;
            if let (Some(r), Some(seen), Some(srtp)) =
                (e.route.get_mut(k), e.seen.get_mut(k), e.srtp.get_mut(k))
            {
                *r = Some((s.at, s.via));
                *seen = Some(SeenSeqs::new());
                *srtp = s.rx.take();
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
    /// SRTP packets that did not authenticate (or were malformed): counted as lost.
    pub srtp_failures: u64,
    /// Packets of a stream whose length is not the one sent in RTP (e.g. still SRTP on the
    /// plain side): counted as lost.
    pub wrong_length: u64,
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
        self.srtp_failures += other.srtp_failures;
        self.wrong_length += other.wrong_length;
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
    pub fn run(mut self, p: Pacing, epoch: Instant, shared: &Shared) -> io::Result<Received> {
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
        let plain_len = p.size.max(STAMPED);
        let mut expect = Expect::new(&mut self.streams, p.total_streams, plain_len);

        let interval = Duration::from_secs_f64(1.0 / f64::from(p.pps.max(1)));
        let slots = (interval.as_millis() as usize).clamp(1, 20);
        let n = self.streams.len();
        let per_slot = n.div_ceil(slots).max(1);
        let mut sbatch = SendBatch::new(per_slot.min(1024));
        let mut buf = vec![0u8; plain_len + SRTP_ROOM];
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
                for s in self.streams.get_mut(lo..hi).unwrap_or(&mut []) {
                    let Some(&fd) = fds.get(s.from) else { continue };
                    packet(&mut buf, s.ssrc, seq, epoch.elapsed().as_nanos() as u64);
                    let len = match s.tx.as_mut() {
                        None => plain_len,
                        Some(ctx) => match ctx.protect_rtp(&mut buf, plain_len) {
                            Ok(n) => n,
                            Err(_) => {
                                shared.send_failures.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        },
                    };
                    let Some(out) = buf.get(..len) else { continue };
                    if p.connected {
                        let sock = self.sockets.get(s.from);
                        if sock.is_some_and(|k| k.send(out).is_ok()) {
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
                    if sbatch.push(fd, s.to, out, u64::from(s.ssrc)) {
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
                    let Some((slot, len, src)) = rbufs.packet_mut(i) else {
                        r.foreign += 1;
                        continue;
                    };
                    let Some(pkt) = unprotect(slot, len, &mut r, &mut expect) else {
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

/// The RTP packet in `slot[..len]`: decrypted in place when its stream arrives as SRTP. `None`
/// (booked as an SRTP failure or, for a replayed index, a duplicate) when it does not
/// authenticate; the packet then never counts as received, so the failure shows as loss.
fn unprotect<'a>(
    slot: &'a mut [u8],
    len: usize,
    r: &mut Received,
    e: &mut Expect,
) -> Option<&'a [u8]> {
    let ctx = slot
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .map(|b| u32::from_be_bytes(b) as usize)
        .and_then(|ssrc| e.srtp.get_mut(ssrc))
        .and_then(Option::as_mut);
    let Some(ctx) = ctx else {
        return slot.get(..len);
    };
    let pkt = slot.get_mut(..len)?;
    match ctx.unprotect_rtp(pkt) {
        Ok(n) => slot.get(..n),
        Err(SrtpError::Replay { .. }) => {
            r.duplicates += 1;
            None
        }
        Err(_) => {
            r.srtp_failures += 1;
            None
        }
    }
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
    if e.len != 0 && pkt.len() != e.len {
        r.wrong_length += 1;
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
    use rtprelay::srtp::{Params, Suite};

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
            tx: None,
            rx: None,
        };
        Expect::new(&mut [s], 2, 0)
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

    /// A context for `suite` with key and salt bytes all `k`.
    fn ctx(suite: Suite, k: u8) -> SrtpContext {
        let p = Params::new(
            suite,
            &vec![k; suite.master_key_len()],
            &vec![k; suite.master_salt_len()],
        );
        SrtpContext::new(&p).unwrap()
    }

    /// SRTP keys of each stream: (sender's, receiver's). The same key both ends stands in for
    /// a relay's bridging; another key at the receiver for a relay that got it wrong.
    type Keys = Option<((SrtpContext, SrtpContext), (SrtpContext, SrtpContext))>;

    /// Two sockets sending to each other stand in for a call through a relay.
    fn pace_for_300ms(connected: bool) {
        let r = run_pair(connected, None);
        let sent: u64 = r.sent_per_stream.iter().sum();
        assert!(
            (40..=80).contains(&sent),
            "about 30 per stream in 0.3 s: {sent}"
        );
        assert_eq!(r.per_stream, r.sent_per_stream);
    }

    fn run_pair(connected: bool, keys: Keys) -> Received {
        run_pair_with(connected, keys, false)
    }

    /// With `plain_rx0`, stream 0 is protected but its receiver expects plain RTP.
    fn run_pair_with(connected: bool, keys: Keys, plain_rx0: bool) -> Received {
        let ((tx0, mut rx0), (tx1, rx1)) = match keys {
            Some(((a, b), (c, d))) => ((Some(a), Some(b)), (Some(c), Some(d))),
            None => ((None, None), (None, None)),
        };
        if plain_rx0 {
            rx0 = None;
        }
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
                    tx: tx0,
                    rx: rx0,
                },
                Stream {
                    ssrc: 1,
                    from: 1,
                    to: aa,
                    at: 0,
                    via: ba,
                    tx: tx1,
                    rx: rx1,
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
            r.sent_per_stream.iter().all(|&n| n > 0),
            "both streams sent"
        );
        assert_eq!(shared.sent.load(Ordering::Relaxed), sent);
        let received: u64 = r.per_stream.iter().sum();
        assert_eq!(shared.received.load(Ordering::Relaxed), received);
        assert_eq!(shared.send_failures.load(Ordering::Relaxed), 0);
        assert_eq!(r.out_of_order, 0);
        assert_eq!((r.misrouted, r.duplicates), (0, 0));
        r
    }

    /// Each stream protected with its sender's key and checked with the same key at the
    /// receiver: every packet authenticates, decrypts to its stamp, and counts.
    #[test]
    fn a_shard_protects_and_checks_srtp() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AeadAes128Gcm] {
            let keys = (
                (ctx(suite, 1), ctx(suite, 1)),
                (ctx(suite, 2), ctx(suite, 2)),
            );
            let r = run_pair(false, Some(keys));
            assert_eq!(r.per_stream, r.sent_per_stream, "{suite}");
            assert_eq!(r.srtp_failures, 0);
            // An encrypted stamp reads as a time in the future (latency 0) or far in the past.
            let lat = &r.latency_us;
            assert!(lat.iter().all(|&l| l < 1_000_000) && lat.iter().any(|&l| l > 0));
        }
    }

    /// A stream the receiver cannot authenticate (wrong key) is all lost, and counted as SRTP
    /// failures; the other stream is unaffected.
    #[test]
    fn srtp_that_does_not_authenticate_counts_as_loss() {
        let suite = Suite::AesCm128HmacSha1_80;
        let keys = (
            (ctx(suite, 1), ctx(suite, 9)),
            (ctx(suite, 2), ctx(suite, 2)),
        );
        let r = run_pair(true, Some(keys));
        assert_eq!(r.per_stream[0], 0);
        assert_eq!(r.srtp_failures, r.sent_per_stream[0]);
        assert_eq!(r.per_stream[1], r.sent_per_stream[1]);
    }

    /// SRTP arriving where plain RTP is due (a relay that forwarded it without decrypting) is
    /// not counted as received: its length gives it away.
    #[test]
    fn srtp_on_the_plain_side_counts_as_loss() {
        let suite = Suite::AesCm128HmacSha1_80;
        let keys = (
            (ctx(suite, 1), ctx(suite, 1)),
            (ctx(suite, 2), ctx(suite, 2)),
        );
        let r = run_pair_with(false, Some(keys), true);
        assert_eq!(r.per_stream[0], 0);
        assert_eq!(r.wrong_length, r.sent_per_stream[0]);
        assert_eq!(r.per_stream[1], r.sent_per_stream[1]);
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
