//! Runs the operator's control tool (`rtprelay-ctl`, or Debian's `rtpengine-ctl`) against a
//! relay's CLI port, bounded in time, for the tests of the CLI, drain and takeover.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn ctl_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_rtprelay-ctl"))
}

/// Runs a control tool (`rtprelay-ctl` or `rtpengine-ctl`) against `cli` with `command`, bounded to 15 s.
pub fn ctl_with(program: &Path, cli: SocketAddr, command: &str) -> String {
    let mut child = Command::new(program)
        .args([
            "-ip",
            &cli.ip().to_string(),
            "-port",
            &cli.port().to_string(),
        ])
        .args(command.split(' '))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{} {command} did not finish within 15 s", program.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{} {command}: {}\n{}",
        program.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn ctl(cli: SocketAddr, command: &str) -> String {
    ctl_with(ctl_bin(), cli, command)
}
