//! The `mix` fuzz target's body: arbitrary packets (arrival times, SSRCs, sequence numbers, timestamps,
//! codecs, payload sizes) for a few streams go through the timeline, the per-call caps and both mixers, and
//! the caps are asserted: no track, mix or sum of tracks is ever longer than the caps allow, and every
//! stream's audio stays within a few seconds of its packets' arrival times, whatever the timestamps say.
//! A panic here is a finding. Not used by the recorder itself.

use crate::g711::Codec;
use crate::limits::{fit_tracks, Limits};
use crate::mix::{Mix, MixKind, MAX_MIX_CHANNELS};
use crate::timeline::{place, RtpIn, JUMP_SAMPLES, RATE};
use crate::wav::max_frames;

/// Bytes per packet in the input.
const PACKET: usize = 16;
/// µs per sample.
const US_PER_SAMPLE: u64 = 1_000_000 / RATE as u64;

/// Reads the input as: the call length cap in 20 ms units (20 ms to 5.12 s: short, so that each run is
/// quick and every cap is hit), stream count (1..=8) and mix kind, then 16-byte packets:
/// stream, flags (codec, payload length), sequence number, timestamp, SSRC, arrival in ms (up to 49 days).
pub fn fuzz_mix(data: &[u8]) {
    let (Some(&cap), Some(&shape), Some(body)) = (data.first(), data.get(1), data.get(2..)) else {
        return;
    };
    let max_samples = (usize::from(cap) + 1) * 160;
    let limits = Limits {
        max_samples,
        max_total_samples: max_samples * 2,
        max_call_bytes: u64::MAX,
    };
    let streams = usize::from(shape & 7) + 1;
    let kind = if shape & 8 == 0 {
        MixKind::Direct
    } else {
        MixKind::Channels
    };
    static PAYLOAD: [u8; 255] = [0x5a; 255];
    let mut per_stream: Vec<Vec<RtpIn<'_>>> = vec![Vec::new(); streams];
    for c in body.chunks_exact(PACKET) {
        let u16_at = |i: usize| u16::from_be_bytes([c[i], c[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
        let flags = c[1];
        let p = RtpIn {
            at_us: u64::from(u32_at(12)) * 1000,
            ssrc: u32_at(8),
            seq: u16_at(2),
            ts: u32_at(4),
            codec: if flags & 1 == 0 {
                Codec::Pcmu
            } else {
                Codec::Pcma
            },
            payload: &PAYLOAD[..usize::from(flags >> 1) * 2],
        };
        if let Some(s) = per_stream.get_mut(usize::from(c[0]) % streams) {
            s.push(p);
        }
    }

    let placements: Vec<_> = per_stream.iter().map(|s| place(s)).collect();
    for (s, p) in per_stream.iter().zip(&placements) {
        let (Some(first), Some(last)) = (
            s.iter().map(|p| p.at_us).min(),
            s.iter().map(|p| p.at_us).max(),
        ) else {
            continue;
        };
        let (first, last) = (
            (first / US_PER_SAMPLE) as i64,
            (last / US_PER_SAMPLE) as i64,
        );
        assert!(p.start >= first - 2 * JUMP_SAMPLES, "placed before arrival");
        assert!(
            p.end <= last + JUMP_SAMPLES + PAYLOAD.len() as i64,
            "placed after arrival"
        );
    }
    let fitted = fit_tracks(&placements, &limits);
    let mut total = 0;
    for t in &fitted.tracks {
        assert!(t.samples.len() <= max_samples, "track over the call cap");
        total += t.samples.len();
    }
    assert!(total <= limits.max_total_samples, "tracks over the budget");

    let refs: Vec<_> = fitted.tracks.iter().collect();
    let channels = match kind {
        MixKind::Direct => 1,
        MixKind::Channels => refs.len().clamp(1, MAX_MIX_CHANNELS),
    };
    let mix = Mix::new(&refs, kind, max_samples.min(max_frames(channels)));
    assert!(mix.frames() <= max_samples, "mix over the call cap");
    assert!(mix.channels() <= channels.max(1));
    let mut out = Vec::new();
    let mut at = 0;
    while at < mix.frames() {
        out.clear();
        mix.fill(at, 4096, &mut out);
        let n = 4096.min(mix.frames() - at);
        assert_eq!(out.len(), n * mix.channels(), "block size");
        at += n;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn survives_random_and_skewed_input() {
        let mut seed = 0x9e37_79b9u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for round in 0..300 {
            let mut data = vec![next() as u8, next() as u8];
            for k in 0..(round % 60) as u32 {
                let mut p = [0u8; 16];
                for b in p.iter_mut() {
                    *b = next() as u8;
                }
                if round % 3 == 0 {
                    // Plausible arrivals, wild timestamps.
                    p[12..16].copy_from_slice(&(1_000_000 + k * 20).to_be_bytes());
                }
                data.extend_from_slice(&p);
            }
            super::fuzz_mix(&data);
        }
    }
}
