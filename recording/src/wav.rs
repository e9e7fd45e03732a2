//! 16-bit PCM WAV (RIFF) files: written under a temporary name (mode `0600`), fsynced and renamed when
//! complete, and a small reader for tests and tools.
//!
//! RIFF sizes are 32-bit: a file whose data would pass 4 GiB is refused before anything is written (the
//! recorder cuts its mix to [`max_frames`] first, so this only guards against a caller that did not).

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub use crate::fsutil::tmp_name;
use crate::fsutil::{create_private, rename, sync_file};

/// Bytes of the header before the samples.
const HEADER: u64 = 44;
/// The largest data chunk a RIFF file can describe (its RIFF size field holds data + 36).
pub const MAX_DATA_BYTES: u64 = u32::MAX as u64 - (HEADER - 8);

/// The most frames of `channels` 16-bit channels one WAV file can hold.
pub fn max_frames(channels: usize) -> usize {
    let per_frame = 2 * channels.max(1) as u64;
    usize::try_from(MAX_DATA_BYTES / per_frame).unwrap_or(usize::MAX)
}

/// Writes `samples` (interleaved when `channels` > 1) to `path`, atomically.
pub fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) -> io::Result<()> {
    let ch = usize::from(channels.max(1));
    write_wav_with(path, rate, channels, samples.len() / ch, |from, n, out| {
        if let Some(s) = samples.get(from * ch..(from + n) * ch) {
            out.extend_from_slice(s);
        }
    })
}

/// Writes a WAV of `frames` frames to `path`, atomically, asking `fill(from, n, out)` to append frames
/// `from..from + n` (interleaved) block by block, so the whole audio never has to be in memory. The file is
/// fsynced before the rename; the caller fsyncs the directory.
pub fn write_wav_with(
    path: &Path,
    rate: u32,
    channels: u16,
    frames: usize,
    mut fill: impl FnMut(usize, usize, &mut Vec<i16>),
) -> io::Result<()> {
    let block_align = channels
        .checked_mul(2)
        .filter(|_| channels > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad WAV channel count"))?;
    let data_len = (frames as u64)
        .checked_mul(u64::from(block_align))
        .filter(|&n| n <= MAX_DATA_BYTES)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::FileTooLarge, "WAV data over 4 GiB"))?;
    let byte_rate = rate
        .checked_mul(u32::from(block_align))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad WAV sample rate"))?;
    let tmp = tmp_name(path);
    let res = (|| {
        let mut w = BufWriter::with_capacity(64 * 1024, create_private(&tmp)?);
        w.write_all(b"RIFF")?;
        w.write_all(&(data_len + 36).to_le_bytes())?;
        w.write_all(b"WAVEfmt ")?;
        w.write_all(&16u32.to_le_bytes())?;
        w.write_all(&1u16.to_le_bytes())?; // PCM
        w.write_all(&channels.to_le_bytes())?;
        w.write_all(&rate.to_le_bytes())?;
        w.write_all(&byte_rate.to_le_bytes())?;
        w.write_all(&block_align.to_le_bytes())?;
        w.write_all(&16u16.to_le_bytes())?;
        w.write_all(b"data")?;
        w.write_all(&data_len.to_le_bytes())?;
        let ch = usize::from(channels);
        let block = (32 * 1024 / ch).max(1);
        let mut samples = Vec::with_capacity(block * ch);
        let mut bytes = Vec::with_capacity(block * ch * 2);
        let mut at = 0;
        while at < frames {
            let n = block.min(frames - at);
            samples.clear();
            fill(at, n, &mut samples);
            // Whatever `fill` did, the file gets exactly the frames its header announces.
            samples.resize(n * ch, 0);
            bytes.clear();
            for s in &samples {
                bytes.extend_from_slice(&s.to_le_bytes());
            }
            w.write_all(&bytes)?;
            at += n;
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        sync_file(&f, &tmp)
    })();
    match res.and_then(|()| rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A parsed WAV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    pub rate: u32,
    pub channels: u16,
    pub bits: u16,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

impl Wav {
    /// One channel's samples.
    pub fn channel(&self, ch: usize) -> Vec<i16> {
        let n = usize::from(self.channels.max(1));
        self.samples.iter().skip(ch).step_by(n).copied().collect()
    }

    /// Length in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        let frames = self.samples.len() as u64 / u64::from(self.channels.max(1));
        frames * 1000 / u64::from(self.rate.max(1))
    }
}

/// Parses a 16-bit PCM WAV file; `None` if it is not one.
pub fn parse_wav(data: &[u8]) -> Option<Wav> {
    if data.get(0..4)? != b"RIFF" || data.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut fmt = None;
    while let Some(h) = data.get(pos..pos + 8) {
        let id = &h[0..4];
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let body = data.get(pos + 8..(pos + 8).checked_add(len)?)?;
        if id == b"fmt " {
            let f = body.get(0..16)?;
            fmt = Some((
                u16::from_le_bytes([f[2], f[3]]),
                u32::from_le_bytes([f[4], f[5], f[6], f[7]]),
                u16::from_le_bytes([f[14], f[15]]),
            ));
        } else if id == b"data" {
            let (channels, rate, bits) = fmt?;
            if bits != 16 {
                return None;
            }
            let samples = body
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return Some(Wav {
                rate,
                channels,
                bits,
                samples,
            });
        }
        pos += 8 + len + (len & 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_big_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.wav");
        let mut called = false;
        let e =
            write_wav_with(&p, 8000, 2, max_frames(2) + 1, |_, _, _| called = true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(!called && !p.exists() && !tmp_name(&p).exists());
        assert_eq!(max_frames(1) as u64 * 2, MAX_DATA_BYTES - 1);
        assert!(write_wav(&p, 8000, 0, &[]).is_err());
        assert!(write_wav(&p, 8000, u16::MAX, &[]).is_err());
    }

    #[test]
    fn write_and_parse() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.wav");
        write_wav(&p, 8000, 2, &[1, -1, 300, -300]).unwrap();
        assert!(!tmp_name(&p).exists());
        let raw = fs::read(&p).unwrap();
        assert_eq!(raw.len(), 44 + 8);
        assert_eq!(&raw[24..28], &8000u32.to_le_bytes());
        let w = parse_wav(&raw).unwrap();
        assert_eq!((w.rate, w.channels, w.bits), (8000, 2, 16));
        assert_eq!(w.channel(1), vec![-1, -300]);
        assert_eq!(w.duration_ms(), 0);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(parse_wav(b"RIFF\0\0\0\0WAVEjunk").is_none());
    }
}
