//! Turns one finished spooled call into audio: per-stream WAV files, a mixed WAV, and a JSON sidecar written
//! last. Then the call is marked done (its metadata moves to `done/`), or quarantined if a spool file was
//! unusable, a cap was exceeded, or the error is permanent. Output names are deterministic, so a call redone
//! after a crash overwrites its own files.
//!
//! Order on disk: every output file is fsynced and renamed, their directories fsynced, then the sidecar
//! (fsynced, renamed, directory fsynced); only then does the metadata move to `done/` (fsynced) and the
//! pcaps go. A power loss at any point leaves the call either still waiting in the spool or fully written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;
use tracing::{info, warn};

use crate::g711::Codec;
use crate::limits::{fit_tracks, Limits};
use crate::mix::{Mix, MixKind, MAX_MIX_CHANNELS};
use crate::outputs::Outputs;
use crate::pattern::{Pattern, PatternCtx};
use crate::rtp::RtpPacket;
use crate::spool::{CodecInfo, LoadedCall, LoadedStream, NotRead, SpoolError, SpoolReader};
use crate::timeline::{place, Placement, RtpIn, Track, RATE};
use crate::wav;

/// `--mix-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MixMethod {
    /// All streams summed into one mono channel.
    Direct,
    /// One channel per stream.
    Channels,
}

/// What to produce and where.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub output_dir: PathBuf,
    pub pattern: Pattern,
    pub mixed: bool,
    pub single: bool,
    pub mix_method: MixMethod,
    /// What one call may cost.
    pub limits: Limits,
}

/// Processing errors. [`process_call`] quarantines the call itself when the error is permanent
/// ([`ProcessError::is_permanent`]); what it returns is worth a retry.
#[derive(Debug, Error)]
pub enum ProcessError {
    /// reading or moving spool files failed
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// writing an output file failed
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ProcessError {
    /// True if retrying the same call cannot succeed: the spool files are unusable, or the call's output
    /// cannot exist (a name too long for the file system, a WAV over 4 GiB, a path through a file).
    pub fn is_permanent(&self) -> bool {
        match self {
            ProcessError::Spool(SpoolError::Corrupt(_)) => true,
            ProcessError::Spool(SpoolError::Io { source, .. })
            | ProcessError::Output { source, .. } => permanent_io(source),
            ProcessError::Spool(SpoolError::Gone(_) | SpoolError::NoStream(_)) => false,
        }
    }

    /// True if the disk (or the user's quota) is full: the call is fine and must wait for space.
    pub fn is_disk_full(&self) -> bool {
        match self {
            ProcessError::Spool(SpoolError::Io { source, .. })
            | ProcessError::Output { source, .. } => {
                matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
            }
            _ => false,
        }
    }
}

/// I/O errors that depend on the call, not on the state of the machine. Everything else (disk full, I/O
/// error, permission denied, too many open files, out of memory) may go away and is retried.
pub fn permanent_io(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENAMETOOLONG
                | libc::EFBIG
                | libc::ENOTDIR
                | libc::EISDIR
                | libc::ELOOP
                | libc::EINVAL
                | libc::EILSEQ
        )
    ) || matches!(
        e.kind(),
        std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::InvalidInput
    )
}

/// What happened to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Audio and sidecar written; the sidecar's path.
    Written(PathBuf),
    /// Audio and sidecar written as far as the input or the caps allowed (the sidecar says what is
    /// missing), then the spool files were quarantined for inspection, with the reason.
    WrittenQuarantined(PathBuf, String),
    /// Nothing written; spool files moved to quarantine, with the reason.
    Quarantined(String),
    /// The call was not in the spool any more (processed already).
    Gone,
}

#[derive(Debug, Serialize)]
struct SkippedCodec {
    payload_type: u8,
    encoding: String,
    packets: u64,
}

#[derive(Debug, Serialize)]
struct StreamReport {
    index: u32,
    tag: String,
    label: String,
    media: String,
    codecs: Vec<CodecInfo>,
    ssrcs: Vec<String>,
    packets_spooled: u64,
    packets_dropped_by_relay: u64,
    packets_placed: u64,
    packets_lost: u64,
    duplicates: u64,
    segments: u32,
    duration_ms: u64,
    /// Audio of this stream left out by the caps.
    cut_ms: u64,
    skipped_codecs: Vec<SkippedCodec>,
    truncated_pcap: bool,
    /// Why the pcap was not read, if it was not.
    not_read: Option<&'static str>,
    file: Option<String>,
}

