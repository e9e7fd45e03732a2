//! The relay's own DTLS certificate: self-signed, made once at start (as rtpengine does), its
//! fingerprint written into every `a=fingerprint` the relay sends.
//!
//! Only ECDSA P-256 (rtpengine's `--dtls-cert-cipher=prime256v1`) is available: the DTLS stack
//! (dimpl) signs with ECDSA only, and every browser accepts it. `RSA` is parsed so that a
//! configuration naming it gets a clear error rather than an unknown-option one.

use std::time::Duration;

use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePrivateKey;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::UtcTime;
use x509_cert::der::Encode;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use super::fingerprint::{Fingerprint, HashFunc};
use super::DtlsError;

/// How long a generated certificate is valid. Peers do not check validity of self-signed
/// DTLS certificates in practice, but some log a warning for expired ones.
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// How far before "now" the validity starts.
const BACKDATE: Duration = Duration::from_secs(24 * 3600);

/// The key type of the certificate (`--dtls-cert-cipher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertCipher {
    /// ECDSA on P-256 (`prime256v1`), the default.
    #[default]
    EcdsaP256,
    /// RSA (`RSA`): recognised, refused by [`Certificate::generate`].
    Rsa,
}

impl CertCipher {
    /// Parse rtpengine's `--dtls-cert-cipher` value.
    pub fn from_name(name: &str) -> Option<CertCipher> {
        if name.eq_ignore_ascii_case("prime256v1") || name.eq_ignore_ascii_case("ec") {
            Some(CertCipher::EcdsaP256)
        } else if name.eq_ignore_ascii_case("rsa") {
            Some(CertCipher::Rsa)
        } else {
            None
        }
    }
}

/// A certificate (DER) and its private key (PKCS#8 DER), with the SHA-256 fingerprint.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    key_pkcs8: Vec<u8>,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("fingerprint", &self.fingerprint.to_string())
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Make a self-signed certificate valid from a day before `unix_secs` (the caller's wall
    /// clock) for a year, with a random key and serial.
    pub fn generate(cipher: CertCipher, unix_secs: u64) -> Result<Certificate, DtlsError> {
        if cipher != CertCipher::EcdsaP256 {
            return Err(DtlsError::UnsupportedCipher(format!("{cipher:?}")));
        }
        let key = random_p256_key();
        let err = |e: &dyn std::fmt::Display| DtlsError::Certificate(e.to_string());
        // Valid from a day back, for peers whose clock is behind ours.
        let start = Duration::from_secs(unix_secs.saturating_sub(BACKDATE.as_secs()));
        let validity = Validity {
            not_before: Time::UtcTime(UtcTime::from_unix_duration(start).map_err(|e| err(&e))?),
            not_after: Time::UtcTime(
                UtcTime::from_unix_duration(start + VALIDITY).map_err(|e| err(&e))?,
            ),
        };
        // A positive serial of 8 random bytes (RFC 5280 §4.1.2.2 allows up to 20).
        let serial_bytes = (rand::random::<u64>() >> 1 | 1).to_be_bytes();
        let serial = SerialNumber::new(&serial_bytes).map_err(|e| err(&e))?;
        let subject: Name = "CN=rtprelay".parse().map_err(|e| err(&e))?;
        let spki =
            SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).map_err(|e| err(&e))?;
        // A leaf (digitalSignature key usage, not a CA): OpenSSL refuses a server certificate
        // whose key usage does not allow signing ("ecc cert not for signing").
        let profile = Profile::Leaf {
            issuer: subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        };
        let builder = CertificateBuilder::new(profile, serial, validity, subject, spki, &key)
            .map_err(|e| err(&e))?;
        let cert = builder.build::<DerSignature>().map_err(|e| err(&e))?;
        let der = cert.to_der().map_err(|e| err(&e))?;
        let key_pkcs8 = key.to_pkcs8_der().map_err(|e| err(&e))?.as_bytes().to_vec();
        Ok(Certificate::from_parts(der, key_pkcs8))
    }

    /// A certificate loaded elsewhere (DER) with its PKCS#8 DER key. The pair is checked when
    /// the first endpoint uses it.
    pub fn from_parts(der: Vec<u8>, key_pkcs8: Vec<u8>) -> Certificate {
        let fingerprint = Fingerprint::of(HashFunc::Sha256, &der);
        Certificate {
            der,
            key_pkcs8,
            fingerprint,
        }
    }

    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The SHA-256 fingerprint (`a=fingerprint:sha-256 ...`).
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The fingerprint with another hash function (`--dtls-signature`).
    pub fn fingerprint_with(&self, hash: HashFunc) -> Fingerprint {
        Fingerprint::of(hash, &self.der)
    }

    pub(super) fn to_dimpl(&self) -> dimpl::DtlsCertificate {
        dimpl::DtlsCertificate {
            certificate: self.der.clone(),
            private_key: self.key_pkcs8.clone(),
        }
    }
}

/// A P-256 signing key from the thread RNG (rand's ChaCha, seeded from the OS). A random 32-byte
/// string is a valid scalar except with probability ~2^-32; draw again in that case.
fn random_p256_key() -> SigningKey {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(k) = SigningKey::from_bytes(&bytes.into()) {
            return k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_p256_certificate_with_its_fingerprint() {
        let c = Certificate::generate(CertCipher::EcdsaP256, 1_780_000_000).expect("generate");
        assert!(c.der().len() > 200, "{}", c.der().len());
        assert_eq!(c.fingerprint().hash, HashFunc::Sha256);
        assert!(c.fingerprint().matches(c.der()));
        assert_eq!(
            c.fingerprint_with(HashFunc::Sha1).digest.len(),
            HashFunc::Sha1.digest_len()
        );
        // A signing leaf, not a CA: TLS stacks refuse a server certificate that cannot sign.
        use x509_cert::der::Decode;
        let parsed = x509_cert::Certificate::from_der(c.der()).expect("parses");
        let (_, ku) = parsed
            .tbs_certificate
            .get::<x509_cert::ext::pkix::KeyUsage>()
            .expect("extensions decode")
            .expect("has key usage");
        assert!(ku.digital_signature() && !ku.key_cert_sign());
        // Two certificates differ (random key and serial).
        let d = Certificate::generate(CertCipher::EcdsaP256, 1_780_000_000).expect("generate");
        assert_ne!(c.fingerprint(), d.fingerprint());
    }

    #[test]
    fn rsa_is_named_but_refused() {
        assert_eq!(CertCipher::from_name("RSA"), Some(CertCipher::Rsa));
        assert_eq!(
            CertCipher::from_name("prime256v1"),
            Some(CertCipher::EcdsaP256)
        );
        assert_eq!(CertCipher::from_name("dsa"), None);
        assert!(matches!(
            Certificate::generate(CertCipher::Rsa, 0),
            Err(DtlsError::UnsupportedCipher(_))
        ));
    }
}
