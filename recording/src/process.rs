//! Turns one finished spooled call into audio: per-stream WAV files, a mixed WAV, and a JSON sidecar written
//! last. Then the call is marked done (its metadata moves to `done/`), or quarantined if a spool file was
//! unusable. Output names are deterministic, so a call redone after a crash overwrites its own files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;
use tracing::{info, warn};

use crate::g711::Codec;
use crate::mix::{mix_channels, mix_direct};
use crate::pattern::{Pattern, PatternCtx};
use crate::rtp::RtpPacket;
use crate::spool::{CodecInfo, LoadedStream, SpoolError, SpoolReader};
use crate::timeline::{build_track, RtpIn, Track, RATE};
use crate::wav::{tmp_name, write_wav};

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
    /// Cap on one track's length, in samples.
    pub max_samples: usize,
}

/// Processing errors that are worth a retry (the call stays in the spool).
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

/// What happened to a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Audio and sidecar written; the sidecar's path.
    Written(PathBuf),
    /// Nothing usable; spool files moved to quarantine, with the reason.
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
    skipped_codecs: Vec<SkippedCodec>,
    truncated_pcap: bool,
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
}

/// Processes the call `stem`. A call whose metadata or pcap header is unusable is quarantined; a pcap that
/// ends mid-record is written from its complete records and then quarantined for inspection.
pub fn process_call(
    reader: &SpoolReader,
    stem: &str,
    cfg: &OutputConfig,
) -> Result<Outcome, ProcessError> {
    let call = match reader.load(stem) {
        Ok(c) => c,
        Err(SpoolError::Gone(_)) => return Ok(Outcome::Gone),
        Err(SpoolError::Corrupt(reason)) => {
            let to = reader.quarantine(stem, &reason)?;
            warn!(call = stem, %reason, quarantine = %to.display(), "spool call unusable, quarantined");
            return Ok(Outcome::Quarantined(reason));
        }
        Err(e) => return Err(e.into()),
    };
    let meta = &call.meta;
    let metadata = meta.metadata_pairs();
    let mut warnings = Vec::new();
    let mut reports = Vec::new();
    let mut tracks: Vec<(u32, Track)> = Vec::new();
    for s in &call.streams {
        let (track, skipped) = stream_track(s, cfg.max_samples);
        for sk in &skipped {
            let w = format!(
                "stream {} (tag {:?}): {} packets of unsupported codec {} (PT {}) skipped",
                s.meta.index, s.meta.tag, sk.packets, sk.encoding, sk.payload_type
            );
            warn!(call = %meta.call_id, "{w}");
            warnings.push(w);
        }
        if s.truncated {
            warnings.push(format!("stream {}: pcap ends mid-record", s.meta.index));
        }
        if track.cut {
            warnings.push(format!("stream {}: cut at the length limit", s.meta.index));
        }
        if s.bad_frames > 0 {
            warnings.push(format!(
                "stream {}: {} frames were not IP/UDP",
                s.meta.index, s.bad_frames
            ));
        }
        reports.push(StreamReport {
            index: s.meta.index,
            tag: s.meta.tag.clone(),
            label: s.meta.label.clone(),
            media: s.meta.media.clone(),
            codecs: s.meta.codecs.clone(),
            ssrcs: track.ssrcs.iter().map(|x| format!("{x:08x}")).collect(),
            packets_spooled: s.packets.len() as u64,
            packets_dropped_by_relay: s.meta.dropped,
            packets_placed: track.received,
            packets_lost: track.lost,
            duplicates: track.duplicates,
            segments: track.segments,
            duration_ms: track.duration_ms(),
            skipped_codecs: skipped,
            truncated_pcap: s.truncated,
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
            write_out(cfg, &rel, 1, &t.samples)?;
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
        let refs: Vec<&Track> = tracks.iter().map(|(_, t)| t).collect();
        let (samples, channels) = match cfg.mix_method {
            MixMethod::Direct => (mix_direct(&refs).1, 1u16),
            MixMethod::Channels => (
                mix_channels(&refs).1,
                refs.len().min(usize::from(u16::MAX)) as u16,
            ),
        };
        let rel = unique(
            cfg.pattern.expand(&ctx("mix", "mix")),
            u32::MAX,
            &mut used,
            "wav",
        );
        write_out(cfg, &rel, channels, &samples)?;
        files.push(FileReport {
            path: rel.display().to_string(),
            kind: "mixed",
            streams: tracks.iter().map(|(i, _)| *i).collect(),
            channels,
            sample_rate: RATE,
            duration_ms: (samples.len() / usize::from(channels)) as u64 * 1000 / u64::from(RATE),
        });
    }
    if tracks.is_empty() {
        warnings.push("no stream had audio this recorder can decode".into());
    }

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
    };
    let rel = unique(
        cfg.pattern.expand(&ctx("meta", "meta")),
        u32::MAX - 1,
        &mut used,
        "json",
    );
    let json = serde_json::to_vec_pretty(&sidecar).unwrap_or_default();
    let sidecar_path = cfg.output_dir.join(&rel);
    write_atomic(&sidecar_path, &json).map_err(|source| ProcessError::Output {
        path: sidecar_path.clone(),
        source,
    })?;

    if call.truncated() {
        let reason = "a pcap file ends mid-record; audio was written from its complete records";
        let to = reader.quarantine(stem, reason)?;
        warn!(call = %meta.call_id, quarantine = %to.display(), "{reason}; spool files quarantined");
    } else {
        reader.mark_done(stem)?;
    }
    info!(
        call = %meta.call_id,
        files = sidecar.files.len(),
        sidecar = %sidecar_path.display(),
        "recording written"
    );
    Ok(Outcome::Written(sidecar_path))
}

/// Decodes a stream's packets into a track; returns the packets skipped per unsupported payload type.
fn stream_track(s: &LoadedStream, max_samples: usize) -> (Track, Vec<SkippedCodec>) {
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
    (build_track(&ins, max_samples), skipped)
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

fn write_out(
    cfg: &OutputConfig,
    rel: &Path,
    channels: u16,
    samples: &[i16],
) -> Result<(), ProcessError> {
    let path = cfg.output_dir.join(rel);
    let res = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| write_wav(&path, RATE, channels, samples));
    res.map_err(|source| ProcessError::Output { path, source })
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = tmp_name(path);
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)
}
