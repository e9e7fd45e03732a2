//! A loopback packet capture for the real-client tests (tests/srtp_baresip.rs, tests/webrtc_chromium.rs):
//! `tcpdump -i lo -w FILE` with a filter, packet-buffered so nothing is lost when it is stopped with SIGINT,
//! and a reader for the classic pcap file it writes (Ethernet framing, as Linux gives loopback), keeping the
//! IPv4 UDP datagrams with their time, addresses and payload. Reading the payload (not tcpdump's text) lets a
//! test tell plain RTP from SRTP by its bytes. Needs root.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::Proc;

/// One captured UDP datagram over IPv4.
#[derive(Clone, Debug)]
pub struct UdpPacket {
    /// Seconds since the epoch (capture clock).
    pub time: f64,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// A running capture; `finish` stops it and reads what it caught.
pub struct Capture {
    proc: Proc,
    file: PathBuf,
}

impl Capture {
    /// Starts `tcpdump -i lo` with `filter` (a pcap-filter expression) writing into `dir`, and waits until it
    /// listens.
    pub fn start(dir: &Path, filter: &str) -> Capture {
        let file = dir.join("capture.pcap");
        let mut proc = Proc::spawn(
            "tcpdump",
            Command::new("tcpdump")
                .args(["-i", "lo", "-n", "-U", "-s", "2048", "-w"])
                .arg(&file)
                .arg(filter),
            &dir.join("tcpdump.log"),
        )
        .expect("start tcpdump");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !proc.log_text().contains("listening on") {
            assert!(
                proc.try_wait().is_none(),
                "tcpdump exited:\n{}",
                proc.log_tail(10)
            );
            assert!(Instant::now() < deadline, "tcpdump did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Capture { proc, file }
    }

    /// Stops the capture (SIGINT, so it flushes) and returns its UDP datagrams.
    pub fn finish(mut self) -> Vec<UdpPacket> {
        // A short pause so the last datagrams of the test are in before tcpdump stops.
        std::thread::sleep(Duration::from_millis(200));
        self.proc.signal("INT");
        self.proc.wait_timeout(Duration::from_secs(3));
        let bytes = std::fs::read(&self.file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.file.display()));
        read_pcap(&bytes)
            .unwrap_or_else(|e| panic!("capture {} unreadable: {e}", self.file.display()))
    }
}

/// Parses a classic pcap file (either byte order, micro- or nanosecond stamps) of Ethernet or Linux
/// "cooked" frames; keeps IPv4 UDP datagrams, skips everything else.
pub fn read_pcap(bytes: &[u8]) -> Result<Vec<UdpPacket>, String> {
    let magic = bytes.get(..4).ok_or("no pcap header")?;
    let (big, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return Err(format!("not a pcap file (magic {magic:02x?})")),
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let link = u32_at(20).ok_or("short pcap header")?;
    let l2_len = match link {
        1 => 14,   // Ethernet
        113 => 16, // Linux cooked (SLL)
        other => return Err(format!("link type {other} not handled")),
    };
    let mut out = Vec::new();
    let mut at = 24;
    while let (Some(sec), Some(frac), Some(caplen)) = (u32_at(at), u32_at(at + 4), u32_at(at + 8)) {
        let start = at + 16;
        let end = start + caplen as usize;
        let Some(frame) = bytes.get(start..end) else {
            break;
        };
        at = end;
        let time = f64::from(sec) + f64::from(frac) / if nanos { 1e9 } else { 1e6 };
        if let Some(p) = frame.get(l2_len..).and_then(|ip| udp_v4(time, ip)) {
            out.push(p);
        }
    }
    Ok(out)
}

/// An IPv4 packet carrying UDP, as a `UdpPacket`.
fn udp_v4(time: f64, ip: &[u8]) -> Option<UdpPacket> {
    let first = *ip.first()?;
    if first >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    let src_ip = Ipv4Addr::new(*ip.get(12)?, *ip.get(13)?, *ip.get(14)?, *ip.get(15)?);
    let dst_ip = Ipv4Addr::new(*ip.get(16)?, *ip.get(17)?, *ip.get(18)?, *ip.get(19)?);
    let udp = ip.get(ihl..)?;
    let port = |i: usize| Some(u16::from_be_bytes([*udp.get(i)?, *udp.get(i + 1)?]));
    let len = usize::from(port(4)?);
    let payload = udp.get(8..len.max(8))?.to_vec();
    Some(UdpPacket {
        time,
        src: SocketAddr::from((src_ip, port(0)?)),
        dst: SocketAddr::from((dst_ip, port(2)?)),
        payload,
    })
}

/// The datagrams from `src` to `dst`.
pub fn flow(packets: &[UdpPacket], src: SocketAddr, dst: SocketAddr) -> Vec<&UdpPacket> {
    packets
        .iter()
        .filter(|p| p.src == src && p.dst == dst)
        .collect()
}

/// The most common payload length among `packets` (0 when there are none).
pub fn usual_len(packets: &[&UdpPacket]) -> usize {
    let mut counts = std::collections::HashMap::new();
    for p in packets {
        *counts.entry(p.payload.len()).or_insert(0usize) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(len, n)| (n, len))
        .map_or(0, |(len, _)| len)
}
