//! Mixing tracks for the `mixed` output: `direct` sums into one channel (clipped to 16 bits), `channels`
//! gives each track its own channel. Tracks are aligned by their absolute start.
//!
//! A [`Mix`] never holds the mixed audio: it produces it block by block ([`Mix::fill`]) for the WAV writer,
//! and its length is capped by the caller (the call length cap, and what a WAV file can hold), so tracks
//! that sit far apart on the time line cannot make it allocate the span between them.

use crate::timeline::Track;

/// At most this many tracks go into a `channels` mix; more are left out (and counted by the caller).
pub const MAX_MIX_CHANNELS: usize = 256;

/// How tracks are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixKind {
    /// Summed into one channel.
    Direct,
    /// One channel per track.
    Channels,
}

/// The mix of some tracks, produced on demand.
#[derive(Debug, Clone)]
pub struct Mix<'a> {
    tracks: Vec<&'a Track>,
    kind: MixKind,
    /// Position of frame 0, in samples since the epoch.
    start: i64,
    frames: usize,
    /// Frames of the tracks' span beyond the cap.
    cut_frames: u64,
    /// Tracks left out of a `channels` mix.
    left_out: usize,
}

impl<'a> Mix<'a> {
    /// Mixes `tracks` (empty ones are ignored) from the earliest start, at most `max_frames` frames long.
    pub fn new(tracks: &[&'a Track], kind: MixKind, max_frames: usize) -> Self {
        let mut tracks: Vec<&Track> = tracks
            .iter()
            .copied()
            .filter(|t| !t.samples.is_empty())
            .collect();
        let mut left_out = 0;
        if kind == MixKind::Channels && tracks.len() > MAX_MIX_CHANNELS {
            left_out = tracks.len() - MAX_MIX_CHANNELS;
            tracks.truncate(MAX_MIX_CHANNELS);
        }
        let start = tracks.iter().map(|t| t.start).min().unwrap_or(0);
        let end = tracks.iter().map(|t| t.end()).max().unwrap_or(start);
        let span = u64::try_from(end.saturating_sub(start)).unwrap_or(0);
        let frames = usize::try_from(span).unwrap_or(usize::MAX).min(max_frames);
        Mix {
            tracks,
            kind,
            start,
            frames,
            cut_frames: span.saturating_sub(frames as u64),
            left_out,
        }
    }

    /// Position of the first frame, in samples since the epoch.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Length in frames.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Channels per frame (at least 1).
    pub fn channels(&self) -> usize {
        match self.kind {
            MixKind::Direct => 1,
            MixKind::Channels => self.tracks.len().max(1),
        }
    }

    /// Frames of the tracks' span left out by the cap.
    pub fn cut_frames(&self) -> u64 {
        self.cut_frames
    }

    /// Tracks left out of a `channels` mix (over [`MAX_MIX_CHANNELS`]).
    pub fn left_out(&self) -> usize {
        self.left_out
    }

    /// Appends frames `from..from + n` (clipped to the mix), interleaved, to `out`.
    pub fn fill(&self, from: usize, n: usize, out: &mut Vec<i16>) {
        let n = n.min(self.frames.saturating_sub(from));
        let ch = self.channels();
        let base = out.len();
        out.resize(base + n * ch, 0);
        let Some(block) = out.get_mut(base..) else {
            return;
        };
        let lo = self.start.saturating_add(from as i64);
        let hi = lo.saturating_add(n as i64);
        match self.kind {
            MixKind::Direct => {
                let mut acc = vec![0i32; n];
                for t in &self.tracks {
                    if let Some((dst, src)) = overlap(t, lo, hi) {
                        for (a, &s) in acc.iter_mut().skip(dst).zip(src) {
                            *a += i32::from(s);
                        }
                    }
                }
                for (o, a) in block.iter_mut().zip(acc) {
                    *o = a.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                }
            }
            MixKind::Channels => {
                for (c, t) in self.tracks.iter().enumerate() {
                    if let Some((dst, src)) = overlap(t, lo, hi) {
                        for (o, &s) in block.iter_mut().skip(dst * ch + c).step_by(ch).zip(src) {
                            *o = s;
                        }
                    }
                }
            }
        }
    }

    /// The whole mix in one buffer (tests and tools; the recorder streams it with [`Mix::fill`]).
    pub fn to_vec(&self) -> Vec<i16> {
        let mut out = Vec::new();
        self.fill(0, self.frames, &mut out);
        out
    }
}

/// The part of `t` inside `[lo, hi)`: (offset from `lo`, samples).
fn overlap(t: &Track, lo: i64, hi: i64) -> Option<(usize, &[i16])> {
    let a = t.start.max(lo);
    let b = t.end().min(hi);
    if a >= b {
        return None;
    }
    let from = usize::try_from(a - t.start).ok()?;
    let to = usize::try_from(b - t.start).ok()?;
    Some((usize::try_from(a - lo).ok()?, t.samples.get(from..to)?))
}

/// Sums all tracks into one mono channel, saturating at the 16-bit limits, at most `max_frames` long.
pub fn mix_direct(tracks: &[&Track], max_frames: usize) -> (i64, Vec<i16>) {
    let m = Mix::new(tracks, MixKind::Direct, max_frames);
    (m.start(), m.to_vec())
}

/// Interleaves the tracks, one channel each, in the given order, at most `max_frames` frames long.
pub fn mix_channels(tracks: &[&Track], max_frames: usize) -> (i64, Vec<i16>) {
    let m = Mix::new(tracks, MixKind::Channels, max_frames);
    (m.start(), m.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(start: i64, samples: Vec<i16>) -> Track {
        Track {
            start,
            samples,
            ..Track::default()
        }
    }

    #[test]
    fn direct_aligns_and_clips() {
        let a = t(10, vec![1, 2, 30_000]);
        let b = t(12, vec![10, 20]);
        let (start, m) = mix_direct(&[&a, &b], usize::MAX);
        assert_eq!(start, 10);
        assert_eq!(m, vec![1, 2, 30_010, 20]);
        let c = t(12, vec![10_000]);
        assert_eq!(mix_direct(&[&a, &c], 100).1, vec![1, 2, i16::MAX]);
        let d = t(0, vec![-30_000]);
        let e = t(0, vec![-30_000]);
        assert_eq!(mix_direct(&[&d, &e], 100).1, vec![i16::MIN]);
    }

    #[test]
    fn channels_interleave() {
        let a = t(10, vec![1, 2]);
        let b = t(11, vec![7, 8]);
        let (start, m) = mix_channels(&[&a, &b], 100);
        assert_eq!(start, 10);
        assert_eq!(m, vec![1, 0, 2, 7, 0, 8]);
        assert!(mix_channels(&[], 100).1.is_empty());
    }

    #[test]
    fn blocks_give_the_same_mix() {
        let a = t(3, (0..50).collect());
        let b = t(20, (100..170).collect());
        for kind in [MixKind::Direct, MixKind::Channels] {
            let m = Mix::new(&[&a, &b], kind, 1000);
            let whole = m.to_vec();
            let mut blocks = Vec::new();
            let mut at = 0;
            while at < m.frames() {
                m.fill(at, 7, &mut blocks);
                at += 7;
            }
            assert_eq!(blocks, whole, "{kind:?}");
            assert_eq!(whole.len(), 87 * m.channels());
        }
    }

    #[test]
    fn tracks_far_apart_do_not_stretch_the_mix() {
        // Two one-sample tracks ~10 days of samples apart: the span is 7e9 frames, the mix is capped.
        let a = t(0, vec![5]);
        let b = t(7_000_000_000, vec![9]);
        for kind in [MixKind::Direct, MixKind::Channels] {
            let m = Mix::new(&[&a, &b], kind, 8000);
            assert_eq!(m.frames(), 8000);
            assert_eq!(m.cut_frames(), 7_000_000_001 - 8000);
            let v = m.to_vec();
            assert_eq!(v.len(), 8000 * m.channels(), "{kind:?}");
            assert_eq!(v[0], 5);
        }
        // Reversed extremes do not overflow.
        let c = t(i64::MIN, vec![1]);
        let d = t(i64::MAX - 1, vec![1]);
        let m = Mix::new(&[&c, &d], MixKind::Direct, 16);
        assert_eq!(m.to_vec().len(), 16);
    }

    #[test]
    fn channels_are_capped() {
        let tracks: Vec<Track> = (0..MAX_MIX_CHANNELS + 3)
            .map(|i| t(i as i64, vec![1]))
            .collect();
        let refs: Vec<&Track> = tracks.iter().collect();
        let m = Mix::new(&refs, MixKind::Channels, 10_000);
        assert_eq!(m.channels(), MAX_MIX_CHANNELS);
        assert_eq!(m.left_out(), 3);
    }
}
