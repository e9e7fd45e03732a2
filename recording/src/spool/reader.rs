//! The recorder's side: lists finished calls in `metadata/`, loads a call's metadata and packets, and moves
//! a call to `done/` (processed) or `quarantine/` (unusable or over a cap).
//!
//! Every move is made durable (the directories involved are fsynced) before the caller goes on, and every
//! file or directory created here is private (`0600`/`0700`).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::meta::{safe_file_name, CallMeta, StreamMeta};
use super::packet::parse_frame;
use super::pcap::parse_pcap;
use super::{SpoolError, ATTEMPTS_DIR, DONE_DIR, META_DIR, META_EXT, PCAP_DIR, QUARANTINE_DIR};
use crate::fsutil::{
    append_private, create_private, make_private, own_dir, rename, sync_dir, sync_file,
};
use crate::limits::MAX_META_BYTES;

/// Longest stem the recorder takes as a call: the relay's are at most 200 bytes, and `<stem>.reason` must
/// still be a valid file name.
pub const MAX_STEM: usize = 200;

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

/// Why a stream's pcap was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRead {
    /// Its SDP media type is not audio: nothing in it can become audio.
    NotAudio,
    /// Reading it would pass the call's byte cap.
    OverByteCap,
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
    /// Set when the pcap was deliberately not read (then `file` and `packets` are empty).
    pub not_read: Option<NotRead>,
}

