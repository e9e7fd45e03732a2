//! The caps that bound what one call may cost the recorder, whatever its spool files and its parties' RTP
//! say. A call that exceeds one is written up to the cap (the sidecar says what was cut) and its spool
//! files are then quarantined for inspection, so it is never retried.
//!
//! Memory for one call in progress is about: its pcap bytes (at most [`Limits::max_call_bytes`]) plus ~100
//! bytes per packet for ordering, plus 2 bytes per track sample (at most [`Limits::max_total_samples`]).
//! The mix is streamed to disk and costs a fixed block.

use crate::timeline::{Placement, Track, DEFAULT_MAX_SAMPLES, RATE};

/// Largest metadata file read; a real one is a few kB per stream.
pub const MAX_META_BYTES: u64 = 1 << 20;
/// Default [`Limits::max_call_bytes`]: 1 GiB (a 4-hour two-party G.711 call spools about 330 MB).
pub const DEFAULT_MAX_CALL_BYTES: u64 = 1 << 30;

/// Per-call caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest call, in samples at 8 kHz: no track and no mix covers more. Counted from the call's
    /// earliest sample.
    pub max_samples: usize,
    /// Samples of all tracks of one call together (two parties talking for the whole call length fit).
    pub max_total_samples: usize,
    /// Bytes of pcap files read into memory for one call; streams past it are not read.
    pub max_call_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::for_call_length(DEFAULT_MAX_SAMPLES)
    }
}

impl Limits {
    /// Caps for calls of at most `max_samples` samples: two full-length tracks, and pcap bytes for two
    /// G.711 streams of that length with room to spare (at least [`DEFAULT_MAX_CALL_BYTES`]).
    pub fn for_call_length(max_samples: usize) -> Self {
        Limits {
            max_samples,
            max_total_samples: max_samples.saturating_mul(2),
            max_call_bytes: (max_samples as u64)
                .saturating_mul(4)
                .max(DEFAULT_MAX_CALL_BYTES),
        }
    }

    /// The call length cap in seconds (for messages).
    pub fn max_seconds(&self) -> u64 {
        self.max_samples as u64 / u64::from(RATE)
    }
}

/// The tracks of a call, rendered within the caps.
#[derive(Debug, Clone, Default)]
pub struct Fitted {
    /// One per placement, in order (empty when the stream had no audio or nothing fitted).
    pub tracks: Vec<Track>,
    /// Samples left out because the call's span is longer than `max_samples`.
    pub cut_by_length: u64,
    /// Samples left out because the call's tracks together exceed `max_total_samples`.
    pub cut_by_budget: u64,
}

impl Fitted {
    /// True if any cap cut audio.
    pub fn cut(&self) -> bool {
        self.cut_by_length > 0 || self.cut_by_budget > 0
    }
}

/// Renders each stream's track inside the call window (`max_samples` from the earliest sample of any
/// stream) and within the shared sample budget, in stream order. Nothing outside the caps is allocated.
pub fn fit_tracks(placements: &[Placement<'_>], limits: &Limits) -> Fitted {
    let from = placements
        .iter()
        .filter(|p| p.received > 0)
        .map(|p| p.start)
        .min()
        .unwrap_or(0);
    let window_end = from.saturating_add(i64::try_from(limits.max_samples).unwrap_or(i64::MAX));
    let mut left = limits.max_total_samples;
    let mut out = Fitted::default();
    for p in placements {
        if p.received == 0 {
            out.tracks.push(p.render(from, 0));
            continue;
        }
        // What the window allows for this stream, then what the budget still allows.
        let lo = p.start.max(from);
        let in_window = usize::try_from(p.end.min(window_end).saturating_sub(lo)).unwrap_or(0);
        let give = in_window.min(left);
        let track = p.render(from, give);
        left -= track.samples.len().min(left);
        let by_length = p.span().saturating_sub(in_window as u64);
        out.cut_by_length += by_length;
        out.cut_by_budget += track.cut_samples.saturating_sub(by_length);
        out.tracks.push(track);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::Codec;
    use crate::timeline::{place, RtpIn};

    fn packets(at0_s: u64, n: usize, payload: &[u8]) -> Vec<RtpIn<'_>> {
        (0..n)
            .map(|k| RtpIn {
                at_us: at0_s * 1_000_000 + k as u64 * 20_000,
                ssrc: 7,
                seq: k as u16,
                ts: k as u32 * 160,
                codec: Codec::Pcmu,
                payload,
            })
            .collect()
    }

    #[test]
    fn a_track_hours_after_another_is_cut_to_the_call_length() {
        let pay = [0x10u8; 160];
        let a = packets(1_000, 50, &pay); // 1 s at t = 1000 s
        let b = packets(1_000 + 5 * 3600, 50, &pay); // 1 s, five hours later
        let p = [place(&a), place(&b)];
        let limits = Limits::for_call_length(60 * 8000);
        let f = fit_tracks(&p, &limits);
        assert_eq!(f.tracks[0].samples.len(), 8000);
        assert!(f.tracks[1].samples.is_empty(), "outside the 60 s window");
        assert_eq!(f.cut_by_length, 8000);
        assert_eq!(f.cut_by_budget, 0);
        assert!(f.cut());
        let total: usize = f.tracks.iter().map(|t| t.samples.len()).sum();
        assert!(total <= limits.max_samples);
    }

    #[test]
    fn many_long_streams_share_one_budget() {
        let pay = [0x10u8; 160];
        let streams: Vec<Vec<RtpIn<'_>>> = (0..10).map(|_| packets(1_000, 100, &pay)).collect();
        let p: Vec<Placement<'_>> = streams.iter().map(|s| place(s)).collect();
        let limits = Limits {
            max_samples: 16_000,
            max_total_samples: 40_000,
            max_call_bytes: 0,
        };
        let f = fit_tracks(&p, &limits);
        let lens: Vec<usize> = f.tracks.iter().map(|t| t.samples.len()).collect();
        assert_eq!(lens, [16_000, 16_000, 8_000, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(f.cut_by_length, 0);
        assert_eq!(f.cut_by_budget, 10 * 16_000 - 40_000);
    }

    #[test]
    fn within_the_caps_nothing_is_cut() {
        let pay = [0x10u8; 160];
        let a = packets(1_000, 50, &pay);
        let f = fit_tracks(&[place(&a), place(&[])], &Limits::default());
        assert_eq!(f.tracks.len(), 2);
        assert_eq!(f.tracks[0].samples.len(), 8000);
        assert!(!f.cut() && !f.tracks[0].cut);
    }
}