#[derive(Debug, Serialize)]
struct FileReport {
    path: String,
    kind: &'static str,
    streams: Vec<u32>,
    channels: u16,
    sample_rate: u32,
    duration_ms: u64,
}

#[derive(Debug, Serialize)]
struct Sidecar<'a> {
    call_id: &'a str,
    random_tag: &'a str,
    spool_stem: &'a str,
    metadata: &'a str,
    metadata_fields: BTreeMap<String, String>,
    start_time: &'a str,
    end_time: Option<&'a str>,
    start_time_us: u64,
    end_time_us: Option<u64>,
    mix_method: Option<MixMethod>,
    streams: Vec<StreamReport>,
    files: Vec<FileReport>,
    warnings: Vec<String>,
    /// Set when the spool files were quarantined after writing (input cut short or over a cap).
    quarantine_reason: Option<String>,
}

fn ms(samples: u64) -> u64 {
    samples.saturating_mul(1000) / u64::from(RATE)
}

/// Processes the call `stem`. Unusable metadata or pcap headers, and permanent output errors, quarantine
/// the call; a call over a cap, or with a pcap that ends mid-record, is written as far as it goes and then
/// quarantined. Errors returned are transient (the call stays in the spool for a retry).
pub fn process_call(
    reader: &SpoolReader,
    stem: &str,
    cfg: &OutputConfig,
) -> Result<Outcome, ProcessError> {
    let call = match reader.load_capped(stem, cfg.limits.max_call_bytes) {
        Ok(c) => c,
        Err(SpoolError::Gone(_)) => return Ok(Outcome::Gone),
        Err(e) => return quarantine_if_permanent(reader, stem, e.into()),
    };
    match write_call(&call, stem, cfg) {
        Ok((sidecar, None)) => {
            reader.mark_done(stem)?;
            Ok(Outcome::Written(sidecar))
        }
        Ok((sidecar, Some(reason))) => {
            let to = reader.quarantine(stem, &reason)?;
            warn!(call = ?call.meta.call_id, %reason, quarantine = %to.display(), "recording written in part; spool files quarantined");
            Ok(Outcome::WrittenQuarantined(sidecar, reason))
        }
        Err(e) => quarantine_if_permanent(reader, stem, e),
    }
}

/// Quarantines `stem` if `e` is permanent (returning the outcome), else hands `e` back for a retry.
fn quarantine_if_permanent(
    reader: &SpoolReader,
    stem: &str,
    e: ProcessError,
) -> Result<Outcome, ProcessError> {
    if !e.is_permanent() {
        return Err(e);
    }
    let reason = match &e {
        ProcessError::Spool(SpoolError::Corrupt(r)) => r.clone(),
        other => format!("permanent error: {other}"),
    };
    let to = reader.quarantine(stem, &reason)?;
    warn!(call = stem, %reason, quarantine = %to.display(), "spool call unusable, quarantined");
    Ok(Outcome::Quarantined(reason))
}

