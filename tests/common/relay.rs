//! Starts a relay under test — our `rtprelay` binary or Debian's `rtpengine` as the reference — with the
//! rtpengine command-line options both understand, on loopback, with its ports taken from a `PortBlock`, and
//! waits until an NG `ping` answers `pong`. Stopped (by PID) when dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::bencode::get_str;
use super::ng::NgClient;
use super::ports::PortBlock;
use super::process::Proc;
use super::scratch_dir;

/// How long a relay may take to answer its first ping.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which relay implementation a test drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayKind {
    /// This crate's binary.
    Rtprelay,
    /// Debian's rtpengine, the reference peer.
    Rtpengine,
}

impl RelayKind {
    /// From `RTPRELAY_E2E_RELAY` (`rtprelay`, the default, or `rtpengine`).
    pub fn from_env() -> RelayKind {
        match std::env::var("RTPRELAY_E2E_RELAY").as_deref() {
            Err(_) | Ok("") | Ok("rtprelay") => RelayKind::Rtprelay,
            Ok("rtpengine") => RelayKind::Rtpengine,
            Ok(other) => panic!("RTPRELAY_E2E_RELAY={other}: expected rtprelay or rtpengine"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RelayKind::Rtprelay => "rtprelay",
            RelayKind::Rtpengine => "rtpengine",
        }
    }

    /// The program to run: Cargo's build of our binary, or `rtpengine` from PATH.
    pub fn program(self) -> PathBuf {
        match self {
            RelayKind::Rtprelay => PathBuf::from(env!("CARGO_BIN_EXE_rtprelay")),
            RelayKind::Rtpengine => PathBuf::from("rtpengine"),
        }
    }
}

/// rtpengine-style options for a userspace relay on 127.0.0.1 with NG and media ports from `ports`.
pub fn relay_args(ports: &PortBlock, extra: &[&str]) -> Vec<String> {
    let (min, max) = ports.media_range();
    let mut args: Vec<String> = [
        "--config-file=none",
        "--table=-1",
        "-i",
        "127.0.0.1",
        "-f",
        "-E",
        "-L",
        "7",
        "--delete-delay=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "-n".to_owned(),
        ports.ng_addr().to_string(),
        "-m".to_owned(),
        min.to_string(),
        "-M".to_owned(),
        max.to_string(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A running relay.
pub struct Relay {
    proc: Proc,
    ng: SocketAddr,
    kind_name: String,
}

impl Relay {
    /// Starts `kind` with `relay_args(ports, extra)`; panics with the relay's log if it does not come up.
    pub fn start(kind: RelayKind, ports: &PortBlock, extra: &[&str]) -> Relay {
        let args = relay_args(ports, extra);
        Relay::spawn(kind.name(), &kind.program(), &args, ports.ng_addr())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `program args`, logging to a scratch file, and waits (bounded) for `pong` on `ng`.
    pub fn spawn(
        name: &str,
        program: &std::path::Path,
        args: &[String],
        ng: SocketAddr,
    ) -> Result<Relay, String> {
        let log = scratch_dir(name).join("relay.log");
        let mut proc =
            Proc::spawn(name, Command::new(program).args(args), &log).map_err(|e| e.to_string())?;
        let mut client = NgClient::new(ng).map_err(|e| format!("NG client for {name}: {e}"))?;
        client.timeout = Duration::from_millis(200);
        client.retries = 0;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = proc.try_wait() {
                return Err(format!(
                    "{name} exited before answering ping ({status}); args {args:?}; log {}:\n{}",
                    log.display(),
                    proc.log_tail(40)
                ));
            }
            if let Ok(reply) = client.ping() {
                if get_str(&reply, "result") == Some("pong") {
                    return Ok(Relay {
                        proc,
                        ng,
                        kind_name: name.to_owned(),
                    });
                }
            }
            if Instant::now() >= deadline {
                let tail = proc.log_tail(40);
                drop(proc);
                return Err(format!(
                    "{name} did not answer ping on {ng} within {READY_TIMEOUT:?}; log {}:\n{tail}",
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A fresh NG client for this relay (1 s timeout, 2 retries).
    pub fn client(&self) -> NgClient {
        NgClient::new(self.ng).unwrap_or_else(|e| panic!("NG client: {e}"))
    }

    pub fn ng_addr(&self) -> SocketAddr {
        self.ng
    }

    pub fn name(&self) -> &str {
        &self.kind_name
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The relay's log (stdout + stderr) so far.
    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    pub fn log_tail(&self, n: usize) -> String {
        self.proc.log_tail(n)
    }

    /// Whether the relay is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.try_wait().is_none()
    }

    /// Sends a signal by name (`TERM`, `INT`, ...) to the relay.
    pub fn signal(&mut self, sig: &str) {
        self.proc.signal(sig)
    }

    /// Waits up to `timeout` for the relay to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.proc.wait_timeout(timeout)
    }

    /// Stops the relay (SIGTERM, then SIGKILL after `grace`) and returns how it exited.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.proc.stop(grace)
    }
}
