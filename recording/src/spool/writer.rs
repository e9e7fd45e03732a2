//! The relay's side: [`Spool`] creates calls, [`SpoolWriter`] appends packets to a call's pcap files in `tmp/`
//! and, on [`SpoolWriter::finish`], moves the pcaps to `pcaps/` and then the metadata to `metadata/`.
//!
//! The writer does blocking file I/O: the relay runs it on its own thread behind a bounded queue, never on
//! the packet path. Time is always passed in.
//!
//! Files are `0600` and directories `0700`. Appending a packet never syncs; [`SpoolWriter::finish`] makes
//! the call durable in protocol order: each pcap is fsynced, renamed into `pcaps/`, and `pcaps/` fsynced;
//! only then is the metadata written, fsynced, renamed into `metadata/` (the "finished" signal the recorder
//! acts on) and `metadata/` fsynced. A power loss at any point leaves either no finished call or a
//! finished call with all its pcaps.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::meta::{CallMeta, CodecInfo, StreamMeta, SPOOL_FORMAT, SPOOL_VERSION};
use super::packet::build_frame;
use super::pcap::{PcapFormat, PcapWriter};
use super::{SpoolError, META_DIR, META_EXT, PCAP_DIR, TMP_DIR};
use crate::fsutil::{create_dir_private, create_private, own_dir, rename, sync_dir, sync_file};
use crate::time::{iso8601, unix_us};

/// A spool directory opened for writing.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    format: PcapFormat,
    fsync: bool,
}

/// Handle of a stream within one [`SpoolWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId(pub u32);

/// What the relay knows about a stream when recording starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// Tag of the sending party.
    pub tag: String,
    /// Label of the sending party, if any.
    pub label: String,
    /// SDP media type, e.g. `audio`.
    pub media: String,
    pub codecs: Vec<CodecInfo>,
}

struct StreamFile {
    meta: StreamMeta,
    tmp: PathBuf,
    pcap: PcapWriter<BufWriter<File>>,
}

/// One call being recorded.
pub struct SpoolWriter {
    root: PathBuf,
    format: PcapFormat,
    fsync: bool,
    stem: String,
    meta: CallMeta,
    streams: Vec<StreamFile>,
    frame: Vec<u8>,
    closed: bool,
}

impl Spool {
    /// Opens (creating if needed) the spool at `root` with `tmp/`, `pcaps/` and `metadata/`. A missing
    /// root is created `0700`; the subdirectories are this program's and are made `0700` if they are not.
    pub fn open(root: impl Into<PathBuf>, format: PcapFormat) -> Result<Self, SpoolError> {
        let root = root.into();
        create_dir_private(&root).map_err(|e| SpoolError::io("cannot create", &root, e))?;
        for d in [TMP_DIR, PCAP_DIR, META_DIR] {
            let p = root.join(d);
            own_dir(&p).map_err(|e| SpoolError::io("cannot create", &p, e))?;
        }
        Ok(Spool {
            root,
            format,
            fsync: true,
        })
    }

    /// Whether `finish` fsyncs files and directories (default on; off only for tests and benchmarks).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts recording `call_id` at `now`; `metadata` is the NG metadata string (may be empty).
    pub fn create_call(
        &self,
        call_id: &str,
        metadata: &str,
        now: SystemTime,
    ) -> Result<SpoolWriter, SpoolError> {
        let random_tag = random_hex(call_id, now);
        let stem = format!("{}-{random_tag}", escape_call_id(call_id));
        let start = unix_us(now);
        Ok(SpoolWriter {
            root: self.root.clone(),
            format: self.format,
            fsync: self.fsync,
            meta: CallMeta {
                format: SPOOL_FORMAT.into(),
                version: SPOOL_VERSION,
                call_id: call_id.into(),
                random_tag,
                metadata: metadata.into(),
                pcap_format: self.format,
                start_time_us: start,
                start_time: iso8601(start),
                end_time_us: None,
                end_time: None,
                streams: Vec::new(),
                finished: false,
            },
            stem,
            streams: Vec::new(),
            frame: Vec::with_capacity(2048),
            closed: false,
        })
    }
}

