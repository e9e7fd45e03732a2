//! The metadata file of a spooled call (JSON). It only appears in `metadata/` once the call is finished, and
//! it carries `"finished": true` and an end time; a file without them is refused.

use serde::{Deserialize, Serialize};

use super::pcap::PcapFormat;
use super::SpoolError;

/// Value of the `format` field.
pub const SPOOL_FORMAT: &str = "rtprelay-spool";
/// Value of the `version` field; a reader refuses versions it does not know.
pub const SPOOL_VERSION: u32 = 1;

/// A codec of a stream, from its SDP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodecInfo {
    pub payload_type: u8,
    /// SDP encoding name, e.g. `PCMU`.
    pub encoding: String,
    pub clock_rate: u32,
    #[serde(default = "one")]
    pub channels: u8,
}

fn one() -> u8 {
    1
}

impl CodecInfo {
    /// `CodecInfo { payload_type, encoding, clock_rate, channels: 1 }`.
    pub fn new(payload_type: u8, encoding: &str, clock_rate: u32) -> Self {
        CodecInfo {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels: 1,
        }
    }
}

/// One recorded media stream: the packets one party sent (one direction of one leg), in one pcap file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMeta {
    /// Position in `streams`, also in the pcap file name.
    pub index: u32,
    /// The from-tag or to-tag of the party that sent this stream.
    pub tag: String,
    /// The label of that party (NG `label`), empty if none.
    #[serde(default)]
    pub label: String,
    /// SDP media type (`audio`).
    #[serde(default)]
    pub media: String,
    /// File name (no directory) under `pcaps/`.
    pub pcap: String,
    #[serde(default)]
    pub codecs: Vec<CodecInfo>,
    /// Packets written to the pcap file.
    #[serde(default)]
    pub packets: u64,
    /// Packets the relay had to drop before they reached the spool (a slow disk).
    #[serde(default)]
    pub dropped: u64,
}

/// The whole metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallMeta {
    pub format: String,
    pub version: u32,
    pub call_id: String,
    /// Random hex that makes a repeated call-id unique (`%r` in output patterns).
    pub random_tag: String,
    /// The NG `metadata` string, `key:value|key:value`.
    #[serde(default)]
    pub metadata: String,
    pub pcap_format: PcapFormat,
    /// µs since the epoch.
    pub start_time_us: u64,
    pub start_time: String,
    pub end_time_us: Option<u64>,
    #[serde(default)]
    pub end_time: Option<String>,
    pub streams: Vec<StreamMeta>,
    /// The end marker: only a finished call is ever moved into `metadata/`.
    pub finished: bool,
}

impl CallMeta {
    /// Parses and checks a metadata file.
    pub fn parse(data: &[u8]) -> Result<Self, SpoolError> {
        let meta: CallMeta = serde_json::from_slice(data)
            .map_err(|e| SpoolError::Corrupt(format!("metadata is not valid spool JSON: {e}")))?;
        meta.validate()?;
        Ok(meta)
    }

    /// Checks what JSON parsing cannot: format and version, the end marker, safe pcap names.
    pub fn validate(&self) -> Result<(), SpoolError> {
        if self.format != SPOOL_FORMAT {
            return Err(SpoolError::Corrupt(format!(
                "metadata format is {:?}",
                self.format
            )));
        }
        if self.version != SPOOL_VERSION {
            return Err(SpoolError::Corrupt(format!(
                "unknown spool version {}",
                self.version
            )));
        }
        if !self.finished || self.end_time_us.is_none() {
            return Err(SpoolError::Corrupt(
                "metadata has no end marker (call not finished)".into(),
            ));
        }
        for (i, s) in self.streams.iter().enumerate() {
            if s.index as usize != i {
                return Err(SpoolError::Corrupt(format!(
                    "stream {i} has index {}",
                    s.index
                )));
            }
            if !safe_file_name(&s.pcap) {
                return Err(SpoolError::Corrupt(format!(
                    "unsafe pcap file name {:?}",
                    s.pcap
                )));
            }
        }
        Ok(())
    }

    /// The metadata string as `key:value` pairs (pipe separated), in order.
    pub fn metadata_pairs(&self) -> Vec<(String, String)> {
        parse_metadata_string(&self.metadata)
    }
}

/// Splits `key:value|key:value`; an entry without `:` becomes a key with an empty value.
pub fn parse_metadata_string(s: &str) -> Vec<(String, String)> {
    s.split('|')
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once(':') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (e.to_owned(), String::new()),
        })
        .collect()
}

/// A plain file name: no separators, not `.`/`..`, no control characters.
pub fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CallMeta {
        CallMeta {
            format: SPOOL_FORMAT.into(),
            version: SPOOL_VERSION,
            call_id: "abc@host".into(),
            random_tag: "0123456789abcdef".into(),
            metadata: "foo:bar|blah:baz|flag".into(),
            pcap_format: PcapFormat::Raw,
            start_time_us: 1,
            start_time: "x".into(),
            end_time_us: Some(2),
            end_time: Some("y".into()),
            streams: vec![StreamMeta {
                index: 0,
                tag: "t1".into(),
                label: "caller".into(),
                media: "audio".into(),
                pcap: "abc-0.pcap".into(),
                codecs: vec![CodecInfo::new(0, "PCMU", 8000)],
                packets: 3,
                dropped: 0,
            }],
            finished: true,
        }
    }

    #[test]
    fn json_round_trip() {
        let m = sample();
        let text = serde_json::to_vec(&m).unwrap();
        assert_eq!(CallMeta::parse(&text).unwrap(), m);
        assert!(String::from_utf8(text)
            .unwrap()
            .contains("\"pcap_format\":\"raw\""));
    }

    #[test]
    fn refuses_unfinished_and_unsafe() {
        let mut m = sample();
        m.finished = false;
        assert!(m.validate().is_err());
        let mut m = sample();
        m.end_time_us = None;
        assert!(m.validate().is_err());
        let mut m = sample();
        m.streams[0].pcap = "../../etc/passwd".into();
        assert!(m.validate().is_err());
        let mut m = sample();
        m.version = 99;
        assert!(m.validate().is_err());
        assert!(CallMeta::parse(b"\x00\x01garbage").is_err());
    }

    #[test]
    fn metadata_string() {
        assert_eq!(
            sample().metadata_pairs(),
            vec![
                ("foo".into(), "bar".into()),
                ("blah".into(), "baz".into()),
                ("flag".into(), String::new())
            ]
        );
    }
}
