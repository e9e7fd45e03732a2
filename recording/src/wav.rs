//! 16-bit PCM WAV (RIFF) files: written under a temporary name and renamed when complete, and a small reader
//! for tests and tools.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `samples` (interleaved when `channels` > 1) to `path`, atomically.
pub fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) -> io::Result<()> {
    let tmp = tmp_name(path);
    let res = (|| {
        let mut w = BufWriter::with_capacity(64 * 1024, File::create(&tmp)?);
        let data_len = u32::try_from(samples.len() * 2)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "WAV data over 4 GiB"))?;
        let block = channels * 2;
        w.write_all(b"RIFF")?;
        w.write_all(&(36 + data_len).to_le_bytes())?;
        w.write_all(b"WAVEfmt ")?;
        w.write_all(&16u32.to_le_bytes())?;
        w.write_all(&1u16.to_le_bytes())?; // PCM
        w.write_all(&channels.to_le_bytes())?;
        w.write_all(&rate.to_le_bytes())?;
        w.write_all(&(rate * u32::from(block)).to_le_bytes())?;
        w.write_all(&block.to_le_bytes())?;
        w.write_all(&16u16.to_le_bytes())?;
        w.write_all(b"data")?;
        w.write_all(&data_len.to_le_bytes())?;
        let mut buf = Vec::with_capacity(8192);
        for chunk in samples.chunks(4096) {
            buf.clear();
            for s in chunk {
                buf.extend_from_slice(&s.to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_data()
    })();
    match res {
        Ok(()) => fs::rename(&tmp, path),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// `<path>.tmp`: where a file is written before it gets its name.
pub fn tmp_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
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
        assert!(parse_wav(b"RIFF\0\0\0\0WAVEjunk").is_none());
    }
}