impl SpoolWriter {
    /// `<escaped call-id>-<random hex>`: the name shared by this call's files.
    pub fn stem(&self) -> &str {
        &self.stem
    }

    /// The random part of the stem.
    pub fn random_tag(&self) -> &str {
        &self.meta.random_tag
    }

    /// Replaces the NG metadata string (a later offer/answer may change it).
    pub fn set_metadata(&mut self, metadata: &str) {
        self.meta.metadata = metadata.into();
    }

    /// Adds a stream and creates its pcap file in `tmp/`.
    pub fn add_stream(&mut self, info: StreamInfo) -> Result<StreamId, SpoolError> {
        let index =
            u32::try_from(self.streams.len()).map_err(|_| SpoolError::NoStream(u32::MAX))?;
        let name = format!("{}-{index}.pcap", self.stem);
        let tmp = self.root.join(TMP_DIR).join(&name);
        let file = create_private(&tmp).map_err(|e| SpoolError::io("cannot create", &tmp, e))?;
        let pcap = PcapWriter::new(BufWriter::with_capacity(64 * 1024, file), self.format)
            .map_err(|e| SpoolError::io("cannot write", &tmp, e))?;
        self.streams.push(StreamFile {
            meta: StreamMeta {
                index,
                tag: info.tag,
                label: info.label,
                media: info.media,
                pcap: name,
                codecs: info.codecs,
                packets: 0,
                dropped: 0,
            },
            tmp,
            pcap,
        });
        Ok(StreamId(index))
    }

    fn stream(&mut self, id: StreamId) -> Result<&mut StreamFile, SpoolError> {
        self.streams
            .get_mut(id.0 as usize)
            .ok_or(SpoolError::NoStream(id.0))
    }

    /// Sets a stream's codecs (after a re-offer); payload types already known are replaced.
    pub fn set_codecs(&mut self, id: StreamId, codecs: &[CodecInfo]) -> Result<(), SpoolError> {
        let s = self.stream(id)?;
        for c in codecs {
            s.meta
                .codecs
                .retain(|old| old.payload_type != c.payload_type);
            s.meta.codecs.push(c.clone());
        }
        Ok(())
    }

    /// Sets a stream's label.
    pub fn set_label(&mut self, id: StreamId, label: &str) -> Result<(), SpoolError> {
        self.stream(id)?.meta.label = label.into();
        Ok(())
    }

    /// Appends one RTP packet (`rtp` is the whole UDP payload) that `src` sent to `dst`, received at `at`.
    pub fn append_packet(
        &mut self,
        id: StreamId,
        src: SocketAddr,
        dst: SocketAddr,
        rtp: &[u8],
        at: SystemTime,
    ) -> Result<(), SpoolError> {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        build_frame(src, dst, rtp, self.format == PcapFormat::Eth, &mut frame);
        let res = self.stream(id).and_then(|s| {
            s.pcap
                .write(unix_us(at), &frame)
                .map_err(|e| SpoolError::io("cannot write", &s.tmp, e))?;
            s.meta.packets += 1;
            Ok(())
        });
        self.frame = frame;
        res
    }

    /// Counts packets of a stream that the relay dropped instead of spooling (full queue).
    pub fn count_dropped(&mut self, id: StreamId, n: u64) -> Result<(), SpoolError> {
        let s = self.stream(id)?;
        s.meta.dropped = s.meta.dropped.saturating_add(n);
        Ok(())
    }

