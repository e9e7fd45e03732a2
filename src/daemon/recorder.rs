//! The spool writer thread: it owns one [`SpoolWriter`] per recorded call and is the only place
//! that touches the disk for recording. Workers reach it through a bounded queue of copied
//! packets ([`RecordTap`]); the control thread through an unbounded queue of [`RecordCtl`]s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use crossbeam_channel::{select, Receiver, Sender};
use rtprelay_recording::spool::{PcapFormat, Spool, SpoolError, SpoolWriter, StreamId};

use crate::session::actions::RecordStream;
use crate::worker::{RecordTap, TapPacket};

/// Packets that may wait for the disk; beyond this, recording packets are dropped and counted.
pub const QUEUE: usize = 16 * 1024;

/// What the control thread tells the writer.
#[derive(Debug)]
pub enum RecordCtl {
    /// Open the call's entry if needed, add streams it lacks, refresh the rest.
    Record {
        call_id: String,
        metadata: String,
        streams: Vec<RecordStream>,
    },
    /// Finish the call's entry.
    End { call_id: String },
    /// A new tap on `flow` counts its dropped packets here.
    Drops { flow: u64, counter: Arc<AtomicU64> },
}

/// Why recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// `--recording-method` other than `pcap`.
    #[error("unsupported --recording-method '{0}' (only pcap is supported)")]
    Method(String),
    /// `--recording-format` other than `raw`/`eth`.
    #[error("unsupported --recording-format '{0}' (raw or eth)")]
    Format(String),
    #[error("cannot open the recording spool: {0}")]
    Spool(#[from] SpoolError),
    #[error("cannot start the recording thread: {0}")]
    Thread(std::io::Error),
}

/// Handle of the writer thread, held by the control state.
pub struct Recorder {
    ctl: Option<Sender<RecordCtl>>,
    /// The template of every tap: the queue and the global drop counter.
    tap: RecordTap,
    join: Option<JoinHandle<()>>,
}

/// `--recording-format` → pcap link type.
pub fn pcap_format(name: Option<&str>) -> Result<PcapFormat, RecorderError> {
    match name.unwrap_or("raw") {
        "raw" => Ok(PcapFormat::Raw),
        "eth" => Ok(PcapFormat::Eth),
        other => Err(RecorderError::Format(other.to_owned())),
    }
}

impl Recorder {
    /// Opens the spool at `dir` and starts the writer thread.
    pub fn start(
        dir: &Path,
        method: Option<&str>,
        format: Option<&str>,
    ) -> Result<Recorder, RecorderError> {
        match method.unwrap_or("pcap") {
            "pcap" => {}
            other => return Err(RecorderError::Method(other.to_owned())),
        }
        let spool = Spool::open(dir, pcap_format(format)?)?;
        Self::with_spool(spool, QUEUE)
    }

