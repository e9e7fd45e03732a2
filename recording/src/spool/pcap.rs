//! The classic libpcap file format (not pcapng): a 24-byte global header, then records of a 16-byte header
//! and the captured bytes. We write little-endian microsecond files; we read either byte order and µs or ns.

use std::io::{self, Write};

use super::SpoolError;

/// Link types we write (`LINKTYPE_RAW` = 101, `LINKTYPE_ETHERNET` = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PcapFormat {
    /// IP packets with no link-layer header (rtpengine's `--recording-format=raw`).
    Raw,
    /// A fake 14-byte Ethernet header before each IP packet (`--recording-format=eth`).
    Eth,
}

impl PcapFormat {
    fn linktype(self) -> u32 {
        match self {
            PcapFormat::Raw => 101,
            PcapFormat::Eth => 1,
        }
    }
}

/// The largest record we accept when reading; anything bigger means the file is not what it claims.
pub const MAX_RECORD: usize = 262_144;
const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;

/// Writes a pcap stream to `W`.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W, format: PcapFormat) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_US.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&65_535u32.to_le_bytes());
        h[20..24].copy_from_slice(&format.linktype().to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Appends one record stamped `at_us` (µs since the epoch).
    pub fn write(&mut self, at_us: u64, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((at_us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((at_us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(frame)
    }

    /// Gives back the writer (to flush and sync it).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// The writer, for flushing.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

/// How the frames of a pcap file start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// The frame is an IPv4 or IPv6 packet.
    Raw,
    /// The frame starts with an Ethernet header.
    Ethernet,
    /// Linux cooked capture v1 (16-byte header), as tcpdump -i any writes.
    LinuxSll,
}

/// One captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcapRecord<'a> {
    /// Capture time, µs since the epoch.
    pub at_us: u64,
    pub data: &'a [u8],
}

/// A parsed pcap file. `truncated` is set when the last record stops short (a writer died mid-record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcap<'a> {
    pub link: LinkType,
    pub records: Vec<PcapRecord<'a>>,
    pub truncated: bool,
}

/// Parses a whole pcap file held in memory. This is the fuzzing entry point for the packet store.
pub fn parse_pcap(data: &[u8]) -> Result<Pcap<'_>, SpoolError> {
    let head = data
        .get(..24)
        .ok_or_else(|| SpoolError::Corrupt("pcap file shorter than its 24-byte header".into()))?;
    let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let magic_be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let (big_endian, nanos) = match (magic_le, magic_be) {
        (MAGIC_US, _) => (false, false),
        (MAGIC_NS, _) => (false, true),
        (_, MAGIC_US) => (true, false),
        (_, MAGIC_NS) => (true, true),
        _ => {
            return Err(SpoolError::Corrupt(format!(
                "not a pcap file (magic {magic_be:#010x})"
            )))
        }
    };
    let u32_at = |b: &[u8], i: usize| -> u32 {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    };
    let link = match u32_at(head, 20) & 0x0fff_ffff {
        1 => LinkType::Ethernet,
        12 | 14 | 101 | 228 | 229 => LinkType::Raw,
        113 => LinkType::LinuxSll,
        other => {
            return Err(SpoolError::Corrupt(format!(
                "pcap link type {other} is not raw IP or Ethernet"
            )))
        }
    };
    let mut records = Vec::new();
    let mut rest = &data[24..];
    let mut truncated = false;
    while !rest.is_empty() {
        let Some(rh) = rest.get(..16) else {
            truncated = true;
            break;
        };
        let secs = u64::from(u32_at(rh, 0));
        let frac = u64::from(u32_at(rh, 4));
        let caplen = u32_at(rh, 8) as usize;
        if caplen > MAX_RECORD {
            return Err(SpoolError::Corrupt(format!(
                "pcap record of {caplen} bytes is larger than any packet"
            )));
        }
        let sub_us = if nanos { frac / 1000 } else { frac };
        if sub_us >= 1_000_000 {
            return Err(SpoolError::Corrupt(format!(
                "pcap record time fraction {frac} out of range"
            )));
        }
        let Some(frame) = rest.get(16..16 + caplen) else {
            truncated = true;
            break;
        };
        records.push(PcapRecord {
            at_us: secs * 1_000_000 + sub_us,
            data: frame,
        });
        rest = &rest[16 + caplen..];
    }
    Ok(Pcap {
        link,
        records,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(format: PcapFormat, frames: &[(u64, &[u8])]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new(), format).unwrap();
        for (t, f) in frames {
            w.write(*t, f).unwrap();
        }
        w.into_inner()
    }

    #[test]
    fn write_then_read() {
        let data = file(
            PcapFormat::Raw,
            &[
                (1_700_000_000_123_456, &[1, 2, 3]),
                (1_700_000_001_000_000, &[]),
            ],
        );
        assert_eq!(&data[20..24], &101u32.to_le_bytes());
        let p = parse_pcap(&data).unwrap();
        assert_eq!(p.link, LinkType::Raw);
        assert!(!p.truncated);
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.records[0].at_us, 1_700_000_000_123_456);
        assert_eq!(p.records[0].data, &[1, 2, 3]);
        assert_eq!(p.records[1].data, &[] as &[u8]);
        let e = file(PcapFormat::Eth, &[]);
        assert_eq!(parse_pcap(&e).unwrap().link, LinkType::Ethernet);
    }

    #[test]
    fn truncated_tail_keeps_whole_records() {
        let data = file(PcapFormat::Raw, &[(5, &[1, 2, 3, 4]), (6, &[5, 6, 7, 8])]);
        for cut in [data.len() - 1, data.len() - 5, 24 + 20 + 3] {
            let p = parse_pcap(&data[..cut]).unwrap();
            assert!(p.truncated, "cut at {cut}");
            assert_eq!(p.records.len(), 1);
        }
    }

    #[test]
    fn big_endian_nanosecond_file() {
        let mut d = Vec::new();
        d.extend_from_slice(&MAGIC_NS.to_be_bytes());
        d.extend_from_slice(&[
            0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1,
        ]);
        d.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0x03, 0xe8, 0, 0, 0, 1, 0, 0, 0, 1, 0xab]);
        let p = parse_pcap(&d).unwrap();
        assert_eq!(p.link, LinkType::Ethernet);
        assert_eq!(p.records[0].at_us, 2_000_001);
        assert_eq!(p.records[0].data, &[0xab]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_pcap(b"").is_err());
        assert!(parse_pcap(b"hello world, this is not a pcap file").is_err());
        let mut d = file(PcapFormat::Raw, &[(1, &[0])]);
        d[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_pcap(&d).is_err());
    }
}