impl LoadedStream {
    /// The UDP payload (RTP) of `p`.
    pub fn payload(&self, p: &SpooledPacket) -> &[u8] {
        self.file
            .get(p.offset..p.offset.saturating_add(p.len))
            .unwrap_or(&[])
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

    /// Streams not read because of the byte cap.
    pub fn over_byte_cap(&self) -> usize {
        self.streams
            .iter()
            .filter(|s| s.not_read == Some(NotRead::OverByteCap))
            .count()
    }
}

fn corrupt(msg: String) -> SpoolError {
    SpoolError::Corrupt(msg)
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

    /// Creates the directories the recorder uses (`0700`; existing ones lose group and other access).
    pub fn ensure_dirs(&self) -> Result<(), SpoolError> {
        for d in [META_DIR, PCAP_DIR, DONE_DIR, QUARANTINE_DIR, ATTEMPTS_DIR] {
            let p = self.root.join(d);
            own_dir(&p).map_err(|e| SpoolError::io("cannot create", &p, e))?;
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
            Some(stem) if !stem.is_empty() && stem.len() <= MAX_STEM && safe_file_name(stem) => {
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

    /// Loads a finished call with no byte cap. See [`SpoolReader::load_capped`].
    pub fn load(&self, stem: &str) -> Result<LoadedCall, SpoolError> {
        self.load_capped(stem, u64::MAX)
    }

    /// Loads a finished call, reading at most `max_bytes` of pcap files (streams past it are marked
    /// [`NotRead::OverByteCap`]). [`SpoolError::Gone`] if its metadata is no longer there;
    /// [`SpoolError::Corrupt`] if the metadata (over [`MAX_META_BYTES`], not spool JSON, pcap names that
    /// are not this call's) or a pcap header is unusable. A pcap that only ends mid-record loads, flagged.
    pub fn load_capped(&self, stem: &str, max_bytes: u64) -> Result<LoadedCall, SpoolError> {
        let path = self.meta_path(stem);
        let (file, size) = match open_regular(&path) {
            Ok(x) => x,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(SpoolError::Gone(stem.into())),
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                return Err(corrupt(format!("{stem}.{META_EXT}: {e}")))
            }
            Err(e) => return Err(SpoolError::io("cannot read", &path, e)),
        };
        if size > MAX_META_BYTES {
            return Err(corrupt(format!(
                "metadata file is {size} bytes, over the {MAX_META_BYTES}-byte cap"
            )));
        }
        let raw = read_len(file, size).map_err(|e| SpoolError::io("cannot read", &path, e))?;
        let meta = CallMeta::parse(&raw)?;
        let mut streams = Vec::with_capacity(meta.streams.len());
        let mut budget = max_bytes;
        for sm in &meta.streams {
            // Only this call's own files: a metadata file cannot make the recorder read (and later delete
            // or quarantine) another call's pcaps.
            if sm.pcap != format!("{stem}-{}.pcap", sm.index) {
                return Err(corrupt(format!(
                    "stream {} names pcap {:?}, not one of this call's",
                    sm.index, sm.pcap
                )));
            }
            let p = self.root.join(PCAP_DIR).join(&sm.pcap);
            let (file, len) = match open_regular(&p) {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    return Err(corrupt(format!("pcap file {} is missing", sm.pcap)))
                }
                Err(e) if e.kind() == ErrorKind::InvalidData => {
                    return Err(corrupt(format!("{}: {e}", sm.pcap)))
                }
                Err(e) => return Err(SpoolError::io("cannot read", &p, e)),
            };
            let not_read = if !sm.media.is_empty() && !sm.media.eq_ignore_ascii_case("audio") {
                Some(NotRead::NotAudio)
            } else if len > budget {
                budget = 0;
                Some(NotRead::OverByteCap)
            } else {
                budget -= len;
                None
            };
            if not_read.is_some() {
                streams.push(LoadedStream {
                    meta: sm.clone(),
                    file: Vec::new(),
                    packets: Vec::new(),
                    truncated: false,
                    bad_frames: 0,
                    not_read,
                });
                continue;
            }
            let file = read_len(file, len).map_err(|e| SpoolError::io("cannot read", &p, e))?;
            let (packets, truncated, bad_frames) = {
                let pcap = parse_pcap(&file).map_err(|e| corrupt(format!("{}: {e}", sm.pcap)))?;
                let base = file.as_ptr() as usize;
                let mut packets = Vec::with_capacity(pcap.records.len());
                let mut bad = 0u64;
                for r in &pcap.records {
                    match parse_frame(pcap.link, r.data) {
                        Ok(d) => packets.push(SpooledPacket {
                            at_us: r.at_us,
                            src: d.src,
                            dst: d.dst,
                            offset: (d.payload.as_ptr() as usize).saturating_sub(base),
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
                not_read: None,
            });
        }
        Ok(LoadedCall {
            stem: stem.into(),
            meta,
            streams,
        })
    }

    /// Records `stem` as processed: its metadata moves to `done/` (the exactly-once marker) and that move
    /// is made durable; only then are its pcaps deleted. The caller has made the outputs durable first.
    pub fn mark_done(&self, stem: &str) -> Result<(), SpoolError> {
        let from = self.meta_path(stem);
        let done = self.root.join(DONE_DIR);
        let to = done.join(format!("{stem}.{META_EXT}"));
        rename(&from, &to).map_err(|e| SpoolError::io("cannot move", &from, e))?;
        self.sync(&[DONE_DIR, META_DIR])?;
        for p in self.pcaps_of(stem) {
            let _ = fs::remove_file(p);
        }
        self.sync(&[PCAP_DIR])?;
        self.end_attempt(stem);
        Ok(())
    }

    /// Moves the metadata and pcaps of `stem` to `quarantine/`, and appends `reason` to `<stem>.reason`
    /// (a call quarantined again, after an operator moved it back, keeps its history). The metadata moves
    /// last, so a crash in between leaves the call to be quarantined again, never half processed.
    pub fn quarantine(&self, stem: &str, reason: &str) -> Result<PathBuf, SpoolError> {
        let q = self.root.join(QUARANTINE_DIR);
        own_dir(&q).map_err(|e| SpoolError::io("cannot create", &q, e))?;
        self.write_reason(&reason_name(stem), reason)?;
        for p in self.pcaps_of(stem) {
            if let Some(name) = p.file_name() {
                let to = q.join(name);
                if rename(&p, &to).is_ok() {
                    let _ = make_private(&to);
                }
            }
        }
        let from = self.meta_path(stem);
        let to = q.join(format!("{stem}.{META_EXT}"));
        match rename(&from, &to) {
            Ok(()) => {
                let _ = make_private(&to);
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(SpoolError::io("cannot quarantine", &from, e)),
        }
        self.sync(&[QUARANTINE_DIR, PCAP_DIR, META_DIR])?;
        self.end_attempt(stem);
        Ok(to)
    }

    /// Moves a stray file out of `metadata/` into `quarantine/`.
    pub fn quarantine_stray(&self, name: &str, reason: &str) -> Result<PathBuf, SpoolError> {
        let q = self.root.join(QUARANTINE_DIR);
        own_dir(&q).map_err(|e| SpoolError::io("cannot create", &q, e))?;
        let from = self.root.join(META_DIR).join(name);
        let to = q.join(name);
        self.write_reason(&reason_name(name), &format!("{name:?}: {reason}"))?;
        rename(&from, &to).map_err(|e| SpoolError::io("cannot quarantine", &from, e))?;
        let _ = make_private(&to);
        self.sync(&[QUARANTINE_DIR, META_DIR])?;
        Ok(to)
    }

    /// Where the reasons of a quarantined `name` are kept.
    pub fn reason_path(&self, name: &str) -> PathBuf {
        self.root.join(QUARANTINE_DIR).join(reason_name(name))
    }

    fn write_reason(&self, file: &str, reason: &str) -> Result<(), SpoolError> {
        let p = self.root.join(QUARANTINE_DIR).join(file);
        let line: String = reason.chars().filter(|c| *c != '\n').collect();
        append_private(&p)
            .and_then(|mut f| {
                f.write_all(format!("{line}\n").as_bytes())?;
                sync_file(&f, &p)
            })
            .map_err(|e| SpoolError::io("cannot write", &p, e))
    }

    fn sync(&self, dirs: &[&str]) -> Result<(), SpoolError> {
        for d in dirs {
            let p = self.root.join(d);
            sync_dir(&p).map_err(|e| SpoolError::io("cannot sync", &p, e))?;
        }
        Ok(())
    }

    /// Notes that processing of `stem` starts, and returns how many earlier attempts started and never
    /// ended (the recorder was killed, ran out of memory or crashed in the middle). The note is a file in
    /// `attempts/`, so it survives the process; it is not fsynced, as only a power loss (which is no crash
    /// loop) would lose it.
    pub fn begin_attempt(&self, stem: &str) -> Result<u32, SpoolError> {
        let p = self.root.join(ATTEMPTS_DIR).join(stem);
        let before: u32 = match fs::read(&p) {
            Ok(b) => String::from_utf8_lossy(&b).trim().parse().unwrap_or(0),
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => return Err(SpoolError::io("cannot read", &p, e)),
        };
        create_private(&p)
            .and_then(|mut f| f.write_all(format!("{}\n", before.saturating_add(1)).as_bytes()))
            .map_err(|e| SpoolError::io("cannot write", &p, e))?;
        Ok(before)
    }

    /// Notes that an attempt at `stem` ended (whatever its result): it was no crash.
    pub fn end_attempt(&self, stem: &str) {
        let _ = fs::remove_file(self.root.join(ATTEMPTS_DIR).join(stem));
    }

    /// Removes attempt notes of calls no longer waiting in `metadata/` (the recorder stopped between
    /// moving a call and removing its note).
    pub fn sweep_attempts(&self) {
        let dir = self.root.join(ATTEMPTS_DIR);
        let Ok(rd) = fs::read_dir(&dir) else {
            return;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let name = e.file_name();
            let stale = match name.to_str() {
                Some(stem) => !self.meta_path(stem).exists(),
                None => true,
            };
            if stale {
                let _ = fs::remove_file(e.path());
            }
        }
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

/// Opens `path` if it is a regular file, with its size. A symlink, FIFO, device or directory is
/// `InvalidData`: reading a FIFO would block a worker for ever, and a link could point anywhere. The check
/// is made on the opened file, so nothing can be swapped in between.
fn open_regular(path: &Path) -> std::io::Result<(File, u64)> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::new(ErrorKind::InvalidData, "a symbolic link")
            } else {
                e
            }
        })?;
    let m = f.metadata()?;
    if !m.file_type().is_file() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok((f, m.len()))
}

/// Reads the first `len` bytes of `f` (a file that grew since its size was taken is not read further).
fn read_len(f: File, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// `<name>.reason`, with `name` shortened (on a character boundary) so the result is a valid file name.
fn reason_name(name: &str) -> String {
    let mut cut = name.len().min(255 - ".reason".len());
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}.reason", &name[..cut])
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

    fn finished_call(root: &Path, call_id: &str, packets: usize) -> String {
        let spool = Spool::open(root, PcapFormat::Raw)
            .unwrap()
            .with_fsync(false);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut w = spool.create_call(call_id, "", t0).unwrap();
        let s = w
            .add_stream(StreamInfo {
                tag: "a".into(),
                media: "audio".into(),
                codecs: vec![CodecInfo::new(0, "PCMU", 8000)],
                ..Default::default()
            })
            .unwrap();
        let v = w
            .add_stream(StreamInfo {
                tag: "a".into(),
                media: "video".into(),
                ..Default::default()
            })
            .unwrap();
        let src: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        for k in 0..packets {
            let rtp = crate::rtp::build(0, false, k as u16, k as u32 * 160, 1, &[0xff; 160]);
            w.append_packet(s, src, src, &rtp, t0).unwrap();
            w.append_packet(v, src, src, &rtp, t0).unwrap();
        }
        let stem = w.stem().to_owned();
        w.finish(t0).unwrap();
        stem
    }

    fn reader(dir: &Path) -> SpoolReader {
        let r = SpoolReader::new(dir);
        r.ensure_dirs().unwrap();
        r
    }

    #[test]
    fn attempts_that_never_end_are_counted_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let stem = finished_call(dir.path(), "c", 1);
        let r = reader(dir.path());
        assert_eq!(r.begin_attempt(&stem).unwrap(), 0);
        // The process died: a new reader (a restarted recorder) sees the unfinished attempt.
        let r = reader(dir.path());
        assert_eq!(r.begin_attempt(&stem).unwrap(), 1);
        assert_eq!(r.begin_attempt(&stem).unwrap(), 2);
        r.end_attempt(&stem);
        assert_eq!(
            r.begin_attempt(&stem).unwrap(),
            0,
            "an attempt that ended is no crash"
        );
        // A note whose call left the spool is swept at start; one whose call waits is kept.
        fs::write(dir.path().join(ATTEMPTS_DIR).join("gone-1"), b"2\n").unwrap();
        r.sweep_attempts();
        assert!(!dir.path().join(ATTEMPTS_DIR).join("gone-1").exists());
        assert!(dir.path().join(ATTEMPTS_DIR).join(&stem).exists());
        r.mark_done(&stem).unwrap();
        assert!(!dir.path().join(ATTEMPTS_DIR).join(&stem).exists());
    }

    #[test]
    fn metadata_cannot_name_another_calls_pcap() {
        let dir = tempfile::tempdir().unwrap();
        let victim = finished_call(dir.path(), "victim", 1);
        let stem = finished_call(dir.path(), "thief", 1);
        let mp = dir.path().join(META_DIR).join(format!("{stem}.meta"));
        let mut meta = CallMeta::parse(&fs::read(&mp).unwrap()).unwrap();
        meta.streams[0].pcap = format!("{victim}-0.pcap");
        fs::write(&mp, serde_json::to_vec(&meta).unwrap()).unwrap();
        let r = reader(dir.path());
        let e = r.load(&stem).unwrap_err();
        assert!(
            matches!(e, SpoolError::Corrupt(ref m) if m.contains("not one of this call's")),
            "{e}"
        );
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let stem = finished_call(dir.path(), "c", 1);
        let r = reader(dir.path());
        // A FIFO in place of the pcap would block a worker for ever.
        let pcap = dir.path().join(PCAP_DIR).join(format!("{stem}-0.pcap"));
        fs::remove_file(&pcap).unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(&pcap)
            .status()
            .unwrap();
        assert!(st.success());
        assert!(
            matches!(r.load(&stem), Err(SpoolError::Corrupt(m)) if m.contains("not a regular file"))
        );
        // A symlink as metadata could point anywhere.
        let meta = dir.path().join(META_DIR).join(format!("{stem}.meta"));
        let real = dir.path().join("real.meta");
        fs::rename(&meta, &real).unwrap();
        std::os::unix::fs::symlink(&real, &meta).unwrap();
        assert!(
            matches!(r.load(&stem), Err(SpoolError::Corrupt(m)) if m.contains("symbolic link"))
        );
    }

    #[test]
    fn oversized_metadata_is_corrupt_and_pcaps_past_the_byte_cap_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let stem = finished_call(dir.path(), "c", 20);
        let r = reader(dir.path());
        let call = r.load_capped(&stem, 100).unwrap();
        assert_eq!(call.streams[0].not_read, Some(NotRead::OverByteCap));
        assert!(call.streams[0].file.is_empty());
        assert_eq!(
            call.streams[1].not_read,
            Some(NotRead::NotAudio),
            "video is never read"
        );
        assert_eq!(call.over_byte_cap(), 1);
        let call = r.load_capped(&stem, 1 << 20).unwrap();
        assert_eq!(call.streams[0].not_read, None);
        assert_eq!(call.streams[0].packets.len(), 20);

        let mp = dir.path().join(META_DIR).join(format!("{stem}.meta"));
        let mut big = fs::read(&mp).unwrap();
        big.resize(MAX_META_BYTES as usize + 1, b' ');
        fs::write(&mp, big).unwrap();
        assert!(matches!(r.load(&stem), Err(SpoolError::Corrupt(m)) if m.contains("cap")));
    }

    #[test]
    fn quarantine_keeps_every_reason_and_long_names_fit() {
        let dir = tempfile::tempdir().unwrap();
        let stem = finished_call(dir.path(), "c", 1);
        let r = reader(dir.path());
        r.quarantine(&stem, "first\nreason").unwrap();
        let q = dir.path().join(QUARANTINE_DIR);
        // An operator moves it back; it is quarantined again.
        fs::rename(
            q.join(format!("{stem}.meta")),
            dir.path().join(META_DIR).join(format!("{stem}.meta")),
        )
        .unwrap();
        r.quarantine(&stem, "second").unwrap();
        let reasons = fs::read_to_string(r.reason_path(&stem)).unwrap();
        assert_eq!(reasons, "firstreason\nsecond\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&r.reason_path(&stem)), 0o600);
        assert_eq!(mode(&q), 0o700);

        let long = format!("{}.meta", "x".repeat(250));
        assert_eq!(
            SpoolReader::classify(OsStr::new(&long)),
            Some(SpoolEntry::Stray(long.clone()))
        );
        fs::write(dir.path().join(META_DIR).join(&long), b"x").unwrap();
        r.quarantine_stray(&long, "too long").unwrap();
        assert!(q.join(&long).exists());
        let rp = r.reason_path(&long);
        assert_eq!(rp.file_name().unwrap().len(), 255);
        assert!(fs::read_to_string(rp).unwrap().contains("too long"));
    }

    #[test]
    fn done_is_durable_before_the_pcaps_go() {
        use crate::fsutil::{take_trace, trace_pos};
        let dir = tempfile::tempdir().unwrap();
        let stem = finished_call(dir.path(), "c", 1);
        let r = reader(dir.path());
        let _ = take_trace();
        r.mark_done(&stem).unwrap();
        let t = take_trace();
        let moved = trace_pos(&t, "rename", &format!("{DONE_DIR}/{stem}.meta"));
        let done = trace_pos(&t, "syncdir", &format!("/{DONE_DIR}"));
        let meta = trace_pos(&t, "syncdir", &format!("/{META_DIR}"));
        let pcaps = trace_pos(&t, "syncdir", &format!("/{PCAP_DIR}"));
        assert!(
            moved < done && moved < meta && done < pcaps && meta < pcaps,
            "{t:#?}"
        );
        assert_eq!(fs::read_dir(dir.path().join(PCAP_DIR)).unwrap().count(), 0);
    }
}
