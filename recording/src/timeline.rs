//! Puts the packets of one stream on a true time line: per SSRC, ordered by (unwrapped) sequence number and
//! placed by RTP timestamp, each run of packets anchored to wall-clock arrival; lost packets and gaps stay
//! silent. A new SSRC, or a timestamp that jumps away from arrival time, starts a new anchored run.

use std::collections::HashMap;

use crate::g711::Codec;

/// Output sample rate (G.711).
pub const RATE: u32 = 8000;
/// µs per sample at [`RATE`].
const US_PER_SAMPLE: u64 = 1_000_000 / RATE as u64;
/// A timestamp step that disagrees with arrival time by more than this (1 s) is a jump, not jitter.
pub const JUMP_SAMPLES: i64 = RATE as i64;
/// Default cap on one track: 4 hours.
pub const DEFAULT_MAX_SAMPLES: usize = 4 * 3600 * RATE as usize;

/// One decodable RTP packet of a stream, in capture order.
#[derive(Debug, Clone, Copy)]
pub struct RtpIn<'a> {
    /// Capture time, µs since the epoch.
    pub at_us: u64,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub codec: Codec,
    pub payload: &'a [u8],
}

/// The audio of one stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    /// Position of `samples[0]`, in samples since the epoch.
    pub start: i64,
    pub samples: Vec<i16>,
    /// SSRCs in order of first appearance.
    pub ssrcs: Vec<u32>,
    /// Packets placed.
    pub received: u64,
    /// Packets missing from sequence number runs.
    pub lost: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Anchored runs (1 + SSRC changes + timestamp jumps).
    pub segments: u32,
    /// The track hit the length cap and was cut.
    pub cut: bool,
}

impl Track {
    /// Position one past the last sample.
    pub fn end(&self) -> i64 {
        self.start + self.samples.len() as i64
    }

    /// Duration in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(RATE)
    }
}

#[derive(Clone, Copy)]
struct Unwrapped {
    arrival: i64,
    seq: i64,
    ts: i64,
    raw_seq: u16,
    raw_ts: u32,
    idx: usize,
}

