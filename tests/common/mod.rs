//! Helpers shared by the integration tests (each `tests/*.rs` does `mod common;`):
//! - `bencode`: a standalone bencode codec, independent of the crate's own;
//! - `ng`: an NG client over UDP (`NgClient`), as Kamailio speaks it;
//! - `relay`: starts our `rtprelay` or Debian's `rtpengine` and waits for `pong` (`Relay`, `RelayKind`);
//! - `process`: a child-process guard that stops its child by PID on drop (`Proc`);
//! - `ports`: non-overlapping port blocks for tests running in parallel (`PortBlock`);
//! - `call`: a two-party call through the relay (`Call`, `Party`), `query` readers, RTCP builders;
//! - `sdp`, `media`: a simple PCMU offer/answer, RTP packets, a UDP media endpoint (`MediaEndpoint`);
//! - `netns`, `ns_relay`, `ns_call`: a network-namespace topology (`Topology`) with the relay and a call in it;
//! - `kamailio`: Kamailio and SIPp on loopback, the scenarios and their statistics;
//! - `baresip`, `pcap`: baresip as a headless SIP client and a loopback capture read as pcap (real clients);
//! - `attack`: the adversarial suite's stage (relay under attack, victim call, Kamailio-like NG);
//! - here: `require_or_skip` (missing tools fail under `RTPRELAY_E2E=1`, skip otherwise) and scratch dirs.
//!
//! Not every test binary uses every helper.
#![allow(dead_code, unused_imports)]

pub mod attack;
pub mod baresip;
pub mod bencode;
pub mod call;
pub mod ctl;
pub mod kamailio;
pub mod media;
pub mod metrics;
pub mod netns;
pub mod ng;
pub mod ns_call;
pub mod ns_relay;
pub mod pcap;
pub mod ports;
pub mod process;
pub mod redis_server;
pub mod relay;
pub mod rtp_streams;
pub mod sdp;

pub use bencode::{dict, get_str, str_list, Dict, Value};
pub use media::{MediaEndpoint, RtpPacket};
pub use ng::{expect_ok, NgClient, NgError};
pub use ports::{free_udp_port, PortBlock};
pub use process::Proc;
pub use relay::{relay_args, Relay, RelayKind};
pub use sdp::{sdp_answer, sdp_connection_addr, sdp_media_endpoint, sdp_media_port, sdp_offer};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

pub use rtprelay::testkit::{e2e_required, skip_unless};

/// `skip_unless` for a program: a path, or a name looked up in PATH (plus /usr/sbin and /sbin).
pub fn require_or_skip(binary: &str) -> bool {
    skip_unless(
        find_program(binary).is_some(),
        &format!("`{binary}` is not installed"),
    )
}

/// `skip_unless` for root (raw sockets for SIPp's pcap play, tcpdump captures).
pub fn require_root_or_skip(what: &str) -> bool {
    skip_unless(is_root(), &format!("{what} needs root"))
}

/// Whether this process runs as root (read from /proc, no libc call needed).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The full path of an executable program, if there is one.
pub fn find_program(binary: &str) -> Option<PathBuf> {
    if binary.contains('/') {
        return Some(PathBuf::from(binary)).filter(|p| p.is_file());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(binary))
        .find(|p| p.is_file());
    found
}

/// A fresh directory for one test's logs and files, under Cargo's per-target tmp dir (kept after the run).
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}
