//! The recorder's side: lists finished calls in `metadata/`, loads a call's metadata and packets, and moves
//! a call to `done/` (processed) or `quarantine/` (unusable).

use std::ffi::OsStr;
use std::fs;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::meta::{safe_file_name, CallMeta, StreamMeta};
use super::packet::parse_frame;
use super::pcap::parse_pcap;
use super::{SpoolError, DONE_DIR, META_DIR, META_EXT, PCAP_DIR, QUARANTINE_DIR};

/// A spool opened for reading.
#[derive(Debug, Clone)]
pub struct SpoolReader {
    root: PathBuf,
}

/// What a file in `metadata/` is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpoolEntry {
    /// `<stem>.meta`: a finished call.
    Call(String),
    /// Anything else that does not start with `.`: not ours, to be quarantined.
    Stray(String),
}

/// One packet as captured; its bytes are in [`LoadedStream::file`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpooledPacket {
    /// µs since the epoch.
    pub at_us: u64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    offset: usize,
    len: usize,
}

/// A stream with its packets.
#[derive(Debug, Clone)]
pub struct LoadedStream {
    pub meta: StreamMeta,
    /// The pcap file's bytes.
    pub file: Vec<u8>,
    pub packets: Vec<SpooledPacket>,
    /// The pcap ended mid-record.
    pub truncated: bool,
    /// Frames that were not IP/UDP.
    pub bad_frames: u64,
}

impl LoadedStream {
    /// The UDP payload (RTP) of `p`.
    pub fn payload(&self, p: &SpooledPacket) -> &[u8] {
        self.file.get(p.offset..p.offset + p.len).unwrap_or(&[])
    }
}

/// A finished call read from the spool.
#[derive(Debug, Clone)]
pub struct LoadedCall {
    pub stem: String,
    pub meta: CallMeta,
    pub streams: Vec<LoadedStream>,
}

impl LoadedCall {
    /// True if any pcap file ended mid-record.
    pub fn truncated(&self) -> bool {
        self.streams.iter().any(|s| s.truncated)
    }
}

impl SpoolReader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SpoolReader { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory to watch for finished calls.
    pub fn metadata_dir(&self) -> PathBuf {
        self.root.join(META_DIR)
    }

    /// Creates the directories the recorder uses.
    pub fn ensure_dirs(&self) -> Result<(), SpoolError> {
        for d in [META_DIR, PCAP_DIR, DONE_DIR, QUARANTINE_DIR] {
            let p = self.root.join(d);
            fs::create_dir_all(&p).map_err(|e| SpoolError::io("cannot create", &p, e))?;
        }
        Ok(())
    }