/// Builds the track of one stream. `max_samples` bounds memory whatever the input says.
pub fn build_track(packets: &[RtpIn<'_>], max_samples: usize) -> Track {
    let mut order: Vec<u32> = Vec::new();
    let mut groups: HashMap<u32, Vec<Unwrapped>> = HashMap::new();
    for (idx, p) in packets.iter().enumerate() {
        let g = groups.entry(p.ssrc).or_insert_with(|| {
            order.push(p.ssrc);
            Vec::new()
        });
        let (seq, ts) = match g.last() {
            None => (i64::from(p.seq), i64::from(p.ts)),
            Some(prev) => (
                prev.seq + i64::from(p.seq.wrapping_sub(prev.raw_seq) as i16),
                prev.ts + i64::from(p.ts.wrapping_sub(prev.raw_ts) as i32),
            ),
        };
        g.push(Unwrapped {
            arrival: (p.at_us / US_PER_SAMPLE) as i64,
            seq,
            ts,
            raw_seq: p.seq,
            raw_ts: p.ts,
            idx,
        });
    }

    let mut track = Track {
        ssrcs: order.clone(),
        ..Track::default()
    };
    // (position, packet index), in the order later ones overwrite earlier ones.
    let mut placed: Vec<(i64, usize)> = Vec::with_capacity(packets.len());
    for ssrc in &order {
        let Some(mut g) = groups.remove(ssrc) else {
            continue;
        };
        g.sort_by_key(|u| (u.seq, u.arrival));
        let before = g.len();
        g.dedup_by_key(|u| u.seq);
        track.duplicates += (before - g.len()) as u64;
        for seg in split_at_jumps(&g) {
            track.segments += 1;
            let (Some(first), Some(last)) = (seg.first(), seg.last()) else {
                continue;
            };
            track.lost += ((last.seq - first.seq + 1) as u64).saturating_sub(seg.len() as u64);
            // The least-delayed packet defines where the run sits: jitter only ever adds delay.
            let offset = seg
                .iter()
                .map(|u| u.arrival - (u.ts - first.ts))
                .min()
                .unwrap_or(first.arrival);
            placed.extend(seg.iter().map(|u| (offset + (u.ts - first.ts), u.idx)));
        }
    }
    track.received = placed.len() as u64;

    let len_of = |idx: usize| packets.get(idx).map_or(0, |p| p.payload.len()) as i64;
    let Some(start) = placed.iter().map(|&(pos, _)| pos).min() else {
        return track;
    };
    let end = placed
        .iter()
        .map(|&(pos, i)| pos + len_of(i))
        .max()
        .unwrap_or(start);
    let mut len = (end - start).max(0) as usize;
    if len > max_samples {
        len = max_samples;
        track.cut = true;
    }
    track.start = start;
    track.samples = vec![0; len];
    let mut scratch = Vec::with_capacity(320);
    for (pos, idx) in placed {
        let Some(p) = packets.get(idx) else { continue };
        scratch.clear();
        p.codec.decode_into(p.payload, &mut scratch);
        let from = (pos - start) as usize;
        if from >= len {
            continue;
        }
        let n = scratch.len().min(len - from);
        track.samples[from..from + n].copy_from_slice(&scratch[..n]);
    }
    track
}

/// Splits a sequence-ordered run where the timestamp step disagrees with the arrival step by more than
/// [`JUMP_SAMPLES`] (a sender restart or a splice that kept its SSRC).
fn split_at_jumps(g: &[Unwrapped]) -> Vec<&[Unwrapped]> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..g.len() {
        let (a, b) = (&g[i - 1], &g[i]);
        let ts_step = b.ts - a.ts;
        let arrival_step = b.arrival - a.arrival;
        if (ts_step - arrival_step).abs() > JUMP_SAMPLES {
            out.push(&g[from..i]);
            from = i;
        }
    }
    out.push(&g[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::ULAW_TABLE;

    const T0: u64 = 1_700_000_000_000_000;

    struct Pkt {
        at_us: u64,
        ssrc: u32,
        seq: u16,
        ts: u32,
        payload: Vec<u8>,
    }

    fn stream(n: usize, ssrc: u32, seq0: u16, ts0: u32, at0: u64) -> Vec<Pkt> {
        (0..n)
            .map(|k| Pkt {
                at_us: at0 + k as u64 * 20_000,
                ssrc,
                seq: seq0.wrapping_add(k as u16),
                ts: ts0.wrapping_add(k as u32 * 160),
                payload: vec![0x10 + k as u8; 160],
            })
            .collect()
    }

    fn track(pkts: &[Pkt]) -> Track {
        let ins: Vec<RtpIn<'_>> = pkts
            .iter()
            .map(|p| RtpIn {
                at_us: p.at_us,
                ssrc: p.ssrc,
                seq: p.seq,
                ts: p.ts,
                codec: Codec::Pcmu,
                payload: &p.payload,
            })
            .collect();
        build_track(&ins, DEFAULT_MAX_SAMPLES)
    }

    /// The sample value packet `k` of [`stream`] carries.
    fn val(k: usize) -> i16 {
        ULAW_TABLE[0x10 + k]
    }

    fn assert_packet_at(t: &Track, k: usize, at: usize) {
        assert_eq!(t.samples[at], val(k), "packet {k} start at {at}");
        assert_eq!(t.samples[at + 159], val(k), "packet {k} end");
    }

    #[test]
    fn in_order() {
        let t = track(&stream(10, 1, 100, 5000, T0));
        assert_eq!(t.samples.len(), 1600);
        assert_eq!(t.start, (T0 / 125) as i64);
        for k in 0..10 {
            assert_packet_at(&t, k, k * 160);
        }
        assert_eq!((t.received, t.lost, t.segments), (10, 0, 1));
    }

    #[test]
    fn jitter_and_reordering_keep_the_time_line() {
        let mut p = stream(10, 1, 100, 5000, T0);
        let delays = [0, 25_000, 3_000, 30_000, 0, 12_000, 7_000, 29_000, 1_000, 0];
        for (q, d) in p.iter_mut().zip(delays) {
            q.at_us += d;
        }
        p.sort_by_key(|q| q.at_us); // capture order = arrival order
        p.swap(2, 3);
        let t = track(&p);
        assert_eq!(t.samples.len(), 1600);
        assert_eq!(t.start, (T0 / 125) as i64);
        for k in 0..10 {
            assert_packet_at(&t, k, k * 160);
        }
        assert_eq!(t.lost, 0);
    }

    #[test]
    fn loss_is_silence() {
        let mut p = stream(10, 1, 100, 5000, T0);
        p.remove(4);
        p.remove(3);
        let t = track(&p);
        assert_eq!(t.samples.len(), 1600);
        assert!(t.samples[3 * 160..5 * 160].iter().all(|&s| s == 0));
        assert_packet_at(&t, 5, 5 * 160);
        assert_eq!(t.lost, 2);
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let t = track(&stream(10, 1, 65530, u32::MAX - 300, T0));
        assert_eq!(t.samples.len(), 1600);
        for k in 0..10 {
            assert_packet_at(&t, k, k * 160);
        }
        assert_eq!((t.lost, t.segments), (0, 1));
    }

    #[test]
    fn ssrc_change_keeps_duration() {
        let mut p = stream(10, 1, 100, 5000, T0);
        for (k, q) in p.iter_mut().enumerate().skip(5) {
            q.ssrc = 2;
            q.seq = 40_000 + k as u16;
            q.ts = 9_000_000 + k as u32 * 160;
        }
        let t = track(&p);
        assert_eq!(t.samples.len(), 1600);
        for k in 0..10 {
            assert_packet_at(&t, k, k * 160);
        }
        assert_eq!(t.ssrcs, vec![1, 2]);
        assert_eq!(t.segments, 2);
    }

    #[test]
    fn timestamp_jump_in_one_ssrc() {
        let mut p = stream(10, 1, 100, 5000, T0);
        for q in p.iter_mut().skip(5) {
            q.ts = q.ts.wrapping_add(3_000_000);
        }
        let t = track(&p);
        assert_eq!(t.samples.len(), 1600);
        assert_packet_at(&t, 6, 6 * 160);
        assert_eq!(t.segments, 2);
    }

    #[test]
    fn silence_suppression_gap_is_kept() {
        let mut p = stream(10, 1, 100, 5000, T0);
        for q in p.iter_mut().skip(5) {
            // 2 s of DTX: timestamps and arrival both move on.
            q.ts += 16_000;
            q.at_us += 2_000_000;
        }
        let t = track(&p);
        assert_eq!(t.samples.len(), 1600 + 16_000);
        assert_packet_at(&t, 5, 5 * 160 + 16_000);
        assert_eq!(t.segments, 1);
    }

    #[test]
    fn duplicates_and_cap() {
        let mut p = stream(10, 1, 100, 5000, T0);
        let dup = Pkt {
            payload: vec![0x01; 160],
            ..stream(1, 1, 103, 5000 + 3 * 160, T0 + 60_000).remove(0)
        };
        p.push(dup);
        let t = track(&p);
        assert_eq!(t.duplicates, 1);
        assert_packet_at(&t, 3, 3 * 160);
        let ins: Vec<RtpIn<'_>> = p
            .iter()
            .map(|q| RtpIn {
                at_us: q.at_us,
                ssrc: q.ssrc,
                seq: q.seq,
                ts: q.ts,
                codec: Codec::Pcmu,
                payload: &q.payload,
            })
            .collect();
        let cut = build_track(&ins, 1000);
        assert!(cut.cut);
        assert_eq!(cut.samples.len(), 1000);
        assert_eq!(build_track(&[], 10), Track::default());
    }
}
