//! End to end in-process: the SpoolWriter writes a call, process_call turns it into WAV files.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use rtprelay_recording::limits::Limits;
use rtprelay_recording::pattern::Pattern;
use rtprelay_recording::process::{process_call, MixMethod, Outcome, OutputConfig};
use rtprelay_recording::spool::{CodecInfo, PcapFormat, Spool, SpoolReader, StreamInfo};

fn cfg(out: &Path, mix: MixMethod) -> OutputConfig {
    OutputConfig {
        output_dir: out.to_owned(),
        pattern: Pattern::parse("%c-%r-%t").unwrap(),
        mixed: true,
        single: true,
        mix_method: mix,
        limits: Limits::default(),
    }
}

fn sidecar(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn files_of(side: &serde_json::Value, out: &Path, kind: &str) -> Vec<PathBuf> {
    side["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .map(|f| out.join(f["path"].as_str().unwrap()))
        .collect()
}

#[test]
fn tones_loss_and_ssrc_change_direct_mix() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, out) = (dir.path().join("spool"), dir.path().join("out"));
    let stem = write_call(&spool, "call-1@example.com", PcapFormat::Raw);
    let reader = SpoolReader::new(&spool);
    reader.ensure_dirs().unwrap();
    let Outcome::Written(side_path) =
        process_call(&reader, &stem, &cfg(&out, MixMethod::Direct)).unwrap()
    else {
        panic!("call not written")
    };
    let side = sidecar(&side_path);
    assert_eq!(side["call_id"], "call-1@example.com");
    assert_eq!(side["metadata_fields"]["customer"], "acme");
    assert_eq!(
        side["streams"][0]["ssrcs"].as_array().unwrap().len(),
        2,
        "SSRC change seen"
    );
    assert!(
        side["streams"][0]["packets_lost"].as_u64().unwrap() > 0,
        "loss counted"
    );

    let singles = files_of(&side, &out, "single");
    assert_eq!(singles.len(), 2);
    for (f, freq) in singles.iter().zip([440, 1000]) {
        let w = read_wav(f);
        assert_eq!((w.rate, w.channels, w.bits), (8000, 1, 16));
        assert_duration(&w, 2000, &f.display().to_string());
        assert_eq!(dominant(&w.samples), Some(freq), "{}", f.display());
    }
    let mix = files_of(&side, &out, "mixed");
    let w = read_wav(&mix[0]);
    assert_eq!((w.rate, w.channels), (8000, 1));
    assert_duration(&w, 2005, "mix");
    let (p440, p1000) = (
        goertzel(&w.samples, 440.0, 8000.0),
        goertzel(&w.samples, 1000.0, 8000.0),
    );
    let noise = goertzel(&w.samples, 700.0, 8000.0);
    assert!(
        p440 > 0.3 * p1000 && p1000 > 0.3 * p440,
        "both tones: {p440} {p1000}"
    );
    assert!(p440 > 100.0 * noise, "tones stand out: {p440} vs {noise}");
    assert!(mix[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .ends_with("-mix.wav"));

    // Done exactly once: the spool is empty, the metadata sits in done/, and a second run finds nothing.
    assert!(reader.scan().unwrap().is_empty());
    assert!(reader.is_done(&stem));
    assert_eq!(fs::read_dir(spool.join("pcaps")).unwrap().count(), 0);
    assert_eq!(
        process_call(&reader, &stem, &cfg(&out, MixMethod::Direct)).unwrap(),
        Outcome::Gone
    );
}

#[test]
fn channels_mix_has_one_tone_per_channel() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, out) = (dir.path().join("spool"), dir.path().join("out"));
    let stem = write_call(&spool, "call-2", PcapFormat::Eth);
    let reader = SpoolReader::new(&spool);
    reader.ensure_dirs().unwrap();
    let Outcome::Written(side_path) =
        process_call(&reader, &stem, &cfg(&out, MixMethod::Channels)).unwrap()
    else {
        panic!("call not written")
    };
    let side = sidecar(&side_path);
    let w = read_wav(&files_of(&side, &out, "mixed")[0]);
    assert_eq!((w.rate, w.channels), (8000, 2));
    assert_duration(&w, 2005, "channels mix");
    assert_eq!(dominant(&w.channel(0)), Some(440));
    assert_eq!(dominant(&w.channel(1)), Some(1000));
}

