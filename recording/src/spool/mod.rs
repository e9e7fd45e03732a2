//! The recording spool: the directory the relay writes recorded calls into and `rtprelay-recording` reads.
//!
//! ```text
//! <spool>/tmp/        files of calls still being recorded (never read by the recorder)
//! <spool>/pcaps/      <stem>-<stream>.pcap, moved here when the call ends
//! <spool>/metadata/   <stem>.meta (JSON), moved here last: its arrival means "call finished"
//! <spool>/done/       metadata of calls the recorder has turned into audio (the exactly-once marker)
//! <spool>/quarantine/ spool files the recorder could not use or that exceeded a cap, with a reason file
//! <spool>/attempts/   one file per call being processed: attempts that never ended (crash-loop guard)
//! ```
//! `<stem>` is the percent-encoded call-id, `-`, and 16 random hex digits. See `SPOOL.md`.

mod meta;
mod packet;
mod pcap;
mod reader;
mod writer;

use thiserror::Error;

pub use meta::{
    parse_metadata_string, safe_file_name, CallMeta, CodecInfo, StreamMeta, SPOOL_FORMAT,
    SPOOL_VERSION,
};
pub use packet::{build_frame, parse_frame, Datagram};
pub use pcap::{parse_pcap, LinkType, Pcap, PcapFormat, PcapRecord, PcapWriter, MAX_RECORD};
pub use reader::{
    LoadedCall, LoadedStream, NotRead, SpoolEntry, SpoolReader, SpooledPacket, MAX_STEM,
};
pub use writer::{Spool, SpoolWriter, StreamId, StreamInfo};

/// Subdirectory names.
pub const TMP_DIR: &str = "tmp";
pub const PCAP_DIR: &str = "pcaps";
pub const META_DIR: &str = "metadata";
pub const DONE_DIR: &str = "done";
pub const QUARANTINE_DIR: &str = "quarantine";
pub const ATTEMPTS_DIR: &str = "attempts";
/// Extension of metadata files.
pub const META_EXT: &str = "meta";

/// Spool errors.
#[derive(Debug, Error)]
pub enum SpoolError {
    /// a filesystem operation failed
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// a spool file is truncated or not in the spool format
    #[error("{0}")]
    Corrupt(String),
    /// the call's metadata is gone (already processed, or removed)
    #[error("call {0} is no longer in the spool")]
    Gone(String),
    /// a stream id that this writer did not hand out
    #[error("no stream {0} in this call")]
    NoStream(u32),
}

impl SpoolError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        SpoolError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

/// Runs every parser of the reader over arbitrary bytes: as a pcap file (and each frame as IP/UDP/RTP) and as
/// a metadata file. Never panics; this is the entry point for a fuzz target.
pub fn fuzz_entry(data: &[u8]) {
    if let Ok(p) = parse_pcap(data) {
        for r in &p.records {
            if let Ok(d) = parse_frame(p.link, r.data) {
                let _ = crate::rtp::RtpPacket::parse(d.payload);
            }
        }
    }
    let _ = CallMeta::parse(data);
    let _ = crate::rtp::RtpPacket::parse(data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn fuzz_entry_survives_odd_input() {
        let mut seed = 0x1234_5678u32;
        for len in 0..400 {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            super::fuzz_entry(&data);
            let mut with_header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
            with_header.extend_from_slice(&[0; 12]);
            with_header.extend_from_slice(&[101, 0, 0, 0]);
            with_header.extend_from_slice(&data);
            super::fuzz_entry(&with_header);
        }
    }
}
