//! Network namespaces and veth pairs for tests that need a real link (root only), named
//! `<prefix>-<pid>-<n>` so that parallel tests never share one, deleted on drop.

use std::io;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Numbers the namespaces of this process.
static NEXT_NS: AtomicU32 = AtomicU32::new(0);

/// A fresh namespace name `<prefix>-<pid>-<n><suffix>` (not created).
pub fn fresh_name(prefix: &str, suffix: &str) -> String {
    let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}{suffix}", std::process::id())
}

/// Runs `cmd` (no stdin); its output, or an error naming the command with its stderr.
pub fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip ARGS`, failing with its stderr.
pub fn try_ip(args: &[&str]) -> Result<Output, String> {
    run(Command::new("ip").args(args))
}

/// `ip ARGS`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    if let Err(e) = try_ip(args) {
        panic!("{e}");
    }
}

/// Runs `f` on a thread inside namespace `ns`.
pub fn in_ns<T, F>(ns: &str, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    crate::sys::netns::run_in(ns, f)
}

/// Deletes the namespaces named `<prefix>-<pid>-...` whose process no longer runs (a test
/// killed mid-way leaves its namespaces behind).
pub fn sweep_stale(prefix: &str) {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = try_ip(&["netns", "del", &name]);
        }
    }
}

/// Delete a network namespace on drop.
pub struct NsGuard(pub String);

/// Two fresh namespaces `<prefix>-<pid>-<n>r` and `...p`, joined by `veth0` (relay side,
/// 02:00:00:00:01:01, 192.0.2.1/24, up) and `veth1` (peer side, 02:00:00:00:01:02, down: each
/// test gives it its addresses). Both are deleted on drop.
pub fn veth_pair(prefix: &str) -> (NsGuard, NsGuard) {
    let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
    let relay = NsGuard(format!("{prefix}-{}-{n}r", std::process::id()));
    let peer = NsGuard(format!("{prefix}-{}-{n}p", std::process::id()));
    ip(&["netns", "add", &relay.0]);
    ip(&["netns", "add", &peer.0]);
    ip(&[
        "-n",
        &relay.0,
        "link",
        "add",
        "veth0",
        "address",
        "02:00:00:00:01:01",
        "type",
        "veth",
        "peer",
        "name",
        "veth1",
        "netns",
        &peer.0,
        "address",
        "02:00:00:00:01:02",
    ]);
    ip(&[
        "-n",
        &relay.0,
        "addr",
        "add",
        "192.0.2.1/24",
        "dev",
        "veth0",
    ]);
    ip(&["-n", &relay.0, "link", "set", "veth0", "up"]);
    (relay, peer)
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