    /// Ends the call at `end`: flushes the pcaps and moves them to `pcaps/`, then writes the metadata with the
    /// end marker and moves it into `metadata/`. Returns the final metadata path.
    pub fn finish(mut self, end: SystemTime) -> Result<PathBuf, SpoolError> {
        self.closed = true;
        let end_us = unix_us(end).max(self.meta.start_time_us);
        let streams = std::mem::take(&mut self.streams);
        let mut moves = Vec::with_capacity(streams.len());
        for s in streams {
            let mut w = s.pcap.into_inner();
            w.flush()
                .map_err(|e| SpoolError::io("cannot write", &s.tmp, e))?;
            let file = w
                .into_inner()
                .map_err(|e| SpoolError::io("cannot write", &s.tmp, e.into_error()))?;
            if self.fsync {
                sync_file(&file, &s.tmp).map_err(|e| SpoolError::io("cannot sync", &s.tmp, e))?;
            }
            let dest = self.root.join(PCAP_DIR).join(&s.meta.pcap);
            moves.push((s.tmp, dest));
            self.meta.streams.push(s.meta);
        }
        for (from, to) in &moves {
            rename(from, to).map_err(|e| SpoolError::io("cannot move", from, e))?;
        }
        // The pcaps' new names must be durable before the metadata says the call is complete.
        self.sync_dirs(&[PCAP_DIR])?;
        self.meta.end_time_us = Some(end_us);
        self.meta.end_time = Some(iso8601(end_us));
        self.meta.finished = true;
        let name = format!("{}.{META_EXT}", self.stem);
        let tmp = self.root.join(TMP_DIR).join(&name);
        let dest = self.root.join(META_DIR).join(&name);
        let json = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| SpoolError::Corrupt(format!("cannot encode metadata: {e}")))?;
        write_file(&tmp, &json, self.fsync)?;
        rename(&tmp, &dest).map_err(|e| SpoolError::io("cannot move", &tmp, e))?;
        // The finished call is acknowledged once this returns; `tmp/` too, so no stale name comes back.
        self.sync_dirs(&[META_DIR, TMP_DIR])?;
        Ok(dest)
    }

    fn sync_dirs(&self, dirs: &[&str]) -> Result<(), SpoolError> {
        if !self.fsync {
            return Ok(());
        }
        for d in dirs {
            let p = self.root.join(d);
            sync_dir(&p).map_err(|e| SpoolError::io("cannot sync", &p, e))?;
        }
        Ok(())
    }

    /// Abandons the call and removes its files from `tmp/`.
    pub fn discard(mut self) {
        self.remove_tmp();
    }

    fn remove_tmp(&mut self) {
        self.closed = true;
        for s in self.streams.drain(..) {
            drop(s.pcap);
            let _ = fs::remove_file(&s.tmp);
        }
    }
}

impl Drop for SpoolWriter {
    /// A writer dropped without `finish` leaves nothing behind for the recorder to pick up.
    fn drop(&mut self) {
        if !self.closed {
            self.remove_tmp();
        }
    }
}

fn write_file(path: &Path, data: &[u8], fsync: bool) -> Result<(), SpoolError> {
    let mut f = create_private(path).map_err(|e| SpoolError::io("cannot create", path, e))?;
    f.write_all(data)
        .map_err(|e| SpoolError::io("cannot write", path, e))?;
    if fsync {
        sync_file(&f, path).map_err(|e| SpoolError::io("cannot sync", path, e))?;
    }
    Ok(())
}

