//! Network namespaces and veth pairs for tests that need a real link (root only), named
//! `<prefix>-<pid>-<n>` so that parallel tests never share one, deleted on drop.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Numbers the namespaces of this process.
static NEXT_NS: AtomicU32 = AtomicU32::new(0);

/// A fresh namespace name `<prefix>-<pid>-<n><suffix>` (not created).
pub fn fresh_name(prefix: &str, suffix: &str) -> String {
    let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}{suffix}", std::process::id())
}

/// `ip ARGS`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
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