    /// Classifies a file name seen in `metadata/`; hidden files are ignored.
    pub fn classify(name: &OsStr) -> Option<SpoolEntry> {
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            return None;
        }
        match name.strip_suffix(&format!(".{META_EXT}")) {
            Some(stem) if !stem.is_empty() && safe_file_name(stem) => {
                Some(SpoolEntry::Call(stem.to_owned()))
            }
            _ => Some(SpoolEntry::Stray(name.into_owned())),
        }
    }

    /// Everything waiting in `metadata/`, sorted by name.
    pub fn scan(&self) -> Result<Vec<SpoolEntry>, SpoolError> {
        let dir = self.metadata_dir();
        let rd = fs::read_dir(&dir).map_err(|e| SpoolError::io("cannot list", &dir, e))?;
        let mut out: Vec<SpoolEntry> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter_map(|e| Self::classify(&e.file_name()))
            .collect();
        out.sort();
        Ok(out)
    }

    fn meta_path(&self, stem: &str) -> PathBuf {
        self.root.join(META_DIR).join(format!("{stem}.{META_EXT}"))
    }

    /// True if `stem` was already processed.
    pub fn is_done(&self, stem: &str) -> bool {
        self.root
            .join(DONE_DIR)
            .join(format!("{stem}.{META_EXT}"))
            .exists()
    }

    /// Loads a finished call. [`SpoolError::Gone`] if its metadata is no longer there; [`SpoolError::Corrupt`]
    /// if the metadata or a pcap header is unusable (a pcap that only ends mid-record loads, flagged).
    pub fn load(&self, stem: &str) -> Result<LoadedCall, SpoolError> {
        let path = self.meta_path(stem);
        let raw = match fs::read(&path) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(SpoolError::Gone(stem.into())),
            Err(e) => return Err(SpoolError::io("cannot read", &path, e)),
        };
        let meta = CallMeta::parse(&raw)?;
        let mut streams = Vec::with_capacity(meta.streams.len());
        for sm in &meta.streams {
            let p = self.root.join(PCAP_DIR).join(&sm.pcap);
            let file = match fs::read(&p) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(SpoolError::Corrupt(format!(
                        "pcap file {} is missing",
                        sm.pcap
                    )))
                }
                Err(e) => return Err(SpoolError::io("cannot read", &p, e)),
            };
            let (packets, truncated, bad_frames) = {
                let pcap = parse_pcap(&file)
                    .map_err(|e| SpoolError::Corrupt(format!("{}: {e}", sm.pcap)))?;
                let base = file.as_ptr() as usize;
                let mut packets = Vec::with_capacity(pcap.records.len());
                let mut bad = 0u64;
                for r in &pcap.records {
                    match parse_frame(pcap.link, r.data) {
                        Ok(d) => packets.push(SpooledPacket {
                            at_us: r.at_us,
                            src: d.src,
                            dst: d.dst,
                            offset: d.payload.as_ptr() as usize - base,
                            len: d.payload.len(),
                        }),
                        Err(_) => bad += 1,
                    }
                }
                (packets, pcap.truncated, bad)
            };
            streams.push(LoadedStream {
                meta: sm.clone(),
                file,
                packets,
                truncated,
                bad_frames,
            });
        }
        Ok(LoadedCall {
            stem: stem.into(),
            meta,
            streams,
        })
    }

    /// Records `stem` as processed: its metadata moves to `done/` (the exactly-once marker), then its pcaps
    /// are deleted.
    pub fn mark_done(&self, stem: &str) -> Result<(), SpoolError> {
        let from = self.meta_path(stem);
        let to = self.root.join(DONE_DIR).join(format!("{stem}.{META_EXT}"));
        fs::rename(&from, &to).map_err(|e| SpoolError::io("cannot move", &from, e))?;
        for p in self.pcaps_of(stem) {
            let _ = fs::remove_file(p);
        }
        Ok(())
    }

    /// Moves the metadata and pcaps of `stem` to `quarantine/`, with `<stem>.reason` saying why.
    pub fn quarantine(&self, stem: &str, reason: &str) -> Result<PathBuf, SpoolError> {
        let q = self.root.join(QUARANTINE_DIR);
        fs::create_dir_all(&q).map_err(|e| SpoolError::io("cannot create", &q, e))?;
        for p in self.pcaps_of(stem) {
            if let Some(name) = p.file_name() {
                let _ = fs::rename(&p, q.join(name));
            }
        }
        let reason_path = q.join(format!("{stem}.reason"));
        let _ = fs::write(&reason_path, format!("{reason}\n"));
        let from = self.meta_path(stem);
        let to = q.join(format!("{stem}.{META_EXT}"));
        match fs::rename(&from, &to) {
            Ok(()) => Ok(to),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(to),
            Err(e) => Err(SpoolError::io("cannot quarantine", &from, e)),
        }
    }

    /// Moves a stray file out of `metadata/` into `quarantine/`.
    pub fn quarantine_stray(&self, name: &str, reason: &str) -> Result<PathBuf, SpoolError> {
        let q = self.root.join(QUARANTINE_DIR);
        fs::create_dir_all(&q).map_err(|e| SpoolError::io("cannot create", &q, e))?;
        let from = self.root.join(META_DIR).join(name);
        let to = q.join(name);
        let _ = fs::write(q.join(format!("{name}.reason")), format!("{reason}\n"));
        fs::rename(&from, &to).map_err(|e| SpoolError::io("cannot quarantine", &from, e))?;
        Ok(to)
    }

    /// `pcaps/<stem>-<n>.pcap` files that exist.
    fn pcaps_of(&self, stem: &str) -> Vec<PathBuf> {
        let dir = self.root.join(PCAP_DIR);
        let prefix = format!("{stem}-");
        let Ok(rd) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix(".pcap"))
                    .is_some_and(|idx| !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|e| e.path())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{CodecInfo, PcapFormat, Spool, StreamInfo};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn write_read_done() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), PcapFormat::Eth)
            .unwrap()
            .with_fsync(false);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut w = spool.create_call("c1", "", t0).unwrap();
        let s = w
            .add_stream(StreamInfo {
                tag: "from".into(),
                label: "caller".into(),
                media: "audio".into(),
                codecs: vec![CodecInfo::new(8, "PCMA", 8000)],
            })
            .unwrap();
        let src: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let dst: SocketAddr = "[2001:db8::2]:5000".parse().unwrap();
        let rtp = crate::rtp::build(8, false, 7, 160, 42, &[0xd5; 160]);
        w.append_packet(s, src, dst, &rtp, t0 + Duration::from_millis(20))
            .unwrap();
        let stem = w.stem().to_owned();
        w.finish(t0 + Duration::from_secs(1)).unwrap();

        let r = SpoolReader::new(dir.path());
        r.ensure_dirs().unwrap();
        assert_eq!(r.scan().unwrap(), vec![SpoolEntry::Call(stem.clone())]);
        let call = r.load(&stem).unwrap();
        assert!(!call.truncated());
        let st = &call.streams[0];
        assert_eq!(st.meta.label, "caller");
        assert_eq!(st.packets.len(), 1);
        assert_eq!(st.packets[0].src, src);
        assert_eq!(st.packets[0].at_us, 1_700_000_000_020_000);
        assert_eq!(st.payload(&st.packets[0]), &rtp[..]);

        r.mark_done(&stem).unwrap();
        assert!(r.is_done(&stem));
        assert!(r.scan().unwrap().is_empty());
        assert!(matches!(r.load(&stem), Err(SpoolError::Gone(_))));
        assert_eq!(fs::read_dir(dir.path().join(PCAP_DIR)).unwrap().count(), 0);
    }

    #[test]
    fn classify_names() {
        assert_eq!(
            SpoolReader::classify(OsStr::new("a-1.meta")),
            Some(SpoolEntry::Call("a-1".into()))
        );
        assert_eq!(
            SpoolReader::classify(OsStr::new("junk.txt")),
            Some(SpoolEntry::Stray("junk.txt".into()))
        );
        assert_eq!(SpoolReader::classify(OsStr::new(".hidden")), None);
        assert_eq!(
            SpoolReader::classify(OsStr::new(".meta")),
            None,
            "hidden wins over the extension"
        );
    }

    #[test]
    fn garbage_metadata_is_corrupt_and_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let r = SpoolReader::new(dir.path());
        r.ensure_dirs().unwrap();
        fs::write(
            dir.path().join(META_DIR).join("bad-1.meta"),
            b"\x7fELF garbage",
        )
        .unwrap();
        fs::write(dir.path().join(PCAP_DIR).join("bad-1-0.pcap"), b"nope").unwrap();
        fs::write(dir.path().join(PCAP_DIR).join("bad-1-x.pcap"), b"other").unwrap();
        assert!(matches!(r.load("bad-1"), Err(SpoolError::Corrupt(_))));
        r.quarantine("bad-1", "garbage").unwrap();
        let q = dir.path().join(QUARANTINE_DIR);
        assert!(q.join("bad-1.meta").exists());
        assert!(q.join("bad-1-0.pcap").exists());
        assert!(q.join("bad-1.reason").exists());
        assert!(
            dir.path().join(PCAP_DIR).join("bad-1-x.pcap").exists(),
            "not this call's file"
        );
    }
}
