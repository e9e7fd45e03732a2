//! Puts the packets of one stream on a true time line: per SSRC, ordered by (unwrapped) sequence number and
//! placed by RTP timestamp, each run of packets anchored to wall-clock arrival; lost packets and gaps stay
//! silent. A new SSRC, or a timestamp that jumps or drifts away from arrival time, starts a new anchored run.
//!
//! The RTP timestamps, sequence numbers and SSRCs come from the party that sent the stream, so they are
//! hostile input. Arrival times come from the relay's clock. A run is therefore never allowed to stray from
//! its arrival times: every packet of a run is within [`JUMP_SAMPLES`] of where the run's first packet says
//! it should be, so every packet lands within 2 × [`JUMP_SAMPLES`] of its own arrival. Whatever the
//! timestamps say, a stream's audio spans its arrival times plus a few seconds, never more.
//!
//! Placing ([`place`]) allocates nothing per sample; rendering ([`Placement::render`]) allocates only the
//! samples of the window it is asked for, so a caller can bound memory before any audio exists.

use std::collections::HashMap;

use crate::g711::Codec;

/// Output sample rate (G.711).
pub const RATE: u32 = 8000;
/// µs per sample at [`RATE`].
const US_PER_SAMPLE: u64 = 1_000_000 / RATE as u64;
/// A timestamp step, or a run's accumulated drift, that disagrees with arrival time by more than this (1 s)
/// is a jump, not jitter.
pub const JUMP_SAMPLES: i64 = RATE as i64;
/// Default cap on one track, and on a call: 4 hours.
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
    /// Anchored runs (1 + SSRC changes + timestamp jumps and drifts).
    pub segments: u32,
    /// The track hit a length cap and was cut.
    pub cut: bool,
    /// Samples of the stream's span left out by the cut.
    pub cut_samples: u64,
}

impl Track {
    /// Position one past the last sample.
    pub fn end(&self) -> i64 {
        self.start.saturating_add(self.samples.len() as i64)
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

/// Where every packet of one stream goes, before any sample exists.
#[derive(Debug, Clone, Default)]
pub struct Placement<'p> {
    packets: &'p [RtpIn<'p>],
    /// (position in samples since the epoch, packet index), in the order later ones overwrite earlier ones.
    placed: Vec<(i64, usize)>,
    /// First sample position (meaningless when nothing was placed).
    pub start: i64,
    /// One past the last sample position.
    pub end: i64,
    pub ssrcs: Vec<u32>,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub segments: u32,
}

impl Placement<'_> {
    /// Samples between the first and the last placed sample (0 if nothing was placed).
    pub fn span(&self) -> u64 {
        u64::try_from(self.end.saturating_sub(self.start)).unwrap_or(0)
    }

    /// Renders the part of the stream that starts at `from` (or at the stream's start, if later) and is at
    /// most `max_len` samples long. Allocates only those samples; what falls outside is counted as cut.
    pub fn render(&self, from: i64, max_len: usize) -> Track {
        let mut track = Track {
            ssrcs: self.ssrcs.clone(),
            received: self.received,
            lost: self.lost,
            duplicates: self.duplicates,
            segments: self.segments,
            ..Track::default()
        };
        if self.placed.is_empty() {
            return track;
        }
        let start = self.start.max(from);
        let cap = i64::try_from(max_len).unwrap_or(i64::MAX);
        let end = self.end.min(start.saturating_add(cap)).max(start);
        let len = usize::try_from(end - start).unwrap_or(0);
        track.cut_samples = self.span().saturating_sub(len as u64);
        track.cut = track.cut_samples > 0;
        track.start = start;
        track.samples = vec![0; len];
        let mut scratch = Vec::with_capacity(320);
        for &(pos, idx) in &self.placed {
            let Some(p) = self.packets.get(idx) else {
                continue;
            };
            scratch.clear();
            p.codec.decode_into(p.payload, &mut scratch);
            let lo = pos.max(start);
            let hi = pos.saturating_add(scratch.len() as i64).min(end);
            if lo >= hi {
                continue;
            }
            let (Ok(src_at), Ok(dst_at), Ok(n)) = (
                usize::try_from(lo - pos),
                usize::try_from(lo - start),
                usize::try_from(hi - lo),
            ) else {
                continue;
            };
            if let (Some(dst), Some(src)) = (
                track.samples.get_mut(dst_at..dst_at + n),
                scratch.get(src_at..src_at + n),
            ) {
                dst.copy_from_slice(src);
            }
        }
        track
    }
}