    /// Starts the writer on an opened spool with a queue of `queue` packets.
    pub fn with_spool(spool: Spool, queue: usize) -> Result<Recorder, RecorderError> {
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (pkt_tx, pkt_rx) = crossbeam_channel::bounded(queue.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let mut w = Writer {
            spool,
            calls: HashMap::new(),
            flows: HashMap::new(),
            drops: HashMap::new(),
            lost: 0,
        };
        let join = std::thread::Builder::new()
            .name("rtprelay-rec".into())
            .spawn(move || w.run(&ctl_rx, &pkt_rx))
            .map_err(RecorderError::Thread)?;
        Ok(Recorder {
            ctl: Some(ctl_tx),
            tap: RecordTap {
                tx: pkt_tx,
                dropped,
                stream_dropped: Arc::default(),
            },
            join: Some(join),
        })
    }

    /// The tap a recorded flow gets, with its own drop counter, which the writer learns first.
    pub fn tap(&self, flow: u64) -> RecordTap {
        let mut t = self.tap.clone();
        t.stream_dropped = Arc::default();
        self.send(RecordCtl::Drops {
            flow,
            counter: t.stream_dropped.clone(),
        });
        t
    }

    /// Hands work to the writer (never blocks: the queue is unbounded and small items).
    pub fn send(&self, msg: RecordCtl) {
        if let Some(tx) = &self.ctl {
            if tx.send(msg).is_err() {
                tracing::error!("recording thread is gone");
            }
        }
    }

    /// Packets not recorded because the queue was full (`recording_dropped`).
    pub fn dropped(&self) -> u64 {
        self.tap.dropped.load(Relaxed)
    }
}

impl Drop for Recorder {
    /// Finishes every open entry (the relay is stopping, so its calls end) and waits for that.
    fn drop(&mut self) {
        self.ctl = None;
        if let Some(j) = self.join.take() {
            if j.join().is_err() {
                tracing::error!("recording thread panicked");
            }
        }
    }
}

struct Call {
    writer: SpoolWriter,
    streams: HashMap<u64, StreamId>,
}

struct Flow {
    call: String,
    stream: StreamId,
    local: SocketAddr,
}

struct Writer {
    spool: Spool,
    calls: HashMap<String, Call>,
    flows: HashMap<u64, Flow>,
    /// Drop counters of every tap handed out per flow (a flow may be tapped several times).
    drops: HashMap<u64, Vec<Arc<AtomicU64>>>,
    /// Packets that came for no open entry (after a stop) or failed to write.
    lost: u64,
}

impl Writer {
    fn run(&mut self, ctl: &Receiver<RecordCtl>, pkts: &Receiver<TapPacket>) {
        loop {
            select! {
                recv(ctl) -> msg => match msg {
                    Ok(m) => self.control(m, pkts),
                    Err(_) => break,
                },
                recv(pkts) -> p => {
                    // Control messages sent before this packet was copied come first: the
                    // entry of a call that just started recording exists before its packets.
                    // An end, though, comes after it (it is older than anything still queued).
                    let mut pending = p.ok();
                    while let Ok(m) = ctl.try_recv() {
                        if matches!(m, RecordCtl::End { .. }) {
                            if let Some(p) = pending.take() {
                                self.packet(p);
                            }
                        }
                        self.control(m, pkts);
                    }
                    if let Some(p) = pending {
                        self.packet(p);
                    }
                }
            }
        }
        while let Ok(p) = pkts.try_recv() {
            self.packet(p);
        }
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            self.end(&id);
        }
        if self.lost > 0 {
            tracing::info!(lost = self.lost, "recording packets without an open call");
        }
    }

    fn control(&mut self, msg: RecordCtl, pkts: &Receiver<TapPacket>) {
        match msg {
            RecordCtl::Record {
                call_id,
                metadata,
                streams,
            } => self.record(call_id, &metadata, streams),
            RecordCtl::End { call_id } => {
                // Packets already copied belong to the call: write them before finishing.
                while let Ok(p) = pkts.try_recv() {
                    self.packet(p);
                }
                self.end(&call_id);
            }
            RecordCtl::Drops { flow, counter } => self.drops.entry(flow).or_default().push(counter),
        }
    }