#[test]
fn unsupported_codec_is_skipped_and_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let (spool_dir, out) = (dir.path().join("spool"), dir.path().join("out"));
    let spool = Spool::open(&spool_dir, PcapFormat::Raw)
        .unwrap()
        .with_fsync(false);
    let (mut w, a, b) = start_call(&spool, "call-3");
    let g729 = w
        .add_stream(StreamInfo {
            tag: "tag-c".into(),
            codecs: vec![CodecInfo::new(18, "G729", 8000)],
            ..Default::default()
        })
        .unwrap();
    let src = "192.0.2.1:1000".parse().unwrap();
    let dst = "192.0.2.2:2000".parse().unwrap();
    for (s, t, p) in call_packets(a, b, 7) {
        w.append_packet(s, src, dst, &p, t).unwrap();
    }
    for k in 0..50u16 {
        let p = rtprelay_recording::rtp::build(18, false, k, u32::from(k) * 160, 9, &[0x55; 20]);
        w.append_packet(g729, src, dst, &p, t0()).unwrap();
    }
    let stem = w.stem().to_owned();
    w.finish(t0()).unwrap();
    let reader = SpoolReader::new(&spool_dir);
    reader.ensure_dirs().unwrap();
    let Outcome::Written(side_path) =
        process_call(&reader, &stem, &cfg(&out, MixMethod::Direct)).unwrap()
    else {
        panic!("call not written")
    };
    let side = sidecar(&side_path);
    assert_eq!(files_of(&side, &out, "single").len(), 2);
    assert_eq!(
        side["streams"][2]["skipped_codecs"][0]["encoding"],
        "G729/8000"
    );
    assert_eq!(side["streams"][2]["skipped_codecs"][0]["packets"], 50);
    assert!(side["streams"][2]["file"].is_null());
    assert!(side["warnings"][0].as_str().unwrap().contains("G729"));
}

#[test]
fn redo_after_crash_before_done_marker_gives_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, out) = (dir.path().join("spool"), dir.path().join("out"));
    let stem = write_call(&spool, "call-4", PcapFormat::Raw);
    // Keep copies, to put the spool back as if the recorder died before moving the metadata to done/.
    let keep = dir.path().join("keep");
    fs::create_dir_all(&keep).unwrap();
    for d in ["metadata", "pcaps"] {
        for e in fs::read_dir(spool.join(d)).unwrap() {
            let e = e.unwrap();
            fs::copy(
                e.path(),
                keep.join(format!("{d}__{}", e.file_name().to_string_lossy())),
            )
            .unwrap();
        }
    }
    let reader = SpoolReader::new(&spool);
    reader.ensure_dirs().unwrap();
    let c = cfg(&out, MixMethod::Direct);
    assert!(matches!(
        process_call(&reader, &stem, &c).unwrap(),
        Outcome::Written(_)
    ));
    let listing = |p: &Path| {
        let mut v: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let first = listing(&out);
    let first_mix =
        fs::read(out.join(format!("call-4-{}-mix.wav", &stem[stem.len() - 16..]))).unwrap();
    fs::remove_file(spool.join("done").join(format!("{stem}.meta"))).unwrap();
    for e in fs::read_dir(&keep).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let (d, f) = name.split_once("__").unwrap();
        fs::copy(keep.join(&name), spool.join(d).join(f)).unwrap();
    }
    assert!(matches!(
        process_call(&reader, &stem, &c).unwrap(),
        Outcome::Written(_)
    ));
    assert_eq!(listing(&out), first, "same file names, nothing duplicated");
    assert_eq!(first.len(), 4, "2 single + mix + sidecar");
    let again = fs::read(out.join(format!("call-4-{}-mix.wav", &stem[stem.len() - 16..]))).unwrap();
    assert_eq!(again, first_mix);
}

#[test]
fn truncated_pcap_writes_what_is_there_and_quarantines() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, out) = (dir.path().join("spool"), dir.path().join("out"));
    let stem = write_call(&spool, "call-5", PcapFormat::Raw);
    let p = spool.join("pcaps").join(format!("{stem}-1.pcap"));
    let data = fs::read(&p).unwrap();
    fs::write(&p, &data[..data.len() - 50]).unwrap();
    let reader = SpoolReader::new(&spool);
    reader.ensure_dirs().unwrap();
    let Outcome::WrittenQuarantined(side_path, reason) =
        process_call(&reader, &stem, &cfg(&out, MixMethod::Direct)).unwrap()
    else {
        panic!("call not written")
    };
    assert!(reason.contains("mid-record"), "{reason}");
    assert!(sidecar(&side_path)["streams"][1]["truncated_pcap"]
        .as_bool()
        .unwrap());
    assert!(spool
        .join("quarantine")
        .join(format!("{stem}.meta"))
        .exists());
    assert!(spool
        .join("quarantine")
        .join(format!("{stem}-1.pcap"))
        .exists());
    assert!(reader.scan().unwrap().is_empty());
}

#[test]
fn garbage_pcap_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, out) = (dir.path().join("spool"), dir.path().join("out"));
    let stem = write_call(&spool, "call-6", PcapFormat::Raw);
    fs::write(
        spool.join("pcaps").join(format!("{stem}-0.pcap")),
        b"garbage garbage garbage!",
    )
    .unwrap();
    let reader = SpoolReader::new(&spool);
    reader.ensure_dirs().unwrap();
    let o = process_call(&reader, &stem, &cfg(&out, MixMethod::Direct)).unwrap();
    assert!(
        matches!(o, Outcome::Quarantined(ref r) if r.contains("not a pcap")),
        "{o:?}"
    );
    assert!(spool
        .join("quarantine")
        .join(format!("{stem}.reason"))
        .exists());
    assert!(!out.exists() || fs::read_dir(&out).unwrap().count() == 0);
}
