//! Certificate fingerprints as SDP's `a=fingerprint` carries them (RFC 8122 §5).
//!
//! DTLS-SRTP peers use self-signed certificates; what authenticates a peer is that its
//! certificate hashes to the fingerprint its (signalled, trusted) SDP announced. The value is
//! `HASH-FUNC SP HEX ":" HEX ...` with upper-case hex; parsing accepts either case.

use std::fmt;

use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use super::DtlsError;

/// Longest `a=fingerprint` value accepted: `sha-512 ` plus 64 hex pairs and colons, with slack.
const MAX_FINGERPRINT_LEN: usize = 256;

/// The hash functions RFC 8122 lists that are still in use (md2/md5 are not accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunc {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashFunc {
    /// The name in `a=fingerprint` (and rtpengine's `--dtls-signature`).
    pub fn name(self) -> &'static str {
        match self {
            HashFunc::Sha1 => "sha-1",
            HashFunc::Sha224 => "sha-224",
            HashFunc::Sha256 => "sha-256",
            HashFunc::Sha384 => "sha-384",
            HashFunc::Sha512 => "sha-512",
        }
    }

    /// Parse a name, case-insensitively (`SHA-256` and `sha-256` both occur in the wild).
    pub fn from_name(name: &str) -> Option<HashFunc> {
        [
            HashFunc::Sha1,
            HashFunc::Sha224,
            HashFunc::Sha256,
            HashFunc::Sha384,
            HashFunc::Sha512,
        ]
        .into_iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashFunc::Sha1 => 20,
            HashFunc::Sha224 => 28,
            HashFunc::Sha256 => 32,
            HashFunc::Sha384 => 48,
            HashFunc::Sha512 => 64,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashFunc::Sha1 => Sha1::digest(data).to_vec(),
            HashFunc::Sha224 => Sha224::digest(data).to_vec(),
            HashFunc::Sha256 => Sha256::digest(data).to_vec(),
            HashFunc::Sha384 => Sha384::digest(data).to_vec(),
            HashFunc::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// A certificate fingerprint: hash function and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub hash: HashFunc,
    pub digest: Vec<u8>,
}

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(hash: HashFunc, cert_der: &[u8]) -> Fingerprint {
        Fingerprint {
            hash,
            digest: hash.digest(cert_der),
        }
    }

    /// Parse the value of an `a=fingerprint:` attribute (`sha-256 AB:CD:...`).
    pub fn parse(value: &str) -> Result<Fingerprint, DtlsError> {
        if value.len() > MAX_FINGERPRINT_LEN {
            return Err(DtlsError::BadFingerprint);
        }
        let mut parts = value.split_ascii_whitespace();
        let name = parts.next().ok_or(DtlsError::BadFingerprint)?;
        let hex = parts.next().ok_or(DtlsError::BadFingerprint)?;
        if parts.next().is_some() {
            return Err(DtlsError::BadFingerprint);
        }
        let hash = HashFunc::from_name(name).ok_or_else(|| DtlsError::UnknownHash(name.into()))?;
        let mut digest = Vec::with_capacity(hash.digest_len());
        for pair in hex.split(':') {
            let b = pair.as_bytes();
            if b.len() != 2 {
                return Err(DtlsError::BadFingerprint);
            }
            let byte = u8::from_str_radix(pair, 16).map_err(|_| DtlsError::BadFingerprint)?;
            digest.push(byte);
        }
        if digest.len() != hash.digest_len() {
            return Err(DtlsError::BadFingerprint);
        }
        Ok(Fingerprint { hash, digest })
    }

    /// Whether `cert_der` hashes (with this fingerprint's function) to this digest.
    pub fn matches(&self, cert_der: &[u8]) -> bool {
        self.hash.digest(cert_der) == self.digest
    }
}

/// `sha-256 AB:CD:...`, the value of an `a=fingerprint:` attribute.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hash.name())?;
        for (i, b) in self.digest.iter().enumerate() {
            let sep = if i == 0 { " " } else { ":" };
            write!(f, "{sep}{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_every_hash() {
        let cert = b"not really DER, any bytes hash";
        for h in [
            HashFunc::Sha1,
            HashFunc::Sha224,
            HashFunc::Sha256,
            HashFunc::Sha384,
            HashFunc::Sha512,
        ] {
            let fp = Fingerprint::of(h, cert);
            assert_eq!(fp.digest.len(), h.digest_len());
            let text = fp.to_string();
            assert!(text.starts_with(h.name()), "{text}");
            let parsed = Fingerprint::parse(&text).expect("own output parses");
            assert_eq!(parsed, fp);
            assert!(parsed.matches(cert));
            assert!(!parsed.matches(b"another certificate"));
            // Lower case, upper-case function name.
            let lower = text.to_ascii_lowercase().replacen("sha", "SHA", 1);
            assert_eq!(Fingerprint::parse(&lower).expect("case-insensitive"), fp);
        }
    }

    #[test]
    fn known_sha256_value() {
        // SHA-256("abc") (FIPS 180-2 appendix B.1).
        let fp = Fingerprint::of(HashFunc::Sha256, b"abc");
        assert_eq!(
            fp.to_string(),
            "sha-256 BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn refuses_malformed_values() {
        let good = Fingerprint::of(HashFunc::Sha1, b"x").to_string();
        assert!(Fingerprint::parse(&good).is_ok());
        for bad in [
            "",
            "sha-1",
            "sha-1 ",
            "sha-1 AB:CD",
            "sha-1 ABC:D",
            "sha-1 ZZ:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00",
            &format!("{good} extra"),
            &format!("{good}:00"),
            &format!("{good}:"),
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Fingerprint::parse("md5 00:11"),
            Err(DtlsError::UnknownHash(_))
        ));
        assert_eq!(
            Fingerprint::parse(&"A".repeat(1000)),
            Err(DtlsError::BadFingerprint)
        );
    }
}