    fn record(&mut self, call_id: String, metadata: &str, streams: Vec<RecordStream>) {
        let call = match self.calls.entry(call_id.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                match self
                    .spool
                    .create_call(&call_id, metadata, SystemTime::now())
                {
                    Ok(writer) => {
                        tracing::info!(call_id = ?call_id, stem = writer.stem(), "recording started");
                        v.insert(Call {
                            writer,
                            streams: HashMap::new(),
                        })
                    }
                    Err(e) => {
                        tracing::error!(call_id = ?call_id, error = %e, "cannot start recording");
                        return;
                    }
                }
            }
        };
        call.writer.set_metadata(metadata);
        for s in streams {
            let flow = s.flow.0;
            if let Some(&id) = call.streams.get(&flow) {
                let _ = call.writer.set_codecs(id, &s.info.codecs);
                let _ = call.writer.set_label(id, &s.info.label);
                continue;
            }
            match call.writer.add_stream(s.info) {
                Ok(id) => {
                    call.streams.insert(flow, id);
                    self.flows.insert(
                        flow,
                        Flow {
                            call: call_id.clone(),
                            stream: id,
                            local: s.local,
                        },
                    );
                }
                Err(e) => {
                    tracing::error!(call_id = ?call_id, error = %e, "cannot add a recorded stream")
                }
            }
        }
    }

    fn packet(&mut self, p: TapPacket) {
        let Some(f) = self.flows.get(&p.flow) else {
            self.lost += 1;
            return;
        };
        let Some(call) = self.calls.get_mut(&f.call) else {
            self.lost += 1;
            return;
        };
        if let Err(e) = call
            .writer
            .append_packet(f.stream, p.src, f.local, &p.data, p.at)
        {
            self.lost += 1;
            tracing::debug!(error = %e, "recording packet not written");
        }
    }

    fn end(&mut self, call_id: &str) {
        let Some(mut call) = self.calls.remove(call_id) else {
            return;
        };
        for (flow, &stream) in &call.streams {
            self.flows.remove(flow);
            let n: u64 = self
                .drops
                .remove(flow)
                .unwrap_or_default()
                .iter()
                .map(|c| c.load(Relaxed))
                .sum();
            if n > 0 {
                let _ = call.writer.count_dropped(stream, n);
            }
        }
        // Counters of taps the workers no longer hold, on flows no entry took in.
        self.drops.retain(|_, v| {
            v.retain(|c| Arc::strong_count(c) > 1);
            !v.is_empty()
        });
        match call.writer.finish(SystemTime::now()) {
            Ok(path) => {
                tracing::info!(call_id = ?call_id, meta = %path.display(), "recording finished")
            }
            Err(e) => tracing::error!(call_id = ?call_id, error = %e, "cannot finish recording"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::FlowId;
    use rtprelay_recording::spool::{CallMeta, CodecInfo, StreamInfo};

    fn stream(flow: u64, tag: &str) -> RecordStream {
        RecordStream {
            flow: FlowId(flow),
            local: "127.0.0.1:30000".parse().unwrap(),
            info: StreamInfo {
                tag: tag.into(),
                media: "audio".into(),
                codecs: vec![CodecInfo::new(0, "PCMU", 8000)],
                ..Default::default()
            },
        }
    }

    #[test]
    fn writes_a_finished_entry_with_queued_packets() {
        let dir = tempfile_dir();
        let spool = Spool::open(&dir, PcapFormat::Raw)
            .unwrap()
            .with_fsync(false);
        let rec = Recorder::with_spool(spool, 64).unwrap();
        rec.send(RecordCtl::Record {
            call_id: "c1".into(),
            metadata: "k:v".into(),
            streams: vec![stream(1, "a"), stream(2, "b")],
        });
        let tap = rec.tap(1);
        let tap2 = rec.tap(2);
        let src: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let rtp = [0x80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff];
        for _ in 0..10 {
            tap.offer(1, src, &rtp);
        }
        for _ in 0..3 {
            tap2.offer(2, src, &rtp);
        }
        // A full queue, as the worker sees it: counted for flow 2 only.
        tap2.stream_dropped.fetch_add(5, Relaxed);
        rec.send(RecordCtl::End {
            call_id: "c1".into(),
        });
        drop(rec);
        let metas: Vec<_> = std::fs::read_dir(dir.join("metadata"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(metas.len(), 1);
        let meta = CallMeta::parse(&std::fs::read(&metas[0]).unwrap()).unwrap();
        assert_eq!(meta.call_id, "c1");
        assert_eq!(meta.metadata, "k:v");
        let counts: Vec<u64> = meta.streams.iter().map(|s| s.packets).collect();
        assert_eq!(counts, vec![10, 3]);
        let dropped: Vec<u64> = meta.streams.iter().map(|s| s.dropped).collect();
        assert_eq!(dropped, vec![0, 5]);
        assert_eq!(meta.streams[1].tag, "b");
        assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
        // Recordings are private: 0600 files in 0700 directories, whatever the umask.
        let mode = |p: &std::path::Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777
        };
        for d in ["tmp", "pcaps", "metadata"] {
            assert_eq!(mode(&dir.join(d)), 0o700, "{d}");
            for f in std::fs::read_dir(dir.join(d)).unwrap() {
                let f = f.unwrap().path();
                assert_eq!(mode(&f), 0o600, "{}", f.display());
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rejects_unknown_method_and_format() {
        let dir = tempfile_dir();
        assert!(matches!(
            Recorder::start(&dir, Some("proc"), None),
            Err(RecorderError::Method(_))
        ));
        assert!(matches!(
            Recorder::start(&dir, None, Some("pcapng")),
            Err(RecorderError::Format(_))
        ));
        assert_eq!(pcap_format(Some("eth")).unwrap(), PcapFormat::Eth);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        use std::sync::atomic::AtomicU32;
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "rtprelay-rec-{}-{}",
            std::process::id(),
            N.fetch_add(1, Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
