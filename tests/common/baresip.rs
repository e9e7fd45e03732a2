//! baresip (Debian's `baresip-core`) as a headless SIP user agent for tests/srtp_baresip.rs: a config dir
//! with one account (no registration, `mediaenc` as the test asks, PCMA only), audio from the `ausine` module
//! (a 440 Hz tone) into an `aubridge` sink (no sound device), and its `ctrl_tcp` JSON control socket, through
//! which the test dials, reads the call's statistics (`audio_debug`, `callstat`) and hangs up. Everything on
//! 127.0.0.1 with ports the test chooses; stopped by PID on drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::process::Proc;

/// Where Debian installs baresip's modules.
const MODULE_PATH: &str = "/usr/lib/baresip/modules";

/// The ports one baresip instance uses, all on 127.0.0.1.
pub struct BaresipPorts {
    /// UDP and TCP for SIP; baresip also takes the next port for SIP over TLS.
    pub sip: u16,
    /// TCP, for `ctrl_tcp`.
    pub ctrl: u16,
    /// RTP port range (RTP and RTCP pairs), inclusive.
    pub rtp: (u16, u16),
}

/// A running baresip with its control connection.
pub struct Baresip {
    pub proc: Proc,
    ctrl: TcpStream,
    token: u32,
    /// Every event baresip sent so far (`{"event":true,"type":...}`), in order.
    pub events: Vec<Json>,
    pending: Vec<u8>,
}

impl Baresip {
    /// Writes the config into `dir` and starts baresip with `mediaenc` (`srtp-mand`, `srtp`, `dtls_srtp`...)
    /// on its account; waits (bounded) until its control socket accepts.
    pub fn start(dir: &Path, ports: &BaresipPorts, mediaenc: &str) -> Baresip {
        let conf = dir.join("baresip");
        std::fs::create_dir_all(&conf).unwrap_or_else(|e| panic!("creating {conf:?}: {e}"));
        let config = [
            "poll_method epoll".to_owned(),
            format!("sip_listen 127.0.0.1:{}", ports.sip),
            "net_interface 127.0.0.1".to_owned(),
            "audio_source ausine,440".to_owned(),
            "audio_player aubridge,sink".to_owned(),
            "audio_alert aubridge,sink".to_owned(),
            // ausine only produces 48 kHz stereo; baresip resamples to the codec's 8 kHz mono.
            "ausrc_srate 48000".to_owned(),
            "ausrc_channels 2".to_owned(),
            "auplay_srate 48000".to_owned(),
            "auplay_channels 2".to_owned(),
            format!("rtp_ports {}-{}", ports.rtp.0, ports.rtp.1),
            "rtp_timeout 0".to_owned(),
            format!("module_path {MODULE_PATH}"),
            "module g711.so".to_owned(),
            "module ausine.so".to_owned(),
            "module aubridge.so".to_owned(),
            "module srtp.so".to_owned(),
            "module dtls_srtp.so".to_owned(),
            "module_app account.so".to_owned(),
            "module_app menu.so".to_owned(),
            "module_app ctrl_tcp.so".to_owned(),
            format!("ctrl_tcp_listen 127.0.0.1:{}", ports.ctrl),
            String::new(),
        ]
        .join("\n");
        std::fs::write(conf.join("config"), config).expect("write baresip config");
        std::fs::write(
            conf.join("accounts"),
            format!("<sip:caller@127.0.0.1>;regint=0;mediaenc={mediaenc};audio_codecs=PCMA\n"),
        )
        .expect("write baresip accounts");
        std::fs::write(conf.join("contacts"), "").expect("write baresip contacts");

        let mut proc = Proc::spawn(
            "baresip",
            Command::new("baresip").arg("-f").arg(&conf),
            &dir.join("baresip.log"),
        )
        .expect("start baresip");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.ctrl));
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            assert!(
                proc.try_wait().is_none(),
                "baresip exited:\n{}",
                proc.log_tail(30)
            );
            if proc.log_text().contains("baresip is ready") {
                if let Ok(s) = TcpStream::connect(addr) {
                    break s;
                }
            }
            assert!(
                Instant::now() < deadline,
                "baresip's control socket {addr} did not accept:\n{}",
                proc.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        ctrl.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("ctrl timeout");
        Baresip {
            proc,
            ctrl,
            token: 0,
            events: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Runs a command (`dial`, `hangup`, `audio_debug`, `callstat`, `quit`...) and returns its `data`;
    /// events that arrive meanwhile are kept in `events`.
    pub fn command(&mut self, command: &str, params: &str) -> String {
        self.token += 1;
        let token = self.token.to_string();
        let msg =
            serde_json::json!({"command": command, "params": params, "token": token}).to_string();
        self.ctrl
            .write_all(format!("{}:{msg},", msg.len()).as_bytes())
            .unwrap_or_else(|e| panic!("baresip control write: {e}"));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(reply) = self.take_reply(&token) {
                return reply;
            }
            assert!(
                Instant::now() < deadline,
                "baresip did not answer `{command}`:\n{}",
                self.proc.log_tail(20)
            );
            self.read_some();
        }
    }

    /// Waits up to `timeout` for an event of `kind` (`CALL_ESTABLISHED`, `CALL_CLOSED`...); returns it.
    pub fn wait_event(&mut self, kind: &str, timeout: Duration) -> Option<Json> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.iter().find(|e| e["type"] == kind) {
                return Some(e.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.read_some();
            self.take_reply("");
        }
    }

    /// Reads what the control socket has (waits at most its read timeout).
    fn read_some(&mut self) {
        let mut buf = [0u8; 16384];
        match self.ctrl.read(&mut buf) {
            Ok(n) => self
                .pending
                .extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("baresip control read: {e}"),
        }
    }

    /// Splits the complete netstrings received so far: events go to `events`, the response with `token`
    /// is returned (its `data`).
    fn take_reply(&mut self, token: &str) -> Option<String> {
        let mut found = None;
        while let Some(colon) = self.pending.iter().position(|&b| b == b':') {
            let len: usize = std::str::from_utf8(self.pending.get(..colon).unwrap_or_default())
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bad netstring from baresip: {:?}", self.pending));
            let end = colon + 1 + len;
            if self.pending.len() < end + 1 {
                break;
            }
            let body: Json =
                serde_json::from_slice(self.pending.get(colon + 1..end).unwrap_or_default())
                    .unwrap_or_else(|e| panic!("bad JSON from baresip: {e}"));
            self.pending.drain(..=end);
            if body["event"] == true {
                self.events.push(body);
            } else if body["response"] == true && body["token"] == token {
                found = Some(body["data"].as_str().unwrap_or_default().to_owned());
            }
        }
        found
    }
}

/// Reads `key=N` (first occurrence) from baresip's debug text, e.g. `rcvd=` or `TX: packets=`.
pub fn debug_number(text: &str, key: &str) -> Option<u64> {
    let rest = text.split_once(key)?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