/// Percent-encodes everything but `A-Z a-z 0-9 - . _ ~`, and caps the length so the file name stays short.
pub(crate) fn escape_call_id(call_id: &str) -> String {
    let mut out = String::with_capacity(call_id.len());
    for b in call_id.bytes() {
        if out.len() >= 180 {
            break;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// 16 hex digits, unique per call in practice (not a secret): std's random hasher keys, the call-id, the
/// time and a process-wide counter.
fn random_hex(call_id: &str, now: SystemTime) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write(call_id.as_bytes());
    h.write_u64(unix_us(now));
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn escapes_call_ids() {
        assert_eq!(
            escape_call_id("abc-123@host.example"),
            "abc-123%40host.example"
        );
        assert_eq!(escape_call_id("../x/y"), "_..%2Fx%2Fy");
        assert_eq!(escape_call_id(""), "_");
        assert!(escape_call_id(&"a".repeat(1000)).len() <= 200);
    }

    #[test]
    fn unfinished_call_is_invisible_then_finished_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), PcapFormat::Raw)
            .unwrap()
            .with_fsync(false);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut w = spool.create_call("call/1", "k:v", t0).unwrap();
        let s = w
            .add_stream(StreamInfo {
                tag: "a".into(),
                codecs: vec![CodecInfo::new(0, "PCMU", 8000)],
                ..Default::default()
            })
            .unwrap();
        let src: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let dst: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        w.append_packet(
            s,
            src,
            dst,
            &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff],
            t0,
        )
        .unwrap();
        assert!(w.append_packet(StreamId(9), src, dst, &[], t0).is_err());
        let meta_dir = dir.path().join(META_DIR);
        assert_eq!(fs::read_dir(&meta_dir).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir.path().join(PCAP_DIR)).unwrap().count(), 0);
        let stem = w.stem().to_owned();
        assert!(stem.starts_with("call%2F1-"));
        let path = w.finish(t0 + Duration::from_secs(3)).unwrap();
        assert_eq!(path, meta_dir.join(format!("{stem}.meta")));
        let meta = CallMeta::parse(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(meta.call_id, "call/1");
        assert_eq!(meta.streams[0].packets, 1);
        assert_eq!(meta.end_time_us, Some(1_700_000_003_000_000));
        assert!(dir
            .path()
            .join(PCAP_DIR)
            .join(format!("{stem}-0.pcap"))
            .exists());
        assert_eq!(fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
    }

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_private_and_finish_is_durable_in_protocol_order() {
        use crate::fsutil::{take_trace, trace_pos};
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("spool");
        let spool = Spool::open(&root, PcapFormat::Raw).unwrap();
        // As an older version left it: world-readable. Opening again tightens it.
        fs::set_permissions(
            root.join(META_DIR),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let spool = Spool::open(spool.root(), PcapFormat::Raw).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut w = spool.create_call("c@x", "", t0).unwrap();
        let s = w.add_stream(StreamInfo::default()).unwrap();
        let src: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        w.append_packet(s, src, src, &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], t0)
            .unwrap();
        let stem = w.stem().to_owned();
        assert_eq!(
            mode(&root.join(TMP_DIR).join(format!("{stem}-0.pcap"))),
            0o600
        );
        let _ = take_trace();
        let meta = w.finish(t0).unwrap();
        let t = take_trace();
        assert!(t.iter().all(|op| !op.contains("append")), "{t:?}");
        let pcap_sync = trace_pos(&t, "sync ", &format!("{TMP_DIR}/{stem}-0.pcap"));
        let pcap_rename = trace_pos(&t, "rename", &format!("{PCAP_DIR}/{stem}-0.pcap"));
        let pcaps_synced = trace_pos(&t, "syncdir", &format!("/{PCAP_DIR}"));
        let meta_sync = trace_pos(&t, "sync ", &format!("{TMP_DIR}/{stem}.meta"));
        let meta_rename = trace_pos(&t, "rename", &format!("{META_DIR}/{stem}.meta"));
        let meta_synced = trace_pos(&t, "syncdir", &format!("/{META_DIR}"));
        assert!(pcap_sync < pcap_rename, "pcap data before its name: {t:#?}");
        assert!(
            pcap_rename < pcaps_synced && pcaps_synced < meta_rename,
            "pcaps durable before the call is marked finished: {t:#?}"
        );
        assert!(
            meta_sync < meta_rename && meta_rename < meta_synced,
            "{t:#?}"
        );
        assert_eq!(mode(&root), 0o700);
        for d in [TMP_DIR, PCAP_DIR, META_DIR] {
            assert_eq!(mode(&root.join(d)), 0o700, "{d}");
        }
        assert_eq!(mode(&meta), 0o600);
        assert_eq!(
            mode(&root.join(PCAP_DIR).join(format!("{stem}-0.pcap"))),
            0o600
        );
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), PcapFormat::Eth).unwrap();
        let mut w = spool.create_call("x", "", SystemTime::UNIX_EPOCH).unwrap();
        w.add_stream(StreamInfo::default()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 1);
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
    }
}