/// Works out where each packet of one stream goes. Memory is proportional to the number of packets.
pub fn place<'p>(packets: &'p [RtpIn<'p>]) -> Placement<'p> {
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
                prev.seq
                    .saturating_add(i64::from(p.seq.wrapping_sub(prev.raw_seq) as i16)),
                prev.ts
                    .saturating_add(i64::from(p.ts.wrapping_sub(prev.raw_ts) as i32)),
            ),
        };
        g.push(Unwrapped {
            // At most u64::MAX / 125, which fits an i64.
            arrival: (p.at_us / US_PER_SAMPLE) as i64,
            seq,
            ts,
            raw_seq: p.seq,
            raw_ts: p.ts,
            idx,
        });
    }

    let mut out = Placement {
        packets,
        ssrcs: order.clone(),
        placed: Vec::with_capacity(packets.len()),
        ..Placement::default()
    };
    for ssrc in &order {
        let Some(mut g) = groups.remove(ssrc) else {
            continue;
        };
        g.sort_by_key(|u| (u.seq, u.arrival));
        let before = g.len();
        g.dedup_by_key(|u| u.seq);
        out.duplicates += (before - g.len()) as u64;
        for seg in split_at_jumps(&g) {
            out.segments = out.segments.saturating_add(1);
            let (Some(first), Some(last)) = (seg.first(), seg.last()) else {
                continue;
            };
            let seqs = u64::try_from(last.seq.saturating_sub(first.seq)).unwrap_or(0);
            out.lost = out
                .lost
                .saturating_add(seqs.saturating_add(1).saturating_sub(seg.len() as u64));
            // The least-delayed packet defines where the run sits: jitter only ever adds delay. Within a run
            // `ts - first.ts` is within JUMP_SAMPLES of `arrival - first.arrival`, so this stays near arrival.
            let offset = seg
                .iter()
                .map(|u| u.arrival.saturating_sub(u.ts.saturating_sub(first.ts)))
                .min()
                .unwrap_or(first.arrival);
            out.placed.extend(
                seg.iter()
                    .map(|u| (offset.saturating_add(u.ts.saturating_sub(first.ts)), u.idx)),
            );
        }
    }
    out.received = out.placed.len() as u64;
    let len_of = |idx: usize| packets.get(idx).map_or(0, |p| p.payload.len()) as i64;
    if let Some(start) = out.placed.iter().map(|&(pos, _)| pos).min() {
        out.start = start;
        out.end = out
            .placed
            .iter()
            .map(|&(pos, i)| pos.saturating_add(len_of(i)))
            .max()
            .unwrap_or(start);
    }
    out
}

