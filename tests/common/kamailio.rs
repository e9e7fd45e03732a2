//! Kamailio + SIPp on loopback (tests/e2e_kamailio.rs, tests/drain.rs): caller, proxy and callee on
//! 127.0.0.1/2/3, SIPp plays sip-tester's g711a.pcap (root), Kamailio in the foreground stopped by PID.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::Proc;

pub const CALLER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
pub const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
pub const CALLEE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// sip-tester's g711a.pcap, from the package's file list, else its usual place.
pub fn g711a_pcap() -> Option<PathBuf> {
    let listed = Command::new("dpkg")
        .args(["-L", "sip-tester"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.ends_with("/g711a.pcap"))
                .map(PathBuf::from)
        });
    listed
        .or_else(|| Some(PathBuf::from("/usr/share/sip-tester/g711a.pcap")))
        .filter(|p| p.is_file())
}

/// Copies tests/e2e's SIPp scenarios into `dir` with the pcap linked beside them.
pub fn prepare_scenarios(dir: &Path, pcap: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    for f in ["uac.xml", "uas.xml"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap_or_else(|e| panic!("copying {f}: {e}"));
    }
    std::os::unix::fs::symlink(pcap, dir.join("g711a.pcap"))
        .unwrap_or_else(|e| panic!("linking pcap: {e}"));
}

/// A SIPp command for scenario `name` on `ip:port`, media on `ip:media`, run and traced in `dir`
/// (messages in `NAME_msg.log`, errors in `NAME_err.log`).
pub fn sipp(dir: &Path, name: &str, ip: Ipv4Addr, port: u16, media: u16) -> Command {
    let mut c = Command::new("sipp");
    c.current_dir(dir)
        .args(["-sf", &format!("{name}.xml"), "-i", &ip.to_string()])
        .args(["-p", &port.to_string(), "-bind_local"])
        .args([
            "-mi",
            &ip.to_string(),
            "-mp",
            &media.to_string(),
            "-nostdin",
        ])
        .args(["-trace_msg", "-message_file", &format!("{name}_msg.log")])
        .args(["-trace_err", "-error_file", &format!("{name}_err.log")]);
    c
}

/// Waits (bounded) until `proc` holds the UDP address `addr`.
pub fn wait_bound(proc: &mut Proc, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while UdpSocket::bind(addr).is_ok() {
        assert!(
            proc.try_wait().is_none(),
            "{} exited:\n{}",
            proc.name(),
            proc.log_tail(20)
        );
        assert!(
            Instant::now() < deadline,
            "{} did not bind {addr}",
            proc.name()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kamailio with `cfg` (a file under tests/e2e) on PROXY:`port`, with `defines` (`NAME=value`), new calls
/// to CALLEE:`uas_port`; waits until it answers an OPTIONS.
pub fn start_kamailio(dir: &Path, cfg: &str, port: u16, uas_port: u16, defines: &[String]) -> Proc {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(cfg);
    let run = dir.join("kamailio");
    std::fs::create_dir_all(&run).unwrap_or_else(|e| panic!("creating {}: {e}", run.display()));
    let mut cmd = Command::new("kamailio");
    cmd.arg("-f")
        .arg(&cfg)
        .args(["-DD", "-E", "-Y"])
        .arg(&run)
        .arg("-w")
        .arg(&run)
        .args(["-A", &format!("LISTEN_ADDR=udp:{PROXY}:{port}")])
        .args(["-A", &format!("UAS_URI=\"sip:{CALLEE}:{uas_port}\"")]);
    for d in defines {
        cmd.args(["-A", d]);
    }
    let mut kam =
        Proc::spawn("kamailio", &mut cmd, &dir.join("kamailio.log")).expect("start kamailio");
    let probe = UdpSocket::bind((CALLER, 0)).expect("bind SIP probe");
    probe
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("probe timeout");
    let local = probe.local_addr().expect("probe address");
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in 0.. {
        assert!(
            kam.try_wait().is_none(),
            "kamailio exited:\n{}",
            kam.log_tail(30)
        );
        assert!(
            Instant::now() < deadline,
            "kamailio did not answer OPTIONS:\n{}",
            kam.log_tail(30)
        );
        let options = format!(
            "OPTIONS sip:{PROXY}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{n}\r\n\
             From: <sip:probe@{CALLER}>;tag=probe\r\nTo: <sip:{PROXY}:{port}>\r\nCall-ID: probe-{n}\r\n\
             CSeq: {} OPTIONS\r\nMax-Forwards: 10\r\nContent-Length: 0\r\n\r\n",
            n + 1
        );
        let _ = probe.send_to(options.as_bytes(), (PROXY, port));
        let mut buf = [0u8; 2048];
        if let Ok((len, _)) = probe.recv_from(&mut buf) {
            if buf
                .get(..len)
                .is_some_and(|b| b.starts_with(b"SIP/2.0 200"))
            {
                break;
            }
        }
    }
    kam
}

/// The last row of SIPp's `-trace_stat` CSV, as column name -> value.
pub fn uac_stats(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let last = lines.next_back().unwrap_or_default();
    header
        .split(';')
        .zip(last.split(';'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
