//! Test helpers: a spooled two-leg tone call, and a Goertzel filter to find which tone a file carries.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rtprelay_recording::g711::Codec;
use rtprelay_recording::rtp;
use rtprelay_recording::spool::{CodecInfo, PcapFormat, Spool, SpoolWriter, StreamId, StreamInfo};
use rtprelay_recording::wav::{parse_wav, Wav};

pub const PACKETS: usize = 100; // 2 s of 20 ms packets

/// Tiny deterministic PRNG (xorshift), so loss and jitter are the same on every run.
pub struct Rng(pub u32);
impl Rng {
    pub fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

/// One leg's packets: (arrival, rtp bytes).
pub fn tone_packets(
    freq: f64,
    codec: Codec,
    pt: u8,
    start: SystemTime,
    rng: &mut Rng,
    loss_pct: u32,
    ssrc_change_at: Option<usize>,
) -> Vec<(SystemTime, Vec<u8>)> {
    let mut out = Vec::new();
    let (mut ssrc, mut seq0, mut ts0) = (rng.next(), rng.next() as u16, rng.next());
    let mut base = 0usize;
    for k in 0..PACKETS {
        if Some(k) == ssrc_change_at {
            // New sender: new SSRC, sequence and timestamp bases.
            ssrc = rng.next();
            seq0 = rng.next() as u16;
            ts0 = rng.next();
            base = k;
        }
        let payload: Vec<u8> = (0..160)
            .map(|i| {
                let n = (k * 160 + i) as f64;
                let s = (8000.0 * (2.0 * std::f64::consts::PI * freq * n / 8000.0).sin()) as i16;
                codec.encode(s)
            })
            .collect();
        let lost = k != 0 && k != PACKETS - 1 && rng.next() % 100 < loss_pct;
        let jitter = Duration::from_micros(u64::from(rng.next() % 15_000));
        if lost {
            continue;
        }
        let rel = k - base;
        let pkt = rtp::build(
            pt,
            k == 0,
            seq0.wrapping_add(rel as u16),
            ts0.wrapping_add(rel as u32 * 160),
            ssrc,
            &payload,
        );
        out.push((start + Duration::from_millis(k as u64 * 20) + jitter, pkt));
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 1)))
}

/// Starts a call with leg A (PCMU 440 Hz) and leg B (PCMA 1000 Hz) streams; returns the writer and ids.
pub fn start_call(spool: &Spool, call_id: &str) -> (SpoolWriter, StreamId, StreamId) {
    let mut w = spool
        .create_call(call_id, "customer:acme|dir:out", t0())
        .expect("create call");
    let a = w
        .add_stream(StreamInfo {
            tag: "tag-a".into(),
            label: "caller".into(),
            media: "audio".into(),
            codecs: vec![
                CodecInfo::new(0, "PCMU", 8000),
                CodecInfo::new(101, "telephone-event", 8000),
            ],
        })
        .expect("stream a");
    let b = w
        .add_stream(StreamInfo {
            tag: "tag-b".into(),
            label: "callee".into(),
            media: "audio".into(),
            codecs: vec![CodecInfo::new(8, "PCMA", 8000)],
        })
        .expect("stream b");
    (w, a, b)
}

/// All packets of the standard test call, in arrival order: (stream, time, bytes).
pub fn call_packets(a: StreamId, b: StreamId, seed: u32) -> Vec<(StreamId, SystemTime, Vec<u8>)> {
    let mut rng = Rng(seed);
    let mut all: Vec<(StreamId, SystemTime, Vec<u8>)> = Vec::new();
    for (t, p) in tone_packets(440.0, Codec::Pcmu, 0, t0(), &mut rng, 5, Some(50)) {
        all.push((a, t, p));
    }
    let b_start = t0() + Duration::from_millis(5);
    for (t, p) in tone_packets(1000.0, Codec::Pcma, 8, b_start, &mut rng, 5, None) {
        all.push((b, t, p));
    }
    all.sort_by_key(|(_, t, _)| *t);
    all
}

/// Writes the standard test call (5 % loss both ways, SSRC change on leg A at 1 s) and finishes it.
pub fn write_call(spool_dir: &Path, call_id: &str, format: PcapFormat) -> String {
    let spool = Spool::open(spool_dir, format)
        .expect("spool")
        .with_fsync(false);
    let (mut w, a, b) = start_call(&spool, call_id);
    for (s, t, p) in call_packets(a, b, 0x9e37_79b9) {
        let (src, dst) = if s == a {
            (addr("192.0.2.10:40000"), addr("203.0.113.1:30000"))
        } else {
            (addr("198.51.100.20:50000"), addr("203.0.113.1:30002"))
        };
        w.append_packet(s, src, dst, &p, t).expect("append");
    }
    let stem = w.stem().to_owned();
    w.finish(t0() + Duration::from_millis(2100))
        .expect("finish");
    stem
}

/// Signal power at `freq` (Goertzel), normalised by length.
pub fn goertzel(samples: &[i16], freq: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
}

/// 440 or 1000, whichever dominates, if it does by 10×.
pub fn dominant(samples: &[i16]) -> Option<u32> {
    let p440 = goertzel(samples, 440.0, 8000.0);
    let p1000 = goertzel(samples, 1000.0, 8000.0);
    if p440 > 10.0 * p1000 {
        Some(440)
    } else if p1000 > 10.0 * p440 {
        Some(1000)
    } else {
        None
    }
}

pub fn read_wav(path: &Path) -> Wav {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    parse_wav(&data).unwrap_or_else(|| panic!("{} is not a 16-bit WAV", path.display()))
}

pub fn assert_duration(w: &Wav, want_ms: u64, what: &str) {
    let got = w.duration_ms();
    assert!(
        got.abs_diff(want_ms) <= 40,
        "{what}: duration {got} ms, want {want_ms} ±40 ms"
    );
}