/// Builds the track of one stream, at most `max_samples` long from its first sample.
pub fn build_track(packets: &[RtpIn<'_>], max_samples: usize) -> Track {
    place(packets).render(i64::MIN, max_samples)
}

/// Splits a sequence-ordered run where a timestamp step disagrees with the arrival step by more than
/// [`JUMP_SAMPLES`] (a sender restart or a splice that kept its SSRC), or where the timestamps have drifted
/// from the arrival times by more than that since the run began (a sender whose clock runs away, or one that
/// adds a little under a second per packet to stretch the recording).
fn split_at_jumps(g: &[Unwrapped]) -> Vec<&[Unwrapped]> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..g.len() {
        let (Some(first), Some(a), Some(b)) = (g.get(from), g.get(i - 1), g.get(i)) else {
            continue;
        };
        let step = (b.ts.saturating_sub(a.ts)).saturating_sub(b.arrival - a.arrival);
        let drift = (b.ts.saturating_sub(first.ts)).saturating_sub(b.arrival - first.arrival);
        if step.unsigned_abs() > JUMP_SAMPLES as u64 || drift.unsigned_abs() > JUMP_SAMPLES as u64 {
            out.extend(g.get(from..i));
            from = i;
        }
    }
    out.extend(g.get(from..));
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
                payload: vec![0x10u8.wrapping_add(k as u8); 160],
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
        assert_eq!(cut.cut_samples, 1600 - 1000);
        assert_eq!(build_track(&[], 10), Track::default());
    }

    fn ins(p: &[Pkt]) -> Vec<RtpIn<'_>> {
        p.iter()
            .map(|q| RtpIn {
                at_us: q.at_us,
                ssrc: q.ssrc,
                seq: q.seq,
                ts: q.ts,
                codec: Codec::Pcmu,
                payload: &q.payload,
            })
            .collect()
    }

    /// Every packet lands within 2 s before and 1 s after its arrival, and the span stays the arrival span.
    fn assert_near_arrival(p: &[Pkt]) {
        let ins = ins(p);
        let pl = place(&ins);
        for &(pos, idx) in &pl.placed {
            let arrival = (ins[idx].at_us / US_PER_SAMPLE) as i64;
            assert!(
                pos >= arrival - 2 * JUMP_SAMPLES && pos <= arrival + JUMP_SAMPLES,
                "packet {idx} placed {} samples from its arrival",
                pos - arrival
            );
        }
        let first = p.iter().map(|q| q.at_us).min().unwrap() / US_PER_SAMPLE;
        let last = p.iter().map(|q| q.at_us).max().unwrap() / US_PER_SAMPLE;
        let bound = (last - first) + 3 * JUMP_SAMPLES as u64 + 160;
        assert!(pl.span() <= bound, "span {} > {bound}", pl.span());
    }

    #[test]
    fn timestamps_that_creep_away_from_arrival_do_not_stretch_the_track() {
        // Each step adds just under the 1 s jump threshold, forwards or backwards: 10 s of packets would
        // otherwise spread over 500 × 1 s.
        for extra in [7_999i64, -7_999] {
            let mut p = stream(500, 1, 100, 5000, T0);
            for (k, q) in p.iter_mut().enumerate() {
                q.ts = (5000 + k as i64 * (160 + extra)) as u32;
            }
            assert_near_arrival(&p);
            let t = track(&p);
            assert!(t.segments > 100, "re-anchored: {}", t.segments);
        }
    }

    #[test]
    fn wraparound_games_and_wild_ssrc_changes_stay_near_arrival() {
        let mut rng = 0x2545_f491u32;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            rng
        };
        // Timestamps that flip by half the number space, sequence numbers that wrap every packet.
        let mut p = stream(300, 1, 0, 0, T0);
        for (k, q) in p.iter_mut().enumerate() {
            q.ts = if k % 2 == 0 { 0 } else { 0x8000_0000 };
            q.seq = (k as u16).wrapping_mul(0x7fff);
        }
        assert_near_arrival(&p);
        // A new SSRC with random sequence and timestamp every few packets.
        let mut p = stream(300, 1, 0, 0, T0);
        for q in p.iter_mut() {
            let r = next();
            q.ssrc = r % 7;
            q.seq = next() as u16;
            q.ts = next();
        }
        assert_near_arrival(&p);
    }

    #[test]
    fn render_clips_to_the_window_and_counts_the_cut() {
        let p = stream(10, 1, 100, 5000, T0);
        let ins = ins(&p);
        let pl = place(&ins);
        assert_eq!(pl.span(), 1600);
        let start = (T0 / US_PER_SAMPLE) as i64;
        // From the 3rd packet on, 4 packets long.
        let t = pl.render(start + 320, 640);
        assert_eq!((t.start, t.samples.len()), (start + 320, 640));
        assert_eq!(t.cut_samples, 960);
        assert!(t.cut);
        assert_packet_at(&t, 2, 0);
        assert_packet_at(&t, 5, 480);
        // A window after the stream: nothing allocated, all of it cut.
        let t = pl.render(start + 10_000, 640);
        assert!(t.samples.is_empty());
        assert_eq!(t.cut_samples, 1600);
    }
}
