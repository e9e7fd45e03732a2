//! A typed view of SDES's `a=crypto` (RFC 4568 §9.1, with the SRTP key parameters of §6.1):
//!
//! ```text
//! a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<MKI length>][;inline:...] [<session param>...]
//! ```
//!
//! The SDP model keeps every attribute as text ([`Attribute`]); this module only reads a
//! [`Crypto`] out of one ([`Crypto::from_attribute`], [`crypto_attributes`]) and makes a new one
//! ([`Crypto::to_attribute`]). Nothing in parsing or writing SDP changes: a `crypto` line that
//! does not parse is still passed on as it came.
//!
//! Session parameters (`UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP`, `UNAUTHENTICATED_SRTP`, `KDR=`,
//! `WSH=`, `FEC_ORDER=`, `FEC_KEY=`, and any other) are kept as text, in order; the three flags
//! and `KDR=`/`WSH=` have accessors.

use std::fmt;
use std::str::FromStr;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use crate::sdp::model::{Attribute, Media};
use crate::srtp::{Params, Suite};

/// RFC 4568 §9.1: the tag has at most 9 digits.
const MAX_TAG_DIGITS: usize = 9;
/// RFC 4568 §6.1: an MKI is 1 to 128 bytes long.
const MAX_MKI_LEN: u8 = 128;
/// Base64 of the longest key and salt we know (46 bytes) is 64 characters; allow room for
/// suites we do not implement, refuse absurd lengths.
const MAX_KEY_TEXT: usize = 256;

/// Key text decodes with or without `=` padding and with non-zero trailing bits, as endpoints
/// send both.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Why an `a=crypto` value was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The tag is not 1 to 9 decimal digits.
    #[error("crypto tag is not 1 to 9 digits")]
    BadTag,
    /// No suite after the tag.
    #[error("crypto attribute without a suite")]
    MissingSuite,
    /// No key parameters after the suite.
    #[error("crypto attribute without key parameters")]
    MissingKey,
    /// A key method other than `inline`.
    #[error("key method {0:?} is not inline")]
    BadKeyMethod(String),
    /// The key text is empty, too long or not base64.
    #[error("inline key is not base64")]
    BadKey,
    /// A lifetime that is neither `N` nor `2^N` (with N small enough for 64 bits).
    #[error("bad key lifetime {0:?}")]
    BadLifetime(String),
    /// An MKI that is not `value:length` with length 1 to 128, or a value that does not fit.
    #[error("bad MKI {0:?}")]
    BadMki(String),
    /// More `|` fields than key, lifetime and MKI.
    #[error("too many fields in inline key parameters")]
    TooManyFields,
    /// The suite is not one we implement.
    #[error("unknown crypto suite {0:?}")]
    UnknownSuite(String),
    /// The key and salt are not the length the suite needs.
    #[error("{suite} needs {want} bytes of key and salt, inline key has {got}")]
    KeyLength {
        suite: &'static str,
        want: usize,
        got: usize,
    },
    /// A session parameter we cannot honour (a key derivation rate other than the default).
    #[error("unsupported session parameter {0:?}")]
    Unsupported(String),
}

/// A key lifetime (RFC 4568 §6.1): a packet count, written as a power of two or in decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// `2^N`.
    PowerOfTwo(u8),
    /// `N`.
    Packets(u64),
}

impl Lifetime {
    /// The number of packets.
    pub fn packets(self) -> u64 {
        match self {
            Lifetime::PowerOfTwo(n) => 1u64 << n,
            Lifetime::Packets(n) => n,
        }
    }
}

impl FromStr for Lifetime {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CryptoError::BadLifetime(s.to_owned());
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
        if let Some(exp) = s.strip_prefix("2^") {
            if !digits(exp) {
                return Err(bad());
            }
            let n: u8 = exp.parse().map_err(|_| bad())?;
            if n > 63 {
                return Err(bad());
            }
            Ok(Lifetime::PowerOfTwo(n))
        } else if digits(s) {
            Ok(Lifetime::Packets(s.parse().map_err(|_| bad())?))
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifetime::PowerOfTwo(n) => write!(f, "2^{n}"),
            Lifetime::Packets(n) => write!(f, "{n}"),
        }
    }
}

