//! The real binary over a temp spool: inotify pickup, quarantine of garbage, restart mid-call, SIGTERM.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use rtprelay_recording::spool::{PcapFormat, Spool};

fn start(spool: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rtprelay-recording"))
        .arg(format!("--spool-dir={}", spool.display()))
        .arg(format!("--output-dir={}", out.display()))
        .args(["--foreground", "--num-threads=2"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtprelay-recording")
}

/// SIGTERM by pid (a child we started), then the exit status must be 0; returns its log.
fn stop(mut child: Child) -> String {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            let mut log = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut log);
            }
            assert_eq!(st.code(), Some(0), "exit status; log:\n{log}");
            return log;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("recorder did not stop on SIGTERM");
        }
        sleep(Duration::from_millis(20));
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(25));
    }
}

fn sidecars(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(out)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "json"));
    v.sort();
    v
}

#[test]
fn binary_watches_spool_quarantines_garbage_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, out) = (dir.path().join("spool"), dir.path().join("out"));
    // One call waiting before the recorder starts.
    let first = write_call(&spool, "before-start", PcapFormat::Raw);
    let child = start(&spool, &out, &["--mix-method=channels"]);
    wait_for("pending call", || {
        spool.join("done").join(format!("{first}.meta")).exists()
    });
    // Garbage while running, then another call: the garbage is quarantined, the call written.
    fs::write(
        spool.join("metadata").join("garbage.meta"),
        [0xde, 0xad, 0xbe, 0xef, 0, 1, 2],
    )
    .unwrap();
    fs::write(spool.join("metadata").join("notes.txt"), b"hello").unwrap();
    let second = write_call(&spool, "while-running", PcapFormat::Eth);
    wait_for("second call", || {
        spool.join("done").join(format!("{second}.meta")).exists()
    });
    wait_for("quarantine", || {
        spool.join("quarantine").join("garbage.meta").exists()
            && spool.join("quarantine").join("notes.txt").exists()
    });
    let log = stop(child);
    assert!(log.contains("quarantined"), "log says so:\n{log}");
    assert_eq!(sidecars(&out).len(), 2);
    for s in sidecars(&out) {
        let side: serde_json::Value = serde_json::from_slice(&fs::read(&s).unwrap()).unwrap();
        let mix = side["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "mixed")
            .unwrap();
        let w = read_wav(&out.join(mix["path"].as_str().unwrap()));
        assert_eq!((w.rate, w.channels), (8000, 2));
        assert_duration(&w, 2005, "mix");
        assert_eq!(dominant(&w.channel(0)), Some(440));
        assert_eq!(dominant(&w.channel(1)), Some(1000));
    }
    assert!(fs::read_dir(spool.join("metadata"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn restart_mid_call_finishes_it_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (spool_dir, out) = (dir.path().join("spool"), dir.path().join("out"));
    let spool = Spool::open(&spool_dir, PcapFormat::Raw)
        .unwrap()
        .with_fsync(false);
    let (mut w, a, b) = start_call(&spool, "restart-call");
    let packets = call_packets(a, b, 42);
    let half = packets.len() / 2;
    let src = "192.0.2.1:1000".parse().unwrap();
    let dst = "192.0.2.2:2000".parse().unwrap();
    for (s, t, p) in &packets[..half] {
        w.append_packet(*s, src, dst, p, *t).unwrap();
    }
    // The recorder runs while the call is half recorded: nothing may come out.
    let child = start(&spool_dir, &out, &[]);
    sleep(Duration::from_millis(300));
    assert!(
        sidecars(&out).is_empty(),
        "unfinished call must not be processed"
    );
    stop(child);
    for (s, t, p) in &packets[half..] {
        w.append_packet(*s, src, dst, p, *t).unwrap();
    }
    let stem = w.stem().to_owned();
    w.finish(t0() + Duration::from_millis(2100)).unwrap();
    // Finished while the recorder was down: the restarted recorder picks it up once.
    let child = start(&spool_dir, &out, &[]);
    wait_for("call done", || {
        spool_dir.join("done").join(format!("{stem}.meta")).exists()
    });
    sleep(Duration::from_millis(200));
    stop(child);
    // A third start finds nothing to do.
    let child = start(&spool_dir, &out, &[]);
    sleep(Duration::from_millis(300));
    stop(child);
    let s = sidecars(&out);
    assert_eq!(s.len(), 1, "exactly one sidecar: {s:?}");
    let wavs = fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "wav")
        })
        .count();
    assert_eq!(wavs, 3, "two single files and one mix");
    let side: serde_json::Value = serde_json::from_slice(&fs::read(&s[0]).unwrap()).unwrap();
    for f in side["files"].as_array().unwrap() {
        let w = read_wav(&out.join(f["path"].as_str().unwrap()));
        assert_duration(
            &w,
            if f["kind"] == "mixed" { 2005 } else { 2000 },
            "after restart",
        );
    }
}

#[test]
fn bad_options_fail_clearly() {
    let o = Command::new(env!("CARGO_BIN_EXE_rtprelay-recording"))
        .args(["--output-format=mp3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("wav only"));
    let o = Command::new(env!("CARGO_BIN_EXE_rtprelay-recording"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("rtprelay-recording"));
}
