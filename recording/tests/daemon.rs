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

/// A recorder that is killed if the test fails before stopping it.
struct Running(Option<Child>);

impl Running {
    fn stop(mut self) -> String {
        stop(self.0.take().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts the recorder under a umask that would leave everything world-readable.
fn start_umask0(spool: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_rtprelay-recording"))
        .arg(format!("--spool-dir={}", spool.display()))
        .arg(format!("--output-dir={}", out.display()))
        .args(["--foreground", "--num-threads=2"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtprelay-recording")
}

/// A call whose party plays every timestamp game at once: timestamps that creep ~1 s per packet, jump by
/// half the number space, SSRC changes with random bases; and a second stream whose packets arrive two hours
/// after the first's (a forged or very long spool entry).
fn write_skewed_call(spool_dir: &Path) -> String {
    let spool = Spool::open(spool_dir, PcapFormat::Raw)
        .unwrap()
        .with_fsync(false);
    let (mut w, a, b) = start_call(&spool, "skewed-call");
    let (src, dst) = (
        "192.0.2.66:4000".parse().unwrap(),
        "203.0.113.1:30000".parse().unwrap(),
    );
    let mut rng = Rng(0xdead_beef);
    for k in 0..300u32 {
        let (ssrc, ts) = match k / 100 {
            0 => (1, k * 8_150),
            1 => (1, if k % 2 == 0 { 0 } else { 0x8000_0000 }),
            _ => (rng.next() % 5, rng.next()),
        };
        let seq = if k / 100 == 2 {
            rng.next() as u16
        } else {
            k as u16
        };
        let p = rtprelay_recording::rtp::build(0, false, seq, ts, ssrc, &[0x33; 160]);
        w.append_packet(
            a,
            src,
            dst,
            &p,
            t0() + Duration::from_millis(u64::from(k) * 20),
        )
        .unwrap();
    }
    for k in 0..50u32 {
        let p = rtprelay_recording::rtp::build(8, false, k as u16, k * 160, 9, &[0x55; 160]);
        let at = t0() + Duration::from_secs(2 * 3600) + Duration::from_millis(u64::from(k) * 20);
        w.append_packet(b, src, dst, &p, at).unwrap();
    }
    let stem = w.stem().to_owned();
    w.finish(t0() + Duration::from_secs(2 * 3600 + 1)).unwrap();
    stem
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` is 0600 and every directory 0700.
fn assert_private_tree(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            assert_private_tree(&p);
        } else {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

fn sidecar_of(out: &Path, call_id: &str) -> Option<serde_json::Value> {
    sidecars(out)
        .into_iter()
        .map(|p| serde_json::from_slice::<serde_json::Value>(&fs::read(p).unwrap()).unwrap())
        .find(|s| s["call_id"] == call_id)
}

#[test]
fn hostile_entries_are_quarantined_once_beside_a_good_call_and_the_daemon_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, out) = (dir.path().join("spool"), dir.path().join("out"));
    let good = write_call(&spool, "good-call", PcapFormat::Raw);
    let skewed = write_skewed_call(&spool);
    let long_id = "L".repeat(300);
    let long = write_call(&spool, &long_id, PcapFormat::Raw);
    let broken = "broken-0123456789abcdef";
    fs::write(
        spool.join("metadata").join(format!("{broken}.meta")),
        b"{\"format\": \"rtprelay-spool\", \"version\": 1, \"call_id\": ",
    )
    .unwrap();
    fs::write(
        spool.join("pcaps").join(format!("{broken}-0.pcap")),
        b"not a pcap",
    )
    .unwrap();

    let child = Running(Some(start_umask0(&spool, &out, &["--max-call-length=60"])));
    let q = spool.join("quarantine");
    let reason = |stem: &str| fs::read_to_string(q.join(format!("{stem}.reason"))).ok();
    wait_for("good call", || {
        spool.join("done").join(format!("{good}.meta")).exists()
    });
    wait_for("hostile calls quarantined", || {
        [&skewed, &long, &broken.to_string()]
            .iter()
            .all(|s| q.join(format!("{s}.meta")).exists() && reason(s).is_some())
    });

    // The good call is complete.
    let side = sidecar_of(&out, "good-call").expect("good call's sidecar");
    let files = side["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "two single files and the mix");
    for f in files {
        assert_duration(
            &read_wav(&out.join(f["path"].as_str().unwrap())),
            if f["kind"] == "mixed" { 2005 } else { 2000 },
            "good call",
        );
    }
    // Each hostile entry went to quarantine with its reason, once.
    let r = reason(&skewed).unwrap();
    assert!(r.contains("60 s call length cap"), "{r}");
    let r = reason(&long).unwrap();
    assert!(
        r.contains("permanent error") && r.contains("too long"),
        "{r}"
    );
    let r = reason(broken).unwrap();
    assert!(r.contains("not valid spool JSON"), "{r}");
    for s in [&skewed, &long, &broken.to_string()] {
        assert_eq!(
            reason(s).unwrap().lines().count(),
            1,
            "{s} quarantined once"
        );
    }
    // The skewed call's audio was written, cut to the cap, never hours of it.
    let side = sidecar_of(&out, "skewed-call").expect("skewed call's sidecar");
    for f in side["files"].as_array().unwrap() {
        assert!(f["duration_ms"].as_u64().unwrap() <= 60_000, "{f}");
    }
    // Nothing of the 300-byte call-id's call is left half written.
    assert!(sidecar_of(&out, &long_id).is_none());

    // The daemon still runs and takes the next call; nothing hostile is tried again.
    let next = write_call(&spool, "after-the-hostile-ones", PcapFormat::Eth);
    wait_for("next call", || {
        spool.join("done").join(format!("{next}.meta")).exists()
    });
    assert!(fs::read_dir(spool.join("metadata"))
        .unwrap()
        .next()
        .is_none());
    wait_for("attempt notes cleared", || {
        fs::read_dir(spool.join("attempts"))
            .unwrap()
            .next()
            .is_none()
    });
    let log = child.stop();
    for s in [&skewed, &long, &broken.to_string()] {
        let tries = log
            .lines()
            .filter(|l| l.contains(s.as_str()) && l.contains("quarantin"))
            .count();
        assert_eq!(tries, 1, "{s} quarantined once:\n{log}");
    }
    assert!(!log.contains("will retry"), "{log}");
    assert!(!log.contains("panicked"), "{log}");

    // Spool and output are private, whatever the umask (the recorder ran under umask 000).
    for d in ["metadata", "pcaps", "done", "quarantine", "attempts", "tmp"] {
        assert_private_tree(&spool.join(d));
    }
    assert_private_tree(&out);
}