/// A master key identifier: its value (decimal in SDP) and its length on the wire in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mki {
    pub value: u64,
    pub len: u8,
}

impl Mki {
    /// The MKI as carried in packets: `value` big-endian in `len` bytes.
    pub fn bytes(self) -> Vec<u8> {
        let mut out = vec![0u8; usize::from(self.len)];
        let be = self.value.to_be_bytes();
        let n = be.len().min(out.len());
        let at = out.len() - n;
        out[at..].copy_from_slice(&be[be.len() - n..]);
        out
    }
}

impl FromStr for Mki {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CryptoError::BadMki(s.to_owned());
        let (value, len) = s.split_once(':').ok_or_else(bad)?;
        let digits = |t: &str, max: usize| {
            !t.is_empty() && t.len() <= max && t.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(value, 20) || !digits(len, 3) {
            return Err(bad());
        }
        let value: u64 = value.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        if len == 0 || len > MAX_MKI_LEN {
            return Err(bad());
        }
        // The value must fit in `len` bytes.
        if len < 8 && value >> (8 * u32::from(len)) != 0 {
            return Err(bad());
        }
        Ok(Mki { value, len })
    }
}

impl fmt::Display for Mki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.value, self.len)
    }
}

/// One `inline:` key parameter.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyParam {
    /// The base64 text of master key || master salt, as received (padding or not).
    pub key_text: String,
    pub lifetime: Option<Lifetime>,
    pub mki: Option<Mki>,
}

impl fmt::Debug for KeyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("KeyParam")
            .field("key_text", &format_args!("<{} chars>", self.key_text.len()))
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish()
    }
}

impl KeyParam {
    /// A key parameter for `key_salt` (master key then salt), base64 with padding.
    pub fn inline(key_salt: &[u8]) -> KeyParam {
        KeyParam {
            key_text: base64::engine::general_purpose::STANDARD.encode(key_salt),
            lifetime: None,
            mki: None,
        }
    }

    /// The decoded master key || master salt.
    pub fn key_salt(&self) -> Result<Vec<u8>, CryptoError> {
        LENIENT
            .decode(&self.key_text)
            .map_err(|_| CryptoError::BadKey)
    }
}

impl FromStr for KeyParam {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (method, info) = s
            .split_once(':')
            .ok_or_else(|| CryptoError::BadKeyMethod(s.chars().take(16).collect()))?;
        if !method.eq_ignore_ascii_case("inline") {
            return Err(CryptoError::BadKeyMethod(method.chars().take(16).collect()));
        }
        let mut fields = info.split('|');
        let key_text = fields.next().unwrap_or_default();
        if key_text.is_empty()
            || key_text.len() > MAX_KEY_TEXT
            || !key_text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')
        {
            return Err(CryptoError::BadKey);
        }
        let mut p = KeyParam {
            key_text: key_text.to_owned(),
            lifetime: None,
            mki: None,
        };
        // Lifetime and MKI are both optional; the MKI is the one with a ':'.
        for (i, field) in fields.enumerate() {
            if i >= 2 {
                return Err(CryptoError::TooManyFields);
            }
            if field.contains(':') {
                if p.mki.is_some() {
                    return Err(CryptoError::TooManyFields);
                }
                p.mki = Some(field.parse()?);
            } else {
                if p.lifetime.is_some() || p.mki.is_some() {
                    return Err(CryptoError::TooManyFields);
                }
                p.lifetime = Some(field.parse()?);
            }
        }
        p.key_salt()?;
        Ok(p)
    }
}

impl fmt::Display for KeyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inline:{}", self.key_text)?;
        if let Some(l) = self.lifetime {
            write!(f, "|{l}")?;
        }
        if let Some(m) = self.mki {
            write!(f, "|{m}")?;
        }
        Ok(())
    }
}

/// One `a=crypto` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    /// The suite name as written (see [`Crypto::suite`] for ours).
    pub suite_name: String,
    /// At least one.
    pub keys: Vec<KeyParam>,
    /// Session parameters as text, in order.
    pub session_params: Vec<String>,
}

