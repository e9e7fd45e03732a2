//! The output files of one call while it is being written: each is created privately (`0600` in `0700`
//! directories), their directories are fsynced together before the call may be marked done, and if the
//! call fails half way the files already written are removed, so the output directory only ever holds
//! complete sets (a sidecar and the files it lists).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::{create_dir_private, sync_dir, write_private_atomic};
use crate::wav::write_wav_with;

/// Files written for one call so far.
#[derive(Debug)]
pub struct Outputs {
    root: PathBuf,
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    kept: bool,
}

impl Outputs {
    /// Files will go under `root` (created `0700` if missing).
    pub fn new(root: &Path) -> Self {
        Outputs {
            root: root.to_owned(),
            files: Vec::new(),
            dirs: Vec::new(),
            kept: false,
        }
    }

    /// `root/rel`, with its directories created.
    fn prepare(&mut self, rel: &Path) -> io::Result<PathBuf> {
        let path = self.root.join(rel);
        let dir = path
            .parent()
            .map_or_else(|| self.root.clone(), Path::to_owned);
        create_dir_private(&dir)?;
        if !self.dirs.contains(&dir) {
            self.dirs.push(dir);
        }
        Ok(path)
    }

    /// Writes a WAV (see [`write_wav_with`]) at `rel`; returns its full path.
    pub fn wav(
        &mut self,
        rel: &Path,
        rate: u32,
        channels: u16,
        frames: usize,
        fill: impl FnMut(usize, usize, &mut Vec<i16>),
    ) -> io::Result<PathBuf> {
        let path = self.prepare(rel)?;
        write_wav_with(&path, rate, channels, frames, fill)?;
        self.files.push(path.clone());
        Ok(path)
    }

    /// Writes `data` at `rel`, atomically; returns its full path.
    pub fn file(&mut self, rel: &Path, data: &[u8]) -> io::Result<PathBuf> {
        let path = self.prepare(rel)?;
        write_private_atomic(&path, data)?;
        self.files.push(path.clone());
        Ok(path)
    }

    /// Makes every name written so far durable (fsyncs their directories).
    pub fn sync(&self) -> io::Result<()> {
        self.dirs.iter().try_for_each(|d| sync_dir(d))
    }

    /// The files stay: the call is complete.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Outputs {
    /// A call that did not complete leaves nothing behind (a redo writes the same names anyway).
    fn drop(&mut self) {
        if !self.kept {
            for f in &self.files {
                let _ = fs::remove_file(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_without_keep_removes_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outputs::new(dir.path());
        let a = o.file(Path::new("x/a.json"), b"{}").unwrap();
        let b = o
            .wav(Path::new("x/b.wav"), 8000, 1, 3, |_, n, out| {
                out.extend(std::iter::repeat_n(1, n))
            })
            .unwrap();
        assert!(a.exists() && b.exists());
        o.sync().unwrap();
        drop(o);
        assert!(!a.exists() && !b.exists());

        let mut o = Outputs::new(dir.path());
        let c = o.file(Path::new("c.json"), b"{}").unwrap();
        o.keep();
        assert!(c.exists());
    }
}