/// Writes the call's files; returns the sidecar path and, if the call must be quarantined after all, why.
/// On error nothing of this call stays in the output directory.
fn write_call(
    call: &LoadedCall,
    stem: &str,
    cfg: &OutputConfig,
) -> Result<(PathBuf, Option<String>), ProcessError> {
    let meta = &call.meta;
    let limits = &cfg.limits;
    let metadata = meta.metadata_pairs();
    let mut warnings = Vec::new();
    let mut over_cap: Vec<String> = Vec::new();

    let decoded: Vec<(Vec<RtpIn<'_>>, Vec<SkippedCodec>)> =
        call.streams.iter().map(stream_packets).collect();
    let placements: Vec<Placement<'_>> = decoded.iter().map(|(ins, _)| place(ins)).collect();
    let fitted = fit_tracks(&placements, limits);
    if fitted.cut_by_length > 0 {
        over_cap.push(format!(
            "the call's audio spans more than the {} s call length cap; {} ms cut",
            limits.max_seconds(),
            ms(fitted.cut_by_length)
        ));
    }
    if fitted.cut_by_budget > 0 {
        over_cap.push(format!(
            "the call's streams together exceed the cap of {} s of audio; {} ms cut",
            limits.max_total_samples as u64 / u64::from(RATE),
            ms(fitted.cut_by_budget)
        ));
    }
    let unread = call.over_byte_cap();
    if unread > 0 {
        over_cap.push(format!(
            "{unread} streams not read: the call's pcap files exceed the {}-byte cap",
            limits.max_call_bytes
        ));
    }

    let mut reports = Vec::new();
    let mut tracks: Vec<(u32, &Track)> = Vec::new();
    for ((s, (_, skipped)), track) in call.streams.iter().zip(decoded).zip(&fitted.tracks) {
        for sk in &skipped {
            let w = format!(
                "stream {} (tag {:?}): {} packets of unsupported codec {} (PT {}) skipped",
                s.meta.index, s.meta.tag, sk.packets, sk.encoding, sk.payload_type
            );
            warn!(call = ?meta.call_id, "{w}");
            warnings.push(w);
        }
        if s.truncated {
            warnings.push(format!("stream {}: pcap ends mid-record", s.meta.index));
        }
        if track.cut {
            warnings.push(format!(
                "stream {}: {} ms cut at the caps",
                s.meta.index,
                ms(track.cut_samples)
            ));
        }
        if s.bad_frames > 0 {
            warnings.push(format!(
                "stream {}: {} frames were not IP/UDP",
                s.meta.index, s.bad_frames
            ));
        }
        let not_read = s.not_read.map(|n| match n {
            NotRead::NotAudio => "not audio",
            NotRead::OverByteCap => "over the call's byte cap",
        });
        reports.push(StreamReport {
            index: s.meta.index,
            tag: s.meta.tag.clone(),
            label: s.meta.label.clone(),
            media: s.meta.media.clone(),
            codecs: s.meta.codecs.clone(),
            ssrcs: track.ssrcs.iter().map(|x| format!("{x:08x}")).collect(),
            packets_spooled: if s.not_read.is_some() {
                s.meta.packets
            } else {
                s.packets.len() as u64
            },
            packets_dropped_by_relay: s.meta.dropped,
            packets_placed: track.received,
            packets_lost: track.lost,
            duplicates: track.duplicates,
            segments: track.segments,
            duration_ms: track.duration_ms(),
            cut_ms: ms(track.cut_samples),
            skipped_codecs: skipped,
            truncated_pcap: s.truncated,
            not_read,
            file: None,
        });
        if !track.samples.is_empty() {
            tracks.push((s.meta.index, track));
        }
    }

    let ctx = |kind: &'static str, label: &'static str| PatternCtx {
        call_id: &meta.call_id,
        random: &meta.random_tag,
        kind,
        label,
        time_us: meta.start_time_us,
        metadata: &metadata,
    };
    let mut out = Outputs::new(&cfg.output_dir);
    let out_err = |rel: &Path| {
        let path = cfg.output_dir.join(rel);
        move |source| ProcessError::Output { path, source }
    };
    let mut files = Vec::new();
    let mut used = Vec::new();
    if cfg.single {
        for (idx, t) in &tracks {
            let Some(rep) = reports.iter_mut().find(|r| r.index == *idx) else {
                continue;
            };
            let kind = format!("{:08x}", t.ssrcs.first().copied().unwrap_or(0));
            let c = PatternCtx {
                kind: &kind,
                label: &rep.label,
                ..ctx("", "")
            };
            let rel = unique(cfg.pattern.expand(&c), *idx, &mut used, "wav");
            let samples = &t.samples;
            out.wav(&rel, RATE, 1, samples.len(), |from, n, buf| {
                buf.extend_from_slice(samples.get(from..from + n).unwrap_or(&[]));
            })
            .map_err(out_err(&rel))?;
            rep.file = Some(rel.display().to_string());
            files.push(FileReport {
                path: rel.display().to_string(),
                kind: "single",
                streams: vec![*idx],
                channels: 1,
                sample_rate: RATE,
                duration_ms: t.duration_ms(),
            });
        }
    }
    if cfg.mixed && !tracks.is_empty() {
        let refs: Vec<&Track> = tracks.iter().map(|(_, t)| *t).collect();
        let (kind, channels) = match cfg.mix_method {
            MixMethod::Direct => (MixKind::Direct, 1),
            MixMethod::Channels => (MixKind::Channels, refs.len().min(MAX_MIX_CHANNELS)),
        };
        let max_frames = limits.max_samples.min(wav::max_frames(channels));
        let mix = Mix::new(&refs, kind, max_frames);
        if mix.cut_frames() > 0 {
            over_cap.push(format!(
                "the mix was cut to {} ms ({} ms left out)",
                ms(mix.frames() as u64),
                ms(mix.cut_frames())
            ));
        }
        if mix.left_out() > 0 {
            over_cap.push(format!(
                "{} streams left out of the channels mix (at most {MAX_MIX_CHANNELS} channels)",
                mix.left_out()
            ));
        }
        let rel = unique(
            cfg.pattern.expand(&ctx("mix", "mix")),
            u32::MAX,
            &mut used,
            "wav",
        );
        let ch = u16::try_from(mix.channels()).unwrap_or(u16::MAX);
        out.wav(&rel, RATE, ch, mix.frames(), |from, n, buf| {
            mix.fill(from, n, buf)
        })
        .map_err(out_err(&rel))?;
        files.push(FileReport {
            path: rel.display().to_string(),
            kind: "mixed",
            streams: tracks
                .iter()
                .take(match kind {
                    MixKind::Direct => tracks.len(),
                    MixKind::Channels => mix.channels(),
                })
                .map(|(i, _)| *i)
                .collect(),
            channels: ch,
            sample_rate: RATE,
            duration_ms: ms(mix.frames() as u64),
        });
    }
    if tracks.is_empty() {
        warnings.push("no stream had audio this recorder can decode".into());
    }
    if call.truncated() {
        over_cap.push(
            "a pcap file ends mid-record; audio was written from its complete records".into(),
        );
    }
    let quarantine_reason = (!over_cap.is_empty()).then(|| over_cap.join("; "));
    warnings.extend(over_cap);

    // The audio is durable before the sidecar that lists it appears.
    out.sync().map_err(out_err(Path::new("")))?;
    let sidecar = Sidecar {
        call_id: &meta.call_id,
        random_tag: &meta.random_tag,
        spool_stem: stem,
        metadata: &meta.metadata,
        metadata_fields: metadata.iter().cloned().collect(),
        start_time: &meta.start_time,
        end_time: meta.end_time.as_deref(),
        start_time_us: meta.start_time_us,
        end_time_us: meta.end_time_us,
        mix_method: cfg.mixed.then_some(cfg.mix_method),
        streams: reports,
        files,
        warnings,
        quarantine_reason: quarantine_reason.clone(),
    };
    let rel = unique(
        cfg.pattern.expand(&ctx("meta", "meta")),
        u32::MAX - 1,
        &mut used,
        "json",
    );
    let json = serde_json::to_vec_pretty(&sidecar).unwrap_or_default();
    let sidecar_path = out.file(&rel, &json).map_err(out_err(&rel))?;
    out.sync().map_err(out_err(&rel))?;
    out.keep();
    info!(
        call = ?meta.call_id,
        files = sidecar.files.len(),
        sidecar = %sidecar_path.display(),
        "recording written"
    );
    Ok((sidecar_path, quarantine_reason))
}

/// The decodable RTP packets of a stream; and the packets skipped per unsupported payload type.
fn stream_packets(s: &LoadedStream) -> (Vec<RtpIn<'_>>, Vec<SkippedCodec>) {
    let mut skipped: BTreeMap<u8, u64> = BTreeMap::new();
    let mut ins = Vec::with_capacity(s.packets.len());
    for p in &s.packets {
        let Ok(rtp) = RtpPacket::parse(s.payload(p)) else {
            continue;
        };
        if rtp.looks_like_rtcp() {
            continue;
        }
        let codec = match s
            .meta
            .codecs
            .iter()
            .find(|c| c.payload_type == rtp.payload_type)
        {
            Some(c) => Codec::from_name(&c.encoding, c.clock_rate),
            None => Codec::from_static_pt(rtp.payload_type),
        };
        match codec {
            Some(codec) => ins.push(RtpIn {
                at_us: p.at_us,
                ssrc: rtp.ssrc,
                seq: rtp.seq,
                ts: rtp.timestamp,
                codec,
                payload: rtp.payload,
            }),
            None => *skipped.entry(rtp.payload_type).or_default() += 1,
        }
    }
    let skipped = skipped
        .into_iter()
        .map(|(pt, n)| SkippedCodec {
            payload_type: pt,
            encoding: s
                .meta
                .codecs
                .iter()
                .find(|c| c.payload_type == pt)
                .map_or_else(
                    || "unknown".to_string(),
                    |c| format!("{}/{}", c.encoding, c.clock_rate),
                ),
            packets: n,
        })
        .collect();
    (ins, skipped)
}

/// `rel` plus `.ext` (appended: a call-id may contain dots); if the name is taken in this call (two streams
/// with one SSRC), `-<n>` goes before the extension.
fn unique(rel: PathBuf, n: u32, used: &mut Vec<PathBuf>, ext: &str) -> PathBuf {
    let with = |suffix: &str| {
        let mut s = rel.clone().into_os_string();
        s.push(suffix);
        s.push(".");
        s.push(ext);
        PathBuf::from(s)
    };
    let mut p = with("");
    if used.contains(&p) {
        p = with(&format!("-{n}"));
    }
    used.push(p.clone());
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::{take_trace, trace_pos};
    use crate::spool::{PcapFormat, Spool, StreamInfo};
    use std::fs;
    use std::io;
    use std::net::SocketAddr;
    use std::time::{Duration, UNIX_EPOCH};

    const T0: u64 = 1_700_000_000;

    /// A finished call: per stream, packets of (arrival offset in ms, timestamp).
    fn call(root: &Path, call_id: &str, streams: &[Vec<(u64, u32)>]) -> String {
        let spool = Spool::open(root, PcapFormat::Raw).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(T0);
        let mut w = spool.create_call(call_id, "", t0).unwrap();
        let src: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        for (n, pkts) in streams.iter().enumerate() {
            let s = w
                .add_stream(StreamInfo {
                    tag: format!("t{n}"),
                    media: "audio".into(),
                    codecs: vec![CodecInfo::new(0, "PCMU", 8000)],
                    ..Default::default()
                })
                .unwrap();
            for (k, &(ms, ts)) in pkts.iter().enumerate() {
                let rtp = crate::rtp::build(0, false, k as u16, ts, 1 + n as u32, &[0x20; 160]);
                w.append_packet(s, src, src, &rtp, t0 + Duration::from_millis(ms))
                    .unwrap();
            }
        }
        let stem = w.stem().to_owned();
        w.finish(t0 + Duration::from_secs(1)).unwrap();
        stem
    }

    fn steady(n: usize, from_ms: u64) -> Vec<(u64, u32)> {
        (0..n)
            .map(|k| (from_ms + k as u64 * 20, k as u32 * 160))
            .collect()
    }

    fn cfg(out: &Path, limits: Limits) -> OutputConfig {
        OutputConfig {
            output_dir: out.to_owned(),
            pattern: Pattern::parse("%c-%r-%t").unwrap(),
            mixed: true,
            single: true,
            mix_method: MixMethod::Channels,
            limits,
        }
    }

    fn reader(root: &Path) -> SpoolReader {
        let r = SpoolReader::new(root);
        r.ensure_dirs().unwrap();
        r
    }

    fn count(dir: &Path) -> usize {
        fs::read_dir(dir).map_or(0, |rd| rd.count())
    }

    #[test]
    fn permanent_and_transient_errors() {
        let os = io::Error::from_raw_os_error;
        for e in [
            libc::ENAMETOOLONG,
            libc::EFBIG,
            libc::ENOTDIR,
            libc::EISDIR,
            libc::ELOOP,
        ] {
            assert!(permanent_io(&os(e)), "{e}");
        }
        assert!(permanent_io(&io::Error::new(
            io::ErrorKind::FileTooLarge,
            "WAV data over 4 GiB"
        )));
        for e in [
            libc::ENOSPC,
            libc::EDQUOT,
            libc::EIO,
            libc::EACCES,
            libc::EMFILE,
            libc::ENOMEM,
        ] {
            assert!(!permanent_io(&os(e)), "{e}");
        }
        let out = |e| ProcessError::Output {
            path: "x".into(),
            source: os(e),
        };
        assert!(out(libc::ENAMETOOLONG).is_permanent());
        assert!(!out(libc::ENOSPC).is_permanent() && out(libc::ENOSPC).is_disk_full());
        assert!(!out(libc::EIO).is_disk_full());
        assert!(ProcessError::Spool(SpoolError::Corrupt("x".into())).is_permanent());
        assert!(
            !ProcessError::Spool(SpoolError::io("read", Path::new("p"), os(libc::EIO)))
                .is_permanent()
        );
    }

    #[test]
    fn a_call_id_too_long_for_a_file_name_is_quarantined_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (root, out) = (dir.path().join("spool"), dir.path().join("out"));
        let stem = call(&root, &"L".repeat(300), &[steady(10, 0)]);
        let r = reader(&root);
        let o = process_call(&r, &stem, &cfg(&out, Limits::default())).unwrap();
        assert!(
            matches!(o, Outcome::Quarantined(ref m) if m.contains("permanent error")),
            "{o:?}"
        );
        assert!(r.scan().unwrap().is_empty(), "not retried");
        assert!(r.reason_path(&stem).exists());
        assert_eq!(count(&out), 0, "no partial output");
    }

    #[test]
    fn outputs_are_private_and_durable_before_the_call_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let (root, out) = (dir.path().join("spool"), dir.path().join("out"));
        let stem = call(&root, "good", &[steady(50, 0), steady(50, 5)]);
        let r = reader(&root);
        let mut c = cfg(&out, Limits::default());
        c.pattern = Pattern::parse("%Y/%c-%t").unwrap();
        let _ = take_trace();
        let Outcome::Written(side) = process_call(&r, &stem, &c).unwrap() else {
            panic!("not written")
        };
        let t = take_trace();
        let last_wav = t
            .iter()
            .rposition(|op| op.starts_with("rename") && op.ends_with(".wav"))
            .unwrap();
        let wav_dir = trace_pos(&t, "syncdir", "/out/2023");
        let side_sync = trace_pos(&t, "sync ", ".json.tmp");
        let side_rename = trace_pos(&t, "rename", ".json");
        let done = trace_pos(&t, "rename", &format!("done/{stem}.meta"));
        let done_dir = trace_pos(&t, "syncdir", "/done");
        let day_dir = format!("syncdir {}", out.join("2023").display());
        let side_dir = t.iter().rposition(|op| *op == day_dir).unwrap();
        assert!(
            last_wav < wav_dir && wav_dir < side_sync,
            "audio durable before the sidecar: {t:#?}"
        );
        assert!(
            side_sync < side_rename && side_rename < side_dir && side_dir < done,
            "{t:#?}"
        );
        assert!(done < done_dir, "{t:#?}");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out.join("2023")), 0o700);
        assert_eq!(mode(&side), 0o600);
        for e in fs::read_dir(out.join("2023")).unwrap() {
            assert_eq!(mode(&e.unwrap().path()), 0o600);
        }
    }

    #[test]
    fn a_call_over_the_length_cap_is_written_cut_and_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let (root, out) = (dir.path().join("spool"), dir.path().join("out"));
        // The second party starts two hours after the first; the cap is 10 s.
        let stem = call(&root, "long", &[steady(50, 0), steady(50, 2 * 3600 * 1000)]);
        let r = reader(&root);
        let o = process_call(&r, &stem, &cfg(&out, Limits::for_call_length(10 * 8000))).unwrap();
        let Outcome::WrittenQuarantined(side, reason) = o else {
            panic!("{o:?}")
        };
        assert!(reason.contains("call length cap"), "{reason}");
        let side: serde_json::Value = serde_json::from_slice(&fs::read(side).unwrap()).unwrap();
        assert_eq!(side["streams"][1]["cut_ms"], 1000);
        assert_eq!(side["quarantine_reason"].as_str(), Some(reason.as_str()));
        let mix = side["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "mixed")
            .unwrap();
        assert!(mix["duration_ms"].as_u64().unwrap() <= 10_000);
        assert!(r.scan().unwrap().is_empty());
        assert!(root
            .join("quarantine")
            .join(format!("{stem}.meta"))
            .exists());
        // Nothing of the call is bigger than the cap allows (single + mix, 1 ch each here).
        for e in fs::read_dir(&out).unwrap() {
            let len = e.unwrap().metadata().unwrap().len();
            assert!(len <= 44 + 2 * 10 * 8000, "{len}");
        }
    }

    #[test]
    fn skewed_timestamps_are_written_along_arrival_time() {
        let dir = tempfile::tempdir().unwrap();
        let (root, out) = (dir.path().join("spool"), dir.path().join("out"));
        // Each packet claims ~1 s more than it carries: 2 s of audio pretending to be 100 s.
        let skewed: Vec<(u64, u32)> = (0..100).map(|k| (k * 20, k as u32 * 8_150)).collect();
        let stem = call(&root, "skew", &[skewed, steady(100, 0)]);
        let r = reader(&root);
        let o = process_call(&r, &stem, &cfg(&out, Limits::default())).unwrap();
        let Outcome::Written(side) = o else {
            panic!("{o:?}")
        };
        let side: serde_json::Value = serde_json::from_slice(&fs::read(side).unwrap()).unwrap();
        for f in side["files"].as_array().unwrap() {
            assert!(f["duration_ms"].as_u64().unwrap() <= 5_000, "{f}");
        }
    }
}