impl Crypto {
    /// A line with one key parameter and no session parameters.
    pub fn new(tag: u32, suite: Suite, key: KeyParam) -> Crypto {
        Crypto {
            tag,
            suite_name: suite.name().to_owned(),
            keys: vec![key],
            session_params: Vec::new(),
        }
    }

    /// `None` when `a` is not a `crypto` attribute.
    pub fn from_attribute(a: &Attribute) -> Option<Result<Crypto, CryptoError>> {
        a.is("crypto").then(|| a.value_trimmed().parse())
    }

    /// A generated attribute (CRLF).
    pub fn to_attribute(&self) -> Attribute {
        Attribute::new("crypto", Some(self.to_string()))
    }

    /// Our suite, if we implement the one named.
    pub fn suite(&self) -> Option<Suite> {
        Suite::from_name(&self.suite_name)
    }

    fn has_param(&self, name: &str) -> bool {
        self.session_params
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name))
    }

    fn param_value(&self, name: &str) -> Option<&str> {
        self.session_params.iter().find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    pub fn unencrypted_srtp(&self) -> bool {
        self.has_param("UNENCRYPTED_SRTP")
    }

    pub fn unencrypted_srtcp(&self) -> bool {
        self.has_param("UNENCRYPTED_SRTCP")
    }

    pub fn unauthenticated_srtp(&self) -> bool {
        self.has_param("UNAUTHENTICATED_SRTP")
    }

    /// `KDR=n` (the key derivation rate is 2^n packets), if present.
    pub fn kdr(&self) -> Option<Result<u8, CryptoError>> {
        self.param_value("KDR").map(|v| {
            v.parse::<u8>()
                .ok()
                .filter(|n| *n <= 24)
                .ok_or_else(|| CryptoError::Unsupported(format!("KDR={v}")))
        })
    }

    /// `WSH=n`, the replay window size hint, if present and a number.
    pub fn wsh(&self) -> Option<u32> {
        self.param_value("WSH")?.parse().ok()
    }

    /// SRTP context parameters from the first key: the suite must be ours, the key the suite's
    /// length, and no key derivation rate (we derive once).
    pub fn srtp_params(&self) -> Result<Params, CryptoError> {
        let suite = self
            .suite()
            .ok_or_else(|| CryptoError::UnknownSuite(self.suite_name.clone()))?;
        let key = self.keys.first().ok_or(CryptoError::MissingKey)?;
        let key_salt = key.key_salt()?;
        if key_salt.len() != suite.inline_key_len() {
            return Err(CryptoError::KeyLength {
                suite: suite.name(),
                want: suite.inline_key_len(),
                got: key_salt.len(),
            });
        }
        if let Some(kdr) = self.kdr() {
            kdr?;
            return Err(CryptoError::Unsupported(
                self.param_value("KDR").unwrap_or_default().to_owned(),
            ));
        }
        let (k, s) = key_salt.split_at(suite.master_key_len());
        let mut p = Params::new(suite, k, s);
        p.mki = key.mki.map(Mki::bytes).unwrap_or_default();
        p.unencrypted_srtp = self.unencrypted_srtp();
        p.unencrypted_srtcp = self.unencrypted_srtcp();
        p.unauthenticated_srtp = self.unauthenticated_srtp();
        Ok(p)
    }
}

impl FromStr for Crypto {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_ascii_whitespace();
        let tag = words.next().unwrap_or_default();
        if tag.is_empty() || tag.len() > MAX_TAG_DIGITS || !tag.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(CryptoError::BadTag);
        }
        let tag = tag.parse().map_err(|_| CryptoError::BadTag)?;
        let suite_name = words.next().ok_or(CryptoError::MissingSuite)?.to_owned();
        let keys = words
            .next()
            .ok_or(CryptoError::MissingKey)?
            .split(';')
            .map(str::parse)
            .collect::<Result<Vec<KeyParam>, _>>()?;
        Ok(Crypto {
            tag,
            suite_name,
            keys,
            session_params: words.map(str::to_owned).collect(),
        })
    }
}

impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.tag, self.suite_name)?;
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}")?;
        }
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// The `a=crypto` lines of a media section, parsed, in order.
pub fn crypto_attributes(media: &Media) -> impl Iterator<Item = Result<Crypto, CryptoError>> + '_ {
    media.attributes().filter_map(Crypto::from_attribute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::parse;

    const LINES: &[&str] = &[
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP",
        "2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32 UNENCRYPTED_SRTCP KDR=1",
        "3 AEAD_AES_256_GCM inline:ZFeRs2/PB3Ez8DTWgNrjzlM4YOLwl2iP06vB2+e9vb/RM4pMsJowWZ+BVoQ",
        "4 AES_256_CM_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^31;inline:QUJjZGVmMTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1O|2^31 UNENCRYPTED_SRTP UNAUTHENTICATED_SRTP WSH=128",
        "5 NULL_HMAC_SHA1_32 inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA 1:2",
        "6 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|1048576|5:1",
        "7 AES_CM_128_HMAC_SHA1_80 inline:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkQ==",
        "8 SEED_128_CTR_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm",
    ];

    #[test]
    fn lines_from_endpoints_round_trip() {
        for line in LINES {
            let c: Crypto = line.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(c.to_string(), *line);
        }
    }

    #[test]
    fn the_fields_are_read() {
        let c: Crypto = LINES[2].parse().expect("parses");
        assert_eq!(c.tag, 2);
        assert_eq!(c.suite(), Some(Suite::AesCm128HmacSha1_32));
        assert_eq!(c.keys[0].lifetime, Some(Lifetime::PowerOfTwo(20)));
        assert_eq!(c.keys[0].lifetime.map(Lifetime::packets), Some(1 << 20));
        assert_eq!(c.keys[0].mki, Some(Mki { value: 1, len: 32 }));
        assert!(c.unencrypted_srtcp() && !c.unencrypted_srtp() && !c.unauthenticated_srtp());
        assert_eq!(c.kdr(), Some(Ok(1)));
        assert_eq!(c.keys[0].key_salt().map(|k| k.len()), Ok(30));

        let c: Crypto = LINES[4].parse().expect("parses");
        assert_eq!(c.keys.len(), 2);
        assert!(c.unencrypted_srtp() && c.unauthenticated_srtp());
        assert_eq!(c.wsh(), Some(128));

        let c: Crypto = LINES[5].parse().expect("parses");
        assert_eq!(c.session_params, vec!["1:2".to_owned()]);
        let c: Crypto = LINES[6].parse().expect("parses");
        assert_eq!(c.suite(), Some(Suite::F8_128HmacSha1_80));
        assert_eq!(c.keys[0].lifetime, Some(Lifetime::Packets(1_048_576)));
        assert_eq!(c.keys[0].mki.map(Mki::bytes), Some(vec![5]));
        // Padding or not, the key decodes.
        let c: Crypto = LINES[7].parse().expect("parses");
        assert_eq!(c.keys[0].key_salt().map(|k| k.len()), Ok(46));
    }

    #[test]
    fn srtp_params_check_the_suite_and_key_length() {
        let c: Crypto = LINES[0].parse().expect("parses");
        let p = c.srtp_params().expect("usable");
        assert_eq!(p.suite, Suite::AesCm128HmacSha1_80);
        assert_eq!((p.master_key.len(), p.master_salt.len()), (16, 14));
        assert_eq!(p.mki.len(), 32);
        assert_eq!(p.mki[31], 1);
        assert!(crate::srtp::SrtpContext::new(&p).is_ok());

        let c: Crypto = LINES[3].parse().expect("parses");
        let p = c.srtp_params().expect("usable");
        assert_eq!((p.master_key.len(), p.master_salt.len()), (32, 12));

        let c: Crypto = LINES[2].parse().expect("parses");
        assert_eq!(
            c.srtp_params().map(|_| ()),
            Err(CryptoError::Unsupported("1".to_owned()))
        );
        let c: Crypto = LINES[6].parse().expect("parses");
        let p = c.srtp_params().expect("usable");
        assert_eq!(p.suite, Suite::F8_128HmacSha1_80);
        assert_eq!(
            (p.master_key.len(), p.master_salt.len(), p.mki.len()),
            (16, 14, 1)
        );
        assert!(crate::srtp::SrtpContext::new(&p).is_ok());
        let c: Crypto = LINES[8].parse().expect("parses");
        assert_eq!(c.suite(), None);
        assert!(matches!(c.srtp_params(), Err(CryptoError::UnknownSuite(_))));
        // 46 bytes of key for a suite that needs 30.
        let c: Crypto = LINES[7].parse().expect("parses");
        assert_eq!(
            c.srtp_params().map(|_| ()),
            Err(CryptoError::KeyLength {
                suite: "AES_CM_128_HMAC_SHA1_80",
                want: 30,
                got: 46
            })
        );
    }

    #[test]
    fn a_generated_line_parses_back() {
        let key: Vec<u8> = (0u8..30).collect();
        let mut k = KeyParam::inline(&key);
        k.lifetime = Some(Lifetime::PowerOfTwo(31));
        k.mki = Some(Mki { value: 258, len: 2 });
        let mut c = Crypto::new(9, Suite::AesCm128HmacSha1_80, k);
        c.session_params.push("UNENCRYPTED_SRTCP".to_owned());
        let a = c.to_attribute();
        assert_eq!(a.name, "crypto");
        let back = Crypto::from_attribute(&a).expect("crypto").expect("parses");
        assert_eq!(back, c);
        assert_eq!(back.keys[0].key_salt(), Ok(key));
        assert_eq!(back.keys[0].mki.map(Mki::bytes), Some(vec![1, 2]));
    }

    #[test]
    fn bad_values_are_errors() {
        for (value, want) in [
            ("", CryptoError::BadTag),
            ("x AES_CM_128_HMAC_SHA1_80 inline:QUJD", CryptoError::BadTag),
            (
                "1234567890 AES_CM_128_HMAC_SHA1_80 inline:QUJD",
                CryptoError::BadTag,
            ),
            ("1", CryptoError::MissingSuite),
            ("1 AES_CM_128_HMAC_SHA1_80", CryptoError::MissingKey),
            (
                "1 AES_CM_128_HMAC_SHA1_80 uri:http://x",
                CryptoError::BadKeyMethod("uri".to_owned()),
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:", CryptoError::BadKey),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!", CryptoError::BadKey),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:Q", CryptoError::BadKey),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:QUJD|2^64",
                CryptoError::BadLifetime("2^64".to_owned()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:QUJD|3^2",
                CryptoError::BadLifetime("3^2".to_owned()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:QUJD|1:0",
                CryptoError::BadMki("1:0".to_owned()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:QUJD|1:129",
                CryptoError::BadMki("1:129".to_owned()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:QUJD|256:1",
                CryptoError::BadMki("256:1".to_owned()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:QUJD|1:1|2^20",
                CryptoError::TooManyFields,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:QUJD|2^20|1:1|2:2",
                CryptoError::TooManyFields,
            ),
        ] {
            assert_eq!(value.parse::<Crypto>(), Err(want), "{value:?}");
        }
        let long = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{}", "A".repeat(1000));
        assert_eq!(long.parse::<Crypto>(), Err(CryptoError::BadKey));
    }

    #[test]
    fn the_sdp_model_is_unchanged_and_the_view_finds_the_lines() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                   m=audio 4000 RTP/SAVP 0\r\n\
                   a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n\
                   a=crypto:2 SOMETHING_NEW inline:%%%\r\n\
                   a=crypto:garbage\r\n\
                   a=rtpmap:0 PCMU/8000\r\n";
        let parsed = parse(sdp.as_bytes()).expect("parses");
        assert_eq!(
            parsed.to_string(),
            sdp,
            "unparsable crypto lines pass through"
        );
        let found: Vec<_> = crypto_attributes(&parsed.media[0]).collect();
        assert_eq!(found.len(), 3);
        assert_eq!(
            found[0].as_ref().map(|c| c.suite()),
            Ok(Some(Suite::AesCm128HmacSha1_80))
        );
        assert_eq!(found[1], Err(CryptoError::BadKey));
        assert_eq!(found[2], Err(CryptoError::BadTag));
    }
}
