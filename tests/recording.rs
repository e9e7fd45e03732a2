//! Call recording through the real relay: a call with `record call` (or started with `start recording`)
//! lands in the spool as a finished entry, forwarding loses nothing meanwhile, and the real
//! `rtprelay-recording` turns the entry into per-stream and mixed WAV files with the right tones.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::call::*;
use common::*;
use rtprelay_recording::g711::{encode_alaw, encode_ulaw};
use rtprelay_recording::spool::{CallMeta, PcapFormat};
use rtprelay_recording::wav::{parse_wav, Wav};

const WAIT: Duration = Duration::from_secs(2);
/// Packets per direction: 100 × 20 ms = 2 s of audio.
const PACKETS: u16 = 100;

/// Packet `n` of a G.711 stream (payload type 0 = PCMU, 8 = PCMA) carrying a `freq` Hz tone.
fn tone_packet(ssrc: u32, n: u16, freq: f64, pt: u8) -> Vec<u8> {
    let mut p = RtpPacket::pcmu(ssrc, n);
    p.marker = false;
    p.payload_type = pt;
    let encode = if pt == 8 { encode_alaw } else { encode_ulaw };
    p.payload = (0..160u32)
        .map(|i| {
            let t = f64::from(u32::from(n) * 160 + i) / 8000.0;
            encode((8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16)
        })
        .collect();
    p.to_bytes()
}

/// The caller offers PCMU and PCMA; the callee answers PCMA: each side then sends its own codec.
fn offer_both(ip: std::net::Ipv4Addr, port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8\r\na=sendrecv\r\n")
}

fn answer_pcma(ip: std::net::Ipv4Addr, port: u16) -> String {
    format!("v=0\r\no=- 2 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\na=sendrecv\r\n")
}

/// Sends packets `range` both ways, one pair every 20 ms (the recorder places audio by arrival time
/// too), and checks every packet was forwarded.
fn talk(c: &Call, range: std::ops::Range<u16>) {
    let start = Instant::now();
    for (k, n) in range.clone().enumerate() {
        c.a.rtp
            .send_to(&tone_packet(0xaaaa_0001, n, 440.0, 0), c.a_to)
            .expect("send A");
        c.b.rtp
            .send_to(&tone_packet(0xbbbb_0002, n, 1000.0, 8), c.b_to)
            .expect("send B");
        let next = start + Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let want = range.len();
    assert_eq!(c.b.rtp.collect(want, WAIT).len(), want, "A->B forwarded");
    assert_eq!(c.a.rtp.collect(want, WAIT).len(), want, "B->A forwarded");
}

fn delete(ng: &NgClient, c: &Call) {
    expect_ok(ng.delete(&c.id, &c.a.tag), "delete");
}

/// Waits for the one finished entry in `<spool>/metadata`.
fn finished_entry(spool: &Path) -> (PathBuf, CallMeta) {
    let dir = spool.join("metadata");
    let mut found = None;
    wait_until(Duration::from_secs(5), || {
        found = std::fs::read_dir(&dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
            .map(|e| e.path());
        found.is_some()
    });
    let path = found.unwrap_or_else(|| panic!("no finished entry in {}", dir.display()));
    let meta = CallMeta::parse(&std::fs::read(&path).expect("read meta")).expect("parse meta");
    (path, meta)
}

fn recorder_binary() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_rtprelay")).with_file_name("rtprelay-recording");
    assert!(
        p.is_file(),
        "{} is missing: build it with `cargo build -p rtprelay-recording` (cargo test --workspace does)",
        p.display()
    );
    p
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn goertzel(samples: &[i16], freq: f64) -> f64 {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
}

fn read_wav(p: &Path) -> Wav {
    parse_wav(&std::fs::read(p).expect("read wav"))
        .unwrap_or_else(|| panic!("{} is not a WAV", p.display()))
}

#[test]
fn recorded_call_becomes_wav_files_with_each_sides_tone() {
    let ports = PortBlock::acquire();
    let dir = scratch_dir("recording");
    let (spool, out) = (dir.join("spool"), dir.join("out"));
    let arg = format!("--recording-dir={}", spool.display());
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[&arg]);
    let ng = relay.client();
    let c = Call::setup_sdp(&ng, &ports, &["record call"], offer_both, answer_pcma);
    talk(&c, 0..PACKETS);
    let q = c.query(&ng);
    assert_eq!(total(&q, "RTP", "packets"), 2 * i64::from(PACKETS));
    delete(&ng, &c);

    let (_, meta) = finished_entry(&spool);
    assert_eq!(meta.call_id, c.id);
    assert!(meta.finished);
    assert_eq!(meta.streams.len(), 2, "{meta:?}");
    for s in &meta.streams {
        assert_eq!(s.packets, u64::from(PACKETS), "stream {}", s.tag);
        assert_eq!(s.dropped, 0, "stream {}", s.tag);
        let (pt, name) = if s.tag == "tag-b" {
            (8, "PCMA")
        } else {
            (0, "PCMU")
        };
        assert!(
            s.codecs
                .iter()
                .any(|k| k.payload_type == pt && k.encoding == name && k.clock_rate == 8000),
            "codecs from the SDP of {}: {:?}",
            s.tag,
            s.codecs
        );
    }
    assert_eq!(meta.pcap_format, PcapFormat::Raw);
    let tags: Vec<&str> = meta.streams.iter().map(|s| s.tag.as_str()).collect();
    assert!(
        tags.contains(&"tag-a") && tags.contains(&"tag-b"),
        "{tags:?}"
    );
    assert!(std::fs::read_dir(spool.join("tmp"))
        .unwrap()
        .next()
        .is_none());

    let st = Command::new(recorder_binary())
        .arg("--oneshot")
        .arg(format!("--spool-dir={}", spool.display()))
        .arg(format!("--output-dir={}", out.display()))
        .status()
        .expect("run rtprelay-recording");
    assert!(st.success(), "rtprelay-recording failed: {st}");

    let mut sidecars = Vec::new();
    files(&out, "json", &mut sidecars);
    assert_eq!(sidecars.len(), 1, "{sidecars:?}");
    let side: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecars[0]).unwrap()).unwrap();
    let of_kind = |kind: &str| -> Vec<(PathBuf, serde_json::Value)> {
        side["files"]
            .as_array()
            .expect("files in sidecar")
            .iter()
            .filter(|f| f["kind"] == kind)
            .map(|f| (out.join(f["path"].as_str().unwrap_or("")), f.clone()))
            .collect()
    };
    let singles = of_kind("single");
    assert_eq!(singles.len(), 2, "{side}");
    let mut tones = Vec::new();
    for (path, _) in &singles {
        let w = read_wav(path);
        assert_eq!((w.rate, w.channels), (8000, 1));
        let ms = w.duration_ms();
        assert!((1960..=2040).contains(&ms), "{}: {ms} ms", path.display());
        let (p440, p1000) = (goertzel(&w.samples, 440.0), goertzel(&w.samples, 1000.0));
        let tone = if p440 > 10.0 * p1000 {
            440
        } else if p1000 > 10.0 * p440 {
            1000
        } else {
            0
        };
        tones.push(tone);
    }
    tones.sort_unstable();
    assert_eq!(tones, vec![440, 1000], "one tone per stream");
    let mixed = of_kind("mixed");
    assert_eq!(mixed.len(), 1, "{side}");
    let w = read_wav(&mixed[0].0);
    let ms = w.duration_ms();
    assert!((1960..=2040).contains(&ms), "mix: {ms} ms");
    let (p440, p1000) = (goertzel(&w.samples, 440.0), goertzel(&w.samples, 1000.0));
    let noise = goertzel(&w.samples, 700.0);
    assert!(
        p440 > 0.3 * p1000 && p1000 > 0.3 * p440,
        "both tones in the mix: {p440} {p1000}"
    );
    assert!(p440 > 100.0 * noise, "tones stand out: {p440} vs {noise}");
    // The entry was consumed exactly once.
    assert!(std::fs::read_dir(spool.join("metadata"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn start_pause_and_stop_recording_over_ng() {
    let ports = PortBlock::acquire();
    let dir = scratch_dir("recording-cmd");
    let spool = dir.join("spool");
    let arg = format!("--recording-dir={}", spool.display());
    let relay = Relay::start(
        RelayKind::Rtprelay,
        &ports,
        &[&arg, "--recording-format=eth"],
    );
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &[]);
    let cmd = |name: &str| {
        ng.request(dict([
            ("command", name.into()),
            ("call-id", c.id.as_str().into()),
            ("from-tag", c.a.tag.as_str().into()),
        ]))
        .expect("reply")
    };
    // Not recorded yet.
    talk(&c, 0..5);
    assert_eq!(get_str(&cmd("start recording"), "result"), Some("ok"));
    talk(&c, 5..25);
    assert_eq!(get_str(&cmd("pause recording"), "result"), Some("ok"));
    talk(&c, 25..30);
    assert!(
        std::fs::read_dir(spool.join("metadata"))
            .unwrap()
            .next()
            .is_none(),
        "a paused recording is not finished"
    );
    assert_eq!(get_str(&cmd("start recording"), "result"), Some("ok"));
    talk(&c, 30..40);
    assert_eq!(get_str(&cmd("stop recording"), "result"), Some("ok"));
    talk(&c, 40..45);
    // Stopping finishes the entry while the call goes on.
    let (_, meta) = finished_entry(&spool);
    assert_eq!(meta.call_id, c.id);
    let counts: Vec<u64> = meta.streams.iter().map(|s| s.packets).collect();
    assert_eq!(counts, vec![30, 30], "only packets sent while recording");
    assert_eq!(meta.pcap_format, PcapFormat::Eth);
    let q = c.query(&ng);
    assert_eq!(total(&q, "RTP", "packets"), 90, "forwarding saw everything");
    delete(&ng, &c);

    let unknown = ng
        .request(dict([
            ("command", "start recording".into()),
            ("call-id", "no-such-call".into()),
        ]))
        .expect("reply");
    assert_eq!(get_str(&unknown, "result"), Some("error"));
    assert_eq!(get_str(&unknown, "error-reason"), Some("Unknown call-id"));
}

#[test]
fn record_call_without_a_spool_still_forwards() {
    let ports = PortBlock::acquire();
    let relay = Relay::start(RelayKind::Rtprelay, &ports, &[]);
    let ng = relay.client();
    let c = Call::setup(&ng, &ports, &["record call"]);
    talk(&c, 0..10);
    delete(&ng, &c);
}
