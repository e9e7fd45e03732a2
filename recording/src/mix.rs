//! Mixing tracks for the `mixed` output: `direct` sums into one channel (clipped to 16 bits), `channels`
//! gives each track its own channel. Tracks are aligned by their absolute start.

use crate::timeline::Track;

/// The span covered by all tracks: (start, length in samples).
fn span(tracks: &[&Track]) -> (i64, usize) {
    let start = tracks.iter().map(|t| t.start).min().unwrap_or(0);
    let end = tracks.iter().map(|t| t.end()).max().unwrap_or(start);
    (start, (end - start).max(0) as usize)
}

/// Sums all tracks into one mono channel, saturating at the 16-bit limits.
pub fn mix_direct(tracks: &[&Track]) -> (i64, Vec<i16>) {
    let (start, len) = span(tracks);
    let mut acc = vec![0i32; len];
    for t in tracks {
        let off = (t.start - start) as usize;
        for (a, &s) in acc[off..].iter_mut().zip(&t.samples) {
            *a += i32::from(s);
        }
    }
    let out = acc
        .into_iter()
        .map(|a| a.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
        .collect();
    (start, out)
}

/// Interleaves the tracks, one channel each, in the given order.
pub fn mix_channels(tracks: &[&Track]) -> (i64, Vec<i16>) {
    let (start, len) = span(tracks);
    let n = tracks.len();
    let mut out = vec![0i16; len * n];
    for (ch, t) in tracks.iter().enumerate() {
        let off = (t.start - start) as usize;
        for (i, &s) in t.samples.iter().enumerate() {
            out[(off + i) * n + ch] = s;
        }
    }
    (start, out)
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
        let (start, m) = mix_direct(&[&a, &b]);
        assert_eq!(start, 10);
        assert_eq!(m, vec![1, 2, 30_010, 20]);
        let c = t(12, vec![10_000]);
        assert_eq!(mix_direct(&[&a, &c]).1, vec![1, 2, i16::MAX]);
        let d = t(0, vec![-30_000]);
        let e = t(0, vec![-30_000]);
        assert_eq!(mix_direct(&[&d, &e]).1, vec![i16::MIN]);
    }

    #[test]
    fn channels_interleave() {
        let a = t(10, vec![1, 2]);
        let b = t(11, vec![7, 8]);
        let (start, m) = mix_channels(&[&a, &b]);
        assert_eq!(start, 10);
        assert_eq!(m, vec![1, 0, 2, 7, 0, 8]);
        assert!(mix_channels(&[]).1.is_empty());
    }
}
